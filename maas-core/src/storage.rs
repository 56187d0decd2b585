//! A machine's storage configuration as MAAS models it: partition tables and
//! partitions on block devices, filesystems and their mount points, LVM volume
//! groups and logical volumes, software RAID, bcache devices and cache sets.
//! Also sizes (bytes or percentages) and the deploy-time rules a configuration
//! must meet ([`validate_for_deploy`]). Layouts that build a configuration
//! live in [`layout`].
//!
//! Virtual block devices (an LVM logical volume, a RAID array, a bcache
//! device) are ordinary [`BlockDevice`]s of kind
//! [`BlockDeviceKind::Virtual`] in [`Machine::block_devices`], so partitions and
//! filesystems can sit on them exactly as on a disk; the structures here say
//! what each virtual device is made of.

pub mod layout;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::boot::BootMethod;
use crate::error::{Error, Result};
use crate::hardware::{BlockDevice, BlockDeviceKind};
use crate::machine::Machine;

pub use layout::{LayoutRequest, StorageLayout, apply_layout};

const MIB: u64 = 1 << 20;

/// Size of the EFI system partition MAAS creates on UEFI machines (512 MiB).
pub const EFI_PARTITION_SIZE: u64 = 512 * MIB;
/// Smallest `/boot` partition a layout accepts (512 MiB).
pub const MIN_BOOT_PARTITION_SIZE: u64 = 512 * MIB;
/// Smallest root a layout accepts (3 GiB).
pub const MIN_ROOT_SIZE: u64 = 3 << 30;
/// Where the first partition starts on a disk (4 MiB).
pub const INITIAL_PARTITION_OFFSET: u64 = 4 * MIB;
/// Space a partition table costs: the initial offset plus room for the
/// backup GPT at the end of the disk.
pub const PARTITION_TABLE_EXTRA_SPACE: u64 = INITIAL_PARTITION_OFFSET + MIB;
/// The `bios_grub` partition added to GPT boot disks of BIOS amd64 machines.
pub const BIOS_GRUB_PARTITION_SIZE: u64 = MIB;
/// The PReP partition added to ppc64el boot disks.
pub const PREP_PARTITION_SIZE: u64 = 8 * MIB;

/// A size given either in bytes or as a percentage of what is available.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A share of the available space, `0 < p <= 100`.
    Percent(f64),
}

impl Size {
    /// The size in bytes, resolving a percentage against `available`.
    pub fn resolve(self, available: u64) -> u64 {
        match self {
            Size::Bytes(b) => b,
            // Percentages are of a disk-sized quantity: f64 keeps 53 bits,
            // plenty for byte counts, and the result is floored.
            Size::Percent(p) => ((available as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Bytes(b) => write!(f, "{b}"),
            Size::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for Size {
    type Err = Error;

    /// Parses `1048576`, `512M`, `10G`, `2GiB`, `1.5T` (K/M/G/T/P are powers of
    /// 1000 as in MAAS's `machine_readable_bytes`, Ki/Mi/Gi/Ti/Pi powers of
    /// 1024; a trailing `B` is optional) or `50%`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidSize(s.to_owned());
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(Size::Percent(v));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(bad());
        }
        let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" => 1_000,
            "M" | "MB" => 1_000_000,
            "G" | "GB" => 1_000_000_000,
            "T" | "TB" => 1_000_000_000_000,
            "P" | "PB" => 1_000_000_000_000_000,
            "KI" | "KIB" => 1 << 10,
            "MI" | "MIB" => 1 << 20,
            "GI" | "GIB" => 1 << 30,
            "TI" | "TIB" => 1 << 40,
            "PI" | "PIB" => 1 << 50,
            _ => return Err(bad()),
        };
        if num.contains('.') {
            let v: f64 = num.parse().map_err(|_| bad())?;
            let bytes = v * mult as f64;
            if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
                return Err(bad());
            }
            Ok(Size::Bytes(bytes as u64))
        } else {
            let v: u64 = num.parse().map_err(|_| bad())?;
            v.checked_mul(mult).map(Size::Bytes).ok_or_else(bad)
        }
    }
}

/// Partition table type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionTableType {
    /// GUID partition table.
    #[default]
    Gpt,
    /// DOS/MBR table (curtin's `msdos`).
    Mbr,
}

