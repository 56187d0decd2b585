//! # maas-server: the `maasd` reference server
//!
//! Runs a MAAS region and rack in one process: the REST API 2.0 under
//! `/MAAS/api/2.0/`, the metadata API, durable workflows and the rack's
//! DHCP/TFTP/HTTP boot services. This first cut serves the anonymous
//! `version` endpoints; the API issue fills in the rest.
#![warn(missing_docs)]

use std::net::SocketAddr;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod error;

pub use error::{Error, Result};

/// The MAAS version this server reports (PEP 440-clean, python-libmaas parses it).
pub const MAAS_VERSION: &str = "3.6.0";

/// Capabilities python-libmaas and the CLI look for in `version/`.
pub const CAPABILITIES: &[&str] = &[
    "networks-management",
    "static-ipaddresses",
    "ipv6-deployment-ubuntu",
    "devices-management",
    "storage-deployment-ubuntu",
    "network-deployment-ubuntu",
    "bridging-interface-ubuntu",
    "bridging-automatic-ubuntu",
    "authenticate-api",
];

/// The HTTP application.
pub fn app() -> Router {
    Router::new()
        .route("/MAAS/api/version/", get(api_version_text))
        .route("/MAAS/api/2.0/version/", get(version))
}

async fn api_version_text() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "2.0")
}

async fn version() -> impl IntoResponse {
    Json(serde_json::json!({
        "capabilities": CAPABILITIES,
        "version": MAAS_VERSION,
        "subversion": "",
    }))
}

/// Serves the API on an already-bound listener until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
    axum::serve(listener, app())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Io)
}

/// Binds `addr` and serves until `shutdown` is cancelled.
pub async fn bind_and_serve(addr: SocketAddr, shutdown: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(addr).await.map_err(Error::Io)?;
    tracing::info!(addr = %listener.local_addr().map_err(Error::Io)?, "maasd API listening");
    serve(listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn version_is_anonymous_json_with_authenticate_api() {
        let res = app()
            .oneshot(
                Request::get("/MAAS/api/2.0/version/")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "authenticate-api")
        );
        assert_eq!(v["version"], MAAS_VERSION);
    }
}
