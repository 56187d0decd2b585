#!/usr/bin/env bash
# Benchmark of maasd's machine listing: GET /MAAS/api/2.0/machines/ with
# 1,000 and 10,000 machines (2 NICs and 2 disks each) on SQLite, p50/p99,
# plus allocate/release throughput. Reproducible: fresh data dir per size,
# release build, loopback only. Usage: bench/api/run.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
REQ="${1:-30}"
BIN="${MAASD_BIN:-$CARGO_TARGET_DIR/release/maasd}"
[[ -n "${MAASD_BIN:-}" ]] || cargo build --release -p maas-server --bin maasd >&2
PY="$(scripts/venv-path.sh)/bin/python"
[[ -x "$PY" ]] || PY=python3
for n in 1000 10000; do
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
  "$BIN" createadmin --data-dir "$d" --username bench --password bench >/dev/null
  key=$("$BIN" apikey --data-dir "$d" --username bench)
  "$BIN" load-machines --data-dir "$d" "$d/seed.json" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  RUST_LOG=warn "$BIN" serve --data-dir "$d" --listen "127.0.0.1:$port" & pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/MAAS/api/version/" && break; sleep 0.1; done
  echo "maasd sqlite n=$n: $("$PY" bench/api/bench.py "http://127.0.0.1:$port/MAAS/" "$key" "$REQ")"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$d"; trap - EXIT
done
