//! The allocation constraint language (`maas_core::Constraints::parse`) on
//! arbitrary urlencoded allocate parameters (`tags=a,b&storage=…&
//! interfaces=…&subnets=…`), then name validation and matching against a
//! small fleet: nothing may panic, and an allocation must pick a machine that
//! matches.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use maas_core::constraints::allocate;
use maas_core::hardware::{BlockDevice, Device, Interface, Link, LinkMode, SubnetRef, VlanRef};
use maas_core::ids::{SYSTEM_ID_MIN, SystemId};
use maas_core::{Constraints, Machine, NodeStatus};

fn disk(id: u64, gb: u64, tag: &str) -> BlockDevice {
    BlockDevice {
        id,
        name: format!("sd{id}"),
        size: gb * 1_000_000_000,
        tags: vec![tag.into()],
        ..Default::default()
    }
}

fn nic(id: u64, fabric: &str, vid: u16, space: &str, cidr: &str, ip: Option<&str>) -> Interface {
    Interface {
        id,
        name: format!("eth{id}"),
        enabled: true,
        vlan: Some(VlanRef {
            id: 100 + u64::from(vid),
            vid,
            name: format!("vlan{vid}"),
            fabric: fabric.into(),
            fabric_class: "10g".into(),
            space: space.into(),
        }),
        links: vec![Link {
            id: id * 10,
            mode: LinkMode::Auto,
            subnet: Some(SubnetRef {
                id: id + 50,
                name: cidr.into(),
                cidr: cidr.into(),
                space: space.into(),
                ..Default::default()
            }),
            ip: ip.and_then(|i| i.parse().ok()),
        }],
        link_speed: 10_000,
        ..Default::default()
    }
}

static FLEET: LazyLock<Vec<Machine>> = LazyLock::new(|| {
    (0..4u64)
        .map(|n| Machine {
            system_id: SystemId::from_number(SYSTEM_ID_MIN + n).expect("in range"),
            hostname: format!("node{n}"),
            status: NodeStatus::Ready,
            architecture: if n % 2 == 0 { "amd64/generic" } else { "arm64/generic" }.into(),
            cpu_count: 2 << n,
            memory_mib: 4096 << n,
            tags: vec![format!("t{n}"), "virtual".into()],
            zone: if n < 2 { "default" } else { "z2" }.into(),
            pool: "default".into(),
            block_devices: vec![disk(1, 100 * (n + 1), "ssd"), disk(2, 500, "rotary")],
            interfaces: vec![
                nic(1, "fabric-0", 0, "mgmt", "10.0.0.0/24", Some("10.0.0.5")),
                nic(2, "fabric-1", 42, "storage", "fd00::/64", None),
            ],
            devices: vec![Device {
                vendor_id: "8086".into(),
                product_id: "1533".into(),
                vendor_name: "Intel".into(),
                ..Default::default()
            }],
            ..Machine::default()
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
    let Ok(c) = Constraints::parse(&pairs) else {
        return;
    };
    let _ = c.validate_names(&["t0", "t1", "virtual"], &["default", "z2"], &["default"]);
    for m in FLEET.iter() {
        let _ = c.matches(m);
    }
    if let Some((m, _)) = allocate(&c, FLEET.iter()) {
        assert!(c.matches(m).is_some(), "allocated a machine that does not match");
    }
});
