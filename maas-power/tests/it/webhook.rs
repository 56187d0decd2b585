//! The webhook driver against a real HTTP server (axum) in the test.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use maas_core::{PowerState, SystemId};
use maas_power::{OffMode, PowerAction, PowerParams, PowerTarget};

use crate::common::{fast_manager, spawn_server};

#[derive(Default)]
struct Peer {
    on: bool,
    seen: Vec<(String, HeaderMap)>,
}

type Shared = Arc<Mutex<Peer>>;

fn record(s: &Shared, what: &str, h: &HeaderMap) -> Result<(), StatusCode> {
    let mut p = s.lock().unwrap();
    p.seen.push((what.to_owned(), h.clone()));
    match h.get("authorization").and_then(|v| v.to_str().ok()) {
        Some("Bearer tok-123") | Some("Basic YWRtaW46cGFzc3dvcmQ=") => Ok(()),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn on(State(s): State<Shared>, h: HeaderMap) -> StatusCode {
    if let Err(c) = record(&s, "on", &h) {
        return c;
    }
    s.lock().unwrap().on = true;
    StatusCode::OK
}

async fn off(State(s): State<Shared>, h: HeaderMap) -> StatusCode {
    if let Err(c) = record(&s, "off", &h) {
        return c;
    }
    s.lock().unwrap().on = false;
    StatusCode::OK
}

async fn query(State(s): State<Shared>, h: HeaderMap) -> Result<String, StatusCode> {
    record(&s, "query", &h)?;
    let on = s.lock().unwrap().on;
    Ok(format!(
        r#"{{"name": "vm1", "status": "{}"}}"#,
        if on { "running" } else { "stopped" }
    ))
}

async fn server() -> (Shared, String) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/machines/vm1/on", post(on))
        .route("/machines/vm1/off", post(off))
        // Only with a trailing slash: MAAS retries a 404 with one.
        .route("/machines/vm1/status/", get(query))
        .with_state(shared.clone());
    let addr = spawn_server(app).await;
    (shared, format!("http://{addr}/machines/vm1"))
}

fn params(base: &str) -> PowerParams {
    PowerParams::new()
        .with("power_on_uri", format!("{base}/on"))
        .with("power_off_uri", format!("{base}/off"))
        .with("power_query_uri", format!("{base}/status"))
}

#[tokio::test]
async fn webhook_bearer_token_on_off_query_with_maas_headers() {
    let (peer, base) = server().await;
    let m = fast_manager();
    let id: SystemId = "abc123".parse().unwrap();
    let t = PowerTarget::new(params(&base).with("power_token", "tok-123")).with_system_id(id);
    assert_eq!(
        m.perform("webhook", &t, PowerAction::Query).await.unwrap(),
        PowerState::Off
    );
    assert_eq!(
        m.perform("webhook", &t, PowerAction::On).await.unwrap(),
        PowerState::On
    );
    assert!(peer.lock().unwrap().on);
    assert_eq!(
        m.perform("webhook", &t, PowerAction::Off(OffMode::Hard))
            .await
            .unwrap(),
        PowerState::Off
    );
    assert!(!peer.lock().unwrap().on);
    let p = peer.lock().unwrap();
    let (_, h) = p.seen.iter().find(|(w, _)| w == "on").unwrap();
    assert_eq!(h["system_id"], "abc123");
    assert_eq!(h["accept"], "application/json");
    assert!(h["user-agent"].to_str().unwrap().starts_with("MAAS "));
}

#[tokio::test]
async fn webhook_basic_auth_and_custom_regexes() {
    let (_peer, base) = server().await;
    let m = fast_manager();
    let t = PowerTarget::new(
        params(&base)
            .with("power_user", "admin")
            .with("power_pass", "password")
            .with("power_on_regex", r#""status": "run"#)
            .with("power_off_regex", "nothing-matches-this"),
    );
    m.perform("webhook", &t, PowerAction::On).await.unwrap();
    assert_eq!(
        m.perform("webhook", &t, PowerAction::Query).await.unwrap(),
        PowerState::On
    );
    m.registry()
        .get("webhook")
        .unwrap()
        .power_off(&t, OffMode::Hard)
        .await
        .unwrap();
    // Off regex never matches: the state is unknown, as in MAAS.
    assert_eq!(
        m.perform("webhook", &t, PowerAction::Query).await.unwrap(),
        PowerState::Unknown
    );
}

#[tokio::test]
async fn webhook_bad_credentials_are_fatal_and_not_retried() {
    let (peer, base) = server().await;
    let m = fast_manager();
    let t = PowerTarget::new(
        params(&base)
            .with("power_user", "admin")
            .with("power_pass", "wrong-secret"),
    );
    let e = m.perform("webhook", &t, PowerAction::On).await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(!e.to_string().contains("wrong-secret"));
    assert_eq!(peer.lock().unwrap().seen.len(), 1, "no retry after 401");
}

#[tokio::test]
async fn webhook_unreachable_is_retried_then_reported() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let m = fast_manager();
    let t = PowerTarget::new(params(&format!("http://{addr}/x")));
    let e = m
        .perform("webhook", &t, PowerAction::Query)
        .await
        .unwrap_err();
    assert!(!e.is_fatal(), "{e}");
    assert!(e.to_string().contains("cannot reach"), "{e}");
}
