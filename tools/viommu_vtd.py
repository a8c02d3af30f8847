"""viommu_vtd - `viommu-run --iommu vtd`: a real x86 Linux guest under QEMU
(TCG, q35) whose stock intel-iommu driver drives our VT-d model through a
register frame in its shared RAM (viommu-server --vtd-frame; docs/VTD.md
"A real x86 guest", docs/REAL-GUEST.md).

Usage: viommu-run --iommu vtd [--scenario NAME[,NAME...]]... [--endpoints N]
                  [--peer ours|qemu] [--bench-ms N]
                  [--qemu 11|PATH] [--timeout S] [--smp N] [--keep]
                  [--json FILE] [--tap FILE] [--verbose] [--quiet]
                  [--seed N] [--build DIR] [--cache DIR] [--no-build]
                  [--qemu-cache DIR] [--server-arg ARG]...
                  [--qemu-arg ARG]...

Scenarios (each is one boot): vtd (the model's default features: queued
invalidation and pass-through) and vtd-cm (caching mode on too, CAP.CM,
QEMU's mode for VFIO: the driver then also invalidates after it maps); set
"all" = both; the default is vtd.  Every boot runs the guest program's vtd
(intel-iommu bound our unit at the frame, read its CAP and ECAP; each
engine in a group of its own under it, DMA domain), dma (VFIO map, DMA
both ways and ring mode, verified byte for byte, unmap), readonly (a
device write to a read-only map refused) and unmapped (never-mapped and
just-unmapped IOVAs refused); with --endpoints 2 or more also isolation.
After power-off the server's counters must show the frame was served
(register writes fed, invalidation descriptors and waits run, no queue
error, translations done) and the fault records it read must hold reason
0x05 (write to a read-only page: readonly) and a refusal for unmapped.

The netbench scenarios (each one boot, only when named; set "net-bench" =
all four) measure TCP and UDP rates between two virtio-net NICs in two
network namespaces (guest/nettcp.c netbench, --bench-ms per case) for
`viommu-bench guest-io --net --iommu vtd`: netbench-noiommu (the baseline:
intel_iommu=off, the NICs untranslated), netbench (deferred invalidation:
the kernel's default lazy DMA-FQ domain), netbench-strict (iommu.strict=1)
and netbench-strict-cm (iommu.strict=1 with caching mode).  With --peer
ours (the default) the NICs are two of ours (viommu-server --net, over
vfio-user, behind our VT-d frame; caching mode is --vtd-features 0x23);
with --peer qemu they are QEMU's two virtio-net-pci iommu_platform=on on
one hub behind QEMU's own intel-iommu (intremap=off, caching-mode=on only
in netbench-strict-cm), no viommu-server and no frame.  The NICs' domain
type must be the mode's (none, DMA-FQ, DMA).

How a boot is made: the x86 guest image of viommu-run (guest/build-image.sh,
--cache, default BUILD/guest-cache); the QEMU 11.1 cache (scripts/qemu11.sh,
--qemu-cache, default BUILD/qemu-11.1).  viommu-server --vtd-frame FRAME_GPA
--dmar FILE writes the DMAR table (one DRHD, INCLUDE_PCI_ALL, register base
FRAME_GPA) that QEMU loads with -acpitable; the guest kernel gets
memmap=4K$FRAME_GPA (E820 reserved: out of the kernel's RAM, yet
ioremap-able and claimable by the driver's request_mem_region),
intel_iommu=on and intremap=off (interrupt remapping is not modelled).
Guest RAM is a shared memfd (memory-backend-memfd share=on), which QEMU
hands to viommu-server with each vfio-user DMA_MAP; our DMA engines are
vfio-user-pci devices at 00:05.0, ... and their source-id is their BDF.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

MEM = "512M"
FRAME_GPA = 0x10000000   # 256 MiB: below the initrd QEMU puts at the top
ENDPOINT_SLOT = 5
# scenario -> VT-d features for viommu-server (None: the default)
FEATURES = {"vtd": None, "vtd-cm": "0x23"}
# netbench scenario -> (VT-d features (ours) / caching mode (QEMU's),
# kernel words, the NICs' domain type)
NET_BENCH = {
    "netbench-noiommu": (None, ["intel_iommu=off"], "none"),
    "netbench": (None, ["intel_iommu=on"], "DMA-FQ"),
    "netbench-strict": (None, ["intel_iommu=on", "iommu.strict=1"], "DMA"),
    "netbench-strict-cm": ("0x23", ["intel_iommu=on", "iommu.strict=1"],
                           "DMA"),
}
NET_MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
SETS = {"all": list(FEATURES), "net-bench": list(NET_BENCH)}
GUEST_SCENARIOS = ["vtd", "dma", "readonly", "unmapped"]
# guest scenario -> the fault reasons of which one must have been recorded
REASONS = {"readonly": ["0x05"], "unmapped": ["0x05", "0x06"],
           "isolation": ["0x05", "0x06"]}


def wanted(argv):
    """Whether the command line asks for the VT-d guest."""
    for i, w in enumerate(argv):
        if w == "--iommu=vtd" or (w == "--iommu" and i + 1 < len(argv)
                                  and argv[i + 1] == "vtd"):
            return True
    return False


def parse_args(argv, root):
    """The --iommu vtd command line."""
    p = argparse.ArgumentParser(prog="viommu-run --iommu vtd",
                                add_help=False)
    p.add_argument("--iommu")
    p.add_argument("--scenario", action="append", default=[])
    p.add_argument("--endpoints", type=int, default=1)
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--peer", choices=("ours", "qemu"), default="ours")
    p.add_argument("--bench-ms", type=int)
    # what viommu-bench guest-io passes to every viommu-run (ignored:
    # the NICs are QEMU's with --peer qemu, the door is vfio-user)
    p.add_argument("--door")
    p.add_argument("--qemu-net", action="store_true")
    p.add_argument("--qemu", default="11")
    p.add_argument("--qemu-cache")
    p.add_argument("--timeout", type=int)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json")
    p.add_argument("--tap")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--seed", type=int)
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--cache")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--server-arg", action="append", default=[])
    p.add_argument("--qemu-arg", action="append", default=[])
    p.add_argument("-h", "--help", action="store_true")
    a = p.parse_args(argv)
    if a.help:
        print(__doc__.strip())
        sys.exit(0)
    names = []
    for item in a.scenario or ["vtd"]:
        for n in filter(None, item.split(",")):
            for s in SETS.get(n, [n]):
                if s not in FEATURES and s not in NET_BENCH:
                    p.error("unknown vtd scenario '%s' (%s; sets: all, "
                            "net-bench)" % (s, " ".join(list(FEATURES) +
                                                        list(NET_BENCH))))
                if s not in names:
                    names.append(s)
    a.scenarios = names
    if a.peer == "qemu" and any(s not in NET_BENCH for s in names):
        p.error("--peer qemu runs the netbench scenarios only (QEMU's "
                "intel-iommu in front of QEMU's NICs)")
    if a.bench_ms is not None and not 50 <= a.bench_ms <= 10000:
        p.error("--bench-ms must be 50..10000")
    if not 1 <= a.endpoints <= 8:
        p.error("--endpoints must be 1..8")
    if not 1 <= a.smp <= 4:
        p.error("--smp must be 1..4")
    a.build = os.path.abspath(a.build)
    a.server = os.path.join(a.build, "tools", "viommu-server")
    a.guest_bin = os.path.join(a.build, "guest", "viommu-guest")
    a.cache = os.path.abspath(a.cache or
                              os.path.join(a.build, "guest-cache"))
    a.qemu_cache = os.path.abspath(a.qemu_cache or
                                   os.path.join(a.build, "qemu-11.1"))
    # what viommu-run's shared helpers (pump, check_boot, build) read
    a.peer_kind, a.trace, a.disk = a.peer, False, []
    # with --peer qemu no viommu-server runs (check_boot: no door)
    a.door = "vfio-user" if a.peer == "ours" else None
    a.qemu_info = False
    return a


def resolve_qemu(m, a):
    """qemu-system-x86_64: the QEMU 11.1 cache's wrapper, or a path."""
    if a.qemu != "11":
        if not os.access(a.qemu, os.X_OK):
            raise m.Failure("--qemu %s: not an executable" % a.qemu)
        a.qemu_path = a.qemu
    else:
        cmd = [os.path.join(m.ROOT, "scripts", "qemu11.sh"), "--cache",
               a.qemu_cache, "--print"]
        out = subprocess.run(cmd, cwd=m.ROOT, stdout=subprocess.PIPE,
                             text=True, check=False)
        if out.returncode != 0:
            raise m.Failure("scripts/qemu11.sh failed")
        a.qemu_path = os.path.join(a.qemu_cache, "qemu-system-x86_64")
    v = subprocess.run([a.qemu_path, "--version"], stdout=subprocess.PIPE,
                       text=True, check=False).stdout
    mt = re.search(r"version (\d+\.\d+(?:\.\d+)?)", v)
    a.qemu_version = mt.group(1) if mt else "?"


