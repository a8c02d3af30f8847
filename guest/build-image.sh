#!/usr/bin/env bash
#
# build-image.sh - make the real-guest boot image: a Debian bookworm 6.12
# kernel and an initramfs holding busybox, the VFIO / virtio-iommu modules,
# our static guest test program and guest/init.
#
# Usage: guest/build-image.sh [--arch amd64|arm64] [--cache DIR] [--guest BIN]
#                             [--force] [--quiet]
#
#   --arch A      amd64 (default: the x86 guest) or arm64 (the arm64 guest
#                 of docs/SMMUV3-GUEST.md: linux-image-6.12.*+deb12-arm64-
#                 unsigned, an arm64 busybox-static and the VFIO modules;
#                 the arm-smmu-v3 driver is built in)
#   --cache DIR   cache directory (default: build/guest-cache, with arm64
#                 build/guest-cache-arm64).  Holds the
#                 downloaded .deb, the unpacked package and image/, the
#                 output: image/vmlinuz, image/initrd.img, image/manifest.
#   --guest BIN   the static guest program (default: build/guest/viommu-guest,
#                 with arm64 build/guest-arm64/viommu-guest)
#   --force       rebuild the initramfs even if nothing changed
#   --quiet       print only warnings and the final line
#
# Nothing is installed on the host: the kernel package is fetched with
# `apt-get download` (newest linux-image-6.12.*+deb12-amd64-unsigned that
# apt-cache knows; `apt-get update` runs once if it knows none) and unpacked
# with `dpkg -x`.  The package ships no modules.dep (depmod writes it at
# install time), so module dependencies are read from each module's own
# .modinfo "depends=" field, which is what depmod uses.  For arm64 the
# packages (kernel and busybox-static) come from apt state of its own in
# CACHE/apt (APT::Architecture=arm64, its own lists and archives, an
# empty dpkg status): the host's apt configuration and dpkg architectures
# are not touched.  The initramfs is
# rebuilt only when one of its inputs (kernel package, busybox, guest
# program, init, this script) changed; the last line printed is
# "image: KERNEL INITRD".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=amd64
CACHE=""
GUEST_BIN=""
INIT=$ROOT/guest/init
FORCE=0
QUIET=0
BUSYBOX=${BUSYBOX:-/bin/busybox}
KPKG_RE='^linux-image-6\.12\.[0-9.]+\+deb12-amd64-unsigned$'
# Modules the guest needs, in no particular order; dependencies are added.
WANT_MODULES="virtio_iommu vfio vfio_iommu_type1 vfio_pci_core vfio_pci virtio_blk crc32c_generic ext4 virtio_net"
# Kernel options the scenarios rely on (=y or =m).
NEED_CONFIG="VIRTIO_IOMMU ACPI_VIOT VIRTIO_PCI VFIO VFIO_PCI
VFIO_IOMMU_TYPE1 VFIO_CONTAINER DEVTMPFS BLK_DEV_INITRD SERIAL_8250_CONSOLE"

# say TEXT... - a progress line (not with --quiet).
say() {
	[ "$QUIET" = 1 ] || echo "build-image: $*"
}

# die TEXT... - an error line, exit 1.
die() {
	echo "build-image: error: $*" >&2
	exit 1
}

# usage [STATUS] - the header comment as help text.
usage() {
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

# APT options (arm64: scratch apt state under CACHE/apt, set by set_arch).
APT_O=()

# set_arch - the per-architecture settings.
set_arch() {
	case "$ARCH" in
	amd64)
		CACHE=${CACHE:-$ROOT/build/guest-cache}
		GUEST_BIN=${GUEST_BIN:-$ROOT/build/guest/viommu-guest}
		;;
	arm64)
		CACHE=${CACHE:-$ROOT/build/guest-cache-arm64}
		GUEST_BIN=${GUEST_BIN:-$ROOT/build/guest-arm64/viommu-guest}
		KPKG_RE='^linux-image-6\.12\.[0-9.]+\+deb12-arm64-unsigned$'
		WANT_MODULES="vfio vfio_iommu_type1 vfio_pci_core vfio_pci"
		NEED_CONFIG="ARM_SMMU_V3 VFIO VFIO_PCI VFIO_IOMMU_TYPE1
VFIO_CONTAINER DEVTMPFS BLK_DEV_INITRD SERIAL_AMBA_PL011_CONSOLE"
		;;
	*) echo "build-image: --arch amd64 or arm64" >&2; exit 2 ;;
	esac
}