impl PartitionTableType {
    /// curtin's `ptable` value.
    pub fn curtin_name(self) -> &'static str {
        match self {
            PartitionTableType::Gpt => "gpt",
            PartitionTableType::Mbr => "msdos",
        }
    }
}

/// A partition table on a block device.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartitionTable {
    /// The block device id it is written on.
    pub block_device: u64,
    /// GPT or MBR.
    pub kind: PartitionTableType,
}

/// A partition. Its number is derived from its position among the
/// partitions of its block device (ordered by id), see [`partition_number`].
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Partition {
    /// Database id, unique across the machine.
    pub id: u64,
    /// The block device it is on (which must carry a partition table).
    pub block_device: u64,
    /// Size in bytes.
    pub size: u64,
    /// Bootable (the EFI system partition): curtin flag `boot`.
    pub bootable: bool,
    /// Partition UUID, empty when unset.
    pub uuid: String,
}

/// Where a filesystem or group member sits: a whole block device or a
/// partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Volume {
    /// A block device (physical or virtual), by id.
    Device(u64),
    /// A partition, by id.
    Partition(u64),
}

impl Default for Volume {
    fn default() -> Self {
        Volume::Device(0)
    }
}

/// Filesystem types MAAS knows, including the "member" types that make a
/// volume part of an LVM VG, a RAID or a bcache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsType {
    /// ext4 (MAAS's default).
    #[default]
    Ext4,
    /// ext2.
    Ext2,
    /// ext3.
    Ext3,
    /// XFS.
    Xfs,
    /// FAT32 (the EFI system partition).
    Fat32,
    /// VFAT.
    Vfat,
    /// Btrfs.
    Btrfs,
    /// Swap.
    Swap,
    /// ZFS root.
    Zfsroot,
    /// LVM physical volume.
    LvmPv,
    /// RAID member.
    Raid,
    /// RAID spare.
    RaidSpare,
    /// bcache backing device.
    BcacheBacking,
    /// bcache cache device (a cache set).
    BcacheCache,
}

impl FsType {
    /// The MAAS / curtin name.
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Ext2 => "ext2",
            FsType::Ext3 => "ext3",
            FsType::Xfs => "xfs",
            FsType::Fat32 => "fat32",
            FsType::Vfat => "vfat",
            FsType::Btrfs => "btrfs",
            FsType::Swap => "swap",
            FsType::Zfsroot => "zfsroot",
            FsType::LvmPv => "lvm-pv",
            FsType::Raid => "raid",
            FsType::RaidSpare => "raid-spare",
            FsType::BcacheBacking => "bcache-backing",
            FsType::BcacheCache => "bcache-cache",
        }
    }

    /// Whether this marks a member of a group (VG, RAID, bcache) rather than a
    /// filesystem curtin formats.
    pub fn is_member(self) -> bool {
        matches!(
            self,
            FsType::LvmPv
                | FsType::Raid
                | FsType::RaidSpare
                | FsType::BcacheBacking
                | FsType::BcacheCache
        )
    }
}

/// A filesystem (or group membership) on a volume.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Filesystem {
    /// Database id.
    pub id: u64,
    /// Type.
    pub fstype: FsType,
    /// The volume it is on.
    pub volume: Volume,
    /// Mount point (absolute path, or `none` for swap), when mounted.
    pub mount_point: Option<String>,
    /// Mount options, when set.
    pub mount_options: Option<String>,
    /// Filesystem label, empty when unset.
    pub label: String,
    /// Filesystem UUID, empty when unset.
    pub uuid: String,
}

/// An LVM volume group.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VolumeGroup {
    /// Database id.
    pub id: u64,
    /// VG name, such as `vgroot`.
    pub name: String,
    /// VG UUID, empty when unset.
    pub uuid: String,
    /// Physical volumes.
    pub devices: Vec<Volume>,
}

/// An LVM logical volume; its block device is virtual and named
/// `<vg>-<lv>`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogicalVolume {
    /// The virtual block device id.
    pub block_device: u64,
    /// The volume group id.
    pub volume_group: u64,
    /// LV name, such as `lvroot`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// RAID level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RaidLevel {
    /// Striping.
    #[serde(rename = "raid-0")]
    Raid0,
    /// Mirroring.
    #[default]
    #[serde(rename = "raid-1")]
    Raid1,
    /// Parity.
    #[serde(rename = "raid-5")]
    Raid5,
    /// Double parity.
    #[serde(rename = "raid-6")]
    Raid6,
    /// Striped mirrors.
    #[serde(rename = "raid-10")]
    Raid10,
}

