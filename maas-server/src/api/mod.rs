//! The MAAS REST API 2.0: one table of resources → handlers → actions that
//! both serves requests and generates the anonymous `describe` document
//! python-libmaas builds its client from, so the two cannot drift apart.
//!
//! Requests are dispatched by path template, then by (HTTP method, `op`),
//! `op` coming from the query string or the form body, as MAAS's piston
//! `dispatch` does. Handlers are plain functions run on the blocking pool
//! with one database connection; writes run in one transaction.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::AppState;
use crate::db::DbConn;
use crate::db::users::User;
use crate::oauth;

pub mod boot;
pub mod controllers;
pub mod files;
pub mod json;
pub mod links;
pub mod machine_ops;
pub mod machines;
pub mod network;
pub mod openapi;
pub mod params;
pub mod repos;
pub mod resources;
pub mod spaces;
pub mod table;
pub mod users;

pub use params::Params;

/// Path prefix of the API.
pub const API_PREFIX: &str = "/MAAS/api/2.0";

/// An error response in MAAS's shapes: 400 with a field→messages dict or
/// text, 401/403/404/409 text.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: ErrorBody,
}

/// An error body.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorBody {
    /// Plain text.
    Text(String),
    /// `{"field": ["message", …]}`.
    Fields(Value),
}

impl ApiError {
    fn text(status: u16, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::Text(msg.into()),
        }
    }
    /// 400 with a text body.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::text(400, msg)
    }
    /// 400 `{field: [message]}`.
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            body: ErrorBody::Fields(json!({ field: [msg.into()] })),
        }
    }
    /// 401.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::text(401, msg)
    }
    /// 403.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::text(403, msg)
    }
    /// 404.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::text(404, msg)
    }
    /// 409.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::text(409, msg)
    }
    /// 500; the detail is logged, the client sees a generic text.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error serving an API request");
        Self::text(500, "Internal server error.")
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Refused(msg) => ApiError::bad_request(msg),
            other => ApiError::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = match self.body {
            ErrorBody::Text(t) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                t,
            )
                .into_response(),
            ErrorBody::Fields(v) => (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                v.to_string(),
            )
                .into_response(),
        };
        // cloud-init and MAAS's helpers correct their clock from the Date
        // of a 401/403; hyper adds one too, this makes it explicit.
        if matches!(self.status, 401 | 403)
            && let Ok(v) = HeaderValue::from_str(&httpdate_now())
        {
            res.headers_mut().insert(header::DATE, v);
        }
        if self.status == 401 {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("OAuth realm=\"MAAS API\""),
            );
        }
        res
    }
}

fn httpdate_now() -> String {
    jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// A successful handler result.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 JSON.
    Json(Value),
    /// A JSON body with another status (201 for boot-source creation).
    JsonStatus(u16, Value),
    /// 204.
    NoContent,
    /// 200 with a content type and raw body.
    Raw(&'static str, Vec<u8>),
    /// This status with an empty body (201 for a stored file).
    Status(u16),
    /// A plain-text body with a status (piston's `rc.ACCEPTED`: 202
    /// `Accepted`).
    Text(u16, &'static str),
}

/// Everything a handler gets for one call.
#[derive(Debug)]
pub struct Call<'a> {
    /// Server state (settings, clock).
    pub state: &'a AppState,
    /// The database connection (inside a transaction for writes).
    pub conn: &'a mut DbConn,
    /// Query and body parameters.
    pub params: &'a Params,
    /// Values of the path template's `{…}` placeholders, in order.
    pub path: &'a [String],
    /// The authenticated user, `None` for anonymous calls.
    pub user: Option<&'a User>,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// `http://host:port` of this request, for absolute URIs.
    pub base: &'a str,
    /// Raw request body (chunk uploads).
    pub body: &'a [u8],
}

impl Call<'_> {
    /// The authenticated user or 401.
    pub fn user(&self) -> Result<&User, ApiError> {
        self.user
            .ok_or_else(|| ApiError::unauthorized("Authorization Error: not authenticated"))
    }

    /// The authenticated admin or 403.
    pub fn admin(&self) -> Result<&User, ApiError> {
        let u = self.user()?;
        if u.is_superuser {
            Ok(u)
        } else {
            Err(ApiError::forbidden(
                "You don't have the permission to perform this action.",
            ))
        }
    }

    /// Username of the caller, empty when anonymous.
    pub fn username(&self) -> &str {
        self.user.map(|u| u.username.as_str()).unwrap_or("")
    }

    /// The `n`th path parameter.
    pub fn path_param(&self, n: usize) -> &str {
        self.path.get(n).map(String::as_str).unwrap_or_default()
    }

    /// The `n`th path parameter as an integer id, 404 when it is not one.
    pub fn path_id(&self, n: usize) -> Result<i64, ApiError> {
        self.path_param(n)
            .parse()
            .map_err(|_| ApiError::not_found("No object matches the given query."))
    }
}

