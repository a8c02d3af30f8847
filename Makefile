# Makefile - the front door: a thin wrapper over Meson and ninja.
#
#   make demo    build, then boot Linux under QEMU 11.1 through our IOMMU
#                (vfio-user door) and run the demo scenarios (DEMO_ARGS:
#                more tools/viommu-run options, e.g. DEMO_ARGS=--trace,
#                "--peer qemu", or "--qemu 7.2" for the host's QEMU 7.2
#                and the x-pci-proxy-dev door)
#   make check   every test stage (see scripts/check.sh); last line
#                "N passed, N failed"
#   make help    all targets
#
# Variables: BUILD (build) is the everyday build directory; CHECK_DIR
# (build-ci) holds the check stages' build directories (and the check's
# QEMU 11.1 cache, CHECK_DIR/qemu-11.1); FUZZ_TIME (30)
# seconds per fuzz target in `make check` on average; FUZZ_LONG_TIME
# (3600) seconds per target in `make fuzz-long`; NO_DEPS=1 skips the
# package check (scripts/deps.sh).

BUILD ?= build
CHECK_DIR ?= build-ci
FUZZ_TIME ?= 30
FUZZ_LONG_TIME ?= 3600
BENCH_JSON ?= $(BUILD)/bench-core.json
QEMU11_CACHE = $(BUILD)/qemu-11.1

CHECK_ENV = CHECK_DIR=$(CHECK_DIR) FUZZ_TIME=$(FUZZ_TIME)
DEPS = $(if $(NO_DEPS),true,bash scripts/deps.sh)

.PHONY: all build configure check check-werror check-asan check-release \
	check-valgrind \
	check-fuzz fuzz-long check-install check-guest demo qemu11 bench deps \
	clean help

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

## check-release: only the -O3 release build (warnings as errors), bench suite
check-release:
	$(CHECK_ENV) bash scripts/check.sh release

## check-valgrind: only the unit suite under valgrind (werror build)
check-valgrind:
	$(CHECK_ENV) bash scripts/check.sh valgrind

## check-fuzz: only the libFuzzer runs (clang)
check-fuzz:
	$(CHECK_ENV) bash scripts/check.sh fuzz

## fuzz-long: hours of libFuzzer per target, resumable corpus in build/fuzz-long
# Every libFuzzer target (both check levels) for FUZZ_LONG_TIME seconds
# each (3600) on a corpus kept in build/fuzz-long (the next run resumes
# it); prints execs and exec/s per target and appends them to
# build/fuzz-long/history.tsv.  FUZZ_TARGETS="fuzz_core ..." picks targets,
# FUZZ_JOBS=N runs N workers per target, FUZZ_FLAGS adds libFuzzer options;
# kill $$(cat build/fuzz-long/fuzz-long.pid) stops it, recording the part
# run.  See scripts/fuzz-long.sh and docs/FUZZING.md.
fuzz-long:
	FUZZ_TIME=$(FUZZ_LONG_TIME) bash scripts/fuzz-long.sh $(FUZZ_TARGETS)

## check-install: only the DESTDIR install and pkg-config consumer check
check-install:
	$(CHECK_ENV) bash scripts/check.sh install

## check-guest: only the real-guest scenarios (QEMU 11.1 and 7.2)
check-guest:
	$(CHECK_ENV) bash scripts/check.sh guest

## demo: boot a Linux guest whose DMA goes through our virtio-iommu; summary
# QEMU 11.1 comes from $(QEMU11_CACHE) (scripts/qemu11.sh builds it once:
# mmdebstrap, about a minute); with --qemu in DEMO_ARGS the cache is left
# alone.
DEMO_QEMU11 = $(if $(findstring --qemu,$(DEMO_ARGS)),, \
	bash scripts/qemu11.sh --cache $(QEMU11_CACHE))
demo: configure
	@$(DEPS) guest
	ninja -C $(BUILD) tools/viommu-server guest/viommu-guest
	$(DEMO_QEMU11)
	@echo "== viommu demo: a Debian 6.12 kernel under QEMU 11.1 (TCG) drives"
	@echo "== our virtio-iommu, DMA engines and virtio-blk disk (served by"
	@echo "== viommu-server over vfio-user: QEMU's vfio-user-pci) with its own"
	@echo "== drivers; a VFIO program in the guest maps memory and runs DMA,"
	@echo "== and the stock virtio_blk driver carries an ext2 filesystem"
	@echo "== through the IOMMU (viommu-run's demo set)."
	@echo "== (DEMO_ARGS=\"--qemu 7.2\": the host's QEMU 7.2 over"
	@echo "== x-pci-proxy-dev; the first line below names the QEMU and door"
	@echo "== in use.  The in-process example is $(BUILD)/examples/embed.)"
	@echo
	python3 tools/viommu-run --build $(BUILD) --no-build \
		--qemu-cache $(QEMU11_CACHE) --scenario demo $(DEMO_ARGS)

