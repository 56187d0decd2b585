"""Times GET /MAAS/api/2.0/machines/ (OAuth-signed, as libmaas sends it)
and allocate/release throughput against a running maasd. Prints one JSON
line. Usage: bench.py URL APIKEY REQUESTS"""

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


count = len(json.loads(call("GET", "/api/2.0/machines/")))
times = []
for _ in range(n):
    t = time.perf_counter()
    body = call("GET", "/api/2.0/machines/")
    times.append((time.perf_counter() - t) * 1000)
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
# allocate + release pairs
pairs = 50
t = time.perf_counter()
for _ in range(pairs):
    m = json.loads(call("POST", "/api/2.0/machines/?op=allocate", b""))
    call("POST", "/api/2.0/machines/%s/?op=release" % m["system_id"], b"")
dt = time.perf_counter() - t
print(json.dumps({
    "machines": count,
    "bytes": len(body),
    "p50_ms": round(statistics.median(times), 1),
    "p99_ms": round(p(0.99), 1),
    "alloc_release_pairs_per_s": round(pairs / dt, 1),
}))
