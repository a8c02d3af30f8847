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
# FUZZ_JOBS (1) > 1 runs that many libFuzzer workers per target (-fork=N:
# child processes sharing the corpus; crashes still stop the run).
# FUZZ_FLAGS adds libFuzzer options (e.g. -entropic=0).
#
# Stopping early: SIGTERM to this script (kill $(cat FUZZ_DIR/fuzz-long.pid))
# or ^C in its terminal interrupts the running target, records the part it
# ran (its seconds and executions, exit status "stopped") and runs no
# further target; a run so stopped is not a failure.  (A script started in
# the background ignores SIGINT: use SIGTERM there.)
#
# Exit status: non-zero if any target failed (a finding or a crash).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${FUZZ_BUILD:-build-fuzz}
DIR=${FUZZ_DIR:-build/fuzz-long}
TIME=${FUZZ_TIME:-3600}
JOBS=${FUZZ_JOBS:-1}
FLAGS=${FUZZ_FLAGS:-}
HIST=$DIR/history.tsv
fails=0
stop=0
child=

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzz=enabled \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link || exit 1
fi
mkdir -p "$DIR/corpus" "$DIR/artifacts" "$DIR/logs"
[ -f "$HIST" ] || printf 'utc\ttarget\tseconds\texecs\texec_per_s\ttotal_execs\trc\n' >"$HIST"
echo $$ >"$DIR/fuzz-long.pid"
trap 'rm -f "$DIR/fuzz-long.pid"' EXIT

# on_stop - a stop request: interrupt the running target and run no
# further one.  SIGTERM, as a background job ignores SIGINT; libFuzzer
# handles both alike (final statistics, exit status 72).
on_stop() {
	stop=1
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap on_stop INT TERM

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
	local fork=() t0 secs
	[ "$JOBS" -gt 1 ] && fork=(-fork="$JOBS")
	echo "== $name: ${TIME}s on $corpus ($(find "$corpus" -type f | wc -l) inputs)${fork:+, $JOBS workers}"
	t0=$(date +%s)
	# in the background so that a stop request is handled at once
	# shellcheck disable=SC2086 # FLAGS is a list of options
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$exe" -max_total_time="$TIME" -timeout=25 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$art" "${fork[@]}" \
		$FLAGS "$corpus" >"$log" 2>&1 &
	child=$!
	while :; do
		wait "$child"
		rc=$?
		# a trapped signal interrupts wait; the child may still run
		kill -0 "$child" 2>/dev/null || break
	done
	child=
	secs=$(($(date +%s) - t0))
	[ "$secs" -gt 0 ] || secs=1
	# one process: its final statistics; -fork: the last status line
	# (the parent's statistics count none: its workers ran the inputs)
	if [ "$JOBS" -gt 1 ]; then
		execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -n 1)
	else
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	fi
	execs=${execs:-0}
	# libFuzzer's exit status after SIGINT (-interrupted_exitcode)
	[ $stop -eq 1 ] && [ $rc -eq 72 ] && rc=stopped
	rate=$(awk -v e="$execs" -v t="$secs" 'BEGIN {printf "%.0f", e / t}')
	total=$(awk -F'\t' -v n="$name" -v e="$execs" \
		'$2 == n {s += $4} END {print s + e}' "$HIST")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" \
		"$secs" "$execs" "$rate" "$total" "$rc" >>"$HIST"
	echo "   $name: $execs execs in ${secs}s, $rate exec/s, $total over all runs, exit $rc"
	if [ "$rc" != 0 ] && [ "$rc" != stopped ]; then
		fails=$((fails + 1))
		tail -n 30 "$log" | sed 's/^/   | /'
		echo "   artifacts: $(ls "$art")"
	fi
}

# only the fuzz targets (and what they link), not the whole tree
mapfile -t outs < <(targets | awk -v b="$(cd "$BUILD" && pwd)/" \
	'{sub("^" b, "", $2); print $2}')
ninja -C "$BUILD" "${outs[@]}" || exit 1

want=" $* "
while read -r name exe; do
	[ -n "$name" ] || continue
	[ $# -eq 0 ] || [[ $want == *" $name "* ]] || continue
	[ $stop -eq 0 ] || break
	run_one "$name" "$exe"
done < <(targets)
[ $stop -eq 0 ] || echo "stopped on request"

echo "history: $HIST"
exit $((fails > 0))
