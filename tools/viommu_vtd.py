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

import os
import shlex

import viommu_frame as frame

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
    p = frame.parser("viommu-run --iommu vtd", "--iommu")
    p.add_argument("--peer", choices=("ours", "qemu"), default="ours")
    p.add_argument("--bench-ms", type=int)
    # what viommu-bench guest-io passes to every viommu-run (ignored:
    # the NICs are QEMU's with --peer qemu, the door is vfio-user)
    p.add_argument("--door")
    p.add_argument("--qemu-net", action="store_true")
    a = frame.parse(p, argv, __doc__)
    names = frame.scenario_names(p, a.scenario, "vtd",
                                 list(FEATURES) + list(NET_BENCH), SETS,
                                 "vtd")
    a.scenarios = names
    if a.peer == "qemu" and any(s not in NET_BENCH for s in names):
        p.error("--peer qemu runs the netbench scenarios only (QEMU's "
                "intel-iommu in front of QEMU's NICs)")
    if a.bench_ms is not None and not 50 <= a.bench_ms <= 10000:
        p.error("--bench-ms must be 50..10000")
    peer = a.peer
    frame.finish_args(p, a, root, "guest", "guest-cache")
    a.peer = a.peer_kind = peer
    # with --peer qemu no viommu-server runs (check_boot: no door)
    a.door = "vfio-user" if peer == "ours" else None
    return a


def resolve_qemu(m, a):
    """qemu-system-x86_64: the QEMU 11.1 cache's wrapper, or a path."""
    frame.resolve_qemu(m, a, m.ROOT, "qemu-system-x86_64")


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
    return cmd + frame.vfio_user_devices(links, ENDPOINT_SLOT) + a.qemu_arg


def run_boot(m, a, boot, kernel, initrd, index):
    """Boot once: server (which writes the DMAR), QEMU, stream, collect."""
    def launch(tmp, stats, q, procs, deadline):
        dmar = os.path.join(tmp, "dmar.bin")
        links = None
        if a.peer == "ours":
            links = m.VfioUserLinks(
                range(1, boot.engines + len(boot.nets) + 1), tmp)
            cmd = server_cmd(a, boot, links, stats, dmar)
            if a.verbose:
                m.log("server: " + " ".join(shlex.quote(c) for c in cmd))
            procs.server = boot.server = m.spawn(cmd, [], "server", q)
            links.server_started(procs.server)
            if not os.path.exists(dmar):
                raise m.Failure("viommu-server wrote no DMAR table")
        cmd = qemu_cmd(a, boot, kernel, initrd, dmar, links)
        if a.verbose:
            m.log("qemu: " + " ".join(shlex.quote(c) for c in cmd))
        procs.qemu = m.spawn(cmd, [], "qemu", q, merge=True)
        m.pump(a, boot, q, procs.qemu, deadline)

    frame.run_boot(m, a, boot, "viommu-vtd-", "%d (%s: %s)" % (
        index, boot.name, describe_iommu(a, boot)), 600, launch)
    if boot.net_bench:
        check_net(a, boot)
    else:
        check_vtd(boot)


def describe_iommu(a, boot):
    """The IOMMU of @boot, for the log and the summary."""
    if a.peer == "qemu":
        return "QEMU's intel-iommu, caching-mode=%s" % (
            "on" if boot.features else "off")
    return "features %s" % (boot.features or "default")


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
            frame.fail(boot, "netbench", "the NICs' IOMMU domains are %s, want "
                 "%s" % ("/".join(map(str, got)), want))
    if a.peer != "ours" or want == "none":
        return
    s = (boot.stats or {}).get("vtd")
    if not s:
        boot.errors.append("no vtd counters in the server's statistics")
        return
    if not s.get("frame", {}).get("writes") or not s.get("waits") or \
            not s.get("translations"):
        frame.fail(boot, "netbench", "the server saw no register writes, "
             "invalidation waits or translations through the frame")
    if s.get("queue_errors") or s.get("faults"):
        frame.fail(boot, "netbench", "%s invalidation queue errors, %s "
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
        frame.fail(boot, "vtd", "the server saw no register writes, queued "
             "descriptors or invalidation waits through the frame")
    if s.get("queue_errors"):
        frame.fail(boot, "vtd", "%d invalidation queue errors" %
             s["queue_errors"])
    if boot.results.get("dma", {}).get("status") == "pass" and \
            not s.get("translations"):
        frame.fail(boot, "dma", "no translation went through the VT-d model")
    for g, want in REASONS.items():
        if boot.results.get(g, {}).get("status") == "pass":
            got = {r: reasons[r] for r in want if reasons.get(r)}
            if not got:
                frame.fail(boot, g, "no fault record of reason %s (records: %s)"
                     % ("/".join(want), reasons))
            else:
                boot.results[g]["fault"] = ",".join(
                    "%s:%d" % kv for kv in sorted(got.items()))


def server_lines(b):
    """The VT-d model's and the frame's counters of boot @b."""
    s = (b.stats or {}).get("vtd")
    if not s:
        return []
    return ["    server: descriptors %s (waits %s, queue errors %s), "
            "translations %s (faults %s, recorded %s, lost %s), "
            "fault reasons %s" %
            (s.get("descriptors"), s.get("waits"), s.get("queue_errors"),
             s.get("translations"), s.get("faults"),
             s.get("faults_recorded"), s.get("faults_lost"),
             s.get("fault_reasons")),
            frame.frame_line(s.get("frame", {}))]


def report(m, a, boots, t_total):
    """The summary (unless interrupted: @t_total None) and the outputs;
    the failure count."""
    nfail = 0
    ours = a.peer == "ours"
    if t_total is not None:
        nfail = frame.summary(
            m, a, boots, t_total, "viommu-run --iommu vtd summary (%s)" %
            ("our VT-d through a polled register frame" if ours else
             "QEMU's intel-iommu"),
            lambda b: "%s (%s)" % (b.name, describe_iommu(a, b)),
            server_lines)
    frame.write_outputs(
        m, a, boots, {"arch": "x86_64", "iommu": "vtd-frame" if ours else
                      "qemu-intel-iommu", "peer": a.peer},
        lambda b: {"features": b.features},
        ("x86", "our VT-d frame" if ours else "QEMU's intel-iommu"))
    return nfail


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
    boots = [make_boot(m, a, name) for name in a.scenarios]

    def prepare():
        resolve_qemu(m, a)
        m.log("QEMU %s: %s" % (a.qemu_version, a.qemu_path))
        return m.build(a)

    return frame.main(m, a, boots, prepare,
                      lambda b, k, i, n: run_boot(m, a, b, k, i, n),
                      lambda t: report(m, a, boots, t))
