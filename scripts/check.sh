#!/usr/bin/env bash
#
# check.sh - the stages of `make check`, then one summary of every test.
#
# Usage: scripts/check.sh [STAGE...]    (default: all, in this order)
#
#   werror    gcc build with warnings as errors; meson test, every suite
#   asan      gcc build with -Db_sanitize=address,undefined; the unit,
#             conformance and fuzz suites with halting UBSan and
#             leak-checking ASan
#   release   gcc -O3 release build with warnings as errors (the build
#             PERFORMANCE.md's figures come from: -O3 finds warnings -O2
#             does not); its bench suite
#   valgrind  the werror build's unit suite under valgrind memcheck
#             (definite and indirect leaks are errors)
#   fuzz      clang build with libFuzzer (+ASan/UBSan, library instrumented
#             for coverage); each fuzz target runs from a temporary copy of
#             its committed corpus, FUZZ_PAR at once, the stage taking
#             FUZZ_TIME seconds per target (the fastest targets less, the
#             slowest more: fuzz_time())
#   install   DESTDIR install of the werror build, then
#             scripts/check-install.sh (pkg-config consumer, exports)
#   guest     the real-guest scenarios: a Debian 6.12 kernel under QEMU
#             (TCG) through viommu-server, built in the werror build
#             (tests/guest/check-guest.sh: on QEMU 11.1 over vfio-user and
#             on QEMU 7.2 over x-pci-proxy-dev, five boots each - ours,
#             ours with the request queue polled, QEMU's devices - one
#             test per scenario; the guest image is cached in
#             CHECK_DIR/guest-cache, QEMU 11.1 in CHECK_DIR/qemu-11.1;
#             GUEST_QEMU11=0 leaves the QEMU 11.1 sets out)
#
# Every stage runs even when an earlier one failed (a stage that needs the
# werror build records a failure if it is missing); the last line printed is
# scripts/test-summary.py's "N passed, N failed".  Exit status: non-zero if
# anything failed.
#
# Environment: CHECK_DIR (build-ci) holds every build directory and the
# results; FUZZ_TIME (30) seconds of the fuzz stage per fuzz target on
# average; FUZZ_PAR (2 with two CPUs or more, else 1) fuzz targets run at
# once, each for FUZZ_PAR times its share; FUZZ_RUNS (100000000) caps the
# executions per target; FUZZ_FLAGS (-entropic=0) are libFuzzer options
# added to every fuzz run.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${CHECK_DIR:-build-ci}
RES=$OUT/results
FUZZ_TIME=${FUZZ_TIME:-30}
FUZZ_RUNS=${FUZZ_RUNS:-100000000}
# -entropic=0: the entropic scheduler's per-feature bookkeeping was most of
# a short run's time, for no more coverage in 30 s (docs/FUZZING.md)
FUZZ_FLAGS=${FUZZ_FLAGS--entropic=0}
FUZZ_PAR=${FUZZ_PAR:-$(($(nproc) >= 2 ? 2 : 1))}
ALL_STAGES="werror asan release valgrind fuzz install guest"
VALGRIND="valgrind --leak-check=full --error-exitcode=1"
VALGRIND="$VALGRIND --errors-for-leak-kinds=definite,indirect"
ASAN_OPTS=detect_leaks=1
UBSAN_OPTS=halt_on_error=1:print_stacktrace=1
SUMMARY_ARGS=()
WERROR_BUILD=unknown # ok or failed once the werror stage has built
STAGE_NUM=0
STAGE_COUNT=0

# header TEXT... - print a stage banner.
header() {
	STAGE_NUM=$((STAGE_NUM + 1))
	local rule='=================================================================='
	printf '\n%s\n== [%d/%d] %s\n%s\n' "$rule" "$STAGE_NUM" "$STAGE_COUNT" \
		"$*" "$rule"
}

# record ok|fail FILE NAME - append one result line to a stage result file.
record() {
	if [ "$1" = ok ]; then
		echo "ok - $3" >>"$2"
		echo "  PASS $3"
	else
		echo "not ok - $3" >>"$2"
		echo "  FAIL $3"
	fi
}

# summarize LABEL PATH - count PATH in the final summary.
summarize() {
	SUMMARY_ARGS+=(--stage "$1=$2")
}

# setup_dir DIR OPTION... - configure a meson build directory (reusing it
# when it exists, wiping it when reconfiguring fails).
setup_dir() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@" && return 0
		echo "  reconfiguring $dir failed: wiping it"
		rm -rf "$dir"
	fi
	meson setup "$dir" "$@"
}

