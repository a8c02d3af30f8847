#!/usr/bin/env python3
"""test_viommu_arm64.py - tools/viommu_arm64.py without booting anything:
the --arch detection, the scenario sets, and the device-tree patch (the
frame's no-map reserved memory, the arm,smmu-v3 node, the PCIe host
bridge's iommu-map and a phandle no QEMU node uses; compiled with dtc
when it is installed).  TAP output.  Usage: test_viommu_arm64.py TOOLS_DIR
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else
                os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import viommu_arm64 as v  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = []

# A cut-down `dtc -O dts` of QEMU's virt tree: what patch_dts relies on.
QEMU_DTS = """/dts-v1/;

/ {
\tinterrupt-parent = <0x8002>;
\t#size-cells = <0x02>;
\t#address-cells = <0x02>;
\tcompatible = "linux,dummy-virt";

\tpcie@10000000 {
\t\tinterrupt-map-mask = <0x1800 0x00 0x00 0x07>;
\t\t#address-cells = <0x03>;
\t\t#size-cells = <0x02>;
\t\tdevice_type = "pci";
\t\tcompatible = "pci-host-ecam-generic";
\t\treg = <0x40 0x10000000 0x00 0x10000000>;
\t\tmsi-parent = <0x8003>;
\t};

\tintc@8000000 {
\t\tphandle = <0x8002>;
\t\tcompatible = "arm,cortex-a15-gic";
\t\t#interrupt-cells = <0x03>;
\t\tinterrupt-controller;
\t\treg = <0x00 0x8000000 0x00 0x10000 0x00 0x8010000 0x00 0x10000>;

\t\tv2m@8020000 {
\t\t\tphandle = <0x8003>;
\t\t\tmsi-controller;
\t\t\tcompatible = "arm,gic-v2m-frame";
\t\t\treg = <0x00 0x8020000 0x00 0x1000>;
\t\t};
\t};
};
"""


def check(cond, name):
    """One TAP result."""
    RESULTS.append((bool(cond), name))


def test_wanted():
    check(v.wanted(["--arch", "arm64"]), "wanted: --arch arm64")
    check(v.wanted(["--scenario", "x", "--arch=arm64"]),
          "wanted: --arch=arm64")
    check(not v.wanted(["--arch", "x86_64"]), "not wanted: --arch x86_64")
    check(not v.wanted(["--scenario", "arm64"]),
          "not wanted: arm64 as another option's value")


def test_sets():
    a = v.parse_args(["--arch", "arm64"])
    check(a.scenarios == ["smmu-s1", "smmu-s2"], "default set: both stages")
    a = v.parse_args(["--arch", "arm64", "--scenario", "smmu-s2,all"])
    check(a.scenarios == ["smmu-s2", "smmu-s1"],
          "a set after a name adds only what is missing")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            v.parse_args(["--arch", "arm64", "--scenario", "bogus"])
            code = 0
        except SystemExit as e:
            code = e.code
    check(code == 2 and "bogus" in err.getvalue(),
          "an unknown scenario is a usage error naming it")
    check(v.STAGES["smmu-s2"][0] == "0x7e" and v.STAGES["smmu-s2"][1] == 2,
          "smmu-s2: the model without stage 1, Linux must use stage 2")


def test_patch():
    out = v.patch_dts(QEMU_DTS)
    ph = re.search(r"smmuv3@7ff00000 \{.*?phandle = <(0x[0-9a-f]+)>", out,
                   re.S)
    check(ph is not None, "the arm,smmu-v3 node has a phandle")
    if not ph:
        return
    p = int(ph.group(1), 16)
    check(p > 0x8003, "its phandle is above every QEMU phandle")
    pcie = out[out.index("pcie@10000000 {"):]
    pcie = pcie[:pcie.index("};")]
    check("iommu-map = <0x00 %#x 0x00 0x10000>;" % p in pcie,
          "iommu-map in the PCIe host bridge: RID r -> StreamID r")
    check(re.search(r"viommu-smmu-frame@7ff00000 \{\s*reg = <0x00 0x7ff00000"
                    r" 0x00 0x20000>;\s*no-map;", out) is not None,
          "a no-map reserved range of 128 KiB at the frame")
    check(re.search(r'smmuv3@7ff00000 \{\s*compatible = "arm,smmu-v3";\s*'
                    r"reg = <0x00 0x7ff00000 0x00 0x20000>;", out)
          is not None, "the SMMU node's registers are the frame")
    check("interrupts" not in out[out.index("smmuv3@7ff00000"):],
          "the SMMU node has no interrupts (the frame cannot raise one)")
    check(out.rstrip().endswith("};") and out.count("{") == out.count("}"),
          "the tree stays balanced")
    try:
        v.patch_dts(QEMU_DTS.replace("pcie@10000000", "pci@10000000"))
        raised = False
    except ValueError:
        raised = True
    check(raised, "no PCIe host bridge: refused")
    dtc = shutil.which("dtc")
    if not dtc:
        RESULTS.append((True, "dtc compiles the patched tree # SKIP no dtc"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.dts")
        with open(src, "w", encoding="utf-8") as f:
            f.write(out)
        r = subprocess.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o",
                            os.path.join(tmp, "t.dtb"), src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           check=False)
        check(r.returncode == 0, "dtc compiles the patched tree")


def main():
    test_wanted()
    test_sets()
    test_patch()
    print("1..%d" % len(RESULTS))
    for i, (ok, name) in enumerate(RESULTS, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    return 0 if all(ok for ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
