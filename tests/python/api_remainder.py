"""python-libmaas 0.6.8 against a running maasd: the listing written from
stored templates, allocation filtered in SQL, the indexed MAC lookup and the
MAAS-compat details of set_storage_layout and release.

Run by tests/tests/api_remainder.rs with MAAS_URL and MAAS_KEY set; the
server has N seeded Ready machines `rem-NNN` (N in MACHINES): cpu_count
2 + i % 6, memory 1024 * (1 + i % 4) MiB, tag `even` on even i, zone `z-odd`
on odd i (the zone exists), one NIC with MAC 52:54:0a:00:HH:LL (i = HHLL).
Every check is an assert; the last line printed is "REMAINDER OK".
"""

import json
import os

from maas.client import connect
from maas.client.bones import CallError
from maas.client.enum import NodeStatus
from maas.client.viscera.machines import MachineNotFound

URL = os.environ["MAAS_URL"]
KEY = os.environ["MAAS_KEY"]
N = int(os.environ["MACHINES"])


def step(name):
    print("--", name, flush=True)


def call_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except CallError as e:
        text = e.content.decode()
        try:
            return e.status, json.loads(text)
        except ValueError:
            return e.status, text
    raise AssertionError("expected an HTTP error")


def cost(i):
    return (2 + i % 6) + (1024 * (1 + i % 4)) / 1024


c = connect(URL, apikey=KEY)
Machines = c._origin.Machines._handler
Machine = c._origin.Machine._handler

step("the list is the single reads, and follows a zone edit without a machine write")
listed = {m["system_id"]: m for m in Machines.read()}
assert len(listed) == N, len(listed)
for sid in list(listed)[:5] + list(listed)[-5:]:
    assert Machine.read(system_id=sid) == listed[sid], sid
zone = c.zones.get("z-odd")
zone.description = "odd machines live here"
zone.save()
odd = [m for m in Machines.read() if m["zone"]["name"] == "z-odd"]
assert len(odd) == N // 2, len(odd)
assert all(m["zone"]["description"] == "odd machines live here" for m in odd)
libmaas_list = c.machines.list()
assert sorted(m.system_id for m in libmaas_list) == sorted(listed)

step("allocation picks the cheapest match among all Ready machines")
by_host = {m["hostname"]: m for m in listed.values()}
want = min(
    (i for i in range(N) if i % 2 == 0 and (2 + i % 6) >= 5 and 1024 * (1 + i % 4) >= 3000),
    key=lambda i: (cost(i), i),
)
a = c.machines.allocate(tags=["even"], cpus=5, memory=3000)
assert a.hostname == "rem-%03d" % want, (a.hostname, want)
a2 = c.machines.allocate(zone="z-odd", not_tags=["even"])
want2 = min((i for i in range(N) if i % 2 == 1), key=lambda i: (cost(i), i))
assert a2.hostname == "rem-%03d" % want2, (a2.hostname, want2)
try:
    c.machines.allocate(tags=["even"], zone="z-odd")
    raise AssertionError("an even machine in z-odd was allocated")
except MachineNotFound:
    pass

step("MAC lookups")
i = N - 1
mac = "52:54:0a:00:%02x:%02x" % (i >> 8, i & 255)
assert Machines.is_registered(mac_address=mac) is True
assert Machines.is_registered(mac_address="52:54:0a:ff:ff:ff") is False
found = Machines.read(mac_address=mac)
assert [m["hostname"] for m in found] == ["rem-%03d" % i], found

step("set_storage_layout without storage_layout: MAAS's 400")
free = c.machines.get(by_host["rem-%03d" % (N - 2)]["system_id"])
status, body = call_error(Machine.set_storage_layout, system_id=free.system_id)
assert (status, body) == (400, {"storage_layout": ["This field is required."]}), (status, body)
status, body = call_error(Machine.set_storage_layout, system_id=a.system_id, storage_layout="flat")
assert status == 409, (status, body)
assert Machine.set_storage_layout(system_id=free.system_id, storage_layout="lvm")["system_id"] == free.system_id

step("release: erase flags, the scripts form, unknown scripts refused")
a = a.release(erase=True, secure_erase=True, comment="wipe")
assert a.status == NodeStatus.DISK_ERASING, a.status
status, body = call_error(Machine.release, system_id=a2.system_id, scripts=["shred"])
assert (status, body) == (
    400,
    {"scripts": ["Select a valid choice. shred is not one of the available choices."]},
), (status, body)
assert c.machines.get(a2.system_id).status == NodeStatus.ALLOCATED
r = Machine.release(system_id=a2.system_id, scripts="wipe-disks", **{"wipe-disks_quick_erase": "true"})
assert r["status"] == NodeStatus.DISK_ERASING, r["status_name"]
events = c.events.query(system_ids=[a2.system_id])
assert any("erasing" in (e.description or "").lower() or "erasing" in (e.event_type or "").lower() for e in events), [
    (e.event_type, e.description) for e in events
]
b = c.machines.allocate(hostname="rem-000")
b = b.release()
assert b.status in (NodeStatus.READY, NodeStatus.RELEASING), b.status

print("REMAINDER OK")
