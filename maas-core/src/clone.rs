//! Cloning a machine's storage and/or interface configuration onto others
//! (`POST /machines/?op=clone`, MAAS §8.2).
//!
//! [`plan`] validates the source and every destination and computes, per
//! destination, which of its disks receives each source disk's layout and
//! which of its interfaces receives each source interface's links. Errors are
//! per destination (`{"destinations": [{message, code, system_id}]}`), so a
//! caller can report them all or retry without the failing ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hardware::{BlockDevice, InterfaceKind};
use crate::machine::Machine;
use crate::status::NodeStatus;

/// What to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneOptions {
    /// Copy the storage configuration.
    pub storage: bool,
    /// Copy the interface configuration.
    pub interfaces: bool,
}

/// One destination's problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationError {
    /// What is wrong.
    pub message: String,
    /// A short machine-readable code: `is-source`, `invalid-status`,
    /// `storage`, `networking`.
    pub code: String,
    /// The destination.
    pub system_id: String,
}

/// Why a clone request was refused (MAAS answers 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CloneError {
    /// A request field is wrong (field → messages).
    #[error("invalid clone request: {0:?}")]
    Request(BTreeMap<String, Vec<String>>),
    /// One or more destinations cannot receive the clone.
    #[error("{} destination(s) cannot be cloned to", .destinations.len())]
    Destinations {
        /// Every failing destination with its reasons.
        destinations: Vec<DestinationError>,
    },
}

/// What a clone does to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClonePlan {
    /// The destination.
    pub system_id: String,
    /// (source block device id, destination block device id), boot disk first.
    pub storage: Vec<(u64, u64)>,
    /// (interface name, destination interface id).
    pub interfaces: Vec<(String, u64)>,
}

