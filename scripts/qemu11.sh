#!/usr/bin/env bash
#
# qemu11.sh - build, once, a cache holding QEMU 11.1 (Debian
# trixie-backports) that runs on this Debian 12 host without installing it.
#
# Usage: scripts/qemu11.sh [--cache DIR] [--print | --check] [--force]
#
#   --cache DIR  the cache (default: build/qemu-11.1).  It holds root/ (a
#                minimal Debian trixie tree with qemu-system-x86 and
#                qemu-system-arm from trixie-backports), the wrappers
#                qemu-system-x86_64 and qemu-system-aarch64, the stamp
#                file stamp (the QEMU version and the cache's format;
#                written last) and mmdebstrap.log.
#   --print      print only the wrapper's path on stdout (building the
#                cache first if needed; progress goes to stderr)
#   --check      exit 0 if the cache is complete, 1 if not; builds nothing
#   --force      build again even if the cache is complete
#   --help       this text
#
# The root is made by mmdebstrap (Debian 12 package; scripts/deps.sh guest)
# in a temporary directory inside the cache and renamed to root/ only once
# it is complete and its QEMU answers --version and knows vfio-user-pci
# (both the x86_64 and the aarch64 one), so an interrupted build never
# leaves a half root that looks done.  It takes 25-90 s and downloads
# about 54 MiB (x86) plus the Arm system emulators; mmdebstrap needs root (or
# unprivileged user namespaces).  A second run finds the stamp, prints
# "cached" and costs nothing.  A lock (flock on DIR/.lock) serialises
# concurrent runs.
#
# The wrapper runs the root's QEMU through the root's own dynamic loader,
# with no chroot (host paths, sockets and inherited fds just work):
#   QEMU_MODULE_DIR=ROOT/usr/lib/x86_64-linux-gnu/qemu
#   ROOT/lib64/ld-linux-x86-64.so.2 --library-path ROOT/lib/x86_64-linux-gnu:
#     ROOT/usr/lib/x86_64-linux-gnu:ROOT/usr/lib/x86_64-linux-gnu/qemu
#     ROOT/usr/bin/qemu-system-x86_64 -L ROOT/usr/share/qemu
#     -L ROOT/usr/share/seabios "$@"
# (q35 + -kernel needs bios-256k.bin from share/seabios, kvmvapic.bin and
# linuxboot_dma.bin from share/qemu).  qemu-system-aarch64 is the same
# with ROOT/usr/bin/qemu-system-aarch64 (the arm64 guest boots with
# -kernel and a device tree, no firmware; docs/SMMUV3-GUEST.md).  QEMU would otherwise fall back to
# the host's own /usr/lib/x86_64-linux-gnu/qemu modules and /usr/share/qemu
# files (those of QEMU 7.2): loading a 7.2 module aborts QEMU 11.1 ("Only
# modules from the same build can be loaded"), e.g. on `-device help`.  So
# the root also gets the symlink usr/lib/x86_64-linux-gnu/qemu-bundle ->
# ../../..: QEMU looks for "qemu-bundle" beside its executable (here the
# loader) and then takes every built-in directory (modules, data,
# firmware) from inside it, i.e. from the root.  Nothing on the host
# changes.
#
# Exit status: 0 when the cache is ready (--check: complete), 1 on failure
# (or, with --check, incomplete), 2 on a bad command line.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$TOP/build/qemu-11.1
MODE=build
FORCE=0
SUITE=trixie
MIRROR=http://deb.debian.org/debian
WRAPPER_NAME=qemu-system-x86_64
# Every QEMU binary the cache wraps (each gets a wrapper of its own name).
WRAPPERS="qemu-system-x86_64 qemu-system-aarch64"
# The QEMU we want: vfio-user-pci came in 10.1; the door is built for 11.1.
WANT=11.1
# Bump when the cache's layout changes: an older cache is then rebuilt.
# 2: qemu-system-arm and the qemu-system-aarch64 wrapper added.
FORMAT=2

# say TEXT... - a progress line (stderr: stdout is for --print).
say() {
	echo "qemu11: $*" >&2
}

# die TEXT... - an error line, exit 1.
die() {
	echo "qemu11: error: $*" >&2
	exit 1
}

