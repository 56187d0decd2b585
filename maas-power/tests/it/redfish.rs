//! The Redfish driver against sushy-tools' `sushy-emulator` (PyPI) serving
//! libvirt's test driver on 127.0.0.1 with basic auth, plus a local server
//! that insists on ETag / If-Match.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use maas_core::PowerState;
use maas_power::{OffMode, PowerAction, PowerParams, PowerTarget};
use serde_json::{Value, json};

use crate::common::{ChildGuard, fast_manager, free_port, require_program, spawn_server};

struct Sushy {
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    base: String,
}

fn start_sushy() -> Sushy {
    let exe = require_program(
        "sushy-emulator",
        "PyPI sushy-tools (scripts/deps/power.pip)",
    );
    let python = exe.parent().unwrap().join("python3");
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let out = Command::new(&python)
        .args([
            "-c",
            "import bcrypt,sys;print('admin:'+bcrypt.hashpw(b'password',bcrypt.gensalt(rounds=4)).decode())",
        ])
        .output()
        .expect("python bcrypt");
    assert!(
        out.status.success(),
        "bcrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let port = free_port(false);
    let conf = dir.path().join("sushy.conf");
    std::fs::write(
        &conf,
        format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_AUTH_FILE = '{}'\nSUSHY_EMULATOR_LIBVIRT_URI = 'test:///default'\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let child = Command::new(&exe)
        .arg("--config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sushy-emulator");
    let guard = ChildGuard(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sushy-emulator did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Sushy {
        _child: guard,
        _dir: dir,
        base,
    }
}

fn target(base: &str, pass: &str) -> PowerTarget {
    PowerTarget::new(
        PowerParams::new()
            .with("power_address", base)
            .with("power_user", "admin")
            .with("power_pass", pass),
    )
}

async fn system_json(base: &str) -> Value {
    let c = reqwest::Client::new();
    let systems: Value = c
        .get(format!("{base}/redfish/v1/Systems"))
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.get(format!("{base}{path}"))
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_against_sushy_emulator() {
    let sushy = start_sushy();
    let m = fast_manager();
    let t = target(&sushy.base, "password");

    // node_id empty: discovered from /redfish/v1/Systems
    assert_eq!(
        m.perform("redfish", &t, PowerAction::Query).await.unwrap(),
        PowerState::On
    );
    assert_eq!(
        m.perform("redfish", &t, PowerAction::Off(OffMode::Hard))
            .await
            .unwrap(),
        PowerState::Off
    );
    assert_eq!(system_json(&sushy.base).await["PowerState"], "Off");
    assert_eq!(
        m.perform("redfish", &t, PowerAction::On).await.unwrap(),
        PowerState::On
    );
    assert_eq!(system_json(&sushy.base).await["PowerState"], "On");
    assert_eq!(
        m.perform("redfish", &t, PowerAction::Cycle).await.unwrap(),
        PowerState::On
    );

    // explicit node_id, one-time PXE
    let id = system_json(&sushy.base).await["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut with_id = t.clone();
    with_id.params.insert("node_id", id);
    m.perform("redfish", &with_id, PowerAction::SetBootPxe)
        .await
        .unwrap();
    assert_eq!(
        system_json(&sushy.base).await["Boot"]["BootSourceOverrideTarget"],
        "Pxe"
    );
    assert_eq!(
        m.perform("redfish", &with_id, PowerAction::Off(OffMode::Soft))
            .await
            .unwrap(),
        PowerState::Off
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_wrong_password_is_fatal_at_once() {
    let sushy = start_sushy();
    let m = fast_manager();
    let start = Instant::now();
    let e = m
        .perform(
            "redfish",
            &target(&sushy.base, "not-the-password"),
            PowerAction::Query,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, maas_power::Error::Auth(_)), "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-password"));
    // fatal: no walk through the retry schedule (7 x 20 ms at least)
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// A BMC that refuses a PATCH without the current ETag.
#[derive(Default)]
struct EtagBmc {
    version: u32,
    patches: Vec<(Option<String>, Value)>,
}

type Shared = Arc<Mutex<EtagBmc>>;

async fn system(State(s): State<Shared>) -> (HeaderMap, axum::Json<Value>) {
    let v = s.lock().unwrap().version;
    let mut h = HeaderMap::new();
    h.insert("etag", format!("W/\"{v}\"").parse().unwrap());
    (h, axum::Json(json!({"Id": "1", "PowerState": "Off"})))
}

async fn patch(
    State(s): State<Shared>,
    h: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let mut b = s.lock().unwrap();
    let tag = h.get("if-match").map(|v| v.to_str().unwrap().to_owned());
    b.patches.push((tag.clone(), body));
    if tag.as_deref() == Some(&format!("W/\"{}\"", b.version)) {
        b.version += 1;
        StatusCode::NO_CONTENT
    } else {
        StatusCode::PRECONDITION_FAILED
    }
}

#[tokio::test]
async fn redfish_pxe_override_sends_if_match() {
    let shared = Shared::default();
    shared.lock().unwrap().version = 7;
    let app = Router::new()
        .route("/redfish/v1/Systems/1", get(system).patch(patch))
        .with_state(shared.clone());
    let addr = spawn_server(app).await;
    let d = fast_manager().registry().get("redfish").unwrap();
    let mut t = target(&format!("http://{addr}"), "password");
    t.params.insert("node_id", "1");
    d.set_boot_pxe_once(&t).await.unwrap();
    let b = shared.lock().unwrap();
    assert_eq!(b.patches.len(), 1);
    assert_eq!(b.patches[0].0.as_deref(), Some("W/\"7\""));
    assert_eq!(
        b.patches[0].1,
        json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Pxe"}})
    );
    assert_eq!(b.version, 8);
}