def kernel_cmdline(a, boot):
    """-append: the frame kept out of RAM, the driver on, and what the
    guest cannot see itself (a VT-d unit of ours).  A netbench boot: the
    mode's words instead of intel_iommu=on."""
    words = ["console=ttyS0", "panic=-1", "loglevel=4", "tsc=reliable"]
    if a.peer == "ours":
        words.append("memmap=4K$%#x" % FRAME_GPA)
    words += boot.kernel_words + ["intremap=off",
                                  "viommu.scenario=" +
                                  ",".join(boot.scenarios),
                                  "viommu.iommu=vtd"]
    if a.peer == "qemu":
        words.append("viommu.peer=qemu")
    if a.bench_ms is not None:
        words.append("viommu.bench_ms=%d" % a.bench_ms)
    if a.seed is not None:
        words.append("viommu.seed=%d" % a.seed)
    if a.verbose:
        words.append("viommu.verbose=1")
    return " ".join(words)


def server_cmd(a, boot, links, stats, dmar):
    """viommu-server with the VT-d frame instead of a virtio-iommu (and a
    netbench boot's two NICs after the engines)."""
    cmd = [a.server, "--endpoints", str(boot.engines),
           "--endpoint-slot", str(ENDPOINT_SLOT), "--stats-json", stats,
           "--vtd-frame", "%#x" % FRAME_GPA, "--dmar", dmar]
    for spec in boot.nets:
        cmd += ["--net", spec]
    if boot.features:
        cmd += ["--vtd-features", boot.features]
    return cmd + links.server_args() + a.server_arg


