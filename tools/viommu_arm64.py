"""viommu_arm64 - `viommu-run --arch arm64`: a real arm64 Linux guest under
QEMU's qemu-system-aarch64 (TCG, virt board) whose stock arm-smmu-v3 driver
drives our SMMUv3 model through a register frame in its shared RAM
(viommu-server --smmuv3-frame; docs/SMMUV3-GUEST.md).

Usage: viommu-run --arch arm64 [--scenario NAME[,NAME...]]... [--endpoints N]
                  [--qemu 11|PATH] [--timeout S] [--smp N] [--keep]
                  [--json FILE] [--tap FILE] [--verbose] [--quiet]
                  [--seed N] [--build DIR] [--cache DIR] [--no-build]
                  [--qemu-cache DIR] [--server-arg ARG]...
                  [--qemu-arg ARG]...

Scenarios (each is one boot): smmu-s1 (the model offers stage 1 and stage
2: Linux takes stage 1) and smmu-s2 (the model offers stage 2 only,
--smmuv3-features 0x7e: Linux must use stage 2); set "all" = both, the
default.  Every boot runs the guest program's smmu (the arm-smmu-v3 driver
bound our model at the frame; the stage its domains use; each engine in a
group of its own under it), dma (VFIO map, DMA both ways and ring mode,
verified byte for byte, unmap), readonly (a device write to a read-only
map refused) and unmapped (never-mapped and just-unmapped IOVAs refused);
with --endpoints 2 or more also isolation (two engines in two containers,
so two SMMU domains, cannot reach each other's IOVAs).
After power-off the server's counters must show the frame was served
(register writes fed, commands run, CMD_SYNCs completed, no command
error) and its reading of the event queue in guest RAM must hold
F_PERMISSION (readonly) and F_TRANSLATION (unmapped) records.

How a boot is made: the guest program is cross-compiled
(aarch64-linux-gnu-gcc, static) into BUILD/guest-arm64 (also with
--no-build, which only skips ninja); guest/build-image.sh --arch arm64
makes the kernel (Debian's 6.12 arm64 package) and initramfs in --cache
(default BUILD/guest-cache-arm64); the QEMU 11.1 cache (scripts/qemu11.sh,
--qemu-cache, default BUILD/qemu-11.1) gives qemu-system-aarch64.  The device tree is QEMU's
own (-M virt,dumpdtb) with a no-map reserved-memory range at FRAME_GPA, an
arm,smmu-v3 node over it and iommu-map (RID r -> StreamID r) on the PCIe
host bridge, compiled with dtc.  Guest RAM is a shared memfd
(memory-backend-memfd share=on), which QEMU hands to viommu-server with
each vfio-user DMA_MAP; our DMA engines are vfio-user-pci devices at
00:05.0, ... and their StreamID is their BDF.
"""

import os
import re
import shlex
import subprocess

import viommu_frame as frame

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
MEM = "1G"
RAM_BASE = 0x40000000
FRAME_GPA = 0x7ff00000   # the last MiB of 1 GiB of RAM; 128 KiB used
FRAME_SIZE = 0x20000
ENDPOINT_SLOT = 5
# scenario -> (SMMUv3 features for viommu-server, the stage Linux must use)
STAGES = {"smmu-s1": (None, 1), "smmu-s2": ("0x7e", 2)}
SETS = {"all": list(STAGES)}
GUEST_SCENARIOS = ["smmu", "dma", "readonly", "unmapped"]
# guest scenario -> the event type it must leave in the event queue
EVENTS = {"readonly": "F_PERMISSION", "unmapped": "F_TRANSLATION",
          "isolation": "F_TRANSLATION"}
CROSS_CC = "aarch64-linux-gnu-gcc"


def wanted(argv):
    """Whether the command line asks for the arm64 guest."""
    for i, w in enumerate(argv):
        if w == "--arch=arm64" or (w == "--arch" and i + 1 < len(argv)
                                   and argv[i + 1] == "arm64"):
            return True
    return False


