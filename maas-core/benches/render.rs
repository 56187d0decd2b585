//! Rendering the deployment configuration of a large machine: 24 disks
//! (flat layout on the boot disk, an XFS data partition on each other
//! disk) and 8 NICs (two LACP bonds, a VLAN, a bridge, static and DHCP
//! links). Run with `cargo bench -p maas-core --bench render`; set
//! `MAAS_BENCH_DUMP=<file>` to also write the rendered curtin config as
//! JSON (bench/deploycfg/run.sh feeds it to PyYAML for comparison).

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use maas_core::hardware::{
    BlockDevice, Interface, InterfaceKind, Link, LinkMode, SubnetRef, VlanRef,
};
use maas_core::network::{BondMode, BondParams};
use maas_core::render::curtin::curtin_storage_config;
use maas_core::render::netplan::netplan_network;
use maas_core::render::{NodeToken, curtin_config, curtin_preseed, vendor_data};
use maas_core::storage::{Filesystem, FsType, Partition, PartitionTable, Volume, apply_layout};
use maas_core::{
    BootMethod, LayoutRequest, MacAddress, Machine, RenderContext, StorageLayout, SystemId,
};

fn subnet(cidr: &str, gw: &str) -> SubnetRef {
    SubnetRef {
        cidr: cidr.into(),
        gateway_ip: Some(gw.parse().unwrap()),
        dns_servers: vec![gw.parse().unwrap()],
        ..Default::default()
    }
}

fn big_machine() -> Machine {
    let mut m = Machine {
        system_id: SystemId::from_number(9_000_000).unwrap(),
        hostname: "big".into(),
        architecture: "amd64/generic".into(),
        boot_method: BootMethod::Uefi,
        osystem: "ubuntu".into(),
        distro_series: "noble".into(),
        hwe_kernel: Some("hwe-24.04".into()),
        ..Default::default()
    };
    for i in 0..24u64 {
        m.block_devices.push(BlockDevice {
            id: i + 1,
            name: format!("sd{}", (b'a' + i as u8) as char),
            size: 4_000_000_000_000,
            block_size: 4096,
            model: "HUH721010AL".into(),
            serial: format!("SER{i:05}"),
            id_path: format!("/dev/disk/by-id/wwn-0x5000{i:08}"),
            ..Default::default()
        });
    }
    apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Flat)).unwrap();
    for i in 2..=24u64 {
        m.storage.partition_tables.push(PartitionTable {
            block_device: i,
            ..Default::default()
        });
        m.storage.partitions.push(Partition {
            id: 100 + i,
            block_device: i,
            size: 3_900_000_000_000,
            ..Default::default()
        });
        m.storage.filesystems.push(Filesystem {
            id: 200 + i,
            fstype: FsType::Xfs,
            volume: Volume::Partition(100 + i),
            mount_point: Some(format!("/srv/disk{i:02}")),
            ..Default::default()
        });
    }
    let nic = |i: u8, links: Vec<Link>| Interface {
        id: u64::from(i),
        name: format!("eno{i}"),
        kind: InterfaceKind::Physical,
        mac: MacAddress([0x52, 0x54, 0, 0xbe, 0, i]),
        enabled: true,
        links,
        ..Default::default()
    };
    for i in 1..=8u8 {
        let links = match i {
            5 | 6 => vec![Link {
                id: u64::from(i),
                mode: LinkMode::Static,
                subnet: Some(subnet(&format!("10.{i}.0.0/24"), &format!("10.{i}.0.1"))),
                ip: Some(format!("10.{i}.0.10").parse().unwrap()),
            }],
            7 | 8 => vec![Link {
                id: u64::from(i),
                mode: LinkMode::Dhcp,
                ..Default::default()
            }],
            _ => vec![],
        };
        m.interfaces.push(nic(i, links));
    }
    for (b, members) in [(0u64, ["eno1", "eno2"]), (1, ["eno3", "eno4"])] {
        m.interfaces.push(Interface {
            id: 20 + b,
            name: format!("bond{b}"),
            kind: InterfaceKind::Bond,
            enabled: true,
            parents: members.iter().map(|s| s.to_string()).collect(),
            links: vec![Link {
                id: 20 + b,
                mode: LinkMode::Static,
                subnet: Some(subnet(&format!("10.2{b}.0.0/24"), &format!("10.2{b}.0.1"))),
                ip: Some(format!("10.2{b}.0.10").parse().unwrap()),
            }],
            bond: Some(BondParams {
                mode: BondMode::Lacp,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    m.interfaces.push(Interface {
        id: 30,
        name: "bond0.200".into(),
        kind: InterfaceKind::Vlan,
        enabled: true,
        parents: vec!["bond0".into()],
        vlan: Some(VlanRef {
            vid: 200,
            ..Default::default()
        }),
        ..Default::default()
    });
    m.interfaces.push(Interface {
        id: 31,
        name: "br200".into(),
        kind: InterfaceKind::Bridge,
        enabled: true,
        parents: vec!["bond0.200".into()],
        links: vec![Link {
            id: 31,
            mode: LinkMode::Static,
            subnet: Some(subnet("10.200.0.0/24", "10.200.0.1")),
            ip: Some("10.200.0.10".parse().unwrap()),
        }],
        ..Default::default()
    });
    m
}

fn ctx() -> RenderContext {
    RenderContext {
        maas_url: "http://10.0.0.1:5248/MAAS".into(),
        token: NodeToken {
            consumer_key: "ck".into(),
            token_key: "tk".into(),
            token_secret: "ts".into(),
        },
        syslog: Some("10.0.0.1:5247".into()),
        ntp_servers: vec!["10.0.0.1".into()],
        curtin_verbose: true,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let m = big_machine();
    let ctx = ctx();
    c.bench_function("curtin_config 24 disks 8 nics", |b| {
        b.iter(|| curtin_config(black_box(&m), black_box(&ctx)).unwrap())
    });
    c.bench_function("curtin storage 24 disks", |b| {
        b.iter(|| curtin_storage_config(black_box(&m)).unwrap())
    });
    c.bench_function("netplan 8 nics", |b| {
        b.iter(|| netplan_network(black_box(&m), black_box(&ctx)).unwrap())
    });
    c.bench_function("curtin preseed + vendor-data", |b| {
        b.iter(|| {
            (
                curtin_preseed(black_box(&m), &ctx).unwrap(),
                vendor_data(black_box(&m), &ctx).unwrap(),
            )
        })
    });
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(path) = std::env::var("MAAS_BENCH_DUMP") {
        let m = big_machine();
        let yaml = curtin_config(&m, &ctx()).unwrap();
        let v: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