def qemu_nic_args(boot):
    """--peer qemu: QEMU's intel-iommu (first, so that it is in front of
    the PCI devices that follow) and its two NICs on one hub."""
    args = ["-device", "intel-iommu,intremap=off,caching-mode=%s" %
            ("on" if boot.features else "off")]
    for i, mac in enumerate(NET_MACS):
        args += ["-netdev", "hubport,id=qn%d,hubid=0" % i,
                 "-device", "virtio-net-pci,netdev=qn%d,addr=%#x,mac=%s,"
                 "disable-legacy=on,romfile=,iommu_platform=on" %
                 (i, ENDPOINT_SLOT + i, mac)]
    return args


def qemu_cmd(a, boot, kernel, initrd, dmar, links):
    """The QEMU command line: q35, and either our DMAR with our functions
    over vfio-user (no IOMMU device of QEMU's) or, with --peer qemu,
    QEMU's intel-iommu and NICs."""
    cmd = [a.qemu_path, "-accel", "tcg", "-cpu", "max",
           "-m", MEM, "-smp", str(boot.smp),
           "-M", "q35,memory-backend=ram",
           "-object", "memory-backend-memfd,id=ram,size=%s,share=on,"
           "seal=on" % MEM,
           "-nographic", "-nodefaults", "-serial", "stdio",
           "-monitor", "none", "-no-reboot",
           "-kernel", kernel, "-initrd", initrd,
           "-append", kernel_cmdline(a, boot)]
    if a.peer == "qemu":
        return cmd + qemu_nic_args(boot) + a.qemu_arg
    cmd += ["-acpitable", "file=" + dmar]
    for i, path in links.qemu_links():
        dev = {"driver": "vfio-user-pci", "id": "vu%d" % i,
               "socket": {"type": "unix", "path": path},
               "addr": "%#x" % (ENDPOINT_SLOT + i - 1)}
        cmd += ["-device", json.dumps(dev, separators=(",", ":"))]
    return cmd + a.qemu_arg