impl RaidLevel {
    /// curtin's `raidlevel` integer.
    pub fn number(self) -> u8 {
        match self {
            RaidLevel::Raid0 => 0,
            RaidLevel::Raid1 => 1,
            RaidLevel::Raid5 => 5,
            RaidLevel::Raid6 => 6,
            RaidLevel::Raid10 => 10,
        }
    }

    /// The fewest active members the level needs.
    pub fn min_devices(self) -> usize {
        match self {
            RaidLevel::Raid0 | RaidLevel::Raid1 => 2,
            RaidLevel::Raid5 => 3,
            RaidLevel::Raid6 | RaidLevel::Raid10 => 4,
        }
    }
}

/// A software RAID array; its block device is virtual (`md0`).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Raid {
    /// The virtual block device id.
    pub block_device: u64,
    /// Array name, such as `md0`.
    pub name: String,
    /// Level.
    pub level: RaidLevel,
    /// Active members.
    pub devices: Vec<Volume>,
    /// Spare members.
    pub spares: Vec<Volume>,
}

/// A bcache cache set: the fast device that caches one or more bcaches.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheSet {
    /// Database id.
    pub id: u64,
    /// Name, such as `cache0`.
    pub name: String,
    /// The caching volume.
    pub device: Volume,
}

/// bcache cache mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Writes go to both; MAAS's default.
    #[default]
    Writethrough,
    /// Writes go to the cache first.
    Writeback,
    /// Writes bypass the cache.
    Writearound,
}

impl CacheMode {
    /// The MAAS / curtin name.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Writethrough => "writethrough",
            CacheMode::Writeback => "writeback",
            CacheMode::Writearound => "writearound",
        }
    }
}

impl FromStr for CacheMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "writethrough" => Ok(CacheMode::Writethrough),
            "writeback" => Ok(CacheMode::Writeback),
            "writearound" => Ok(CacheMode::Writearound),
            other => Err(Error::LayoutParam {
                layout: "bcache",
                param: "cache_mode",
                reason: format!("{other:?} is not writethrough, writeback or writearound"),
            }),
        }
    }
}

/// A bcache device; its block device is virtual (`bcache0`).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bcache {
    /// The virtual block device id.
    pub block_device: u64,
    /// Name, such as `bcache0`.
    pub name: String,
    /// The backing (slow) volume.
    pub backing: Volume,
    /// The cache set id.
    pub cache_set: u64,
    /// Cache mode.
    pub mode: CacheMode,
}

/// Everything MAAS stores about how a machine's disks are used.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Storage {
    /// Partition tables.
    pub partition_tables: Vec<PartitionTable>,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// Filesystems and group memberships.
    pub filesystems: Vec<Filesystem>,
    /// LVM volume groups.
    pub volume_groups: Vec<VolumeGroup>,
    /// LVM logical volumes.
    pub logical_volumes: Vec<LogicalVolume>,
    /// RAID arrays.
    pub raids: Vec<Raid>,
    /// bcache cache sets.
    pub cache_sets: Vec<CacheSet>,
    /// bcache devices.
    pub bcaches: Vec<Bcache>,
}

impl Storage {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.partition_tables.is_empty()
            && self.partitions.is_empty()
            && self.filesystems.is_empty()
            && self.volume_groups.is_empty()
            && self.raids.is_empty()
            && self.bcaches.is_empty()
            && self.cache_sets.is_empty()
            && self.logical_volumes.is_empty()
    }

    /// The partition table on a block device.
    pub fn partition_table(&self, block_device: u64) -> Option<&PartitionTable> {
        self.partition_tables
            .iter()
            .find(|t| t.block_device == block_device)
    }

    /// The partitions of a block device, ordered by id.
    pub fn partitions_of(&self, block_device: u64) -> Vec<&Partition> {
        let mut v: Vec<&Partition> = self
            .partitions
            .iter()
            .filter(|p| p.block_device == block_device)
            .collect();
        v.sort_by_key(|p| p.id);
        v
    }

    /// The filesystem on a volume.
    pub fn filesystem_on(&self, volume: Volume) -> Option<&Filesystem> {
        self.filesystems.iter().find(|f| f.volume == volume)
    }

    /// The filesystem mounted at `path`.
    pub fn mounted_at(&self, path: &str) -> Option<&Filesystem> {
        self.filesystems
            .iter()
            .find(|f| f.mount_point.as_deref() == Some(path))
    }
}

