//! What a machine should boot: the boot purpose derived from its status, and
//! its firmware's boot method.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::status::{NodeStatus, NodeType};

/// What the rack should hand a netbooting machine (MAAS `get_boot_purpose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootPurpose {
    /// Unknown MAC: boot the commissioning image to enlist (hostname `maas-enlist`).
    Enlist,
    /// Boot the ephemeral environment: commissioning, testing, erasing, releasing, rescue.
    Commissioning,
    /// Boot the ephemeral environment to install the OS (curtin).
    Xinstall,
    /// Boot from the local disk.
    Local,
    /// Power the machine off.
    Poweroff,
}

impl BootPurpose {
    /// The name used in boot-config templates and the API (`xinstall`, `local`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BootPurpose::Enlist => "enlist",
            BootPurpose::Commissioning => "commissioning",
            BootPurpose::Xinstall => "xinstall",
            BootPurpose::Local => "local",
            BootPurpose::Poweroff => "poweroff",
        }
    }
}

impl fmt::Display for BootPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The statuses in which a netbooting machine gets the ephemeral environment
/// (MAAS's "commissioning-like" set).
pub const COMMISSIONING_LIKE: [NodeStatus; 7] = [
    NodeStatus::New,
    NodeStatus::Commissioning,
    NodeStatus::DiskErasing,
    NodeStatus::EnteringRescueMode,
    NodeStatus::Releasing,
    NodeStatus::RescueMode,
    NodeStatus::Testing,
];

/// The boot purpose for a netbooting machine; `None` is a MAC nobody knows.
pub fn boot_purpose(machine: Option<&Machine>) -> BootPurpose {
    let Some(m) = machine else {
        return BootPurpose::Enlist;
    };
    if m.node_type != NodeType::Machine {
        return BootPurpose::Local;
    }
    match m.status {
        s if COMMISSIONING_LIKE.contains(&s) => BootPurpose::Commissioning,
        NodeStatus::Deploying if m.netboot => BootPurpose::Xinstall,
        NodeStatus::Deploying | NodeStatus::Deployed => BootPurpose::Local,
        _ => BootPurpose::Poweroff,
    }
}

/// The machine's firmware boot method (`bios_boot_method` in the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMethod {
    /// Legacy BIOS with PXE.
    #[default]
    Pxe,
    /// UEFI.
    Uefi,
    /// ppc64el OpenFirmware (PReP partition).
    OpenFirmware,
    /// IBM POWER (petitboot).
    Powernv,
    /// s390x (IBM Z).
    S390x,
}

impl BootMethod {
    /// The API string (`pxe`, `uefi`, `open-firmware`, `powernv`, `s390x`).
    pub fn as_str(self) -> &'static str {
        match self {
            BootMethod::Pxe => "pxe",
            BootMethod::Uefi => "uefi",
            BootMethod::OpenFirmware => "open-firmware",
            BootMethod::Powernv => "powernv",
            BootMethod::S390x => "s390x",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_follows_status() {
        assert_eq!(boot_purpose(None), BootPurpose::Enlist);
        let mut m = Machine::default();
        for st in NodeStatus::ALL {
            m.status = st;
            m.netboot = true;
            let want = match st {
                s if COMMISSIONING_LIKE.contains(&s) => BootPurpose::Commissioning,
                NodeStatus::Deploying => BootPurpose::Xinstall,
                NodeStatus::Deployed => BootPurpose::Local,
                _ => BootPurpose::Poweroff,
            };
            assert_eq!(boot_purpose(Some(&m)), want, "{st:?}");
        }
        m.status = NodeStatus::Deploying;
        m.netboot = false;
        assert_eq!(boot_purpose(Some(&m)), BootPurpose::Local);
        m.node_type = NodeType::Device;
        m.status = NodeStatus::Ready;
        assert_eq!(boot_purpose(Some(&m)), BootPurpose::Local);
    }
}