def parse_args(argv):
    """The arm64 command line."""
    p = frame.parser("viommu-run --arch arm64", "--arch")
    a = frame.parse(p, argv, __doc__)
    a.scenarios = frame.scenario_names(p, a.scenario, "all", STAGES, SETS,
                                       "arm64")
    frame.finish_args(p, a, ROOT, "guest-arm64", "guest-cache-arm64")
    return a


# --- build ----------------------------------------------------------------

def build_guest(m, a):
    """Cross-compile the static guest program when a source is newer."""
    srcs = sorted(os.path.join(ROOT, "guest", f)
                  for f in os.listdir(os.path.join(ROOT, "guest"))
                  if f.endswith((".c", ".h")))
    out = a.guest_bin
    if os.path.exists(out) and os.path.getmtime(out) >= max(
            os.path.getmtime(s) for s in srcs):
        return
    if not shutil_which(CROSS_CC):
        raise m.Failure("no %s (scripts/deps.sh guest installs "
                        "gcc-aarch64-linux-gnu)" % CROSS_CC)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    m.run_step([CROSS_CC, "-std=gnu11", "-O2", "-Wall", "-Wextra",
                "-Werror", "-D_GNU_SOURCE", "-static", "-o", out] +
               [s for s in srcs if s.endswith(".c")] + ["-lpthread"],
               "cross-compile the arm64 guest program")


def shutil_which(name):
    """shutil.which, without importing it at the top (kept small)."""
    import shutil
    return shutil.which(name)


def build(m, a):
    """viommu-server, the guest program, the boot image, QEMU."""
    if not a.no_build:
        if not os.path.exists(os.path.join(a.build, "build.ninja")):
            m.run_step(["meson", "setup", a.build], "configure")
        m.run_step(["ninja", "-C", a.build, "tools/viommu-server"], "build")
    build_guest(m, a)
    for f in (a.server, a.guest_bin):
        if not os.access(f, os.X_OK):
            raise m.Failure("missing %s (build it, or drop --no-build)" % f)
    cmd = [os.path.join(ROOT, "guest", "build-image.sh"), "--arch", "arm64",
           "--cache", a.cache, "--guest", a.guest_bin]
    if not a.verbose:
        cmd.append("--quiet")
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                         check=False)
    if out.returncode != 0:
        raise m.Failure("guest/build-image.sh --arch arm64 failed")
    img = os.path.join(a.cache, "image")
    return os.path.join(img, "vmlinuz"), os.path.join(img, "initrd.img")