# parse_args ARGS... - set ARCH, CACHE, GUEST_BIN, FORCE, QUIET.
parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--arch) ARCH=$2; shift 2 ;;
		--cache) CACHE=$2; shift 2 ;;
		--guest) GUEST_BIN=$2; shift 2 ;;
		--force) FORCE=1; shift ;;
		--quiet) QUIET=1; shift ;;
		-h | --help) usage 0 ;;
		*) echo "build-image: unknown argument '$1'" >&2; usage 2 ;;
		esac
	done
	set_arch
	mkdir -p "$CACHE"
	CACHE=$(cd "$CACHE" && pwd)
	if [ "$ARCH" = arm64 ]; then
		mkdir -p "$CACHE/apt/lists/partial" \
			"$CACHE/apt/cache/archives/partial"
		APT_O=(-o APT::Architecture=arm64 -o APT::Architectures=arm64
			-o "Dir::State::Lists=$CACHE/apt/lists"
			-o "Dir::Cache=$CACHE/apt/cache"
			-o Dir::State::status=/dev/null)
	fi
}

# as_root CMD... - run CMD as root: directly, or through sudo -n.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

# need_tools - fail early when a tool or an input is missing.
need_tools() {
	local t
	for t in apt-cache apt-get dpkg xz cpio gzip sha256sum sort; do
		command -v "$t" >/dev/null 2>&1 ||
			die "missing tool '$t' (scripts/deps.sh guest)"
	done
	[ -x "$GUEST_BIN" ] || die "no guest program $GUEST_BIN (build it:" \
		"ninja -C build guest/viommu-guest; arm64: tools/viommu-run" \
		"--arch arm64 cross-compiles it)"
	[ -f "$INIT" ] || die "no $INIT"
	[ "$ARCH" = arm64 ] && return 0 # busybox comes with fetch_busybox
	[ -x "$BUSYBOX" ] || die "no $BUSYBOX (install busybox-static)"
	if command -v file >/dev/null 2>&1; then
		file -L "$BUSYBOX" | grep -q 'statically linked' ||
			die "$BUSYBOX is not static (install busybox-static)"
	fi
}

# fetch_busybox - arm64: busybox-static for arm64, downloaded and unpacked
# once into the cache; sets BUSYBOX.
fetch_busybox() {
	local deb dir=$CACHE/unpacked/busybox
	[ "$ARCH" = arm64 ] || return 0
	BUSYBOX=$dir/bin/busybox
	[ -x "$BUSYBOX" ] && return 0
	deb=$(find "$CACHE/debs" -maxdepth 1 -name 'busybox-static_*.deb' |
		sort -V | tail -n 1)
	if [ -z "$deb" ]; then
		say "downloading busybox-static (arm64)"
		(cd "$CACHE/debs" && apt-get "${APT_O[@]}" download -q \
			busybox-static 2>&1 | grep -v 'unsandboxed as root' >&2) ||
			true
		deb=$(find "$CACHE/debs" -maxdepth 1 \
			-name 'busybox-static_*.deb' | sort -V | tail -n 1)
		[ -n "$deb" ] || die "apt-get download busybox-static failed"
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg -x "$deb" "$dir"
	[ -x "$BUSYBOX" ] || die "no bin/busybox in $(basename "$deb")"
}

# newest_known_kernel - print the newest matching package apt-cache knows
# (nothing when it knows none: with pipefail a grep that matches nothing
# must not end the script, the caller runs apt-get update then).
newest_known_kernel() {
	apt-cache "${APT_O[@]}" search --names-only "$KPKG_RE" 2>/dev/null |
		awk '{ print $1 }' | { grep -E "$KPKG_RE" || true; } |
		sort -V | tail -n 1
}

# newest_cached_deb - print the newest kernel .deb already in the cache.
newest_cached_deb() {
	find "$CACHE/debs" -maxdepth 1 \
		-name "linux-image-6.12.*-$ARCH-unsigned_*.deb" 2>/dev/null |
		sort -V | tail -n 1
}

