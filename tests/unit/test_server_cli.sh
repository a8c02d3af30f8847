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
	log-level link max-mappings socket-mode peer-user trace-events \
	peer-timeout-ms; do
	"$srv" --"$opt" bogus >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -q -- "--$opt" "$tmp/err"
	named=$?
	[ $rc = 2 ] && [ $named = 0 ]
	ok $? "--$opt bogus: exit 2 (got $rc), message names --$opt"
done

"$srv" --help >"$tmp/help" 2>&1
ok $? "--help exits 0"
for opt in poll-us poll-rq-us stats-json viot-only max-mappings \
	trust-peer-fds socket-mode peer-user trace trace-events \
	peer-timeout-ms; do
	grep -q -- "--$opt" "$tmp/help"
	ok $? "--help lists --$opt"
done

"$srv" --viot "$tmp/viot.bin" --viot-only --endpoints 2 >/dev/null 2>&1
rc=$?
[ $rc = 0 ] && [ "$(head -c 4 "$tmp/viot.bin" 2>/dev/null)" = VIOT ]
ok $? "--viot-only writes a VIOT table (exit $rc)"

# --blk SPECs: each bad one refused with exit 2 naming --blk.
for spec in mem=0 mem=513 mem=1Q file= "file=/x,mem=1M" ro queues=1 \
	"mem=1M,queues=8" "mem=1M,queues=0" "mem=1M,bogus" \
	"mem=1M,serial=abcdefghijklmnopqrstu" "mem=1M,ro=1"; do
	"$srv" --blk "$spec" --viot-only >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -q -- "--blk" "$tmp/err"
	named=$?
	[ $rc = 2 ] && [ $named = 0 ]
	ok $? "--blk '$spec': exit 2 (got $rc), message names --blk"
done
"$srv" --endpoints 0 --viot-only >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "endpoint functions" "$tmp/err"
ok $? "--endpoints 0 without a disk: exit 2 (got $rc)"
nine=
for i in 1 2 3 4 5 6 7 8 9; do nine="$nine --blk mem=1M"; done
# shellcheck disable=SC2086 # nine is a list of words
"$srv" $nine --viot-only >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ]
ok $? "a ninth --blk: exit 2 (got $rc)"

# viot_len FILE - the table's length field (bytes 4..7, little endian).
viot_len() {
	od -An -tu4 -j4 -N4 "$1" | tr -d ' '
}
# The VIOT covers engines and disks; a noiommu disk is left out, and a
# gap splits the functions into two PCI range nodes.
"$srv" --viot "$tmp/v1" --viot-only --endpoints 1 --blk mem=1M \
	>/dev/null 2>&1
ok $? "--viot-only with an engine and a disk"
"$srv" --viot "$tmp/v2" --viot-only --endpoints 1 \
	--blk mem=1M,noiommu --blk mem=1M >/dev/null 2>&1
ok $? "--viot-only with a noiommu disk between"
"$srv" --viot "$tmp/v3" --viot-only --endpoints 1 --blk mem=1M,noiommu \
	>/dev/null 2>&1
ok $? "--viot-only with a trailing noiommu disk"
l1=$(viot_len "$tmp/v1")
l2=$(viot_len "$tmp/v2")
l3=$(viot_len "$tmp/v3")
[ -n "$l1" ] && [ "$l2" -gt "$l1" ] && [ "$l3" = "$l1" ]
ok $? "VIOT ranges: one for engine+disk ($l1 B), two around a noiommu \
disk ($l2 B), one when it trails ($l3 B)"
grep -q -- "--blk" "$tmp/help" && grep -q -- "--control" "$tmp/help"
ok $? "--help lists --blk and --control"

"$srv" --max-mappings 0 >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q -- "--max-mappings" "$tmp/err"
ok $? "--max-mappings 0: refused (exit $rc)"

# --net SPECs: bad ones refused naming --net; an empty one accepted.
for spec in mac=01:00:00:00:00:01 mac=02:00:00:00:00 queues=4 queues=0 \
	bogus "noiommu=1" stream-fd=1 stream-fd=x dgram-fd= \
	stream-fd=5,dgram-fd=6; do
	"$srv" --net "$spec" --viot-only >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -q -- "--net" "$tmp/err"
	named=$?
	[ $rc = 2 ] && [ $named = 0 ]
	ok $? "--net '$spec': exit 2 (got $rc), message names --net"
done
"$srv" --viot "$tmp/n1" --viot-only --endpoints 1 --net "" \
	--net mac=02:00:00:00:00:02,queues=2 >/dev/null 2>&1
ok $? "--viot-only with an engine and two NICs"
"$srv" --viot "$tmp/n2" --viot-only --endpoints 1 --net noiommu --net "" \
	>/dev/null 2>&1
ok $? "--viot-only with a noiommu NIC between"
[ "$(viot_len "$tmp/n2")" -gt "$(viot_len "$tmp/n1")" ]
ok $? "a noiommu NIC splits the VIOT's ranges like a noiommu disk"
"$srv" --viot "$tmp/n3" --viot-only --endpoints 1 --net stream-fd=5 \
	--net dgram-fd=6,mac=02:00:00:00:00:03 >/dev/null 2>&1
ok $? "--net stream-fd=N and dgram-fd=N accepted (a socket peer)"

echo "1..$n"
exit $fail
