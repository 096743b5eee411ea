#!/usr/bin/env python3
"""Turns the COMPARE lines of a `tests/e2e-xen/run --compare` console log
into the table of medians: for each tool and direction, vifd's and the
kernel netback's receiver rate (KB/sec, ttcp's unit) and dom0 CPU seconds
per GB moved, the median over the rounds, the ratio vifd / kernel, and every
round's rate so that the spread shows."""
import re
import statistics
import sys

log_path, seconds = sys.argv[1], sys.argv[2]
pattern = re.compile(
    r"COMPARE round=(\d+) backend=(\S+) tool=(\S+) dir=(\S+) kbps=([0-9.]+) "
    r"bytes=(\d+) dom0_cpu_s=(-?[0-9.]+)")
# (tool, dir, backend) -> [(round, kbps, cpu seconds per GB)]
cells = {}
with open(log_path, encoding="utf-8", errors="replace") as log:
    for line in log:
        match = pattern.search(line)
        if not match:
            continue
        rnd, backend, tool, direction = int(match.group(1)), match.group(2), match.group(3), match.group(4)
        kbps, moved, cpu = float(match.group(5)), int(match.group(6)), float(match.group(7))
        per_gb = cpu / (moved / 1e9) if moved > 0 else float("nan")
        cells.setdefault((tool, direction, backend), []).append((rnd, kbps, per_gb))

directions = [("domU->dom0", "domU-dom0"), ("dom0->domU", "dom0-domU"),
              ("domU1->domU2", "domU1-domU2"), ("domU2->domU1", "domU2-domU1")]


def median(values):
    values = [v for v in values if v == v]  # without NaN
    return statistics.median(values) if values else None


def fmt(value, spec, suffix=""):
    return "-" if value is None else format(value, spec) + suffix


rounds = sorted({r for runs in cells.values() for r, _, _ in runs})
print()
print(f"Real Xen 4.17 under QEMU TCG, vifd and the kernel netback taking turns in one boot: "
      f"{len(rounds)} round(s), alternating which backend goes first, fresh guests each time, "
      f"{seconds} s per transfer; medians over the rounds")
for tool in ("ttcp", "iperf3"):
    print()
    print(f"| {tool}: transfer | kernel KB/s | vifd KB/s | vifd / kernel | kernel dom0 CPU s/GB "
          f"| vifd dom0 CPU s/GB | vifd / kernel CPU | kernel per round | vifd per round |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for label, direction in directions:
        kernel = cells.get((tool, direction, "kernel"), [])
        vifd = cells.get((tool, direction, "vifd"), [])
        k_rate, v_rate = median([k for _, k, _ in kernel]), median([k for _, k, _ in vifd])
        k_cpu, v_cpu = median([c for _, _, c in kernel]), median([c for _, _, c in vifd])
        rate_ratio = v_rate / k_rate if k_rate and v_rate else None
        cpu_ratio = v_cpu / k_cpu if k_cpu and v_cpu else None
        spread = lambda runs: ", ".join(f"{k:,.0f}" for _, k, _ in sorted(runs)) or "-"
        print(f"| {label} | {fmt(k_rate, ',.0f')} | {fmt(v_rate, ',.0f')} | "
              f"{fmt(rate_ratio, '.2f', 'x')} | {fmt(k_cpu, '.1f')} | {fmt(v_cpu, '.1f')} | "
              f"{fmt(cpu_ratio, '.2f', 'x')} | {spread(kernel)} | {spread(vifd)} |")

# vif-front (domU4) against each backend, next to the stock netfront of the
# same rounds: the frontend's share of what the stock one gets.
front = [("domU->dom0", "front-domU-dom0", "domU-dom0"), ("dom0->domU", "front-dom0-domU", "dom0-domU")]
if any(k[1].startswith("front-") for k in cells):
    for tool in ("ttcp", "iperf3"):
        print()
        print(f"| {tool}: transfer | netfront + kernel KB/s | vif-front + kernel KB/s | "
              f"vif-front / netfront (kernel) | netfront + vifd KB/s | "
              f"vif-front + vifd, static mappings KB/s | vif-front / netfront (vifd) | "
              f"vif-front + vifd / netfront + kernel | vif-front + vifd per round |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for label, fdir, ndir in front:
            nk = median([k for _, k, _ in cells.get((tool, ndir, "kernel"), [])])
            fk = median([k for _, k, _ in cells.get((tool, fdir, "kernel"), [])])
            nv = median([k for _, k, _ in cells.get((tool, ndir, "vifd"), [])])
            fv_runs = cells.get((tool, fdir, "vifd"), [])
            fv = median([k for _, k, _ in fv_runs])
            ratio = lambda a, b: a / b if a and b else None
            spread = ", ".join(f"{k:,.0f}" for _, k, _ in sorted(fv_runs)) or "-"
            print(f"| {label} | {fmt(nk, ',.0f')} | {fmt(fk, ',.0f')} | {fmt(ratio(fk, nk), '.2f', 'x')} | "
                  f"{fmt(nv, ',.0f')} | {fmt(fv, ',.0f')} | {fmt(ratio(fv, nv), '.2f', 'x')} | "
                  f"{fmt(ratio(fv, nk), '.2f', 'x')} | {spread} |")

# What vifd did per packet (its own counters over each transfer, both
# directions of the connection), medians over the rounds.
cost_pattern = re.compile(r"VIFDCOST round=(\d+) tool=(\S+) dir=(\S+) (.*)")
costs = {}
with open(log_path, encoding="utf-8", errors="replace") as log:
    for line in log:
        match = cost_pattern.search(line)
        if not match:
            continue
        fields = dict(item.split("=", 1) for item in match.group(4).split())
        values = {k: int(v) for k, v in fields.items() if v.lstrip("-").isdigit()}
        costs.setdefault((match.group(2), match.group(3)), []).append(values)
if costs:
    print()
    print("vifd's own counters per packet during each transfer (medians over the rounds; "
          "packets = TX + RX of the guests' queues, data and ACKs):")
    print()
    print("| tool | transfer | packets | bytes/packet | grant-copy calls/pkt | segments/call | "
          "memcpy segments/pkt | notifications sent/pkt | received/pkt | loop turns/pkt | "
          "spurious events | TAP reads/pkt | TAP writes/pkt |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = [d for _, d in directions] + [f for _, f, _ in front]
    for (tool, direction), runs in sorted(costs.items(),
                                          key=lambda kv: (kv[0][0], order.index(kv[0][1])
                                                          if kv[0][1] in order else 99)):
        def per_packet(key):
            return median([r[key] / r["packets"] for r in runs if r.get("packets")])
        packets = median([r.get("packets", 0) for r in runs])
        per_call = median([r["copy_segments"] / r["copy_calls"] for r in runs if r.get("copy_calls")])
        size = median([r["bytes"] / r["packets"] for r in runs if r.get("packets")])
        spurious = median([r.get("spurious", 0) for r in runs])
        print(f"| {tool} | {direction} | {fmt(packets, ',.0f')} | {fmt(size, ',.0f')} | "
              f"{fmt(per_packet('copy_calls'), '.3f')} | {fmt(per_call, '.1f')} | "
              f"{fmt(per_packet('memcpy_segments'), '.3f')} | {fmt(per_packet('notify_sent'), '.3f')} | "
              f"{fmt(per_packet('notify_received'), '.3f')} | {fmt(per_packet('loops'), '.3f')} | "
              f"{fmt(spurious, ',.0f')} | {fmt(per_packet('tap_reads'), '.3f')} | "
              f"{fmt(per_packet('tap_writes'), '.3f')} |")