/// A rule a storage configuration breaks (the `rule` of
/// [`Error::Storage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageRule {
    /// Nothing is mounted at `/` and the deployment is not ephemeral.
    RootNotMounted,
    /// `/boot` (or `/` without a separate `/boot`) lives on a bcache device,
    /// which the boot loader cannot read.
    BootOnBcache,
    /// A UEFI machine needs a filesystem mounted at `/boot/efi`.
    UefiNeedsBootEfi,
    /// `/boot/efi` must be FAT32/VFAT on a partition.
    BootEfiNotFat,
    /// A reference to a device, partition or group that does not exist.
    UnknownReference(String),
    /// A partition on a device without a partition table.
    NoPartitionTable,
    /// Partitions are larger than the device can hold.
    Overfull {
        /// Bytes the partitions need.
        needed: u64,
        /// Bytes available on the device.
        available: u64,
    },
    /// MBR tables hold four primary partitions; extended/logical partitions
    /// are not modelled.
    TooManyMbrPartitions,
    /// Two filesystems mounted at the same path.
    DuplicateMountPoint,
    /// A mount point that is not an absolute path.
    BadMountPoint,
    /// A volume used twice (two filesystems, or member of two groups).
    VolumeInUse,
    /// A RAID array has fewer members than its level needs.
    TooFewRaidDevices {
        /// Level.
        level: u8,
        /// Members it needs.
        needed: usize,
    },
    /// A disk curtin cannot find: neither model+serial nor an id path.
    UnidentifiableDisk,
    /// A layout needs a disk and the machine has none.
    NoBootDisk,
}

impl fmt::Display for StorageRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageRule::RootNotMounted => {
                f.write_str("nothing is mounted at / (required unless deploying to memory)")
            }
            StorageRule::BootOnBcache => f.write_str(
                "/boot cannot be on a bcache volume; mount /boot on a non-bcache device",
            ),
            StorageRule::UefiNeedsBootEfi => {
                f.write_str("UEFI machines need a FAT32 partition mounted at /boot/efi")
            }
            StorageRule::BootEfiNotFat => {
                f.write_str("/boot/efi must be a FAT32 or VFAT filesystem on a partition")
            }
            StorageRule::UnknownReference(what) => write!(f, "refers to unknown {what}"),
            StorageRule::NoPartitionTable => {
                f.write_str("partition on a device without a partition table")
            }
            StorageRule::Overfull { needed, available } => write!(
                f,
                "partitions need {needed} bytes but only {available} bytes are available"
            ),
            StorageRule::TooManyMbrPartitions => f.write_str(
                "an MBR (msdos) partition table holds at most 4 partitions here; use GPT",
            ),
            StorageRule::DuplicateMountPoint => f.write_str("two filesystems are mounted here"),
            StorageRule::BadMountPoint => {
                f.write_str("mount point must be an absolute path (or `none` for swap)")
            }
            StorageRule::VolumeInUse => {
                f.write_str("volume is used more than once (filesystem or group member)")
            }
            StorageRule::TooFewRaidDevices { level, needed } => {
                write!(f, "RAID {level} needs at least {needed} active devices")
            }
            StorageRule::UnidentifiableDisk => f.write_str(
                "disk has neither model and serial nor an id_path, so the installer cannot find it",
            ),
            StorageRule::NoBootDisk => f.write_str("the machine has no disk to lay out"),
        }
    }
}

fn storage_err(device: impl Into<String>, rule: StorageRule) -> Error {
    Error::Storage {
        device: device.into(),
        rule,
    }
}

/// The block device with `id`.
pub fn block_device(machine: &Machine, id: u64) -> Option<&BlockDevice> {
    machine.block_devices.iter().find(|d| d.id == id)
}

/// Whether a block device gets an extra first partition for the boot loader,
/// and so numbers its own partitions from 2: PReP on the ppc64el boot disk;
/// `bios_grub` on every GPT disk of a BIOS amd64 machine (the boot disk gets
/// GPT when it has no table yet), except for ESXi whose image brings its own.
pub fn boot_partition_reserved(machine: &Machine, block_device: u64) -> Option<&'static str> {
    reserved_with(machine, machine.boot_disk().map(|d| d.id), block_device)
}

