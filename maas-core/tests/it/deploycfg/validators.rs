//! Every rendered document checked by the real tool that consumes it:
//! cloud-init's schema for cloud-configs, `netplan generate` for netplan v2,
//! `cloud-init devel net-convert` for network v1 (ESXi included), and
//! curtin's storage schema rules for storage configs.

use std::collections::BTreeMap;

use maas_core::hardware::InterfaceKind;
use maas_core::network::BondMode;
use maas_core::render::curtin::{cloud_cfg_d_files, curtin_network, curtin_storage_config};
use maas_core::render::netplan::netplan_yaml;
use maas_core::render::vendor_data::vendor_cloud_config;
use maas_core::render::yaml::emit;
use maas_core::render::{
    commissioning_preseed, curtin_config, curtin_preseed, enlist_preseed, preseed, vendor_data,
};
use maas_core::storage::{FsType, Raid, RaidLevel, Volume, apply_layout, validate_for_deploy};
use maas_core::{
    BootMethod, Error, LayoutRequest, Machine, NodeStatus, RenderContext, StorageLayout,
};
use serde_json::Value;

use super::fixtures::{LAYOUTS, METHODS, NETS, Net, ctx, interfaces, machine, matrix};
use super::tools;

/// Runs `f` over `items` on two threads (the validators are separate
/// processes; the machine has two cores).
fn par_each<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let mid = items.len().div_ceil(2);
    std::thread::scope(|s| {
        let (a, b) = items.split_at(mid);
        let f = &f;
        let h = s.spawn(move || a.iter().for_each(f));
        b.iter().for_each(f);
        h.join().unwrap();
    });
}

fn cloud_init_value(vendor_data_yaml: &str) -> String {
    let v: BTreeMap<String, String> = serde_norway::from_str(vendor_data_yaml).unwrap();
    let cc = v["cloud-init"].clone();
    assert!(cc.starts_with("#cloud-config\n"), "{cc}");
    cc
}

#[test]
fn cloud_init_schema_accepts_every_cloud_config() {
    let ctx = ctx();
    let mut docs: BTreeMap<String, String> = BTreeMap::new();
    let base = machine(StorageLayout::Flat, BootMethod::Uefi, Net::Static);
    for (label, status) in [
        ("commissioning", NodeStatus::Commissioning),
        ("erasing", NodeStatus::DiskErasing),
        ("rescue", NodeStatus::EnteringRescueMode),
    ] {
        let mut m = base.clone();
        m.status = status;
        docs.insert(
            format!("preseed-{label}"),
            commissioning_preseed(&m, &ctx).unwrap(),
        );
    }
    let mut ssh_ctx = ctx.clone();
    ssh_ctx.enable_ssh = true;
    let mut m = base.clone();
    m.status = NodeStatus::Commissioning;
    let ssh = commissioning_preseed(&m, &ssh_ctx).unwrap();
    assert!(!ssh.contains("power_state"), "{ssh}");
    docs.insert("preseed-commissioning-ssh".into(), ssh);
    for series in ["jammy", "noble"] {
        let mut m = base.clone();
        m.distro_series = series.into();
        let p = curtin_preseed(&m, &ctx).unwrap();
        // 24.04 and later get a deb822 sources list.
        assert_eq!(p.contains("Types: deb"), series == "noble", "{series}");
        docs.insert(format!("preseed-curtin-{series}"), p);
    }
    let mut eph = base.clone();
    eph.ephemeral_deploy = true;
    let p = preseed(&eph, &ctx).unwrap();
    assert!(
        p.contains("/MAAS/metadata/\n") && !p.contains("power_state"),
        "{p}"
    );
    docs.insert("preseed-ephemeral".into(), p);
    docs.insert("preseed-enlist".into(), enlist_preseed(&ctx).unwrap());
    let mut bare = RenderContext {
        maas_url: ctx.maas_url.clone(),
        ..Default::default()
    };
    bare.token = ctx.token.clone();
    docs.insert(
        "preseed-minimal".into(),
        curtin_preseed(&base, &bare).unwrap(),
    );
    docs.insert(
        "vendor-data-minimal".into(),
        cloud_init_value(&vendor_data(&base, &bare).unwrap()),
    );
    docs.insert(
        "vendor-data".into(),
        cloud_init_value(&vendor_data(&base, &ctx).unwrap()),
    );
    // One ephemeral shape is enough here: the netplan is a string to the
    // schema; netplan itself checks every shape below.
    for net in NETS {
        let mut m = machine(StorageLayout::Blank, BootMethod::Uefi, net);
        m.ephemeral_deploy = true;
        let cc = vendor_cloud_config(&m, &ctx).unwrap();
        assert!(cc.contains("/etc/netplan/50-maas.yaml"), "{cc}");
        if net == Net::BondVlanBridge {
            docs.insert(format!("vendor-data-ephemeral-{}", net.name()), cc);
        }
    }
    // Non-Ubuntu ephemeral deployments get no netplan.
    let mut centos = base.clone();
    centos.osystem = "centos".into();
    centos.ephemeral_deploy = true;
    let cc = vendor_cloud_config(&centos, &ctx).unwrap();
    assert!(!cc.contains("netplan"), "{cc}");
    // The cloud.cfg.d files are fragments of cloud.cfg; `cloud-init schema`
    // needs the #cloud-config header to treat them as cloud-config.
    for (name, file) in cloud_cfg_d_files(&base, &ctx).unwrap() {
        let content = file["content"].as_str().unwrap();
        docs.insert(
            format!("cloud.cfg.d-{name}"),
            format!("#cloud-config\n{content}\n"),
        );
    }
    let docs: Vec<(String, String)> = docs.into_iter().collect();
    par_each(&docs, |(name, doc)| tools::cloud_init_schema(name, doc));
    assert!(docs.len() >= 15, "{}", docs.len());
}

