//! The curtin configuration MAAS hands the installer: `storage` (version 1
//! action list: disk, partition, format, lvm_volgroup, lvm_partition, raid,
//! bcache, mount), `network` (netplan v2 for Ubuntu, v1 otherwise, ESXi
//! rules), swap, kernel package, the reporting webhook, the late command
//! that turns netboot off, debconf selections, and the `cloud.cfg.d` files
//! that point the installed OS at the metadata service.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde_json::{Map, Value, json};

use super::{RenderContext, is_ubuntu, to_yaml};
use crate::error::Result;
use crate::machine::Machine;
use crate::storage::{
    BIOS_GRUB_PARTITION_SIZE, INITIAL_PARTITION_OFFSET, PREP_PARTITION_SIZE, PartitionTableType,
    Volume, VolumeNames, reserved_with, validate_structure,
};

/// An action and the ids it depends on.
struct Op {
    value: Value,
    id: String,
    deps: Vec<String>,
}

fn op(value: Value, deps: Vec<String>) -> Op {
    let id = value["id"].as_str().unwrap_or_default().to_owned();
    Op { value, id, deps }
}

/// The `storage:` value: `{version: 1, config: [...]}`, dependencies before
/// dependents and mounts last, sorted by path (so `/` mounts before
/// `/boot`), as MAAS's `CurtinStorageGenerator` orders them.
pub fn curtin_storage_config(machine: &Machine) -> Result<Value> {
    validate_structure(machine)?;
    let st = &machine.storage;
    let boot_disk = machine.boot_disk().map(|d| d.id);
    let mut ops: Vec<Op> = Vec::new();

    // Disks, each followed by the boot-loader partition it needs.
    for disk in machine.physical_disks() {
        let name = disk.name.clone();
        let mut d = Map::new();
        d.insert("id".into(), json!(name));
        d.insert("name".into(), json!(name));
        d.insert("type".into(), json!("disk"));
        d.insert("wipe".into(), json!("superblock"));
        if !disk.model.is_empty() && !disk.serial.is_empty() {
            d.insert("model".into(), json!(disk.model));
            d.insert("serial".into(), json!(disk.serial));
        } else {
            d.insert("path".into(), json!(disk.id_path));
        }
        let is_boot = Some(disk.id) == boot_disk;
        let reserved = reserved_with(machine, boot_disk, disk.id);
        match st.partition_table(disk.id) {
            Some(t) => {
                d.insert("ptable".into(), json!(t.kind.curtin_name()));
            }
            None if is_boot => {
                d.insert(
                    "ptable".into(),
                    json!(PartitionTableType::Gpt.curtin_name()),
                );
            }
            None => {}
        }
        // With a PReP partition grub goes there, not in the disk header.
        if is_boot && reserved != Some("prep") {
            d.insert("grub_device".into(), json!(true));
        }
        ops.push(op(Value::Object(d), vec![]));
        let part1 = format!("{name}-part1");
        match reserved {
            Some("prep") => ops.push(op(
                json!({
                    "id": part1, "name": part1, "type": "partition", "number": 1,
                    "offset": format!("{INITIAL_PARTITION_OFFSET}B"),
                    "size": format!("{PREP_PARTITION_SIZE}B"),
                    "device": name, "wipe": "zero", "flag": "prep", "grub_device": true,
                }),
                vec![name.clone()],
            )),
            Some(_) => ops.push(op(
                json!({
                    "id": part1, "type": "partition", "number": 1,
                    "offset": format!("{INITIAL_PARTITION_OFFSET}B"),
                    "size": format!("{BIOS_GRUB_PARTITION_SIZE}B"),
                    "device": name, "wipe": "zero", "flag": "bios_grub",
                }),
                vec![name.clone()],
            )),
            None => {}
        }
    }

    let names = VolumeNames::new(machine);
    let vname = |v: Volume| names.get(v);

    for vg in &st.volume_groups {
        let mut devices: Vec<String> = vg.devices.iter().map(|v| vname(*v)).collect();
        devices.sort();
        let mut m = Map::new();
        m.insert("id".into(), json!(vg.name));
        m.insert("name".into(), json!(vg.name));
        m.insert("type".into(), json!("lvm_volgroup"));
        if !vg.uuid.is_empty() {
            m.insert("uuid".into(), json!(vg.uuid));
        }
        m.insert("devices".into(), json!(devices));
        ops.push(op(Value::Object(m), devices));
    }
    for lv in &st.logical_volumes {
        let vg = st
            .volume_groups
            .iter()
            .find(|g| g.id == lv.volume_group)
            .map(|g| g.name.clone())
            .unwrap_or_default();
        ops.push(op(
            json!({
                "id": vname(Volume::Device(lv.block_device)),
                "name": lv.name,
                "type": "lvm_partition",
                "volgroup": vg,
                "size": format!("{}B", lv.size),
            }),
            vec![vg],
        ));
    }
    for r in &st.raids {
        let mut devices: Vec<String> = r.devices.iter().map(|v| vname(*v)).collect();
        let mut spares: Vec<String> = r.spares.iter().map(|v| vname(*v)).collect();
        devices.sort();
        spares.sort();
        let mut m = Map::new();
        m.insert("id".into(), json!(r.name));
        m.insert("name".into(), json!(r.name));
        m.insert("type".into(), json!("raid"));
        m.insert("raidlevel".into(), json!(r.level.number()));
        m.insert("devices".into(), json!(devices));
        m.insert("spare_devices".into(), json!(spares));
        if let Some(t) = st.partition_table(r.block_device) {
            m.insert("ptable".into(), json!(t.kind.curtin_name()));
        }
        let deps = devices.iter().chain(&spares).cloned().collect();
        ops.push(op(Value::Object(m), deps));
    }
    for b in &st.bcaches {
        let backing = vname(b.backing);
        let cache = st
            .cache_sets
            .iter()
            .find(|c| c.id == b.cache_set)
            .map(|c| vname(c.device))
            .unwrap_or_default();
        ops.push(op(
            json!({
                "id": b.name, "name": b.name, "type": "bcache",
                "backing_device": backing, "cache_device": cache,
                "cache_mode": b.mode.as_str(),
            }),
            vec![backing, cache],
        ));
    }
    // Partitions, by device id then partition id.
    let mut devices: Vec<_> = machine.block_devices.iter().collect();
    devices.sort_by_key(|d| d.id);
    for dev in &devices {
        let reserved = reserved_with(machine, boot_disk, dev.id).is_some();
        for p in st.partitions_of(dev.id) {
            let number = names.number(p.id);
            let pname = vname(Volume::Partition(p.id));
            let mut m = Map::new();
            m.insert("id".into(), json!(pname));
            m.insert("name".into(), json!(pname));
            m.insert("type".into(), json!("partition"));
            m.insert("number".into(), json!(number));
            if !p.uuid.is_empty() {
                m.insert("uuid".into(), json!(p.uuid));
            }
            m.insert("size".into(), json!(format!("{}B", p.size)));
            m.insert("device".into(), json!(dev.name));
            m.insert("wipe".into(), json!("superblock"));
            // The first partition fixes the start of the partitioned area;
            // after a reserved boot partition curtin places it itself.
            if number == 1 && !reserved {
                m.insert(
                    "offset".into(),
                    json!(format!("{INITIAL_PARTITION_OFFSET}B")),
                );
            }
            if p.bootable {
                m.insert("flag".into(), json!("boot"));
            }
            ops.push(op(Value::Object(m), vec![dev.name.clone()]));
        }
    }
    // Formats: a device's own filesystem, else its partitions', by device id.
    let mut mounts: Vec<(String, Value)> = Vec::new();
    let mut format = |v: Volume, ops: &mut Vec<Op>| {
        let Some(fs) = st.filesystem_on(v) else {
            return;
        };
        if fs.fstype.is_member() {
            return;
        }
        let name = vname(v);
        let mut m = Map::new();
        m.insert("id".into(), json!(format!("{name}_format")));
        m.insert("type".into(), json!("format"));
        m.insert("fstype".into(), json!(fs.fstype.as_str()));
        if !fs.label.is_empty() {
            m.insert("label".into(), json!(fs.label));
        }
        if !fs.uuid.is_empty() {
            m.insert("uuid".into(), json!(fs.uuid));
        }
        m.insert("volume".into(), json!(name));
        ops.push(op(Value::Object(m), vec![name.clone()]));
        if let Some(mp) = &fs.mount_point {
            let mut mm = Map::new();
            mm.insert("id".into(), json!(format!("{name}_mount")));
            mm.insert("type".into(), json!("mount"));
            mm.insert("device".into(), json!(format!("{name}_format")));
            mm.insert("path".into(), json!(mp));
            if let Some(o) = &fs.mount_options {
                mm.insert("options".into(), json!(o));
            }
            mounts.push((mp.clone(), Value::Object(mm)));
        }
    };
    for dev in &devices {
        if st.filesystem_on(Volume::Device(dev.id)).is_some() {
            format(Volume::Device(dev.id), &mut ops);
        } else {
            for p in st.partitions_of(dev.id) {
                format(Volume::Partition(p.id), &mut ops);
            }
        }
    }

    let mut config = order(ops);
    mounts.sort_by(|a, b| a.0.cmp(&b.0));
    config.extend(mounts.into_iter().map(|(_, v)| v));
    Ok(json!({ "version": 1, "config": config }))
}

