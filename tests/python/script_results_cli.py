"""Script results through python-libmaas's bones layer: the describe-driven
handlers the MAAS CLI's `node-script-results read` / `node-script-result
read` commands are generated from (same handler names, same URIs).

Run by tests/tests/metadata_api.rs with the venv's python and MAAS_URL,
MAAS_KEY. A manual machine commissions; a node reports two scripts (one
fails) with MAAS's multipart op=signal; the results are then read back.
Prints "RESULTS OK".
"""

import base64
import os
import time
import urllib.request

from maas.client.bones import CallError, SessionAPI
from maas.client.utils.creds import Credentials

URL = os.environ["MAAS_URL"].rstrip("/")
session = SessionAPI.fromURL(URL + "/api/2.0/", credentials=Credentials.parse(os.environ["MAAS_KEY"]))

m = session.Machines.create(architecture="amd64/generic", mac_addresses="52:54:00:cc:00:01",
                            hostname="cli-node", power_type="manual")
sid = m["system_id"]
assert m["status_name"] == "Commissioning", m["status_name"]
tok = session.Machine.get_token(system_id=sid)


def signal(fields, files):
    b = "cli-boundary-91c2"
    body = b""
    for k, v in fields:
        body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    for k, v in files:
        body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n" % (b, k, k)).encode() + v + b"\r\n"
    body += ("--%s--\r\n" % b).encode()
    auth = ('OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
            'oauth_consumer_key="%s", oauth_token="%s", oauth_signature="&%s", '
            'oauth_nonce="%d", oauth_timestamp="%d"') % (
        tok["consumer_key"], tok["token_key"], tok["token_secret"], time.time_ns(), time.time())
    req = urllib.request.Request(URL + "/metadata/2012-03-01/?op=signal", data=body, method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=" + b,
                                          "Authorization": auth})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200, r.status


signal([("status", "WORKING"), ("exit_status", "0"), ("runtime", "2.5")],
       [("00-maas-02-meminfo", b"MemTotal: 4194304 kB\n"),
        ("00-maas-02-meminfo.out", b"MemTotal: 4194304 kB\n"),
        ("00-maas-02-meminfo.err", b"")])
signal([("status", "WORKING"), ("exit_status", "3"), ("name", "99-broken")],
       [("99-broken", b"oops\n"), ("99-broken.err", b"oops\n")])
signal([("status", "OK")], [])
assert session.Machine.read(system_id=sid)["status_name"] == "Failed commissioning"

# `maas admin node-script-results read <system_id>`
sets = session.NodeScriptResults.read(system_id=sid)
assert len(sets) == 1, sets
s = sets[0]
assert (s["type"], s["type_name"], s["status_name"]) == (0, "Commissioning", "Failed"), s
assert s["resource_uri"].endswith("/nodes/%s/results/%d/" % (sid, s["id"])), s
by_name = {r["name"]: r for r in s["results"]}
assert by_name["00-maas-02-meminfo"]["status_name"] == "Passed", by_name
assert by_name["00-maas-02-meminfo"]["runtime"] == "0:00:02", by_name
assert by_name["99-broken"]["exit_status"] == 3, by_name
assert "output" not in by_name["99-broken"], by_name
assert session.NodeScriptResults.read(system_id=sid, type="testing") == []

# `maas admin node-script-result read <system_id> current-commissioning include_output=1`
cur = session.NodeScriptResult.read(system_id=sid, id="current-commissioning",
                                    include_output="1", filters="99-broken")
assert cur["id"] == s["id"], cur
[r] = cur["results"]
assert base64.b64decode(r["stderr"]) == b"oops\n", r
assert base64.b64decode(r["output"]) == b"oops\n", r

# `maas admin node-script-result delete <system_id> <id>`
session.NodeScriptResult.delete(system_id=sid, id=str(s["id"]))
try:
    session.NodeScriptResult.read(system_id=sid, id=str(s["id"]))
    raise AssertionError("deleted set still readable")
except CallError as e:
    assert e.status == 404, e.status
print("RESULTS OK")