# build_dir LABEL DIR OPTION... - configure and build; record both steps.
build_dir() {
	local label=$1 dir=$2 res=$RES/$1-build.tap
	shift 2
	summarize "$label-build" "$res"
	if ! setup_dir "$dir" "$@"; then
		record fail "$res" "$label: meson setup $*"
		return 1
	fi
	if ! ninja -C "$dir" -k 0; then
		record fail "$res" "$label: build"
		return 1
	fi
	record ok "$res" "$label: build ($*)"
}

# run_meson_test LABEL DIR LOGBASE MESON-TEST-ARGS... - run meson test and
# count its log (removed first so a run that dies counts as missing).
run_meson_test() {
	local label=$1 dir=$2 logbase=$3
	shift 3
	rm -f "$dir/meson-logs/$logbase".json "$dir/meson-logs/$logbase"-*.json
	meson test -C "$dir" --no-rebuild --print-errorlogs \
		--logbase "$logbase" "$@"
	local log=$dir/meson-logs/$logbase.json f
	# with --wrap, meson names the log LOGBASE-WRAPPER.json
	for f in "$dir/meson-logs/$logbase"-*.json; do
		[ -f "$f" ] && log=$f
	done
	summarize "$label" "$log"
}

stage_werror() {
	header "werror: gcc build, warnings as errors; meson test (all suites)"
	WERROR_BUILD=failed
	build_dir werror "$OUT/werror" --werror || return 0
	WERROR_BUILD=ok
	run_meson_test werror "$OUT/werror" testlog
}

stage_asan() {
	header "asan: gcc build with ASan+UBSan; unit, conformance, fuzz suites"
	build_dir asan "$OUT/asan" -Db_sanitize=address,undefined || return 0
	ASAN_OPTIONS=$ASAN_OPTS UBSAN_OPTIONS=$UBSAN_OPTS \
		run_meson_test asan "$OUT/asan" testlog \
		--suite unit --suite conformance --suite fuzz \
		--timeout-multiplier 3
}

stage_release() {
	header "release: gcc -O3 release build, warnings as errors; bench suite"
	build_dir release "$OUT/release" --werror --buildtype=release ||
		return 0
	run_meson_test release "$OUT/release" testlog --suite bench
}

# need_werror_build LABEL - make sure the werror build is configured and
# up to date (for stages run without the werror stage); record a failure in
# LABEL's result file if it is not.
need_werror_build() {
	local res=$RES/$1.tap
	[ "$WERROR_BUILD" = ok ] && return 0
	if [ "$WERROR_BUILD" = unknown ] &&
		{ [ -f "$OUT/werror/build.ninja" ] ||
		setup_dir "$OUT/werror" --werror; } && ninja -C "$OUT/werror"
	then
		WERROR_BUILD=ok
		return 0
	fi
	WERROR_BUILD=failed
	summarize "$1" "$res"
	record fail "$res" "$1: needs a working werror build"
	return 1
}

stage_valgrind() {
	header "valgrind: unit suite of the werror build under memcheck"
	need_werror_build valgrind || return 0
	run_meson_test valgrind "$OUT/werror" memcheck --suite unit \
		--timeout-multiplier 10 --wrap="$VALGRIND"
}

# fuzz_targets DIR - the libFuzzer executables of a build directory (the
# fast check level; the _full ones run in `make fuzz-long`, and their
# checks run over the corpus in the fuzz suite's replay programs).
fuzz_targets() {
	meson introspect --targets "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    n = t["name"]
    if t["type"] == "executable" and n.startswith("fuzz_") \
            and not n.endswith("_replay") and not n.endswith("_full"):
        print(n, t["filename"][0])'
}

# fuzz_time NAME - seconds for one target: the stage's time (FUZZ_TIME per
# target) re-split by speed, in sixths of FUZZ_TIME, times FUZZ_PAR (that
# many run at once).  A target gets what it needs for 10^5 executions at
# the rate it reaches in CI (docs/FUZZING.md, "Executions per second"),
# with a margin (from the green CI run of 2026-12-08), except the seven
# slowest per execution (fuzz_virtio_iommu, fuzz_lpae, fuzz_vtd_qi,
# fuzz_virtio_net, fuzz_core, fuzz_virtio_blk, fuzz_net_socket), which
# share what is left and stay short of it; a target not listed gets six.
# The 18 weights add up to 106 sixths: 20 s of wall time more than the
# 17 x FUZZ_TIME of one lane the stage took before.
fuzz_time() {
	local w=6
	case $1 in
	fuzz_virtqueue | fuzz_bench_opts | fuzz_net_gso) w=1 ;;
	fuzz_mpqemu | fuzz_virtio_iommu_table | fuzz_vtd_walk) w=4 ;;
	fuzz_regframe) w=5 ;;
	fuzz_vtd_qi | fuzz_smmuv3_cmdq) w=6 ;;
	fuzz_lpae | fuzz_virtio_net | fuzz_virtio_blk) w=7 ;;
	fuzz_net_socket) w=8 ;;
	fuzz_core | fuzz_virtio_iommu | fuzz_vfio_user) w=9 ;;
	fuzz_smmuv3_config | fuzz_regframe_vtd) w=9 ;;
	esac
	echo $(((FUZZ_TIME * w * FUZZ_PAR + 3) / 6))
}