#[test]
fn cloud_init_schema_rejects_a_broken_cloud_config() {
    // The validator can fail: a wrong type under a known key.
    let out = std::panic::catch_unwind(|| {
        tools::cloud_init_schema("broken", "#cloud-config\npower_state: {mode: sideways}\n")
    });
    assert!(
        out.is_err(),
        "cloud-init schema accepted an invalid power_state"
    );
}

#[test]
fn netplan_generate_accepts_every_v2_document() {
    let ctx = ctx();
    let mut docs: BTreeMap<String, (Net, String)> = BTreeMap::new();
    for (name, m) in matrix() {
        let net = NETS.into_iter().find(|n| name.ends_with(n.name())).unwrap();
        let network = curtin_network(&m, &ctx).unwrap();
        let doc = emit(&serde_json::json!({ "network": network }));
        docs.entry(doc.clone()).or_insert((net, name));
        let eph = netplan_yaml(&m, &ctx).unwrap();
        docs.entry(eph)
            .or_insert((net, format!("{}-ephemeral", net.name())));
    }
    // Three network shapes: the curtin and ephemeral documents are the same.
    assert_eq!(docs.len(), 3, "{:#?}", docs.keys());
    let docs: Vec<(String, (Net, String))> = docs.into_iter().collect();
    par_each(&docs, |(doc, (net, name))| {
        let root = tools::netplan_generate(name, doc);
        let r = root.path();
        match net {
            Net::Dhcp => {
                let link = tools::networkd_file(r, "eth0", "link");
                assert!(link.contains("MACAddress=52:54:00:12:34:01"), "{link}");
                assert!(link.contains("Name=eth0"), "{link}");
                let n = tools::networkd_file(r, "eth0", "network");
                assert!(n.contains("DHCP=ipv4"), "{n}");
            }
            Net::Static => {
                let n = tools::networkd_file(r, "eth0", "network");
                for want in [
                    "Address=10.0.0.10/24",
                    "Address=10.0.1.10/24",
                    "Address=fd00:10::10/64",
                    "Gateway=10.0.0.1",
                    "Gateway=fd00:10::1",
                    "DNS=10.0.0.1",
                    "DNS=10.0.0.2",
                    "Domains=maas",
                ] {
                    assert!(n.contains(want), "eth0 lacks {want}:\n{n}");
                }
                let e1 = tools::networkd_file(r, "eth1", "network");
                assert!(!e1.lines().any(|l| l.starts_with("Address=")), "{e1}");
            }
            Net::BondVlanBridge => {
                let bond = tools::networkd_file(r, "bond0", "netdev");
                for want in [
                    "Kind=bond",
                    "Mode=802.3ad",
                    "TransmitHashPolicy=layer3+4",
                    "LACPTransmitRate=fast",
                    "MIIMonitorSec=100ms",
                    "MTUBytes=9000",
                ] {
                    assert!(bond.contains(want), "bond0.netdev lacks {want}:\n{bond}");
                }
                for member in ["eth0", "eth1"] {
                    let n = tools::networkd_file(r, member, "network");
                    assert!(n.contains("Bond=bond0"), "{member}:\n{n}");
                }
                let bn = tools::networkd_file(r, "bond0", "network");
                assert!(bn.contains("VLAN=bond0.100"), "{bn}");
                assert!(bn.contains("Address=10.0.0.10/24"), "{bn}");
                assert!(bn.contains("Gateway=10.0.0.1"), "{bn}");
                let vlan = tools::networkd_file(r, "bond0.100", "netdev");
                assert!(
                    vlan.contains("Kind=vlan") && vlan.contains("Id=100"),
                    "{vlan}"
                );
                let vn = tools::networkd_file(r, "bond0.100", "network");
                assert!(vn.contains("Bridge=br0"), "{vn}");
                let br = tools::networkd_file(r, "br0", "netdev");
                assert!(
                    br.contains("Kind=bridge") && br.contains("STP=true"),
                    "{br}"
                );
                let brn = tools::networkd_file(r, "br0", "network");
                assert!(brn.contains("Address=10.100.0.5/24"), "{brn}");
                let e2 = tools::networkd_file(r, "eth2", "network");
                assert!(e2.contains("DHCP=ipv4"), "{e2}");
            }
        }
    });
}

