//! Storage layouts: the recipes MAAS applies to a machine's boot disk
//! (`flat`, `lvm`, `bcache`), or to nothing (`blank`), or keeps as
//! commissioned (`custom`), with their parameters (`boot_size`,
//! `root_size`, `root_device`, `vg_name`, `lv_name`, `lv_size`,
//! `cache_device`, `cache_mode`, `cache_size`, `cache_no_part`).
//!
//! Sizes given as percentages are shares of the boot disk's space after the
//! partition table overhead and the EFI partition, as in MAAS.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Bcache, CacheMode, CacheSet, EFI_PARTITION_SIZE, Filesystem, FsType, LogicalVolume,
    MIN_BOOT_PARTITION_SIZE, MIN_ROOT_SIZE, Partition, PartitionTable, PartitionTableType, Size,
    Storage, StorageRule, Volume, VolumeGroup, partitionable_size, validate_structure,
};
use crate::boot::BootMethod;
use crate::error::{Error, Result};
use crate::hardware::{BlockDevice, BlockDeviceKind};
use crate::machine::Machine;

const MIB: u64 = 1 << 20;
/// LVM's default extent size: a VG's usable space is a whole number of these.
const LVM_EXTENT: u64 = 4 * MIB;
/// `/boot` size the bcache layout uses when `boot_size` is unset.
const BCACHE_DEFAULT_BOOT_SIZE: u64 = 1 << 30;

/// The layouts MAAS offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageLayout {
    /// EFI (on UEFI) + optional `/boot` + ext4 `/` filling the boot disk.
    #[default]
    Flat,
    /// Root on an LVM logical volume.
    Lvm,
    /// Root on a bcache backed by the boot disk, cached by an SSD.
    Bcache,
    /// Nothing configured.
    Blank,
    /// Keep the configuration as it is.
    Custom,
}

impl StorageLayout {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageLayout::Flat => "flat",
            StorageLayout::Lvm => "lvm",
            StorageLayout::Bcache => "bcache",
            StorageLayout::Blank => "blank",
            StorageLayout::Custom => "custom",
        }
    }
}

impl fmt::Display for StorageLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StorageLayout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "flat" => Ok(StorageLayout::Flat),
            "lvm" => Ok(StorageLayout::Lvm),
            "bcache" => Ok(StorageLayout::Bcache),
            "blank" => Ok(StorageLayout::Blank),
            "custom" => Ok(StorageLayout::Custom),
            other => Err(Error::UnknownLayout(other.to_owned())),
        }
    }
}

/// A layout and its parameters (`set_storage_layout`).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct LayoutRequest {
    /// Which layout.
    pub layout: StorageLayout,
    /// Size of a separate `/boot` partition (none unless set; bcache
    /// defaults to 1 GiB).
    pub boot_size: Option<Size>,
    /// Size of the root partition (or PV / bcache backing partition);
    /// the rest of the disk when unset.
    pub root_size: Option<Size>,
    /// Block device id to put root on instead of the boot disk (flat, lvm).
    pub root_device: Option<u64>,
    /// LVM volume group name (default `vgroot`).
    pub vg_name: Option<String>,
    /// LVM logical volume name (default `lvroot`).
    pub lv_name: Option<String>,
    /// LVM logical volume size (default: the whole VG).
    pub lv_size: Option<Size>,
    /// Block device id caching the root (default: the smallest SSD that
    /// is not the boot disk).
    pub cache_device: Option<u64>,
    /// bcache mode (default writethrough).
    pub cache_mode: Option<CacheMode>,
    /// Size of the cache partition (default: the whole cache device).
    pub cache_size: Option<Size>,
    /// Use the whole cache device, without a partition table.
    pub cache_no_part: bool,
    /// bcache without a cache device falls back to flat (MAAS's default
    /// layout path) instead of failing (the API's `set_storage_layout`).
    pub allow_fallback: bool,
}

impl LayoutRequest {
    /// A request for `layout` with no parameters.
    pub fn new(layout: StorageLayout) -> Self {
        Self {
            layout,
            ..Self::default()
        }
    }
}

