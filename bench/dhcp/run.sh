#!/bin/bash
# DHCPv4 benchmark: perfdhcp (Debian kea-admin) against maas-rs's DHCP server
# (in-memory leases, and durable leases: append-only log + fdatasync group
# commit on the ext4 root), Kea (kea-dhcp4, memfile) and dnsmasq, one after
# another in the same run, in the same two network namespaces joined by a
# veth pair, serving the same /16 pool (65 279 addresses, 12 h leases).
#
# Usage (root): bench/dhcp/run.sh [servers...]
#   servers: maas-rs maas-rs-durable kea dnsmasq (default: all four)
# Env: RATES="1000 5000 10000 15000 20000"  PERIOD=10  CLIENTS=60000  REPS=1
#      GROW_RATE=8000 GROW_PERIOD=20 (lease-table growth run, 65 000 clients)
#      SKIP_RATE=1 / SKIP_AVALANCHE=1 / SKIP_GROW=1 / SKIP_HANDLER=1 to leave parts out.
# Results: bench/dhcp/results/<UTC time>/ (raw perfdhcp output, CSVs,
# summary.md). Nothing leaves the two namespaces; both are deleted at exit.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release/examples/dhcp_server"
RATES="${RATES:-1000 5000 10000 15000 20000}"
PERIOD="${PERIOD:-10}"
CLIENTS="${CLIENTS:-60000}"
REPS="${REPS:-1}"
SERVERS="${*:-maas-rs maas-rs-durable kea dnsmasq}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP"
WORK="/tmp/maas-rs-dhcp-bench.$$"      # lease files: ext4 root, fsync is real
NS_S=mrsb-dhcp-s NS_C=mrsb-dhcp-c IF_S=mrsbs0 IF_C=mrsbc0
SRV_IP=10.77.0.1 CLI_IP=10.77.0.2
mkdir -p "$OUT" "$WORK"

for b in perfdhcp kea-dhcp4 dnsmasq; do
  command -v $b >/dev/null || { echo "missing $b: apt-get install kea-admin kea-dhcp4-server dnsmasq-base" >&2; exit 1; }
done
(cd "$ROOT" && cargo build --release -q -p maas-boot --example dhcp_server --example dhcp_handler_bench) || exit 1

ns_down() { ip netns del $NS_C 2>/dev/null; ip netns del $NS_S 2>/dev/null; true; }
SRV_PID=
cleanup() { [ -n "$SRV_PID" ] && stop_pid "$SRV_PID"; ns_down; rm -rf "$WORK"; }
trap cleanup EXIT
ns_down
ip netns add $NS_S; ip netns add $NS_C
ip link add $IF_S type veth peer name $IF_C
ip link set $IF_S netns $NS_S; ip link set $IF_C netns $NS_C
ip -n $NS_S addr add $SRV_IP/16 dev $IF_S; ip -n $NS_C addr add $CLI_IP/16 dev $IF_C
for n in $NS_S $NS_C; do ip -n $n link set lo up; done
ip -n $NS_S link set $IF_S up; ip -n $NS_C link set $IF_C up
sleep 1

stop_pid() {  # our own server, by PID: TERM, then KILL after 3 s
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; true
}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' /proc/$1/stat 2>/dev/null || echo 0; }

start_server() {  # $1 server; sets SRV_PID
  local s=$1 d="$WORK/$1"
  rm -rf "$d"; mkdir -p "$d"
  case $s in
    maas-rs|maas-rs-durable)
      local store=memory; [ "$s" = maas-rs-durable ] && store="$d/leases.log"
      ip netns exec $NS_S "$BIN" --iface $IF_S --server-ip $SRV_IP --subnet 10.77.0.0/16 \
        --range 10.77.1.0-10.77.255.254 --lease 43200 --store "$store" >"$d/stdout.txt" 2>&1 &
      ;;
    kea)
      cat >"$d/kea.json" <<JSON
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$IF_S" ], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$d/leases4.csv", "lfc-interval": 0 },
  "valid-lifetime": 43200,
  "subnet4": [ { "id": 1, "subnet": "10.77.0.0/16", "pools": [ { "pool": "10.77.1.0 - 10.77.255.254" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "stdout" } ] } ]
} }
JSON
      ip netns exec $NS_S env KEA_PIDFILE_DIR="$d" KEA_LOCKFILE_DIR="$d" kea-dhcp4 -c "$d/kea.json" >"$d/stdout.txt" 2>&1 &
      ;;
    dnsmasq)
      ip netns exec $NS_S dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=$IF_S \
        --bind-interfaces --dhcp-range=10.77.1.0,10.77.255.254,255.255.0.0,12h --dhcp-lease-max=200000 \
        --dhcp-leasefile="$d/leases" --no-ping --quiet-dhcp --pid-file= >"$d/stdout.txt" 2>&1 &
      ;;
  esac
  SRV_PID=$!
  sleep 1.5
  kill -0 $SRV_PID 2>/dev/null || { echo "server $s failed to start:"; cat "$d/stdout.txt"; exit 1; }
}

field() {  # file section key -> first number
  awk -v sec="$2" -v key="$3" '
    /^\*\*\*Statistics for:/ { insec = (index($0, sec) > 0) }
    insec && index($0, key ":") == 1 { sub(/^[^:]*: */, ""); sub(/ .*/, ""); print; exit }' "$1"
}

