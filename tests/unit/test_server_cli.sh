#!/bin/sh
# test_server_cli.sh - viommu-server's command line: every option that
# takes a value refuses a bad one with exit status 2 and a message naming
# that option (a regression: --poll-us was once reported as --stats-json),
# --help exits 0 and lists every option, and --viot-only writes the table.
# TAP output.  Usage: test_server_cli.sh PATH-TO-viommu-server
srv=$1
n=0
fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fail=1
	fi
}

for opt in endpoints iommu-slot endpoint-slot page-size-mask input-range \
	domain-range probe-size queue-size event-backlog poll-us poll-rq-us \
	log-level link socket-mode peer-user; do
	"$srv" --"$opt" bogus >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -q -- "--$opt" "$tmp/err"
	named=$?
	[ $rc = 2 ] && [ $named = 0 ]
	ok $? "--$opt bogus: exit 2 (got $rc), message names --$opt"
done

"$srv" --help >"$tmp/help" 2>&1
ok $? "--help exits 0"
for opt in poll-us poll-rq-us stats-json viot-only trust-peer-fds \
	socket-mode peer-user; do
	grep -q -- "--$opt" "$tmp/help"
	ok $? "--help lists --$opt"
done

"$srv" --viot "$tmp/viot.bin" --viot-only --endpoints 2 >/dev/null 2>&1
rc=$?
[ $rc = 0 ] && [ "$(head -c 4 "$tmp/viot.bin" 2>/dev/null)" = VIOT ]
ok $? "--viot-only writes a VIOT table (exit $rc)"

echo "1..$n"
exit $fail
