"""Drives maasd's metadata API the way real machines do.

Run with Debian's /usr/bin/python3 (it has the `cloud-init` package's
`cloudinit` modules and python3-oauthlib):

  metadata_flows.py cloudinit   cloud-init's own DataSourceMAAS class reads a
                                deploying machine's metadata with its node
                                token; the machine turns Deployed.
  metadata_flows.py ephemeral   the ephemeral environment, scripted with the
                                repository's scripts/maas-run-scripts (the
                                runner maasd serves as user-data): enlists an
                                unknown MAC, commissions with hardware output
                                recorded on a real machine, deploys with
                                curtin/cloud-init webhook events, fails on
                                purpose; plus BMC matching and a deployed
                                machine reporting live hardware.

Environment: MAAS_URL (http://host:port/MAAS/), MAAS_KEY (admin API key),
RUNNER (path of scripts/maas-run-scripts), FIXTURES (recorded outputs).
Prints "<SCENARIO> OK" on success; any failed check raises.
"""

import base64
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import time
import urllib.parse

MAAS_URL = os.environ["MAAS_URL"].rstrip("/")  # http://host:port/MAAS
API = MAAS_URL + "/api/2.0"
CK, TK, TS = os.environ["MAAS_KEY"].split(":")


def load_runner():
    path = os.environ["RUNNER"]
    loader = importlib.machinery.SourceFileLoader("maas_run_scripts", path)
    spec = importlib.util.spec_from_loader("maas_run_scripts", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


R = load_runner()
ADMIN = R.Creds(MAAS_URL + "/metadata/", CK, TK, TS)


def api(method, path, fields=None, query=None):
    url = API + path
    if query:
        url += "?" + urllib.parse.urlencode(query, doseq=True)
    data, headers = None, {}
    if fields is not None:
        data, ctype = R.multipart(list(fields), [])
        headers["Content-Type"] = ctype
    st, body = R.http(url, data=data, headers=headers, creds=ADMIN, method=method)
    if st >= 300:
        raise AssertionError("%s %s -> %s %s" % (method, path, st, body[:400]))
    return json.loads(body) if body else None


def machine(sid):
    return api("GET", "/machines/%s/" % sid)


def events(sid):
    ev = api("GET", "/events/", query={"op": "query", "id": sid, "limit": 1000})
    ev = ev["events"] if isinstance(ev, dict) else ev
    return [e["description"] for e in ev]


def expect_status(sid, name):
    m = machine(sid)
    assert m["status_name"] == name, "%s is %s, want %s; events: %s" % (
        sid, m["status_name"], name, events(sid))
    return m


def node_creds(sid):
    t = api("GET", "/machines/%s/" % sid, query={"op": "get_token"})
    return R.Creds(MAAS_URL + "/metadata/", t["consumer_key"], t["token_key"],
                   t["token_secret"])


def webhook(creds, sid, event_type, name, description="", result=None,
            origin="curtin", files=None):
    body = {"event_type": event_type, "origin": origin, "name": name,
            "description": description, "timestamp": time.time()}
    if result:
        body["result"] = result
    if files:
        body["files"] = files
    st, text = R.http(MAAS_URL + "/metadata/status/" + sid,
                      data=json.dumps(body).encode(),
                      headers={"Content-Type": "application/json"},
                      creds=creds, method="POST")
    assert st == 204, "webhook %s %s -> %s %s" % (event_type, name, st, text)


def metadata_get(creds, path):
    return R.http(MAAS_URL + "/metadata/" + path, creds=creds)


def fixtures_for(mac):
    """The recorded outputs, with the recorded machine's physical NIC given
    `mac` (each simulated machine needs its own MAC)."""
    src = os.environ["FIXTURES"]
    dst = tempfile.mkdtemp()
    for name in os.listdir(src):
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        if name == "00-maas-08-ip-addr":
            links = json.loads(data)
            for l in links:
                if l.get("link_type") == "ether" and not l.get("linkinfo"):
                    l["address"] = mac
                    break
            data = json.dumps(links).encode()
        with open(os.path.join(dst, name), "wb") as f:
            f.write(data)
    return dst


def seed_ready(hostname, mac):
    """A Ready machine with a disk and a NIC, through the admin API."""
    m = api("POST", "/machines/", [
        ("hostname", hostname), ("architecture", "amd64/generic"),
        ("mac_addresses", mac), ("power_type", "manual"), ("commission", "true")])
    sid = m["system_id"]
    creds = node_creds(sid)
    expect_status(sid, "Commissioning")
    assert R.run_all(creds, "OK", outputs_dir=fixtures_for(mac)) == 0
    expect_status(sid, "Ready")
    return sid, creds


# --------------------------------------------------------------- cloud-init

def scenario_cloudinit():
    from cloudinit import helpers
    from cloudinit.sources import DataSourceMAAS

    sid, creds = seed_ready("ci-node", "52:54:00:c1:00:01")
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
    key = "ssh-ed25519 %s ci@test" % base64.b64encode(blob).decode()
    api("POST", "/account/prefs/sshkeys/", [("key", key)])
    user_data = b"#cloud-config\nruncmd: [echo hello-from-user-data]\n"
    api("POST", "/machines/%s/" % sid, [
        ("op", "deploy"), ("distro_series", "noble"),
        ("user_data", base64.b64encode(user_data).decode())])
    expect_status(sid, "Deploying")

    tmp = tempfile.mkdtemp()
    ds_cfg = {"metadata_url": MAAS_URL + "/metadata/", "consumer_key": creds.consumer_key,
              "token_key": creds.token_key, "token_secret": creds.token_secret}
    paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
    ds = DataSourceMAAS.DataSourceMAAS({"datasource": {"MAAS": ds_cfg}}, None, paths)
    assert ds._get_data(), "DataSourceMAAS found no data"
    md = ds.metadata
    assert md["instance-id"] == sid, md
    assert md["local-hostname"] == "ci-node.maas", md
    assert key in md["public-keys"], md
    assert ds.userdata_raw == user_data, ds.userdata_raw
    assert isinstance(ds.vendordata_raw, str) and ds.vendordata_raw.startswith(
        "#cloud-config"), ds.vendordata_raw
    assert "ntp" in ds.vendordata_raw
    m = expect_status(sid, "Deployed")
    assert m["owner"] == "admin"
    assert any("Deployed" in e for e in events(sid)), events(sid)

    # The wrong token, and a user's token, are refused.
    bad = R.Creds(MAAS_URL + "/metadata/", creds.consumer_key, creds.token_key, "nope")
    st, _ = metadata_get(bad, "2012-03-01/meta-data/instance-id")
    assert st == 401, st
    st, _ = metadata_get(ADMIN, "2012-03-01/meta-data/instance-id")
    assert st == 401, st
    print("CLOUDINIT OK")


# --------------------------------------------------------------- ephemeral env

def scenario_ephemeral():
    fixtures = os.environ["FIXTURES"]
    macs = ["52:54:00:e0:00:01", "52:54:00:e0:00:02"]
    mine = fixtures_for(macs[0])

    # 1. Enlistment of an unknown MAC (comma-joined MACs, as MAAS's script).
    st, body = R.http(API + "/machines/?op=is_registered&mac_address=" + macs[0])
    assert st == 200 and json.loads(body) is False, body
    sid, creds = R.enlist(MAAS_URL, "amd64/generic", macs)
    st, body = R.http(API + "/machines/?op=is_registered&mac_address=" + macs[1])
    assert json.loads(body) is True, body
    expect_status(sid, "New")
    assert R.signal(creds, "COMMISSIONING") == 200
    expect_status(sid, "Commissioning")
    assert R.run_all(creds, "OK", outputs_dir=mine) == 0
    m = expect_status(sid, "New")  # enlisting machines return to New
    with open(os.path.join(fixtures, "00-maas-01-cpuinfo")) as f:
        cpus = sum(1 for l in f if l.startswith("processor"))
    assert m["cpu_count"] == cpus, m["cpu_count"]
    with open(os.path.join(fixtures, "00-maas-02-meminfo")) as f:
        mem = int(f.read().split("MemTotal:")[1].split()[0]) // 1024
    assert m["memory"] == mem, m["memory"]
    assert m["hardware_info"]["cpu_model"] != "Unknown", m["hardware_info"]
    disks = [d["name"] for d in m["blockdevice_set"]]
    assert "vda" in disks and "zram0" not in disks, disks
    nics = {i["mac_address"]: i["name"] for i in m["interface_set"]}
    # The recorded NIC (renamed to this machine's MAC) keeps its kernel
    # name; the second enlisted MAC was not reported and is gone, as in MAAS.
    assert nics.get(macs[0]) == "eth0" and macs[1] not in nics, nics
    # (The default storage layout applied on success is checked in-process
    # by maas-server's tests: the REST API does not render partitions yet.)
    assert m["boot_disk"] and m["boot_disk"]["name"] == "vda", m["boot_disk"]

    # 2. A custom commissioning script uploaded through the REST API runs
    # too. Accepting commissions the machine; a failing script fails it.
    body, ctype = R.multipart(
        [("name", "99-custom-hello"), ("type", "commissioning"), ("timeout", "60")],
        [("script", b"#!/bin/sh\necho custom-hello\n")])
    st, text = R.http(API + "/scripts/", data=body, headers={"Content-Type": ctype},
                      creds=ADMIN, method="POST")
    assert st == 200 and json.loads(text)["type_name"] == "Commissioning script", text
    listed = [s["name"] for s in api("GET", "/scripts/", query={"type": "commissioning"})]
    assert listed == ["99-custom-hello"], listed
    api("POST", "/machines/", [("op", "accept"), ("machines", sid)])
    expect_status(sid, "Commissioning")
    R.signal(creds, "WORKING", files=[("00-maas-01-cpuinfo", b"")],
             name="00-maas-01-cpuinfo", exit_status=2)
    R.signal(creds, "OK")
    m = expect_status(sid, "Failed commissioning")
    api("POST", "/machines/%s/" % sid, [("op", "commission")])
    expect_status(sid, "Commissioning")
    assert R.run_all(creds, "OK", outputs_dir=mine) == 0
    expect_status(sid, "Ready")
    # Script results live in one set per run (MAAS's ScriptSet): three
    # commissioning runs so far, the current one passed; output only with
    # include_output, base64 as MAAS.
    sets = api("GET", "/nodes/%s/results/" % sid, query={"type": "commissioning"})
    assert len(sets) == 3, [s["id"] for s in sets]
    assert [s["status_name"] for s in sets[1:]] == ["Failed", "Passed"], sets
    assert "stdout" not in sets[2]["results"][0], sets[2]
    cur = api("GET", "/nodes/%s/results/current-commissioning/" % sid,
              query={"include_output": "1"})
    assert cur["id"] == sets[2]["id"] and cur["type_name"] == "Commissioning", cur
    results = {r["name"]: r for r in cur["results"]}
    assert base64.b64decode(results["99-custom-hello"]["stdout"]) == b"custom-hello\n", results
    assert results["99-custom-hello"]["script_id"] is not None, results
    assert results["00-maas-01-cpuinfo"]["status_name"] == "Passed", results
    assert results["00-maas-01-cpuinfo"]["exit_status"] == 0, results
    failed = api("GET", "/nodes/%s/results/%d/" % (sid, sets[1]["id"]))
    assert [r["exit_status"] for r in failed["results"]] == [2], failed

    # Custom testing scripts run when the machine is tested.
    body, ctype = R.multipart(
        [("name", "50-custom-test"), ("type", "testing")],
        [("script", b"#!/bin/sh\necho tested\n")])
    st, text = R.http(API + "/scripts/", data=body, headers={"Content-Type": ctype},
                      creds=ADMIN, method="POST")
    assert st == 200, text
    api("POST", "/machines/%s/" % sid, [("op", "test")])
    expect_status(sid, "Testing")
    assert R.run_all(creds, "OK", kind="testing") == 0
    expect_status(sid, "Ready")
    cur = api("GET", "/nodes/%s/results/current-testing/" % sid,
              query={"include_output": "1", "filters": "50-custom-test"})
    assert cur["results"][0]["name"] == "50-custom-test", cur
    assert base64.b64decode(cur["results"][0]["stdout"]) == b"tested\n", cur

    # 3. Deploy: preseed, curtin events, netboot off, user-data -> Deployed.
    api("POST", "/machines/%s/" % sid, [("op", "deploy"), ("distro_series", "noble")])
    expect_status(sid, "Deploying")
    st, preseed = R.http(MAAS_URL + "/metadata/latest/by-id/%s/?op=get_preseed" % sid)
    assert st == 200 and preseed.startswith(b"#cloud-config"), preseed[:200]
    assert b"/MAAS/metadata/curtin" in preseed and creds.token_key.encode() in preseed
    st, ud = metadata_get(creds, "curtin/2012-03-01/user-data")
    assert st == 200, st
    webhook(creds, sid, "start", "cmd-install", "curtin command install")
    webhook(creds, sid, "start", "cmd-install/stage-early", "preparing for installation")
    webhook(creds, sid, "finish", "cmd-install/stage-early", result="SUCCESS")
    webhook(creds, sid, "finish", "cmd-install", "curtin command install", result="SUCCESS",
            files=[{"path": "/tmp/install.log", "encoding": "base64",
                    "content": base64.b64encode(b"curtin log").decode()}])
    st, _ = R.http(MAAS_URL + "/metadata/latest/by-id/%s/" % sid,
                   data=b"op=netboot_off", method="POST",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, st
    m = expect_status(sid, "Deploying")
    assert m["netboot"] is False, m["netboot"]
    webhook(creds, sid, "finish", "modules-final", "running modules for final",
            result="SUCCESS", origin="cloudinit")
    st, _ = metadata_get(creds, "2012-03-01/user-data")
    assert st == 404, st  # no user data given, but the hand-off happened
    expect_status(sid, "Deployed")
    ev = events(sid)
    assert any("start cmd-install: curtin command install" in e for e in ev), ev

    # 4. Failing on purpose: curtin reports a failed install.
    sid2, creds2 = seed_ready("fail-node", "52:54:00:f0:00:01")
    api("POST", "/machines/%s/" % sid2, [("op", "deploy"), ("distro_series", "noble")])
    webhook(creds2, sid2, "start", "cmd-install", "curtin command install")
    webhook(creds2, sid2, "finish", "cmd-install", "curtin command install",
            result="FAIL")
    m = expect_status(sid2, "Failed deployment")
    assert "cmd-install" in m["error_description"], m["error_description"]
    assert any("cmd-install" in e for e in events(sid2)), events(sid2)

    # 5. A machine added with only its BMC is matched by the BMC address.
    m = api("POST", "/machines/", [
        ("architecture", "amd64/generic"), ("power_type", "ipmi"),
        ("power_parameters_power_address", "10.9.9.9"), ("commission", "false")])
    bmc_sid = m["system_id"]
    body, ctype = R.multipart([
        ("architecture", "amd64/generic"), ("mac_addresses", "52:54:00:b0:00:01"),
        ("power_type", "ipmi"),
        ("power_parameters", json.dumps({"power_address": "10.9.9.9"}))], [])
    st, text = R.http(API + "/machines/", data=body, headers={"Content-Type": ctype},
                      method="POST")
    assert st == 200 and json.loads(text)["system_id"] == bmc_sid, text

    # 6. A machine added already deployed reports its live hardware.
    m = api("POST", "/machines/", [
        ("hostname", "already-there"), ("deployed", "true")])
    dsid = m["system_id"]
    expect_status(dsid, "Deployed")
    t = api("GET", "/machines/%s/" % dsid, query={"op": "get_token"})
    rc = R.main(["report-results", "--url", MAAS_URL, "--consumer-key", t["consumer_key"],
                 "--token-key", t["token_key"], "--token-secret", t["token_secret"],
                 "--only", "00-maas-01-cpuinfo", "--only", "00-maas-02-meminfo",
                 "--only", "00-maas-07-block-devices"])
    assert rc == 0, rc
    m = expect_status(dsid, "Deployed")
    assert m["cpu_count"] == os.cpu_count(), (m["cpu_count"], os.cpu_count())
    assert m["memory"] > 0 and m["blockdevice_set"], m
    print("EPHEMERAL OK")


if __name__ == "__main__":
    {"cloudinit": scenario_cloudinit, "ephemeral": scenario_ephemeral}[sys.argv[1]]()
