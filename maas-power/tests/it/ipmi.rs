//! The native IPMI driver against real IPMI LAN peers on 127.0.0.1:
//! OpenIPMI's `ipmi_sim` and pyghmi's fake BMC (suite 3; neither implements
//! suite 17), and `ipmitool -I lanplus` reading the same state back. Suite
//! 17 is checked both ways against `ipmitool`: our client drives the
//! in-process simulator, and `ipmitool -C 17` drives that same simulator.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use maas_core::PowerState;
use maas_power::ipmi::sim::{SimBmc, SimConfig, serve};
use maas_power::{Error, OffMode, PowerAction, PowerParams, PowerTarget};
use tokio_util::sync::CancellationToken;

use crate::common::{ChildGuard, free_port, manager_with_wait, require_program};

fn params(port: u16, pass: &str, suite: &str) -> PowerParams {
    PowerParams::new()
        .with("power_driver", "LAN_2_0")
        .with("power_address", format!("127.0.0.1:{port}"))
        .with("power_user", "admin")
        .with("power_pass", pass)
        .with("cipher_suite_id", suite)
        .with("privilege_level", "ADMIN")
}

/// `ipmitool -I lanplus … <args>` → stdout; panics with stderr on failure.
fn ipmitool(port: u16, suite: &str, args: &[&str]) -> String {
    let exe = require_program("ipmitool", "Debian package ipmitool");
    let out = Command::new(exe)
        .args(["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U", "admin", "-P", "password", "-C", suite, "-N", "1", "-R", "3",
        ])
        .args(args)
        .output()
        .expect("run ipmitool");
    assert!(
        out.status.success(),
        "ipmitool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_udp_ready(port: u16) {
    // The peers answer Get Channel Auth Capabilities once they are up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let exe = require_program("ipmitool", "Debian package ipmitool");
    loop {
        let ok = Command::new(&exe)
            .args(["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-U", "admin", "-P", "password", "-C", "3", "-N", "1", "-R", "1",
            ])
            .args(["power", "status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "IPMI peer on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Peer {
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    port: u16,
}

fn start_ipmi_sim() -> Peer {
    let exe = require_program("ipmi_sim", "Debian package openipmi");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(true);
    let serial = free_port(false);
    let lan = format!(
        r#"name "maasrs"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  serial 15 127.0.0.1 {serial} codec VM
  startcmd "sleep 30"
  startnow false
  poweroff_wait 1
  kill_wait 1
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
"#
    );
    let emu = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
               sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n";
    std::fs::write(dir.path().join("lan.conf"), lan).unwrap();
    std::fs::write(dir.path().join("sim.emu"), emu).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let child = Command::new(exe)
        .current_dir(dir.path())
        .args(["-c", "lan.conf", "-f", "sim.emu", "-s", "state", "-n"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ipmi_sim");
    let guard = ChildGuard(child);
    wait_udp_ready(port);
    Peer {
        _child: guard,
        _dir: dir,
        port,
    }
}

const PYGHMI_BMC: &str = r#"
import sys
from pyghmi.cmd.fakebmc import FakeBmc
import pyghmi.ipmi.bmc as bmc
class LoBmc(FakeBmc):
    def __init__(self, authdata, port):
        bmc.Bmc.__init__(self, authdata, port, address='127.0.0.1')
        self.powerstate = 'off'
        self.bootdevice = 'default'
LoBmc({'admin': 'password'}, int(sys.argv[1])).listen()
"#;

fn start_pyghmi() -> Peer {
    let fakebmc = require_program("fakebmc", "PyPI pyghmi (scripts/deps/power.pip)");
    let python = fakebmc.parent().unwrap().join("python3");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lobmc.py"), PYGHMI_BMC).unwrap();
    let port = free_port(true);
    let child = Command::new(python)
        .arg(dir.path().join("lobmc.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pyghmi BMC");
    let guard = ChildGuard(child);
    wait_udp_ready(port);
    Peer {
        _child: guard,
        _dir: dir,
        port,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_against_openipmi_ipmi_sim_suite_3() {
    let sim = start_ipmi_sim();
    let m = manager_with_wait(Duration::from_millis(300));
    let t = PowerTarget::new(params(sim.port, "password", "3"));
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Query).await.unwrap(),
        PowerState::Off
    );
    assert!(ipmitool(sim.port, "3", &["power", "status"]).contains("is off"));

    assert_eq!(
        m.perform("ipmi", &t, PowerAction::On).await.unwrap(),
        PowerState::On
    );
    assert!(ipmitool(sim.port, "3", &["power", "status"]).contains("is on"));

    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Off(OffMode::Hard))
            .await
            .unwrap(),
        PowerState::Off
    );
    assert!(ipmitool(sim.port, "3", &["power", "status"]).contains("is off"));

    // cycle on an off machine = on (FreeIPMI's --cycle --on-if-off)
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Cycle).await.unwrap(),
        PowerState::On
    );
    assert!(ipmitool(sim.port, "3", &["power", "status"]).contains("is on"));
    // and on a running one: a real power cycle, still on afterwards
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Cycle).await.unwrap(),
        PowerState::On
    );

    // ipmi_sim has no boot-option support (lab.md): a fatal "unsupported".
    let e = m
        .perform("ipmi", &t, PowerAction::SetBootPxe)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_wrong_password_is_fatal_without_retries() {
    let sim = start_ipmi_sim();
    let m = manager_with_wait(Duration::from_secs(1));
    let t = PowerTarget::new(params(sim.port, "not-the-password", "3"));
    let start = Instant::now();
    let e = m.perform("ipmi", &t, PowerAction::On).await.unwrap_err();
    assert!(matches!(e, Error::Auth(_)), "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-password"));
    // one attempt: far less than the first 1 s retry wait
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert!(ipmitool(sim.port, "3", &["power", "status"]).contains("is off"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_against_pyghmi_bmc_with_boot_device() {
    let bmc = start_pyghmi();
    let m = manager_with_wait(Duration::from_millis(100));
    let t = PowerTarget::new(params(bmc.port, "password", "3"));
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Query).await.unwrap(),
        PowerState::Off
    );
    m.perform("ipmi", &t, PowerAction::SetBootPxe)
        .await
        .unwrap();
    let boot = ipmitool(bmc.port, "3", &["chassis", "bootparam", "get", "5"]);
    assert!(boot.contains("Force PXE"), "{boot}");
    assert!(boot.contains("Options apply to only next boot"), "{boot}");
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::On).await.unwrap(),
        PowerState::On
    );
    assert!(ipmitool(bmc.port, "3", &["power", "status"]).contains("is on"));
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Off(OffMode::Hard))
            .await
            .unwrap(),
        PowerState::Off
    );
    assert!(ipmitool(bmc.port, "3", &["power", "status"]).contains("is off"));
    let e = m
        .perform(
            "ipmi",
            &PowerTarget::new(params(bmc.port, "bad", "3")),
            PowerAction::Query,
        )
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
}

