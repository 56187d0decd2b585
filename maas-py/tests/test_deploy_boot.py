"""Deployment configuration and boot-config rendering from Python."""

import pytest
import yaml

import maas_rs
from maas_rs import NodeStatus

GB = 10**9

CONTEXT = {
    "maas_url": "http://192.0.2.1:5248/MAAS",
    "token": {"consumer_key": "ck", "token_key": "tk", "token_secret": "ts"},
    "ntp_servers": ["192.0.2.1"],
}


def machine(boot_method="uefi"):
    return {
        "system_id": "4y3h7n",
        "hostname": "node1",
        "status": int(NodeStatus.DEPLOYING),
        "osystem": "ubuntu",
        "distro_series": "noble",
        "architecture": "amd64/generic",
        "boot_method": boot_method,
        "block_devices": [
            {"id": 1, "name": "sda", "size": 100 * GB, "block_size": 512, "serial": "S1", "model": "QEMU"},
        ],
        "interfaces": [
            {
                "id": 1,
                "name": "eth0",
                "enabled": True,
                "mac": "52:54:00:12:34:56",
                "vlan": {"id": 1, "vid": 0, "fabric": "fabric-0"},
                "links": [{"id": 1, "mode": "dhcp", "subnet": {"id": 1, "name": "lan", "cidr": "192.0.2.0/24"}}],
            }
        ],
    }


def test_layout_then_curtin_config():
    m = maas_rs.set_storage_layout(machine(), {"layout": "lvm", "boot_size": "1G"})
    maas_rs.validate_for_deploy(m)
    curtin = yaml.safe_load(maas_rs.render("curtin", m, CONTEXT))
    kinds = [item["type"] for item in curtin["storage"]["config"]]
    assert "lvm_volgroup" in kinds and "lvm_partition" in kinds
    mounts = {item["path"] for item in curtin["storage"]["config"] if item["type"] == "mount"}
    assert {"/", "/boot", "/boot/efi"} <= mounts
    assert "status/4y3h7n" in curtin["reporting"]["maas"]["endpoint"]


def test_apt_mirror_pockets_and_sources():
    ctx = dict(CONTEXT, apt={
        "archive": "http://mirror.example/ubuntu",
        "proxy": "http://proxy.example:3128/",
        "disabled_pockets": ["backports"],
        "disabled_components": ["multiverse"],
        "sources": [{"name": "tools_3", "source": "deb http://repo.example/tools $RELEASE main", "key": "K"}],
    })
    m = maas_rs.set_storage_layout(machine(), {"layout": "flat"})
    apt = yaml.safe_load(maas_rs.render("curtin", m, ctx))["apt"]
    assert apt["primary"][0]["uri"] == "http://mirror.example/ubuntu"
    assert apt["proxy"] == "http://proxy.example:3128/"
    assert "backports" not in apt["sources_list"] and "multiverse" not in apt["sources_list"]
    assert apt["sources"]["tools_3"] == {"source": "deb http://repo.example/tools $RELEASE main", "key": "K"}
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render("curtin", m, dict(CONTEXT, apt={"sources": [{"name": "x"}]}))


def test_static_routes_reach_netplan():
    m = machine()
    m["interfaces"][0]["links"] = [
        {"id": 1, "mode": "static", "ip": "192.0.2.10",
         "subnet": {"id": 1, "name": "lan", "cidr": "192.0.2.0/24", "gateway_ip": "192.0.2.1"}}
    ]
    m = maas_rs.set_storage_layout(m, {"layout": "flat"})
    ctx = dict(CONTEXT, static_routes=[
        {"id": 4, "source": 1, "destination": "198.51.100.0/24", "gateway": "192.0.2.254", "metric": 5},
        {"id": 5, "source": 2, "destination": "203.0.113.0/24", "gateway": "10.0.0.1"},
    ])
    out = maas_rs.render("netplan", m, ctx)
    assert "198.51.100.0/24" in out and "192.0.2.254" in out, out
    assert "203.0.113.0/24" not in out, out
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render("netplan", m, dict(CONTEXT, static_routes=[{"source": 1, "destination": "x", "gateway": "192.0.2.1"}]))


def test_bad_layouts_name_the_rule():
    with pytest.raises(maas_rs.RenderError):
        maas_rs.set_storage_layout(machine(), {"layout": "bcache"})
    with pytest.raises(maas_rs.RenderError):
        maas_rs.set_storage_layout(machine(), {"layout": "flat", "root_size": "150%"})
    blank = maas_rs.set_storage_layout(machine(), {"layout": "blank"})
    with pytest.raises(maas_rs.RenderError) as e:
        maas_rs.validate_for_deploy(blank)
    assert "/" in str(e.value)
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.set_storage_layout(machine(), {"layout": "zfs"})


def test_netplan_preseed_vendor_data():
    m = maas_rs.set_storage_layout(machine("pxe"), {"layout": "flat"})
    netplan = yaml.safe_load(maas_rs.render("netplan", m, CONTEXT))
    assert netplan["network"]["version"] == 2
    assert netplan["network"]["ethernets"]["eth0"]["dhcp4"] is True
    preseed = maas_rs.render("curtin_preseed", m, CONTEXT)
    assert preseed.startswith("#cloud-config")
    ds = yaml.safe_load(preseed)["datasource"]["MAAS"]
    assert ds["token_key"] == "tk" and ds["metadata_url"].endswith("/MAAS/metadata/curtin")
    vendor = yaml.safe_load(maas_rs.render("vendor_data", m, CONTEXT))
    assert vendor["cloud-init"].startswith("#cloud-config")
    assert maas_rs.decode_user_data("aGVsbG8=") == b"hello"
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render("nonsense", m, CONTEXT)
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render("curtin", m, {"bogus": 1})


def test_boot_configs_and_kernel_command_line():
    params = {
        "purpose": "xinstall",
        "hostname": "node1",
        "kernel": "ubuntu/amd64/ga-24.04/noble/stable/boot-kernel",
        "initrd": "ubuntu/amd64/ga-24.04/noble/stable/boot-initrd",
        "squashfs": "ubuntu/amd64/ga-24.04/noble/stable/squashfs",
        "preseed_url": "http://192.0.2.1:5248/MAAS/metadata/latest/by-id/4y3h7n/?op=get_preseed",
    }
    cmdline = maas_rs.kernel_command_line(params, "192.0.2.1")
    for part in ("root=squash:http://192.0.2.1:5248/images/", "ip=::::node1:BOOTIF:dhcp",
                 "cc:{'datasource_list': ['MAAS']}end_cc", "cloud-config-url=", "overlayroot=tmpfs"):
        assert part in cmdline, part
    pxe = maas_rs.render_boot_config("pxelinux", params, "192.0.2.1")
    assert "IPAPPEND 2" in pxe and "KERNEL http://192.0.2.1:5248/images/" in pxe
    assert "BOOTIF=01-${net_default_mac}" in maas_rs.render_boot_config("grub", params, "192.0.2.1")
    assert maas_rs.render_boot_config("ipxe", params, "192.0.2.1").startswith("#!ipxe")
    local = maas_rs.render_boot_config("pxelinux", dict(params, purpose="local"), "192.0.2.1")
    assert "KERNEL http" not in local
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render_boot_config("floppy", params, "192.0.2.1")
    with pytest.raises(maas_rs.BadParameter):
        maas_rs.render_boot_config("ipxe", dict(params, purpose="dance"), "192.0.2.1")
