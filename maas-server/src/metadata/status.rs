//! The status webhook `POST /MAAS/metadata/status/<system_id>`: cloud-init's
//! and curtin's reporting events, JSON, the node identified by the OAuth
//! token key alone (MAAS does not check the signature here). Top-level
//! `finish` events drive failures and completion, curtin's stage events
//! push the deadline back, and every event lands in the machine's event
//! log; attached files (curtin's install log) are kept.

use axum::http::Method;
use base64::Engine;
use maas_core::Timestamp;
use maas_core::signals::{Event, EventResult};
use serde_json::{Value, json};

use super::{MetaReply, Req, machine_of_token};
use crate::api::ApiError;
use crate::api::machine_ops::{commit_outcome, lifecycle_config, refusal};
use crate::api::machines::event;
use crate::db::{DbConn, objects, users};

/// Object kind of files posted with webhook events (name = system id).
pub const FILE_KIND: &str = "node_file";

/// A webhook event, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// `start` or `finish` (others are logged only).
    pub event_type: String,
    /// `cloudinit` or `curtin`.
    pub origin: String,
    /// Event name, `/`-separated for nested stages.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Result of a `finish`.
    pub result: Option<EventResult>,
    /// Attached files: (path, decoded content, encoding note).
    pub files: Vec<(String, Vec<u8>, String)>,
}

/// Parses and validates a webhook body as MAAS does: ASCII JSON object with
/// `event_type`, `origin`, `name` and `description`.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, ApiError> {
    if !body.is_ascii() {
        return Err(ApiError::bad_request("Status payload must be ASCII-only."));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("Status payload is not valid JSON."))?;
    let s = |k: &str| -> Result<String, ApiError> {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::bad_request(format!("Missing parameter in status message: {k}"))
            })
    };
    let result = match v.get("result").and_then(Value::as_str) {
        None => None,
        Some("SUCCESS") => Some(EventResult::Success),
        Some("WARN") => Some(EventResult::Warn),
        Some("FAIL" | "FAILURE") => Some(EventResult::Fail),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unknown result in status message: {other}"
            )));
        }
    };
    let mut files = Vec::new();
    for f in v
        .get("files")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let path = f
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let content = f.get("content").and_then(Value::as_str).unwrap_or("");
        let encoding = f.get("encoding").and_then(Value::as_str).unwrap_or("");
        let data = if encoding == "base64" {
            base64::engine::general_purpose::STANDARD
                .decode(content.as_bytes())
                .map_err(|_| ApiError::bad_request(format!("File {path}: invalid base64.")))?
        } else {
            content.as_bytes().to_vec()
        };
        // bzip2-compressed files are kept as sent.
        let note = f
            .get("compression")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        files.push((path, data, note));
    }
    Ok(WebhookEvent {
        event_type: s("event_type")?,
        origin: s("origin")?,
        name: s("name")?,
        description: s("description")?,
        result,
        files,
    })
}

/// The life-cycle event a webhook event is, if any.
pub fn lifecycle_event(e: &WebhookEvent) -> Option<Event> {
    let top_level = !e.name.contains('/');
    let curtin_stage = matches!(
        e.name.as_str(),
        "cmd-install" | "cmd-install/stage-early" | "cmd-install/stage-late"
    );
    match e.event_type.as_str() {
        "finish" if top_level => Some(Event::Finish {
            name: e.name.clone(),
            result: e.result.unwrap_or(EventResult::Success),
            description: e.description.clone(),
        }),
        "start" | "finish" if curtin_stage => Some(Event::Progress {
            name: e.name.clone(),
        }),
        _ => None,
    }
}

/// The `oauth_token` value of an `Authorization: OAuth …` header, leniently.
fn token_key(auth: &str) -> Option<String> {
    if let Ok(p) = crate::oauth::parse_header(auth) {
        return Some(p.token);
    }
    auth.split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|part| part.trim().strip_prefix("oauth_token="))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Handles one webhook request.