#[test]
fn netplan_generate_rejects_a_broken_document() {
    let out = std::panic::catch_unwind(|| {
        tools::netplan_generate(
            "broken",
            "network:\n  version: 2\n  vlans:\n    v1: {id: 5000, link: nowhere}\n",
        )
    });
    assert!(out.is_err(), "netplan accepted a VLAN on a missing link");
}

/// RAID 1 across partitions of both disks, root on the array (a custom
/// layout).
fn raid_machine() -> Machine {
    let mut m = machine(StorageLayout::Blank, BootMethod::Pxe, Net::Dhcp);
    let st = &mut m.storage;
    for dev in [1, 2] {
        st.partition_tables
            .push(maas_core::storage::PartitionTable {
                block_device: dev,
                kind: maas_core::storage::PartitionTableType::Gpt,
            });
        st.partitions.push(maas_core::storage::Partition {
            id: 10 + dev,
            block_device: dev,
            size: 100_000_000_000,
            ..Default::default()
        });
        st.filesystems.push(maas_core::storage::Filesystem {
            id: 20 + dev,
            fstype: FsType::Raid,
            volume: Volume::Partition(10 + dev),
            ..Default::default()
        });
    }
    m.block_devices.push(maas_core::hardware::BlockDevice {
        id: 9,
        name: "md0".into(),
        kind: maas_core::hardware::BlockDeviceKind::Virtual,
        size: 100_000_000_000,
        block_size: 512,
        ..Default::default()
    });
    m.storage.raids.push(Raid {
        block_device: 9,
        name: "md0".into(),
        level: RaidLevel::Raid1,
        devices: vec![Volume::Partition(11), Volume::Partition(12)],
        spares: vec![],
    });
    m.storage.filesystems.push(maas_core::storage::Filesystem {
        id: 30,
        fstype: FsType::Ext4,
        volume: Volume::Device(9),
        mount_point: Some("/".into()),
        mount_options: Some("noatime,errors=remount-ro".into()),
        label: "root".into(),
        ..Default::default()
    });
    m
}