async fn start_sim(config: SimConfig) -> (Arc<SimBmc>, u16, CancellationToken) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let bmc = Arc::new(SimBmc::new(config));
    let cancel = CancellationToken::new();
    tokio::spawn(serve(sock, bmc.clone(), cancel.clone()));
    (bmc, port, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_suites_3_and_17_agree_with_ipmitool() {
    let (bmc, port, cancel) = start_sim(SimConfig::single_user("admin", "password")).await;
    let _stop = cancel.drop_guard();
    let m = manager_with_wait(Duration::from_millis(20));
    for suite in ["3", "17"] {
        let t = PowerTarget::new(params(port, "password", suite).with("power_boot_type", "efi"));
        // ours → sim, ipmitool reads back
        assert_eq!(
            m.perform("ipmi", &t, PowerAction::On).await.unwrap(),
            PowerState::On
        );
        assert!(ipmitool(port, suite, &["power", "status"]).contains("is on"));
        m.perform("ipmi", &t, PowerAction::SetBootPxe)
            .await
            .unwrap();
        let boot = tokio::task::spawn_blocking(move || {
            ipmitool(
                port,
                if suite == "3" { "3" } else { "17" },
                &["chassis", "bootparam", "get", "5"],
            )
        })
        .await
        .unwrap();
        assert!(boot.contains("Force PXE"), "{boot}");
        assert!(boot.contains("BIOS EFI boot"), "{boot}");
        assert!(boot.contains("Options apply to only next boot"), "{boot}");
        assert_eq!(
            m.perform("ipmi", &t, PowerAction::Off(OffMode::Soft))
                .await
                .unwrap(),
            PowerState::Off
        );
        // ipmitool → sim, ours reads back
        assert!(ipmitool(port, suite, &["power", "on"]).contains("Up/On"));
        assert_eq!(
            m.perform("ipmi", &t, PowerAction::Query).await.unwrap(),
            PowerState::On
        );
        ipmitool(port, suite, &["power", "off"]);
        assert_eq!(
            m.perform("ipmi", &t, PowerAction::Query).await.unwrap(),
            PowerState::Off
        );
    }
    assert_eq!(bmc.chassis_controls(), [1, 5, 1, 0, 1, 5, 1, 0]);
    assert_eq!(bmc.open_sessions(), 0, "every session closed");
}

#[tokio::test]
async fn ipmi_k_g_two_key_login() {
    let mut config = SimConfig::single_user("admin", "password");
    config.kg = Some(b"bmc-key-0123".to_vec());
    let (_bmc, port, cancel) = start_sim(config).await;
    let _stop = cancel.drop_guard();
    let m = manager_with_wait(Duration::from_millis(20));
    for suite in ["3", "17"] {
        let good = PowerTarget::new(params(port, "password", suite).with("k_g", "bmc-key-0123"));
        assert_eq!(
            m.perform("ipmi", &good, PowerAction::Query).await.unwrap(),
            PowerState::Off
        );
        let hex = PowerTarget::new(
            params(port, "password", suite).with("k_g", "0x626d632d6b65792d30313233"),
        );
        assert_eq!(
            m.perform("ipmi", &hex, PowerAction::Query).await.unwrap(),
            PowerState::Off
        );
        let bad = PowerTarget::new(params(port, "password", suite).with("k_g", "other-key"));
        let e = m
            .perform("ipmi", &bad, PowerAction::Query)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Auth(_)), "{e}");
        assert!(!format!("{e:?}").contains("other-key"));
    }
    // ipmitool agrees on the two-key derivation
    let out = tokio::task::spawn_blocking(move || {
        ipmitool(port, "17", &["-k", "bmc-key-0123", "power", "status"])
    })
    .await
    .unwrap();
    assert!(out.contains("is off"), "{out}");
}

