#!/usr/bin/env python3
"""Turns the RESULT lines of a real-Xen run's console log into the
side-by-side ttcp table (markdown), kernel netback vs vifd, KB/sec as ttcp
prints them (receiver side), with the vifd/kernel ratio."""
import re
import sys

log_path, mode, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
results = {}
pattern = re.compile(r"RESULT path=(\S+) dir=(\S+) kbps=([0-9.]+)")
with open(log_path, encoding="utf-8", errors="replace") as log:
    for line in log:
        match = pattern.search(line)
        if match:
            results[(match.group(1), match.group(2))] = float(match.group(3))

rows = [
    ("domU->dom0", "domU-dom0"),
    ("dom0->domU", "dom0-domU"),
    ("domU1->domU2", "domU1-domU2"),
    ("domU2->domU1", "domU2-domU1"),
]
columns = [
    ("kernel netback", "kernel"),
    ("vifd", "vifd"),
]
extra = [
    ("vifd, Linux bridge (--no-fast-path)", "vifd-bridge"),
    ("vifd, 2 queues (S7)", "vifd-mq"),
    ("vif-front + vifd (S5)", "vif-front-vifd"),
    ("vif-front + kernel netback (S4)", "vif-front-kernel"),
    ("one vifd per guest (S9)", "vifd-per-guest"),
    ("vifd.service under systemd (S10)", "vifd-systemd"),
]
present = [c for c in extra if any(k[0] == c[1] for k in results)]


def cell(path, direction):
    value = results.get((path, direction))
    return f"{value:,.0f}" if value is not None else "-"


header = ["transfer (ttcp KB/sec, receiver)"] + [c[0] for c in columns] + ["vifd / kernel"]
header += [c[0] for c in present]
print()
print(f"Real Xen 4.17 under QEMU TCG (emulated CPU: compare ratios, not absolutes); "
      f"mode {mode}, {seconds} s per transfer")
print()
print("| " + " | ".join(header) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
for label, direction in rows:
    kernel = results.get(("kernel", direction))
    vifd = results.get(("vifd", direction))
    ratio = f"{vifd / kernel:.2f}x" if kernel and vifd else "-"
    cells = [label] + [cell(c[1], direction) for c in columns] + [ratio]
    cells += [cell(c[1], direction) for c in present]
    print("| " + " | ".join(cells) + " |")
