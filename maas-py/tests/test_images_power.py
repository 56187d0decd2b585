"""Simplestreams verification and sync, and power drivers, against real
tools: a mirror made by python-simplestreams' json2streams and signed with
GnuPG, and pyghmi's IPMI BMC on loopback (the emulator the Rust tests use)."""

import asyncio
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import pytest

import maas_rs

BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope="module")
def gpg(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    gpg = shutil.which("gpg")
    assert gpg, "gpg missing: install Debian package gnupg"
    subprocess.run([gpg, "--batch", "--passphrase", "", "--quick-gen-key", "maas-rs test <test@example.invalid>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    keyring = subprocess.run([gpg, "--export"], env=env, check=True, capture_output=True).stdout

    def clearsign(src, dst):
        subprocess.run([gpg, "--batch", "--yes", "--clearsign", "--output", str(dst), str(src)],
                       env=env, check=True, capture_output=True)

    return keyring, clearsign


def build_mirror(root, clearsign):
    files = {
        "jammy/amd64/20250101/ga-22.04/generic/boot-kernel": os.urandom(40_000),
        "jammy/amd64/20250101/ga-22.04/generic/boot-initrd": os.urandom(60_000),
        "jammy/amd64/20250101/squashfs": os.urandom(120_000),
    }
    items = []
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        name = path.rsplit("/", 1)[1]
        items.append({
            "content_id": "com.ubuntu.maas:stable:v3:download",
            "product_name": "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04",
            "version_name": "20250101", "item_name": name, "ftype": name, "path": path,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "os": "ubuntu", "release": "jammy", "version": "22.04", "arch": "amd64",
            "subarch": "ga-22.04", "subarches": "generic,ga-22.04", "kflavor": "generic", "label": "stable",
        })
    (root / "items.json").write_text(json.dumps(items))
    json2streams = BIN / "json2streams"
    assert json2streams.exists(), "json2streams missing: pip install python-simplestreams"
    subprocess.run([str(json2streams), str(root / "items.json"), str(root)], check=True, capture_output=True)
    (root / "items.json").unlink()
    streams = root / "streams/v1"
    for doc in sorted(streams.iterdir()):
        if doc.name == "index.json":
            doc.write_text(doc.read_text().replace('.json"', '.sjson"'))
        clearsign(doc, doc.with_suffix(".sjson"))
        doc.unlink()
    return files


def test_signed_stream_verified_parsed_and_synced(gpg, tmp_path):
    keyring, clearsign = gpg
    mirror = tmp_path / "mirror"
    files = build_mirror(mirror, clearsign)
    index_bytes = (mirror / "streams/v1/index.sjson").read_bytes()

    signed = maas_rs.verify_signed(index_bytes, keyring, "index.sjson")
    assert json.loads(signed)["format"] == "index:1.0"
    index = maas_rs.parse_stream(index_bytes, keyring, "index.sjson")
    assert "com.ubuntu.maas:stable:v3:download" in json.dumps(index)

    tampered = index_bytes.replace(b"index:1.0", b"index:9.9")
    with pytest.raises(maas_rs.VerificationError):
        maas_rs.verify_signed(tampered, keyring)
    other = subprocess.run(["gpg", "--homedir", str(tmp_path), "--export"], capture_output=True).stdout
    with pytest.raises(maas_rs.VerificationError):
        maas_rs.parse_stream(index_bytes, other or b"not a keyring")

    events = []
    source = {
        "url": mirror.as_uri() + "/",
        "keyring_data": list(keyring),
        "selections": [{"os": "ubuntu", "release": "jammy", "arches": ["amd64"], "subarches": ["*"], "labels": ["*"]}],
    }
    store = tmp_path / "store"
    report = maas_rs.sync_source(source, str(store), progress=events.append)
    assert report["downloaded_files"] == len(files)
    assert report["promoted"] == 1
    assert {e["event"] for e in events} >= {"planned", "file_done", "promoted"}
    found = maas_rs.boot_files(str(store), "ubuntu", "amd64", "ga-22.04", "jammy")
    assert found is not None
    kernel = pathlib.Path(found["kernel"])
    if not kernel.is_absolute():
        kernel = store / kernel
    assert kernel.read_bytes() == files["jammy/amd64/20250101/ga-22.04/generic/boot-kernel"]

    again = asyncio.run(maas_rs.sync_source_async(source, str(store)))
    assert again["downloaded_files"] == 0 and again["reused_files"] == len(files)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BMC = """
import sys
from pyghmi.cmd.fakebmc import FakeBmc
import pyghmi.ipmi.bmc as bmc
class LoBmc(FakeBmc):
    def __init__(self, authdata, port):
        bmc.Bmc.__init__(self, authdata, port, address='127.0.0.1')
        self.powerstate = 'off'
        self.bootdevice = 'default'
LoBmc({'admin': 'password'}, int(sys.argv[1])).listen()
"""


@pytest.fixture()
def pyghmi_bmc(tmp_path):
    script = tmp_path / "bmc.py"
    script.write_text(BMC)
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    assert proc.poll() is None, "pyghmi BMC did not start (pip install pyghmi)"
    yield port
    proc.kill()
    proc.wait()


def ipmi(port, password="password"):
    return {"power_driver": "LAN_2_0", "power_address": f"127.0.0.1:{port}", "power_user": "admin",
            "power_pass": password, "cipher_suite_id": "3", "privilege_level": "ADMIN"}


def test_power_schema_and_validation():
    types = {t["power_type"]: t for t in maas_rs.power_types()}
    assert {"ipmi", "redfish", "virsh", "webhook", "manual"} <= set(types)
    assert not types["manual"]["queryable"]
    names = {p["name"] for p in types["ipmi"]["params"]}
    assert {"power_address", "power_user", "power_pass", "k_g", "cipher_suite_id", "privilege_level"} <= names
    assert any(p["secret"] for p in types["ipmi"]["params"] if p["name"] == "power_pass")
    with pytest.raises(maas_rs.PowerError):
        maas_rs.validate_power_parameters("ipmi", {})
    with pytest.raises(maas_rs.PowerError):
        maas_rs.validate_power_parameters("teleport", {})
    assert maas_rs.power("manual", {}, "on") == "unknown"


def test_ipmi_against_pyghmi_sync_and_async(pyghmi_bmc):
    p = ipmi(pyghmi_bmc)
    assert maas_rs.power("ipmi", p, "query") == "off"
    assert maas_rs.power("ipmi", p, "on") == "on"
    assert asyncio.run(maas_rs.power_async("ipmi", p, "query")) == "on"

    async def both():
        return await asyncio.gather(maas_rs.power_async("ipmi", p, "off"), asyncio.sleep(0, "loop alive"))

    state, alive = asyncio.run(both())
    assert (state, alive) == ("off", "loop alive")


def test_wrong_password_is_fatal_not_retried(pyghmi_bmc):
    start = time.monotonic()
    with pytest.raises(maas_rs.PowerError) as e:
        maas_rs.power("ipmi", ipmi(pyghmi_bmc, "hunter2-not-it"), "query")
    assert e.value.fatal is True
    assert "hunter2" not in str(e.value)
    assert time.monotonic() - start < 20, "a fatal error must not go through the retry waits"
