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
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
