#!/usr/bin/env python3
"""test_server_trace.py - viommu-server --trace's typed events: a
vfio-user client (this script) connects to a DMA engine's link, sends
VERSION and a DMA_UNMAP of nothing, and hangs up; the server's stderr
must carry one "viommu-server: trace: NAME field=value ..." line per
event (link_msg, link_reply with its errno, link_dma, link_end) in the
library's own format, --trace-events must narrow them to the events
named, a bad list must be refused, and --stats-json's trace_lines must
count the lines.  TAP output.  Usage: test_server_trace.py PATH-TO-server
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

RESULTS = []


def check(cond, name):
    """One TAP result."""
    RESULTS.append((bool(cond), name))


def connect(path):
    """A connected socket to @path, waiting for the server to listen."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no listener on " + path)


def recv_exact(s, n):
    """Exactly @n bytes from @s."""
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise RuntimeError("EOF")
        b += c
    return b


def call(s, msg_id, cmd, payload):
    """Send a vfio-user command; its reply header (id, cmd, size, flags,
    error)."""
    s.sendall(struct.pack("<HHIII", msg_id, cmd, 16 + len(payload), 0, 0) +
              payload)
    h = struct.unpack("<HHIII", recv_exact(s, 16))
    recv_exact(s, h[2] - 16)
    return h


def run(tmp, extra):
    """One server run with @extra options; (stderr, stats)."""
    for f in ("l0", "l1", "stats.json"):
        try:
            os.unlink(os.path.join(tmp, f))
        except FileNotFoundError:
            pass
    stats = os.path.join(tmp, "stats.json")
    p = subprocess.Popen([SERVER, "--door", "vfio-user",
                          "--link", "0:path=" + os.path.join(tmp, "l0"),
                          "--link", "1:path=" + os.path.join(tmp, "l1"),
                          "--endpoints", "1", "--stats-json", stats] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        s = connect(os.path.join(tmp, "l1"))
        caps = b'{"capabilities":{"max_msg_fds":8}}\0'
        h = call(s, 7, 1, struct.pack("<HH", 0, 0) + caps)
        check(h[0] == 7 and h[4] == 0, "VERSION replied")
        h = call(s, 8, 3, struct.pack("<IIQQ", 24, 0, 0x100000, 0x1000))
        check(h[4] == 2, "DMA_UNMAP of nothing: ENOENT replied")
        s.close()
        time.sleep(0.3)
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=30)[1].decode()
    with open(stats, encoding="utf-8") as f:
        st = json.load(f)
    return err, st


def main():
    """Run the checks."""
    with tempfile.TemporaryDirectory() as tmp:
        err, st = run(tmp, ["--trace"])
        lines = [l for l in err.splitlines()
                 if l.startswith("viommu-server: trace: ")]
        fmt = re.compile(r"^viommu-server: trace: [a-z0-9_]+( [a-z0-9_]+="
                         r"(0|0x[0-9a-f]+))+$")
        check(lines and all(fmt.match(l) for l in lines),
              "--trace: every typed line is 'trace: NAME field=value ...'")
        check("viommu-server: trace: link_msg link=0x1 cmd=0x1 id=0x7 "
              "size=0x27 fds=0" in lines, "VERSION received: link_msg")
        check(any(l.startswith("viommu-server: trace: link_reply link=0x1 "
                               "cmd=0x1 id=0x7 ") and l.endswith("error=0")
                  for l in lines), "VERSION replied: link_reply")
        check("viommu-server: trace: link_dma link=0x1 op=0x1 "
              "address=0x100000 size=0x1000 flags=0 error=0x2" in lines,
              "DMA_UNMAP refused: link_dma with ENOENT")
        check("viommu-server: trace: link_reply link=0x1 cmd=0x3 id=0x8 "
              "size=0 error=0x2" in lines, "the error reply: link_reply")
        check("viommu-server: trace: link_end link=0x1 why=0x1" in lines,
              "the hang-up: link_end why=hangup")
        check(st.get("trace_lines") == len(lines),
              "--stats-json trace_lines counts the lines (%s, %d)" %
              (st.get("trace_lines"), len(lines)))

        err, st = run(tmp, ["--trace-events", "link_end,link_dma"])
        names = {l.split()[2] for l in err.splitlines()
                 if l.startswith("viommu-server: trace: ")}
        check(names == {"link_end", "link_dma"},
              "--trace-events link_end,link_dma: only those (%s)" %
              sorted(names))

        err, st = run(tmp, [])
        check("trace:" not in err, "no --trace: no trace lines")

        p = subprocess.run([SERVER, "--trace-events", "core,bogus"],
                           capture_output=True, check=False)
        check(p.returncode == 2 and b"--trace-events" in p.stderr,
              "--trace-events with an unknown name: exit 2, named")

    print("1..%d" % len(RESULTS))
    for i, (ok, name) in enumerate(RESULTS, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    return 0 if all(ok for ok, _ in RESULTS) else 1


SERVER = sys.argv[1]
if __name__ == "__main__":
    sys.exit(main())
