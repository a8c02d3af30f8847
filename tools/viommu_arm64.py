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

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

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
    p = argparse.ArgumentParser(prog="viommu-run --arch arm64",
                                add_help=False)
    p.add_argument("--arch")
    p.add_argument("--scenario", action="append", default=[])
    p.add_argument("--endpoints", type=int, default=1)
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--qemu", default="11")
    p.add_argument("--qemu-cache")
    p.add_argument("--timeout", type=int)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json")
    p.add_argument("--tap")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--seed", type=int)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
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
    for item in a.scenario or ["all"]:
        for n in filter(None, item.split(",")):
            for s in SETS.get(n, [n]):
                if s not in STAGES:
                    p.error("unknown arm64 scenario '%s' (%s; set: all)" %
                            (s, " ".join(STAGES)))
                if s not in names:
                    names.append(s)
    a.scenarios = names
    if not 1 <= a.endpoints <= 8:
        p.error("--endpoints must be 1..8")
    if not 1 <= a.smp <= 4:
        p.error("--smp must be 1..4")
    a.build = os.path.abspath(a.build)
    a.server = os.path.join(a.build, "tools", "viommu-server")
    a.guest_bin = os.path.join(a.build, "guest-arm64", "viommu-guest")
    a.cache = os.path.abspath(a.cache or
                              os.path.join(a.build, "guest-cache-arm64"))
    a.qemu_cache = os.path.abspath(a.qemu_cache or
                                   os.path.join(a.build, "qemu-11.1"))
    # what viommu-run's shared helpers (pump, check_boot) read
    a.peer, a.peer_kind, a.door, a.trace, a.disk = \
        "ours", "ours", "vfio-user", False, []
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
    """qemu-system-aarch64: the QEMU 11.1 cache's wrapper, or a path."""
    if a.qemu != "11":
        if not os.access(a.qemu, os.X_OK):
            raise m.Failure("--qemu %s: not an executable" % a.qemu)
        a.qemu_path = a.qemu
    else:
        cmd = [os.path.join(ROOT, "scripts", "qemu11.sh"), "--cache",
               a.qemu_cache, "--print"]
        out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, check=False)
        if out.returncode != 0:
            raise m.Failure("scripts/qemu11.sh failed")
        a.qemu_path = os.path.join(a.qemu_cache, "qemu-system-aarch64")
    v = subprocess.run([a.qemu_path, "--version"], stdout=subprocess.PIPE,
                       text=True, check=False).stdout
    mt = re.search(r"version (\d+\.\d+(?:\.\d+)?)", v)
    a.qemu_version = mt.group(1) if mt else "?"
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
    for i, path in links.qemu_links():
        dev = {"driver": "vfio-user-pci", "id": "vu%d" % i,
               "socket": {"type": "unix", "path": path},
               "addr": "%#x" % (ENDPOINT_SLOT + i - 1)}
        cmd += ["-device", json.dumps(dev, separators=(",", ":"))]
    return cmd + a.qemu_arg


def run_boot(m, a, boot, kernel, initrd, index):
    """Boot once: DT, server, QEMU, stream, collect, tear down."""
    import queue
    tmp = tempfile.mkdtemp(prefix="viommu-arm64-")
    stats = os.path.join(tmp, "stats.json")
    q = queue.Queue()
    server = qemu = None
    t0 = time.monotonic()
    boot.timeout = a.timeout or 900
    m.log("boot %d (%s: stage %d, features %s), timeout %d s" %
          (index, boot.name, boot.stage, boot.features or "default",
           boot.timeout))
    for tag, name in (("qemu", "console.log"), ("server", "server.log")):
        boot.logs[tag] = open(os.path.join(tmp, name), "w",
                              encoding="utf-8")
    try:
        dtb = make_dtb(m, a, boot, tmp)
        links = m.VfioUserLinks(range(1, a.endpoints + 1), tmp)
        cmd = server_cmd(a, boot, links, stats)
        if a.verbose:
            m.log("server: " + " ".join(shlex.quote(c) for c in cmd))
        server = boot.server = m.spawn(cmd, [], "server", q)
        links.server_started(server)
        cmd = qemu_cmd(a, boot, kernel, initrd, dtb, links)
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
    check_smmu(boot)