pub fn webhook(conn: &mut DbConn, req: &Req<'_>, sid: &str) -> Result<MetaReply, ApiError> {
    if *req.method != Method::POST {
        return Err(ApiError {
            status: 405,
            body: crate::api::ErrorBody::Text("Method not allowed".into()),
        });
    }
    let auth = req
        .auth
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: not authenticated"))?;
    let key = token_key(auth)
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: no oauth_token"))?;
    let token = users::token_by_key(conn, &key)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: Invalid access token"))?;
    let mut sm = machine_of_token(conn, &token)?
        .ok_or_else(|| ApiError::unauthorized("Authorization Error: not a node token"))?;
    if sm.record.machine.system_id.as_str() != sid {
        return Err(ApiError::not_found("Not found"));
    }
    let ev = parse_event(req.body)?;
    for (path, data, note) in &ev.files {
        let mut d = serde_json::Map::new();
        d.insert("path".into(), json!(path));
        d.insert(
            "content".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(data)),
        );
        d.insert("compression".into(), json!(note));
        d.insert("origin".into(), json!(ev.origin));
        d.insert("created".into(), json!(req.now_ms));
        objects::insert(conn, FILE_KIND, sid, &d)?;
    }
    let failed = ev.result == Some(EventResult::Fail);
    let m = &sm.record.machine;
    let desc = if ev.description.is_empty() {
        format!("{} {}", ev.event_type, ev.name)
    } else {
        format!("{} {}: {}", ev.event_type, ev.name, ev.description)
    };
    // MAAS logs `start` events and failures; successful finishes of nested
    // stages would only be noise.
    if ev.event_type == "start" || failed || !ev.name.contains('/') {
        event(
            conn,
            m,
            "",
            if failed { "ERROR" } else { "INFO" },
            &format!("Node status event ({})", ev.origin),
            &desc,
            req.now_ms,
        )?;
    }
    if let Some(le) = lifecycle_event(&ev) {
        let cfg = lifecycle_config(conn)?;
        let before = sm.record.machine.status;
        let out = maas_core::signals::handle(&sm.record.machine, &le, Timestamp(req.now_ms), &cfg)
            .map_err(refusal)?;
        if out.status != before || !out.effects.is_empty() {
            commit_outcome(conn, "", &mut sm, out, req.now_ms)?.ok_or_else(|| {
                ApiError::conflict("The machine was changed by another request; retry.")
            })?;
        }
    }
    Ok(MetaReply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_curtin_finish_with_a_file() {
        let body = br#"{"event_type":"finish","origin":"curtin","name":"cmd-install","description":"curtin command install","result":"FAILURE","timestamp":1.5,
            "files":[{"path":"/tmp/install.log","encoding":"base64","content":"aGVsbG8="}]}"#;
        let e = parse_event(body).unwrap();
        assert_eq!(e.result, Some(EventResult::Fail));
        assert_eq!(e.files[0].1, b"hello");
        assert_eq!(
            lifecycle_event(&e),
            Some(Event::Finish {
                name: "cmd-install".into(),
                result: EventResult::Fail,
                description: "curtin command install".into()
            })
        );
    }

    #[test]
    fn stage_events_are_progress_and_nested_ones_nothing() {
        let mk = |t: &str, n: &str| WebhookEvent {
            event_type: t.into(),
            origin: "curtin".into(),
            name: n.into(),
            description: String::new(),
            result: None,
            files: vec![],
        };
        assert!(matches!(
            lifecycle_event(&mk("start", "cmd-install/stage-early")),
            Some(Event::Progress { .. })
        ));
        assert_eq!(
            lifecycle_event(&mk("start", "cmd-install/stage-partitioning/x")),
            None
        );
        assert_eq!(lifecycle_event(&mk("start", "modules-final")), None);
    }

    #[test]
    fn bad_bodies_are_400() {
        assert_eq!(parse_event(b"{").unwrap_err().status, 400);
        assert_eq!(
            parse_event(br#"{"event_type":"start"}"#)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse_event("{\"é\":1}".as_bytes()).unwrap_err().status, 400);
    }

    #[test]
    fn token_key_from_lenient_headers() {
        assert_eq!(
            token_key("OAuth oauth_token=\"abc\", oauth_consumer_key=\"x\"").as_deref(),
            Some("abc")
        );
        assert_eq!(token_key("Basic xyz"), None);
    }

    proptest! {
        #[test]
        fn any_body_parses_without_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_event(&b);
        }
    }
}
