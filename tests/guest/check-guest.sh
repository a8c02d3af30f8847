#!/usr/bin/env bash
#
# check-guest.sh - the "guest" stage of `make check`: every real-guest
# scenario, in as few boots as their needs allow, then the demo set
# against QEMU's own virtio-iommu-pci (the comparison peer, viommu-run
# --peer qemu); all of it on QEMU 11.1 with our devices behind the
# vfio-user door (vfio-user-pci; the peer there is QEMU's virtio-iommu with
# our DMA engine behind it, viommu-server --no-iommu over vfio-user) and
# again on the host's QEMU 7.2 behind the proxy door (x-pci-proxy-dev; the
# peer there is QEMU's virtio-iommu with QEMU's edu).
#
# Usage: tests/guest/check-guest.sh BUILD_DIR CACHE_DIR RESULT_FILE
#
#   BUILD_DIR    a configured meson build (viommu-server and the static
#                guest program are built there)
#   CACHE_DIR    guest image cache (kernel package, initramfs)
#   RESULT_FILE  gets one "ok - guest: NAME (...)" / "not ok - ..." line per
#                scenario (scripts/test-summary.py counts them); each names
#                the QEMU and the door, e.g. "(ours polled, QEMU 11.1
#                vfio-user, smp 2)", "(qemu-iommu+our-engine, QEMU 11.1
#                vfio-user, smp 1)" or "(qemu-iommu+edu, QEMU 7.2, smp 1)"
#
# Sets, per QEMU (labels ours-11, polled-11, peer-11; ours-7.2, polled-7.2,
# peer-7.2): "ours" runs every scenario of viommu-run's sets "all" and
# "blk" (the stock virtio_blk driver on our disk in four modes: vfio-user
# only, the proxy door has no interrupts) and a short bench on our
# devices, in as few boots as they allow (one with
# -smp 2, notify last in it as it leaves the device needing a reset;
# identity in one with iommu.passthrough=1); "polled" runs them again with
# the request queue polled; "peer" runs the demo set (blkfs included: on
# 11.1 our disk behind QEMU's virtio-iommu) against QEMU's
# virtio-iommu-pci (viommu-run skips notify there, faultlog on 11.1 and
# blkfs on 7.2, saying why).  QEMU 11.1 comes from the
# cache CACHE_DIR/../qemu-11.1, which scripts/qemu11.sh builds there once
# (mmdebstrap, about a minute; a failure is one failed result and skips
# the QEMU 11.1 sets).  Logs go to BUILD_DIR/guest-check/; the summaries
# are printed.  Environment: NO_DEPS=1 skips scripts/deps.sh guest;
# GUEST_QEMU11=0 skips the QEMU 11.1 sets (one skipped result says so);
# GUEST_QEMU72=0 skips the QEMU 7.2 sets the same way; GUEST_ARM64=0
# skips the arm64 set (below) the same way; GUEST_SEED
# (default 1) seeds the scenarios; GUEST_BENCH_MS (200).
# The arm64 set (label arm64-11): viommu-run --arch arm64, an arm64 guest
# on QEMU 11.1's qemu-system-aarch64 whose stock arm-smmu-v3 driver drives
# our SMMUv3 through a polled register frame (docs/SMMUV3-GUEST.md), one
# boot at stage 1 and one at stage 2 with two DMA engines (so isolation
# runs too; 10-20 s each under TCG); its
# image cache is CACHE_DIR/../guest-cache-arm64.  It uses the QEMU 11.1
# cache if it is complete (with GUEST_QEMU11=0 and no cache it is skipped).
# The VT-d set (label vtd-11): viommu-run --iommu vtd, the x86 guest on
# QEMU 11.1 whose stock intel-iommu driver drives our VT-d model through a
# polled register frame named by our DMAR (docs/VTD.md), one boot with the
# default features and one with caching mode, two DMA engines (about 15 s
# each under TCG); the same QEMU 11.1 rule; GUEST_VTD=0 skips it.
# Exit status: 0 if every scenario passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1
CACHE=$2
RES=$3
LOGS=$BUILD/guest-check
QEMU11_CACHE=$(dirname "$CACHE")/qemu-11.1
SEED=${GUEST_SEED:-1}
BENCH_MS=${GUEST_BENCH_MS:-200}
FAILED=0

# record_fail TEXT - one failed test line.
record_fail() {
	echo "not ok - guest: $*" >>"$RES"
	echo "  FAIL guest: $*"
	FAILED=1
}

