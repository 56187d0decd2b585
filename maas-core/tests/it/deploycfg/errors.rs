//! Bad layouts and configurations give errors that name the device and the
//! rule.

use maas_core::storage::{
    FsType, Partition, Size, StorageRule, Volume, apply_layout, validate_for_deploy,
};
use maas_core::{BootMethod, Error, LayoutRequest, StorageLayout};

use super::fixtures::{Net, machine};

fn rule_of(e: &Error) -> (&str, &StorageRule) {
    match e {
        Error::Storage { device, rule } => (device.as_str(), rule),
        other => panic!("not a storage error: {other}"),
    }
}

#[test]
fn blank_layout_cannot_deploy() {
    let m = machine(StorageLayout::Blank, BootMethod::Pxe, Net::Dhcp);
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(rule_of(&e), ("/", &StorageRule::RootNotMounted));
    assert_eq!(
        e.to_string(),
        "storage: /: nothing is mounted at / (required unless deploying to memory)"
    );
}

#[test]
fn uefi_needs_boot_efi() {
    let mut m = machine(StorageLayout::Flat, BootMethod::Uefi, Net::Dhcp);
    m.storage
        .filesystems
        .retain(|f| f.mount_point.as_deref() != Some("/boot/efi"));
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(rule_of(&e), ("/boot/efi", &StorageRule::UefiNeedsBootEfi));
    assert!(e.to_string().contains("UEFI"), "{e}");
}

#[test]
fn boot_cannot_be_on_bcache() {
    let mut m = machine(StorageLayout::Bcache, BootMethod::Pxe, Net::Dhcp);
    validate_for_deploy(&m).unwrap();
    m.storage
        .filesystems
        .retain(|f| f.mount_point.as_deref() != Some("/boot"));
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(rule_of(&e), ("bcache0", &StorageRule::BootOnBcache));
    assert!(
        e.to_string()
            .starts_with("storage: bcache0: /boot cannot be on a bcache"),
        "{e}"
    );
}

#[test]
fn overfull_disk_is_named() {
    let mut m = machine(StorageLayout::Flat, BootMethod::Pxe, Net::Dhcp);
    m.storage.partitions.push(Partition {
        id: 99,
        block_device: 1,
        size: 10_000_000_000,
        ..Default::default()
    });
    let e = validate_for_deploy(&m).unwrap_err();
    let (dev, rule) = rule_of(&e);
    assert_eq!(dev, "sda");
    assert!(matches!(rule, StorageRule::Overfull { .. }), "{e}");
}

#[test]
fn raid_needs_enough_members_and_volumes_are_used_once() {
    let mut m = machine(StorageLayout::Flat, BootMethod::Pxe, Net::Dhcp);
    m.storage.raids.push(maas_core::storage::Raid {
        block_device: 1,
        name: "md0".into(),
        level: maas_core::storage::RaidLevel::Raid5,
        devices: vec![Volume::Device(1), Volume::Device(2)],
        spares: vec![],
    });
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(
        rule_of(&e),
        (
            "md0",
            &StorageRule::TooFewRaidDevices {
                level: 5,
                needed: 3
            }
        )
    );
    let mut m = machine(StorageLayout::Flat, BootMethod::Pxe, Net::Dhcp);
    let root = m.storage.mounted_at("/").unwrap().clone();
    m.storage.filesystems.push(maas_core::storage::Filesystem {
        id: 77,
        fstype: FsType::Xfs,
        mount_point: Some("/srv".into()),
        ..root
    });
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(rule_of(&e), ("sda-part2", &StorageRule::VolumeInUse));
}

#[test]
fn disks_must_be_findable() {
    let mut m = machine(StorageLayout::Flat, BootMethod::Pxe, Net::Dhcp);
    m.block_devices[1].id_path.clear();
    let e = validate_for_deploy(&m).unwrap_err();
    assert_eq!(rule_of(&e), ("sdb", &StorageRule::UnidentifiableDisk));
}

#[test]
fn layout_parameters_are_checked() {
    let mut m = machine(StorageLayout::Blank, BootMethod::Uefi, Net::Dhcp);
    let cases = [
        (
            LayoutRequest {
                root_device: Some(42),
                ..LayoutRequest::new(StorageLayout::Flat)
            },
            "storage layout flat: root_device: no physical block device with id 42",
        ),
        (
            LayoutRequest {
                boot_size: Some(Size::Bytes(100 << 20)),
                ..LayoutRequest::new(StorageLayout::Lvm)
            },
            "storage layout lvm: boot_size:",
        ),
        (
            LayoutRequest {
                cache_device: Some(1),
                ..LayoutRequest::new(StorageLayout::Bcache)
            },
            "storage layout bcache: cache_device: sda is the boot disk",
        ),
        (
            LayoutRequest {
                cache_no_part: true,
                cache_size: Some(Size::Percent(10.0)),
                ..LayoutRequest::new(StorageLayout::Bcache)
            },
            "storage layout bcache: cache_size: cannot be combined with cache_no_part",
        ),
        (
            LayoutRequest {
                lv_size: Some(Size::Bytes(1 << 40)),
                ..LayoutRequest::new(StorageLayout::Lvm)
            },
            "storage layout lvm: lv_size:",
        ),
    ];
    for (req, want) in cases {
        let before = m.clone();
        let e = apply_layout(&mut m, &req).unwrap_err().to_string();
        assert!(e.starts_with(want), "got {e:?}, want prefix {want:?}");
        assert_eq!(m, before);
    }
    assert!(matches!(
        "zfs".parse::<StorageLayout>(),
        Err(Error::UnknownLayout(_))
    ));
    assert!("150%".parse::<Size>().is_err());
}