/// Id allocator for the objects a layout creates.
struct Ids {
    next_device: u64,
    next: u64,
}

impl Ids {
    fn device(&mut self) -> u64 {
        self.next_device += 1;
        self.next_device
    }
    fn object(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

fn param(layout: StorageLayout, param: &'static str, reason: impl Into<String>) -> Error {
    Error::LayoutParam {
        layout: match layout {
            StorageLayout::Flat => "flat",
            StorageLayout::Lvm => "lvm",
            StorageLayout::Bcache => "bcache",
            StorageLayout::Blank => "blank",
            StorageLayout::Custom => "custom",
        },
        param,
        reason: reason.into(),
    }
}

fn round_down(size: u64, block: u64) -> u64 {
    let block = block.max(512);
    size / block * block
}

/// Replaces the machine's storage configuration with `req`'s layout.
///
/// `custom` keeps the configuration (after checking its structure);
/// `blank` clears it; `flat`, `lvm` and `bcache` rebuild it on the boot disk
/// (other disks stay unused unless `root_device` / `cache_device` name them).
/// On error the machine is left unchanged.
pub fn apply_layout(machine: &mut Machine, req: &LayoutRequest) -> Result<()> {
    match req.layout {
        StorageLayout::Custom => return validate_structure(machine),
        StorageLayout::Blank => {
            clear(machine);
            return Ok(());
        }
        _ => {}
    }
    let mut work = machine.clone();
    clear(&mut work);
    let result = match req.layout {
        StorageLayout::Flat => flat(&mut work, req),
        StorageLayout::Lvm => lvm(&mut work, req),
        StorageLayout::Bcache => match bcache(&mut work, req) {
            Err(Error::LayoutParam {
                param: "cache_device",
                ..
            }) if req.allow_fallback && req.cache_device.is_none() => {
                let mut work2 = machine.clone();
                clear(&mut work2);
                let r = flat(&mut work2, req);
                work = work2;
                r
            }
            other => other,
        },
        StorageLayout::Blank | StorageLayout::Custom => Ok(()),
    };
    result?;
    *machine = work;
    Ok(())
}

/// Drops every virtual block device and the whole storage configuration.
fn clear(machine: &mut Machine) {
    machine
        .block_devices
        .retain(|d| d.kind == BlockDeviceKind::Physical);
    if let Some(id) = machine.boot_disk_id
        && !machine.block_devices.iter().any(|d| d.id == id)
    {
        machine.boot_disk_id = None;
    }
    machine.storage = Storage::default();
}

fn ids_for(machine: &Machine) -> Ids {
    Ids {
        next_device: machine
            .block_devices
            .iter()
            .map(|d| d.id)
            .max()
            .unwrap_or(0),
        next: 0,
    }
}

/// What the common start of flat/lvm/bcache leaves: the boot disk with its
/// table, EFI and `/boot` partitions, and the space still free on it.
struct Prefix {
    boot_disk: BlockDevice,
    /// Space after the table overhead and EFI: the base for percentages.
    base: u64,
    /// Space still free on the boot disk.
    free: u64,
}

fn add_partition(st: &mut Storage, ids: &mut Ids, dev: u64, size: u64, bootable: bool) -> u64 {
    let id = ids.object();
    st.partitions.push(Partition {
        id,
        block_device: dev,
        size,
        bootable,
        uuid: String::new(),
    });
    id
}

fn add_fs(
    st: &mut Storage,
    ids: &mut Ids,
    fstype: FsType,
    volume: Volume,
    mount: Option<&str>,
    label: &str,
) {
    let id = ids.object();
    st.filesystems.push(Filesystem {
        id,
        fstype,
        volume,
        mount_point: mount.map(str::to_owned),
        mount_options: None,
        label: label.to_owned(),
        uuid: String::new(),
    });
}

fn ensure_table(st: &mut Storage, dev: u64) {
    if st.partition_table(dev).is_none() {
        st.partition_tables.push(PartitionTable {
            block_device: dev,
            kind: PartitionTableType::Gpt,
        });
    }
}

fn prefix(
    machine: &mut Machine,
    ids: &mut Ids,
    layout: StorageLayout,
    boot_size: Option<Size>,
) -> Result<Prefix> {
    let Some(boot_disk) = machine.boot_disk().cloned() else {
        return Err(Error::Storage {
            device: machine.hostname.clone(),
            rule: StorageRule::NoBootDisk,
        });
    };
    ensure_table(&mut machine.storage, boot_disk.id);
    let mut free = partitionable_size(machine, &boot_disk);
    if machine.boot_method == BootMethod::Uefi {
        if free < EFI_PARTITION_SIZE {
            return Err(Error::Storage {
                device: boot_disk.name.clone(),
                rule: StorageRule::Overfull {
                    needed: EFI_PARTITION_SIZE,
                    available: free,
                },
            });
        }
        let p = add_partition(
            &mut machine.storage,
            ids,
            boot_disk.id,
            EFI_PARTITION_SIZE,
            true,
        );
        add_fs(
            &mut machine.storage,
            ids,
            FsType::Fat32,
            Volume::Partition(p),
            Some("/boot/efi"),
            "efi",
        );
        free -= EFI_PARTITION_SIZE;
    }
    let base = free;
    if let Some(bs) = boot_size {
        let size = round_down(bs.resolve(base), boot_disk.block_size);
        if size < MIN_BOOT_PARTITION_SIZE {
            return Err(param(
                layout,
                "boot_size",
                format!("{size} bytes is below the minimum of {MIN_BOOT_PARTITION_SIZE}"),
            ));
        }
        if size + MIN_ROOT_SIZE > free {
            return Err(param(
                layout,
                "boot_size",
                format!(
                    "{size} bytes leaves less than {MIN_ROOT_SIZE} bytes for root on {}",
                    boot_disk.name
                ),
            ));
        }
        let p = add_partition(&mut machine.storage, ids, boot_disk.id, size, false);
        add_fs(
            &mut machine.storage,
            ids,
            FsType::Ext4,
            Volume::Partition(p),
            Some("/boot"),
            "boot",
        );
        free -= size;
    }
    Ok(Prefix {
        boot_disk,
        base,
        free,
    })
}

/// Resolves `root_size` against `base`, checking it fits in `free`.
fn root_size(
    layout: StorageLayout,
    req_size: Option<Size>,
    base: u64,
    free: u64,
    block: u64,
) -> Result<u64> {
    let size = round_down(req_size.map_or(free, |s| s.resolve(base)), block);
    if size < MIN_ROOT_SIZE {
        return Err(param(
            layout,
            "root_size",
            format!("{size} bytes is below the minimum root size of {MIN_ROOT_SIZE}"),
        ));
    }
    if size > free {
        return Err(param(
            layout,
            "root_size",
            format!("{size} bytes exceeds the {free} bytes available"),
        ));
    }
    Ok(size)
}

/// Creates the partition that holds root (or its PV / backing device): on
/// `root_device` when given, else on the boot disk.
fn root_partition(
    machine: &mut Machine,
    ids: &mut Ids,
    layout: StorageLayout,
    req: &LayoutRequest,
    pre: &Prefix,
) -> Result<u64> {
    let target = match req.root_device {
        Some(id) if id != pre.boot_disk.id => {
            let Some(dev) = machine
                .block_devices
                .iter()
                .find(|d| d.id == id && d.kind == BlockDeviceKind::Physical)
                .cloned()
            else {
                return Err(param(
                    layout,
                    "root_device",
                    format!("no physical block device with id {id}"),
                ));
            };
            ensure_table(&mut machine.storage, dev.id);
            let avail = partitionable_size(machine, &dev);
            let size = root_size(layout, req.root_size, avail, avail, dev.block_size)?;
            (dev.id, size)
        }
        _ => {
            let size = root_size(
                layout,
                req.root_size,
                pre.base,
                pre.free,
                pre.boot_disk.block_size,
            )?;
            (pre.boot_disk.id, size)
        }
    };
    Ok(add_partition(
        &mut machine.storage,
        ids,
        target.0,
        target.1,
        false,
    ))
}

fn flat(machine: &mut Machine, req: &LayoutRequest) -> Result<()> {
    let mut ids = ids_for(machine);
    let pre = prefix(machine, &mut ids, StorageLayout::Flat, req.boot_size)?;
    let root = root_partition(machine, &mut ids, StorageLayout::Flat, req, &pre)?;
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::Ext4,
        Volume::Partition(root),
        Some("/"),
        "root",
    );
    Ok(())
}

fn check_lvm_name(param_name: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(param(
            StorageLayout::Lvm,
            param_name,
            format!("{name:?} is not a valid LVM name (letters, digits, +_.-)"),
        ))
    }
}