/// A handler function.
pub type HandlerFn = fn(&mut Call<'_>) -> Result<Reply, ApiError>;

/// One action of a handler: a CRUD method or an `op`.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// `read`/`create`/`update`/`delete` or the op name.
    pub name: &'static str,
    /// HTTP method.
    pub method: Method,
    /// The op, `None` for CRUD.
    pub op: Option<&'static str>,
    /// Documentation shown in describe.
    pub doc: &'static str,
    /// The implementation.
    pub f: HandlerFn,
}

/// The anonymous or authenticated side of a resource.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    /// `MachinesHandler` or `AnonMachinesHandler`.
    pub name: String,
    /// Documentation.
    pub doc: &'static str,
    /// Actions.
    pub actions: Vec<ActionSpec>,
}

/// A resource: a path template with an anonymous and/or authenticated
/// handler.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    /// The handler name libmaas binds by (`MachinesHandler`).
    pub name: &'static str,
    /// Absolute path template with `{param}` placeholders.
    pub path: &'static str,
    /// The placeholders, in order.
    pub params: Vec<&'static str>,
    /// Anonymous handler.
    pub anon: Option<HandlerSpec>,
    /// Authenticated handler.
    pub auth: Option<HandlerSpec>,
    /// MAAS's `AdminRestrictedResource`: anyone but a superuser, anonymous
    /// callers included, is refused with 403 before any handler runs.
    pub admin_restricted: bool,
}

