//! The one error type of `maas-core`.

/// Errors from parsing and validating domain values.
///
/// Life-cycle refusals are not errors of this kind: actions return a
/// [`crate::Refusal`], which carries the HTTP status MAAS would answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a system id.
    #[error("invalid system id {0:?}")]
    InvalidSystemId(String),
    /// Not a MAC address.
    #[error("invalid MAC address {0:?}")]
    InvalidMacAddress(String),
    /// Not a node status integer, name or label.
    #[error("unknown node status {0:?}")]
    UnknownStatus(String),
    /// Not on/off/unknown/error.
    #[error("unknown power state {0:?}")]
    UnknownPowerState(String),
    /// Not a size in bytes (optionally with a unit) or a percentage.
    #[error(
        "invalid size {0:?}: expected bytes (such as 1048576, 512M, 10G, 2GiB) or a percentage (such as 50%)"
    )]
    InvalidSize(String),
    /// Not a storage layout MAAS knows.
    #[error("unknown storage layout {0:?} (expected flat, lvm, bcache, blank or custom)")]
    UnknownLayout(String),
    /// A storage layout parameter cannot be honoured.
    #[error("storage layout {layout}: {param}: {reason}")]
    LayoutParam {
        /// The layout (`flat`, `lvm`, `bcache`, …).
        layout: &'static str,
        /// The parameter (`root_size`, `cache_device`, …).
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A storage configuration breaks a deployment rule.
    #[error("storage: {device}: {rule}")]
    Storage {
        /// The device (disk, partition, volume group, …) or mount point at fault.
        device: String,
        /// The rule it breaks.
        rule: crate::storage::StorageRule,
    },
    /// A network configuration is inconsistent.
    #[error("network: interface {interface}: {reason}")]
    Network {
        /// The interface at fault.
        interface: String,
        /// What is wrong.
        reason: String,
    },
    /// The target OS cannot express part of the network configuration.
    #[error("network: interface {interface}: {feature} is not supported for {os}")]
    NetworkUnsupported {
        /// The operating system (`esxi`, …).
        os: String,
        /// The interface at fault.
        interface: String,
        /// The unsupported feature.
        feature: String,
    },
    /// A rendering input cannot be used (bad base64 user-data, …).
    #[error("render: {0}")]
    Render(String),
    /// A commissioning script's output cannot be read.
    #[error("commissioning output {script}: {reason}")]
    Commissioning {
        /// The script (or tool) whose output is at fault.
        script: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