fn lvm(machine: &mut Machine, req: &LayoutRequest) -> Result<()> {
    let vg_name = req.vg_name.clone().unwrap_or_else(|| "vgroot".into());
    let lv_name = req.lv_name.clone().unwrap_or_else(|| "lvroot".into());
    check_lvm_name("vg_name", &vg_name)?;
    check_lvm_name("lv_name", &lv_name)?;
    let mut ids = ids_for(machine);
    let pre = prefix(machine, &mut ids, StorageLayout::Lvm, req.boot_size)?;
    let pv = root_partition(machine, &mut ids, StorageLayout::Lvm, req, &pre)?;
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::LvmPv,
        Volume::Partition(pv),
        None,
        "",
    );
    let pv_size = machine
        .storage
        .partitions
        .iter()
        .find(|p| p.id == pv)
        .map_or(0, |p| p.size);
    // One MiB of PV metadata, then whole extents.
    let vg_size = pv_size.saturating_sub(MIB) / LVM_EXTENT * LVM_EXTENT;
    let lv_size = match req.lv_size {
        None => vg_size,
        Some(s) => s.resolve(vg_size) / LVM_EXTENT * LVM_EXTENT,
    };
    if lv_size < MIN_ROOT_SIZE || lv_size > vg_size {
        return Err(param(
            StorageLayout::Lvm,
            "lv_size",
            format!(
                "{lv_size} bytes must be between {MIN_ROOT_SIZE} and the volume group's {vg_size}"
            ),
        ));
    }
    let vg_id = ids.object();
    machine.storage.volume_groups.push(VolumeGroup {
        id: vg_id,
        name: vg_name.clone(),
        uuid: String::new(),
        devices: vec![Volume::Partition(pv)],
    });
    let lv_dev = ids.device();
    machine.block_devices.push(BlockDevice {
        id: lv_dev,
        name: format!("{vg_name}-{lv_name}"),
        kind: BlockDeviceKind::Virtual,
        size: lv_size,
        block_size: 4096,
        ..Default::default()
    });
    machine.storage.logical_volumes.push(LogicalVolume {
        block_device: lv_dev,
        volume_group: vg_id,
        name: lv_name,
        size: lv_size,
    });
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::Ext4,
        Volume::Device(lv_dev),
        Some("/"),
        "root",
    );
    Ok(())
}

