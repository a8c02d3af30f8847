#!/usr/bin/env bash
#
# fuzz-long.sh - long libFuzzer runs (hours) with a corpus that survives
# between runs, for `make fuzz-long`.
#
# Usage: scripts/fuzz-long.sh [TARGET...]   (default: every libFuzzer target,
#                                            the _full check levels included)
#
# Builds the same clang + libFuzzer + ASan/UBSan configuration as the fuzz
# stage of scripts/check.sh in FUZZ_BUILD (build-fuzz), then runs each
# target for FUZZ_TIME seconds (3600) on FUZZ_DIR/corpus/<name> (build/
# fuzz-long/corpus/<name>; <name> without a _full suffix, so both check
# levels of a target share one corpus).  A missing corpus starts as a copy
# of tests/fuzz/corpus/<name>; an existing one is resumed, never reset.
# Crashes go to FUZZ_DIR/artifacts/<target>/.  After each target it prints
# its executions and executions per second, and appends a line to
# FUZZ_DIR/history.tsv (UTC time, target, seconds, executions, exec/s,
# executions of that target over all runs, exit status), so the total
# behind a "no finding in N executions" claim is on record.
#
# Exit status: non-zero if any target failed (a finding or a crash).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${FUZZ_BUILD:-build-fuzz}
DIR=${FUZZ_DIR:-build/fuzz-long}
TIME=${FUZZ_TIME:-3600}
HIST=$DIR/history.tsv
fails=0

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzz=enabled \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link || exit 1
fi
ninja -C "$BUILD" || exit 1
mkdir -p "$DIR/corpus" "$DIR/artifacts" "$DIR/logs"
[ -f "$HIST" ] || printf 'utc\ttarget\tseconds\texecs\texec_per_s\ttotal_execs\trc\n' >"$HIST"

# targets - "name file" of every libFuzzer executable of the build.
targets() {
	meson introspect --targets "$BUILD" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz_") \
            and not t["name"].endswith("_replay"):
        print(t["name"], t["filename"][0])' | sort
}

# run_one NAME EXE - one long run; prints and records its figures.
run_one() {
	local name=$1 exe=$2 base=${1%_full} log rc execs rate total
	local corpus=$DIR/corpus/$base art=$DIR/artifacts/$name/
	log=$DIR/logs/$name.log
	if [ ! -d "$corpus" ]; then
		mkdir -p "$corpus"
		[ -d "tests/fuzz/corpus/$base" ] &&
			cp -R "tests/fuzz/corpus/$base/." "$corpus/"
	fi
	mkdir -p "$art"
	echo "== $name: ${TIME}s on $corpus ($(find "$corpus" -type f | wc -l) inputs)"
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$exe" -max_total_time="$TIME" -timeout=25 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$art" "$corpus" \
		>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	execs=${execs:-0}
	rate=$(awk -v e="$execs" -v t="$TIME" 'BEGIN {printf "%.0f", e / t}')
	total=$(awk -F'\t' -v n="$name" -v e="$execs" \
		'$2 == n {s += $4} END {print s + e}' "$HIST")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" \
		"$TIME" "$execs" "$rate" "$total" "$rc" >>"$HIST"
	echo "   $name: $execs execs, $rate exec/s, $total over all runs, exit $rc"
	if [ $rc -ne 0 ]; then
		fails=$((fails + 1))
		tail -n 30 "$log" | sed 's/^/   | /'
		echo "   artifacts: $(ls "$art")"
	fi
}

want=" $* "
while read -r name exe; do
	[ -n "$name" ] || continue
	[ $# -eq 0 ] || [[ $want == *" $name "* ]] || continue
	run_one "$name" "$exe"
done < <(targets)
echo "history: $HIST"
exit $((fails > 0))