/// Validates and maps `source` onto every destination.
pub fn plan(
    source: &Machine,
    destinations: &[&Machine],
    opts: CloneOptions,
) -> Result<Vec<ClonePlan>, CloneError> {
    let mut req = BTreeMap::new();
    if !opts.storage && !opts.interfaces {
        req.insert(
            "__all__".to_owned(),
            vec!["Either storage or interfaces must be true.".to_owned()],
        );
    }
    if destinations.is_empty() {
        req.insert(
            "destinations".to_owned(),
            vec!["This field is required.".to_owned()],
        );
    }
    if !req.is_empty() {
        return Err(CloneError::Request(req));
    }
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for d in destinations {
        match plan_one(source, d, opts) {
            Ok(p) => plans.push(p),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(CloneError::Destinations {
            destinations: errors,
        })
    }
}

/// Validates and maps `source` onto one destination.
pub fn plan_one(
    source: &Machine,
    dest: &Machine,
    opts: CloneOptions,
) -> Result<ClonePlan, Vec<DestinationError>> {
    let err = |code: &str, message: String| DestinationError {
        message,
        code: code.to_owned(),
        system_id: dest.system_id.to_string(),
    };
    if dest.system_id == source.system_id {
        return Err(vec![err(
            "is-source",
            "Source machine cannot be a destination machine.".into(),
        )]);
    }
    if !matches!(dest.status, NodeStatus::Ready | NodeStatus::FailedTesting) {
        return Err(vec![err(
            "invalid-status",
            format!(
                "Machine {} is '{}'; it must be Ready or Failed testing.",
                dest.system_id,
                dest.status.label()
            ),
        )]);
    }
    let mut errors = Vec::new();
    let mut plan = ClonePlan {
        system_id: dest.system_id.to_string(),
        storage: vec![],
        interfaces: vec![],
    };
    if opts.storage {
        match map_storage(source, dest) {
            Ok(m) => plan.storage = m,
            Err(msg) => errors.push(err("storage", msg)),
        }
    }
    if opts.interfaces {
        match map_interfaces(source, dest) {
            Ok(m) => plan.interfaces = m,
            Err(msg) => errors.push(err("networking", msg)),
        }
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

fn tag_set(d: &BlockDevice) -> Vec<&str> {
    let mut t: Vec<&str> = d.tags.iter().map(String::as_str).collect();
    t.sort_unstable();
    t.dedup();
    t
}

fn map_storage(source: &Machine, dest: &Machine) -> Result<Vec<(u64, u64)>, String> {
    if source.architecture != dest.architecture {
        return Err(format!(
            "Destination architecture '{}' differs from the source's '{}'.",
            dest.architecture, source.architecture
        ));
    }
    if source.boot_method != dest.boot_method {
        return Err(format!(
            "Destination boot method '{}' differs from the source's '{}'.",
            dest.boot_method.as_str(),
            source.boot_method.as_str()
        ));
    }
    let src_boot = source
        .boot_disk()
        .ok_or("Source machine has no boot disk.")?;
    let dst_boot = dest
        .boot_disk()
        .ok_or("Destination machine has no boot disk.")?;
    if dst_boot.size < src_boot.size {
        return Err(format!(
            "Destination boot disk {} ({} bytes) is smaller than the source boot disk {} ({} bytes).",
            dst_boot.name, dst_boot.size, src_boot.name, src_boot.size
        ));
    }
    let mut src_other: Vec<&BlockDevice> = source
        .physical_disks()
        .into_iter()
        .filter(|d| d.id != src_boot.id)
        .collect();
    let mut dst_other: Vec<&BlockDevice> = dest
        .physical_disks()
        .into_iter()
        .filter(|d| d.id != dst_boot.id)
        .collect();
    if dst_other.len() < src_other.len() {
        return Err(format!(
            "Destination has {} other physical disks; the source has {}.",
            dst_other.len(),
            src_other.len()
        ));
    }
    let mut mapping = vec![(src_boot.id, dst_boot.id)];
    // Pass 1: identical size and identical tags.
    src_other.retain(|s| {
        if let Some(pos) = dst_other
            .iter()
            .position(|d| d.size == s.size && tag_set(d) == tag_set(s))
        {
            mapping.push((s.id, dst_other.remove(pos).id));
            false
        } else {
            true
        }
    });
    // Pass 2: by size, the smallest destination disk at least as large with the same tags.
    src_other.sort_by_key(|d| (d.size, d.id));
    dst_other.sort_by_key(|d| (d.size, d.id));
    for s in src_other {
        let pos = dst_other
            .iter()
            .position(|d| d.size >= s.size && tag_set(d) == tag_set(s))
            .ok_or_else(|| {
                format!(
                    "No destination disk matches source disk {} ({} bytes, tags {:?}).",
                    s.name, s.size, s.tags
                )
            })?;
        mapping.push((s.id, dst_other.remove(pos).id));
    }
    Ok(mapping)
}

fn map_interfaces(source: &Machine, dest: &Machine) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for s in source
        .interfaces
        .iter()
        .filter(|i| i.kind == InterfaceKind::Physical)
    {
        match dest
            .interfaces
            .iter()
            .find(|d| d.kind == InterfaceKind::Physical && d.name == s.name)
        {
            Some(d) => out.push((s.name.clone(), d.id)),
            None => missing.push(s.name.as_str()),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "Destination has no interface named {}.",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::BootMethod;
    use crate::hardware::Interface;
    use crate::ids::SystemId;

    fn disk(id: u64, gb: u64, tags: &[&str]) -> BlockDevice {
        BlockDevice {
            id,
            name: format!("sd{}", (b'a' + (id % 26) as u8) as char),
            size: gb * 1_000_000_000,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn nic(id: u64, name: &str) -> Interface {
        Interface {
            id,
            name: name.into(),
            enabled: true,
            ..Default::default()
        }
    }

    fn machine(n: u64, disks: Vec<BlockDevice>, nics: Vec<Interface>) -> Machine {
        Machine {
            system_id: SystemId::from_number(crate::ids::SYSTEM_ID_MIN + n).unwrap(),
            status: NodeStatus::Ready,
            architecture: "amd64/generic".into(),
            block_devices: disks,
            interfaces: nics,
            ..Machine::default()
        }
    }

    const BOTH: CloneOptions = CloneOptions {
        storage: true,
        interfaces: true,
    };

    #[test]
    fn maps_identical_then_by_size() {
        let src = machine(
            1,
            vec![disk(1, 100, &[]), disk(2, 500, &["ssd"]), disk(3, 200, &[])],
            vec![nic(1, "eth0")],
        );
        let dst = machine(
            2,
            vec![
                disk(10, 120, &[]),
                disk(11, 300, &[]),
                disk(12, 500, &["ssd"]),
                disk(13, 900, &[]),
            ],
            vec![nic(20, "eth0"), nic(21, "eth1")],
        );
        let p = plan(&src, &[&dst], BOTH).unwrap();
        assert_eq!(p[0].storage, vec![(1, 10), (2, 12), (3, 11)]);
        assert_eq!(p[0].interfaces, vec![("eth0".to_string(), 20)]);
    }

    #[test]
    fn refusals_are_per_destination_with_codes() {
        let src = machine(1, vec![disk(1, 100, &[])], vec![nic(1, "eth0")]);
        let small = machine(2, vec![disk(5, 50, &[])], vec![nic(6, "eth0")]);
        let mut busy = machine(3, vec![disk(7, 100, &[])], vec![nic(8, "eth0")]);
        busy.status = NodeStatus::Deployed;
        let mut uefi = machine(4, vec![disk(9, 100, &[])], vec![nic(10, "eno1")]);
        uefi.boot_method = BootMethod::Uefi;
        let Err(CloneError::Destinations { destinations }) =
            plan(&src, &[&small, &busy, &uefi, &src], BOTH)
        else {
            panic!("expected destination errors");
        };
        let codes: Vec<(&str, &str)> = destinations
            .iter()
            .map(|e| (e.system_id.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (small.system_id.as_str(), "storage"),
                (busy.system_id.as_str(), "invalid-status"),
                (uefi.system_id.as_str(), "storage"),
                (uefi.system_id.as_str(), "networking"),
                (src.system_id.as_str(), "is-source"),
            ]
        );
        assert!(
            destinations[0].message.contains("smaller"),
            "{}",
            destinations[0].message
        );
    }

    #[test]
    fn storage_only_ignores_interfaces_and_needs_one_option() {
        let src = machine(1, vec![disk(1, 100, &[])], vec![nic(1, "eth0")]);
        let dst = machine(2, vec![disk(2, 100, &[])], vec![nic(3, "eno1")]);
        let only_storage = CloneOptions {
            storage: true,
            interfaces: false,
        };
        assert_eq!(
            plan(&src, &[&dst], only_storage).unwrap()[0].interfaces,
            vec![]
        );
        let only_nics = CloneOptions {
            storage: false,
            interfaces: true,
        };
        assert!(matches!(
            plan(&src, &[&dst], only_nics),
            Err(CloneError::Destinations { .. })
        ));
        assert!(matches!(
            plan(&src, &[&dst], CloneOptions::default()),
            Err(CloneError::Request(_))
        ));
        assert!(matches!(plan(&src, &[], BOTH), Err(CloneError::Request(_))));
    }

    #[test]
    fn failed_testing_is_a_valid_destination_and_tags_must_match() {
        let src = machine(1, vec![disk(1, 100, &[]), disk(2, 100, &["ssd"])], vec![]);
        let mut dst = machine(
            2,
            vec![disk(3, 100, &[]), disk(4, 200, &["rotary"])],
            vec![],
        );
        dst.status = NodeStatus::FailedTesting;
        let storage = CloneOptions {
            storage: true,
            interfaces: false,
        };
        assert!(plan(&src, &[&dst], storage).is_err());
        dst.block_devices[1].tags = vec!["ssd".into()];
        assert_eq!(
            plan(&src, &[&dst], storage).unwrap()[0].storage,
            vec![(1, 3), (2, 4)]
        );
    }
}
