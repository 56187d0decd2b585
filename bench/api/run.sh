#!/usr/bin/env bash
# Benchmark of maasd's machine listing: GET /MAAS/api/2.0/machines/ with
# 1,000 and 10,000 machines (2 NICs and 2 disks each) on SQLite, p50/p99,
# a filtered and a paged list, plus allocate/release throughput.
# Reproducible: fresh data dir per size and binary, release build, loopback
# only. Usage: bench/api/run.sh [REQUESTS] [SIZES]
#   MAASD_BIN       the maasd to measure (default: build the release one)
#   MAASD_BASE_BIN  optional second maasd (e.g. an older commit's release
#                   build) measured side by side in the same run
set -euo pipefail
# No automatic image import and no default boot source: nothing contacts images.maas.io.
export MAAS_IMAGES_AUTO_IMPORT=false MAAS_IMAGES_DEFAULT_SOURCE=false
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
REQ="${1:-30}"
SIZES="${2:-1000 10000}"
BIN="${MAASD_BIN:-$CARGO_TARGET_DIR/release/maasd}"
[[ -n "${MAASD_BIN:-}" ]] || cargo build --release -p maas-server --bin maasd >&2
PY="$(scripts/venv-path.sh)/bin/python"
[[ -x "$PY" ]] || PY=python3
declare -a RUNS=("maasd=$BIN")
[[ -n "${MAASD_BASE_BIN:-}" ]] && RUNS+=("base=$MAASD_BASE_BIN")
for n in $SIZES; do
  for run in "${RUNS[@]}"; do
    label="${run%%=*}"; bin="${run#*=}"
    d=$(mktemp -d)
    trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
    python3 - "$n" > "$d/seed.json" <<'PYEOF'
import json, sys
n = int(sys.argv[1])
print(json.dumps([{
    "hostname": "bench-%05d" % i, "cpu_count": 4 + i % 8, "memory_mib": 8192,
    "tags": ["rack%d" % (i % 10)],
    "disks": [{"name": "sda", "size": 240_000_000_000, "tags": ["ssd"]},
              {"name": "sdb", "size": 2_000_000_000_000}],
    "nics": [{"name": "eth0", "mac": "52:54:%02x:%02x:%02x:01" % (i >> 16 & 255, i >> 8 & 255, i & 255)},
             {"name": "eth1", "mac": "52:54:%02x:%02x:%02x:02" % (i >> 16 & 255, i >> 8 & 255, i & 255)}],
} for i in range(n)]))
PYEOF
    "$bin" createadmin --data-dir "$d" --username bench --password bench >/dev/null
    key=$("$bin" apikey --data-dir "$d" --username bench)
    t0=$(date +%s.%N)
    "$bin" load-machines --data-dir "$d" "$d/seed.json" >/dev/null
    load_s=$(python3 -c "import sys; print(round($(date +%s.%N) - $t0, 2))")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    RUST_LOG=warn "$bin" serve --data-dir "$d" --listen "127.0.0.1:$port" & pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/MAAS/api/version/" && break; sleep 0.1; done
    echo "$label sqlite n=$n load_s=$load_s: $("$PY" bench/api/bench.py "http://127.0.0.1:$port/MAAS/" "$key" "$REQ")"
    kill $pid; wait $pid 2>/dev/null || true
    rm -rf "$d"; trap - EXIT
  done
done
