//! The metadata API under `/MAAS/metadata/`: what machines speak to.
//!
//! cloud-init's MAAS datasource reads `meta-data/…` and `user-data` with the
//! node's OAuth token; the ephemeral environment fetches its preseed
//! (`by-id/<id>/?op=get_preseed`), its scripts (`maas-scripts`) and reports
//! with multipart `op=signal`; cloud-init and curtin post events to the
//! status webhook `status/<system_id>`; curtin's late command posts
//! `op=netboot_off`. Unknown machines get the anonymous enlistment answers.
//!
//! This module owns the URL map (versions `latest` and `2012-03-01`, extra
//! slashes tolerated, anything else 404 as MAAS), node authentication and
//! the replies; [`node`] the per-node endpoints, [`curtin`] the installer's
//! configuration, [`erase`] the disk-erasing scripts, [`status`] the webhook,
//! [`scripts`] the script catalogue, [`results`] the script results tables
//! and [`rest`] their REST API side (`scripts/`, `nodes/{id}/results/`). Every report becomes
//! a `maas_core::signals::Event`, and its outcome is persisted through
//! [`crate::api::machine_ops::commit_outcome`], the same path the REST
//! API's actions take.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maas_core::SystemId;
use maas_core::render::{NodeToken, RenderContext};

use crate::AppState;
use crate::api::machines::NODE_INIT_USER;
use crate::api::{ApiError, Params};
use crate::db::machines::{self as dbm, StoredMachine};
use crate::db::users::{self, Token};
use crate::db::{DbConn, objects};
use crate::oauth;

pub mod curtin;
pub mod erase;
pub mod node;
pub mod rest;
pub mod results;
pub mod scripts;
pub mod status;

/// Metadata versions MAAS serves, in the order the index lists them.
pub const VERSIONS: [&str; 2] = ["latest", "2012-03-01"];

/// A successful metadata answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaReply {
    /// A body with its status and content type. A 404 is a reply, not an
    /// error, where MAAS commits a change before answering it (user-data).
    Body(u16, &'static str, Vec<u8>),
    /// 204.
    NoContent,
}

impl MetaReply {
    /// 200 `text/plain`.
    pub fn text(s: impl Into<String>) -> Self {
        MetaReply::Body(200, "text/plain", s.into().into_bytes())
    }

