#!/usr/bin/env bash
# Benchmark of maasd's metadata API against nginx serving the same answers
# as static files (the floor any dynamic server is measured against; MAAS's
# own metadata server is not installable here). One run, loopback only:
#   1. wrk, 16 connections, 10 s: GET .../meta-data/instance-id, on maasd
#      with a real node token (OAuth PLAINTEXT, a fresh nonce per request:
#      token lookup, signature, nonce store, SQLite transaction), and on
#      nginx (static file).
#   2. Debian cloud-init's DataSourceMAAS read (instance-id, local-hostname,
#      public-keys, vendor-data, user-data), N times, mean ms per read.
# Usage: bench/meta/run.sh [N_READS]   (needs root for nothing; wrk, nginx,
# cloud-init installed). Env: MAASD_BIN to skip the release build, DUR=10.
set -euo pipefail
# No automatic image import and no default boot source: nothing contacts images.maas.io.
export MAAS_IMAGES_AUTO_IMPORT=false MAAS_IMAGES_DEFAULT_SOURCE=false
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
N="${1:-30}"
DUR="${DUR:-10}"
BIN="${MAASD_BIN:-$CARGO_TARGET_DIR/release/maasd}"
[[ -n "${MAASD_BIN:-}" ]] || cargo build --release -p maas-server --bin maasd >&2
for p in wrk nginx cloud-init; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $p >&2
done
d=$(mktemp -d); chmod 755 "$d"   # nginx workers read $d/www
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$d"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$BIN" createadmin --data-dir "$d" --username bench --password bench --email b@x >/dev/null
key=$("$BIN" apikey --data-dir "$d" --username bench)
mport=$(free_port)
RUST_LOG=warn "$BIN" serve --data-dir "$d" --listen "127.0.0.1:$mport" & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$mport/MAAS/api/version/" && break; sleep 0.1; done
MAAS="http://127.0.0.1:$mport/MAAS"

# One machine and its node token; the metadata answers copied for nginx.
read -r sid ck tk ts < <(/usr/bin/python3 - "$MAAS" "$key" <<'PY'
import json, sys, time, random, urllib.request, urllib.parse
maas, key = sys.argv[1], sys.argv[2]
ck, tk, ts = key.split(":")
def req(method, path, data=None):
    h = {"Authorization": 'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
         'oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%%26%s", '
         'oauth_nonce="%d", oauth_timestamp="%d"' % (ck, tk, ts, random.getrandbits(63), time.time())}
    if data is not None:
        data = urllib.parse.urlencode(data).encode()
        h["Content-Type"] = "application/x-www-form-urlencoded"
    r = urllib.request.urlopen(urllib.request.Request(maas + path, data=data, headers=h, method=method))
    return json.loads(r.read())
m = req("POST", "/api/2.0/machines/", {"hostname": "bench-node", "architecture": "amd64/generic",
        "mac_addresses": "52:54:00:be:00:01", "power_type": "manual", "commission": "false"})
t = req("GET", "/api/2.0/machines/%s/?op=get_token" % m["system_id"])
print(m["system_id"], t["consumer_key"], t["token_key"], t["token_secret"])
PY
)
www="$d/www"; md="$www/MAAS/metadata/2012-03-01"; mkdir -p "$md/meta-data"
for f in meta-data/instance-id meta-data/local-hostname meta-data/vendor-data user-data; do
  /usr/bin/python3 - "$MAAS/metadata/2012-03-01/$f" "$ck" "$tk" "$ts" > "$md/$f" <<'PY'
import sys, time, random, urllib.request
url, ck, tk, ts = sys.argv[1:]
h = {"Authorization": 'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
     'oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%%26%s", '
     'oauth_nonce="%d", oauth_timestamp="%d"' % (ck, tk, ts, random.getrandbits(63), time.time())}
sys.stdout.buffer.write(urllib.request.urlopen(urllib.request.Request(url, headers=h)).read())
PY
done
nport=$(free_port)
cat >"$d/nginx.conf" <<NGX
worker_processes 2;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  server { listen 127.0.0.1:$nport; root $www; }
}
NGX
nginx -c "$d/nginx.conf" -g 'daemon off;' & pids+=($!)
sleep 1

cat >"$d/oauth.lua" <<LUA
local n = 0
local ts = os.time()
local ids = 0
function setup(thread) ids = ids + 1; thread:set("tid", ids) end
function request()
  n = n + 1
  local h = { ["Authorization"] = string.format(
    'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="$ck", oauth_token="$tk", oauth_signature="%%26$ts", oauth_nonce="%d-%d", oauth_timestamp="%d"',
    tid, n, ts) }
  return wrk.format("GET", "/MAAS/metadata/2012-03-01/meta-data/instance-id", h)
end
LUA
rps() { wrk -t2 -c16 -d"${DUR}s" "$@" | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX", $0 > "/dev/stderr"}'; }
m_rps=$(rps -s "$d/oauth.lua" "http://127.0.0.1:$mport/")
n_rps=$(rps "http://127.0.0.1:$nport/MAAS/metadata/2012-03-01/meta-data/instance-id")

ci_ms() { /usr/bin/python3 - "$1" "$ck" "$tk" "$ts" "$N" <<'PY'
import logging, sys, tempfile, time
logging.basicConfig(level=logging.WARNING)
from cloudinit import helpers
from cloudinit.sources import DataSourceMAAS
url, ck, tk, ts, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
tmp = tempfile.mkdtemp()
cfg = {"datasource": {"MAAS": {"metadata_url": url, "consumer_key": ck, "token_key": tk, "token_secret": ts}}}
t0 = time.perf_counter()
for _ in range(n):
    ds = DataSourceMAAS.DataSourceMAAS(cfg, None, helpers.Paths({"cloud_dir": tmp, "run_dir": tmp}))
    assert ds._get_data()
print("%.2f" % ((time.perf_counter() - t0) * 1000 / n))
PY
}
m_ci=$(ci_ms "$MAAS/metadata/")
n_ci=$(ci_ms "http://127.0.0.1:$nport/MAAS/metadata/")

echo "| test | maasd | nginx (static files) | maasd ÷ nginx |"
echo "|---|---|---|---|"
python3 - "$m_rps" "$n_rps" "$m_ci" "$n_ci" <<'PY'
import sys
m_rps, n_rps, m_ci, n_ci = map(float, sys.argv[1:])
print(f"| wrk -c16, meta-data/instance-id (req/s; maasd with OAuth + DB) | {m_rps:.0f} | {n_rps:.0f} | {m_rps / n_rps:.2f}x |")
print(f"| cloud-init DataSourceMAAS full read (ms, lower is better) | {m_ci:.2f} | {n_ci:.2f} | {m_ci / n_ci:.2f}x |")
PY
