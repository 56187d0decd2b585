//! The one error type of this crate, and which of its variants are fatal.
//!
//! MAAS splits power errors into fatal ones (bad credentials, bad settings, a
//! missing tool: retrying cannot help) and transient ones (the BMC did not
//! answer, the connection dropped). [`Error::is_fatal`] carries that split to
//! the retry policy. No variant ever holds a secret: messages are built from
//! parameter *names* and BMC replies, never from passwords or tokens.

use std::time::Duration;

/// Everything that can go wrong while driving a BMC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that does not follow the rules of the protocol or format.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Power parameters that cannot work (missing, not one of the choices,
    /// malformed address). Fatal: retrying with the same settings is pointless.
    #[error("bad power settings: {0}")]
    Settings(String),
    /// No driver is registered under this power type.
    #[error("unknown power type {0:?}")]
    UnknownPowerType(String),
    /// The BMC refused the credentials. Fatal.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The driver or this BMC cannot do the requested action. Fatal.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// An external program the driver needs is not installed. Fatal.
    #[error("{program} not found (install the Debian package {package})")]
    ToolMissing {
        /// The program that was looked for.
        program: String,
        /// Where it comes from.
        package: String,
    },
    /// The BMC could not be reached or dropped the connection. Retried.
    #[error("cannot reach the BMC: {0}")]
    Connection(String),
    /// The BMC answered, but with an error or something we cannot use. Retried.
    #[error("BMC error: {0}")]
    Bmc(String),
    /// A single call took longer than the policy allows. Retried.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The action succeeded but the machine never reached the wanted state
    /// within the retry schedule.
    #[error("machine did not reach power state {wanted} (last seen {seen})")]
    NotConfirmed {
        /// The state the action should have produced.
        wanted: maas_core::PowerState,
        /// The last state a query returned.
        seen: maas_core::PowerState,
    },
}

impl Error {
    /// True when retrying the same call with the same parameters cannot
    /// succeed (MAAS's `PowerFatalError` family).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_)
                | Error::Settings(_)
                | Error::UnknownPowerType(_)
                | Error::Auth(_)
                | Error::Unsupported(_)
                | Error::ToolMissing { .. }
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