#[tokio::test]
async fn ipmi_unreachable_bmc_is_transient() {
    let port = free_port(true);
    let m = manager_with_wait(Duration::from_millis(10));
    let e = m
        .perform(
            "ipmi",
            &PowerTarget::new(params(port, "password", "3")),
            PowerAction::Query,
        )
        .await
        .unwrap_err();
    assert!(!e.is_fatal(), "{e}");
}

/// `ipmitool -I lan` (IPMI 1.5, MD5) → stdout.
fn ipmitool_lan(port: u16, args: &[&str]) -> String {
    let exe = require_program("ipmitool", "Debian package ipmitool");
    let out = Command::new(exe)
        .args(["-I", "lan", "-H", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U", "admin", "-P", "password", "-A", "MD5", "-N", "1", "-R", "3",
        ])
        .args(args)
        .output()
        .expect("run ipmitool");
    assert!(
        out.status.success(),
        "ipmitool -I lan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_1_5_lan_against_ipmi_sim() {
    let sim = start_ipmi_sim();
    let m = manager_with_wait(Duration::from_millis(300));
    let t = PowerTarget::new(params(sim.port, "password", "3").with("power_driver", "LAN"));
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Query).await.unwrap(),
        PowerState::Off
    );
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::On).await.unwrap(),
        PowerState::On
    );
    assert!(ipmitool_lan(sim.port, &["power", "status"]).contains("is on"));
    assert_eq!(
        m.perform("ipmi", &t, PowerAction::Off(OffMode::Hard))
            .await
            .unwrap(),
        PowerState::Off
    );
    assert!(ipmitool_lan(sim.port, &["power", "status"]).contains("is off"));
    let bad = PowerTarget::new(params(sim.port, "wrong", "3").with("power_driver", "LAN"));
    let e = m
        .perform("ipmi", &bad, PowerAction::Query)
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
}
