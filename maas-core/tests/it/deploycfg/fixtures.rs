//! Machines and contexts for the matrix {flat, lvm, bcache, blank} × {BIOS,
//! UEFI} × {single NIC DHCP, static, bond+VLAN+bridge}.

use maas_core::hardware::{
    BlockDevice, Interface, InterfaceKind, Link, LinkMode, SubnetRef, VlanRef,
};
use maas_core::network::{BondMode, BondParams, BridgeParams};
use maas_core::render::{AptConfig, NodeToken};
use maas_core::storage::apply_layout;
use maas_core::{
    BootMethod, LayoutRequest, MacAddress, Machine, NodeStatus, RenderContext, StorageLayout,
    SystemId,
};

pub const LAYOUTS: [StorageLayout; 4] = [
    StorageLayout::Flat,
    StorageLayout::Lvm,
    StorageLayout::Bcache,
    StorageLayout::Blank,
];
pub const METHODS: [BootMethod; 2] = [BootMethod::Pxe, BootMethod::Uefi];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    Dhcp,
    Static,
    BondVlanBridge,
}
pub const NETS: [Net; 3] = [Net::Dhcp, Net::Static, Net::BondVlanBridge];

impl Net {
    pub fn name(self) -> &'static str {
        match self {
            Net::Dhcp => "dhcp",
            Net::Static => "static",
            Net::BondVlanBridge => "bond-vlan-bridge",
        }
    }
}

pub fn method_name(m: BootMethod) -> &'static str {
    match m {
        BootMethod::Uefi => "uefi",
        _ => "bios",
    }
}