impl ResourceSpec {
    /// Matches a request path; returns the placeholder values.
    pub fn matches(&self, path: &str) -> Option<Vec<String>> {
        let mut t = self.path.trim_matches('/').split('/');
        let mut p = path.trim_matches('/').split('/');
        let mut out = Vec::new();
        loop {
            match (t.next(), p.next()) {
                (None, None) => return Some(out),
                (Some(ts), Some(ps)) => {
                    if ts.starts_with('{') {
                        if ps.is_empty() {
                            return None;
                        }
                        let v = percent_encoding::percent_decode_str(ps)
                            .decode_utf8_lossy()
                            .into_owned();
                        out.push(v);
                    } else if ts != ps {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// The route table plus the describe document generated from it.
#[derive(Debug)]
pub struct Api {
    /// Resources in match order.
    pub resources: Vec<ResourceSpec>,
    /// SHA-1 of the canonical describe document (host-independent).
    pub hash: String,
}

impl Api {
    /// Builds the table and hashes its description.
    pub fn new() -> Api {
        let resources = table::resources();
        let canonical = describe_doc(&resources, "", "");
        let hash = hex::encode(Sha1::digest(canonical.to_string().as_bytes()));
        Api { resources, hash }
    }

    /// The describe document for a request to `base`.
    pub fn describe(&self, base: &str) -> Value {
        describe_doc(&self.resources, base, &self.hash)
    }

    /// The OpenAPI document for a request to `base`.
    pub fn openapi(&self, base: &str) -> Value {
        openapi::document(&self.resources, base, crate::MAAS_VERSION)
    }
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

fn handler_json(h: &HandlerSpec, r: &ResourceSpec, base: &str) -> Value {
    let mut actions: Vec<&ActionSpec> = h.actions.iter().collect();
    actions.sort_by_key(|a| a.name);
    json!({
        "name": h.name,
        "doc": h.doc,
        "path": r.path,
        "params": r.params,
        "uri": format!("{base}{}", r.path),
        "actions": actions.iter().map(|a| json!({
            "name": a.name,
            "method": a.method.as_str(),
            "op": a.op,
            "restful": a.op.is_none(),
            "doc": a.doc,
        })).collect::<Vec<_>>(),
    })
}

fn describe_doc(resources: &[ResourceSpec], base: &str, hash: &str) -> Value {
    let mut sorted: Vec<&ResourceSpec> = resources.iter().collect();
    sorted.sort_by_key(|r| r.name);
    let res: Vec<Value> = sorted
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "anon": r.anon.as_ref().map(|h| handler_json(h, r, base)),
                "auth": r.auth.as_ref().map(|h| handler_json(h, r, base)),
            })
        })
        .collect();
    let mut handlers: Vec<Value> = sorted
        .iter()
        .filter_map(|r| r.anon.as_ref().map(|h| handler_json(h, r, base)))
        .collect();
    handlers.extend(
        sorted
            .iter()
            .filter_map(|r| r.auth.as_ref().map(|h| handler_json(h, r, base))),
    );
    json!({
        "doc": "MAAS API",
        "hash": hash,
        "resources": res,
        "handlers": handlers,
    })
}

/// `http://<Host>` of a request.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:5240");
    format!("http://{host}")
}

/// Parses query and body into [`Params`].
pub async fn read_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, ApiError> {
    let mut p = Params::default();
    if let Some(q) = query {
        p.extend_urlencoded(q.as_bytes());
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() {
        if ctype.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(ctype)
                .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}")))?;
            // An empty form (libmaas sends one even for DELETE) may be just
            // the closing boundary, which strict parsers reject.
            let has_parts = body
                .windows(b"Content-Disposition".len())
                .any(|w| w.eq_ignore_ascii_case(b"Content-Disposition"));
            if has_parts {
                p.extend_multipart(&boundary, body.clone()).await?;
            }
        } else if ctype.starts_with("application/x-www-form-urlencoded") {
            p.extend_urlencoded(body);
        }
    }
    Ok(p)
}

/// Resolves the caller from the `Authorization` header: `Ok(None)` for an
/// anonymous request, 401 (400 for a malformed timestamp) when credentials
/// are present but wrong.
pub fn authenticate(
    conn: &mut DbConn,
    state: &AppState,
    auth: Option<&str>,
    now_secs: i64,
) -> Result<Option<User>, ApiError> {
    let Some(h) = auth else { return Ok(None) };
    let p = oauth::parse_header(h).map_err(|_| {
        ApiError::unauthorized("Authorization Error: invalid or missing OAuth parameters")
    })?;
    oauth::check_fresh(&p, now_secs, &state.nonces).map_err(|e| match e {
        oauth::OAuthRejection::BadTimestamp => {
            ApiError::bad_request("Invalid timestamp: not an integer.")
        }
        _ => ApiError::unauthorized("Authorization Error: invalid OAuth credentials"),
    })?;
    let token = crate::db::users::token_by_key(conn, &p.token)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: Invalid access token"))?;
    if !oauth::signature_matches(&p, &token.consumer_key, &token.token_secret) {
        return Err(ApiError::unauthorized(
            "Authorization Error: invalid OAuth signature",
        ));
    }
    let user = crate::db::users::by_name(conn, &token.username)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: no such user"))?;
    Ok(Some(user))
}

/// Serves one API request: route, authenticate, dispatch on (method, op).
pub async fn dispatch(
    state: Arc<AppState>,
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hash = state.api.hash.clone();
    let mut res = match dispatch_inner(state, method, path, query, headers, body).await {
        Ok(reply) => reply_response(reply),
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&hash) {
        res.headers_mut().insert("X-MAAS-API-Hash", v);
    }
    res
}

fn reply_response(r: Reply) -> Response {
    let json_ct = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    match r {
        Reply::Json(v) => (StatusCode::OK, json_ct, v.to_string()).into_response(),
        Reply::JsonStatus(s, v) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
            json_ct,
            v.to_string(),
        )
            .into_response(),
        Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        Reply::Raw(ct, b) => (StatusCode::OK, [(header::CONTENT_TYPE, ct)], b).into_response(),
        Reply::Status(s) => StatusCode::from_u16(s)
            .unwrap_or(StatusCode::OK)
            .into_response(),
        Reply::Text(s, t) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            t,
        )
            .into_response(),
    }
}

