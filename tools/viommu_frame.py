"""viommu_frame - what the register-frame guests of viommu-run share:
`--arch arm64` (tools/viommu_arm64.py, our SMMUv3) and `--iommu vtd`
(tools/viommu_vtd.py, our VT-d).  Both boot a real guest whose stock IOMMU
driver drives one of our models through a register frame polled in its
shared RAM (docs/REAL-GUEST.md), each scenario one boot, and report the
same way.

The model modules keep what differs: the QEMU machine, how the guest
finds the frame (device tree or DMAR), the kernel command line and the
server-side checks.  This module holds the rest, driven through a few
hooks:

  parser() / finish_args()   the common command line and its paths;
  scenario_names()           --scenario lists and sets, expanded;
  resolve_qemu()             the QEMU binary (11.1 cache or a path);
  vfio_user_devices()        -device vfio-user-pci for each link;
  run_boot()                 one boot: log files, launch (the model's
                             hook), stream, tear down, collect stats;
  fail(), outcomes()         failing a scenario; results named BOOT/NAME;
  summary(), write_outputs() the readable summary, --json and --tap;
  main()                     signals, build, the boots, the exit status.

@m is always viommu-run itself (its Boot, spawn, pump, stop, ...).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def parser(prog, selector):
    """The options every frame guest takes; @selector (--arch or --iommu)
    is the option that chose the guest (accepted and ignored)."""
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    p.add_argument(selector)
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
    p.add_argument("--build")
    p.add_argument("--cache")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--server-arg", action="append", default=[])
    p.add_argument("--qemu-arg", action="append", default=[])
    p.add_argument("-h", "--help", action="store_true")
    return p


def parse(p, argv, doc):
    """Parse @argv; --help prints @doc and exits."""
    a = p.parse_args(argv)
    if a.help:
        print(doc.strip())
        sys.exit(0)
    return a


def scenario_names(p, items, default, known, sets, what):
    """The --scenario @items (comma lists, sets expanded; @default when
    none) as a list without repeats; an unknown name is a usage error."""
    names = []
    for item in items or [default]:
        for n in filter(None, item.split(",")):
            for s in sets.get(n, [n]):
                if s not in known:
                    p.error("unknown %s scenario '%s' (%s; %s: %s)" %
                            (what, s, " ".join(known),
                             "sets" if len(sets) > 1 else "set",
                             ", ".join(sets)))
                if s not in names:
                    names.append(s)
    return names


def finish_args(p, a, root, guest_dir, cache_dir):
    """Check the counts; the paths under --build (default ROOT/build): the
    server, the guest program in @guest_dir, the image cache @cache_dir
    and the QEMU cache; what viommu-run's shared helpers read."""
    if not 1 <= a.endpoints <= 8:
        p.error("--endpoints must be 1..8")
    if not 1 <= a.smp <= 4:
        p.error("--smp must be 1..4")
    a.build = os.path.abspath(a.build or os.path.join(root, "build"))
    a.server = os.path.join(a.build, "tools", "viommu-server")
    a.guest_bin = os.path.join(a.build, guest_dir, "viommu-guest")
    a.cache = os.path.abspath(a.cache or os.path.join(a.build, cache_dir))
    a.qemu_cache = os.path.abspath(a.qemu_cache or
                                   os.path.join(a.build, "qemu-11.1"))
    # what viommu-run's shared helpers (pump, check_boot, build) read
    a.peer, a.peer_kind, a.door, a.trace, a.disk = \
        "ours", "ours", "vfio-user", False, []
    a.qemu_info = False


def resolve_qemu(m, a, root, binary):
    """@binary (qemu-system-...): the QEMU 11.1 cache's wrapper (built by
    scripts/qemu11.sh if missing), or --qemu PATH; sets a.qemu_path and
    a.qemu_version."""
    if a.qemu != "11":
        if not os.access(a.qemu, os.X_OK):
            raise m.Failure("--qemu %s: not an executable" % a.qemu)
        a.qemu_path = a.qemu
    else:
        cmd = [os.path.join(root, "scripts", "qemu11.sh"), "--cache",
               a.qemu_cache, "--print"]
        out = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE,
                             text=True, check=False)
        if out.returncode != 0:
            raise m.Failure("scripts/qemu11.sh failed")
        a.qemu_path = os.path.join(a.qemu_cache, binary)
    v = subprocess.run([a.qemu_path, "--version"], stdout=subprocess.PIPE,
                       text=True, check=False).stdout
    mt = re.search(r"version (\d+\.\d+(?:\.\d+)?)", v)
    a.qemu_version = mt.group(1) if mt else "?"


def vfio_user_devices(links, first_slot):
    """-device vfio-user-pci for each of @links' functions, function i at
    slot @first_slot + i - 1."""
    args = []
    for i, path in links.qemu_links():
        dev = {"driver": "vfio-user-pci", "id": "vu%d" % i,
               "socket": {"type": "unix", "path": path},
               "addr": "%#x" % (first_slot + i - 1)}
        args += ["-device", json.dumps(dev, separators=(",", ":"))]
    return args


class Procs:
    """The processes of one boot, for run_boot()'s teardown."""

    def __init__(self):
        self.server = None
        self.qemu = None