# run_set LABEL ARGS... - one viommu-run invocation; its TAP goes to RES.
run_set() {
	local label=$1 tap=$LOGS/$1.tap log=$LOGS/$1.log rc
	shift
	rm -f "$tap"
	echo "  viommu-run $* (log: $log)"
	python3 "$ROOT/tools/viommu-run" --build "$BUILD" --no-build \
		--cache "$CACHE" --seed "$SEED" --tap "$tap" \
		--json "$LOGS/$label.json" "$@" >"$log" 2>&1
	rc=$?
	sed -n '/^== viommu-run summary/,$p' "$log" | sed 's/^/  /'
	if [ -s "$tap" ]; then
		# TAG names a variant of our devices in the result lines
		sed "s/(ours, /(ours${TAG:+ $TAG}, /" "$tap" >>"$RES"
	else
		record_fail "$label: viommu-run exit $rc and no results"
	fi
	if [ $rc -ne 0 ]; then
		FAILED=1
		echo "  --- $label failed; the log's last interesting lines:"
		grep -E 'FAIL|ERROR|error|VIOMMU-DMESG|server\|' "$log" |
			tail -n 60 | sed 's/^/  | /'
	fi
}

# record_skip TEXT - one skipped test line.
record_skip() {
	echo "ok - guest: $* # SKIP" >>"$RES"
	echo "  SKIP guest: $*"
}

# check_polled JSON WHAT - the polled run (WHAT: its QEMU and door) must
# have served requests by polling.
check_polled() {
	local n
	n=$(python3 - "$1" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
print(sum((b.get("server_stats") or {}).get("polled_requests", 0)
          for b in d["boots"]))
PY
)
	if [ -n "$n" ] && [ "$n" -gt 0 ]; then
		echo "ok - guest: polled run ($2) served $n requests by polling" \
			>>"$RES"
		echo "  polled run ($2): $n requests served by polling"
	else
		record_fail "polled run ($2): no request served by polling" \
			"(${n:-no JSON})"
	fi
}

# run_sets SUFFIX WHAT DOOR QEMU-OPTION... - the three sets on one QEMU:
# labels ours-SUFFIX, polled-SUFFIX (our devices through DOOR) and
# peer-SUFFIX (QEMU's devices); WHAT names the QEMU and door.
run_sets() {
	local sfx=$1 what=$2 door=$3
	shift 3
	echo "  == sets on $what"
	run_set "ours-$sfx" "$@" --door "$door" --scenario all,blk,bench \
		--bench-ms "$BENCH_MS"
	# Every scenario again with the request queue polled and kicks
	# suppressed (viommu-server --poll-rq-us): requests then reach the
	# device with no notification at all.
	TAG=polled run_set "polled-$sfx" "$@" --door "$door" --scenario all \
		--server-arg=--poll-rq-us=200
	check_polled "$LOGS/polled-$sfx.json" "$what"
	# QEMU's virtio-iommu-pci: with our DMA engines over vfio-user on
	# QEMU 11.1 (viommu-server --no-iommu), with edu on QEMU 7.2
	# (its blkfs: on 11.1 our virtio-blk disk behind QEMU's virtio-iommu,
	# the "mixed" stack; skipped on the proxy door)
	run_set "peer-$sfx" "$@" --peer qemu --scenario demo
}

# qemu11_sets - build the QEMU 11.1 cache (once) and run the sets on it.
qemu11_sets() {
	if [ "${GUEST_QEMU11:-1}" = 0 ]; then
		record_skip "QEMU 11.1 vfio-user sets (GUEST_QEMU11=0)"
		return 0
	fi
	echo "  scripts/qemu11.sh --cache $QEMU11_CACHE" \
		"(log: $LOGS/qemu11.log)"
	if ! bash "$ROOT/scripts/qemu11.sh" --cache "$QEMU11_CACHE" \
		>"$LOGS/qemu11.log" 2>&1; then
		sed 's/^/  | /' "$LOGS/qemu11.log" | tail -n 30
		record_fail "QEMU 11.1 cache: scripts/qemu11.sh failed" \
			"(the QEMU 11.1 sets did not run)"
		return 0
	fi
	sed 's/^/  /' "$LOGS/qemu11.log" | tail -n 3
	run_sets 11 "QEMU 11.1 vfio-user" vfio-user --qemu 11 \
		--qemu-cache "$QEMU11_CACHE"
}

