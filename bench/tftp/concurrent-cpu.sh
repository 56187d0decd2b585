#!/bin/bash
# Where the CPU of the "50 concurrent curl" row goes: the same 50 downloads of
# the 4 MiB file at blksize 1468 as bench/tftp/run.sh, servers interleaved per
# repetition, and for each run the whole machine's CPU time (`perf stat -a`
# task-clock), its context switches, and the server's own user and system time.
# The clients start from one shell inside the client namespace (not one
# `ip netns exec` each, as run.sh does), so less of the machine's time is the
# harness's.
#
# With both CPUs busy through the run (they are, for every server here), the
# aggregate rate is inversely proportional to the machine's CPU time per run;
# the summary prints, beside the measured ratio, the ratio a server would reach
# that had no user-space cost at all (its system time is the kernel's UDP path
# for each packet, paid by any server that sends it with sendto/recv).
#
# Env: REPS=6 SERVERS="maas-rs atftpd" (also tftpd-hpa, dnsmasq) CONC=50
#      MAAS_RS_BIN=<boot_serve> (else built here)
# Output: $OUT (default bench/tftp/results-cpu/) runs.csv, summary.md
source "$(dirname "$0")/../common.sh"
OUT="${OUT:-$BENCH_DIR/tftp/results-cpu}"; mkdir -p "$OUT"
SERVERS="${SERVERS:-maas-rs atftpd}"
CONC="${CONC:-50}"
REPS="${REPS:-6}"
EXTRA_PKGS=linux-perf source "$BENCH_DIR/tftp/servers.sh"

# User and system CPU seconds of PID and its children (tftpd-hpa forks).
user_sys() {
  local pid=$1 p u=0 s=0
  for p in $pid $(pgrep -P "$pid" 2>/dev/null); do
    [ -r /proc/$p/stat ] || continue
    read -r u s < <(awk -v u="$u" -v s="$s" '{print u + $14 + $16, s + $15 + $17}' /proc/$p/stat)
  done
  awk -v u="$u" -v s="$s" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f %.2f", u/hz, s/hz}'
}

CSV="$OUT/runs.csv"
echo "server,rep,ok,wall_s,aggregate_MBps,machine_cpu_s,context_switches,srv_user_s,srv_sys_s" >"$CSV"
for rep in $(seq "$REPS"); do
  for s in $SERVERS; do
    pid=$(start "$s"); sleep 1
    read -r u0 s0 < <(user_sys "$pid")
    t0=$(date +%s.%N)
    stat=$(perf stat -a -x, -e task-clock,context-switches -- ip netns exec $NS_C bash -c '
        ok=0; pids=()
        for i in $(seq '"$CONC"'); do
          timeout 300 curl -sS -o /dev/null --tftp-blksize 1468 "tftp://'"$SRV_IP"'/4M.bin" & pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
        echo "ok=$ok"' 2>&1)
    t1=$(date +%s.%N)
    read -r u1 s1 < <(user_sys "$pid")
    ok=$(sed -n 's/^ok=//p' <<<"$stat")
    tc=$(awk -F, '/task-clock/{print $1 / 1000}' <<<"$stat")
    cs=$(awk -F, '/context-switches/{print $1}' <<<"$stat")
    awk -v s="$s" -v r="$rep" -v ok="$ok" -v a="$t0" -v b="$t1" -v tc="$tc" -v cs="$cs" \
        -v u0="$u0" -v u1="$u1" -v s0="$s0" -v s1="$s1" \
      'BEGIN{w=b-a; printf "%s,%d,%d,%.3f,%.1f,%.3f,%d,%.2f,%.2f\n", s,r,ok,w,ok*4194304/1e6/w,tc,cs,u1-u0,s1-s0}' | tee -a "$CSV"
    stop_pid "$pid"
  done
done

python3 - "$CSV" <<'EOF' | tee "$OUT/summary.md"
import csv, statistics as st, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
by = defaultdict(list)
for r in rows:
    by[r["server"]].append(r)
med = lambda rs, k: st.median(float(r[k]) for r in rs)
print("| server | aggregate MB/s | wall s | machine CPU s | CPU busy | context switches | server user s | server system s |")
print("|---|---|---|---|---|---|---|---|")
for s, rs in by.items():
    w, tc = med(rs, "wall_s"), med(rs, "machine_cpu_s")
    print(f"| {s} | {med(rs, 'aggregate_MBps'):.1f} | {w:.3f} | {tc:.2f} | {tc / (2 * w):.0%} | "
          f"{med(rs, 'context_switches'):,.0f} | {med(rs, 'srv_user_s'):.2f} | {med(rs, 'srv_sys_s'):.2f} |")
if "maas-rs" in by:
    rs = by["maas-rs"]
    for peer, ps in by.items():
        if peer == "maas-rs":
            continue
        pairs = {r["rep"]: float(r["aggregate_MBps"]) for r in ps}
        ratios = sorted(float(r["aggregate_MBps"]) / pairs[r["rep"]] for r in rs if pairs.get(r["rep"]))
        bound = med(ps, "machine_cpu_s") / (med(rs, "machine_cpu_s") - med(rs, "srv_user_s"))
        print(f"\nmaas-rs ÷ {peer}: {st.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f}) per repetition; "
              f"machine CPU per run {med(ps, 'machine_cpu_s') / med(rs, 'machine_cpu_s'):.2f}×; "
              f"with no user-space cost at all maas-rs would reach ≈ {bound:.2f}×")
EOF
