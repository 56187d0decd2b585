"""Times GET /MAAS/api/2.0/machines/ (OAuth-signed, as libmaas sends it),
a filtered and a paged list, and allocate/release throughput against a
running maasd. Prints one JSON line. Usage: bench.py URL APIKEY REQUESTS"""

import json
import statistics
import sys
import time
import urllib.request
import uuid

url, key, n = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
ck, tk, ts = key.split(":")


def auth():
    return (
        'OAuth realm="OAuth", oauth_nonce="%s", oauth_timestamp="%d", '
        'oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
        'oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%%26%s"'
        % (uuid.uuid4().hex, time.time(), ck, tk, ts)
    )


def call(method, path, data=None):
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Authorization": auth()})
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req) as r:
        return r.read()


def timed(path, reps):
    call("GET", path)  # warm-up
    times = []
    body = b""
    for _ in range(reps):
        t = time.perf_counter()
        body = call("GET", path)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return round(statistics.median(times), 1), round(p99, 1), body


count = len(json.loads(call("GET", "/api/2.0/machines/")))
p50, p99, body = timed("/api/2.0/machines/", n)
# One machine in ten carries tag rackN (bench/api/run.sh's seed).
f50, f99, fbody = timed("/api/2.0/machines/?tags=rack3&status=ready", n)
g50, g99, _ = timed("/api/2.0/machines/?limit=100&offset=500", n)
pairs = 50
t = time.perf_counter()
for _ in range(pairs):
    m = json.loads(call("POST", "/api/2.0/machines/?op=allocate", b""))
    call("POST", "/api/2.0/machines/%s/?op=release" % m["system_id"], b"")
dt = time.perf_counter() - t
print(json.dumps({
    "machines": count,
    "bytes": len(body),
    "p50_ms": p50,
    "p99_ms": p99,
    "filtered_tags_p50_ms": f50,
    "filtered_tags_p99_ms": f99,
    "filtered_matches": len(json.loads(fbody)),
    "page100_p50_ms": g50,
    "page100_p99_ms": g99,
    "alloc_release_pairs_per_s": round(pairs / dt, 1),
}))
