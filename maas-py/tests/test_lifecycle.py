"""The life-cycle bindings: statuses, the table, actions, events, errors."""

import json

import pytest

import maas_rs
from maas_rs import NodeStatus

ADMIN = maas_rs.Actor("admin", is_admin=True)
ALICE = maas_rs.Actor("alice")
BOB = maas_rs.Actor("bob")
T0 = 1_700_000_000.0


def machine(status, **kw):
    m = {"system_id": "4y3h7n", "hostname": "n1", "status": int(status), "power_type": "ipmi", "commissioned": True}
    m.update(kw)
    return m


def test_statuses_are_maas_integers_and_labels():
    statuses = maas_rs.node_statuses()
    assert [s[0] for s in statuses] == list(range(23))
    assert statuses[13][:3] == (13, "FAILED_RELEASING", "Releasing failed")
    assert [s.name for s in NodeStatus] == [s[1] for s in statuses]
    assert NodeStatus.FAILED_RELEASING.label == "Releasing failed"
    assert NodeStatus.DISK_ERASING.simple == "Releasing"
    assert NodeStatus(6) is NodeStatus.DEPLOYED and NodeStatus.DEPLOYED == 6


def test_transition_table_equals_the_rust_export():
    exported = json.loads(maas_rs.export_transitions("json"))
    table = maas_rs.transition_table()
    assert len(table) == 23
    for status, targets in table.items():
        assert [t.name for t in targets] == exported["transitions"][status.name]
    assert maas_rs.can_transition(NodeStatus.READY, NodeStatus.ALLOCATED)
    assert not maas_rs.can_transition(NodeStatus.READY, NodeStatus.DEPLOYED)
    assert maas_rs.failure_status(NodeStatus.TESTING) is NodeStatus.FAILED_TESTING
    assert maas_rs.failure_status(NodeStatus.READY) is None
    assert maas_rs.export_transitions("mermaid").startswith("stateDiagram-v2")
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.export_transitions("pdf")
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.can_transition(23, 0)


def test_a_whole_life():
    m = maas_rs.create_machine({"hostname": "n1", "power_type": "ipmi", "architecture": "amd64/generic"}, ADMIN)
    assert m["status"] == NodeStatus.NEW
    out = maas_rs.apply(m, ADMIN, "commission", now=T0)
    assert out["status"] == NodeStatus.COMMISSIONING
    assert {"effect": "power_cycle"} in out["effects"]
    m = out["machine"]
    m = maas_rs.handle_event(m, {"event": "signal", "status": "OK"}, now=T0 + 60)["machine"]
    assert m["status"] == NodeStatus.READY
    out = maas_rs.apply(m, ALICE, "deploy", {"distro_series": "22.04"}, now=T0 + 120)
    assert out["via"] == [NodeStatus.ALLOCATED]
    m = out["machine"]
    assert (m["status"], m["owner"], m["distro_series"]) == (NodeStatus.DEPLOYING, "alice", "jammy")
    m = maas_rs.handle_event(m, {"event": "user_data_fetched"})["machine"]
    assert m["status"] == NodeStatus.DEPLOYED
    m = maas_rs.apply(m, ALICE, "release")["machine"]
    assert m["status"] == NodeStatus.RELEASING
    m = maas_rs.handle_event(m, {"event": "power_observed", "state": "off"})["machine"]
    assert (m["status"], m["owner"]) == (NodeStatus.READY, None)


def test_refusals_map_to_typed_exceptions():
    with pytest.raises(maas_rs.InvalidTransition) as e:
        maas_rs.apply(machine(NodeStatus.DEPLOYED, owner="alice"), ALICE, "allocate")
    assert e.value.http_status == 409
    with pytest.raises(maas_rs.Forbidden) as e:
        maas_rs.apply(machine(NodeStatus.ALLOCATED, owner="alice"), BOB, "deploy")
    assert e.value.http_status == 403
    with pytest.raises(maas_rs.BadParameter) as e:
        maas_rs.apply(machine(NodeStatus.READY), ALICE, "deploy", {"install_kvm": True})
    assert e.value.http_status == 400
    locked = machine(NodeStatus.DEPLOYED, owner="alice", locked=True)
    with pytest.raises(maas_rs.Forbidden):
        maas_rs.apply(locked, ADMIN, "release")
    assert maas_rs.apply(locked, ALICE, "unlock")["machine"]["locked"] is False
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.apply(machine(NodeStatus.READY), ALICE, "teleport")
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.apply({"status": 99}, ALICE, "allocate")
    for exc in (maas_rs.InvalidTransition, maas_rs.Forbidden, maas_rs.ConstraintError, maas_rs.CloneError):
        assert issubclass(exc, maas_rs.MaasError)


def test_deadlines_use_the_given_time():
    m = maas_rs.apply(machine(NodeStatus.READY), ADMIN, "commission", now=T0)["machine"]
    early = maas_rs.handle_event(m, {"event": "deadline_expired"}, now=T0 + 1799)
    assert early["status"] == NodeStatus.COMMISSIONING
    late = maas_rs.handle_event(m, {"event": "deadline_expired"}, now=T0 + 1800)
    assert late["status"] == NodeStatus.FAILED_COMMISSIONING
    quick = maas_rs.apply(machine(NodeStatus.READY), ADMIN, "commission", now=T0, config={"node_timeout": 60})
    short = maas_rs.handle_event(quick["machine"], {"event": "deadline_expired"}, now=T0 + 60)
    assert short["status"] == NodeStatus.FAILED_COMMISSIONING


def test_boot_purpose_and_system_ids():
    assert maas_rs.boot_purpose(None) == "enlist"
    assert maas_rs.boot_purpose(machine(NodeStatus.COMMISSIONING)) == "commissioning"
    assert maas_rs.boot_purpose(machine(NodeStatus.DEPLOYING, netboot=True)) == "xinstall"
    assert maas_rs.boot_purpose(machine(NodeStatus.READY)) == "poweroff"
    sid = maas_rs.generate_system_id()
    assert len(sid) == 6 and set(sid) <= set("34678abcdefghkmnpqrstwxy")
