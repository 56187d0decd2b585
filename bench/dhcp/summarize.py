#!/usr/bin/env python3
"""Turns one bench/dhcp/run.sh result directory into Markdown tables."""
import csv
import os
import sys

out = sys.argv[1]


def rows(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return list(csv.DictReader(f))


def num(x, default=0.0):
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


rate = rows("rate.csv")
if rate:
    print("### Rate runs (perfdhcp -r RATE -R 60000, 10 s each)\n")
    print("| offered DORA/s | server | leases/s | DISCOVER drops % | REQUEST drops % | avg DO ms | avg RA ms | server CPU µs/lease |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rate:
        print(f"| {r['rate']} | {r['server']} | {num(r['leases_per_s']):.0f} | {num(r['do_drop_pct']):.2f} | "
              f"{num(r['ra_drop_pct']):.2f} | {num(r['avg_do_ms']):.2f} | {num(r['avg_ra_ms']):.2f} | {num(r['cpu_us_per_lease']):.1f} |")
    # saturation = best leases/s per server; ratios against kea
    best = {}
    clean = {}
    for r in rate:
        s = r["server"]
        best[s] = max(best.get(s, 0), num(r["leases_per_s"]))
        drops = max(num(r["do_drop_pct"]), num(r["ra_drop_pct"]))
        if drops < 1.0:
            clean[s] = max(clean.get(s, 0), num(r["leases_per_s"]))
    print("\n### Saturation (best completed DORA/s of any offered rate) and best rate with < 1 % drops\n")
    print("| server | saturation leases/s | × Kea | best with < 1 % drops | × Kea |")
    print("|---|---|---|---|---|")
    kb, kc = best.get("kea"), clean.get("kea")
    for s in best:
        rb = f"{best[s] / kb:.2f}" if kb else "–"
        rc = f"{clean.get(s, 0) / kc:.2f}" if kc else "–"
        print(f"| {s} | {best[s]:.0f} | {rb} | {clean.get(s, 0):.0f} | {rc} |")

aval = rows("avalanche.csv")
if aval:
    print("\n### Avalanche: 1 000 clients DISCOVER at once (perfdhcp --scenario avalanche)\n")
    print("| server | seconds until all leased | packets sent + resent | resent | server CPU s |")
    print("|---|---|---|---|---|")
    for r in aval:
        print(f"| {r['server']} | {r['seconds_to_lease_all']} | {r['sent_plus_resent']} | {r['resent']} | {r['srv_cpu_s']} |")

grow = rows("growth.csv")
if grow:
    print("\n### Lease-table growth: 65 000 clients, leases/s per 2 s interval\n")
    servers = []
    by = {}
    for r in grow:
        s = r["server"]
        if s not in by:
            servers.append(s)
            by[s] = []
        by[s].append(num(r["leases_per_s"]))
    n = max(len(v) for v in by.values())
    print("| interval end s | " + " | ".join(servers) + " |")
    print("|---|" + "---|" * len(servers))
    for i in range(n):
        cells = [f"{by[s][i]:.0f}" if i < len(by[s]) else "" for s in servers]
        print(f"| {2 * (i + 1)} | " + " | ".join(cells) + " |")
    cpu = os.path.join(out, "growth_cpu.txt")
    if os.path.exists(cpu):
        print("\n" + open(cpu).read().replace("\n", "; ").rstrip("; "))

hand = rows("handler.csv")
if hand:
    print("\n### Handler alone (no sockets): µs per DORA as the table grows (wall time of one thread)\n")
    stores = []
    by = {}
    for r in hand:
        s = r["store"]
        if s not in by:
            stores.append(s)
            by[s] = {}
        by[s][r["leases_held"]] = num(r["us_per_dora"])
    held = list(by[stores[0]].keys())
    print("| leases held | " + " | ".join(stores) + " |")
    print("|---|" + "---|" * len(stores))
    for k in held:
        print(f"| {k} | " + " | ".join(f"{by[s].get(k, 0):.1f}" for s in stores) + " |")
