#!/usr/bin/env bash
# shellcheck disable=SC2034 # the PKGS_* lists are read through ${!var}
#
# deps.sh - install the Debian (bookworm) packages viommu needs.
#
# Usage: scripts/deps.sh [PURPOSE...]      (default: build)
#        scripts/deps.sh --list [PURPOSE...]  print the packages, install nothing
#
# Packages are grouped by purpose below; `make check` asks for "build check"
# (its guest stage for "guest"), `make demo` for "build" and "guest",
# `make bench` for "build guest plot".  A package that is already
# installed is skipped, so a second run does nothing and costs no network:
# `apt-get update` runs once, and only when something is missing.  Works
# unattended (CI=true, no stdin).  Needs root (or password-less sudo) only
# when something has to be installed.
#
# Later issues add their packages to the matching list here (and to the
# table in README.md), e.g. qemu-system-x86 and busybox-static for the
# real-guest demo.
set -euo pipefail

# --- package lists, one per purpose ---------------------------------------
# build: compile the libraries, tools, examples and benchmarks; run the tests
# of the normal build.
PKGS_build="build-essential meson ninja-build pkg-config python3"
# check: the extra stages of `make check` - clang + libFuzzer runtime for the
# fuzz stage, valgrind for the leak stage (ASan/UBSan come with gcc).
PKGS_check="clang libclang-rt-14-dev valgrind"
# plot: figures from benchmark JSON (docs/PERFORMANCE.md).  used by `make bench`.
PKGS_plot="gnuplot-nox"
# guest: the real-guest demo and tests (`make demo`, the check stage
# "guest"): QEMU 7.2 (TCG, x-pci-proxy-dev, edu), busybox for the
# initramfs, xz for the kernel modules, cpio to pack the initramfs;
# mmdebstrap (with gpg and mount, which it uses) makes the QEMU 11.1 cache
# (scripts/qemu11.sh: a trixie root with trixie-backports' QEMU, run from
# the cache, so nothing of it is installed on the host).  The guest kernel
# is not installed either: guest/build-image.sh fetches it with
# `apt-get download` into a cache.  The arm64 guest (viommu-run --arch
# arm64, docs/SMMUV3-GUEST.md) adds the cross compiler for the static guest
# program and dtc for its device tree; its kernel and busybox are fetched
# by guest/build-image.sh --arch arm64 (scratch apt state, nothing
# installed) and qemu-system-aarch64 comes from the QEMU 11.1 cache.
PKGS_guest="qemu-system-x86 busybox-static xz-utils cpio mmdebstrap gpg mount
gcc-aarch64-linux-gnu libc6-dev-arm64-cross device-tree-compiler"
# ---------------------------------------------------------------------------

PURPOSES="build check plot guest"

die() {
	echo "deps.sh: $*" >&2
	exit 1
}

# packages_for PURPOSE... - print the packages of the given purposes.
packages_for() {
	local p var
	for p in "$@"; do
		case " $PURPOSES " in
		*" $p "*) ;;
		*) die "unknown purpose '$p' (known: $PURPOSES)" ;;
		esac
		var="PKGS_$p"
		echo "${!var}"
	done
}

# is_installed PKG - whether dpkg has PKG fully installed.
is_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = \
		"installed" ]
}

# as_root CMD... - run CMD as root: directly, or through sudo -n.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "need root to run: $*"
	fi
}

main() {
	local list_only=0 pkgs missing="" p
	if [ "${1:-}" = "--list" ]; then
		list_only=1
		shift
	fi
	[ $# -gt 0 ] || set -- build
	pkgs=$(packages_for "$@" | tr ' ' '\n' | sed '/^$/d' | sort -u |
		tr '\n' ' ')
	pkgs=${pkgs% }
	if [ $list_only -eq 1 ]; then
		echo "$pkgs"
		return 0
	fi
	command -v dpkg-query >/dev/null 2>&1 ||
		die "not a Debian system; install by hand: $pkgs"
	for p in $pkgs; do
		is_installed "$p" || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		echo "deps: all present for '$*': $pkgs"
		return 0
	fi
	echo "deps: installing:$missing"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
	# shellcheck disable=SC2086 # word splitting of the package list wanted
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $missing </dev/null
	for p in $missing; do
		is_installed "$p" || die "$p did not install"
	done
	echo "deps: installed:$missing"
}

main "$@"
