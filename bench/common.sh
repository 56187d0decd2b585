# Shared helpers for bench/tftp and bench/http. Source, don't run.
# All traffic stays on a veth pair between two network namespaces created here
# (documentation prefix 198.51.100.0/24); they are deleted on exit.
set -u
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
WORK="${WORK:-$(mktemp -d /tmp/maas-rs-bench.XXXXXX)}"
DATA="${DATA:-/dev/shm/maas-rs-bench}"   # served files on tmpfs: no disk noise
NS_S=mrsbench-srv
NS_C=mrsbench-cli
SRV_IP=198.51.100.1
CLI_IP=198.51.100.2
REPS="${REPS:-3}"
mkdir -p "$WORK" "$DATA"; chmod 755 "$DATA"

ns_up() {
  ns_down
  ip netns add $NS_S; ip netns add $NS_C
  ip link add mrsb-s0 type veth peer name mrsb-c0
  ip link set mrsb-s0 netns $NS_S; ip link set mrsb-c0 netns $NS_C
  ip -n $NS_S addr add $SRV_IP/24 dev mrsb-s0; ip -n $NS_C addr add $CLI_IP/24 dev mrsb-c0
  for n in $NS_S $NS_C; do ip -n $n link set lo up; done
  ip -n $NS_S link set mrsb-s0 up; ip -n $NS_C link set mrsb-c0 up
  sleep 1
}
ns_down() { ip netns del $NS_C 2>/dev/null; ip netns del $NS_S 2>/dev/null; true; }

# Start a server inside the server namespace; echo its PID.
srv_start() { local log=$1; shift; ip netns exec $NS_S "$@" >"$log" 2>&1 & echo $!; }
cli() { ip netns exec $NS_C "$@"; }

# Stop a process we started, by PID only.
stop_pid() {
  local pid=$1; [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; true
}

# CPU seconds of PID (and reaped + live children: forks, nginx workers).
cpu_s() {
  local pid=$1 tot=0 p
  [ -r /proc/$pid/stat ] && tot=$(awk '{print $14+$15+$16+$17}' /proc/$pid/stat)
  for p in $(pgrep -P "$pid" 2>/dev/null); do
    [ -r /proc/$p/stat ] && tot=$(awk -v t="$tot" '{print t + ($14+$15+$16+$17)}' /proc/$p/stat)
  done
  awk -v t="$tot" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}'
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Our server, built in release mode.
maas_rs_bin() {
  # MAAS_RS_BIN: use an already built binary (e.g. while the build lock is busy).
  [ -n "${MAAS_RS_BIN:-}" ] && { echo "$MAAS_RS_BIN"; return; }
  (cd "$REPO" && cargo build -q --release -p maas-boot --example boot_serve) >&2 || exit 1
  echo "$CARGO_TARGET_DIR/release/examples/boot_serve"
}