# fetch_kernel - set KDEB to the kernel package file, downloading it when
# the cache does not have the newest one.
fetch_kernel() {
	local pkg
	mkdir -p "$CACHE/debs"
	pkg=$(newest_known_kernel)
	if [ -z "$pkg" ]; then
		say "apt-cache knows no $KPKG_RE: running apt-get update once"
		if [ "$ARCH" = arm64 ]; then
			# three tries: a mirror hiccup must not fail the stage
			local try
			for try in 1 2 3; do
				apt-get "${APT_O[@]}" update -q </dev/null >&2 &&
					break
				echo "build-image: apt-get update (arm64" \
					"scratch state) failed, try $try of 3" >&2
				sleep $((try * 5))
			done
		else
			as_root env DEBIAN_FRONTEND=noninteractive \
				apt-get update -q </dev/null >&2 ||
				say "apt-get update failed"
		fi
		pkg=$(newest_known_kernel)
	fi
	if [ -z "$pkg" ]; then
		KDEB=$(newest_cached_deb)
		[ -n "$KDEB" ] ||
			die "no linux-image-6.12 package known or cached"
		say "offline: using cached $(basename "$KDEB")"
		return 0
	fi
	KDEB=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V |
		tail -n 1)
	if [ -n "$KDEB" ]; then
		say "kernel package $pkg: cached ($(basename "$KDEB"))"
		return 0
	fi
	say "downloading $pkg (apt-get download)"
	(cd "$CACHE/debs" && apt-get "${APT_O[@]}" download -q "$pkg" 2>&1 |
		grep -v 'unsandboxed as root' >&2) || true
	KDEB=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V |
		tail -n 1)
	if [ -z "$KDEB" ]; then
		KDEB=$(newest_cached_deb)
		[ -n "$KDEB" ] || die "apt-get download $pkg failed"
		say "apt-get download $pkg failed: using cached" \
			"$(basename "$KDEB")"
	fi
}