/// [`boot_partition_reserved`] with the boot disk already looked up.
pub(crate) fn reserved_with(
    machine: &Machine,
    boot_disk: Option<u64>,
    block_device: u64,
) -> Option<&'static str> {
    let is_boot = boot_disk == Some(block_device);
    let arch = machine.arch();
    if arch == "ppc64el" {
        return is_boot.then_some("prep");
    }
    let gpt = match machine.storage.partition_table(block_device) {
        Some(t) => t.kind == PartitionTableType::Gpt,
        None => is_boot,
    };
    let amd64 = arch.is_empty() || arch == "amd64";
    if gpt && amd64 && machine.boot_method != BootMethod::Uefi && machine.osystem != "esxi" {
        return Some("bios_grub");
    }
    None
}

/// The names and partition numbers of every volume, computed once: a
/// partition's number depends on the boot disk and on the other partitions
/// of its device, so looking names up one by one is quadratic.
#[derive(Clone, Debug, Default)]
pub struct VolumeNames {
    names: HashMap<Volume, String>,
    numbers: HashMap<u64, u32>,
}

impl VolumeNames {
    /// Names every block device and partition of the machine.
    pub fn new(machine: &Machine) -> Self {
        let boot = machine.boot_disk().map(|d| d.id);
        let mut names =
            HashMap::with_capacity(machine.block_devices.len() + machine.storage.partitions.len());
        let mut numbers = HashMap::with_capacity(machine.storage.partitions.len());
        let mut by_dev: HashMap<u64, Vec<&Partition>> = HashMap::new();
        for p in &machine.storage.partitions {
            by_dev.entry(p.block_device).or_default().push(p);
        }
        for d in &machine.block_devices {
            names.insert(Volume::Device(d.id), d.name.clone());
            if let Some(parts) = by_dev.get_mut(&d.id) {
                parts.sort_by_key(|p| p.id);
                let shift = u32::from(reserved_with(machine, boot, d.id).is_some());
                for (i, p) in parts.iter().enumerate() {
                    let n = i as u32 + 1 + shift;
                    numbers.insert(p.id, n);
                    names.insert(Volume::Partition(p.id), format!("{}-part{n}", d.name));
                }
            }
        }
        Self { names, numbers }
    }

    /// The name of a volume (`sda`, `sda-part2`, `md0`).
    pub fn get(&self, v: Volume) -> String {
        match self.names.get(&v) {
            Some(n) => n.clone(),
            None => match v {
                Volume::Device(id) => format!("#{id}"),
                Volume::Partition(id) => format!("partition #{id}"),
            },
        }
    }

    /// The number of a partition.
    pub fn number(&self, partition: u64) -> u32 {
        self.numbers.get(&partition).copied().unwrap_or(0)
    }
}

/// The number of partition `id` on its device (1-based, after any reserved
/// boot-loader partition).
pub fn partition_number(machine: &Machine, partition: &Partition) -> u32 {
    let idx = machine
        .storage
        .partitions_of(partition.block_device)
        .iter()
        .position(|p| p.id == partition.id)
        .unwrap_or(0) as u32;
    let shift = u32::from(boot_partition_reserved(machine, partition.block_device).is_some());
    idx + 1 + shift
}

/// Name of a block device (its kernel name, such as `sda`, `md0`,
/// `vgroot-lvroot`), or `#<id>` when unknown.
pub fn device_name(machine: &Machine, id: u64) -> String {
    block_device(machine, id)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| format!("#{id}"))
}

/// Name of a volume: `sda`, or `sda-part2` for a partition.
pub fn volume_name(machine: &Machine, volume: Volume) -> String {
    match volume {
        Volume::Device(id) => device_name(machine, id),
        Volume::Partition(pid) => match machine.storage.partitions.iter().find(|p| p.id == pid) {
            Some(p) => format!(
                "{}-part{}",
                device_name(machine, p.block_device),
                partition_number(machine, p)
            ),
            None => format!("partition #{pid}"),
        },
    }
}

/// Bytes a partition table leaves for partitions on a device.
pub fn partitionable_size(machine: &Machine, device: &BlockDevice) -> u64 {
    partitionable_with(machine, machine.boot_disk().map(|d| d.id), device)
}