def run_boot(m, a, boot, kernel, initrd, index):
    """Boot once: server (which writes the DMAR), QEMU, stream, collect."""
    import queue
    tmp = tempfile.mkdtemp(prefix="viommu-vtd-")
    stats = os.path.join(tmp, "stats.json")
    dmar = os.path.join(tmp, "dmar.bin")
    q = queue.Queue()
    server = qemu = None
    t0 = time.monotonic()
    boot.timeout = a.timeout or 600
    m.log("boot %d (%s: features %s), timeout %d s" %
          (index, boot.name, boot.features or "default", boot.timeout))
    for tag, name in (("qemu", "console.log"), ("server", "server.log")):
        boot.logs[tag] = open(os.path.join(tmp, name), "w",
                              encoding="utf-8")
    try:
        links = None
        if a.peer == "ours":
            links = m.VfioUserLinks(
                range(1, boot.engines + len(boot.nets) + 1), tmp)
            cmd = server_cmd(a, boot, links, stats, dmar)
            if a.verbose:
                m.log("server: " + " ".join(shlex.quote(c) for c in cmd))
            server = boot.server = m.spawn(cmd, [], "server", q)
            links.server_started(server)
            if not os.path.exists(dmar):
                raise m.Failure("viommu-server wrote no DMAR table")
        cmd = qemu_cmd(a, boot, kernel, initrd, dmar, links)
        if a.verbose:
            m.log("qemu: " + " ".join(shlex.quote(c) for c in cmd))
        qemu = m.spawn(cmd, [], "qemu", q, merge=True)
        m.pump(a, boot, q, qemu, t0 + boot.timeout)
    finally:
        boot.qemu_rc = m.stop(qemu, 10 if boot.done else 0)
        boot.server_rc = m.stop(server, 15)
        boot.server = None
        time.sleep(0.1)
        m.drain(a, boot, q)
        for f in boot.logs.values():
            f.close()
        boot.logs = {}
        boot.seconds = time.monotonic() - t0
        boot.stats = m.load_stats(stats) if server else None
        m.cleanup(a, tmp)
    m.check_boot(a, boot)
    if boot.net_bench:
        check_net(a, boot)
    else:
        check_vtd(boot)


def fail(boot, scenario, why):
    """Fail a guest scenario's result (or the boot) with @why."""
    f = boot.results.get(scenario)
    if f and f.get("status") == "pass":
        f["status"] = "fail"
        f["reason"] = why
    elif not f:
        boot.errors.append(why)