# usage [STATUS] - the header comment as help text.
usage() {
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

# bad_usage TEXT... - a usage error, exit 2.
bad_usage() {
	echo "qemu11: $*" >&2
	echo "usage: scripts/qemu11.sh [--cache DIR] [--print | --check]" \
		"[--force] [--help]" >&2
	exit 2
}

# parse_args ARGS... - set CACHE, MODE, FORCE.
parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--cache)
			if [ $# -lt 2 ] || [ -z "$2" ]; then
				bad_usage "--cache needs a directory"
			fi
			CACHE=$2
			shift 2
			;;
		--cache=*) CACHE=${1#--cache=}; shift ;;
		--print) MODE=print; shift ;;
		--check) MODE=check; shift ;;
		--force) FORCE=1; shift ;;
		-h | --help) usage 0 ;;
		*) bad_usage "unknown argument '$1'" ;;
		esac
	done
	case "$CACHE" in
	/*) ;;
	*) CACHE=$PWD/$CACHE ;;
	esac
}

# stamp_version - print the QEMU version the stamp records ("" if none).
stamp_version() {
	sed -n 's/^qemu_version=//p' "$CACHE/stamp" 2>/dev/null | head -n 1
}

# complete - whether the cache holds a finished root, wrapper and stamp.
complete() {
	[ -s "$CACHE/stamp" ] && [ -n "$(stamp_version)" ] &&
		grep -qx "format=$FORMAT" "$CACHE/stamp" &&
		[ -x "$CACHE/$WRAPPER_NAME" ] &&
		[ -x "$CACHE/qemu-system-aarch64" ] &&
		[ -x "$CACHE/root/usr/bin/qemu-system-x86_64" ] &&
		[ -x "$CACHE/root/usr/bin/qemu-system-aarch64" ] &&
		[ -e "$CACHE/root/lib64/ld-linux-x86-64.so.2" ] &&
		[ -L "$CACHE/root/usr/lib/x86_64-linux-gnu/qemu-bundle" ]
}

# write_wrapper DIR ROOTNAME [BINARY] - write DIR/BINARY (default
# qemu-system-x86_64), which runs DIR/ROOTNAME's QEMU BINARY through that
# root's loader (paths found from the wrapper's own location, so the cache
# may move).
write_wrapper() {
	local dir=$1 rootname=$2 bin=${3:-qemu-system-x86_64} tmp
	tmp=$(mktemp "$dir/.wrapper.XXXXXX")
	cat >"$tmp" <<EOF
#!/bin/sh
# QEMU from trixie-backports, run through its root's own dynamic loader (no
# chroot).  Written by scripts/qemu11.sh; see its header.
R=\$(dirname "\$(readlink -f "\$0")")/$rootname
L=\$R/usr/lib/x86_64-linux-gnu
QEMU_MODULE_DIR=\$L/qemu exec "\$R/lib64/ld-linux-x86-64.so.2" \\
	--library-path "\$R/lib/x86_64-linux-gnu:\$L:\$L/qemu" \\
	"\$R/usr/bin/$bin" \\
	-L "\$R/usr/share/qemu" -L "\$R/usr/share/seabios" "\$@"
EOF
	chmod 755 "$tmp"
	mv -f "$tmp" "$dir/$bin"
}

# write_wrappers DIR ROOTNAME - one wrapper per binary in WRAPPERS.
write_wrappers() {
	local bin
	for bin in $WRAPPERS; do
		write_wrapper "$1" "$2" "$bin"
	done
}

# show_cmd WORD... - print the words as a command line (quoted if needed).
show_cmd() {
	local w out="" q="'"
	for w in "$@"; do
		case "$w" in
		*[!A-Za-z0-9_./:=+,@-]*) out="$out $q${w//$q/$q\\$q$q}$q" ;;
		*) out="$out $w" ;;
		esac
	done
	printf '%s\n' "${out# }"
}

# version_of WRAPPER - print QEMU's version ("11.1.3"); fail if none.
version_of() {
	local out
	out=$("$1" --version 2>&1 </dev/null) || {
		printf '%s\n' "$out" | sed 's/^/  | /' >&2
		return 1
	}
	printf '%s\n' "$out" |
		sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' |
		head -n 1 | grep .
}

# remove_tree DIR - remove a (possibly partial) root, never crossing into
# a file system mounted inside it (mmdebstrap mounts /proc, /dev, /sys).
remove_tree() {
	[ -e "$1" ] || return 0
	rm -rf --one-file-system "$1" 2>/dev/null || {
		say "cannot remove $1 completely (a mount left inside it?)"
		return 1
	}
}

TMP_ROOT=""
MM_PID=""
# on_signal - SIGINT/SIGTERM/SIGHUP: stop mmdebstrap (it unmounts what it
# mounted in the root and exits), then exit; cleanup removes the root.
on_signal() {
	trap '' INT TERM HUP
	if [ -n "$MM_PID" ]; then
		say "interrupted: stopping mmdebstrap"
		kill -TERM "$MM_PID" 2>/dev/null || true
		wait "$MM_PID" 2>/dev/null || true
	fi
	exit 130
}

# cleanup - on exit: remove the temporary root of an unfinished build.
cleanup() {
	if [ -n "$TMP_ROOT" ]; then
		remove_tree "$TMP_ROOT" || true
		rm -f "$CACHE"/.wrapper.*
	fi
}

# lock - take the cache's lock (waiting for another build to finish).
lock() {
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		say "another qemu11.sh is building $CACHE: waiting for it"
		flock 9
	fi
}

# run_mmdebstrap DIR - make the trixie root with QEMU from backports in DIR.
run_mmdebstrap() {
	local dir=$1 log=$CACHE/mmdebstrap.log
	local cmd=(mmdebstrap --variant=apt
		"--aptopt=APT::Default-Release \"$SUITE-backports\""
		--include=qemu-system-x86,qemu-system-arm "$SUITE" "$dir"
		"deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-backports main")
	say "building QEMU $WANT from Debian $SUITE-backports in $CACHE"
	say "(mmdebstrap: about 25-90 s, downloads about 54 MiB plus the" \
		"Arm emulators; log:" \
		"$log)"
	say "running: $(show_cmd "${cmd[@]}")"
	# in the background, so that a signal reaches on_signal at once
	"${cmd[@]}" >"$log" 2>&1 </dev/null &
	MM_PID=$!
	if ! wait "$MM_PID"; then
		MM_PID=""
		sed 's/^/  | /' "$log" | tail -n 25 >&2
		if [ "$(id -u)" -ne 0 ]; then
			die "mmdebstrap failed (run as root: it needs root, or" \
				"unprivileged user namespaces)"
		fi
		die "mmdebstrap failed (network? deb.debian.org must be" \
			"reachable); log: $log"
	fi
	MM_PID=""
	grep -E '^I: (success|downloading|extracting|installing)' "$log" |
		sed 's/^/  /' >&2 || true
}

# build - make the root in a temporary directory, check it, then move it
# into place and write the wrapper and, last, the stamp.
build() {
	local name version pkg help
	command -v mmdebstrap >/dev/null 2>&1 ||
		die "mmdebstrap is not installed (run: bash scripts/deps.sh guest)"
	command -v flock >/dev/null 2>&1 || die "flock (util-linux) missing"
	mkdir -p "$CACHE"
	lock
	if [ "$FORCE" = 0 ] && complete; then
		return 0 # another run finished it while we waited
	fi
	for name in "$CACHE"/.root.*; do
		[ -d "$name" ] || continue
		say "removing the leftover of an interrupted build: $name"
		remove_tree "$name" || die "remove $name by hand"
	done
	rm -f "$CACHE/stamp"
	TMP_ROOT=$(mktemp -d "$CACHE/.root.XXXXXX")
	trap cleanup EXIT
	trap on_signal INT TERM HUP
	run_mmdebstrap "$TMP_ROOT"
	for name in $WRAPPERS; do
		[ -x "$TMP_ROOT/usr/bin/$name" ] ||
			die "the root has no usr/bin/$name"
	done
	ln -sfn ../../.. "$TMP_ROOT/usr/lib/x86_64-linux-gnu/qemu-bundle"
	name=$(basename "$TMP_ROOT")
	write_wrappers "$CACHE" "$name"
	version=$(version_of "$CACHE/$WRAPPER_NAME") ||
		die "the new QEMU does not run through its loader"
	case "$version" in
	"$WANT" | "$WANT".*) ;;
	*) say "warning: got QEMU $version, not $WANT ($SUITE-backports moved on)" ;;
	esac
	# (-device X,help exits 0 even for an unknown X: read what it says)
	help=$("$CACHE/$WRAPPER_NAME" -machine none -nodefaults \
		-device vfio-user-pci,help 2>&1 </dev/null || true)
	case "$help" in
	*"vfio-user-pci options:"*) ;;
	*) die "QEMU $version has no vfio-user-pci device" ;;
	esac
	version_of "$CACHE/qemu-system-aarch64" >/dev/null ||
		die "the new qemu-system-aarch64 does not run through its loader"
	help=$("$CACHE/qemu-system-aarch64" -machine none -nodefaults \
		-device vfio-user-pci,help 2>&1 </dev/null || true)
	case "$help" in
	*"vfio-user-pci options:"*) ;;
	*) die "qemu-system-aarch64 $version has no vfio-user-pci device" ;;
	esac
	pkg=$(dpkg-query --admindir="$TMP_ROOT/var/lib/dpkg" -W \
		-f='${Version}' qemu-system-x86 2>/dev/null || true)
	remove_tree "$CACHE/root" || die "remove $CACHE/root by hand"
	mv "$TMP_ROOT" "$CACHE/root"
	TMP_ROOT=""
	write_wrappers "$CACHE" root
	{
		echo "qemu_version=$version"
		echo "format=$FORMAT"
		echo "package=qemu-system-x86 $pkg"
		echo "package=qemu-system-arm $(dpkg-query \
			--admindir="$CACHE/root/var/lib/dpkg" -W -f='${Version}' \
			qemu-system-arm 2>/dev/null || true)"
		echo "source=$SUITE-backports ($MIRROR)"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$CACHE/.stamp.tmp"
	mv -f "$CACHE/.stamp.tmp" "$CACHE/stamp"
	say "built QEMU $version ($pkg): $(du -sh "$CACHE/root" | cut -f1)" \
		"in $CACHE/root"
}

main() {
	parse_args "$@"
	case "$MODE" in
	check)
		if complete; then
			say "complete: $CACHE/$WRAPPER_NAME (QEMU $(stamp_version))"
			exit 0
		fi
		say "not built: $CACHE (make it: scripts/qemu11.sh)"
		exit 1
		;;
	esac
	if [ "$FORCE" = 0 ] && complete; then
		say "cached: $CACHE/$WRAPPER_NAME (QEMU $(stamp_version))"
	else
		build
		say "ready: $CACHE/$WRAPPER_NAME (QEMU $(stamp_version))"
	fi
	if [ "$MODE" = print ]; then
		echo "$CACHE/$WRAPPER_NAME"
	fi
}

main "$@"
