//! Secrets never reach logs or errors: a failing call is logged (at debug
//! and warn) with everything captured, and the captured text is searched.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maas_power::ipmi::sim::{SimBmc, SimConfig, serve};
use maas_power::{PowerAction, PowerParams, PowerTarget};
use tokio_util::sync::CancellationToken;

use crate::common::manager_with_wait;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_logs_and_errors() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let mut cfg = SimConfig::single_user("admin", "right-pass-1");
    cfg.kg = Some(b"right-kg".to_vec());
    tokio::spawn(serve(sock, Arc::new(SimBmc::new(cfg)), cancel));

    let m = manager_with_wait(Duration::from_millis(5));
    let mut errors = String::new();
    let ipmi = PowerParams::new()
        .with("power_address", addr.to_string())
        .with("power_user", "admin")
        .with("power_pass", "wrong-pass-SECRET1")
        .with("k_g", "wrong-kg-SECRET2");
    let e = m
        .perform("ipmi", &PowerTarget::new(ipmi.clone()), PowerAction::On)
        .await
        .unwrap_err();
    errors.push_str(&format!("{e} {e:?} {ipmi:?}"));
    let kg_only = ipmi.with("power_pass", "right-pass-1");
    let e = m
        .perform("ipmi", &PowerTarget::new(kg_only), PowerAction::Query)
        .await
        .unwrap_err();
    errors.push_str(&format!("{e} {e:?}"));

    let webhook = PowerParams::new()
        .with("power_on_uri", "http://127.0.0.1:1/on")
        .with("power_off_uri", "http://127.0.0.1:1/off")
        .with("power_query_uri", "http://127.0.0.1:1/q")
        .with("power_token", "token-SECRET3")
        .with("power_pass", "pass-SECRET4");
    let e = m
        .perform("webhook", &PowerTarget::new(webhook), PowerAction::On)
        .await
        .unwrap_err();
    errors.push_str(&format!("{e} {e:?}"));

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("power action failed"), "{logs}");
    for s in [
        "SECRET1",
        "SECRET2",
        "SECRET3",
        "SECRET4",
        "right-pass-1",
        "right-kg",
    ] {
        assert!(!logs.contains(s), "{s} in logs: {logs}");
        assert!(!errors.contains(s), "{s} in errors: {errors}");
    }
}