def check_net(a, boot):
    """A netbench boot: both NICs got the mode's domain type; with our
    VT-d in front of them (not the baseline) the server served the frame:
    register writes fed, invalidation descriptors and waits run without a
    queue error, translations done, no translation fault."""
    f = boot.results.get("netbench")
    want = NET_BENCH[boot.name][2]
    if f and f.get("status") == "pass":
        got = [f.get("domain0"), f.get("domain1")]
        if got != [want, want]:
            fail(boot, "netbench", "the NICs' IOMMU domains are %s, want "
                 "%s" % ("/".join(map(str, got)), want))
    if a.peer != "ours" or want == "none":
        return
    s = (boot.stats or {}).get("vtd")
    if not s:
        boot.errors.append("no vtd counters in the server's statistics")
        return
    if not s.get("frame", {}).get("writes") or not s.get("waits") or \
            not s.get("translations"):
        fail(boot, "netbench", "the server saw no register writes, "
             "invalidation waits or translations through the frame")
    if s.get("queue_errors") or s.get("faults"):
        fail(boot, "netbench", "%s invalidation queue errors, %s "
             "translation faults" % (s.get("queue_errors"), s.get("faults")))


def check_vtd(boot):
    """The server's side: the frame was served, the driver's queued
    invalidations ran without error, translations went through the
    model, and the faults the guest caused were recorded with the right
    reasons (read by the server: the guest has no fault interrupt)."""
    s = (boot.stats or {}).get("vtd")
    if not s:
        boot.errors.append("no vtd counters in the server's statistics")
        return
    fr = s.get("frame", {})
    reasons = s.get("fault_reasons", {})
    if not fr.get("writes") or not s.get("descriptors") or \
            not s.get("waits"):
        fail(boot, "vtd", "the server saw no register writes, queued "
             "descriptors or invalidation waits through the frame")
    if s.get("queue_errors"):
        fail(boot, "vtd", "%d invalidation queue errors" %
             s["queue_errors"])
    if boot.results.get("dma", {}).get("status") == "pass" and \
            not s.get("translations"):
        fail(boot, "dma", "no translation went through the VT-d model")
    for g, want in REASONS.items():
        if boot.results.get(g, {}).get("status") == "pass":
            got = {r: reasons[r] for r in want if reasons.get(r)}
            if not got:
                fail(boot, g, "no fault record of reason %s (records: %s)"
                     % ("/".join(want), reasons))
            else:
                boot.results[g]["fault"] = ",".join(
                    "%s:%d" % kv for kv in sorted(got.items()))


def outcomes(m, boot):
    """(name, status, reason, fields): viommu-run's, named BOOT/SCENARIO."""
    return [("%s/%s" % (boot.name, n), st, r, f)
            for n, st, r, f in m.outcomes(boot)]


def summary(m, a, boots, t_total):
    """The readable summary; the failure count."""
    npass = nfail = nskip = 0
    print("\n== viommu-run --iommu vtd summary (our VT-d through a polled "
          "register frame)")
    print("  QEMU %s: %s" % (a.qemu_version, a.qemu_path))
    for i, b in enumerate(boots, 1):
        print("  boot %d: %s (features %s); %.1f s" % (
            i, b.name, b.features or "default", b.seconds))
        for e in b.errors:
            print("    ERROR: %s" % e)
        for n, st, reason, f in outcomes(m, b):
            npass += st == "pass"
            nfail += st == "fail"
            nskip += st == "skip"
            extra = " ".join("%s=%s" % (k, v) for k, v in f.items()
                             if k not in ("scenario", "status", "reason",
                                          "checks", "ms"))
            print("    %-4s %-18s %6s ms  %s" % (
                st.upper(), n, f.get("ms", "-"),
                ("reason: " + reason) if reason else extra[:100]))
        s = (b.stats or {}).get("vtd")
        if s:
            fr = s.get("frame", {})
            print("    server: descriptors %s (waits %s, queue errors %s), "
                  "translations %s (faults %s, recorded %s, lost %s), "
                  "fault reasons %s" %
                  (s.get("descriptors"), s.get("waits"),
                   s.get("queue_errors"), s.get("translations"),
                   s.get("faults"), s.get("faults_recorded"),
                   s.get("faults_lost"), s.get("fault_reasons")))
            print("    frame: rounds %s, writes fed %s, publishes %s, "
                  "guest won %s, polls %s" %
                  (fr.get("rounds"), fr.get("writes"), fr.get("publishes"),
                   fr.get("cas_lost"), fr.get("polls")))
    print("  time taken %.1f s" % t_total)
    print("%d passed, %d failed, %d skipped" % (npass, nfail, nskip))
    return nfail


