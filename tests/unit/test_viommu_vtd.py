#!/usr/bin/env python3
"""test_viommu_vtd.py - tools/viommu_vtd.py (viommu-run --iommu vtd)
without booting anything: the --iommu detection, the scenario sets, the
guest kernel's command line (the frame kept out of RAM with memmap=$, the
driver on, interrupt remapping off), QEMU's command line (our DMAR, no
intel-iommu device of QEMU's, the engines at their slots), the server's
(the frame and the DMAR), the host-side checks on the server's counters,
and the netbench boots (ours behind the frame, QEMU's intel-iommu).
TAP output.  Usage: test_viommu_vtd.py TOOLS_DIR
"""

import contextlib
import io
import os
import sys
import types

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else
                os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import viommu_vtd as v  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = []
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def check(cond, name):
    """One TAP result."""
    RESULTS.append((bool(cond), name))


class Links:
    """A stand-in for viommu-run's VfioUserLinks."""

    def server_args(self):
        return ["--door", "vfio-user", "--link", "1:path=/t/l1.sock"]

    def qemu_links(self):
        return [(1, "/t/l1.sock"), (2, "/t/l2.sock")]


def test_wanted():
    check(v.wanted(["--iommu", "vtd"]), "wanted: --iommu vtd")
    check(v.wanted(["--scenario", "x", "--iommu=vtd"]), "wanted: --iommu=vtd")
    check(not v.wanted(["--arch", "arm64"]), "not wanted: --arch arm64")
    check(not v.wanted(["--scenario", "vtd"]),
          "not wanted: vtd as another option's value")


def test_sets():
    a = v.parse_args(["--iommu", "vtd"], ROOT)
    check(a.scenarios == ["vtd"], "default: the vtd boot")
    a = v.parse_args(["--iommu", "vtd", "--scenario", "vtd-cm,all"], ROOT)
    check(a.scenarios == ["vtd-cm", "vtd"],
          "a set after a name adds only what is missing")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            v.parse_args(["--iommu", "vtd", "--scenario", "bogus"], ROOT)
            code = 0
        except SystemExit as e:
            code = e.code
    check(code == 2 and "bogus" in err.getvalue(),
          "an unknown scenario is a usage error naming it")
    check(v.FEATURES["vtd-cm"] == "0x23", "vtd-cm: caching mode on")


def test_cmdlines():
    a = v.parse_args(["--iommu", "vtd", "--endpoints", "2"], ROOT)
    a.qemu_path = "/q/qemu-system-x86_64"
    boot = types.SimpleNamespace(scenarios=["vtd", "dma"], smp=1,
                                 features="0x23", engines=2, nets=[],
                                 kernel_words=["intel_iommu=on"])
    words = v.kernel_cmdline(a, boot).split()
    check("memmap=4K$%#x" % v.FRAME_GPA in words,
          "the frame is E820-reserved with memmap=4K$GPA")
    check("intel_iommu=on" in words and "intremap=off" in words,
          "intel-iommu on, interrupt remapping off")
    check("viommu.iommu=vtd" in words and
          "viommu.scenario=vtd,dma" in words, "the guest's scenarios")
    q = v.qemu_cmd(a, boot, "k", "i", "/t/dmar.bin", Links())
    check(q[q.index("-acpitable") + 1] == "file=/t/dmar.bin",
          "QEMU loads our DMAR")
    check(not any("intel-iommu" in w for w in q),
          "no intel-iommu device of QEMU's")
    check(any("share=on" in w for w in q), "guest RAM is shared")
    devs = [w for w in q if "vfio-user-pci" in w]
    check(len(devs) == 2 and '"addr":"0x5"' in devs[0] and
          '"addr":"0x6"' in devs[1], "the engines at 00:05.0 and 00:06.0")
    s = v.server_cmd(a, boot, Links(), "/t/s.json", "/t/dmar.bin")
    check(s[s.index("--vtd-frame") + 1] == "%#x" % v.FRAME_GPA and
          s[s.index("--dmar") + 1] == "/t/dmar.bin" and
          s[s.index("--vtd-features") + 1] == "0x23",
          "the server serves the frame, writes the DMAR, gets the features")


def test_checks():
    def boot(stats, results):
        return types.SimpleNamespace(stats=stats, results=results,
                                     errors=[])
    ok = {"vtd": {"frame": {"writes": 40}, "descriptors": 60, "waits": 30,
                  "queue_errors": 0, "translations": 3000,
                  "fault_reasons": {"0x05": 8, "0x06": 3}}}
    res = {g: {"status": "pass"} for g in ("vtd", "dma", "readonly",
                                           "unmapped")}
    b = boot(ok, res)
    v.check_vtd(b)
    check(all(r["status"] == "pass" for r in b.results.values()) and
          not b.errors, "a served frame with the faults recorded passes")
    check(b.results["readonly"].get("fault") == "0x05:8",
          "readonly names its fault reason")
    bad = dict(ok["vtd"], fault_reasons={"0x06": 3})
    b = boot({"vtd": bad}, {g: dict(r) for g, r in res.items()})
    v.check_vtd(b)
    check(b.results["readonly"]["status"] == "fail" and
          b.results["unmapped"]["status"] == "pass",
          "readonly without a 0x05 record fails")
    bad = dict(ok["vtd"], queue_errors=1)
    b = boot({"vtd": bad}, {g: dict(r) for g, r in res.items()})
    v.check_vtd(b)
    check(b.results["vtd"]["status"] == "fail", "a queue error fails vtd")
    b = boot({}, {})
    v.check_vtd(b)
    check(b.errors, "no vtd counters: a boot error")