def fail(boot, scenario, why):
    """Fail a guest scenario's result (or the boot) with @why."""
    f = boot.results.get(scenario)
    if f and f.get("status") == "pass":
        f["status"] = "fail"
        f["reason"] = why
    elif not f:
        boot.errors.append(why)


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
        fail(boot, "smmu", "the server saw no register writes, commands "
             "or CMD_SYNCs through the frame")
    if s.get("cmd_errors"):
        fail(boot, "smmu", "%d command errors (CERROR)" % s["cmd_errors"])
    for g, want in EVENTS.items():
        if boot.results.get(g, {}).get("status") == "pass":
            if ev.get(want, 0) < 1:
                fail(boot, g, "no %s in the event queue (events: %s)" %
                     (want, ev))
            else:
                boot.results[g]["event"] = "%s:%d" % (want, ev[want])
    f = boot.results.get("smmu")
    if f and f.get("status") == "pass" and f.get("stage") != str(boot.stage):
        fail(boot, "smmu", "the driver used stage %s, want %d" %
             (f.get("stage"), boot.stage))


# --- report ---------------------------------------------------------------

def outcomes(m, boot):
    """(name, status, reason, fields): viommu-run's, named BOOT/SCENARIO."""
    return [("%s/%s" % (boot.name, n), st, r, f)
            for n, st, r, f in m.outcomes(boot)]


def summary(m, a, boots, t_total):
    """The readable summary; the failure count."""
    npass = nfail = nskip = 0
    print("\n== viommu-run --arch arm64 summary (our SMMUv3 through a "
          "polled register frame)")
    print("  QEMU %s: %s" % (a.qemu_version, a.qemu_path))
    for i, b in enumerate(boots, 1):
        print("  boot %d: %s (stage %d); %.1f s" % (i, b.name, b.stage,
                                                    b.seconds))
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
        s = (b.stats or {}).get("smmuv3")
        if s:
            fr = s.get("frame", {})
            print("    server: commands %s (syncs %s, errors %s), "
                  "translations %s (faults %s), events %s (lost %s): %s" %
                  (s.get("commands"), s.get("syncs"), s.get("cmd_errors"),
                   s.get("translations"), s.get("faults"), s.get("events"),
                   s.get("events_lost"), s.get("event_types")))
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
        doc = {"arch": "arm64", "iommu": "smmuv3-frame",
               "qemu": {"path": a.qemu_path, "version": a.qemu_version},
               "boots": [{"name": b.name, "stage": b.stage,
                          "features": b.features, "seconds": b.seconds,
                          "errors": b.errors, "qemu_rc": b.qemu_rc,
                          "server_rc": b.server_rc, "boot": b.boot_line,
                          "results": [{"scenario": n, "status": s,
                                       "reason": r, "fields": f}
                                      for n, s, r, f in outcomes(m, b)],
                          "server_stats": b.stats} for b in boots]}
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    if a.tap:
        with open(a.tap, "w", encoding="utf-8") as f:
            for b in boots:
                for n, s, r, _ in outcomes(m, b):
                    f.write("%s - guest arm64: %s (our SMMUv3 frame, QEMU "
                            "%s)%s\n" % ("ok" if s == "pass" else "not ok",
                                         n, a.qemu_version,
                                         (": " + r.replace("#", ""))
                                         if r and s != "pass" else ""))


def main(argv, m):
    """viommu-run --arch arm64; @m is viommu-run itself (its helpers)."""
    a = parse_args(argv)
    for sig in (m.signal.SIGTERM, m.signal.SIGHUP, m.signal.SIGINT):
        m.signal.signal(sig, m.on_signal)
    t0 = time.monotonic()
    boots = []
    for name in a.scenarios:
        guest = list(GUEST_SCENARIOS)
        if a.endpoints >= 2:
            guest.append("isolation")
        b = m.Boot(guest, a.smp, False, None)
        b.name = name
        b.features, b.stage = STAGES[name]
        boots.append(b)
    try:
        resolve_qemu(m, a)
        m.log("QEMU %s: %s" % (a.qemu_version, a.qemu_path))
        kernel, initrd = build(m, a)
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
