//! The HTTP clients the webhook and Redfish drivers share: one that
//! verifies TLS certificates and one that does not (MAAS's default for BMCs,
//! which mostly carry self-signed certificates).

use std::time::Duration;

use crate::error::{Error, Result};

/// `User-Agent` sent to BMCs and webhooks; MAAS sends `MAAS <version>`.
pub const USER_AGENT: &str = concat!("MAAS maas-rs/", env!("CARGO_PKG_VERSION"));

/// A pair of clients, picked per call by the verify-TLS setting.
#[derive(Debug, Clone)]
pub struct HttpClients {
    verifying: reqwest::Client,
    insecure: reqwest::Client,
}

impl HttpClients {
    /// Builds both clients.
    pub fn new() -> Result<Self> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(Duration::from_secs(10))
                .danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| Error::Invalid(format!("cannot build HTTP client: {e}")))
        };
        Ok(Self {
            verifying: build(false)?,
            insecure: build(true)?,
        })
    }

    /// The client for `verify_tls`.
    pub fn get(&self, verify_tls: bool) -> &reqwest::Client {
        if verify_tls {
            &self.verifying
        } else {
            &self.insecure
        }
    }
}

/// Maps a transport error to ours; reqwest errors never contain the
/// Authorization header, and URLs with credentials are stripped.
pub fn transport(e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_builder() {
        Error::Settings(format!("bad URL or request: {e}"))
    } else {
        Error::Connection(e.to_string())
    }
}

/// Maps an HTTP error status to ours: 401/403 are fatal credential errors.
pub fn status_error(status: reqwest::StatusCode, what: &str) -> Error {
    match status.as_u16() {
        401 | 403 => Error::Auth(format!("{what}: HTTP {status}")),
        _ => Error::Bmc(format!("{what}: HTTP {status}")),
    }
}
