"""Validate a fleet of machine descriptions and walk one through MAAS's life-cycle,
with maas-rs's Rust core in-process (no server).

Run with:
    pip install ./maas-py        # or: maturin develop -m maas-py/Cargo.toml
    python examples/python/fleet_allocation.py
"""

import json

import maas_rs
from maas_rs import NodeStatus

GB = 10**9


def describe(sid, cpus, mem_gib, disks, fabric):
    """A machine as commissioning would report it (plain dicts)."""
    return {
        "system_id": sid,
        "hostname": f"node-{sid}",
        "status": int(NodeStatus.READY),
        "commissioned": True,
        "power_type": "ipmi",
        "architecture": "amd64/generic",
        "cpu_count": cpus,
        "memory_mib": mem_gib * 1024,
        "block_devices": [{"id": i + 1, "name": f"sd{chr(97 + i)}", "size": gb * GB, "tags": tags} for i, (gb, tags) in enumerate(disks)],
        "interfaces": [{"id": 1, "name": "eth0", "enabled": True, "vlan": {"vid": 0, "fabric": fabric}}],
    }


fleet = [
    describe("4y3h7n", 8, 32, [(480, ["ssd"]), (4000, ["rotary"])], "fabric-0"),
    describe("8cxn3a", 32, 256, [(960, ["ssd"]), (8000, ["rotary"]), (8000, ["rotary"])], "fabric-1"),
    describe("k3w6tq", 4, 16, [(240, ["ssd"])], "fabric-0"),
]

# 1. Which machine would MAAS hand out for this request?
request = {"cpu_count": "8", "storage": "root:400(ssd),data:6000(rotary)", "fabrics": "fabric-1"}
try:
    chosen = maas_rs.allocate(request, fleet)
except maas_rs.ConstraintError as e:
    raise SystemExit(f"bad request: {e}")
if chosen is None:
    raise SystemExit("409: no machine matches")
system_id, by_type = chosen
print(f"allocate {request} -> {system_id}, storage {json.dumps(by_type['storage'])}")

# 2. Take it through allocate → deploy → deployed → release with MAAS's rules.
alice = maas_rs.Actor("alice")
machine = next(m for m in fleet if m["system_id"] == system_id)
for step in ("allocate", "deploy"):
    out = maas_rs.apply(machine, alice, step, {"distro_series": "ubuntu/24.04"} if step == "deploy" else {})
    print(f"{step:>10}: {NodeStatus(machine['status']).label} -> {NodeStatus(out['status']).label}")
    machine = out["machine"]
machine = maas_rs.handle_event(machine, {"event": "user_data_fetched"})["machine"]
print(f"{'installed':>10}: {NodeStatus(machine['status']).label}, owner {machine['owner']}, {machine['osystem']}/{machine['distro_series']}")

# 3. Someone else may not release it: MAAS would answer 403.
try:
    maas_rs.apply(machine, maas_rs.Actor("bob"), "release")
except maas_rs.Forbidden as e:
    print(f"bob release: HTTP {e.http_status}: {e}")
