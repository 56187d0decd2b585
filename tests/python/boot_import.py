"""python-libmaas 0.6.8 configures a boot source (keyring as bytes, as
MAAS takes it) and a selection, starts an import, waits for it and prints
the resulting boot resources with their sets as JSON on the last line.

Env: MAAS_URL, MAAS_KEY, MIRROR_URL, KEYRING (file), RELEASE, ARCH.
"""

import base64
import hashlib
import io
import json
import os
import sys
import time

from maas.client import connect


def step(msg):
    print("==", msg, file=sys.stderr, flush=True)


c = connect(os.environ["MAAS_URL"], apikey=os.environ["MAAS_KEY"])
with open(os.environ["KEYRING"], "rb") as f:
    keyring = f.read()

step("boot source with keyring_data")
bs = c.boot_sources.create(os.environ["MIRROR_URL"], keyring_data=io.BytesIO(keyring))
assert base64.b64decode(bs.keyring_data) == keyring, "keyring_data round trip"
assert c.boot_sources.get(bs.id).url == os.environ["MIRROR_URL"]

step("selection")
sel = c._origin.BootSourceSelections.create(
    bs, "ubuntu", os.environ["RELEASE"], arches=[os.environ["ARCH"]], subarches=["*"], labels=["*"]
)
assert [s.id for s in c._origin.BootSourceSelections.read(bs)] == [sel.id]

step("import")
handler = c._origin.BootResources._handler
c.boot_resources.start_import()
deadline = time.time() + 120
while handler.is_importing():
    assert time.time() < deadline, "import still running after 120 s"
    time.sleep(0.2)

step("boot resources")
out = []
for r in c.boot_resources.list():
    full = c.boot_resources.get(r.id)
    sets = {}
    for version, s in (full.sets or {}).items():
        sets[version] = {
            "complete": s.complete,
            "size": s.size,
            "label": s.label,
            "files": {
                name: {"sha256": f.sha256, "size": f.size, "complete": f.complete}
                for name, f in (s.files or {}).items()
            },
        }
    out.append(
        {
            "id": full.id,
            "type": full.type,
            "name": full.name,
            "architecture": full.architecture,
            "subarches": full.subarches,
            "sets": sets,
        }
    )
step("upload in chunks")
data = bytes((i * 7 + 3) % 251 for i in range(3 * 1024 * 1024 + 12345))
up = c.boot_resources.create(
    "custom/lab-image", "amd64/generic", io.BytesIO(data), title="Lab image",
    chunk_size=1 << 20,
)
up = c.boot_resources.get(up.id)
assert up.type == "Uploaded", up.type
newest = up.sets[max(up.sets)]
assert newest.complete, "upload not complete"
(ufile,) = newest.files.values()
assert ufile.size == len(data) and ufile.complete
assert ufile.sha256 == hashlib.sha256(data).hexdigest()
out.append({"id": up.id, "type": up.type, "name": up.name, "architecture": up.architecture,
            "sha256": ufile.sha256})
print(json.dumps(out))