CSV="$OUT/rate.csv"
echo "server,rate,rep,disc_sent,offers,req_sent,acks,leases_per_s,do_drop_pct,ra_drop_pct,avg_do_ms,avg_ra_ms,srv_cpu_s,cpu_us_per_lease,load1" >"$CSV"
if [ -z "${SKIP_RATE:-}" ]; then
for rep in $(seq "$REPS"); do
  for r in $RATES; do
    for s in $SERVERS; do
      f="$OUT/rate_${s}_r${r}_${rep}.txt"
      start_server "$s"
      c0=$(cpu_s $SRV_PID)
      timeout $((PERIOD + 20)) ip netns exec $NS_C perfdhcp -4 -r "$r" -R "$CLIENTS" -p "$PERIOD" -l $IF_C -x e $SRV_IP >"$f" 2>&1
      c1=$(cpu_s $SRV_PID); stop_pid $SRV_PID; SRV_PID=
      acks=$(field "$f" REQUEST-ACK 'received packets')
      line=$(awk -v s="$s" -v r="$r" -v rep="$rep" -v ds="$(field "$f" DISCOVER-OFFER 'sent packets')" \
        -v o="$(field "$f" DISCOVER-OFFER 'received packets')" -v rs="$(field "$f" REQUEST-ACK 'sent packets')" \
        -v a="$acks" -v dd="$(field "$f" DISCOVER-OFFER 'drops ratio')" -v rd="$(field "$f" REQUEST-ACK 'drops ratio')" \
        -v ld="$(field "$f" DISCOVER-OFFER 'avg delay')" -v lr="$(field "$f" REQUEST-ACK 'avg delay')" \
        -v c0="$c0" -v c1="$c1" -v p="$PERIOD" 'BEGIN{
          cpu=c1-c0; per=(a>0)?cpu*1e6/a:0;
          printf "%s,%s,%s,%s,%s,%s,%s,%.0f,%s,%s,%s,%s,%.2f,%.1f,", s,r,rep,ds,o,rs,a,a/p,dd,rd,ld,lr,cpu,per}')$(cut -d' ' -f1 /proc/loadavg)
      echo "$line" | tee -a "$CSV"
    done
  done
done
fi

ACSV="$OUT/avalanche.csv"
echo "server,clients,seconds_to_lease_all,sent_plus_resent,resent,acks,srv_cpu_s" >"$ACSV"
if [ -z "${SKIP_AVALANCHE:-}" ]; then
  for s in $SERVERS; do
    f="$OUT/avalanche_${s}.txt"
    start_server "$s"; c0=$(cpu_s $SRV_PID)
    timeout -s INT -k 10 120 ip netns exec $NS_C perfdhcp -4 --scenario avalanche -R 1000 -l $IF_C $SRV_IP >"$f" 2>&1
    c1=$(cpu_s $SRV_PID); stop_pid $SRV_PID; SRV_PID=
    took=$(awk '/^It took/{split($3,a,":"); printf "%.3f", a[1]*3600+a[2]*60+a[3]}' "$f")
    echo "$s,1000,${took:-TIMEOUT},$(awk '/sent \+ resent/{print $NF; exit}' "$f"),$(awk '/^Requests resent/{print $NF}' "$f"),$(field "$f" REQUEST 'received packets'),$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')" | tee -a "$ACSV"
  done
fi

# Lease-table growth: 65 000 distinct clients at a fixed offered rate with a
# report every 2 s; a server whose cost grows with the table slows down.
GCSV="$OUT/growth.csv"
echo "server,interval_end_s,acks_in_interval,leases_per_s" >"$GCSV"
if [ -z "${SKIP_GROW:-}" ]; then
  GROW_RATE="${GROW_RATE:-8000}" GROW_PERIOD="${GROW_PERIOD:-20}"
  for s in $SERVERS; do
    f="$OUT/growth_${s}.txt"
    start_server "$s"; c0=$(cpu_s $SRV_PID)
    timeout $((GROW_PERIOD + 20)) ip netns exec $NS_C perfdhcp -4 -r "$GROW_RATE" -R 65000 -p "$GROW_PERIOD" -t 2 \
      -l $IF_C -x e $SRV_IP >"$f" 2>&1
    c1=$(cpu_s $SRV_PID); stop_pid $SRV_PID; SRV_PID=
    # perfdhcp -t prints "sent: D/R; received: O/A; drops: …" lines every interval
    awk -v s="$s" '/^sent: /{ split($0, x, /received: /); split(x[2], y, /[\/;]/); i++; acks=y[2]-prev; prev=y[2];
      printf "%s,%d,%d,%.0f\n", s, 2*i, acks, acks/2 }' "$f" | tee -a "$GCSV"
    echo "$s total server CPU: $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}') s" | tee -a "$OUT/growth_cpu.txt"
  done
fi

# The handler alone, no sockets: CPU per DORA as the table grows to 65 000.
if [ -z "${SKIP_HANDLER:-}" ]; then
  BENCH_DIR="$WORK" "$CARGO_TARGET_DIR/release/examples/dhcp_handler_bench" | tee "$OUT/handler.csv"
fi

python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
