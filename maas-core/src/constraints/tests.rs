use proptest::prelude::*;

use super::*;
use crate::hardware::{BlockDevice, Device, Interface, Link, SubnetRef, VlanRef};
use crate::ids::SystemId;

fn p(pairs: &[(&str, &str)]) -> Result<Constraints, ConstraintError> {
    Constraints::parse(pairs)
}

fn disk(id: u64, gb: u64, tags: &[&str]) -> BlockDevice {
    BlockDevice {
        id,
        name: format!("d{id}"),
        size: gb * 1_000_000_000,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

fn nic(
    id: u64,
    name: &str,
    fabric: &str,
    vid: u16,
    space: &str,
    cidr: &str,
    ip: Option<&str>,
) -> Interface {
    Interface {
        id,
        name: name.into(),
        enabled: true,
        vlan: Some(VlanRef {
            id: vid as u64 + 100,
            vid,
            name: if vid == 0 {
                "untagged".into()
            } else {
                format!("v{vid}")
            },
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
            }),
            ip: ip.map(|i| i.parse().unwrap()),
        }],
        link_speed: 10_000,
        ..Default::default()
    }
}

fn m(n: u64, cpus: u32, mem: u64) -> Machine {
    Machine {
        system_id: SystemId::from_number(crate::ids::SYSTEM_ID_MIN + n).unwrap(),
        hostname: format!("node{n}"),
        status: NodeStatus::Ready,
        architecture: "amd64/generic".into(),
        cpu_count: cpus,
        memory_mib: mem,
        tags: vec!["virtual".into()],
        block_devices: vec![
            disk(1, 100, &["ssd"]),
            disk(2, 500, &["rotary"]),
            disk(3, 1000, &["rotary"]),
        ],
        interfaces: vec![
            nic(
                1,
                "eth0",
                "fabric-0",
                0,
                "mgmt",
                "10.0.0.0/24",
                Some("10.0.0.5"),
            ),
            nic(2, "eth1", "fabric-1", 42, "storage", "10.1.0.0/24", None),
        ],
        devices: vec![Device {
            vendor_id: "8086".into(),
            product_id: "1533".into(),
            vendor_name: "Intel".into(),
            ..Default::default()
        }],
        ..Machine::default()
    }
}

#[test]
fn unknown_keys_are_400_with_maas_message() {
    let e = p(&[("bogus", "1"), ("cpu_count", "2")]).unwrap_err();
    assert_eq!(e.errors["bogus"], vec!["No such constraint.".to_string()]);
    // libmaas can send these; MAAS 3.8 has no such constraints.
    for k in ["pod", "not_pod", "pod_type", "not_pod_type", "not_in_zones"] {
        assert!(p(&[(k, "x")]).unwrap_err().errors.contains_key(k), "{k}");
    }
    for k in NON_CONSTRAINT_KEYS {
        assert!(p(&[(k, "x")]).is_ok(), "{k}");
    }
    assert!(
        p(&[("cpu_count", "many")])
            .unwrap_err()
            .errors
            .contains_key("cpu_count")
    );
    assert!(p(&[("mem", "-1")]).is_err());
}

#[test]
fn scalar_and_list_constraints() {
    let x = m(1, 4, 8192);
    let yes = |pairs: &[(&str, &str)]| p(pairs).unwrap().matches(&x).is_some();
    assert!(yes(&[("cpu_count", "4"), ("mem", "8192")]));
    assert!(!yes(&[("cpu_count", "5")]));
    assert!(!yes(&[("mem", "8193")]));
    assert!(
        yes(&[("arch", "amd64")])
            && yes(&[("arch", "amd64/generic")])
            && yes(&[("arch", "arm64"), ("arch", "amd64")])
    );
    assert!(!yes(&[("arch", "arm64")]) && !yes(&[("arch", "amd64/hwe-22.04")]));
    assert!(
        yes(&[("name", "node1")])
            && yes(&[("name", "node1.maas")])
            && !yes(&[("name", "node1.other")])
    );
    assert!(yes(&[("system_id", x.system_id.as_str())]) && !yes(&[("system_id", "xxxxxx")]));
    assert!(
        yes(&[("tags", "virtual")])
            && !yes(&[("tags", "virtual,gpu")])
            && !yes(&[("not_tags", "virtual")])
    );
    assert!(
        yes(&[("zone", "default")])
            && !yes(&[("not_in_zone", "default")])
            && !yes(&[("zone", "z2")])
    );
    assert!(
        yes(&[("pool", "default")]) && !yes(&[("not_in_pool", "a"), ("not_in_pool", "default")])
    );
    assert!(yes(&[("fabrics", "fabric-9,fabric-1")]) && !yes(&[("not_fabrics", "fabric-0")]));
    assert!(yes(&[("fabric_classes", "10g")]) && !yes(&[("not_fabric_classes", "10g")]));
    assert!(
        yes(&[("devices", "vendor_id=8086,product_id=1533")])
            && !yes(&[("devices", "vendor_id=10de")])
    );
}

#[test]
fn subnet_specifiers() {
    let x = m(1, 4, 8192);
    let yes = |v: &str| p(&[("subnets", v)]).unwrap().matches(&x).is_some();
    for spec in [
        "51",
        "name:10.0.0.0/24",
        "cidr:10.1.0.0/24",
        "ip:10.1.0.77",
        "fabric:fabric-1",
        "space:storage",
        "vid:42",
        "vlan:v42",
        "10.0.0.0/24",
    ] {
        assert!(yes(spec), "{spec}");
    }
    for spec in ["99", "ip:10.2.0.1", "space:public", "vid:7"] {
        assert!(!yes(spec), "{spec}");
    }
    assert!(
        p(&[("not_subnets", "space:storage")])
            .unwrap()
            .matches(&x)
            .is_none()
    );
    assert!(p(&[("subnets", "vid:5000")]).is_err());
    assert!(p(&[("subnets", "cidr:10.0.0.0/99")]).is_err());
}

