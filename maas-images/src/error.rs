//! The one error type of this crate.

use std::path::PathBuf;

use crate::verify::SignatureFailure;

/// Everything that can go wrong while reading, verifying, selecting,
/// downloading or storing boot images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A simplestreams document that is not valid JSON or not the expected shape.
    #[error("invalid simplestreams document {document}: {reason}")]
    Document {
        /// Which document (URL or path).
        document: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A keyring that could not be read or holds no usable certificate.
    #[error("invalid keyring: {0}")]
    Keyring(String),
    /// A document whose OpenPGP signature did not verify.
    #[error("signature check failed for {document}: {failure}")]
    Signature {
        /// Which document (URL or path).
        document: String,
        /// Why it was rejected.
        failure: SignatureFailure,
    },
    /// Input that breaks a rule (a selection, a digest, a source definition).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// No enabled boot source is configured.
    #[error("no enabled boot source is configured")]
    NoSource,
    /// MAAS manages images from exactly one boot source.
    #[error(
        "{} boot sources are enabled ({}); MAAS imports from a single source: disable all but one",
        .0.len(), .0.join(", ")
    )]
    MultipleSources(Vec<String>),
    /// A URL scheme the fetcher does not speak.
    #[error("unsupported URL {0}: only http, https and file are supported")]
    UnsupportedUrl(String),
    /// A transfer that failed (connection, HTTP status, I/O on the source).
    #[error("download of {url} failed: {reason}")]
    Download {
        /// What was being fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A document larger than the limit for documents.
    #[error("{url} is larger than {limit} bytes")]
    TooLarge {
        /// What was being fetched.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A downloaded or uploaded file whose size differs from what was announced.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The file.
        what: String,
        /// Size from the product stream.
        expected: u64,
        /// Size received.
        actual: u64,
    },
    /// A downloaded or uploaded file whose sha256 differs from what was announced.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The file.
        what: String,
        /// Digest from the product stream.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// The sync was cancelled; partial files stay for the next run to resume.
    #[error("sync cancelled")]
    Cancelled,
    /// A local file-system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