# arm64_set - the arm64 guest and our SMMUv3 frame, on QEMU 11.1.
arm64_set() {
	local tap=$LOGS/arm64-11.tap log=$LOGS/arm64-11.log rc
	if [ "${GUEST_ARM64:-1}" = 0 ]; then
		record_skip "arm64 SMMUv3 frame set (GUEST_ARM64=0)"
		return 0
	fi
	if ! bash "$ROOT/scripts/qemu11.sh" --cache "$QEMU11_CACHE" --check \
		>/dev/null 2>&1; then
		if [ "${GUEST_QEMU11:-1}" = 0 ]; then
			record_skip "arm64 SMMUv3 frame set (no QEMU 11.1" \
				"cache, and GUEST_QEMU11=0 builds none)"
		else
			record_fail "arm64 set: no QEMU 11.1 cache (the arm64" \
				"set did not run)"
		fi
		return 0
	fi
	rm -f "$tap"
	echo "  == arm64 set: viommu-run --arch arm64 (log: $log)"
	python3 "$ROOT/tools/viommu-run" --arch arm64 --build "$BUILD" \
		--no-build --cache "$(dirname "$CACHE")/guest-cache-arm64" \
		--qemu-cache "$QEMU11_CACHE" --seed "$SEED" --tap "$tap" \
		--json "$LOGS/arm64-11.json" --scenario all --endpoints 2 \
		>"$log" 2>&1
	rc=$?
	sed -n '/^== viommu-run --arch arm64 summary/,$p' "$log" |
		sed 's/^/  /'
	if [ -s "$tap" ]; then
		cat "$tap" >>"$RES"
	else
		record_fail "arm64-11: viommu-run exit $rc and no results"
	fi
	if [ $rc -ne 0 ]; then
		FAILED=1
		grep -E 'FAIL|ERROR|error|VIOMMU-DMESG' "$log" | tail -n 40 |
			sed 's/^/  | /'
	fi
}

# vtd_set - the x86 guest and our VT-d frame, on QEMU 11.1.
vtd_set() {
	local tap=$LOGS/vtd-11.tap log=$LOGS/vtd-11.log rc
	if [ "${GUEST_VTD:-1}" = 0 ]; then
		record_skip "VT-d frame set (GUEST_VTD=0)"
		return 0
	fi
	if ! bash "$ROOT/scripts/qemu11.sh" --cache "$QEMU11_CACHE" --check \
		>/dev/null 2>&1; then
		if [ "${GUEST_QEMU11:-1}" = 0 ]; then
			record_skip "VT-d frame set (no QEMU 11.1 cache, and" \
				"GUEST_QEMU11=0 builds none)"
		else
			record_fail "vtd set: no QEMU 11.1 cache (the VT-d set" \
				"did not run)"
		fi
		return 0
	fi
	rm -f "$tap"
	echo "  == vtd set: viommu-run --iommu vtd (log: $log)"
	python3 "$ROOT/tools/viommu-run" --iommu vtd --build "$BUILD" \
		--no-build --cache "$CACHE" --qemu-cache "$QEMU11_CACHE" \
		--seed "$SEED" --tap "$tap" --json "$LOGS/vtd-11.json" \
		--scenario all --endpoints 2 >"$log" 2>&1
	rc=$?
	sed -n '/^== viommu-run --iommu vtd summary/,$p' "$log" |
		sed 's/^/  /'
	if [ -s "$tap" ]; then
		cat "$tap" >>"$RES"
	else
		record_fail "vtd-11: viommu-run exit $rc and no results"
	fi
	if [ $rc -ne 0 ]; then
		FAILED=1
		grep -E 'FAIL|ERROR|error|VIOMMU-DMESG' "$log" | tail -n 40 |
			sed 's/^/  | /'
	fi
}

# qemu72_sets - the sets on the host's QEMU 7.2 (x-pci-proxy-dev).
qemu72_sets() {
	if [ "${GUEST_QEMU72:-1}" = 0 ]; then
		record_skip "QEMU 7.2 proxy sets (GUEST_QEMU72=0)"
		return 0
	fi
	if ! command -v qemu-system-x86_64 >/dev/null; then
		record_fail "no qemu-system-x86_64 (QEMU 7.2) on PATH"
		return 0
	fi
	run_sets 7.2 "QEMU 7.2 proxy" proxy --qemu 7.2
}

main() {
	mkdir -p "$LOGS" "$(dirname "$RES")"
	: >>"$RES"
	if [ -z "${NO_DEPS:-}" ] && ! bash "$ROOT/scripts/deps.sh" guest; then
		record_fail "packages for the guest stage missing"
		return 1
	fi
	if ! ninja -C "$BUILD" tools/viommu-server guest/viommu-guest; then
		record_fail "building viommu-server and the guest program"
		return 1
	fi
	qemu11_sets
	arm64_set
	vtd_set
	qemu72_sets
	return $FAILED
}

main