    fn into_response(self) -> Response {
        match self {
            MetaReply::Body(st, ct, b) => (
                StatusCode::from_u16(st).unwrap_or(StatusCode::OK),
                [(header::CONTENT_TYPE, ct)],
                b,
            )
                .into_response(),
            MetaReply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// Everything a metadata handler gets for one request.
#[derive(Debug)]
pub struct Req<'a> {
    /// Server state.
    pub state: &'a AppState,
    /// HTTP method.
    pub method: &'a Method,
    /// Path segments after `/MAAS/metadata/`, empty ones dropped.
    pub segs: &'a [String],
    /// Query and body parameters.
    pub params: &'a Params,
    /// The raw body (webhook JSON).
    pub body: &'a [u8],
    /// The `Authorization` header.
    pub auth: Option<&'a str>,
    /// `http://host:port` the request came to.
    pub base: &'a str,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

impl Req<'_> {
    /// The value of `op`, if any.
    pub fn op(&self) -> Option<String> {
        self.params.get_nonempty("op")
    }

    /// The render context for `m` with its token: URLs point back at the
    /// address the machine reached us on.
    pub fn render_ctx(&self, token: Option<&Token>) -> RenderContext {
        RenderContext {
            maas_url: format!("{}/MAAS", self.base),
            token: token
                .map(|t| NodeToken {
                    consumer_key: t.consumer_key.clone(),
                    token_key: t.token_key.clone(),
                    token_secret: t.token_secret.clone(),
                })
                .unwrap_or_default(),
            curtin_verbose: true,
            ..Default::default()
        }
    }
}

/// What a deployed machine's configuration takes from the database beyond
/// the machine record: the APT settings (archives, repositories, proxy),
/// the static routes and curtin's verbosity. One place for the curtin
/// user-data, the vendor data and the API's `get_curtin_config`.
pub fn add_deployment_settings(
    conn: &mut DbConn,
    m: &maas_core::Machine,
    ctx: &mut RenderContext,
) -> Result<(), ApiError> {
    ctx.apt = crate::api::repos::apt_for_machine(conn, m)?;
    ctx.static_routes = crate::api::spaces::render_routes(conn)?;
    ctx.curtin_verbose = crate::api::resources::config_bool(conn, "curtin_verbose", true)?;
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::not_found("Not found")
}

/// The machine a node token belongs to (`node:<system_id>` tokens of the
/// node-init user).
pub fn machine_of_token(
    conn: &mut DbConn,
    token: &Token,
) -> Result<Option<StoredMachine>, ApiError> {
    if token.username != NODE_INIT_USER {
        return Ok(None);
    }
    let Some(sid) = token
        .name
        .strip_prefix("node:")
        .and_then(|s| s.parse::<SystemId>().ok())
    else {
        return Ok(None);
    };
    Ok(dbm::get(conn, &sid)?)
}

/// Authenticates a node request: `Ok(None)` when anonymous, 401 when the
/// credentials are wrong or not a node's.
pub fn authenticate_node(
    conn: &mut DbConn,
    req: &Req<'_>,
) -> Result<Option<(Token, StoredMachine)>, ApiError> {
    let Some(h) = req.auth else { return Ok(None) };
    let p = oauth::parse_header(h).map_err(|_| {
        ApiError::unauthorized("Authorization Error: invalid or missing OAuth parameters")
    })?;
    oauth::check_fresh(&p, req.now_ms.div_euclid(1000), &req.state.nonces).map_err(
        |e| match e {
            oauth::OAuthRejection::BadTimestamp => {
                ApiError::bad_request("Invalid timestamp: not an integer.")
            }
            _ => ApiError::unauthorized("Authorization Error: invalid OAuth credentials"),
        },
    )?;
    let token = users::token_by_key(conn, &p.token)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: Invalid access token"))?;
    if !oauth::signature_matches(&p, &token.consumer_key, &token.token_secret) {
        return Err(ApiError::unauthorized(
            "Authorization Error: invalid OAuth signature",
        ));
    }
    let sm = machine_of_token(conn, &token)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: not a node token"))?;
    Ok(Some((token, sm)))
}

/// Like [`authenticate_node`] but refusing anonymous callers.
pub fn require_node(conn: &mut DbConn, req: &Req<'_>) -> Result<(Token, StoredMachine), ApiError> {
    authenticate_node(conn, req)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: not authenticated"))
}

/// Splits the part of the path after `/MAAS/metadata` into segments,
/// dropping empty ones (MAAS tolerates repeated slashes).
pub fn segments(rest: &str) -> Vec<String> {
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Routes one request. Runs on a blocking thread inside a write
/// transaction (reads such as `user-data` change state too).
pub fn route(conn: &mut DbConn, req: &Req<'_>) -> Result<MetaReply, ApiError> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [] => Ok(MetaReply::text(VERSIONS.join("\n"))),
        ["status", sid] => status::webhook(conn, req, sid),
        ["curtin", v, rest @ ..] => versioned(conn, req, v, rest, true),
        ["enlist", v, rest @ ..] => {
            check_version(v)?;
            node::anonymous(req, rest)
        }
        [v, rest @ ..] => versioned(conn, req, v, rest, false),
    }
}

fn check_version(v: &str) -> Result<(), ApiError> {
    if VERSIONS.contains(&v) {
        Ok(())
    } else {
        Err(not_found())
    }
}

fn versioned(
    conn: &mut DbConn,
    req: &Req<'_>,
    v: &str,
    rest: &[&str],
    curtin: bool,
) -> Result<MetaReply, ApiError> {
    check_version(v)?;
    match rest {
        ["by-id", sid] => node::by_id(conn, req, sid),
        ["enlist-preseed"] => node::enlist_preseed(conn, req),
        _ => match authenticate_node(conn, req)? {
            None => node::anonymous(req, rest),
            Some((token, sm)) => node::node(conn, req, token, sm, rest, curtin),
        },
    }
}

/// Keeps the MAC registry (MAC → system id) in step with a machine whose
/// interfaces changed.
pub fn sync_macs(
    conn: &mut DbConn,
    sid: &SystemId,
    changes: &maas_core::hardware::commissioning::MacChanges,
) -> Result<(), ApiError> {
    for mac in &changes.removed {
        if let Some(o) = objects::by_name(conn, "mac", &mac.colon())?
            && o.data.get("system_id") == Some(&serde_json::json!(sid.as_str()))
        {
            objects::delete(conn, "mac", o.id)?;
        }
    }
    for mac in &changes.added {
        if objects::by_name(conn, "mac", &mac.colon())?.is_none() {
            let mut d = serde_json::Map::new();
            d.insert("system_id".into(), serde_json::json!(sid.as_str()));
            objects::insert(conn, "mac", &mac.colon(), &d)?;
        }
    }
    Ok(())
}

/// The axum handler for everything under `/MAAS/metadata`.
pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 256 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!("Unreadable body: {e}")).into_response();
        }
    };
    let rest = parts
        .uri
        .path()
        .strip_prefix("/MAAS/metadata")
        .unwrap_or_default()
        .to_owned();
    let headers: HeaderMap = parts.headers;
    // The webhook body is JSON, not a form: keep it raw.
    let params = match crate::api::read_params(parts.uri.query(), &headers, &body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let base = crate::api::base_url(&headers);
    let method = parts.method;
    let st = state.clone();
    let res = state
        .pool
        .run(move |conn| {
            let segs = segments(&rest);
            let req = Req {
                state: &st,
                method: &method,
                segs: &segs,
                params: &params,
                body: &body,
                auth: auth.as_deref(),
                base: &base,
                now_ms: st.clock.now().as_millis(),
            };
            Ok(conn.write_tx(|conn| route(conn, &req)))
        })
        .await;
    match res {
        Ok(Ok(r)) => r.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_drop_empty_parts() {
        assert_eq!(
            segments("//latest//meta-data/instance-id/"),
            vec!["latest", "meta-data", "instance-id"]
        );
        assert!(segments("/").is_empty());
        assert!(segments("").is_empty());
    }
}