fn partitionable_with(machine: &Machine, boot: Option<u64>, device: &BlockDevice) -> u64 {
    let reserved = match reserved_with(machine, boot, device.id) {
        Some("prep") => PREP_PARTITION_SIZE,
        Some(_) => BIOS_GRUB_PARTITION_SIZE,
        None => 0,
    };
    device
        .size
        .saturating_sub(PARTITION_TABLE_EXTRA_SPACE + reserved)
}

/// The physical block device a volume ultimately lives on, following
/// partitions (not groups).
fn volume_device(machine: &Machine, volume: Volume) -> Option<u64> {
    match volume {
        Volume::Device(id) => Some(id),
        Volume::Partition(pid) => machine
            .storage
            .partitions
            .iter()
            .find(|p| p.id == pid)
            .map(|p| p.block_device),
    }
}

/// Whether a volume is (on) a bcache device.
fn on_bcache(machine: &Machine, volume: Volume) -> bool {
    volume_device(machine, volume)
        .is_some_and(|d| machine.storage.bcaches.iter().any(|b| b.block_device == d))
}

/// Checks the structure of the configuration: every reference resolves,
/// partitions fit, volumes are used once, mount points are sane, RAID
/// arrays have enough members, disks can be identified.
pub fn validate_structure(machine: &Machine) -> Result<()> {
    let st = &machine.storage;
    let dev_exists = |id: u64| block_device(machine, id).is_some();
    let part_exists = |id: u64| st.partitions.iter().any(|p| p.id == id);
    let check_volume = |owner: &dyn Fn() -> String, v: Volume| -> Result<()> {
        let ok = match v {
            Volume::Device(id) => dev_exists(id),
            Volume::Partition(id) => part_exists(id),
        };
        if ok {
            Ok(())
        } else {
            Err(storage_err(
                owner(),
                StorageRule::UnknownReference(match v {
                    Volume::Device(id) => format!("block device #{id}"),
                    Volume::Partition(id) => format!("partition #{id}"),
                }),
            ))
        }
    };

    for t in &st.partition_tables {
        if !dev_exists(t.block_device) {
            return Err(storage_err(
                "partition table",
                StorageRule::UnknownReference(format!("block device #{}", t.block_device)),
            ));
        }
    }
    // Partitions fit on their device.
    let boot = machine.boot_disk().map(|d| d.id);
    for dev in &machine.block_devices {
        let parts = st.partitions_of(dev.id);
        if parts.is_empty() {
            continue;
        }
        let Some(table) = st.partition_table(dev.id) else {
            return Err(storage_err(&dev.name, StorageRule::NoPartitionTable));
        };
        if table.kind == PartitionTableType::Mbr && parts.len() > 4 {
            return Err(storage_err(&dev.name, StorageRule::TooManyMbrPartitions));
        }
        let needed: u64 = parts.iter().map(|p| p.size).sum();
        let available = partitionable_with(machine, boot, dev);
        if needed > available {
            return Err(storage_err(
                &dev.name,
                StorageRule::Overfull { needed, available },
            ));
        }
    }
    for p in &st.partitions {
        if !dev_exists(p.block_device) {
            return Err(storage_err(
                format!("partition #{}", p.id),
                StorageRule::UnknownReference(format!("block device #{}", p.block_device)),
            ));
        }
    }
    // Each volume carries at most one filesystem / membership.
    let mut used: HashSet<Volume> = HashSet::new();
    let mut mounts: HashSet<&str> = HashSet::new();
    for fs in &st.filesystems {
        // Names are only needed for errors; computing them is not free.
        let name = || volume_name(machine, fs.volume);
        check_volume(&name, fs.volume)?;
        if !used.insert(fs.volume) {
            return Err(storage_err(name(), StorageRule::VolumeInUse));
        }
        if let Some(mp) = fs.mount_point.as_deref() {
            let swap_none = fs.fstype == FsType::Swap && mp == "none";
            if !swap_none && (!mp.starts_with('/') || mp.contains("//") || mp.contains(' ')) {
                return Err(storage_err(mp, StorageRule::BadMountPoint));
            }
            if !swap_none && !mounts.insert(mp) {
                return Err(storage_err(mp, StorageRule::DuplicateMountPoint));
            }
        }
    }
    for vg in &st.volume_groups {
        for v in &vg.devices {
            check_volume(&|| vg.name.clone(), *v)?;
        }
    }
    for lv in &st.logical_volumes {
        if !st.volume_groups.iter().any(|vg| vg.id == lv.volume_group) {
            return Err(storage_err(
                &lv.name,
                StorageRule::UnknownReference(format!("volume group #{}", lv.volume_group)),
            ));
        }
        if !dev_exists(lv.block_device) {
            return Err(storage_err(
                &lv.name,
                StorageRule::UnknownReference(format!("block device #{}", lv.block_device)),
            ));
        }
    }
    for r in &st.raids {
        for v in r.devices.iter().chain(&r.spares) {
            check_volume(&|| r.name.clone(), *v)?;
        }
        if r.devices.len() < r.level.min_devices() {
            return Err(storage_err(
                &r.name,
                StorageRule::TooFewRaidDevices {
                    level: r.level.number(),
                    needed: r.level.min_devices(),
                },
            ));
        }
    }
    for cs in &st.cache_sets {
        check_volume(&|| cs.name.clone(), cs.device)?;
    }
    for b in &st.bcaches {
        check_volume(&|| b.name.clone(), b.backing)?;
        if !st.cache_sets.iter().any(|c| c.id == b.cache_set) {
            return Err(storage_err(
                &b.name,
                StorageRule::UnknownReference(format!("cache set #{}", b.cache_set)),
            ));
        }
    }
    // Disks that take part in the configuration must be findable by curtin.
    for dev in machine.physical_disks() {
        if dev.kind == BlockDeviceKind::Physical
            && (dev.model.is_empty() || dev.serial.is_empty())
            && dev.id_path.is_empty()
        {
            return Err(storage_err(&dev.name, StorageRule::UnidentifiableDisk));
        }
    }
    Ok(())
}

