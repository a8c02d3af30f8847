# Makefile - the front door: a thin wrapper over Meson and ninja.
#
#   make demo    build, then run the in-process demonstration
#   make check   every test stage (see scripts/check.sh); last line
#                "N passed, N failed"
#   make help    all targets
#
# Variables: BUILD (build) is the everyday build directory; CHECK_DIR
# (build-ci) holds the check stages' build directories; FUZZ_TIME (30)
# seconds per fuzz target in `make check`; NO_DEPS=1 skips the package
# check (scripts/deps.sh).

BUILD ?= build
CHECK_DIR ?= build-ci
FUZZ_TIME ?= 30
BENCH_JSON ?= $(BUILD)/bench-core.json

CHECK_ENV = CHECK_DIR=$(CHECK_DIR) FUZZ_TIME=$(FUZZ_TIME)
DEPS = $(if $(NO_DEPS),true,bash scripts/deps.sh)

.PHONY: all build configure check check-werror check-asan check-valgrind \
	check-fuzz check-install demo bench deps clean help

all: build

## build: configure (meson setup --werror, once) and build in $(BUILD)
build: configure
	ninja -C $(BUILD)

configure:
	@$(DEPS) build
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --werror

## check: install what the tests need, run every stage, print the summary
check:
	@$(DEPS) build check
	$(CHECK_ENV) bash scripts/check.sh

## check-werror: only the warnings-as-errors build and all its tests
check-werror:
	$(CHECK_ENV) bash scripts/check.sh werror

## check-asan: only the ASan+UBSan build (unit, conformance, fuzz suites)
check-asan:
	$(CHECK_ENV) bash scripts/check.sh asan

## check-valgrind: only the unit suite under valgrind (werror build)
check-valgrind:
	$(CHECK_ENV) bash scripts/check.sh valgrind

## check-fuzz: only the libFuzzer runs (clang)
check-fuzz:
	$(CHECK_ENV) bash scripts/check.sh fuzz

## check-install: only the DESTDIR install and pkg-config consumer check
check-install:
	$(CHECK_ENV) bash scripts/check.sh install

## demo: build and run the in-process example (examples/embed.c)
demo: configure
	ninja -C $(BUILD) examples/embed
	@echo "== viommu demo: the in-process embedding example"
	@echo "== (guest memory, an endpoint, a domain, maps, DMA, a fault)."
	@echo "== The real-guest demo (Linux under QEMU through our IOMMU)"
	@echo "== arrives with the real-guest issue; this is not it yet."
	@echo
	$(BUILD)/examples/embed

## bench: full core micro-benchmark; table on stdout, JSON in $(BENCH_JSON)
bench: configure
	ninja -C $(BUILD) bench/viommu-bench
	$(BUILD)/bench/viommu-bench core --json $(BENCH_JSON)
	@echo "JSON written to $(BENCH_JSON)"

## deps: install the packages for building and checking (apt-get)
deps:
	bash scripts/deps.sh build check

## clean: remove $(BUILD) and $(CHECK_DIR)
clean:
	rm -rf $(BUILD) $(CHECK_DIR)

## help: this list
help:
	@echo "viommu make targets:"
	@sed -n 's/^## \([a-z-]*\): \(.*\)/\1|\2/p' $(MAKEFILE_LIST) | \
		awk -F'|' '{ printf "  %-16s %s\n", $$1, $$2 }'
	@echo
	@echo "Variables: BUILD=$(BUILD) CHECK_DIR=$(CHECK_DIR)" \
		"FUZZ_TIME=$(FUZZ_TIME) NO_DEPS=1 (skip the package check)"