class FakeRun:
    """The parts of viommu-run that make_boot() uses."""
    NET_MODES = {"netbench-noiommu": 0, "netbench": 0, "netbench-strict": 0}

    class Boot:
        def __init__(self, scenarios, smp, _passthrough, _cmd):
            self.scenarios = scenarios
            self.smp = smp
            self.nets = ["mac=x", "mac=y"]
            self.net_mode = None


def test_netbench():
    a = v.parse_args(["--iommu", "vtd", "--scenario", "net-bench"], ROOT)
    check(a.scenarios == list(v.NET_BENCH), "net-bench: the four modes")
    b = v.make_boot(FakeRun, a, "netbench-noiommu")
    words = v.kernel_cmdline(a, b).split()
    check("intel_iommu=off" in words and "intel_iommu=on" not in words and
          "viommu.scenario=netbench" in words,
          "netbench-noiommu: the driver off, the guest runs netbench")
    check(b.engines == 0 and len(b.nets) == 2 and
          all(n.endswith(",noiommu") for n in b.nets),
          "netbench-noiommu: two NICs of ours, untranslated, no engine")
    b = v.make_boot(FakeRun, a, "netbench-strict-cm")
    words = v.kernel_cmdline(a, b).split()
    check("iommu.strict=1" in words and "intel_iommu=on" in words,
          "netbench-strict-cm: strict")
    s = v.server_cmd(a, b, Links(), "/t/s.json", "/t/dmar.bin")
    check(s[s.index("--vtd-features") + 1] == "0x23" and
          s.count("--net") == 2 and s[s.index("--endpoints") + 1] == "0",
          "netbench-strict-cm: caching mode, two NICs behind the frame")
    check(b.net_mode == "netbench-strict",
          "viommu-run's NIC check wants the strict domain type")
    a = v.parse_args(["--iommu", "vtd", "--peer", "qemu", "--scenario",
                      "netbench-strict-cm", "--bench-ms", "200"], ROOT)
    a.qemu_path = "/q/qemu-system-x86_64"
    b = v.make_boot(FakeRun, a, "netbench-strict-cm")
    q = v.qemu_cmd(a, b, "k", "i", "/t/dmar.bin", None)
    iommu = [w for w in q if w.startswith("intel-iommu")]
    nics = [w for w in q if w.startswith("virtio-net-pci")]
    check(iommu == ["intel-iommu,intremap=off,caching-mode=on"] and
          q.index(iommu[0]) < q.index(nics[0]),
          "--peer qemu: QEMU's intel-iommu with caching mode, before "
          "the NICs")
    check(len(nics) == 2 and all("iommu_platform=on" in w for w in nics)
          and "-acpitable" not in q and b.nets == [] and a.door is None,
          "--peer qemu: QEMU's two NICs, no DMAR and no server of ours")
    words = v.kernel_cmdline(a, b).split()
    check("viommu.bench_ms=200" in words and
          not any(w.startswith("memmap=") for w in words),
          "--peer qemu: no frame reserved; --bench-ms reaches the guest")
    b = v.make_boot(FakeRun, a, "netbench-strict")
    q = v.qemu_cmd(a, b, "k", "i", "/t/dmar.bin", None)
    check("intel-iommu,intremap=off,caching-mode=off" in q,
          "--peer qemu strict: caching mode off")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            v.parse_args(["--iommu", "vtd", "--peer", "qemu"], ROOT)
            code = 0
        except SystemExit as e:
            code = e.code
    check(code == 2, "--peer qemu runs only the netbench scenarios")


def test_net_checks():
    def boot(name, stats, domain):
        return types.SimpleNamespace(
            name=name, stats=stats, errors=[],
            results={"netbench": {"status": "pass", "domain0": domain,
                                  "domain1": domain}})
    ours = types.SimpleNamespace(peer="ours")
    served = {"vtd": {"frame": {"writes": 9}, "waits": 5, "translations": 7,
                      "queue_errors": 0, "faults": 0}}
    b = boot("netbench-strict", served, "DMA")
    v.check_net(ours, b)
    check(b.results["netbench"]["status"] == "pass",
          "netbench-strict: DMA domains and a served frame pass")
    b = boot("netbench", served, "DMA")
    v.check_net(ours, b)
    check(b.results["netbench"]["status"] == "fail",
          "netbench (lazy) with DMA domains fails")
    b = boot("netbench-strict", {"vtd": dict(served["vtd"], waits=0)},
             "DMA")
    v.check_net(ours, b)
    check(b.results["netbench"]["status"] == "fail",
          "no invalidation wait through the frame fails")
    b = boot("netbench-noiommu", None, "none")
    v.check_net(ours, b)
    check(b.results["netbench"]["status"] == "pass" and not b.errors,
          "the baseline needs no VT-d counters")


def main():
    test_wanted()
    test_sets()
    test_cmdlines()
    test_checks()
    test_netbench()
    test_net_checks()
    for i, (ok, name) in enumerate(RESULTS, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    print("1..%d" % len(RESULTS))
    return 0 if all(ok for ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
