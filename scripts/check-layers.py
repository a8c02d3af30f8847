#!/usr/bin/env python3
"""check-layers.py - no file under src/ includes from a layer above it.

Usage: scripts/check-layers.py [SRC_DIR]   (default: src/ of this tree)

The layers, bottom up (docs/ARCHITECTURE.md, "Layers"); a file may include
headers of its own folder and of any folder of a lower rank:

  0 base       logging, rate limits, allocation, ranges, atomics, bits,
               sorted arrays
  1 mem        guest memory
  2 core       the translation core
  3 pgtable    page-table walkers (Arm LPAE, VT-d)
  4 virtio, smmuv3, vtd, acpi   front ends and firmware tables
  5 transport  PCI function, virtio-pci
  6 devices, link               endpoint models; the link server
  7 refdrv     test-only reference drivers (not in libviommu.so)

Public headers (<viommu/...>) may be included from anywhere.  Prints one
line per violation and a TAP plan; exit status 1 if any.
"""
import os
import re
import sys

RANK = {"base": 0, "mem": 1, "core": 2, "pgtable": 3, "virtio": 4,
        "smmuv3": 4, "vtd": 4, "acpi": 4, "transport": 5, "devices": 6,
        "link": 6, "refdrv": 7}
INC = re.compile(r'^\s*#\s*include\s+"([a-z0-9_]+)/[^"]+"', re.M)


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "src")
    bad, files = [], 0
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        if folder not in RANK:
            bad.append("%s/: a folder with no layer (add it to RANK and "
                       "docs/ARCHITECTURE.md)" % folder)
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            files += 1
            text = open(os.path.join(path, name), encoding="utf-8").read()
            for dep in INC.findall(text):
                if dep == folder:
                    continue
                if dep not in RANK:
                    bad.append("%s/%s includes %s/: unknown folder"
                               % (folder, name, dep))
                elif RANK[dep] >= RANK[folder]:
                    bad.append("%s/%s includes %s/ (layer %d, not below %d)"
                               % (folder, name, dep, RANK[dep],
                                  RANK[folder]))
    print("1..1")
    for b in bad:
        print("# " + b)
    print("%s 1 - %d files under src/ include only from lower layers"
          % ("not ok" if bad else "ok", files))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
