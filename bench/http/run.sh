#!/bin/bash
# HTTP boot throughput: maas-rs (maas-boot's HTTP boot server, example
# boot_serve, release build) against nginx (sendfile on, tcp_nopush, 2 workers =
# cores), same namespaces and files, one run. Servers run side by side on
# different ports and are interleaved inside every repetition, so background
# load hits them alike; compare them by the ratios.
# Tests: curl, one 256 MiB download; wrk -t2 -c64 on a 1 KiB and a 4 MiB file.
# Needs root. Installs nginx, wrk and curl if missing.
# Env: REPS=3 DUR=10 CONNS=64 TESTS="256M 1K 4M"
#      MAAS_RS_BIN=<boot_serve>   (else built here)
#      BASELINE_BIN=<older boot_serve>  adds it as server "maas-rs-base" (an A/B)
#      SERVERS="maas-rs nginx"    (maas-rs-base is added when BASELINE_BIN is set)
# Output: $OUT (default bench/http/results/): curl.csv, wrk.csv, summary.md
source "$(dirname "$0")/../common.sh"
OUT="${OUT:-$BENCH_DIR/http/results}"; mkdir -p "$OUT"
DUR="${DUR:-10}"; CONNS="${CONNS:-64}"; TESTS="${TESTS:-256M 1K 4M}"
SERVERS="${SERVERS:-maas-rs nginx}"
[ -n "${BASELINE_BIN:-}" ] && SERVERS="$SERVERS maas-rs-base"
need=(); for p in nginx wrk curl; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' || need+=($p); done
((${#need[@]})) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
MAAS_RS=$(maas_rs_bin)
WWW="$DATA/www"; mkdir -p "$WWW/images"; chmod 755 "$WWW" "$WWW/images"
[ -s "$WWW/images/256M.bin" ] || head -c $((256 << 20)) /dev/urandom >"$WWW/images/256M.bin"
[ -s "$WWW/images/4M.bin" ] || head -c $((4 << 20)) /dev/urandom >"$WWW/images/4M.bin"
[ -s "$WWW/images/1K.bin" ] || head -c 1024 /dev/urandom >"$WWW/images/1K.bin"
chmod 644 "$WWW"/images/*.bin
declare -A PID PORT
trap 'for p in "${PID[@]}"; do stop_pid $p; done; ns_down' EXIT
ns_up

start() {  # $1 server, $2 port -> PID
  local d="$WORK/http-$1"; mkdir -p "$d"
  case $1 in
    # boot_serve maps /images/<path> to <path> under its root.
    maas-rs) srv_start "$d/log" "$MAAS_RS" --http $SRV_IP:$2 --root "$WWW/images" ;;
    maas-rs-base) srv_start "$d/log" "$BASELINE_BIN" --http $SRV_IP:$2 --root "$WWW/images" ;;
    nginx)
      cat >"$d/nginx.conf" <<NGX
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  server { listen $SRV_IP:$2; root $WWW; }
}
NGX
      srv_start "$d/log" nginx -c "$d/nginx.conf" -g 'daemon off;' ;;
  esac
}

port=5248
for s in $SERVERS; do
  PORT[$s]=$port; PID[$s]=$(start $s $port); port=$((port + 1))
done
sleep 1
for s in $SERVERS; do
  kill -0 ${PID[$s]} 2>/dev/null || { echo "$s did not start"; cat "$WORK/http-$s/log"; exit 1; }
done

CSV="$OUT/curl.csv"; echo "server,file,rep,seconds,MBps,srv_cpu_s,load1" >"$CSV"
CSV2="$OUT/wrk.csv"; echo "server,file,conns,rep,requests_per_s,MBps,p50,p99,errors,srv_cpu_s,load1" >"$CSV2"
for rep in $(seq $REPS); do
  for t in $TESTS; do
    for s in $SERVERS; do
      pid=${PID[$s]}; URL="http://$SRV_IP:${PORT[$s]}/images"
      c0=$(cpu_s $pid); l=$(loadavg)
      if [ "$t" = 256M ]; then
        r=$(cli timeout 120 curl -sS -f -o /dev/null -w '%{time_total} %{speed_download}' "$URL/256M.bin")
        c1=$(cpu_s $pid)
        echo "$s,256M.bin,$rep,$(echo "$r" | awk '{printf "%s,%.1f", $1, $2/1e6}'),$(awk -v a=$c0 -v b=$c1 'BEGIN{printf "%.2f", b-a}'),$l" | tee -a "$CSV"
        continue
      fi
      f=$t.bin; o="$OUT/wrk_${s}_${f}_${rep}.txt"
      cli timeout $((DUR + 30)) wrk -t2 -c$CONNS -d${DUR}s --latency "$URL/$f" >"$o" 2>&1
      c1=$(cpu_s $pid)
      rps=$(awk '/^Requests\/sec/{print $2}' "$o")
      p50=$(awk '$1=="50%"{print $2}' "$o"); p99=$(awk '$1=="99%"{print $2}' "$o")
      err=$(awk '/Socket errors|Non-2xx/{printf "%s ", $0}' "$o")
      size=$(stat -c %s "$WWW/images/$f")
      echo "$s,$f,$CONNS,$rep,$rps,$(awk -v r="$rps" -v s="$size" 'BEGIN{printf "%.1f", r*s/1e6}'),$p50,$p99,\"$err\",$(awk -v a=$c0 -v b=$c1 'BEGIN{printf "%.2f", b-a}'),$l" | tee -a "$CSV2"
    done
  done
done

python3 - "$OUT" "$DUR" <<'PY' | tee "$OUT/summary.md"
import csv, statistics, sys
from collections import defaultdict
out, dur = sys.argv[1], float(sys.argv[2])
def med(xs):
    xs = [float(x) for x in xs if x not in ("", None)]
    return statistics.median(xs) if xs else None
rows = defaultdict(list)   # (server, test) -> [(rep, rate, cpu_us_per_unit, load)]
for r in csv.DictReader(open(f"{out}/curl.csv")):
    mb = float(r["MBps"]); secs = float(r["seconds"])
    rows[(r["server"], "256M")].append((r["rep"], mb, float(r["srv_cpu_s"]) / 0.268435456 * 1e3, r["load1"]))
errs = {}
for r in csv.DictReader(open(f"{out}/wrk.csv")):
    t = r["file"].removesuffix(".bin")
    rps = float(r["requests_per_s"] or 0)
    cpu = float(r["srv_cpu_s"]) / (rps * dur) * 1e6 if rps else None
    rows[(r["server"], t)].append((r["rep"], rps, cpu, r["load1"]))
    if r["errors"].strip(): errs[(r["server"], t)] = r["errors"]
servers = list(dict.fromkeys(s for s, _ in rows))
others = [s for s in servers if s != "nginx"]
name = {"256M": "curl, one 256 MiB download (MB/s)", "1K": "wrk -c64, 1K.bin (req/s)", "4M": "wrk -c64, 4M.bin (req/s)"}
unit = {"256M": "ms/GB", "1K": "µs/req", "4M": "µs/req"}
tests = [t for t in ("256M", "1K", "4M") if any((s, t) in rows for s in servers)]
print("Medians of the repetitions; ratio = median of the per-repetition ratios (servers interleaved in each repetition).\n")
print("| test | " + " | ".join(servers) + " | " + " | ".join(f"{s} ÷ nginx" for s in others) + " | server CPU per unit (" + ", ".join(servers) + ") |")
print("|---" * (2 + len(servers) + len(others)) + "|")
for t in tests:
    cells = []
    for s in servers:
        m = med([x[1] for x in rows[(s, t)]])
        cells.append("—" if m is None else f"{m:,.0f}")
    ratios = []
    ng = {x[0]: x[1] for x in rows.get(("nginx", t), [])}
    for s in others:
        rs = [x[1] / ng[x[0]] for x in rows[(s, t)] if ng.get(x[0])]
        ratios.append(f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "—")
    cpu = []
    for s in servers:
        m = med([x[2] for x in rows[(s, t)] if x[2] is not None])
        cpu.append("—" if m is None else f"{m:.1f}")
    print(f"| {name[t]} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {' / '.join(cpu)} {unit[t]} |")
loads = [float(x[3]) for v in rows.values() for x in v]
print(f"\nload1 during the run: {min(loads):.2f}–{max(loads):.2f}")
print("wrk errors:", errs or "none")
PY
