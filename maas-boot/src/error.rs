//! The one error type of this crate.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that does not follow the rules of the protocol or format.
    #[error("invalid input: {0}")]
    Invalid(String),

    // --- DHCP ---
    /// A DHCP server configuration that cannot work (overlapping or empty ranges, …).
    #[error("invalid DHCP configuration: {0}")]
    DhcpConfig(String),
    /// The lease store could not be read or written.
    #[error("DHCP lease store {path}: {source}")]
    LeaseStore {
        /// The file involved.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A line of the lease log that cannot be parsed.
    #[error("DHCP lease store {path} line {line}: {reason}")]
    LeaseLog {
        /// The file involved.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The DHCP socket failed.
    #[error("DHCP socket: {0}")]
    DhcpSocket(#[source] std::io::Error),

    // --- TFTP / HTTP boot ---
    /// A requested boot file does not exist (TFTP error 1, HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// A request the server refuses: a path escaping the tree, a write (TFTP error 2, HTTP 403).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// An I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] with context.
    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
