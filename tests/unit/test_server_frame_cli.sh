#!/bin/sh
# test_server_frame_cli.sh - viommu-server's --smmuv3-frame,
# --smmuv3-features, --vtd-frame, --vtd-features, --dmar and --frame-nap-us
# (tools/server_frame.c): bad values and combinations refused with exit
# status 2 and a message naming the option, --help lists them, and the
# DMAR --dmar writes names the frame.  TAP output.  Usage: test_server_frame_cli.sh PATH-TO-server
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

# refused WHAT NEEDLE ARGS... - exit 2 and NEEDLE in the message.
refused() {
	what=$1 needle=$2
	shift 2
	"$srv" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -q -- "$needle" "$tmp/err"
	named=$?
	[ $rc = 2 ] && [ $named = 0 ]
	ok $? "$what: exit 2 (got $rc), message names $needle"
}

L="--door vfio-user --link 1:path=$tmp/l1"
for v in bogus 0x7ff00001 0x7ff08000 -1 0xffffffffffff0000; do
	# shellcheck disable=SC2086 # L is a list of words
	refused "--smmuv3-frame $v" --smmuv3-frame --smmuv3-frame "$v" $L
done
for v in 0 bogus 0x200 0x7c 0x3fc; do
	# shellcheck disable=SC2086
	refused "--smmuv3-features $v" --smmuv3-features \
		--smmuv3-frame 0x7ff00000 --smmuv3-features "$v" $L
done
refused "--smmuv3-frame without vfio-user" "--smmuv3-frame needs --door" \
	--smmuv3-frame 0x7ff00000 --link 1:path="$tmp/l1"
refused "--smmuv3-frame with a link 0" "--smmuv3-frame takes no link 0" \
	--smmuv3-frame 0x7ff00000 --door vfio-user --link 0:path="$tmp/l0" \
	--link 1:path="$tmp/l1"
# shellcheck disable=SC2086
refused "--smmuv3-frame with --no-iommu" "--smmuv3-frame and --no-iommu" \
	--smmuv3-frame 0x7ff00000 --no-iommu $L
# shellcheck disable=SC2086
refused "--smmuv3-frame with --viot-only" "--smmuv3-frame has no VIOT" \
	--smmuv3-frame 0x7ff00000 --viot "$tmp/v" --viot-only $L
# shellcheck disable=SC2086
refused "--smmuv3-frame with --poll-rq-us" "--smmuv3-frame has no request" \
	--smmuv3-frame 0x7ff00000 --poll-rq-us 10 $L
refused "--smmuv3-frame without every link" "--smmuv3-frame needs --link" \
	--smmuv3-frame 0x7ff00000 --door vfio-user --endpoints 2 \
	--link 1:path="$tmp/l1"
refused "--smmuv3-frame with a link past the functions" \
	"--smmuv3-frame has a --link beyond" --smmuv3-frame 0x7ff00000 \
	--door vfio-user --endpoints 1 --link 1:path="$tmp/l1" \
	--link 3:path="$tmp/l3"

for v in bogus 0x10000800 -1 0xfffffffffffff000; do
	# shellcheck disable=SC2086
	refused "--vtd-frame $v" --vtd-frame --vtd-frame "$v" $L
done
for v in 0x20 0x40 bogus; do
	# without QI (0x1), past VIOMMU_VTD_F_ALL, not a number
	# shellcheck disable=SC2086
	refused "--vtd-features $v" --vtd-features \
		--vtd-frame 0x10000000 --vtd-features "$v" $L
done
# shellcheck disable=SC2086
refused "--vtd-frame with --smmuv3-frame" "and the other frame" \
	--vtd-frame 0x10000000 --smmuv3-frame 0x7ff00000 $L
refused "--vtd-frame without vfio-user" "--vtd-frame needs --door" \
	--vtd-frame 0x10000000 --link 1:path="$tmp/l1"
# shellcheck disable=SC2086
refused "--vtd-frame with --viot-only" "--vtd-frame has no VIOT" \
	--vtd-frame 0x10000000 --viot "$tmp/v" --viot-only $L
for v in 0 2001 bogus; do
	# shellcheck disable=SC2086
	refused "--frame-nap-us $v" "bad value for --frame-nap-us" \
		--vtd-frame 0x10000000 --frame-nap-us "$v" $L
done
# shellcheck disable=SC2086
refused "--frame-nap-us without a frame" "--frame-nap-us needs" \
	--frame-nap-us 50 $L
# shellcheck disable=SC2086
refused "--dmar without --vtd-frame" "--dmar names the VT-d frame" \
	--dmar "$tmp/d" $L
# shellcheck disable=SC2086
refused "--dmar to a directory that does not exist" "$tmp/no/d" \
	--vtd-frame 0x10000000 --dmar "$tmp/no/d" $L

# the DMAR: signature, length 64 (header + one DRHD), INCLUDE_PCI_ALL and
# the frame's address; written before the server listens
# shellcheck disable=SC2086
"$srv" --vtd-frame 0x10000000 --dmar "$tmp/dmar.bin" --endpoints 1 \
	--frame-nap-us 50 \
	--stats-json "$tmp/s.json" $L >"$tmp/out" 2>&1 &
pid=$!
i=0
while [ ! -S "$tmp/l1" ] && [ $i -lt 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
hex=$(od -An -tx1 -v "$tmp/dmar.bin" 2>/dev/null | tr -d ' \n')
sig=$(printf %s "$hex" | cut -c1-8)
len=$(printf %s "$hex" | cut -c9-16)
drhd=$(printf %s "$hex" | cut -c97-128)
[ "$sig" = 444d4152 ] && [ "$len" = 40000000 ] &&
	[ "$drhd" = 00001000010000000000001000000000 ]
ok $? "--dmar writes one DRHD (INCLUDE_PCI_ALL) at the frame (got $hex)"
grep -q "vtd: register frame at GPA 0x10000000" "$tmp/out"
ok $? "--vtd-frame serves the frame (with --frame-nap-us)"

"$srv" --help >"$tmp/help" 2>&1
grep -q -- "--smmuv3-frame GPA" "$tmp/help" &&
	grep -q -- "--smmuv3-features M" "$tmp/help" &&
	grep -q -- "--vtd-frame GPA" "$tmp/help" &&
	grep -q -- "--vtd-features M" "$tmp/help" &&
	grep -q -- "--dmar FILE" "$tmp/help" &&
	grep -q -- "--frame-nap-us N" "$tmp/help"
ok $? "--help lists the frame options"

echo "1..$n"
exit $fail