fn bcache(machine: &mut Machine, req: &LayoutRequest) -> Result<()> {
    const L: StorageLayout = StorageLayout::Bcache;
    let boot_id = machine.boot_disk().map(|d| d.id);
    let cache_dev = match req.cache_device {
        Some(id) => {
            let Some(d) = machine
                .block_devices
                .iter()
                .find(|d| d.id == id && d.kind == BlockDeviceKind::Physical)
            else {
                return Err(param(
                    L,
                    "cache_device",
                    format!("no physical block device with id {id}"),
                ));
            };
            if Some(id) == boot_id {
                return Err(param(
                    L,
                    "cache_device",
                    format!("{} is the boot disk and cannot also cache it", d.name),
                ));
            }
            d.clone()
        }
        None => {
            let mut ssds: Vec<&BlockDevice> = machine
                .physical_disks()
                .into_iter()
                .filter(|d| Some(d.id) != boot_id && d.tags.iter().any(|t| t == "ssd"))
                .collect();
            ssds.sort_by_key(|d| (d.size, d.id));
            match ssds.first() {
                Some(d) => (*d).clone(),
                None => {
                    return Err(param(
                        L,
                        "cache_device",
                        "no SSD other than the boot disk is available to cache root",
                    ));
                }
            }
        }
    };
    let mut ids = ids_for(machine);
    let boot_size = Some(
        req.boot_size
            .unwrap_or(Size::Bytes(BCACHE_DEFAULT_BOOT_SIZE)),
    );
    let pre = prefix(machine, &mut ids, L, boot_size)?;
    let backing_req = LayoutRequest {
        root_device: None,
        ..req.clone()
    };
    let backing = root_partition(machine, &mut ids, L, &backing_req, &pre)?;
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::BcacheBacking,
        Volume::Partition(backing),
        None,
        "",
    );
    let cache_volume = if req.cache_no_part {
        if req.cache_size.is_some() {
            return Err(param(
                L,
                "cache_size",
                "cannot be combined with cache_no_part",
            ));
        }
        Volume::Device(cache_dev.id)
    } else {
        ensure_table(&mut machine.storage, cache_dev.id);
        let avail = partitionable_size(machine, &cache_dev);
        let size = round_down(
            req.cache_size.map_or(avail, |s| s.resolve(avail)),
            cache_dev.block_size,
        );
        if size == 0 || size > avail {
            return Err(param(
                L,
                "cache_size",
                format!(
                    "{size} bytes does not fit the {avail} bytes of {}",
                    cache_dev.name
                ),
            ));
        }
        Volume::Partition(add_partition(
            &mut machine.storage,
            &mut ids,
            cache_dev.id,
            size,
            false,
        ))
    };
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::BcacheCache,
        cache_volume,
        None,
        "",
    );
    let cs_id = ids.object();
    machine.storage.cache_sets.push(CacheSet {
        id: cs_id,
        name: "cache0".into(),
        device: cache_volume,
    });
    let backing_size = machine
        .storage
        .partitions
        .iter()
        .find(|p| p.id == backing)
        .map_or(0, |p| p.size);
    let dev = ids.device();
    machine.block_devices.push(BlockDevice {
        id: dev,
        name: "bcache0".into(),
        kind: BlockDeviceKind::Virtual,
        size: backing_size,
        block_size: 4096,
        ..Default::default()
    });
    machine.storage.bcaches.push(Bcache {
        block_device: dev,
        name: "bcache0".into(),
        backing: Volume::Partition(backing),
        cache_set: cs_id,
        mode: req.cache_mode.unwrap_or_default(),
    });
    add_fs(
        &mut machine.storage,
        &mut ids,
        FsType::Ext4,
        Volume::Device(dev),
        Some("/"),
        "root",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{validate_for_deploy, volume_name};

    fn disk(id: u64, name: &str, gib: u64, tags: &[&str]) -> BlockDevice {
        BlockDevice {
            id,
            name: name.into(),
            size: gib << 30,
            block_size: 512,
            model: "QEMU HARDDISK".into(),
            serial: format!("serial-{name}"),
            id_path: format!("/dev/disk/by-id/wwn-{name}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn machine(method: BootMethod) -> Machine {
        Machine {
            hostname: "node1".into(),
            architecture: "amd64/generic".into(),
            boot_method: method,
            block_devices: vec![
                disk(1, "sda", 100, &["rotary"]),
                disk(2, "sdb", 20, &["ssd"]),
            ],
            ..Default::default()
        }
    }

    fn mounts(m: &Machine) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = m
            .storage
            .filesystems
            .iter()
            .filter_map(|f| {
                f.mount_point
                    .as_ref()
                    .map(|mp| (mp.clone(), volume_name(m, f.volume)))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn flat_bios_numbers_after_bios_grub() {
        let mut m = machine(BootMethod::Pxe);
        apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Flat)).unwrap();
        assert_eq!(mounts(&m), vec![("/".into(), "sda-part2".into())]);
        validate_for_deploy(&m).unwrap();
    }

    #[test]
    fn flat_uefi_has_efi_and_boot() {
        let mut m = machine(BootMethod::Uefi);
        let req = LayoutRequest {
            boot_size: Some(Size::Bytes(1 << 30)),
            ..LayoutRequest::new(StorageLayout::Flat)
        };
        apply_layout(&mut m, &req).unwrap();
        assert_eq!(
            mounts(&m),
            vec![
                ("/".into(), "sda-part3".into()),
                ("/boot".into(), "sda-part2".into()),
                ("/boot/efi".into(), "sda-part1".into()),
            ]
        );
        let efi = &m.storage.partitions_of(1)[0];
        assert_eq!(efi.size, EFI_PARTITION_SIZE);
        assert!(efi.bootable);
        validate_for_deploy(&m).unwrap();
    }

    #[test]
    fn percent_root_size_excludes_efi() {
        let mut m = machine(BootMethod::Uefi);
        let req = LayoutRequest {
            root_size: Some(Size::Percent(50.0)),
            ..LayoutRequest::new(StorageLayout::Flat)
        };
        apply_layout(&mut m, &req).unwrap();
        let sda = &m.block_devices[0];
        let base = partitionable_size(&m, sda) - EFI_PARTITION_SIZE;
        let root = m.storage.partitions_of(1)[1].size;
        assert_eq!(root, base / 2 / 512 * 512);
    }

    #[test]
    fn lvm_defaults() {
        let mut m = machine(BootMethod::Uefi);
        apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Lvm)).unwrap();
        assert_eq!(m.storage.volume_groups[0].name, "vgroot");
        assert_eq!(m.storage.logical_volumes[0].name, "lvroot");
        assert_eq!(mounts(&m)[0], ("/".into(), "vgroot-lvroot".into()));
        validate_for_deploy(&m).unwrap();
        let bad = LayoutRequest {
            vg_name: Some("bad name".into()),
            ..LayoutRequest::new(StorageLayout::Lvm)
        };
        let err = apply_layout(&mut m, &bad).unwrap_err().to_string();
        assert!(err.contains("vg_name"), "{err}");
    }

    #[test]
    fn bcache_picks_ssd_and_separate_boot() {
        let mut m = machine(BootMethod::Pxe);
        apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Bcache)).unwrap();
        assert_eq!(m.storage.bcaches.len(), 1);
        // Every GPT disk of a BIOS amd64 machine starts with bios_grub.
        assert_eq!(volume_name(&m, m.storage.cache_sets[0].device), "sdb-part2");
        assert_eq!(
            m.storage.mounted_at("/boot").map(|f| f.label.as_str()),
            Some("boot")
        );
        validate_for_deploy(&m).unwrap();
    }

    #[test]
    fn bcache_without_ssd_falls_back_only_when_allowed() {
        let mut m = machine(BootMethod::Pxe);
        m.block_devices.truncate(1);
        let before = m.clone();
        let err = apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Bcache)).unwrap_err();
        assert!(err.to_string().contains("cache_device"), "{err}");
        assert_eq!(m, before, "a failed layout leaves the machine unchanged");
        let req = LayoutRequest {
            allow_fallback: true,
            ..LayoutRequest::new(StorageLayout::Bcache)
        };
        apply_layout(&mut m, &req).unwrap();
        assert!(m.storage.bcaches.is_empty());
        assert!(m.storage.mounted_at("/").is_some());
    }

    #[test]
    fn blank_then_deploy_fails_naming_root() {
        let mut m = machine(BootMethod::Pxe);
        apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Flat)).unwrap();
        apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Blank)).unwrap();
        assert!(m.storage.is_empty());
        let err = validate_for_deploy(&m).unwrap_err();
        assert!(matches!(
            err,
            Error::Storage {
                rule: StorageRule::RootNotMounted,
                ..
            }
        ));
        m.ephemeral_deploy = true;
        validate_for_deploy(&m).unwrap();
    }

    #[test]
    fn root_too_small_is_refused() {
        let mut m = machine(BootMethod::Pxe);
        let req = LayoutRequest {
            root_size: Some(Size::Bytes(1 << 30)),
            ..LayoutRequest::new(StorageLayout::Flat)
        };
        let err = apply_layout(&mut m, &req).unwrap_err().to_string();
        assert!(
            err.contains("root_size") && err.contains("minimum"),
            "{err}"
        );
    }
}
