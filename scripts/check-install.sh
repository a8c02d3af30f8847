#!/usr/bin/env bash
# shellcheck disable=SC2086 # pkg-config output is a word list
#
# check-install.sh - the install stage of `make check`: does an installed
# viommu work for an embedder who knows only pkg-config?
#
# Usage: scripts/check-install.sh BUILD_DIR WORK_DIR RESULT_FILE
#
#   1. meson install BUILD_DIR into WORK_DIR/destdir (a DESTDIR install of
#      the configured prefix; nothing outside WORK_DIR is touched);
#   2. every public header is installed, compiles on its own as C11 and
#      as C++11;
#   3. tests/install/consumer.c compiles and links with nothing but
#      `pkg-config --cflags --libs viommu` (PKG_CONFIG_SYSROOT_DIR points
#      pkg-config at the DESTDIR) and runs against the installed library
#      (LD_LIBRARY_PATH), which ldd confirms it loads;
#   4. the shared library exports only viommu_* symbols, and exactly the
#      functions the public headers declare with VIOMMU_EXPORT.
# Each check appends "ok - install: ..." or "not ok - install: ..." to
# RESULT_FILE.  Exit status: 0 if every check passed.
set -uo pipefail

[ $# -eq 3 ] || {
	echo "usage: $0 BUILD_DIR WORK_DIR RESULT_FILE" >&2
	exit 2
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
WORK=$(mkdir -p "$2" && cd "$2" && pwd)
RESULT=$3
DESTDIR_ABS=$WORK/destdir
FAILED=0

# record ok|fail NAME [LOG] - append a result line; print LOG on failure.
record() {
	if [ "$1" = ok ]; then
		echo "ok - install: $2" >>"$RESULT"
		echo "  PASS install: $2"
	else
		echo "not ok - install: $2" >>"$RESULT"
		echo "  FAIL install: $2"
		[ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/    | /' "$3" | tail -n 40
		FAILED=1
	fi
}

# pc - pkg-config restricted to the DESTDIR install.
pc() {
	PKG_CONFIG_LIBDIR=$PCDIR PKG_CONFIG_PATH='' \
		PKG_CONFIG_SYSROOT_DIR=$DESTDIR_ABS pkg-config "$@"
}

# exported_symbols LIB - the names of the symbols LIB defines dynamically.
exported_symbols() {
	nm -D --defined-only "$1" | awk '$2 != "A" { print $3 }' |
		sed 's/@.*//' | sort -u
}

# declared_exports - functions the public headers mark VIOMMU_EXPORT.
declared_exports() {
	python3 - "$ROOT"/include/viommu/*.h <<'EOF'
import re, sys
names = set()
for path in sys.argv[1:]:
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    for m in re.finditer(r"VIOMMU_EXPORT\b([^;{]*?)\b(viommu_\w+)\s*\(",
                         text, flags=re.S):
        names.add(m.group(2))
print("\n".join(sorted(names)))
EOF
}

step_install() {
	rm -rf "$DESTDIR_ABS"
	if meson install -C "$BUILD" --destdir "$DESTDIR_ABS" \
		>"$WORK/install.log" 2>&1; then
		record ok "meson install --destdir"
	else
		record fail "meson install --destdir" "$WORK/install.log"
		return 1
	fi
	PCFILE=$(find "$DESTDIR_ABS" -name viommu.pc | head -n 1)
	LIB=$(find "$DESTDIR_ABS" -name 'libviommu.so.*' -type f | head -n 1)
	INCDIR=$(find "$DESTDIR_ABS" -type d -path '*/include/viommu' |
		head -n 1)
	if [ -z "$PCFILE" ] || [ -z "$LIB" ] || [ -z "$INCDIR" ]; then
		record fail "installed viommu.pc, libviommu.so and headers" \
			"$WORK/install.log"
		return 1
	fi
	PCDIR=$(dirname "$PCFILE")
	LIBDIR=$(dirname "$LIB")
	record ok "installed viommu.pc, libviommu.so and headers"
}

step_headers() {
	local h missing="" bad=""
	for h in "$ROOT"/include/viommu/*.h; do
		h=$(basename "$h")
		if [ ! -f "$INCDIR/$h" ]; then
			missing="$missing $h"
			continue
		fi
		printf '#include <viommu/%s>\n' "$h" >"$WORK/hdr.c"
		${CC:-cc} -std=c11 -pedantic -Wall -Wextra -Werror $VI_CFLAGS \
			-fsyntax-only "$WORK/hdr.c" >>"$WORK/headers.log" 2>&1 ||
			bad="$bad $h"
		c++ -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror \
			$VI_CFLAGS -fsyntax-only "$WORK/hdr.c" \
			>>"$WORK/headers.log" 2>&1 || bad="$bad $h(C++)"
	done
	if [ -z "$missing" ]; then
		record ok "every public header installed"
	else
		record fail "every public header installed (missing:$missing)"
	fi
	if [ -z "$bad" ]; then
		record ok "each header compiles alone as C11 and C++11"
	else
		record fail "each header compiles alone (failed:$bad)" \
			"$WORK/headers.log"
	fi
}

step_consumer() {
	local libs
	libs=$(pc --libs viommu) || {
		record fail "pkg-config --libs viommu"
		return 1
	}
	echo "  pkg-config: cflags '$VI_CFLAGS' libs '$libs'"
	if ${CC:-cc} -std=c11 -pedantic -Wall -Wextra -Werror $VI_CFLAGS \
		"$ROOT/tests/install/consumer.c" -o "$WORK/consumer" $libs \
		>"$WORK/consumer-build.log" 2>&1; then
		record ok "consumer builds with pkg-config only"
	else
		record fail "consumer builds with pkg-config only" \
			"$WORK/consumer-build.log"
		return 1
	fi
	# (to a file first: grep -q closing the pipe early would fail ldd)
	LD_LIBRARY_PATH=$LIBDIR ldd "$WORK/consumer" >"$WORK/ldd.log" 2>&1
	if grep -q "libviommu.so.* => $LIBDIR/" "$WORK/ldd.log"; then
		record ok "consumer loads the installed libviommu.so"
	else
		record fail "consumer loads the installed libviommu.so" \
			"$WORK/ldd.log"
	fi
	if LD_LIBRARY_PATH=$LIBDIR "$WORK/consumer" >"$WORK/consumer.log" 2>&1
	then
		tail -n 1 "$WORK/consumer.log" | sed 's/^/  /'
		record ok "consumer runs and every check passes"
	else
		record fail "consumer runs and every check passes" \
			"$WORK/consumer.log"
	fi
}

step_symbols() {
	local bad missing extra
	exported_symbols "$LIB" >"$WORK/exported.txt"
	declared_exports >"$WORK/declared.txt"
	bad=$(grep -v '^viommu_' "$WORK/exported.txt" | tr '\n' ' ')
	if [ -z "$bad" ] && [ -s "$WORK/exported.txt" ]; then
		record ok "libviommu.so exports only viommu_* ($(wc -l \
			<"$WORK/exported.txt") symbols)"
	else
		record fail "libviommu.so exports only viommu_* (also: $bad)"
	fi
	missing=$(comm -23 "$WORK/declared.txt" "$WORK/exported.txt" |
		tr '\n' ' ')
	extra=$(comm -13 "$WORK/declared.txt" "$WORK/exported.txt" |
		grep '^viommu_' | tr '\n' ' ')
	if [ -z "$missing$extra" ]; then
		record ok "exports match the VIOMMU_EXPORT declarations"
	else
		record fail "exports match the declarations (missing: ${missing:-none}; undeclared: ${extra:-none})"
	fi
}

main() {
	echo "  installing $BUILD into $DESTDIR_ABS"
	step_install || exit 1
	VI_CFLAGS=$(pc --cflags viommu) || {
		record fail "pkg-config --cflags viommu"
		exit 1
	}
	step_headers
	step_consumer
	step_symbols
	exit $FAILED
}

main