#[test]
fn storage_specs_parse_and_match_distinct_disks() {
    let s = parse_storage("root:80(ssd),data:400(rotary),600").unwrap();
    assert_eq!(
        s[0],
        StorageSpec {
            label: "root".into(),
            min_bytes: 80_000_000_000,
            tags: vec!["ssd".into()]
        }
    );
    assert_eq!(s[2].label, "2");
    for bad in [
        "", "root:", "a:b", "x:10(ssd", "10(,)", "r:1,r:2", "1e3", "root:-5", "a b:10",
    ] {
        assert!(parse_storage(bad).is_err(), "{bad:?}");
    }
    let x = m(1, 4, 8192);
    let c = p(&[("storage", "root:80(ssd),data:400(rotary),big:900")]).unwrap();
    let by = c.matches(&x).unwrap();
    assert_eq!(by.storage["root"], vec![1]);
    assert_eq!(by.storage["data"], vec![2]);
    assert_eq!(by.storage["big"], vec![3]);
    // The first entry must be the boot disk.
    assert!(p(&[("storage", "root:200")]).unwrap().matches(&x).is_none());
    // Two entries cannot share one disk.
    assert!(
        p(&[("storage", "root:10,a:900,b:900")])
            .unwrap()
            .matches(&x)
            .is_none()
    );
}

#[test]
fn interface_specs() {
    let x = m(1, 4, 8192);
    let c = p(&[("interfaces", "mgmt:space=mgmt;data:fabric=fabric-1,vid=42")]).unwrap();
    let by = c.matches(&x).unwrap();
    assert_eq!(by.interfaces["mgmt"], vec![1]);
    assert_eq!(by.interfaces["data"], vec![2]);
    let yes = |v: &str| p(&[("interfaces", v)]).unwrap().matches(&x).is_some();
    assert!(yes("a:name=eth0,name=eth9"));
    assert!(yes("a:ip=10.0.0.5") && !yes("a:ip=10.0.0.6"));
    assert!(yes("a:not_space=mgmt") && !yes("a:not_fabric=fabric-0;b:not_fabric=fabric-0"));
    assert!(yes("a:link_speed=10000") && !yes("a:link_speed=25000"));
    assert!(yes("a:subnet=cidr:10.1.0.0/24") && yes("a:type=physical") && !yes("a:type=bond"));
    assert!(
        !yes("a:space=mgmt;b:space=mgmt"),
        "two labels need two interfaces"
    );
    for bad in [
        "eth0",
        "a:",
        "a:speed=1",
        "a:id=x",
        "a:ip=nope",
        "a:name=x;a:name=y",
        "a:name=",
    ] {
        assert!(parse_interfaces(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn allocate_picks_cheapest_ready_unowned() {
    let big = m(1, 16, 65536);
    let small = m(2, 2, 4096);
    let mut taken = m(3, 1, 1024);
    taken.owner = Some("bob".into());
    let mut deployed = m(4, 1, 1024);
    deployed.status = NodeStatus::Deployed;
    let fleet = [big.clone(), small.clone(), taken, deployed];
    let any = Constraints::default();
    assert_eq!(allocate(&any, &fleet).unwrap().0.system_id, small.system_id);
    let c = p(&[("cpu_count", "8")]).unwrap();
    assert_eq!(allocate(&c, &fleet).unwrap().0.system_id, big.system_id);
    assert!(allocate(&p(&[("cpu_count", "64")]).unwrap(), &fleet).is_none());
}

#[test]
fn names_must_exist() {
    let c = p(&[("tags", "gpu"), ("zone", "z9"), ("not_in_pool", "p1")]).unwrap();
    let e = c
        .validate_names(&["virtual"], &["default"], &["default", "p1"])
        .unwrap_err();
    assert_eq!(e.errors["tags"], vec!["No such tag(s): 'gpu'.".to_string()]);
    assert_eq!(e.errors["zone"], vec!["No such zone: 'z9'.".to_string()]);
    assert!(!e.errors.contains_key("not_in_pool"));
}

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = parse_storage(&s);
        let _ = parse_interfaces(&s);
        let _ = parse_subnet_spec(&s);
        let _ = Constraints::parse(&[("storage", s.as_str()), ("interfaces", s.as_str()), ("subnets", s.as_str())]);
    }

    #[test]
    fn storage_round_trips(entries in prop::collection::vec(("[a-z][a-z0-9]{0,5}", 0u32..5000, prop::collection::vec("[a-z]{1,6}", 0..3)), 1..5)) {
        let mut labels = std::collections::BTreeSet::new();
        let entries: Vec<_> = entries.into_iter().filter(|(l, _, _)| labels.insert(l.clone())).collect();
        let text: Vec<String> = entries.iter().map(|(l, gb, tags)| {
            if tags.is_empty() { format!("{l}:{gb}") } else { format!("{l}:{gb}({})", tags.join(",")) }
        }).collect();
        let parsed = parse_storage(&text.join(",")).unwrap();
        prop_assert_eq!(parsed.len(), entries.len());
        for (spec, (l, gb, tags)) in parsed.iter().zip(&entries) {
            prop_assert_eq!(&spec.label, l);
            prop_assert_eq!(spec.min_bytes, *gb as u64 * 1_000_000_000);
            prop_assert_eq!(&spec.tags, tags);
        }
    }
}