async fn dispatch_inner(
    state: Arc<AppState>,
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let (ri, path_values) = state
        .api
        .resources
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.matches(&path).map(|v| (i, v)))
        .ok_or_else(|| ApiError::not_found(format!("Unknown API endpoint: {path}")))?;
    let params = read_params(query.as_deref(), &headers, &body).await?;
    // Text never holds NUL (Django refuses it in every form field), and
    // PostgreSQL cannot store it: refuse it here rather than fail later.
    if path_values.iter().any(|v| v.contains('\0')) {
        return Err(ApiError::bad_request(
            "Null characters are not allowed in the path.",
        ));
    }
    if let Some(k) = params.nul_in_text() {
        return Err(ApiError::field(k, "Null characters are not allowed."));
    }
    // Credentials that cannot be read (bytes outside visible ASCII) are
    // refused like wrong ones, never taken for an anonymous call.
    let auth = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::unauthorized(
                        "Authorization Error: the Authorization header is not readable text",
                    )
                })?
                .to_owned(),
        ),
    };
    let base = base_url(&headers);
    let op = params.get("op").filter(|s| !s.is_empty());
    let st = state.clone();
    let pool = state.pool.clone();
    pool.run(move |conn| {
        Ok(run_action(
            conn,
            &st,
            ri,
            &method,
            op.as_deref(),
            auth.as_deref(),
            &params,
            &path_values,
            &base,
            &body,
        ))
    })
    .await?
}

#[allow(clippy::too_many_arguments)]
fn run_action(
    conn: &mut DbConn,
    st: &AppState,
    ri: usize,
    method: &Method,
    op: Option<&str>,
    auth: Option<&str>,
    params: &Params,
    path_values: &[String],
    base: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let now_ms = st.clock.now().as_millis();
    let user = authenticate(conn, st, auth, now_ms.div_euclid(1000))?;
    let r = &st.api.resources[ri];
    if r.admin_restricted && !user.as_ref().is_some_and(|u| u.is_superuser) {
        return Err(ApiError::forbidden(
            "You don't have the permission to perform this action.",
        ));
    }
    let handler = match (&user, &r.auth, &r.anon) {
        (Some(_), Some(h), _) => h,
        (_, _, Some(h)) => h,
        (None, Some(_), None) => {
            return Err(ApiError::unauthorized(
                "Authorization Error: not authenticated",
            ));
        }
        (_, None, None) => return Err(ApiError::not_found("No handler.")),
    };
    let Some(action) = handler
        .actions
        .iter()
        .find(|a| a.method == *method && a.op == op)
    else {
        return Err(ApiError::bad_request(format!(
            "Unrecognised signature: method={} op={}",
            method,
            op.unwrap_or("None")
        )));
    };
    let call_on = |conn: &mut DbConn| {
        let mut call = Call {
            state: st,
            conn,
            params,
            path: path_values,
            user: user.as_ref(),
            now_ms,
            base,
            body,
        };
        (action.f)(&mut call)
    };
    if *method == Method::GET {
        call_on(conn)
    } else {
        conn.write_tx(call_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_match_and_extract() {
        let r = ResourceSpec {
            name: "X",
            path: "/MAAS/api/2.0/nodes/{system_id}/blockdevices/{id}/",
            params: vec!["system_id", "id"],
            anon: None,
            auth: None,
            admin_restricted: false,
        };
        assert_eq!(
            r.matches("/MAAS/api/2.0/nodes/abc/blockdevices/7/"),
            Some(vec!["abc".to_owned(), "7".to_owned()])
        );
        assert_eq!(r.matches("/MAAS/api/2.0/nodes/abc/blockdevices/"), None);
        assert_eq!(r.matches("/MAAS/api/2.0/nodes//blockdevices/7/"), None);
    }
}
