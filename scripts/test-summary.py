#!/usr/bin/env python3
"""test-summary.py - count every test of every `make check` stage.

Usage: test-summary.py [--quiet] --stage LABEL=PATH [--stage LABEL=PATH]...

Each PATH is either
  - a meson test log (*.json, meson-logs/testlog*.json: one JSON object per
    line, one line per test).  A test whose stdout carries a TAP plan
    ("1..N") counts each "ok N - name" / "not ok N - name" line as one test;
    subtests missing from the plan count as failed, and a test that failed
    although every subtest passed (crash after the last subtest, a valgrind
    or sanitizer error exit, a timeout) counts one extra failure.  A test
    without a plan (an example program, a benchmark smoke run) counts as one
    test, passed if meson says OK.
  - a stage result file (anything else): lines "ok - name" / "not ok - name"
    written by scripts/check.sh for the build, fuzz and install steps.
A missing file counts as one failure (the stage did not produce results).

Prints a per-stage table and the failures, then, as the very last line,
"N passed, N failed".  Skipped tests are shown on the line before it and
count as neither.  Exit status: 0 if nothing failed and something passed,
1 otherwise.  Python 3 standard library only.
"""

import json
import re
import sys

PLAN_RE = re.compile(r"^1\.\.(\d+)\b")
RESULT_RE = re.compile(
    r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")
BAIL_RE = re.compile(r"^Bail out!")
MESON_GOOD = {"OK", "EXPECTEDFAIL"}
MESON_SKIP = {"SKIP"}


class Counts:
    """Passed/failed/skipped tallies plus the names of the failures."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def add(self, other):
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.failures += other.failures

    def fail(self, name, n=1):
        self.failed += n
        self.failures.append(name if n == 1 else "%s (x%d)" % (name, n))


def directive(comment):
    """Return 'SKIP', 'TODO' or None for a TAP result's comment."""
    if not comment:
        return None
    word = comment.strip().split(None, 1)
    word = word[0].upper() if word else ""
    if word.startswith("SKIP"):
        return "SKIP"
    if word.startswith("TODO"):
        return "TODO"
    return None


def count_tap_lines(lines, prefix):
    """Count TAP result lines.  Returns (Counts, plan or None, results seen)."""
    c = Counts()
    plan = None
    seen = 0
    for line in lines:
        m = PLAN_RE.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            if plan == 0 and directive(line.partition("#")[2]) == "SKIP":
                c.skipped += 1
            continue
        if BAIL_RE.match(line):
            c.fail("%s: %s" % (prefix, line.strip()))
            continue
        m = RESULT_RE.match(line)
        if not m:
            continue
        seen += 1
        ok = m.group(1) == "ok"
        name = m.group(3) or ("#" + (m.group(2) or str(seen)))
        d = directive(m.group(4))
        if d == "SKIP" or (d == "TODO" and not ok):
            c.skipped += 1
        elif ok:
            c.passed += 1
        else:
            c.fail("%s: %s" % (prefix, name))
    return c, plan, seen


def count_meson_test(entry):
    """Counts for one test entry of a meson test log."""
    name = entry.get("name", "?")
    result = entry.get("result", "?")
    stdout = entry.get("stdout") or ""
    lines = stdout.splitlines()
    has_plan = any(PLAN_RE.match(l) for l in lines)
    if not has_plan:
        c = Counts()
        if result in MESON_GOOD:
            c.passed = 1
        elif result in MESON_SKIP:
            c.skipped = 1
        else:
            c.fail("%s (%s, exit %s)" % (name, result,
                                         entry.get("returncode")))
        return c
    c, plan, seen = count_tap_lines(lines, name)
    if plan is not None and seen < plan:
        c.fail("%s: %d of %d subtests never reported" %
               (name, plan - seen, plan), plan - seen)
    if result not in MESON_GOOD and result not in MESON_SKIP and \
            c.failed == 0:
        c.fail("%s: %s with exit status %s although every subtest passed"
               % (name, result, entry.get("returncode")))
    return c


def count_meson_log(path):
    """Counts for a whole meson test log file."""
    c = Counts()
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                c.fail("%s:%d: unreadable log line" % (path, lineno))
                continue
            c.add(count_meson_test(entry))
    return c


def count_result_file(path):
    """Counts for a stage result file of ok/not ok lines."""
    with open(path, encoding="utf-8", errors="replace") as f:
        c, _, _ = count_tap_lines(f.read().splitlines(), "")
    c.failures = [x.lstrip(": ") for x in c.failures]
    return c


def count_stage(path):
    """Counts for one --stage path; a missing file is one failure."""
    try:
        if path.endswith(".json"):
            return count_meson_log(path)
        return count_result_file(path)
    except OSError as e:
        c = Counts()
        c.fail("no results: %s" % e)
        return c


def parse_args(argv):
    """Return (quiet, [(label, path), ...]) or exit with usage."""
    quiet = False
    stages = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--quiet":
            quiet = True
        elif a == "--stage" and args:
            label, sep, path = args.pop(0).partition("=")
            if not sep or not label or not path:
                usage()
            stages.append((label, path))
        elif a.startswith("--stage="):
            label, sep, path = a[len("--stage="):].partition("=")
            if not sep:
                usage()
            stages.append((label, path))
        else:
            usage()
    return quiet, stages


def usage():
    """Print usage and exit 2."""
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    sys.exit(2)


def main(argv):
    quiet, stages = parse_args(argv)
    total = Counts()
    print("== Test summary")
    for label, path in stages:
        c = count_stage(path)
        skip = ", %d skipped" % c.skipped if c.skipped else ""
        print("  %-16s %5d passed, %d failed%s   (%s)" %
              (label, c.passed, c.failed, skip, path))
        if not quiet:
            for f in c.failures[:40]:
                print("      FAILED: %s" % f)
            if len(c.failures) > 40:
                print("      ... and %d more" % (len(c.failures) - 40))
        total.add(c)
    if total.passed == 0 and total.failed == 0:
        total.fail("no test results at all")
        print("  no test results at all: counted as a failure")
    if total.skipped:
        print("(%d skipped, counted neither passed nor failed)" %
              total.skipped)
    print("%d passed, %d failed" % (total.passed, total.failed))
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
