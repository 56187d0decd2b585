#!/usr/bin/env bash
# Workflow benchmark (all on 127.0.0.1, nothing else):
#   1. power-on fan-out: N machines, each behind its own pyghmi IPMI BMC.
#      maasd: `op=deploy` on all N, time until every BMC reports on (read
#      back with ipmitool). Peer, same BMCs, same run: `ipmitool chassis
#      power on` to all N in parallel, time until every BMC reports on.
#   2. restart recovery: M machines mid-deploy (operation + power job rows),
#      `kill -9`, restart; time until the API answers again and until the
#      runner logged the recovery.
# Needs: ipmitool (Debian), pyghmi in the test venv (scripts/install-deps.sh).
# Env: N (default 10), M (default 1000).
set -euo pipefail
# No automatic image import and no default boot source: nothing contacts images.maas.io.
export MAAS_IMAGES_AUTO_IMPORT=false MAAS_IMAGES_DEFAULT_SOURCE=false
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
N="${N:-10}"; M="${M:-1000}"
VENV="${MAAS_RS_VENV:-$(bash scripts/venv-path.sh)}"
cargo build --release --locked -p maas-server --bin maasd >&2
MAASD="$CARGO_TARGET_DIR/release/maasd"
WORK=$(mktemp -d /tmp/maas-rs-flow-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ipmi() { ipmitool -I lanplus -H 127.0.0.1 -p "$1" -U admin -P password -C 3 -N 1 -R 3 "${@:2}"; }

cat > "$WORK/lobmc.py" <<'PY'
import sys
from pyghmi.cmd.fakebmc import FakeBmc
import pyghmi.ipmi.bmc as bmc
class LoBmc(FakeBmc):
    def __init__(self, authdata, port):
        bmc.Bmc.__init__(self, authdata, port, address='127.0.0.1')
        self.powerstate = 'off'
        self.bootdevice = 'default'
LoBmc({'admin': 'password'}, int(sys.argv[1])).listen()
PY
PORTS=()
for i in $(seq "$N"); do
  p=$(free_port); PORTS+=("$p")
  "$VENV/bin/python" "$WORK/lobmc.py" "$p" >/dev/null 2>&1 & PIDS+=($!)
done
for p in "${PORTS[@]}"; do until ipmi "$p" power status >/dev/null 2>&1; do sleep 0.1; done; done
all_on() { for p in "${PORTS[@]}"; do ipmi "$p" power status | grep -q 'is on' || return 1; done; }
all_off() { for p in "${PORTS[@]}"; do ipmi "$p" power off >/dev/null; done; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), N=$N M=$M"
# --- peer: ipmitool fan-out
t0=$(now)
IPIDS=()
for p in "${PORTS[@]}"; do ipmi "$p" chassis power on >/dev/null & IPIDS+=($!); done
wait "${IPIDS[@]}" || true
until all_on; do sleep 0.05; done
t_peer=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')
all_off

# --- maasd: deploy fan-out
API=$(free_port)
cat > "$WORK/maasd.toml" <<TOML
[workflow]
tick_ms = 100
power_poll_secs = 0
TOML
start_maasd() {
  "$MAASD" serve --listen "127.0.0.1:$API" --data-dir "$WORK/data" --config "$WORK/maasd.toml" 2>>"$WORK/maasd.log" &
  MPID=$!; PIDS+=("$MPID")
  until curl -s -o /dev/null "http://127.0.0.1:$API/MAAS/api/version/"; do sleep 0.02; done
}
mkdir -p "$WORK/data"
"$MAASD" createadmin --data-dir "$WORK/data" --username admin --password pw >/dev/null
KEY=$("$MAASD" apikey --data-dir "$WORK/data" --username admin)
IFS=: read -r CK TK TS <<<"$KEY"
api() { curl -s -X "$1" -H "Authorization: OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"$CK\", oauth_token=\"$TK\", oauth_signature=\"%26$TS\", oauth_nonce=\"$(date +%s%N)$RANDOM\", oauth_timestamp=\"$(date +%s)\"" "http://127.0.0.1:$API/MAAS/api/2.0/$2"; }
python3 - "$WORK/machines.json" "${PORTS[@]}" <<'PY'
import json, sys
out, ports = sys.argv[1], sys.argv[2:]
json.dump([{"hostname": f"bench-{i}", "nics": [{"name": "eth0", "mac": "52:54:09:00:%02x:%02x" % (i // 256, i % 256)}],
            "power_type": "ipmi", "power_parameters": {"power_driver": "LAN_2_0", "power_address": f"127.0.0.1:{p}",
            "power_user": "admin", "power_pass": "password", "cipher_suite_id": "3", "privilege_level": "ADMIN"}}
           for i, p in enumerate(ports)], open(out, "w"))
PY
mapfile -t IDS < <("$MAASD" load-machines --data-dir "$WORK/data" "$WORK/machines.json")
start_maasd
t0=$(now)
for id in "${IDS[@]}"; do api POST "machines/$id/?op=deploy" >/dev/null; done
until all_on; do sleep 0.05; done
t_maasd=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')

# --- restart recovery with M deploying machines
python3 - "$WORK/many.json" "$M" <<'PY'
import json, sys
out, m = sys.argv[1], int(sys.argv[2])
json.dump([{"hostname": f"many-{i}", "status": "deploying", "nics": [{"name": "eth0", "mac": "52:54:0a:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255, i & 255)}]} for i in range(m)], open(out, "w"))
PY
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true
"$MAASD" load-machines --data-dir "$WORK/data" "$WORK/many.json" >/dev/null
: > "$WORK/maasd.log"
t0=$(now)
RUST_LOG=info start_maasd
t_api=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')
until grep -q 'workflow state recovered' "$WORK/maasd.log"; do sleep 0.02; done
t_rec=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{print b-a}')

printf '\n| what | maasd | peer | ratio |\n|---|---|---|---|\n'
printf '| %d machines powered on (deploy → all BMCs on) | %.2f s | %.2f s (ipmitool × %d in parallel) | %.2f |\n' "$N" "$t_maasd" "$t_peer" "$N" "$(awk -v a="$t_maasd" -v b="$t_peer" 'BEGIN{print a/b}')"
printf '| restart with %d machines mid-deploy: API answering | %.2f s | – | – |\n' "$((M + N))" "$t_api"
printf '| restart with %d machines mid-deploy: recovery logged | %.2f s | – | – |\n' "$((M + N))" "$t_rec"
