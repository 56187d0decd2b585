"""python-libmaas 0.6.8 on spaces and static routes against a running maasd.

Run by tests/tests/api_spaces.rs with MAAS_URL and MAAS_KEY set; the server
has subnets 10.20.0.0/24 (SRC_ID) and 192.168.50.0/24 (DST_ID) on
fabric-0's untagged VLAN (VLAN_ID), the only VLAN, which sits in space
"backbone" (BACKBONE_ID). Every check is an assert; the last
line printed is "SPACES OK".
"""

import os

from maas.client import connect
from maas.client.bones import CallError

URL = os.environ["MAAS_URL"]
KEY = os.environ["MAAS_KEY"]
SRC_ID = int(os.environ["SRC_ID"])
DST_ID = int(os.environ["DST_ID"])
BACKBONE_ID = int(os.environ["BACKBONE_ID"])
VLAN_ID = int(os.environ["VLAN_ID"])


def step(name):
    print("--", name, flush=True)


def expect_call_error(status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except CallError as e:
        assert e.status == status, (e.status, e.content)
        return e
    raise AssertionError("expected HTTP %d" % status)


c = connect(URL, apikey=KEY)

step("spaces.list: the space the test put fabric-0's VLAN in, no undefined")
spaces = c.spaces.list()
assert [s.name for s in spaces] == ["backbone"], [s.name for s in spaces]
backbone = spaces[0]
assert backbone.id == BACKBONE_ID, backbone
assert [v.id for v in backbone.vlans] == [VLAN_ID], backbone.vlans

step("spaces.create with and without a name")
dmz = c.spaces.create(name="dmz", description="front")
assert dmz.name == "dmz" and isinstance(dmz.id, int) and dmz.id > 0, dmz
assert list(dmz.vlans) == []
unnamed = c.spaces.create()
assert unnamed.name == "space-%d" % unnamed.id, unnamed.name
e = expect_call_error(400, c.spaces.create, name="dmz")
assert b"Space with this Name already exists." in e.content, e.content
e = expect_call_error(400, c.spaces.create, name="undefined")
assert b"Reserved space name." in e.content, e.content

step("spaces.get by id and by name")
got = c.spaces.get(dmz.id)
assert got.name == "dmz" and list(got.vlans) == [], got
got = c.spaces.get("backbone")
assert got.id == BACKBONE_ID and [v.id for v in got.vlans] == [VLAN_ID]
expect_call_error(404, c.spaces.get, 999999)

step("subnets report their VLAN's space")
sub = c.subnets.get(SRC_ID)
assert sub.vlan.id == VLAN_ID
assert sub._data["space"] == "backbone", sub._data

step("static_routes.create / list / get")
src = c.subnets.get(SRC_ID)
dst = c.subnets.get(DST_ID)
route = c.static_routes.create(
    source=src, destination=dst, gateway_ip="10.20.0.254", metric=5
)
assert route.gateway_ip == "10.20.0.254" and route.metric == 5, route
assert route.source.id == SRC_ID and route.destination.id == DST_ID
assert route.source.cidr == "10.20.0.0/24", route.source.cidr
assert route.destination.cidr == "192.168.50.0/24"
routes = c.static_routes.list()
assert [r.id for r in routes] == [route.id], routes
again = c.static_routes.get(route.id)
assert again.metric == 5 and again.destination.cidr == "192.168.50.0/24"

step("bad static routes are 400s")
e = expect_call_error(
    400,
    c.static_routes.create,
    source=src,
    destination=dst,
    gateway_ip="10.20.0.254",
    metric=9,
)
assert b"already exists" in e.content, e.content
e = expect_call_error(
    400,
    c.static_routes.create,
    source=src,
    destination=dst,
    gateway_ip="192.168.50.1",
    metric=0,
)
assert b"Enter an IP address in 10.20.0.0/24." in e.content, e.content
e = expect_call_error(
    400,
    c.static_routes.create,
    source=src,
    destination=src,
    gateway_ip="10.20.0.9",
    metric=0,
)
assert b"cannot be the same subnet" in e.content, e.content

step("delete a route and a space")
again.delete()
assert list(c.static_routes.list()) == []
c.spaces.get(dmz.id).delete()
names = sorted(s.name for s in c.spaces.list())
assert names == sorted(["backbone", unnamed.name]), names
expect_call_error(404, c.spaces.get, dmz.id)

print("SPACES OK")
