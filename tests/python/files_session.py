"""Stored files (MAAS's `files/`) through python-libmaas: the bones layer the
MAAS CLI's `files add` / `files get` / `file read` commands are generated
from (multipart upload of a file object), the viscera `client.files.list()`,
and the anonymous key URL another holder of the key reads without
credentials.

Run by tests/tests/api_libmaas.rs (its CLI session) with the venv's python
and MAAS_URL, MAAS_KEY; leaves kept.txt stored. Prints "FILES OK".
"""

import base64
import io
import os
import urllib.error
import urllib.request

from maas.client import connect
from maas.client.bones import CallError, SessionAPI
from maas.client.utils.creds import Credentials

URL = os.environ["MAAS_URL"].rstrip("/")
KEY = os.environ["MAAS_KEY"]
session = SessionAPI.fromURL(URL + "/api/2.0/", credentials=Credentials.parse(KEY))

# Every byte value, so nothing is mangled as text on the way.
blob = bytes(range(256)) * 40
session.Files.create(filename="juju-state", file=io.BytesIO(blob))
session.Files.create(filename="notes.txt", file=io.BytesIO(b"first"))
session.Files.create(filename="notes.txt", file=io.BytesIO(b"second"))

listed = session.Files.read()
assert [f["filename"] for f in listed] == ["juju-state", "notes.txt"], listed
assert all("content" not in f for f in listed), listed
assert [f["filename"] for f in session.Files.read(prefix="ju")] == ["juju-state"]

got = session.Files.get(filename="juju-state")
assert bytes(got) == blob, len(got)
assert bytes(session.Files.get(filename="notes.txt")) == b"second"

one = session.File.read(filename="juju-state")
assert base64.b64decode(one["content"]) == blob
assert one["resource_uri"] == "/MAAS/api/2.0/files/juju-state/", one["resource_uri"]

# The key URL works for anyone, without credentials.
anon = urllib.request.urlopen(URL + one["anon_resource_uri"].replace("/MAAS", "", 1)).read()
assert anon == blob

try:
    session.Files.get(filename="missing")
    raise AssertionError("a missing file was found")
except CallError as e:
    assert e.status == 404, e

# viscera, as a script would use it.
client = connect(URL, apikey=KEY)
assert sorted(f.filename for f in client.files.list()) == ["juju-state", "notes.txt"]

session.File.delete(filename="notes.txt")
session.Files.delete(filename="juju-state")
assert session.Files.read() == []
# One left behind for the `maas files` command the test runs next.
session.Files.create(filename="kept.txt", file=io.BytesIO(b"kept"))
try:
    urllib.request.urlopen(URL + one["anon_resource_uri"].replace("/MAAS", "", 1))
    raise AssertionError("a deleted file is still served by its key")
except urllib.error.HTTPError as e:
    assert e.code == 404, e

print("FILES OK")