def resolve_qemu(m, a):
    """qemu-system-aarch64: the QEMU 11.1 cache's wrapper, or a path; it
    must have vfio-user-pci."""
    frame.resolve_qemu(m, a, ROOT, "qemu-system-aarch64")
    help_ = subprocess.run([a.qemu_path, "-machine", "none", "-nodefaults",
                            "-device", "vfio-user-pci,help"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, check=False).stdout
    if "vfio-user-pci options" not in help_:
        raise m.Failure("%s (QEMU %s) has no vfio-user-pci: our DMA "
                        "engines cannot be attached" % (a.qemu_path,
                                                        a.qemu_version))


# --- device tree ----------------------------------------------------------

def machine_args(a, boot):
    """What the DT depends on: machine, CPU, memory, CPUs."""
    return [a.qemu_path, "-accel", "tcg", "-cpu", "max,pauth-impdef=on",
            "-m", MEM, "-smp", str(boot.smp),
            "-M", "virt,memory-backend=ram",
            "-object", "memory-backend-memfd,id=ram,size=%s,share=on,"
            "seal=on" % MEM]


def patch_dts(text):
    """QEMU's DT source plus the frame's reserved memory, the
    arm,smmu-v3 node and the PCIe host bridge's iommu-map."""
    phandles = [int(x, 16) for x in
                re.findall(r"phandle = <0x([0-9a-f]+)>", text)]
    ph = max(phandles + [0x8000]) + 0x100
    frame = ("\treserved-memory {\n"
             "\t\t#address-cells = <0x02>;\n\t\t#size-cells = <0x02>;\n"
             "\t\tranges;\n"
             "\t\tviommu-smmu-frame@%x {\n"
             "\t\t\treg = <0x00 %#x 0x00 %#x>;\n\t\t\tno-map;\n\t\t};\n"
             "\t};\n\n"
             "\tsmmuv3@%x {\n"
             "\t\tcompatible = \"arm,smmu-v3\";\n"
             "\t\treg = <0x00 %#x 0x00 %#x>;\n"
             "\t\t#iommu-cells = <0x01>;\n\t\tdma-coherent;\n"
             "\t\tphandle = <%#x>;\n\t};\n" %
             (FRAME_GPA, FRAME_GPA, FRAME_SIZE, FRAME_GPA, FRAME_GPA,
              FRAME_SIZE, ph))
    pcie = re.search(r"\n(\t)pcie@[0-9a-f]+ \{\n", text)
    if not pcie:
        raise ValueError("no pcie@ node in QEMU's device tree")
    at = pcie.end()
    text = text[:at] + "\t\tiommu-map = <0x00 %#x 0x00 0x10000>;\n" % ph + \
        text[at:]
    end = text.rstrip().rfind("};")
    return text[:end] + frame + text[end:]


def make_dtb(m, a, boot, tmp):
    """Dump QEMU's DT for this machine, patch it, compile it."""
    raw = os.path.join(tmp, "virt.dtb")
    dts = os.path.join(tmp, "viommu.dts")
    dtb = os.path.join(tmp, "viommu.dtb")
    cmd = machine_args(a, boot)
    cmd[cmd.index("virt,memory-backend=ram")] = \
        "virt,memory-backend=ram,dumpdtb=" + raw
    r = subprocess.run(cmd + ["-nographic", "-nodefaults"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, check=False)
    if not os.path.exists(raw):
        raise m.Failure("QEMU -M virt,dumpdtb failed: %s" % r.stdout[-300:])
    if not shutil_which("dtc"):
        raise m.Failure("no dtc (scripts/deps.sh guest installs "
                        "device-tree-compiler)")
    text = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", raw],
                          stdout=subprocess.PIPE, text=True,
                          check=True).stdout
    try:
        text = patch_dts(text)
    except ValueError as e:
        raise m.Failure(str(e)) from e
    with open(dts, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", dtb,
                        dts], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, check=False)
    if r.returncode != 0:
        raise m.Failure("dtc: %s" % r.stdout[-300:])
    return dtb


# --- one boot -------------------------------------------------------------

def kernel_cmdline(a, boot):
    """-append: the guest scenarios and what the guest cannot see itself
    (an SMMUv3 of ours; the stage the model was set up for)."""
    words = ["console=ttyAMA0", "panic=-1", "loglevel=4",
             "viommu.scenario=" + ",".join(boot.scenarios),
             "viommu.iommu=smmuv3", "viommu.smmu_stage=%d" % boot.stage]
    if a.seed is not None:
        words.append("viommu.seed=%d" % a.seed)
    if a.verbose:
        words.append("viommu.verbose=1")
    return " ".join(words)


def server_cmd(a, boot, links, stats):
    """viommu-server with the SMMUv3 frame instead of a virtio-iommu."""
    cmd = [a.server, "--endpoints", str(a.endpoints),
           "--endpoint-slot", str(ENDPOINT_SLOT), "--stats-json", stats,
           "--smmuv3-frame", "%#x" % FRAME_GPA]
    if boot.features:
        cmd += ["--smmuv3-features", boot.features]
    return cmd + links.server_args() + a.server_arg


def qemu_cmd(a, boot, kernel, initrd, dtb, links):
    """The QEMU command line."""
    cmd = machine_args(a, boot) + [
        "-nographic", "-nodefaults", "-serial", "stdio", "-monitor", "none",
        "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-dtb", dtb,
        "-append", kernel_cmdline(a, boot)]
    return cmd + frame.vfio_user_devices(links, ENDPOINT_SLOT) + a.qemu_arg