/// MAAS's deploy-time checks (`storage_layout_issues`) plus
/// [`validate_structure`]: `/` is mounted unless the deployment is ephemeral,
/// `/boot` is not on bcache, UEFI machines have `/boot/efi`.
pub fn validate_for_deploy(machine: &Machine) -> Result<()> {
    if machine.ephemeral_deploy {
        // Deploying to memory ignores the disks entirely.
        return Ok(());
    }
    validate_structure(machine)?;
    let st = &machine.storage;
    let Some(root) = st.mounted_at("/") else {
        return Err(storage_err("/", StorageRule::RootNotMounted));
    };
    let boot = st.mounted_at("/boot").unwrap_or(root);
    if on_bcache(machine, boot.volume) {
        return Err(storage_err(
            volume_name(machine, boot.volume),
            StorageRule::BootOnBcache,
        ));
    }
    if machine.boot_method == BootMethod::Uefi {
        match st.mounted_at("/boot/efi") {
            None => return Err(storage_err("/boot/efi", StorageRule::UefiNeedsBootEfi)),
            Some(fs) => {
                let fat = matches!(fs.fstype, FsType::Fat32 | FsType::Vfat);
                if !fat || !matches!(fs.volume, Volume::Partition(_)) {
                    return Err(storage_err(
                        volume_name(machine, fs.volume),
                        StorageRule::BootEfiNotFat,
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_parse() {
        assert_eq!("1048576".parse::<Size>().unwrap(), Size::Bytes(1 << 20));
        assert_eq!("10G".parse::<Size>().unwrap(), Size::Bytes(10_000_000_000));
        assert_eq!("2GiB".parse::<Size>().unwrap(), Size::Bytes(2 << 30));
        assert_eq!("512M".parse::<Size>().unwrap(), Size::Bytes(512_000_000));
        assert_eq!(
            "1.5T".parse::<Size>().unwrap(),
            Size::Bytes(1_500_000_000_000)
        );
        assert_eq!("50%".parse::<Size>().unwrap(), Size::Percent(50.0));
        for bad in [
            "",
            "%",
            "0%",
            "101%",
            "-5",
            "10Q",
            "G",
            "1.2.3G",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Size::Percent(25.0).resolve(1000), 250);
    }

    proptest! {
        #[test]
        fn size_display_round_trips(b in any::<u64>()) {
            let s = Size::Bytes(b);
            prop_assert_eq!(s.to_string().parse::<Size>().unwrap(), s);
        }

        #[test]
        fn size_parser_never_panics(s in "\\PC{0,12}") {
            let _ = s.parse::<Size>();
        }

        #[test]
        fn percent_round_trips(p in 1u32..=100) {
            let s = Size::Percent(f64::from(p));
            prop_assert_eq!(s.to_string().parse::<Size>().unwrap(), s);
        }
    }
}
