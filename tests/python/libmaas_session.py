"""A full python-libmaas 0.6.8 session against a running maasd.

Run by tests/tests/api_libmaas.rs with MAAS_URL, MAAS_KEY and
MAAS_PASSWORD set; the server has three seeded Ready machines (ready-1 with
tag gpu, an ssd boot disk and two NICs; ready-2 small; ready-3 big). Every
check is an assert; the last line printed is "SESSION OK".
"""

import base64
import os
import sys

from maas.client import connect, login
from maas.client.bones import CallError
from maas.client.enum import NodeStatus, PowerState
from maas.client.viscera.machines import MachineNotFound

URL = os.environ["MAAS_URL"]
KEY = os.environ["MAAS_KEY"]
PASSWORD = os.environ["MAAS_PASSWORD"]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3bTjL3TnRmV0vJ8a6m0sM1w5Wq2N0KXl3q9m8s2Zb test@maas-rs"


def step(name):
    print("--", name, flush=True)


def expect_call_error(status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except CallError as e:
        assert e.status == status, (e.status, e.content)
        return e
    raise AssertionError("expected HTTP %d" % status)


step("connect with an API key, login with a password")
c = connect(URL, apikey=KEY)
me = c.users.whoami()
assert me.username == "admin" and me.is_admin, me
c2 = login(URL, username="admin", password=PASSWORD)
assert c2.users.whoami().username == "admin"
try:
    login(URL, username="admin", password="wrong-" + PASSWORD)
    raise AssertionError("login with a wrong password succeeded")
except AssertionError:
    raise
except Exception:
    pass
assert c.version.get().version.startswith("3.")

step("users")
alice = c.users.create("alice", "alice-pw", email="alice@example.com", is_admin=False)
assert alice.username == "alice" and not alice.is_admin
assert {"admin", "alice"} <= {u.username for u in c.users.list()}

step("zones, pools, tags")
z = c.zones.create("rack1", description="first rack")
assert c.zones.get("rack1").description == "first rack"
assert {"default", "rack1"} <= {x.name for x in c.zones.list()}
pool = c.resource_pools.create("prod", description="production")
assert c.resource_pools.get(pool.id).name == "prod"
tag = c.tags.create("virtual", comment="virtual machines")
assert "virtual" in {t.name for t in c.tags.list()}
assert {"gpu", "virtual"} <= {t.name for t in c.tags.list()}

step("ssh keys")
k = c.ssh_keys.create(SSH_KEY)
assert [x.key for x in c.ssh_keys.list()] == [SSH_KEY]
assert c.ssh_keys.get(k.id).key == SSH_KEY
expect_call_error(400, c.ssh_keys.create, "not a key")
k._handler.delete(id=k.id)
assert list(c.ssh_keys.list()) == []

step("machines: create with manual and webhook power")
m1 = c.machines.create("amd64", ["52:54:00:aa:00:01"], "manual", hostname="manual-1")
assert m1.hostname == "manual-1" and m1.architecture == "amd64/generic"
assert m1.status == NodeStatus.COMMISSIONING, m1.status  # admin create commissions
hook = {
    "power_on_uri": "http://127.0.0.1:9/on",
    "power_off_uri": "http://127.0.0.1:9/off",
    "power_query_uri": "http://127.0.0.1:9/query",
}
m2 = c.machines.create("amd64", ["52:54:00:aa:00:02"], "webhook", hook, hostname="hook-1")
assert m2.power_type == "webhook"
pp = m2.get_power_parameters()
assert pp["power_on_uri"] == hook["power_on_uri"] and "power_on_regex" in pp, pp
expect_call_error(400, c.machines.create, "amd64", ["52:54:00:aa:00:02"], "manual")  # MAC in use
expect_call_error(400, c.machines.create, "z80", ["52:54:00:aa:00:03"], "manual")
expect_call_error(400, c.machines.create, "amd64", ["52:54:00:aa:00:04"], "webhook", {})

step("machines: list, filter, read, update")
names = {m.hostname for m in c.machines.list()}
assert {"manual-1", "hook-1", "ready-1", "ready-2", "ready-3"} <= names, names
assert [m.hostname for m in c.machines.list(hostnames=["ready-1.maas"])] == ["ready-1"]
r1 = c.machines.get([m for m in c.machines.list() if m.hostname == "ready-1"][0].system_id)
assert r1.status == NodeStatus.READY and r1.cpus == 4 and r1.memory == 8192
assert r1.power_state in (PowerState.UNKNOWN, PowerState.OFF)
assert len(r1.interfaces) == 2 and len(r1.block_devices) == 2
assert r1.boot_disk.name == "sda" and "ssd" in r1.boot_disk.tags
assert [t.name for t in r1.tags] == ["gpu"]
assert r1.domain.name == "maas" and r1.fqdn == "ready-1.maas"
m = c.machines.get(m2.system_id)
m.hostname = "hook-1b"
m.zone = z
m.pool = pool
m.save()
m = c.machines.get(m2.system_id)
assert (m.hostname, m.zone.name, m.pool.name) == ("hook-1b", "rack1", "prod"), (m.hostname, m.zone, m.pool)
m.tags.add(tag)
assert "virtual" in [t.name for t in c.machines.get(m2.system_id).tags]
m.tags.remove(tag)
assert "virtual" not in [t.name for t in c.machines.get(m2.system_id).tags]

step("allocate with constraints, and 409 when nothing matches")
a = c.machines.allocate(
    tags=["gpu"], cpus=2, memory=4096, storage=["root:50(ssd),data:200"], interfaces=["eth:name=eth1"],
    comment="session",
)
assert a.hostname == "ready-1" and a.status == NodeStatus.ALLOCATED, (a.hostname, a.status)
assert a.owner.username == "admin"
try:
    c.machines.allocate(tags=["gpu"])
    raise AssertionError("second gpu allocation succeeded")
except MachineNotFound:
    pass
expect_call_error(400, c._origin.Machines._handler.allocate, no_such_constraint="x")
cheap = c.machines.allocate(zone="default")
assert cheap.hostname == "ready-2", cheap.hostname  # cheapest first

step("deploy with user_data, release")
a = a.deploy(user_data=b"#cloud-config\nruncmd: [echo hi]\n", distro_series="jammy", comment="go")
assert a.status == NodeStatus.DEPLOYING, a.status
assert a.distro_series == "jammy" and a.osystem == "ubuntu", (a.osystem, a.distro_series)
a = a.release(comment="done")
assert a.status in (NodeStatus.READY, NodeStatus.RELEASING), a.status
a = c.machines.get(a.system_id)
assert a.owner is None

step("mark broken / fixed")
r2 = c.machines.get(cheap.system_id)
r2 = r2.mark_broken(comment="disk noise")
assert r2.status == NodeStatus.BROKEN, r2.status
r2 = r2.mark_fixed(comment="replaced")
assert r2.status == NodeStatus.READY, r2.status

step("lock / unlock")
d = c.machines.allocate(hostname="ready-3")
d = d.deploy()
d = d.lock(comment="production")
assert d.locked
expect_call_error(403, d._handler.release, system_id=d.system_id)
d = d.unlock()
assert not d.locked
d = d.release()

step("clone")
src = c.machines.get(r1.system_id)
c._origin.Machines._handler.clone(source=src.system_id, destinations=[d.system_id], storage=True, interfaces=True)
e = expect_call_error(400, c._origin.Machines._handler.clone, source=src.system_id, destinations=[src.system_id], storage=True)

step("boot sources and selections")
bs = c.boot_sources.create("http://images.example.com/ephemeral-v3/stable/", keyring_filename="/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg")
assert c.boot_sources.get(bs.id).url == bs.url
assert bs.created is not None
sel = c._origin.BootSourceSelections.create(bs, "ubuntu", "jammy", arches=["amd64"], subarches=["*"], labels=["*"])
sels = c._origin.BootSourceSelections.read(bs)
assert [(s.os, s.release, s.arches) for s in sels] == [("ubuntu", "jammy", ["amd64"])]
sel.delete()
bs.delete()
assert bs.id not in [b.id for b in c.boot_sources.list()]

step("events, config, networking")
evs = c.events.query(system_ids=[a.system_id])
assert any("Deploying" in (e.event_type or "") for e in evs), [e.event_type for e in evs]
c.maas.set_default_distro_series("noble")
assert c.maas.get_default_distro_series() == "noble"
assert "fabric-0" in [f.name for f in c.fabrics.list()]
fabric0 = [f for f in c.fabrics.list() if f.name == "fabric-0"][0]
vlan0 = fabric0.vlans[0]
assert vlan0.vid == 0, vlan0.vid
sn = c.subnets.create("10.20.0.0/24", vlan0, gateway_ip="10.20.0.1")
assert c.subnets.get(sn.id).cidr == "10.20.0.0/24"

step("link an interface to a subnet (STATIC, then unlink)")
from maas.client.enum import LinkMode
ready = [x for x in c.machines.list() if x.status_name == "Ready"][0]
eth0 = ready.interfaces.get_by_name("eth0")
ln = eth0.links.create(LinkMode.STATIC, subnet=sn, ip_address="10.20.0.50")
assert ln.ip_address == "10.20.0.50" and ln.mode == LinkMode.STATIC, (ln.ip_address, ln.mode)
auto = eth0.links.create(LinkMode.STATIC, subnet=sn)
assert auto.ip_address not in ("10.20.0.1", "10.20.0.50"), auto.ip_address
ln.delete()
again = c.machines.get(ready.system_id).interfaces.get_by_name("eth0")
assert [l.ip_address for l in again.links if l.mode == LinkMode.STATIC] == [auto.ip_address]
# (A link fresh from links.create() lacks the interface libmaas needs here.)
[l for l in again.links if l.mode == LinkMode.STATIC][0].set_as_default_gateway()

step("archive and proxy settings (the archives are the default package repositories)")
c.maas.set_main_archive("http://mirror.example/ubuntu")
assert c.maas.get_main_archive() == "http://mirror.example/ubuntu"
assert c.maas.get_ports_archive() == "http://ports.ubuntu.com/ubuntu-ports"
c.maas.set_http_proxy("http://proxy.example:3128/")
assert c.maas.get_http_proxy() == "http://proxy.example:3128/"
assert c.maas.get_enable_http_proxy() is True
c.maas.set_enable_http_proxy(False)
assert c.maas.get_enable_http_proxy() is False
c.maas.set_http_proxy(None)
assert c.maas.get_http_proxy() is None
c.maas.set_curtin_verbose(False)
assert c.maas.get_curtin_verbose() is False
assert c.maas.get_default_dns_ttl() == 30
assert c.maas.get_windows_kms_host() is None

step("permissions: a non-admin cannot create machines")
alice_c = login(URL, username="alice", password="alice-pw")
try:
    alice_c.machines.create("amd64", ["52:54:00:aa:00:09"], "manual")
    raise AssertionError("non-admin created a machine")
except CallError as e:
    assert e.status == 403, e.status

step("delete")
c.machines.get(m1.system_id).delete()
assert m1.system_id not in [x.system_id for x in c.machines.list()]

print("SESSION OK")