def run_boot(m, a, boot, kernel, initrd, index):
    """Boot once: DT, server, QEMU, stream, collect, tear down."""
    def launch(tmp, stats, q, procs, deadline):
        dtb = make_dtb(m, a, boot, tmp)
        links = m.VfioUserLinks(range(1, a.endpoints + 1), tmp)
        cmd = server_cmd(a, boot, links, stats)
        if a.verbose:
            m.log("server: " + " ".join(shlex.quote(c) for c in cmd))
        procs.server = boot.server = m.spawn(cmd, [], "server", q)
        links.server_started(procs.server)
        cmd = qemu_cmd(a, boot, kernel, initrd, dtb, links)
        if a.verbose:
            m.log("qemu: " + " ".join(shlex.quote(c) for c in cmd))
        procs.qemu = m.spawn(cmd, [], "qemu", q, merge=True)
        m.pump(a, boot, q, procs.qemu, deadline)

    frame.run_boot(m, a, boot, "viommu-arm64-", "%d (%s: stage %d, "
                   "features %s)" % (index, boot.name, boot.stage,
                                     boot.features or "default"), 900,
                   launch)
    check_smmu(boot)


def check_smmu(boot):
    """The server's side: the frame was served, the driver's commands ran
    without error, and the faults the guest caused are in the event
    queue as the right event types."""
    s = (boot.stats or {}).get("smmuv3")
    if not s:
        boot.errors.append("no smmuv3 counters in the server's statistics")
        return
    fr = s.get("frame", {})
    ev = s.get("event_types", {})
    if not fr.get("writes") or not s.get("commands") or not s.get("syncs"):
        frame.fail(boot, "smmu", "the server saw no register writes, commands "
             "or CMD_SYNCs through the frame")
    if s.get("cmd_errors"):
        frame.fail(boot, "smmu", "%d command errors (CERROR)" % s["cmd_errors"])
    for g, want in EVENTS.items():
        if boot.results.get(g, {}).get("status") == "pass":
            if ev.get(want, 0) < 1:
                frame.fail(boot, g, "no %s in the event queue (events: %s)" %
                     (want, ev))
            else:
                boot.results[g]["event"] = "%s:%d" % (want, ev[want])
    f = boot.results.get("smmu")
    if f and f.get("status") == "pass" and f.get("stage") != str(boot.stage):
        frame.fail(boot, "smmu", "the driver used stage %s, want %d" %
             (f.get("stage"), boot.stage))


# --- report ---------------------------------------------------------------

def server_lines(b):
    """The SMMUv3 model's and the frame's counters of boot @b."""
    s = (b.stats or {}).get("smmuv3")
    if not s:
        return []
    return ["    server: commands %s (syncs %s, errors %s), "
            "translations %s (faults %s), events %s (lost %s): %s" %
            (s.get("commands"), s.get("syncs"), s.get("cmd_errors"),
             s.get("translations"), s.get("faults"), s.get("events"),
             s.get("events_lost"), s.get("event_types")),
            frame.frame_line(s.get("frame", {}))]


def report(m, a, boots, t_total):
    """The summary (unless interrupted: @t_total None) and the outputs;
    the failure count."""
    nfail = 0
    if t_total is not None:
        nfail = frame.summary(
            m, a, boots, t_total, "viommu-run --arch arm64 summary (our "
            "SMMUv3 through a polled register frame)",
            lambda b: "%s (stage %d)" % (b.name, b.stage), server_lines)
    frame.write_outputs(
        m, a, boots, {"arch": "arm64", "iommu": "smmuv3-frame"},
        lambda b: {"stage": b.stage, "features": b.features},
        ("arm64", "our SMMUv3 frame"))
    return nfail


def main(argv, m):
    """viommu-run --arch arm64; @m is viommu-run itself (its helpers)."""
    a = parse_args(argv)
    boots = []
    for name in a.scenarios:
        guest = list(GUEST_SCENARIOS)
        if a.endpoints >= 2:
            guest.append("isolation")
        b = m.Boot(guest, a.smp, False, None)
        b.name = name
        b.features, b.stage = STAGES[name]
        boots.append(b)

    def prepare():
        resolve_qemu(m, a)
        m.log("QEMU %s: %s" % (a.qemu_version, a.qemu_path))
        return build(m, a)

    return frame.main(m, a, boots, prepare,
                      lambda b, k, i, n: run_boot(m, a, b, k, i, n),
                      lambda t: report(m, a, boots, t))