#[test]
fn curtin_storage_schema_accepts_every_storage_config() {
    let mut configs: Vec<(String, Value)> = Vec::new();
    for layout in LAYOUTS {
        for method in METHODS {
            let m = machine(layout, method, Net::Dhcp);
            if layout != StorageLayout::Blank {
                validate_for_deploy(&m).unwrap();
            }
            configs.push((
                format!("{layout}-{}", method.as_str()),
                curtin_storage_config(&m).unwrap(),
            ));
        }
    }
    let raid = raid_machine();
    validate_for_deploy(&raid).unwrap();
    let raid_cfg = curtin_storage_config(&raid).unwrap();
    let ids: Vec<&str> = raid_cfg["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "sda",
            "sda-part1",
            "sdb",
            "sdb-part1",
            "sda-part2",
            "sdb-part2",
            "md0",
            "md0_format",
            "md0_mount"
        ]
    );
    configs.push(("raid1".into(), raid_cfg));
    let mut variants = Vec::new();
    for (label, req) in [
        (
            "bcache-no-part",
            LayoutRequest {
                cache_no_part: true,
                cache_mode: Some(maas_core::storage::CacheMode::Writeback),
                ..LayoutRequest::new(StorageLayout::Bcache)
            },
        ),
        (
            "lvm-root-on-sdb",
            LayoutRequest {
                root_device: Some(2),
                boot_size: Some("1GiB".parse().unwrap()),
                lv_size: Some("50%".parse().unwrap()),
                vg_name: Some("vgdata".into()),
                ..LayoutRequest::new(StorageLayout::Lvm)
            },
        ),
        (
            "flat-sized",
            LayoutRequest {
                boot_size: Some("2G".parse().unwrap()),
                root_size: Some("40%".parse().unwrap()),
                ..LayoutRequest::new(StorageLayout::Flat)
            },
        ),
    ] {
        let mut m = machine(StorageLayout::Blank, BootMethod::Uefi, Net::Dhcp);
        apply_layout(&mut m, &req).unwrap();
        validate_for_deploy(&m).unwrap();
        variants.push((label.to_string(), curtin_storage_config(&m).unwrap()));
    }
    configs.extend(variants);
    let n = configs.len();
    let summary = tools::curtin_storage_schema(&configs);
    assert!(
        summary.contains(&format!("checked {n} storage configs, 0 problems")),
        "{summary}"
    );
}

#[test]
fn curtin_storage_schema_rejects_broken_configs() {
    let bad = serde_json::json!({"version": 1, "config": [
        {"id": "sda", "type": "disk", "ptable": "gpt"},
        {"id": "sda-part1", "type": "partition", "device": "sda", "size": "0B", "flag": "weird"},
        {"id": "x_format", "type": "format", "fstype": "ext4", "volume": "later"},
    ]});
    let out = std::panic::catch_unwind(|| {
        tools::curtin_storage_schema(&[("bad".into(), bad)]);
    });
    assert!(out.is_err(), "curtin schema check accepted a broken config");
}

/// ESXi and other non-Ubuntu OSes get network v1; cloud-init (which
/// implements the same v1 format as curtin) must accept and convert it.
#[test]
fn network_v1_and_esxi_are_accepted_by_cloud_init() {
    let ctx = ctx();
    let mut cases: Vec<(String, String, Vec<&str>)> = Vec::new();
    for net in NETS {
        let mut m = machine(StorageLayout::Flat, BootMethod::Uefi, net);
        m.osystem = "centos".into();
        m.distro_series = "centos8".into();
        let v1 = curtin_network(&m, &ctx).unwrap();
        assert_eq!(v1["version"], 1);
        let want = match net {
            Net::Dhcp => vec!["dhcp4: true"],
            Net::Static => vec!["10.0.0.10/24", "10.0.1.10/24", "fd00:10::10/64"],
            Net::BondVlanBridge => vec!["bond0", "bond0.100", "br0", "10.100.0.5/24"],
        };
        cases.push((
            format!("v1-{}", net.name()),
            emit(&serde_json::json!({ "network": v1 })),
            want,
        ));
    }
    // ESXi: static, alias, VLAN and an 802.3ad bond (→ iphash) are fine; the
    // LACP rate and hash policy are dropped.
    let mut esxi = machine(StorageLayout::Flat, BootMethod::Uefi, Net::BondVlanBridge);
    esxi.osystem = "esxi".into();
    esxi.interfaces.retain(|i| i.kind != InterfaceKind::Bridge);
    let v1 = curtin_network(&esxi, &ctx).unwrap();
    let text = emit(&serde_json::json!({ "network": v1 }));
    assert!(text.contains("bond-mode: \"802.3ad\""), "{text}");
    assert!(
        !text.contains("lacp_rate") && !text.contains("xmit_hash"),
        "{text}"
    );
    cases.push(("esxi".into(), text, vec!["bond0", "bond0.100"]));
    par_each(&cases, |(name, doc, want)| {
        let netplan = tools::cloud_init_net_convert(name, doc);
        for w in want {
            assert!(
                netplan.contains(w),
                "{name}: converted netplan lacks {w}:\n{netplan}"
            );
        }
    });
}

