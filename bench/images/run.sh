#!/usr/bin/env bash
# Image sync benchmark: a gpg-signed simplestreams mirror (python-simplestreams'
# json2streams + GnuPG) holding one big squashfs, served by nginx on loopback;
# the maas-rs importer (examples/import_images, release build) syncs it into a
# fresh store. Peers over the same file, same run: `openssl dgst -sha256`
# (SHA-NI), `sha256sum` (coreutils) and `curl` downloading to the same tmpfs.
# Peak RSS from /usr/bin/time -v. Everything lives on tmpfs (/dev/shm) so the
# disk does not set the pace. The importer's hashing stage alone
# (examples/sha256_file: maas_images::Hasher and OpenSSL's SHA-256 in-process,
# over the same file) is timed too, and nginx's CPU time during the sync, so a
# shortfall can be traced to hashing, receiving or the server.
#
# usage: bench/images/run.sh [SIZE_MIB ...]     (default: 1024 4096)
#   BASELINE_IMPORT=/path/to/older/import_images  also times that build in the
#   same run (an A/B of two versions of the importer under the same load):
#   AB_ROUNDS (default 3) more imports of each build, alternating which goes
#   first (the first import after the peers' runs was seen to cost more),
#   each printed, then the medians of wall time and CPU per GiB of both.
#   WARM_MEMORY=1: right before each A/B import, write and delete a file of
#   the import's size on the same tmpfs. This VM reports freed memory to its
#   host (free page reporting, `page_reporting.page_reporting_order` on the
#   kernel command line), which discards it; the first write into such a page
#   faults on the host. Writing 2 GiB into tmpfs costs 0.6 s of system time
#   with pages freed a moment ago and 2.3-4.1 s with pages freed 8 s earlier.
#   openssl and sha256sum allocate nothing, so this bills only the sync (and
#   curl, dd) for a property of the VM; with WARM_MEMORY both are shown.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
SIZES=("${@:-1024 4096}")
read -r -a SIZES <<< "${SIZES[*]}"
VENV=$(scripts/venv-path.sh)
J2S="$VENV/bin/json2streams"
[[ -x $J2S ]] || { echo "json2streams missing: run scripts/install-deps.sh (PyPI python-simplestreams)" >&2; exit 1; }
for t in gpg nginx openssl sha256sum curl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "$t missing (Debian: gnupg nginx openssl coreutils curl time)" >&2; exit 1; }
done

# IMPORT_IMAGES / SHA256_FILE: prebuilt binaries to time instead of building
# (the shared target dir's build lock can be held for minutes).
if [[ -z ${IMPORT_IMAGES:-} ]]; then
  cargo build -q --release -p maas-examples --example import_images
  cargo build -q --release -p maas-images --example sha256_file
fi
IMPORT="${IMPORT_IMAGES:-$CARGO_TARGET_DIR/release/examples/import_images}"
HASH="${SHA256_FILE:-$CARGO_TARGET_DIR/release/examples/sha256_file}"

