//! Node statuses, node types and power states, with MAAS's integers and labels.
//!
//! python-libmaas converts these integers with its own enums and raises on an
//! unknown value, so every integer and label here is part of the wire contract.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

macro_rules! node_statuses {
    ($($variant:ident = $n:literal, $name:literal, $label:literal, $simple:ident;)*) => {
        /// A node's life-cycle status (MAAS `NODE_STATUS`), serialised as its integer.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum NodeStatus {
            $(
                #[doc = $label]
                $variant = $n,
            )*
        }

        impl NodeStatus {
            /// All 23 statuses in integer order.
            pub const ALL: [NodeStatus; 23] = [$(NodeStatus::$variant,)*];

            /// The status with MAAS's integer `n`.
            pub fn from_int(n: i64) -> Option<Self> {
                match n {
                    $($n => Some(NodeStatus::$variant),)*
                    _ => None,
                }
            }

            /// MAAS's constant name, such as `FAILED_COMMISSIONING`.
            pub fn name(self) -> &'static str {
                match self {
                    $(NodeStatus::$variant => $name,)*
                }
            }

            /// The API's `status_name`, such as `Failed commissioning`.
            pub fn label(self) -> &'static str {
                match self {
                    $(NodeStatus::$variant => $label,)*
                }
            }

            /// The simplified status the UI and `simple_status` filter use.
            pub fn simple(self) -> SimpleStatus {
                match self {
                    $(NodeStatus::$variant => SimpleStatus::$simple,)*
                }
            }
        }
    };
}

node_statuses! {
    New = 0, "NEW", "New", New;
    Commissioning = 1, "COMMISSIONING", "Commissioning", Commissioning;
    FailedCommissioning = 2, "FAILED_COMMISSIONING", "Failed commissioning", Failed;
    Missing = 3, "MISSING", "Missing", Other;
    Ready = 4, "READY", "Ready", Ready;
    Reserved = 5, "RESERVED", "Reserved", Other;
    Deployed = 6, "DEPLOYED", "Deployed", Deployed;
    Retired = 7, "RETIRED", "Retired", Other;
    Broken = 8, "BROKEN", "Broken", Broken;
    Deploying = 9, "DEPLOYING", "Deploying", Deploying;
    Allocated = 10, "ALLOCATED", "Allocated", Allocated;
    FailedDeployment = 11, "FAILED_DEPLOYMENT", "Failed deployment", Failed;
    Releasing = 12, "RELEASING", "Releasing", Releasing;
    FailedReleasing = 13, "FAILED_RELEASING", "Releasing failed", Failed;
    DiskErasing = 14, "DISK_ERASING", "Disk erasing", Releasing;
    FailedDiskErasing = 15, "FAILED_DISK_ERASING", "Failed disk erasing", Failed;
    RescueMode = 16, "RESCUE_MODE", "Rescue mode", RescueMode;
    EnteringRescueMode = 17, "ENTERING_RESCUE_MODE", "Entering rescue mode", RescueMode;
    FailedEnteringRescueMode = 18, "FAILED_ENTERING_RESCUE_MODE", "Failed to enter rescue mode", Failed;
    ExitingRescueMode = 19, "EXITING_RESCUE_MODE", "Exiting rescue mode", RescueMode;
    FailedExitingRescueMode = 20, "FAILED_EXITING_RESCUE_MODE", "Failed to exit rescue mode", Failed;
    Testing = 21, "TESTING", "Testing", Testing;
    FailedTesting = 22, "FAILED_TESTING", "Failed testing", Failed;
}

impl NodeStatus {
    /// MAAS's integer for this status.
    pub fn as_int(self) -> u8 {
        self as u8
    }

    /// Whether this is one of the seven failure statuses of the failure map,
    /// or failed releasing.
    pub fn is_failed(self) -> bool {
        self.simple() == SimpleStatus::Failed
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for NodeStatus {
    type Err = Error;

    /// Accepts the integer, the constant name (any case) or the label.
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Self::from_int(n).ok_or_else(|| Error::UnknownStatus(s.to_owned()));
        }
        let norm = t.replace([' ', '-'], "_").to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|st| st.name() == norm || st.label().eq_ignore_ascii_case(t))
            .ok_or_else(|| Error::UnknownStatus(s.to_owned()))
    }
}

impl Serialize for NodeStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_int())
    }
}

impl<'de> Deserialize<'de> for NodeStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Self::from_int(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown node status {n}")))
    }
}

/// The simplified status (`simple_status` filter, UI groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SimpleStatus {
    /// New machines.
    New,
    /// Commissioning.
    Commissioning,
    /// Any failed status.
    Failed,
    /// Ready.
    Ready,
    /// Allocated.
    Allocated,
    /// Deploying.
    Deploying,
    /// Deployed.
    Deployed,
    /// Releasing or disk erasing.
    Releasing,
    /// Broken.
    Broken,
    /// Rescue mode and its transitions.
    RescueMode,
    /// Testing.
    Testing,
    /// Missing, reserved, retired.
    Other,
}

