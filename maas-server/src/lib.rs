//! # maas-server: the `maasd` reference server
//!
//! Runs a MAAS region in one process: the REST API 2.0 under
//! `/MAAS/api/2.0/` that python-libmaas and its `maas` CLI use unchanged,
//! with OAuth 1.0 PLAINTEXT, the anonymous `describe` document generated
//! from the same route table that serves requests ([`api`]), and
//! persistence on SQLite (default, WAL) or PostgreSQL through one diesel
//! connection type ([`db`]). Machine life-cycle decisions come from
//! `maas_core::actions`; this crate persists them with an event each. The
//! metadata API under `/MAAS/metadata/` ([`metadata`]) serves cloud-init,
//! curtin and the ephemeral environment with per-node OAuth tokens.
//! Long operations are durable ([`workflow`]): an operation row and power
//! jobs written with the status change, a runner that drives the BMCs
//! through `maas-power`, fails machines at their deadlines and survives a
//! `kill -9`. The rack's DHCP, TFTP and HTTP boot services can run
//! in-process, answered from the database ([`rack`]). Boot images come
//! from a signed simplestreams mirror through MAAS's boot-source path:
//! `boot-resources/?op=import` runs maas-images in the background into the
//! one image store the rack serves from ([`images`]).
//!
//! ```
//! # async fn demo() -> maas_server::Result<()> {
//! let dir = std::env::temp_dir().join(format!("maasd-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(maas_server::Error::Io)?;
//! let state = maas_server::AppState::open(&dir.join("maas.db").display().to_string(), 2)?;
//! let app = maas_server::app(state);
//! # let _ = app;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![recursion_limit = "256"]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use maas_core::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod config;
pub mod controller;
pub mod db;
mod error;
pub mod images;
pub mod metadata;
pub mod oauth;
pub mod rack;
pub mod seed;
pub mod workflow;

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

/// Shared server state.
pub struct AppState {
    /// Database pool.
    pub pool: db::Pool,
    /// Route table and describe hash.
    pub api: api::Api,
    /// OAuth nonces seen inside the timestamp window.
    pub nonces: oauth::NonceStore,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Largest accepted API request body in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// The boot-image store and its import (`boot-resources/?op=import`).
    pub images: images::Images,
    /// This process as MAAS's region and rack controller node.
    pub controller: controller::Controller,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("pool", &self.pool)
            .field("api_hash", &self.api.hash)
            .finish()
    }
}

impl AppState {
    /// Opens (and migrates) the database at `url` and seeds MAAS's default
    /// objects.
    pub fn open(url: &str, pool_size: u32) -> Result<Arc<AppState>> {
        Self::open_with(url, pool_size, config::DEFAULT_MAX_BODY_BYTES)
    }

    /// [`AppState::open`] with a request body limit.
    pub fn open_with(url: &str, pool_size: u32, max_body_bytes: usize) -> Result<Arc<AppState>> {
        let pool = db::Pool::open(url, pool_size)?;
        {
            let mut conn = pool.get()?;
            conn.write_tx(|c| {
                api::resources::ensure_defaults(c)?;
                controller::ensure_system_id(c).map(drop)
            })?;
        }
        Ok(Arc::new(AppState {
            pool,
            api: api::Api::new(),
            nonces: oauth::NonceStore::default(),
            clock: Arc::new(SystemClock),
            max_body_bytes,
            images: images::Images::default(),
            controller: controller::Controller::default(),
        }))
    }
}

/// The HTTP application.
pub fn app(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/MAAS/api/version/", get(api_version_text))
        .route("/MAAS/api/2.0/describe/", get(describe))
        .route("/MAAS/api/2.0/openapi.json", get(openapi))
        .route("/MAAS/accounts/authenticate/", any(authenticate))
        .route("/MAAS/api/1.0/{*rest}", any(api_gone))
        .route("/MAAS/api/2.0/{*rest}", any(api_dispatch))
        .route("/MAAS/metadata", any(metadata::handle))
        .route("/MAAS/metadata/", any(metadata::handle))
        .route("/MAAS/metadata/{*rest}", any(metadata::handle))
        .route("/metrics", get(metrics))
        // Every refusal carries a message, also for paths and methods no
        // route knows (axum's defaults have empty bodies).
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // The body limit holds on every route: extractors stop at it, and
        // a Content-Length above it is refused before anything is read.
        .layer(axum::middleware::from_fn_with_state(
            limit,
            refuse_announced_overflow,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// 413 for a request whose Content-Length is over `limit`, without waiting
/// for a body that may never come.
async fn refuse_announced_overflow(
    State(limit): State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    next.run(req).await
}

async fn no_route(uri: axum::http::Uri) -> Response {
    api::ApiError::not_found(format!("Unknown path: {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Method {method} is not allowed on {}.", uri.path()),
    )
        .into_response()
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Request body too large: the limit is {limit} bytes."),
    )
        .into_response()
}

async fn api_version_text() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "2.0")
}