# prune_cache - drop kernel packages and unpacked trees other than KDEB's.
prune_cache() {
	local f keep
	keep=$(basename "$KDEB" .deb)
	for f in "$CACHE"/debs/*.deb "$CACHE"/unpacked/*; do
		[ -e "$f" ] || continue
		case "$(basename "$f" .deb)" in
		"$keep" | busybox*) ;;
		*)
			say "pruning old $(basename "$f")"
			rm -rf "$f"
			;;
		esac
	done
}

# unpack_kernel - dpkg -x the package once; set KDIR, KVER, KMODDIR.
unpack_kernel() {
	local base
	base=$(basename "$KDEB" .deb)
	KDIR=$CACHE/unpacked/$base
	if [ ! -f "$KDIR/.unpacked" ]; then
		say "unpacking $(basename "$KDEB") into $KDIR (dpkg -x)"
		rm -rf "$KDIR"
		mkdir -p "$KDIR"
		dpkg -x "$KDEB" "$KDIR"
		touch "$KDIR/.unpacked"
	fi
	KVER=$(basename "$(find "$KDIR/lib/modules" -mindepth 1 -maxdepth 1 \
		-type d | head -n 1)")
	[ -n "$KVER" ] || die "no lib/modules/<version> in $KDEB"
	KMODDIR=$KDIR/lib/modules/$KVER
	[ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "no boot/vmlinuz-$KVER"
}

# check_config - the kernel has every option the scenarios need.
check_config() {
	local cfg=$KDIR/boot/config-$KVER opt val missing=""
	[ -f "$cfg" ] || die "no boot/config-$KVER in the package"
	for opt in $NEED_CONFIG; do
		val=$(sed -n "s/^CONFIG_$opt=//p" "$cfg")
		case "$val" in
		y | m) say "config: CONFIG_$opt=$val" ;;
		*) missing="$missing CONFIG_$opt" ;;
		esac
	done
	[ -z "$missing" ] || die "kernel $KVER lacks:$missing"
}

# index_modules - write CACHE/.../modules.index: "name path" per module.
index_modules() {
	MODINDEX=$KDIR/modules.index
	[ -f "$MODINDEX" ] && return 0
	find "$KMODDIR/kernel" -name '*.ko*' | while read -r p; do
		local n
		n=$(basename "$p")
		n=${n%%.ko*}
		echo "${n//-/_} ${p#"$KMODDIR"/}"
	done | sort >"$MODINDEX.tmp"
	mv "$MODINDEX.tmp" "$MODINDEX"
}

# module_path NAME - the module's path relative to KMODDIR.
module_path() {
	awk -v n="$1" '$1 == n { print $2; exit }' "$MODINDEX"
}

# module_deps PATH - the module's dependencies (normalised names).
module_deps() {
	local f=$KMODDIR/$1
	case "$f" in
	*.xz) xz -dc "$f" ;;
	*) cat "$f" ;;
	esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n 1 |
		tr ',-' ' _'
}

# resolve NAME - append NAME to LOAD_ORDER (and its path to MOD_PATHS)
# after its dependencies.
resolve() {
	local name=$1 path dep
	case " ${LOAD_ORDER[*]} " in *" $name "*) return 0 ;; esac
	case " $RESOLVING " in
	*" $name "*) die "module dependency loop at $name" ;;
	esac
	if grep -qE "/${name//_/[-_]}\.ko$" "$KMODDIR/modules.builtin"; then
		say "module $name: built in"
		return 0
	fi
	path=$(module_path "$name")
	[ -n "$path" ] || die "module $name not in the kernel package"
	RESOLVING="$RESOLVING $name"
	for dep in $(module_deps "$path"); do
		resolve "$dep"
	done
	LOAD_ORDER+=("$name")
	MOD_PATHS+=("$path")
}

# resolve_modules - LOAD_ORDER/MOD_PATHS for WANT_MODULES.
resolve_modules() {
	local m
	LOAD_ORDER=()
	MOD_PATHS=()
	RESOLVING=""
	index_modules
	for m in $WANT_MODULES; do
		resolve "$m"
	done
	MODLIST=$(IFS=,; echo "${LOAD_ORDER[*]}")
	say "modules in load order: ${LOAD_ORDER[*]}"
}

# input_stamp - hash of everything the initramfs is made from.
input_stamp() {
	{
		echo "kernel $(basename "$KDEB") arch $ARCH"
		echo "modules $MODLIST"
		sha256sum "$BUSYBOX" "$GUEST_BIN" "$INIT" \
			"$ROOT/guest/build-image.sh" | awk '{ print $1 }'
	} | sha256sum | awk '{ print $1 }'
}

# stage_tree DIR - fill DIR with the initramfs contents.
stage_tree() {
	local dir=$1 name path i
	mkdir -p "$dir"/{bin,sbin,dev,proc,sys,tmp,etc,root,lib/modules}
	cp "$BUSYBOX" "$dir/bin/busybox"
	cp "$GUEST_BIN" "$dir/bin/viommu-guest"
	cp "$INIT" "$dir/init"
	chmod 0755 "$dir/init" "$dir/bin/busybox" "$dir/bin/viommu-guest"
	for i in "${!LOAD_ORDER[@]}"; do
		name=${LOAD_ORDER[$i]}
		path=${MOD_PATHS[$i]}
		case "$path" in
		*.xz) xz -dc "$KMODDIR/$path" >"$dir/lib/modules/$name.ko" ;;
		*) cp "$KMODDIR/$path" "$dir/lib/modules/$name.ko" ;;
		esac
		echo "$name" >>"$dir/lib/modules/load.order"
	done
	{
		echo "kernel=$KVER"
		echo "package=$(basename "$KDEB")"
		echo "modules=$MODLIST"
	} >"$dir/etc/viommu-image"
}

# pack_initramfs OUT - stage and pack a cpio newc + gzip archive to OUT.
pack_initramfs() {
	local out=$1 stage=$CACHE/stage
	rm -rf "$stage"
	stage_tree "$stage"
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

# build_image - vmlinuz + initrd.img + manifest, unless up to date.
build_image() {
	local out=$CACHE/image stamp
	mkdir -p "$out"
	stamp=$(input_stamp)
	if [ "$FORCE" = 0 ] && [ -f "$out/initrd.img" ] &&
		[ -f "$out/vmlinuz" ] &&
		[ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
		say "initramfs up to date ($out/initrd.img)"
		return 0
	fi
	say "packing initramfs: busybox, $(basename "$GUEST_BIN"), init," \
		"${#LOAD_ORDER[@]} modules"
	cp "$KDIR/boot/vmlinuz-$KVER" "$out/vmlinuz.tmp"
	mv "$out/vmlinuz.tmp" "$out/vmlinuz"
	pack_initramfs "$out/initrd.img"
	{
		echo "kernel_version=$KVER"
		echo "kernel_package=$(basename "$KDEB")"
		echo "modules=$MODLIST"
		echo "guest=$GUEST_BIN"
		echo "initrd_bytes=$(stat -c %s "$out/initrd.img")"
	} >"$out/manifest"
	echo "$stamp" >"$out/stamp"
	say "wrote $out/vmlinuz and $out/initrd.img" \
		"($(($(stat -c %s "$out/initrd.img") / 1024)) KiB)"
}

# main - fetch, unpack, check, resolve, pack.
main() {
	parse_args "$@"
	need_tools
	fetch_kernel
	fetch_busybox
	prune_cache
	unpack_kernel
	say "kernel $KVER"
	check_config
	resolve_modules
	build_image
	echo "image: $CACHE/image/vmlinuz $CACHE/image/initrd.img"
}

main "$@"