def run_boot(m, a, boot, prefix, what, timeout, launch):
    """Boot once: a temporary directory (@prefix), the boot's log files,
    then @launch(tmp, stats, q, procs, deadline), which starts the server
    and QEMU (recording them in procs) and streams with m.pump until the
    deadline (the start plus the timeout); whatever happens,
    stop both, drain, close the logs and load the server's statistics.
    @what describes the boot in the log line; @timeout is the default."""
    import queue
    tmp = tempfile.mkdtemp(prefix=prefix)
    stats = os.path.join(tmp, "stats.json")
    q = queue.Queue()
    procs = Procs()
    t0 = time.monotonic()
    boot.timeout = a.timeout or timeout
    m.log("boot %s, timeout %d s" % (what, boot.timeout))
    for tag, name in (("qemu", "console.log"), ("server", "server.log")):
        boot.logs[tag] = open(os.path.join(tmp, name), "w",
                              encoding="utf-8")
    try:
        launch(tmp, stats, q, procs, t0 + boot.timeout)
    finally:
        boot.qemu_rc = m.stop(procs.qemu, 10 if boot.done else 0)
        boot.server_rc = m.stop(procs.server, 15)
        boot.server = None
        time.sleep(0.1)
        m.drain(a, boot, q)
        for f in boot.logs.values():
            f.close()
        boot.logs = {}
        boot.seconds = time.monotonic() - t0
        boot.stats = m.load_stats(stats) if procs.server else None
        m.cleanup(a, tmp)
    m.check_boot(a, boot)


def fail(boot, scenario, why):
    """Fail a guest scenario's result (or the boot) with @why."""
    f = boot.results.get(scenario)
    if f and f.get("status") == "pass":
        f["status"] = "fail"
        f["reason"] = why
    elif not f:
        boot.errors.append(why)


def outcomes(m, boot):
    """(name, status, reason, fields): viommu-run's, named BOOT/SCENARIO."""
    return [("%s/%s" % (boot.name, n), st, r, f)
            for n, st, r, f in m.outcomes(boot)]


def frame_line(fr):
    """The register frame's counters, as a summary line."""
    return ("    frame: rounds %s, writes fed %s, publishes %s, "
            "guest won %s, polls %s" %
            (fr.get("rounds"), fr.get("writes"), fr.get("publishes"),
             fr.get("cas_lost"), fr.get("polls")))


def summary(m, a, boots, t_total, title, describe, server_lines):
    """The readable summary: @title, then per boot @describe(boot), its
    errors and outcomes and @server_lines(boot) (lines of the model's
    counters); the failure count."""
    npass = nfail = nskip = 0
    print("\n== %s" % title)
    print("  QEMU %s: %s" % (a.qemu_version, a.qemu_path))
    for i, b in enumerate(boots, 1):
        print("  boot %d: %s; %.1f s" % (i, describe(b), b.seconds))
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
        for line in server_lines(b):
            print(line)
    print("  time taken %.1f s" % t_total)
    print("%d passed, %d failed, %d skipped" % (npass, nfail, nskip))
    return nfail


def write_outputs(m, a, boots, head, boot_fields, tap_what):
    """--json: @head plus one object per boot (@boot_fields(b) and the
    common fields); --tap: one line per outcome, "guest @tap_what"."""
    if a.json:
        doc = dict(head)
        doc["qemu"] = {"path": getattr(a, "qemu_path", None),
                       "version": getattr(a, "qemu_version", None)}
        doc["boots"] = []
        for b in boots:
            d = {"name": b.name}
            d.update(boot_fields(b))
            d.update({"seconds": b.seconds, "errors": b.errors,
                      "qemu_rc": b.qemu_rc, "server_rc": b.server_rc,
                      "boot": b.boot_line,
                      "results": [{"scenario": n, "status": s,
                                   "reason": r, "fields": f}
                                  for n, s, r, f in outcomes(m, b)],
                      "bench": b.bench, "server_stats": b.stats})
            doc["boots"].append(d)
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    if a.tap:
        with open(a.tap, "w", encoding="utf-8") as f:
            for b in boots:
                for n, s, r, _ in outcomes(m, b):
                    f.write("%s - guest %s: %s (%s, QEMU %s)%s\n" % (
                        "ok" if s == "pass" else "not ok", tap_what[0], n,
                        tap_what[1], getattr(a, "qemu_version", "?"),
                        (": " + r.replace("#", "")) if r and s != "pass"
                        else ""))


def main(m, a, boots, prepare, run_one, report):
    """Run @boots: @prepare() (QEMU, build; returns the kernel and
    initrd), @run_one(boot, kernel, initrd, index) each, then
    @report(t_total) (the summary, returning the failure count; the
    outputs written).  A setup failure fails every boot not yet run.
    Returns the exit status (130 when interrupted)."""
    for sig in (m.signal.SIGTERM, m.signal.SIGHUP, m.signal.SIGINT):
        m.signal.signal(sig, m.on_signal)
    t0 = time.monotonic()
    try:
        kernel, initrd = prepare()
        for i, b in enumerate(boots, 1):
            run_one(b, kernel, initrd, i)
    except m.Failure as e:
        m.log("error: %s" % e)
        for b in boots:
            if not b.errors and not b.results:
                b.errors.append(str(e))
    except KeyboardInterrupt as e:
        m.log("interrupted (%s): torn down" % (e or "SIGINT"))
        report(None)
        return 130
    return 1 if report(time.monotonic() - t0) else 0