#[test]
fn esxi_refuses_what_it_cannot_express() {
    let ctx = ctx();
    let mut m = machine(StorageLayout::Flat, BootMethod::Uefi, Net::BondVlanBridge);
    m.osystem = "esxi".into();
    let err = curtin_network(&m, &ctx).unwrap_err();
    assert!(
        matches!(&err, Error::NetworkUnsupported { interface, .. } if interface == "br0"),
        "{err}"
    );
    assert!(err.to_string().contains("bridge"), "{err}");
    m.interfaces.retain(|i| i.kind != InterfaceKind::Bridge);
    for mode in BondMode::ALL {
        for i in &mut m.interfaces {
            if let Some(b) = &mut i.bond {
                b.mode = mode;
            }
        }
        let r = curtin_network(&m, &ctx);
        match mode.esxi_teaming_policy() {
            Some(_) => assert!(r.is_ok(), "{mode}: {r:?}"),
            None => {
                let e = r.unwrap_err().to_string();
                assert!(e.contains("bond0") && e.contains(mode.as_str()), "{e}");
            }
        }
    }
}

#[test]
fn ephemeral_deploy_has_no_storage_and_networks_only_ubuntu() {
    let ctx = ctx();
    let mut m = machine(StorageLayout::Blank, BootMethod::Uefi, Net::Static);
    m.ephemeral_deploy = true;
    validate_for_deploy(&m).unwrap();
    let cfg = curtin_config(&m, &ctx).unwrap();
    assert!(!cfg.contains("storage:"), "{cfg}");
    let vd = vendor_data(&m, &ctx).unwrap();
    assert!(
        vd.contains("50-maas.yaml") && vd.contains("rm -rf /run/netplan"),
        "{vd}"
    );
    let p = preseed(&m, &ctx).unwrap();
    assert!(
        p.contains("metadata_url: http://10.0.0.1:5248/MAAS/metadata/\n"),
        "{p}"
    );
    m.osystem = "rhel".into();
    assert!(!vendor_data(&m, &ctx).unwrap().contains("netplan"));
    // The plain Ubuntu deployment's vendor-data has no netplan either.
    let plain = machine(StorageLayout::Flat, BootMethod::Uefi, Net::Static);
    assert!(!vendor_data(&plain, &ctx).unwrap().contains("netplan"));
    let _ = interfaces(Net::Dhcp);
}

#[test]
fn curtin_config_carries_maas_parts() {
    let ctx = ctx();
    let m = machine(StorageLayout::Flat, BootMethod::Uefi, Net::Dhcp);
    let yaml = curtin_config(&m, &ctx).unwrap();
    let v: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(
        v["reporting"]["maas"]["endpoint"],
        "http://10.0.0.1:5248/MAAS/metadata/status/3ah6rq".replace("3ah6rq", m.system_id.as_str())
    );
    assert_eq!(v["swap"]["size"], "0B");
    assert_eq!(v["kernel"]["package"], "linux-generic-hwe-22.04");
    let late = v["late_commands"]["maas"].as_array().unwrap();
    assert!(late.iter().any(|a| a == "op=netboot_off"));
    assert!(late.iter().any(|a| a.as_str().unwrap().ends_with(&format!(
        "/MAAS/metadata/latest/by-id/{}/",
        m.system_id.as_str()
    ))));
    let debconf = v["debconf_selections"]["maas"].as_str().unwrap();
    assert!(debconf.contains("cloud-init/datasources  multiselect MAAS"));
    assert!(debconf.contains("oauth_token_secret=tSecretCCCC"));
    assert!(debconf.contains("grub2/update_nvram  boolean false"));
    assert_eq!(
        v["cloudconfig"]["maas-datasource"]["path"],
        "/etc/cloud/cloud.cfg.d/90_maas_datasource.cfg"
    );
    assert_eq!(v["network"]["version"], 2);
    assert_eq!(v["storage"]["version"], 1);
}
