"""Allocation constraints and cloning from Python."""

import json

import pytest

import maas_rs
from maas_rs import NodeStatus


def disk(i, gb, tags=()):
    return {"id": i, "name": f"sd{i}", "size": gb * 10**9, "tags": list(tags)}


def nic(i, name, fabric="fabric-0", space="mgmt"):
    return {
        "id": i,
        "name": name,
        "enabled": True,
        "vlan": {"id": 1, "vid": 0, "name": "untagged", "fabric": fabric, "space": space},
        "links": [{"id": i * 10, "mode": "auto", "subnet": {"id": 5, "name": "10.0.0.0/24", "cidr": "10.0.0.0/24"}}],
    }


def machine(sid, cpus, mem, disks, nics=(), **kw):
    m = {
        "system_id": sid,
        "hostname": sid,
        "status": int(NodeStatus.READY),
        "architecture": "amd64/generic",
        "cpu_count": cpus,
        "memory_mib": mem,
        "block_devices": disks,
        "interfaces": list(nics),
    }
    m.update(kw)
    return m


FLEET = [
    machine("aaaaaa", 16, 65536, [disk(1, 500, ["ssd"]), disk(2, 2000)], [nic(1, "eth0"), nic(2, "eth1", "fabric-1")]),
    machine("bbbbbb", 2, 4096, [disk(3, 100)], [nic(3, "eth0")]),
    machine("cccccc", 1, 1024, [disk(4, 100)], owner="bob"),
]


def test_parse_and_errors():
    c = maas_rs.parse_constraints({"cpu_count": "4", "tags": ["a", "b"], "storage": "root:80(ssd),data:1000"})
    assert c["cpu_count"] == 4.0 and c["tags"] == ["a", "b"]
    assert c["storage"][0] == {"label": "root", "min_bytes": 80 * 10**9, "tags": ["ssd"]}
    with pytest.raises(maas_rs.ConstraintError) as e:
        maas_rs.parse_constraints([("bogus", "1"), ("storage", "x:y")])
    body = json.loads(str(e.value))
    assert body["bogus"] == ["No such constraint."]
    assert "storage" in body
    assert e.value.http_status == 400


def test_allocate_cheapest_with_constraints_by_type():
    sid, by_type = maas_rs.allocate({}, FLEET)
    assert sid == "bbbbbb" and by_type == {}
    sid, by_type = maas_rs.allocate({"storage": "root:400(ssd),big:1500", "interfaces": "a:fabric=fabric-1"}, FLEET)
    assert sid == "aaaaaa"
    assert by_type == {"storage": {"root": [1], "big": [2]}, "interfaces": {"a": [2]}}
    assert maas_rs.allocate({"cpu_count": 64}, FLEET) is None
    assert maas_rs.match_constraints({"arch": "arm64"}, FLEET[0]) is None


def test_clone_plans_and_per_destination_errors():
    src = machine("aaaaaa", 4, 4096, [disk(1, 100)], [nic(1, "eth0")])
    ok = machine("bbbbbb", 4, 4096, [disk(7, 200)], [nic(8, "eth0")])
    small = machine("cccccc", 4, 4096, [disk(9, 50)], [nic(10, "eth0")])
    plans = maas_rs.plan_clone(src, [ok])
    assert plans == [{"system_id": "bbbbbb", "storage": [(1, 7)], "interfaces": [("eth0", 8)]}]
    with pytest.raises(maas_rs.CloneError) as e:
        maas_rs.plan_clone(src, [ok, small])
    errors = json.loads(str(e.value))["destinations"]
    assert [(x["system_id"], x["code"]) for x in errors] == [("cccccc", "storage")]
