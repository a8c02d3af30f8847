#!/bin/sh
# test_server_frame_cli.sh - viommu-server's --smmuv3-frame and
# --smmuv3-features (tools/server_frame.c): bad values and combinations
# refused with exit status 2 and a message naming the option, --help
# lists both.  TAP output.  Usage: test_server_frame_cli.sh PATH-TO-server
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

"$srv" --help >"$tmp/help" 2>&1
grep -q -- "--smmuv3-frame GPA" "$tmp/help" &&
	grep -q -- "--smmuv3-features M" "$tmp/help"
ok $? "--help lists --smmuv3-frame and --smmuv3-features"

echo "1..$n"
exit $fail
