#!/usr/bin/env python3
"""Medians of bench/tftp/run.sh's CSVs as Markdown tables, maas-rs vs each peer."""
import csv
import statistics
import sys
from collections import defaultdict

out = sys.argv[1]


def med(xs):
    xs = [float(x) for x in xs if x not in ("NA", "FAIL", "")]
    return statistics.median(xs) if xs else None


def fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


def paired(by_rep, key):
    """maas-rs ÷ the best peer within each repetition (servers are
    interleaved per repetition, so this cancels background load)."""
    rs = []
    for rep, vals in by_rep[key].items():
        peers = [v for s, v in vals.items() if not s.startswith("maas-rs")]
        if "maas-rs" in vals and peers and max(peers) > 0:
            rs.append(vals["maas-rs"] / max(peers))
    if not rs:
        return "—"
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"


rows = list(csv.DictReader(open(f"{out}/single.csv")))
single_by_rep = defaultdict(lambda: defaultdict(dict))
for r in rows:
    if r["MBps"] not in ("NA", "FAIL", ""):
        single_by_rep[(r["client"], r["file"])][r["rep"]][r["server"]] = float(r["MBps"])
servers = list(dict.fromkeys(r["server"] for r in rows))
mbps = defaultdict(list)
cpu = defaultdict(list)
fails = defaultdict(int)
for r in rows:
    k = (r["server"], r["client"], r["file"])
    if r["seconds"] == "FAIL":
        fails[k] += 1
        continue
    mbps[k].append(r["MBps"])
    size_mb = (64 if r["file"] == "64M.bin" else 4) * 1.048576
    cpu[k].append(float(r["srv_cpu_s"]) * 1000 / size_mb)

print("### TFTP single transfer, MB/s (median of runs; 10^6 B/s)\n")
print("| client | file | " + " | ".join(servers) + " | maas-rs ÷ best peer (medians) | per repetition: median (min–max) |")
print("|---|---|" + "---|" * (len(servers) + 2))
clients = list(dict.fromkeys(r["client"] for r in rows))
for f in ("64M.bin", "4M.bin"):
    for c in clients:
        vals = {s: med(mbps[(s, c, f)]) for s in servers}
        cells = []
        for s in servers:
            v = fmt(vals[s])
            if fails[(s, c, f)]:
                v += f" ({fails[(s, c, f)]} failed)"
            cells.append(v)
        peers = [v for s, v in vals.items() if not s.startswith("maas-rs") and v]
        ratio = fmt(vals.get("maas-rs") / max(peers), 2) if peers and vals.get("maas-rs") else "—"
        print(f"| {c} | {f} | " + " | ".join(cells) + f" | {ratio} | {paired(single_by_rep, (c, f))} |")

print("\n### TFTP server CPU per MB (ms/MB, 64 MiB file, median)\n")
print("| client | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for c in clients:
    print(f"| {c} | " + " | ".join(fmt(med(cpu[(s, c, '64M.bin')]), 2) for s in servers) + " |")

try:
    crow = list(csv.DictReader(open(f"{out}/concurrent.csv")))
except FileNotFoundError:
    crow = []
if crow:
    agg = defaultdict(list)
    ok = defaultdict(list)
    conc_by_rep = defaultdict(lambda: defaultdict(dict))
    for r in crow:
        conc_by_rep[r["n"]][r["rep"]][r["server"]] = float(r["aggregate_MBps"])
        agg[(r["server"], r["n"])].append(r["aggregate_MBps"])
        ok[(r["server"], r["n"])].append(f'{r["ok"]}/{r["n"]}')
    ns = list(dict.fromkeys(r["n"] for r in crow))
    print("\n### TFTP concurrent curl downloads of 4 MiB, blksize 1468: aggregate MB/s (median) and completed transfers\n")
    print("| n | " + " | ".join(servers) + " | maas-rs ÷ best peer (medians) | per repetition: median (min–max) |")
    print("|---|" + "---|" * (len(servers) + 2))
    for n in ns:
        vals = {s: med(agg[(s, n)]) for s in servers}
        cells = [f"{fmt(vals[s])} ({', '.join(ok[(s, n)])})" for s in servers]
        peers = [v for s, v in vals.items() if not s.startswith("maas-rs") and v]
        ratio = fmt(vals.get("maas-rs") / max(peers), 2) if peers and vals.get("maas-rs") else "—"
        print(f"| {n} | " + " | ".join(cells) + f" | {ratio} | {paired(conc_by_rep, n)} |")

try:
    print("\n### Windowsize in the server's OACK (atftp --trace, requested windowsize 16)\n")
    print("```")
    print(open(f"{out}/windowsize.txt").read().strip())
    print("```")
except FileNotFoundError:
    pass
