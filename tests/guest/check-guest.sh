#!/usr/bin/env bash
#
# check-guest.sh - the "guest" stage of `make check`: every real-guest
# scenario, in as few boots as their needs allow, then the demo set
# against QEMU's own virtio-iommu + edu (the comparison peer).
#
# Usage: tests/guest/check-guest.sh BUILD_DIR CACHE_DIR RESULT_FILE
#
#   BUILD_DIR    a configured meson build (viommu-server and the static
#                guest program are built there)
#   CACHE_DIR    guest image cache (kernel package, initramfs)
#   RESULT_FILE  gets one "ok - guest: NAME (...)" / "not ok - ..." line per
#                scenario (scripts/test-summary.py counts them)
#
# Boots (tools/viommu-run plans them): one with -smp 2 for probe, dma,
# readonly, unmapped, isolation, rebind, stress, twocpu and a short bench;
# one with iommu.passthrough=1 for identity; one against QEMU's devices for
# the demo set.  Logs go to BUILD_DIR/guest-check/; the summaries are
# printed.  Environment: NO_DEPS=1 skips scripts/deps.sh guest;
# GUEST_SEED (default 1) seeds the scenarios; GUEST_BENCH_MS (200).
# Exit status: 0 if every scenario passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1
CACHE=$2
RES=$3
LOGS=$BUILD/guest-check
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

# check_polled() - the polled run must have served requests by polling.
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
		echo "ok - guest: polled run served $n requests by polling" >>"$RES"
		echo "  polled run: $n requests served by polling"
	else
		record_fail "polled run: no request served by polling (${n:-no JSON})"
	fi
}

main() {
	mkdir -p "$LOGS" "$(dirname "$RES")"
	: >>"$RES"
	if [ -z "${NO_DEPS:-}" ] && ! bash "$ROOT/scripts/deps.sh" guest; then
		record_fail "packages for the guest stage missing"
		return 1
	fi
	command -v qemu-system-x86_64 >/dev/null ||
		{ record_fail "no qemu-system-x86_64"; return 1; }
	if ! ninja -C "$BUILD" tools/viommu-server guest/viommu-guest; then
		record_fail "building viommu-server and the guest program"
		return 1
	fi
	run_set ours --scenario all,bench --bench-ms "$BENCH_MS"
	# Every scenario again with the request queue polled and kicks
	# suppressed (viommu-server --poll-rq-us): requests then reach the
	# device with no notification at all.
	TAG=polled run_set polled --scenario all --server-arg=--poll-rq-us=200
	check_polled "$LOGS/polled.json"
	run_set peer --peer qemu --scenario demo
	return $FAILED
}

main
