//! The one error type of `maas-server`.

/// Errors from running the server and its storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket or file operation failed.
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Opening a database connection failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// The connection pool could not hand out a connection.
    #[error("database pool: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Running the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A stored JSON document could not be (de)serialised.
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A blocking database task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
    /// A user or credential operation was refused.
    #[error("{0}")]
    Refused(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