impl SimpleStatus {
    /// The label MAAS shows.
    pub fn label(self) -> &'static str {
        match self {
            SimpleStatus::New => "New",
            SimpleStatus::Commissioning => "Commissioning",
            SimpleStatus::Failed => "Failed",
            SimpleStatus::Ready => "Ready",
            SimpleStatus::Allocated => "Allocated",
            SimpleStatus::Deploying => "Deploying",
            SimpleStatus::Deployed => "Deployed",
            SimpleStatus::Releasing => "Releasing",
            SimpleStatus::Broken => "Broken",
            SimpleStatus::RescueMode => "Rescue Mode",
            SimpleStatus::Testing => "Testing",
            SimpleStatus::Other => "Other",
        }
    }
}

/// What kind of node a row is (MAAS `NODE_TYPE`), serialised as its integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum NodeType {
    /// A machine MAAS manages.
    #[default]
    Machine = 0,
    /// A device (not deployable).
    Device = 1,
    /// A rack controller.
    RackController = 2,
    /// A region controller.
    RegionController = 3,
    /// A region and rack controller.
    RegionAndRackController = 4,
}

impl NodeType {
    /// All node types in integer order.
    pub const ALL: [NodeType; 5] = [
        NodeType::Machine,
        NodeType::Device,
        NodeType::RackController,
        NodeType::RegionController,
        NodeType::RegionAndRackController,
    ];

    /// The type with MAAS's integer `n`.
    pub fn from_int(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as i64 == n)
    }

    /// MAAS's integer.
    pub fn as_int(self) -> u8 {
        self as u8
    }

    /// The API's `node_type_name`.
    pub fn label(self) -> &'static str {
        match self {
            NodeType::Machine => "Machine",
            NodeType::Device => "Device",
            NodeType::RackController => "Rack controller",
            NodeType::RegionController => "Region controller",
            NodeType::RegionAndRackController => "Region and rack controller",
        }
    }
}

impl Serialize for NodeType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_int())
    }
}

impl<'de> Deserialize<'de> for NodeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Self::from_int(n).ok_or_else(|| serde::de::Error::custom(format!("unknown node type {n}")))
    }
}

/// A machine's power state as MAAS reports it: `on`, `off`, `unknown` or `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
    /// Not known (never queried, or the driver cannot query).
    #[default]
    Unknown,
    /// The last query failed.
    Error,
}

impl PowerState {
    /// `on`, `off`, `unknown` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PowerState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(PowerState::On),
            "off" => Ok(PowerState::Off),
            "unknown" => Ok(PowerState::Unknown),
            "error" => Ok(PowerState::Error),
            _ => Err(Error::UnknownPowerState(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_maas_integers() {
        for (i, st) in NodeStatus::ALL.iter().enumerate() {
            assert_eq!(st.as_int() as usize, i);
            assert_eq!(NodeStatus::from_int(i as i64), Some(*st));
        }
        assert_eq!(NodeStatus::from_int(23), None);
        assert_eq!(NodeStatus::from_int(-1), None);
    }

    #[test]
    fn labels_follow_maas() {
        assert_eq!(NodeStatus::FailedReleasing.label(), "Releasing failed");
        assert_eq!(
            NodeStatus::FailedEnteringRescueMode.label(),
            "Failed to enter rescue mode"
        );
        assert_eq!(NodeStatus::DiskErasing.simple(), SimpleStatus::Releasing);
        assert_eq!(NodeStatus::Missing.simple().label(), "Other");
        assert_eq!(
            NodeType::RegionAndRackController.label(),
            "Region and rack controller"
        );
    }

    #[test]
    fn parse_and_serde() {
        assert_eq!(
            "Failed testing".parse::<NodeStatus>().unwrap(),
            NodeStatus::FailedTesting
        );
        assert_eq!(
            "failed_testing".parse::<NodeStatus>().unwrap(),
            NodeStatus::FailedTesting
        );
        assert_eq!("6".parse::<NodeStatus>().unwrap(), NodeStatus::Deployed);
        assert!("bogus".parse::<NodeStatus>().is_err());
        assert_eq!(serde_json::to_string(&NodeStatus::Ready).unwrap(), "4");
        assert_eq!(
            serde_json::from_str::<NodeStatus>("9").unwrap(),
            NodeStatus::Deploying
        );
        assert!(serde_json::from_str::<NodeStatus>("23").is_err());
        assert_eq!(
            serde_json::to_string(&PowerState::Error).unwrap(),
            "\"error\""
        );
        assert_eq!(serde_json::to_string(&NodeType::Device).unwrap(), "1");
    }
}
