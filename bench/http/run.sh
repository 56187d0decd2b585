#!/bin/bash
# HTTP boot throughput: maas-rs (maas-boot's axum router, release build) against
# nginx (sendfile on, 2 workers = cores), same namespaces and files, one run.
# curl: one 256 MiB download; wrk: 64 connections on 1 KiB and 4 MiB files.
# Needs root. Installs nginx, wrk and curl if missing.
# Env: REPS=3 DUR=10 CONNS=64. Output: $OUT (default bench/http/results/).
source "$(dirname "$0")/../common.sh"
OUT="${OUT:-$BENCH_DIR/http/results}"; mkdir -p "$OUT"
DUR="${DUR:-10}"; CONNS="${CONNS:-64}"
need=(); for p in nginx wrk curl; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' || need+=($p); done
((${#need[@]})) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
MAAS_RS=$(maas_rs_bin)
WWW="$DATA/www"; mkdir -p "$WWW/images"; chmod 755 "$WWW" "$WWW/images"
[ -s "$WWW/images/256M.bin" ] || head -c $((256 << 20)) /dev/urandom >"$WWW/images/256M.bin"
[ -s "$WWW/images/4M.bin" ] || head -c $((4 << 20)) /dev/urandom >"$WWW/images/4M.bin"
[ -s "$WWW/images/1K.bin" ] || head -c 1024 /dev/urandom >"$WWW/images/1K.bin"
chmod 644 "$WWW"/images/*.bin
trap 'ns_down' EXIT
ns_up

start() {
  local d="$WORK/http-$1"; mkdir -p "$d"
  case $1 in
    # boot_serve maps /images/<path> to <path> under its root.
    maas-rs) srv_start "$d/log" "$MAAS_RS" --http $SRV_IP:5248 --root "$WWW/images" ;;
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
  server { listen $SRV_IP:5248; root $WWW; }
}
NGX
      srv_start "$d/log" nginx -c "$d/nginx.conf" -g 'daemon off;' ;;
  esac
}

CSV="$OUT/curl.csv"; echo "server,file,rep,seconds,MBps,load1" >"$CSV"
CSV2="$OUT/wrk.csv"; echo "server,file,conns,rep,requests_per_s,MBps,p50,p99,errors,srv_cpu_s,load1" >"$CSV2"
for s in maas-rs nginx; do
  pid=$(start $s); sleep 1
  kill -0 $pid 2>/dev/null || { echo "$s did not start"; cat "$WORK/http-$s/log"; continue; }
  URL="http://$SRV_IP:5248/images"
  for rep in $(seq $REPS); do
    r=$(cli timeout 120 curl -sS -f -o /dev/null -w '%{time_total} %{speed_download}' "$URL/256M.bin")
    echo "$s,256M.bin,$rep,$(echo "$r" | awk '{printf "%s,%.1f", $1, $2/1e6}'),$(loadavg)" | tee -a "$CSV"
  done
  for f in 1K.bin 4M.bin; do
    for rep in $(seq $REPS); do
      o="$OUT/wrk_${s}_${f}_${rep}.txt"
      c0=$(cpu_s $pid); l=$(loadavg)
      cli timeout $((DUR + 30)) wrk -t2 -c$CONNS -d${DUR}s --latency "$URL/$f" >"$o" 2>&1
      c1=$(cpu_s $pid)
      rps=$(awk '/^Requests\/sec/{print $2}' "$o")
      p50=$(awk '$1=="50%"{print $2}' "$o"); p99=$(awk '$1=="99%"{print $2}' "$o")
      err=$(awk '/Socket errors|Non-2xx/{printf "%s ", $0}' "$o")
      size=$(stat -c %s "$WWW/images/$f")
      echo "$s,$f,$CONNS,$rep,$rps,$(awk -v r="$rps" -v s="$size" 'BEGIN{printf "%.1f", r*s/1e6}'),$p50,$p99,\"$err\",$(awk -v a=$c0 -v b=$c1 'BEGIN{printf "%.2f", b-a}'),$l" | tee -a "$CSV2"
    done
  done
  stop_pid $pid
done

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import csv, statistics, sys
from collections import defaultdict
out = sys.argv[1]
def med(xs):
    xs = [float(x) for x in xs if x]
    return statistics.median(xs) if xs else None
c = defaultdict(list)
for r in csv.DictReader(open(f"{out}/curl.csv")):
    c[r["server"]].append(r["MBps"])
w = defaultdict(list); e = defaultdict(list)
for r in csv.DictReader(open(f"{out}/wrk.csv")):
    w[(r["server"], r["file"])].append(r["requests_per_s"]); e[(r["server"], r["file"])].append(r["errors"].strip())
def row(name, a, b, unit):
    ratio = f"{a/b:.2f}" if a and b else "—"
    f = lambda x: "—" if x is None else f"{x:,.0f}"
    print(f"| {name} | {f(a)} {unit} | {f(b)} {unit} | {ratio} |")
print("| test | maas-rs | nginx | maas-rs ÷ nginx |\n|---|---|---|---|")
row("curl, one 256 MiB download (median)", med(c["maas-rs"]), med(c["nginx"]), "MB/s")
for f in ("1K.bin", "4M.bin"):
    row(f"wrk -c64, {f} (median)", med(w[("maas-rs", f)]), med(w[("nginx", f)]), "req/s")
errs = {k: v for k, v in e.items() if any(v)}
print("\nwrk errors:", errs or "none")
PY
