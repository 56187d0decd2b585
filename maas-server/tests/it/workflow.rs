//! The workflow runner in-process: API actions write operation and job rows
//! in their transaction, the runner drives the in-process IPMI simulator
//! through maas-power, release waits for off, deadlines expire on an
//! injected clock (no sleeping), a dead BMC fails the operation, and
//! recovery drops stale operations.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use maas_core::{Clock, ManualClock, NodeStatus, PowerState, SystemId, Timestamp};
use maas_power::ipmi::sim::{SimBmc, SimConfig, serve};
use maas_server::AppState;
use maas_server::db::machines;
use maas_server::workflow::{Runner, WorkflowConfig, store};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Rig {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    clock: Arc<ManualClock>,
    runner: Arc<Runner>,
    auth: (String, String, String),
}

fn config() -> WorkflowConfig {
    WorkflowConfig {
        tick_ms: 50,
        power_poll_secs: 0,
        power_retry_waits_ms: vec![20, 20, 20],
        power_call_timeout_secs: 2,
        job_attempts: 2,
        ..WorkflowConfig::default()
    }
}

impl Rig {
    fn new(cfg: WorkflowConfig) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("maas.db").display().to_string();
        let base = AppState::open(&url, 4).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp(now.as_millis() as i64)));
        let state = Arc::new(AppState {
            pool: base.pool.clone(),
            api: maas_server::api::Api::new(),
            nonces: Default::default(),
            clock: clock.clone(),
            max_body_bytes: base.max_body_bytes,
            images: Default::default(),
            controller: Default::default(),
        });
        let mut conn = state.pool.get().unwrap();
        maas_server::db::users::create(&mut conn, "admin", "a@x", "pw", true, 0).unwrap();
        let t = maas_server::db::users::create_token(&mut conn, "admin", "t", 0).unwrap();
        let runner = Arc::new(Runner::new(state.clone(), cfg).unwrap());
        Rig {
            _dir: dir,
            state,
            clock,
            runner,
            auth: (t.consumer_key, t.token_key, t.token_secret),
        }
    }

    async fn post(&self, uri: &str) -> (u16, serde_json::Value) {
        self.post_form(uri, "").await
    }

    async fn post_form(&self, uri: &str, form: &str) -> (u16, serde_json::Value) {
        let nonce: u64 = rand::random();
        let ts = self.clock.now().as_millis() / 1000;
        let auth = format!(
            "OAuth oauth_nonce=\"{nonce}\", oauth_timestamp=\"{ts}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
            self.auth.0, self.auth.1, self.auth.2
        );
        let req = Request::post(uri)
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        let res = maas_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(json!(String::from_utf8_lossy(&bytes))),
        )
    }

    fn load(&self, power_type: &str, params: serde_json::Value) -> SystemId {
        let spec: maas_server::seed::MachineSpec = serde_json::from_value(json!({
            "hostname": "wf-1",
            "cpu_count": 2,
            "memory_mib": 2048,
            "disks": [{"name": "sda", "size": 10_000_000_000u64}],
            "nics": [{"name": "eth0", "mac": "52:54:00:aa:00:01"}],
            "power_type": power_type,
            "power_parameters": params,
        }))
        .unwrap();
        let mut conn = self.state.pool.get().unwrap();
        maas_server::seed::load(&mut conn, &[spec], 0)
            .unwrap()
            .remove(0)
    }

    fn machine(&self, id: &SystemId) -> machines::StoredMachine {
        let mut conn = self.state.pool.get().unwrap();
        machines::get(&mut conn, id).unwrap().unwrap()
    }

    fn jobs(&self, id: &SystemId) -> Vec<String> {
        let mut conn = self.state.pool.get().unwrap();
        store::jobs_of(&mut conn, id.as_str())
            .unwrap()
            .into_iter()
            .map(|j| j.action)
            .collect()
    }

    fn operation(&self, id: &SystemId) -> Option<store::Operation> {
        let mut conn = self.state.pool.get().unwrap();
        store::operation(&mut conn, id.as_str()).unwrap()
    }

    fn events(&self, id: &SystemId) -> Vec<maas_server::db::events::Event> {
        let mut conn = self.state.pool.get().unwrap();
        maas_server::db::events::query(
            &mut conn,
            &maas_server::db::events::EventQuery {
                system_ids: vec![id.to_string()],
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap()
    }
}

async fn sim() -> (Arc<SimBmc>, u16, CancellationToken) {
    let bmc = Arc::new(SimBmc::new(SimConfig::single_user("admin", "password")));
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    tokio::spawn(serve(sock, bmc.clone(), stop.clone()));
    (bmc, port, stop)
}

fn ipmi_params(port: u16) -> serde_json::Value {
    json!({
        "power_driver": "LAN_2_0",
        "power_address": format!("127.0.0.1:{port}"),
        "power_user": "admin",
        "power_pass": "password",
        "cipher_suite_id": "3",
        "privilege_level": "ADMIN",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_cycles_the_bmc_and_release_waits_for_off() {
    let (bmc, port, stop) = sim().await;
    let rig = Rig::new(config());
    let id = rig.load("ipmi", ipmi_params(port));

    let (st, j) = rig
        .post(&format!("/MAAS/api/2.0/machines/{id}/?op=deploy"))
        .await;
    assert_eq!(st, 200, "{j}");
    // Written with the status change, before any power I/O.
    let op = rig.operation(&id).expect("deploy operation row");
    assert_eq!((op.kind.as_str(), op.step.as_str()), ("deploy", "power"));
    assert_eq!(rig.jobs(&id), ["cycle"]);
    assert!(!bmc.is_on());

    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 1);
    assert!(bmc.is_on());
    // The machine must netboot: the one-time PXE boot was set first.
    assert_ne!(bmc.boot_flags(), [0; 5]);
    let m = rig.machine(&id).record.machine;
    assert_eq!(m.status, NodeStatus::Deploying);
    assert_eq!(m.power_state, PowerState::On);
    assert!(rig.jobs(&id).is_empty());
    assert_eq!(rig.operation(&id).unwrap().step, "netboot");

    let (st, j) = rig
        .post(&format!("/MAAS/api/2.0/machines/{id}/?op=release"))
        .await;
    assert_eq!(
        (st, j["status_name"].as_str()),
        (200, Some("Releasing")),
        "{j}"
    );
    assert_eq!(rig.jobs(&id), ["off:hard"]);
    assert_eq!(rig.operation(&id).unwrap().kind, "release");
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(!bmc.is_on());
    let m = rig.machine(&id).record.machine;
    assert_eq!(m.status, NodeStatus::Ready);
    assert_eq!(m.power_state, PowerState::Off);
    assert!(m.owner.is_none());
    assert!(rig.operation(&id).is_none());
    assert!(
        rig.events(&id)
            .iter()
            .any(|e| e.description == "Released (Releasing -> Ready)")
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expiry_on_the_injected_clock_fails_with_the_reason() {
    let (bmc, port, stop) = sim().await;
    let rig = Rig::new(config());
    let id = rig.load("ipmi", ipmi_params(port));
    rig.post(&format!("/MAAS/api/2.0/machines/{id}/?op=deploy"))
        .await;
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(bmc.is_on());

    // MAAS's node_timeout is 30 minutes.
    rig.clock.advance(Duration::from_secs(29 * 60));
    rig.runner.clone().step_and_wait().await.unwrap();
    assert_eq!(
        rig.machine(&id).record.machine.status,
        NodeStatus::Deploying
    );

    rig.clock.advance(Duration::from_secs(2 * 60));
    rig.runner.clone().step_and_wait().await.unwrap();
    let sm = rig.machine(&id);
    assert_eq!(sm.record.machine.status, NodeStatus::FailedDeployment);
    assert_eq!(
        sm.record.machine.error_description,
        "time-out during deployment"
    );
    let evs = rig.events(&id);
    assert!(
        evs.iter().any(|e| e.level == "ERROR"
            && e.description.contains("time-out during deployment")
            && e.description.contains("Deploying -> Failed deployment")),
        "{evs:?}"
    );
    // The failure powers the machine off (its job ran in the same step).
    assert!(rig.operation(&id).is_none());
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(!bmc.is_on());
    assert!(rig.jobs(&id).is_empty());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bmc_fails_the_operation_after_its_attempts() {
    // A port nothing listens on.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rig = Rig::new(WorkflowConfig {
        power_call_timeout_secs: 1,
        power_retry_waits_ms: vec![10],
        ..config()
    });
    let id = rig.load("ipmi", ipmi_params(port));
    rig.post(&format!("/MAAS/api/2.0/machines/{id}/?op=deploy"))
        .await;
    rig.runner.clone().step_and_wait().await.unwrap();
    // First failure: retried later, the error noted on the operation.
    assert_eq!(rig.jobs(&id), ["cycle"]);
    assert!(!rig.operation(&id).unwrap().last_error.is_empty());
    assert_eq!(
        rig.machine(&id).record.machine.status,
        NodeStatus::Deploying
    );
    // Not before its back-off …
    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 0);
    // … then the last attempt fails the deployment.
    rig.clock.advance(Duration::from_secs(5));
    rig.runner.clone().step_and_wait().await.unwrap();
    let sm = rig.machine(&id);
    assert_eq!(sm.record.machine.status, NodeStatus::FailedDeployment);
    assert!(
        sm.record
            .machine
            .error_description
            .starts_with("Power cycle failed"),
        "{}",
        sm.record.machine.error_description
    );
    assert!(
        rig.events(&id)
            .iter()
            .any(|e| e.level == "ERROR" && e.type_name == "Power error")
    );
    // The failure went through the API's commit path: the reason is the
    // status message, one ERROR transition event, the version bumped.
    assert_eq!(
        sm.record.extra.status_message,
        sm.record.machine.error_description
    );
    let transitions: Vec<_> = rig
        .events(&id)
        .into_iter()
        .filter(|e| e.description.contains("(Deploying -> Failed deployment)"))
        .collect();
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    assert_eq!(transitions[0].level, "ERROR");
    assert_eq!(transitions[0].type_name, "Failed deployment");
    assert!(rig.operation(&id).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_power_commission_runs_and_recovery_drops_stale_rows() {
    let rig = Rig::new(config());
    let id = rig.load("manual", json!({}));
    let (st, j) = rig
        .post(&format!("/MAAS/api/2.0/machines/{id}/?op=commission"))
        .await;
    assert_eq!(st, 200, "{j}");
    assert_eq!(rig.operation(&id).unwrap().kind, "commission");
    rig.runner.clone().step_and_wait().await.unwrap();
    // `manual` cannot query: the cycle "succeeds" with the state unknown.
    assert!(rig.jobs(&id).is_empty());
    assert!(
        rig.events(&id)
            .iter()
            .any(|e| e.description == "Power cycle succeeded; power state unknown")
    );

    // A machine moved out of its operation's status behind the runner's
    // back (as after a crash between two writes of an older version): the
    // next start drops the stale row; a monitored machine without a
    // deadline gets one.
    {
        let mut conn = rig.state.pool.get().unwrap();
        let mut sm = machines::get(&mut conn, &id).unwrap().unwrap();
        sm.record.machine.status = NodeStatus::Ready;
        assert!(machines::update(&mut conn, &sm, 0).unwrap());
    }
    let other = {
        let spec: maas_server::seed::MachineSpec = serde_json::from_value(json!({
            "hostname": "wf-2", "status": "deploying",
            "nics": [{"name": "eth0", "mac": "52:54:00:aa:00:02"}],
        }))
        .unwrap();
        let mut conn = rig.state.pool.get().unwrap();
        maas_server::seed::load(&mut conn, &[spec], 0)
            .unwrap()
            .remove(0)
    };
    assert!(rig.machine(&other).record.machine.status_expires.is_none());
    rig.runner.recover().unwrap();
    assert!(rig.operation(&id).is_none());
    let exp = rig.machine(&other).record.machine.status_expires.unwrap();
    assert_eq!(exp, rig.clock.now() + Duration::from_secs(30 * 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescue_abort_and_erase_go_through_the_runner() {
    let (bmc, port, stop) = sim().await;
    let rig = Rig::new(config());
    let id = rig.load("ipmi", ipmi_params(port));
    let op = |o: &str| format!("/MAAS/api/2.0/machines/{id}/?op={o}");
    let status = |rig: &Rig| rig.machine(&id).record.machine.status;

    // Rescue: entering power-cycles into the rescue environment …
    let (st, j) = rig.post(&op("rescue_mode")).await;
    assert_eq!(st, 200, "{j}");
    assert_eq!(status(&rig), NodeStatus::EnteringRescueMode);
    assert_eq!(rig.operation(&id).unwrap().kind, "enter-rescue");
    assert_eq!(rig.jobs(&id), ["cycle"]);
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(bmc.is_on());
    // … exiting powers off and, once the BMC says off, returns to Ready.
    let (st, j) = rig.post(&op("exit_rescue_mode")).await;
    assert_eq!(st, 200, "{j}");
    assert_eq!(status(&rig), NodeStatus::ExitingRescueMode);
    assert_eq!(rig.operation(&id).unwrap().kind, "exit-rescue");
    assert_eq!(rig.jobs(&id), ["off:hard"]);
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(!bmc.is_on());
    assert_eq!(status(&rig), NodeStatus::Ready);
    assert!(rig.operation(&id).is_none());

    // Abort of a deployment: back to Allocated, powered off, no operation.
    rig.post(&op("deploy")).await;
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(bmc.is_on());
    let (st, j) = rig.post(&op("abort")).await;
    assert_eq!(st, 200, "{j}");
    assert_eq!(status(&rig), NodeStatus::Allocated);
    assert!(rig.operation(&id).is_none());
    assert_eq!(rig.jobs(&id), ["off:hard"]);
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(!bmc.is_on());

    // Release with erase: a netboot into the erase environment, which the
    // metadata side reports back on; until then the machine is erasing.
    let (st, j) = rig.post_form(&op("release"), "erase=true").await;
    assert_eq!(st, 200, "{j}");
    assert_eq!(status(&rig), NodeStatus::DiskErasing);
    assert_eq!(rig.operation(&id).unwrap().kind, "erase");
    assert_eq!(rig.jobs(&id), ["off:hard", "cycle"]);
    rig.runner.clone().step_and_wait().await.unwrap();
    rig.runner.clone().step_and_wait().await.unwrap();
    assert!(bmc.is_on());
    assert!(rig.jobs(&id).is_empty());
    assert_eq!(status(&rig), NodeStatus::DiskErasing);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_monitor_polls_queryable_bmcs_on_its_interval() {
    let (bmc, port, stop) = sim().await;
    let rig = Rig::new(WorkflowConfig {
        power_poll_secs: 60,
        ..config()
    });
    let id = rig.load("ipmi", ipmi_params(port));
    // Someone switched the machine on behind MAAS's back.
    bmc.set_on(true);
    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 1);
    assert_eq!(rig.machine(&id).record.machine.power_state, PowerState::On);
    assert!(
        rig.events(&id)
            .iter()
            .any(|e| e.description == "Power state unknown -> on")
    );
    // Nothing more until the interval passed on the injected clock.
    bmc.set_on(false);
    rig.clock.advance(Duration::from_secs(59));
    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 0);
    assert_eq!(rig.machine(&id).record.machine.power_state, PowerState::On);
    rig.clock.advance(Duration::from_secs(1));
    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 1);
    assert_eq!(rig.machine(&id).record.machine.power_state, PowerState::Off);
    // `manual` machines are never polled.
    let manual = {
        let spec: maas_server::seed::MachineSpec = serde_json::from_value(json!({
            "hostname": "wf-manual",
            "nics": [{"name": "eth0", "mac": "52:54:00:aa:00:03"}],
        }))
        .unwrap();
        let mut conn = rig.state.pool.get().unwrap();
        maas_server::seed::load(&mut conn, &[spec], 0)
            .unwrap()
            .remove(0)
    };
    rig.clock.advance(Duration::from_secs(60));
    assert_eq!(rig.runner.clone().step_and_wait().await.unwrap(), 1);
    assert!(rig.jobs(&manual).is_empty());
    stop.cancel();
}