/// Dependencies before dependents, otherwise in generation order: always
/// emit the earliest action whose dependencies are out (Kahn's algorithm
/// with a min-heap on the original position), which puts a dependent right
/// after its last dependency as MAAS's reordering does.
fn order(ops: Vec<Op>) -> Vec<Value> {
    let index: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut waiting = vec![0usize; ops.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (i, o) in ops.iter().enumerate() {
        for d in &o.deps {
            // References to unknown ids cannot survive validate_structure.
            if let Some(&j) = index.get(d.as_str())
                && j != i
            {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..ops.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(ops.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(Reverse(k));
            }
        }
    }
    drop(index);
    let mut slots: Vec<Option<Value>> = ops.into_iter().map(|o| Some(o.value)).collect();
    let mut out: Vec<Value> = order.iter().filter_map(|&i| slots[i].take()).collect();
    // A dependency cycle cannot be built from the model; keep its members.
    out.extend(slots.into_iter().flatten());
    out
}

/// The kernel package for an `hwe_kernel` value: `ga-22.04` →
/// `linux-generic`, `hwe-22.04` → `linux-generic-hwe-22.04`,
/// `hwe-22.04-lowlatency` → `linux-lowlatency-hwe-22.04`, `hwe-22.04-edge`
/// → `linux-generic-hwe-22.04-edge`.
pub fn kernel_package(hwe_kernel: &str) -> Option<String> {
    let mut parts: Vec<&str> = hwe_kernel.split('-').collect();
    let edge = parts.last() == Some(&"edge");
    if edge {
        parts.pop();
    }
    let (channel, version, flavor) = match parts.as_slice() {
        [c, v] => (*c, *v, "generic"),
        [c, v, f] => (*c, *v, *f),
        _ => return None,
    };
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let pkg = match channel {
        "ga" => format!("linux-{flavor}"),
        "hwe" => format!("linux-{flavor}-hwe-{version}"),
        _ => return None,
    };
    Some(if edge { format!("{pkg}-edge") } else { pkg })
}

/// The `network:` value curtin writes into the target: netplan v2 for
/// Ubuntu, v1 for other OSes (ESXi with its restrictions).
pub fn curtin_network(machine: &Machine, ctx: &RenderContext) -> Result<Value> {
    if machine.osystem == "esxi" {
        super::netv1::esxi_network(machine, ctx)
    } else if is_ubuntu(machine) && !ctx.force_v1_network {
        super::netplan::netplan_network(machine, ctx)
    } else {
        super::netv1::network_v1(machine, ctx)
    }
}

/// Percent-encodes a value for the debconf credentials string.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The complete curtin config (one merged YAML mapping).
pub fn curtin_config(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    let mut c = Map::new();
    if !machine.ephemeral_deploy {
        c.insert(
            "partitioning_commands".into(),
            json!({ "builtin": ["curtin", "block-meta", "custom"] }),
        );
        c.insert("storage".into(), curtin_storage_config(machine)?);
    }
    c.insert(
        "network_commands".into(),
        json!({ "builtin": ["curtin", "net-meta", "custom"] }),
    );
    c.insert("network".into(), curtin_network(machine, ctx)?);
    if let Some(swap) = ctx.swap_size {
        c.insert("swap".into(), json!({ "size": format!("{swap}B") }));
    }
    if is_ubuntu(machine) {
        let pkg = ctx
            .kernel_package
            .clone()
            .or_else(|| machine.hwe_kernel.as_deref().and_then(kernel_package));
        if let Some(pkg) = pkg {
            c.insert("kernel".into(), json!({ "package": pkg, "mapping": {} }));
        }
    }
    if ctx.curtin_verbose {
        c.insert("verbosity".into(), json!(3));
        c.insert("showtrace".into(), json!(true));
    }
    c.insert("reporting".into(), ctx.reporting(machine));
    c.insert(
        "install".into(),
        json!({
            "log_file": "/tmp/install.log",
            "error_tarfile": "/tmp/curtin-logs.tar",
            "post_files": ["/tmp/install.log", "/tmp/curtin-logs.tar"],
        }),
    );
    c.insert("apt".into(), super::preseed::apt_config(machine, ctx));
    c.insert(
        "late_commands".into(),
        json!({
            "maas": [
                "wget", "--no-proxy", ctx.by_id_url(machine),
                "--post-data", "op=netboot_off", "-O", "/dev/null",
            ]
        }),
    );
    let creds = format!(
        "oauth_consumer_key={}&oauth_token_key={}&oauth_token_secret={}",
        urlencode(&ctx.token.consumer_key),
        urlencode(&ctx.token.token_key),
        urlencode(&ctx.token.token_secret),
    );
    // debconf values are one line: JSON is a one-line YAML mapping.
    let local_cloud_config = json!({
        "manual_cache_clean": true,
        "reporting": ctx.reporting(machine),
    });
    let debconf = format!(
        "cloud-init   cloud-init/datasources  multiselect MAAS\n\
         cloud-init   cloud-init/maas-metadata-url  string {}\n\
         cloud-init   cloud-init/maas-metadata-credentials  string {}\n\
         cloud-init   cloud-init/local-cloud-config  string {}\n\
         grub2   grub2/update_nvram  boolean false\n",
        ctx.metadata_url(),
        creds,
        local_cloud_config,
    );
    c.insert("debconf_selections".into(), json!({ "maas": debconf }));
    c.insert(
        "cloudconfig".into(),
        Value::Object(cloud_cfg_d_files(machine, ctx)?),
    );
    to_yaml(&Value::Object(c))
}

/// The `cloud.cfg.d` files curtin writes into the target so its cloud-init
/// uses the MAAS datasource: name → `{path, content}`.
pub fn cloud_cfg_d_files(machine: &Machine, ctx: &RenderContext) -> Result<Map<String, Value>> {
    let mut files = Map::new();
    files.insert(
        "maas-datasource".into(),
        json!({
            "path": "/etc/cloud/cloud.cfg.d/90_maas_datasource.cfg",
            "content": "datasource_list: [ MAAS ]",
        }),
    );
    files.insert(
        "maas-cloud-config".into(),
        json!({
            "path": "/etc/cloud/cloud.cfg.d/90_maas_cloud_config.cfg",
            "content": to_yaml(&json!({ "datasource": ctx.datasource(ctx.metadata_url()) }))?,
        }),
    );
    files.insert(
        "maas-reporting".into(),
        json!({
            "path": "/etc/cloud/cloud.cfg.d/90_maas_cloud_init_reporting.cfg",
            "content": to_yaml(&json!({ "reporting": ctx.reporting(machine) }))?,
        }),
    );
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_packages() {
        assert_eq!(kernel_package("ga-22.04").as_deref(), Some("linux-generic"));
        assert_eq!(
            kernel_package("hwe-22.04").as_deref(),
            Some("linux-generic-hwe-22.04")
        );
        assert_eq!(
            kernel_package("hwe-22.04-lowlatency").as_deref(),
            Some("linux-lowlatency-hwe-22.04")
        );
        assert_eq!(
            kernel_package("hwe-22.04-edge").as_deref(),
            Some("linux-generic-hwe-22.04-edge")
        );
        assert_eq!(kernel_package("bogus"), None);
        assert_eq!(kernel_package("hwe-x.y"), None);
    }

    fn ppc_machine() -> Machine {
        use crate::hardware::BlockDevice;
        let mut m = Machine {
            architecture: "ppc64el/generic".into(),
            boot_method: crate::BootMethod::OpenFirmware,
            block_devices: vec![BlockDevice {
                id: 1,
                name: "sda".into(),
                size: 50 << 30,
                id_path: "/dev/disk/by-id/scsi-0".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        crate::storage::apply_layout(
            &mut m,
            &crate::LayoutRequest::new(crate::StorageLayout::Flat),
        )
        .unwrap();
        m
    }

    #[test]
    fn ppc64el_boot_disk_starts_with_prep() {
        let m = ppc_machine();
        let cfg = curtin_storage_config(&m).unwrap();
        let ops = cfg["config"].as_array().unwrap();
        // grub goes into the PReP partition, not the disk header.
        assert!(ops[0].get("grub_device").is_none(), "{:?}", ops[0]);
        assert_eq!(ops[1]["flag"], "prep");
        assert_eq!(ops[1]["grub_device"], true);
        assert_eq!(ops[1]["size"], format!("{PREP_PARTITION_SIZE}B"));
        assert_eq!(ops[2]["id"], "sda-part2");
        assert!(ops[2].get("offset").is_none());
    }

    #[test]
    fn mbr_tables_are_limited_to_four_partitions() {
        use crate::storage::{Partition, PartitionTable, StorageRule};
        let mut m = ppc_machine();
        m.storage.partition_tables = vec![PartitionTable {
            block_device: 1,
            kind: PartitionTableType::Mbr,
        }];
        for i in 0..5 {
            m.storage.partitions.push(Partition {
                id: 50 + i,
                block_device: 1,
                size: 1 << 20,
                ..Default::default()
            });
        }
        let err = curtin_storage_config(&m).unwrap_err();
        assert!(
            matches!(
                &err,
                crate::Error::Storage { device, rule: StorageRule::TooManyMbrPartitions } if device == "sda"
            ),
            "{err}"
        );
    }

    #[test]
    fn urlencodes() {
        assert_eq!(urlencode("a b&c"), "a%20b%26c");
    }
}
