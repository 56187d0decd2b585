"""The admin's side of the netboot-lab scenario, through python-libmaas 0.6.8.

Run by tests/tests/lab/scenario.rs with MAAS_URL and MAAS_KEY set:

    lab_scenario.py import MIRROR_URL KEYRING_FILE OS RELEASE
    lab_scenario.py sshkey KEY
    lab_scenario.py commission SYSTEM_ID...
    lab_scenario.py deploy DISTRO_SERIES USER_DATA_FILE SYSTEM_ID...
    lab_scenario.py release [--quick-erase] SYSTEM_ID...
    lab_scenario.py demo-network NET          (tests/lab/lab demo: NET.0/24
                                               managed, dynamic range .100-.150)

Each action is asked for and not waited on (the test watches the machines
reach their states); every machine's new status is printed as
"<system_id> <status name>", and the last line is "DONE".
"""

import io
import os
import sys
import time

from maas.client import connect
from maas.client.enum import IPRangeType

c = connect(os.environ["MAAS_URL"], apikey=os.environ["MAAS_KEY"])
action, args = sys.argv[1], sys.argv[2:]

if action == "import":
    # The boot source (keyring as bytes, as MAAS takes it), one selection,
    # then the import; waited on, since nothing boots without it.
    url, keyring_file, osystem, release = args
    with open(keyring_file, "rb") as f:
        bs = c.boot_sources.create(url, keyring_data=io.BytesIO(f.read()))
    c._origin.BootSourceSelections.create(
        bs, osystem, release, arches=["amd64"], subarches=["*"], labels=["*"]
    )
    handler = c._origin.BootResources._handler
    c.boot_resources.start_import()
    deadline = time.time() + 300
    while handler.is_importing():
        assert time.time() < deadline, "import still running after 300 s"
        time.sleep(0.5)
    names = sorted(r.name for r in c.boot_resources.list())
    assert "%s/%s" % (osystem, release) in names, names
    print("imported", " ".join(names))
elif action == "sshkey":
    key = c.ssh_keys.create(args[0])
    assert key.key == args[0], key
    print("sshkey", key.id)
elif action == "commission":
    for sid in args:
        m = c.machines.get(system_id=sid)
        m = m.commission(wait=False)
        print(sid, m.status_name)
elif action == "deploy":
    series, user_data_file = args[0], args[1]
    with open(user_data_file, "rb") as f:
        user_data = f.read()
    for sid in args[2:]:
        m = c.machines.get(system_id=sid)
        # An admin allocates the machine by name, then deploys it.
        m = c.machines.allocate(hostname=m.hostname)
        assert m.system_id == sid, (m.system_id, sid)
        m = m.deploy(distro_series=series, user_data=user_data, wait=False)
        print(sid, m.status_name)
elif action == "release":
    quick = "--quick-erase" in args
    for sid in [a for a in args if not a.startswith("--")]:
        m = c.machines.get(system_id=sid)
        if quick:
            m = m.release(erase=True, quick_erase=True, wait=False)
        else:
            m = m.release(wait=False)
        print(sid, m.status_name)
elif action == "demo-network":
    # What the scenario does through the e2e client, for `lab demo`: the
    # commissioning release the lab's mirror carries, the lab's subnet with a
    # dynamic range, DHCP on the default VLAN.
    net = args[0]
    for name, value in (
        ("commissioning_osystem", "debian"),
        ("commissioning_distro_series", "bookworm"),
    ):
        c._origin.MAAS._handler.set_config(name=name, value=value)
    vlan = c.fabrics.list()[0].vlans.get_default()
    c.subnets.create(net + ".0/24", vlan=vlan)
    c.ip_ranges.create(net + ".100", net + ".150", type=IPRangeType.DYNAMIC)
    vlan.dhcp_on = True
    vlan.save()
    print("dhcp on", net + ".0/24")
else:
    raise SystemExit("unknown action " + action)
print("DONE")