W=$(mktemp -d /dev/shm/maas-images-bench.XXXXXX)
chmod 755 "$W"   # nginx workers run as an unprivileged user
NGINX_PID=""
cleanup() {
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null || true
  GNUPGHOME=$W/gnupg gpgconf --kill all 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

export GNUPGHOME=$W/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench <bench@example.invalid>' ed25519 sign never
gpg -q --export > "$W/keyring.gpg"

# One mirror per size, side by side under one nginx root.
mkdir -p "$W/www"
for mib in "${SIZES[@]}"; do
  m=$W/www/m$mib
  mkdir -p "$m/jammy/amd64/20250615/ga-22.04/generic"
  head -c 1M /dev/urandom > "$m/jammy/amd64/20250615/ga-22.04/generic/boot-kernel"
  head -c 1M /dev/urandom > "$m/jammy/amd64/20250615/ga-22.04/generic/boot-initrd"
  head -c "${mib}M" /dev/urandom > "$m/jammy/amd64/20250615/squashfs"
  python3 - "$m" > "$W/items$mib.json" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
items = []
for item, rel in [("boot-kernel", "jammy/amd64/20250615/ga-22.04/generic/boot-kernel"),
                  ("boot-initrd", "jammy/amd64/20250615/ga-22.04/generic/boot-initrd"),
                  ("squashfs", "jammy/amd64/20250615/squashfs")]:
    h = hashlib.sha256()
    with open(os.path.join(root, rel), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    items.append({"content_id": "com.ubuntu.maas:stable:v3:download",
                  "product_name": "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04",
                  "version_name": "20250615", "item_name": item, "ftype": item, "path": rel,
                  "sha256": h.hexdigest(), "size": os.path.getsize(os.path.join(root, rel)),
                  "os": "ubuntu", "release": "jammy", "arch": "amd64", "subarch": "ga-22.04",
                  "label": "stable"})
print(json.dumps(items))
PY
  "$J2S" "$W/items$mib.json" "$m" >/dev/null
  sed -i 's/\.json"/.sjson"/' "$m/streams/v1/index.json"
  for f in "$m"/streams/v1/*.json; do
    gpg -q --batch --yes --clearsign --output "${f%.json}.sjson" "$f"
  done
done

PORT=$((20000 + RANDOM % 20000))
mkdir -p "$W/nginx"
cat > "$W/nginx/nginx.conf" <<NGX
daemon off;
worker_processes 1;
error_log $W/nginx/error.log;
pid $W/nginx/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $W/nginx;
  proxy_temp_path $W/nginx;
  fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx;
  scgi_temp_path $W/nginx;
  server { listen 127.0.0.1:$PORT; root $W/www; }
}
NGX
nginx -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/m${SIZES[0]}/streams/v1/index.sjson" && break; sleep 0.1; done

rate() { python3 -c "import sys; print(f'{$1/$2/1e6:.0f}')"; }   # bytes secs -> MB/s
# timed CMD...: prints "secs maxrss_kib"
timed() {
  /usr/bin/time -f '%e %M %U %S' -o "$W/time" "$@" >/dev/null 2>"$W/stderr" || { cat "$W/stderr" >&2; return 1; }
  cat "$W/time"
}

# CPU seconds per GiB (user+sys) do not depend on what else the machine runs;
# wall-clock rates do (the machine is shared: see the load average).
cpu_per_gib() { python3 -c "print(f'{($1+$2)/($3/2**30):.2f}')"; }   # user sys bytes
# CPU seconds (user+sys) nginx's worker has used so far.
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
nginx_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$NGINX_WORKER/stat"; }
delta_per_gib() { python3 -c "print(f'{($2-$1)/($3/2**30):.2f}')"; }   # before after bytes
echo "uptime at start: $(uptime)"
echo "$(nproc) CPUs; $(grep -c sha_ni /proc/cpuinfo) with sha_ni"
echo
echo "| size | maas-rs sync (HTTP + sha256 + store) | sync CPU s/GiB | nginx CPU s/GiB | peak RSS | Hasher alone (in-process) | curl → tmpfs | dd tmpfs → tmpfs CPU s/GiB | openssl dgst -sha256 | openssl CPU s/GiB | sha256sum | sync / openssl (wall) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for mib in "${SIZES[@]}"; do
  big=$W/www/m$mib/jammy/amd64/20250615/squashfs
  bytes=$(stat -c %s "$big")
  total=$((bytes + 2 * 1048576))
  read -r o_s _ o_u o_sy < <(timed openssl dgst -sha256 "$big")
  read -r s_s _ _ _ < <(timed sha256sum "$big")
  rm -f "$W/curl.out"
  read -r c_s _ _ _ < <(timed curl -fs -o "$W/curl.out" "http://127.0.0.1:$PORT/m$mib/jammy/amd64/20250615/squashfs")
  rm -f "$W/curl.out"
  # What storing the bytes alone costs the kernel (a 2 MiB-block copy into
  # fresh tmpfs pages): part of the sync's floor, whatever the importer does.
  read -r _ _ d_u d_sy < <(timed dd if="$big" of="$W/dd.out" bs=2M status=none)
  rm -f "$W/dd.out"
  h_r=$("$HASH" "$big" | awk '/^maas_images::Hasher/ {print $2}')
  rm -rf "$W/store"
  n0=$(nginx_cpu)
  read -r i_s i_rss i_u i_sy < <(timed "$IMPORT" --quiet --url "http://127.0.0.1:$PORT/m$mib/" \
      --keyring "$W/keyring.gpg" --store "$W/store" --release jammy --arch amd64)
  n1=$(nginx_cpu)
  echo "table's import, $mib MiB: user $i_u s, sys $i_sy s" >&2
  if [[ -n ${BASELINE_IMPORT:-} ]]; then
    : > "$W/ab"
    for r in $(seq "${AB_ROUNDS:-3}"); do
      if (( r % 2 )); then order=(baseline new); else order=(new baseline); fi
      for which in "${order[@]}"; do
        if [[ $which == new ]]; then bin=$IMPORT; else bin=$BASELINE_IMPORT; fi
        rm -rf "$W/store"
        if [[ ${WARM_MEMORY:-} == 1 ]]; then
          dd if=/dev/zero of="$W/warm" bs=2M count=$((total / 2097152 + 32)) status=none
          rm -f "$W/warm"
        fi
        read -r a_s _ a_u a_sy < <(timed "$bin" --quiet --url "http://127.0.0.1:$PORT/m$mib/" \
            --keyring "$W/keyring.gpg" --store "$W/store" --release jammy --arch amd64)
        echo "$which $a_s $(cpu_per_gib "$a_u" "$a_sy" "$total")" >> "$W/ab"
        echo "A/B round $r, $mib MiB, $which importer: $(rate "$total" "$a_s") MB/s ($a_s s), CPU $(cpu_per_gib "$a_u" "$a_sy" "$total") s/GiB" >&2
      done
    done
    python3 - "$W/ab" "$total" "$mib" >&2 <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
total, mib = int(sys.argv[2]), sys.argv[3]
for which in ("new", "baseline"):
    secs = statistics.median(float(r[1]) for r in rows if r[0] == which)
    cpu = statistics.median(float(r[2]) for r in rows if r[0] == which)
    print(f"A/B median, {mib} MiB, {which} importer: {total / secs / 1e6:.0f} MB/s ({secs:.2f} s), CPU {cpu:.2f} s/GiB")
PY
    # The table's store check below looks at the last import's store.
    rm -rf "$W/store"
    "$IMPORT" --quiet --url "http://127.0.0.1:$PORT/m$mib/" --keyring "$W/keyring.gpg" \
        --store "$W/store" --release jammy --arch amd64 >/dev/null
  fi
  sum=$(sha256sum "$big" | cut -d' ' -f1)
  [[ -f $W/store/images/${sum:0:2}/$sum ]] || { echo "import did not store the squashfs" >&2; exit 1; }
  rm -rf "$W/store"
  i_r=$(rate "$total" "$i_s"); o_r=$(rate "$bytes" "$o_s"); s_r=$(rate "$bytes" "$s_s"); c_r=$(rate "$bytes" "$c_s")
  ratio=$(python3 -c "print(f'{$i_r/$o_r:.2f}')")
  echo "| $mib MiB | $i_r MB/s ($i_s s) | $(cpu_per_gib "$i_u" "$i_sy" "$total") | $(delta_per_gib "$n0" "$n1" "$total") | $((i_rss / 1024)) MiB | $h_r MB/s | $c_r MB/s | $(cpu_per_gib "$d_u" "$d_sy" "$bytes") | $o_r MB/s | $(cpu_per_gib "$o_u" "$o_sy" "$bytes") | $s_r MB/s | ${ratio}× |"
done
echo
echo "uptime at end: $(uptime)"