async fn api_gone() -> impl IntoResponse {
    (
        StatusCode::GONE,
        "The 1.0 API is no longer available. Please use API version 2.0.",
    )
}

/// The describe document: exactly `application/json` (the `maas` CLI
/// compares the raw header).
async fn describe(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = api::base_url(&headers);
    let body = state.api.describe(&base).to_string();
    let mut res = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&state.api.hash) {
        res.headers_mut().insert("X-MAAS-API-Hash", v);
    }
    res
}

/// The OpenAPI document (beyond MAAS), anonymous like `describe`.
async fn openapi(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = api::base_url(&headers);
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.api.openapi(&base).to_string(),
    )
        .into_response()
}

async fn api_dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let limit = state.max_body_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        // http-body-util's `LengthLimitError` (chunked bodies that grow
        // past the limit) only shows through its message here.
        Err(e) if e.to_string().contains("length limit exceeded") => return too_large(limit),
        Err(e) => {
            return api::ApiError::bad_request(format!("Unreadable body: {e}")).into_response();
        }
    };
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let res = api::dispatch(
        state,
        parts.method,
        parts.uri.path().to_owned(),
        parts.uri.query().map(str::to_owned),
        parts.headers,
        body,
    )
    .await;
    // The path only: query strings and bodies may carry credentials.
    tracing::debug!(%method, %path, status = res.status().as_u16(), "API request");
    res
}

/// `POST /MAAS/accounts/authenticate/`: password login returning a token.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return method_not_allowed(method, uri).await;
    }
    let params = match api::read_params(uri.query(), &headers, &body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let consumer = params.get_nonempty("consumer");
    let now_ms = state.clock.now().as_millis();
    let res = state
        .pool
        .run(move |conn| {
            conn.write_tx(|conn| {
                let Some(user) = db::users::by_name(conn, &username)? else {
                    return Ok(None);
                };
                if username == api::machines::NODE_INIT_USER
                    || !db::users::verify_password(&password, &user.password_hash)
                {
                    return Ok(None);
                }
                let tokens = db::users::tokens_of(conn, &user.username)?;
                let existing = match &consumer {
                    Some(name) => tokens.into_iter().find(|t| &t.name == name),
                    None => tokens.into_iter().next(),
                };
                let t = match existing {
                    Some(t) => t,
                    None => db::users::create_token(
                        conn,
                        &user.username,
                        consumer.as_deref().unwrap_or("API token"),
                        now_ms,
                    )?,
                };
                Ok::<_, Error>(Some(t))
            })
        })
        .await;
    match res {
        Ok(Some(t)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "consumer_key": t.consumer_key,
                "token_key": t.token_key,
                "token_secret": t.token_secret,
                "name": t.name,
            })
            .to_string(),
        )
            .into_response(),
        Ok(None) => api::ApiError::forbidden("Invalid username or password.").into_response(),
        Err(e) => api::ApiError::from(e).into_response(),
    }
}

/// `/metrics` in Prometheus text format (beyond MAAS).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let res = state
        .pool
        .run(|conn| {
            let counts: std::collections::BTreeMap<u8, i64> = db::machines::count_by_status(conn)?
                .into_iter()
                .filter_map(|(s, n)| Some((u8::try_from(s).ok()?, n)))
                .collect();
            Ok(counts)
        })
        .await;
    match res {
        Ok(counts) => {
            let mut out = String::from(
                "# HELP maas_machines Machines by status.\n# TYPE maas_machines gauge\n",
            );
            for s in maas_core::NodeStatus::ALL {
                out.push_str(&format!(
                    "maas_machines{{status=\"{}\"}} {}\n",
                    s.name().to_ascii_lowercase(),
                    counts.get(&s.as_int()).copied().unwrap_or(0)
                ));
            }
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
        }
        Err(e) => api::ApiError::from(e).into_response(),
    }
}

/// Serves the API on an already-bound listener until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Io)
}

/// Binds `addr` and serves until `shutdown` is cancelled.
pub async fn bind_and_serve(
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> Result<()> {
    let listener = TcpListener::bind(addr).await.map_err(Error::Io)?;
    let local = listener.local_addr().map_err(Error::Io)?;
    state.controller.set_listen(local);
    tracing::info!(addr = %local, "maasd API listening");
    serve(listener, state, shutdown).await
}