## qemu11: only the QEMU 11.1 cache, $(QEMU11_CACHE) (scripts/qemu11.sh)
qemu11:
	@$(DEPS) guest
	bash scripts/qemu11.sh --cache $(QEMU11_CACHE)

## bench: every table of docs/PERFORMANCE.md; JSON in $(BUILD)/bench-*.json, PNGs in $(BENCH_IMG)
# BENCH_IMG (docs/img): where the plots go; BENCH_KICK_NS (5000) and
# BENCH_KICK_NS_FAST (1000): the modelled cost of one kick (a VM exit to a
# VMM thread, or one handled in the kernel) for the modelled vdev and io
# runs; BENCH_PIN (the highest CPU): the CPU of the pinned qemu run;
# BENCH_POLL_RQ_US (200): viommu-server --poll-rq-us of the guest run's
# polled boots.  The guest run boots QEMU 11.1 (its cache is built when
# missing) and the host's QEMU 7.2 (the proxy boot).
# gnuplot comes from scripts/deps.sh (purpose "plot"); without it the plot
# step fails with a message and the rest still stands.
BENCH_IMG ?= docs/img
BENCH_KICK_NS ?= 5000
BENCH_KICK_NS_FAST ?= 1000
BENCH_PIN ?= $(shell echo $$(( $$(nproc) - 1 )))
BENCH_POLL_RQ_US ?= 200
BENCH = $(BUILD)/bench/viommu-bench
bench: configure
	@$(DEPS) build guest plot
	ninja -C $(BUILD) bench/viommu-bench tools/viommu-server guest/viommu-guest
	@echo "== load average before the run: $$(cut -d' ' -f1-3 /proc/loadavg)"
	$(BENCH) core --json $(BENCH_JSON)
	$(BENCH) vdev --json $(BUILD)/bench-vdev.json
	$(BENCH) vdev --kick-cost-ns $(BENCH_KICK_NS) \
		--json $(BUILD)/bench-vdev-modelled.json
	$(BENCH) io --json $(BUILD)/bench-io.json
	$(BENCH) io --workloads rx,tx --kick-cost-ns $(BENCH_KICK_NS) \
		--json $(BUILD)/bench-io-modelled.json
	$(BENCH) io --workloads rx,tx --kick-cost-ns $(BENCH_KICK_NS_FAST) \
		--json $(BUILD)/bench-io-modelled-fast.json
	$(BENCH) scaling --json $(BUILD)/bench-scaling.json
	$(BENCH) smmu --json $(BUILD)/bench-smmu.json
	$(BENCH) vtd --json $(BUILD)/bench-vtd.json
	-$(BENCH) qemu --json $(BUILD)/bench-qemu.json
	-$(BENCH) qemu --pin $(BENCH_PIN) --runs 3 \
		--json $(BUILD)/bench-qemu-pinned.json
	-$(BENCH) guest --poll-rq-us $(BENCH_POLL_RQ_US) \
		--json $(BUILD)/bench-guest.json
	@mkdir -p $(BENCH_IMG)
	-$(BENCH) plot --out $(BENCH_IMG) --io $(BUILD)/bench-io.json \
		--io $(BUILD)/bench-io-modelled.json \
		--scaling $(BUILD)/bench-scaling.json \
		--vdev $(BUILD)/bench-vdev.json
	@echo "JSON written to $(BUILD)/bench-*.json (core: $(BENCH_JSON));" \
		"plots in $(BENCH_IMG)"

## deps: install the packages for building and checking (apt-get)
deps:
	bash scripts/deps.sh build check

## clean: remove $(BUILD) and $(CHECK_DIR) (with their QEMU 11.1 caches)
# --one-file-system: never descend into a mount left inside an interrupted
# QEMU 11.1 build (mmdebstrap mounts /proc, /sys, /dev in its root).
clean:
	rm -rf --one-file-system $(BUILD) $(CHECK_DIR)

## help: this list
help:
	@echo "viommu make targets:"
	@sed -n 's/^## \([a-z0-9-]*\): \(.*\)/\1|\2/p' $(MAKEFILE_LIST) | \
		awk -F'|' '{ printf "  %-16s %s\n", $$1, $$2 }'
	@echo
	@echo "Variables: BUILD=$(BUILD) CHECK_DIR=$(CHECK_DIR)" \
		"FUZZ_TIME=$(FUZZ_TIME) NO_DEPS=1 (skip the package check)"