# fuzz_one RES NAME EXE - run one libFuzzer target from a corpus copy.
fuzz_one() {
	local res=$1 name=$2 exe=$3 work=$OUT/fuzz/run/$2
	local corpus=tests/fuzz/corpus/$2 execs rc t
	t=$(fuzz_time "$name")
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts"
	[ -d "$corpus" ] && cp -R "$corpus/." "$work/corpus/"
	echo "  $name: ${t}s from $(find "$work/corpus" -type f |
		wc -l) corpus files (copy in $work)"
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of options
	ASAN_OPTIONS=$ASAN_OPTS UBSAN_OPTIONS=$UBSAN_OPTS \
		timeout $((t * 2 + 120)) "$exe" \
		-max_total_time="$t" -runs="$FUZZ_RUNS" -timeout=25 \
		-rss_limit_mb=4096 -print_final_stats=1 $FUZZ_FLAGS \
		-artifact_prefix="$work/artifacts/" "$work/corpus" \
		>"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	if [ $rc -eq 0 ]; then
		grep -E '^(Done|stat::(number_of_executed_units|peak_rss))' \
			"$work/log" | sed 's/^/    /'
		record ok "$res" \
			"fuzz: $name, ${t}s libFuzzer (${execs:-?} execs)"
		return 0
	fi
	tail -n 60 "$work/log" | sed 's/^/    | /'
	echo "  artifacts: $(find "$work/artifacts" -type f -printf '%f ')"
	echo "  reproduce: $exe $work/artifacts/<file>"
	record fail "$res" "fuzz: $name, libFuzzer exit $rc (log $work/log)"
}

stage_fuzz() {
	local res=$RES/fuzz.tap name exe t n=0 running=0
	header "fuzz: clang + libFuzzer + ASan/UBSan, ${FUZZ_TIME}s per target on average"
	# The whole tree is compiled with coverage instrumentation so that
	# libFuzzer sees the library's branches, not only the target's.
	CC=clang build_dir fuzz "$OUT/fuzz" -Dfuzz=enabled \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link || return 0
	summarize fuzz "$res"
	mkdir -p "$OUT/fuzz/run"
	# FUZZ_PAR at once, the longest first (so the lanes end together);
	# each target's lines are printed whole when it ends
	while read -r t name exe; do
		[ -n "$name" ] || continue
		n=$((n + 1))
		if [ "$running" -ge "$FUZZ_PAR" ]; then
			wait -n
			running=$((running - 1))
		fi
		{
			fuzz_one "$res" "$name" "$exe" >"$OUT/fuzz/run/$name.out" 2>&1
			cat "$OUT/fuzz/run/$name.out"
		} &
		running=$((running + 1))
	done < <(fuzz_targets "$OUT/fuzz" | while read -r name exe; do
		echo "$(fuzz_time "$name") $name $exe"
	done | sort -s -k1,1nr)
	wait
	[ $n -gt 0 ] || record fail "$res" "fuzz: no libFuzzer target found"
}

stage_install() {
	local res=$RES/install.tap
	header "install: DESTDIR install, pkg-config consumer, exported symbols"
	need_werror_build install || return 0
	summarize install "$res"
	bash scripts/check-install.sh "$OUT/werror" "$OUT/install" "$res"
}

stage_guest() {
	local res=$RES/guest.tap
	header "guest: Linux under QEMU through our IOMMU (every scenario)"
	need_werror_build guest || return 0
	summarize guest "$res"
	bash tests/guest/check-guest.sh "$OUT/werror" "$OUT/guest-cache" "$res"
}

main() {
	local stages=("$@") s
	[ ${#stages[@]} -gt 0 ] || read -r -a stages <<<"$ALL_STAGES"
	for s in "${stages[@]}"; do
		case " $ALL_STAGES " in
		*" $s "*) ;;
		*)
			echo "check.sh: unknown stage '$s' ($ALL_STAGES)" >&2
			exit 2
			;;
		esac
	done
	STAGE_COUNT=${#stages[@]}
	rm -rf "$RES"
	mkdir -p "$RES"
	local start=$SECONDS t
	for s in "${stages[@]}"; do
		t=$SECONDS
		"stage_$s"
		echo "  ($s took $((SECONDS - t))s)"
	done
	printf '\n'
	echo "make check: stages ${stages[*]} took $((SECONDS - start))s"
	python3 scripts/test-summary.py "${SUMMARY_ARGS[@]}"
}

main "$@"