def write_outputs(m, a, boots):
    """--json and --tap."""
    if a.json:
        doc = {"arch": "x86_64", "iommu": "vtd-frame" if a.peer == "ours"
               else "qemu-intel-iommu", "peer": a.peer,
               "qemu": {"path": a.qemu_path, "version": a.qemu_version},
               "boots": [{"name": b.name, "features": b.features,
                          "seconds": b.seconds, "errors": b.errors,
                          "qemu_rc": b.qemu_rc, "server_rc": b.server_rc,
                          "boot": b.boot_line,
                          "results": [{"scenario": n, "status": s,
                                       "reason": r, "fields": f}
                                      for n, s, r, f in outcomes(m, b)],
                          "bench": b.bench,
                          "server_stats": b.stats} for b in boots]}
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    if a.tap:
        with open(a.tap, "w", encoding="utf-8") as f:
            for b in boots:
                for n, s, r, _ in outcomes(m, b):
                    f.write("%s - guest x86: %s (our VT-d frame, QEMU "
                            "%s)%s\n" % ("ok" if s == "pass" else "not ok",
                                         n, a.qemu_version,
                                         (": " + r.replace("#", ""))
                                         if r and s != "pass" else ""))


def make_boot(m, a, name):
    """The Boot of scenario @name: vtd/vtd-cm (the guest's VT-d and VFIO
    scenarios on our engines) or a netbench mode (two NICs, no engine)."""
    if name in NET_BENCH:
        b = m.Boot(["netbench"], a.smp, False, None)
        b.features, b.kernel_words, _ = NET_BENCH[name]
        b.engines, b.net_bench = 0, True
        # viommu-run's check_nets wants the mode's domain type too
        b.net_mode = name if name in m.NET_MODES else "netbench-strict"
        b.nets = ["mac=" + mac + (",noiommu" if name == "netbench-noiommu"
                                  else "") for mac in NET_MACS]
    else:
        guest = list(GUEST_SCENARIOS)
        if a.endpoints >= 2:
            guest.append("isolation")
        b = m.Boot(guest, a.smp, False, None)
        b.features, b.kernel_words = FEATURES[name], ["intel_iommu=on"]
        b.engines, b.net_bench = a.endpoints, False
    if a.peer == "qemu":
        b.nets = []
    b.name = name
    return b


def main(argv, m):
    """viommu-run --iommu vtd; @m is viommu-run itself (its helpers)."""
    a = parse_args(argv, m.ROOT)
    for sig in (m.signal.SIGTERM, m.signal.SIGHUP, m.signal.SIGINT):
        m.signal.signal(sig, m.on_signal)
    t0 = time.monotonic()
    boots = [make_boot(m, a, name) for name in a.scenarios]
    try:
        resolve_qemu(m, a)
        m.log("QEMU %s: %s" % (a.qemu_version, a.qemu_path))
        kernel, initrd = m.build(a)
        for i, b in enumerate(boots, 1):
            run_boot(m, a, b, kernel, initrd, i)
    except m.Failure as e:
        m.log("error: %s" % e)
        for b in boots:
            if not b.errors and not b.results:
                b.errors.append(str(e))
    except KeyboardInterrupt as e:
        m.log("interrupted (%s): torn down" % (e or "SIGINT"))
        write_outputs(m, a, boots)
        return 130
    nfail = summary(m, a, boots, time.monotonic() - t0)
    write_outputs(m, a, boots)
    return 1 if nfail else 0