pub fn disk(id: u64, name: &str, gb: u64, tags: &[&str], serial: bool) -> BlockDevice {
    BlockDevice {
        id,
        name: name.into(),
        size: gb * 1_000_000_000,
        block_size: 512,
        model: if serial {
            "QEMU HARDDISK".into()
        } else {
            String::new()
        },
        serial: if serial {
            format!("QM0000{id}")
        } else {
            String::new()
        },
        id_path: format!("/dev/disk/by-id/wwn-0x5000c500a{id:07}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

fn mac(last: u8) -> MacAddress {
    MacAddress([0x52, 0x54, 0x00, 0x12, 0x34, last])
}

pub fn subnet(id: u64, cidr: &str, gw: Option<&str>, dns: &[&str]) -> SubnetRef {
    SubnetRef {
        id,
        name: cidr.into(),
        cidr: cidr.into(),
        gateway_ip: gw.map(|g| g.parse().unwrap()),
        dns_servers: dns.iter().map(|d| d.parse().unwrap()).collect(),
        ..Default::default()
    }
}

pub fn link(id: u64, mode: LinkMode, subnet: Option<SubnetRef>, ip: Option<&str>) -> Link {
    Link {
        id,
        mode,
        subnet,
        ip: ip.map(|i| i.parse().unwrap()),
    }
}

pub fn nic(id: u64, name: &str, last: u8, links: Vec<Link>) -> Interface {
    Interface {
        id,
        name: name.into(),
        kind: InterfaceKind::Physical,
        mac: mac(last),
        enabled: true,
        links,
        mtu: 1500,
        ..Default::default()
    }
}

pub fn interfaces(net: Net) -> Vec<Interface> {
    let lan = subnet(1, "10.0.0.0/24", Some("10.0.0.1"), &["10.0.0.2"]);
    match net {
        Net::Dhcp => vec![nic(
            1,
            "eth0",
            1,
            vec![link(1, LinkMode::Dhcp, Some(lan), None)],
        )],
        Net::Static => vec![
            nic(
                1,
                "eth0",
                1,
                vec![
                    link(1, LinkMode::Static, Some(lan), Some("10.0.0.10")),
                    // A second address on the same NIC: MAAS's alias.
                    link(
                        2,
                        LinkMode::Auto,
                        Some(subnet(2, "10.0.1.0/24", None, &[])),
                        Some("10.0.1.10"),
                    ),
                    link(
                        3,
                        LinkMode::Static,
                        Some(subnet(
                            3,
                            "fd00:10::/64",
                            Some("fd00:10::1"),
                            &["fd00:10::2"],
                        )),
                        Some("fd00:10::10"),
                    ),
                ],
            ),
            nic(2, "eth1", 2, vec![link(4, LinkMode::LinkUp, None, None)]),
        ],
        Net::BondVlanBridge => {
            let mut eth0 = nic(1, "eth0", 1, vec![]);
            let mut eth1 = nic(2, "eth1", 2, vec![]);
            eth0.mtu = 9000;
            eth1.mtu = 9000;
            let bond = Interface {
                id: 3,
                name: "bond0".into(),
                kind: InterfaceKind::Bond,
                mac: mac(1),
                enabled: true,
                parents: vec!["eth0".into(), "eth1".into()],
                links: vec![link(5, LinkMode::Static, Some(lan), Some("10.0.0.10"))],
                mtu: 9000,
                bond: Some(BondParams {
                    mode: BondMode::Lacp,
                    xmit_hash_policy: "layer3+4".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let vlan = Interface {
                id: 4,
                name: "bond0.100".into(),
                kind: InterfaceKind::Vlan,
                enabled: true,
                parents: vec!["bond0".into()],
                vlan: Some(VlanRef {
                    id: 100,
                    vid: 100,
                    name: "storage".into(),
                    fabric: "fabric-0".into(),
                    ..Default::default()
                }),
                mtu: 9000,
                ..Default::default()
            };
            let bridge = Interface {
                id: 5,
                name: "br0".into(),
                kind: InterfaceKind::Bridge,
                mac: mac(1),
                enabled: true,
                parents: vec!["bond0.100".into()],
                links: vec![link(
                    6,
                    LinkMode::Static,
                    Some(subnet(
                        4,
                        "10.100.0.0/24",
                        Some("10.100.0.1"),
                        &["10.100.0.2"],
                    )),
                    Some("10.100.0.5"),
                )],
                mtu: 9000,
                bridge: Some(BridgeParams {
                    stp: true,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let eth2 = nic(
                6,
                "eth2",
                3,
                vec![link(
                    7,
                    LinkMode::Dhcp,
                    Some(subnet(5, "192.168.122.0/24", None, &[])),
                    None,
                )],
            );
            vec![eth0, eth1, bond, vlan, bridge, eth2]
        }
    }
}

/// A machine with a 500 GB HDD (found by model+serial) and a 120 GB SSD
/// (found by id_path), the layout applied.
pub fn machine(layout: StorageLayout, method: BootMethod, net: Net) -> Machine {
    let mut m = Machine {
        system_id: SystemId::from_number(8_000_123).unwrap(),
        hostname: "node1".into(),
        domain: "maas".into(),
        architecture: "amd64/generic".into(),
        boot_method: method,
        status: NodeStatus::Deploying,
        osystem: "ubuntu".into(),
        distro_series: "jammy".into(),
        hwe_kernel: Some("hwe-22.04".into()),
        owner: Some("admin".into()),
        block_devices: vec![
            disk(1, "sda", 500, &["rotary"], true),
            disk(2, "sdb", 120, &["ssd"], false),
        ],
        interfaces: interfaces(net),
        ..Default::default()
    };
    apply_layout(&mut m, &LayoutRequest::new(layout)).unwrap();
    m
}

pub fn ctx() -> RenderContext {
    RenderContext {
        maas_url: "http://10.0.0.1:5248/MAAS".into(),
        token: NodeToken {
            consumer_key: "cKeyAAAAAAAAAAAAAA".into(),
            token_key: "tKeyBBBBBBBBBBBBBB".into(),
            token_secret: "tSecretCCCCCCCCCCCCCCCCCCCCCCCCC".into(),
        },
        syslog: Some("10.0.0.1:5247".into()),
        ntp_servers: vec!["10.0.0.1".into(), "ntp.example.com".into()],
        dns_servers: vec!["10.0.0.1".parse().unwrap()],
        apt: AptConfig {
            archive: "http://archive.ubuntu.com/ubuntu".into(),
            ports_archive: "http://ports.ubuntu.com/ubuntu-ports".into(),
            proxy: Some("http://10.0.0.1:8000/".into()),
            ..AptConfig::default()
        },
        default_user: Some("ubuntu".into()),
        owner_name: Some("Ada Admin".into()),
        swap_size: Some(0),
        kernel_package: None,
        curtin_verbose: true,
        enable_ssh: false,
        force_v1_network: false,
        static_routes: Vec::new(),
    }
}

/// Every combination of the matrix, with its name.
pub fn matrix() -> Vec<(String, Machine)> {
    let mut out = Vec::new();
    for layout in LAYOUTS {
        for method in METHODS {
            for net in NETS {
                let name = format!("{layout}-{}-{}", method_name(method), net.name());
                out.push((name, machine(layout, method, net)));
            }
        }
    }
    out
}
