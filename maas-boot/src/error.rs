//! The one error type of this crate.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that does not follow the rules of the protocol or format.
    #[error("invalid input: {0}")]
    Invalid(String),
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
