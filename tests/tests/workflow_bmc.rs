//! Durable workflows of the real `maasd` against a real IPMI 2.0 peer
//! (pyghmi's BMC, read back independently with `ipmitool`): deploy powers
//! the BMC on, release waits for off and ends Ready, a passed deadline
//! fails the deployment with its reason in the event log and powers off,
//! and a `kill -9` of `maasd` mid-deploy leaves every machine in a legal
//! status with every operation resumed or timed out; and the ephemeral
//! environment's reports (metadata `op=signal`, curtin's webhook events,
//! netboot off, the user-data read) end the operations the runner powered
//! through the BMC: Ready with hardware and storage layout, Deployed, or
//! failed with the reason in the event log — on SQLite and on PostgreSQL.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maas_e2e::{Maasd, Postgres, maasd_binary, wait_for};
use serde_json::{Value, json};

/// Short timeouts so deadlines pass within the test's budget.
const CONFIG: &str = r#"
[workflow]
tick_ms = 100
node_timeout_secs = 6
power_poll_secs = 1
power_retry_waits_ms = [200, 400, 800]
power_call_timeout_secs = 5
"#;

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

/// pyghmi's BMC on a loopback UDP port, killed on drop.
struct Bmc {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> std::path::PathBuf {
    let venv = std::env::var_os("MAAS_RS_VENV").map_or_else(
        || {
            let script =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/venv-path.sh");
            let out = Command::new("bash")
                .arg(script)
                .output()
                .expect("venv-path.sh");
            std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        },
        std::path::PathBuf::from,
    );
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import pyghmi.ipmi.bmc"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "pyghmi is missing from {}: install the PyPI package pyghmi (scripts/deps/power.pip)",
        venv.display()
    );
    py
}

fn start_bmc() -> Bmc {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lobmc.py"), PYGHMI_BMC).unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python())
        .arg(dir.path().join("lobmc.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pyghmi BMC");
    let b = Bmc {
        child,
        port,
        _dir: dir,
    };
    wait_for("pyghmi BMC answering ipmitool", 20, || bmc_power(b.port));
    b
}

/// `ipmitool power status` of the BMC: `on`, `off`, or None on failure.
fn bmc_power(port: u16) -> Option<String> {
    let out = Command::new("ipmitool")
        .args(["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U", "admin", "-P", "password", "-C", "3", "-N", "1", "-R", "2",
        ])
        .args(["power", "status"])
        .output()
        .expect("ipmitool missing: install the Debian package ipmitool (scripts/deps/power.apt)");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("is on") {
        Some("on".into())
    } else if text.contains("is off") {
        Some("off".into())
    } else {
        None
    }
}

/// API 2.0 over plain HTTP with the admin's OAuth PLAINTEXT key.
struct Api {
    addr: String,
    consumer: String,
    token: String,
    secret: String,
}

impl Api {
    fn new(m: &Maasd) -> Api {
        let key = m.admin_key("admin", "pw").unwrap();
        let parts: Vec<&str> = key.split(':').collect();
        assert_eq!(parts.len(), 3, "{key}");
        Api {
            addr: m.addr.clone(),
            consumer: parts[0].into(),
            token: parts[1].into(),
            secret: parts[2].into(),
        }
    }

    fn call(&self, method: &str, path: &str, form: &str) -> (u16, String) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let auth = format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{}\", oauth_timestamp=\"{}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
            now.as_nanos(),
            now.as_secs(),
            self.consumer,
            self.token,
            self.secret
        );
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.addr,
            form.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }

    fn op(&self, sid: &str, op: &str) -> Value {
        let (st, body) = self.call(
            "POST",
            &format!("/MAAS/api/2.0/machines/{sid}/?op={op}"),
            "",
        );
        assert_eq!(st, 200, "op={op}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn machine(&self, sid: &str) -> Value {
        let (st, body) = self.call("GET", &format!("/MAAS/api/2.0/machines/{sid}/"), "");
        assert_eq!(st, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn status(&self, sid: &str) -> String {
        self.machine(sid)["status_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn events(&self, sid: &str) -> Vec<Value> {
        let (st, body) = self.call(
            "GET",
            &format!("/MAAS/api/2.0/events/?op=query&id={sid}&limit=1000"),
            "",
        );
        assert_eq!(st, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["events"].as_array().cloned().unwrap_or_default()
    }

    fn has_event(&self, sid: &str, needle: &str) -> bool {
        self.events(sid).iter().any(|e| {
            e["description"]
                .as_str()
                .is_some_and(|d| d.contains(needle))
        })
    }
}

fn ipmi_spec(hostname: &str, port: u16, n: u8) -> Value {
    json!({
        "hostname": hostname,
        "cpu_count": 2,
        "memory_mib": 4096,
        "disks": [{"name": "sda", "size": 100_000_000_000u64}],
        "nics": [{"name": "eth0", "mac": format!("52:54:02:00:00:{n:02x}")}],
        "power_type": "ipmi",
        "power_parameters": {
            "power_driver": "LAN_2_0",
            "power_address": format!("127.0.0.1:{port}"),
            "power_user": "admin",
            "power_pass": "password",
            "cipher_suite_id": "3",
            "privilege_level": "ADMIN",
        },
    })
}

fn load(m: &Maasd, specs: &[Value]) -> Vec<String> {
    let f = m.data_dir.path().join("machines.json");
    std::fs::write(&f, serde_json::to_string(specs).unwrap()).unwrap();
    m.manage(&["load-machines", f.to_str().unwrap()])
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn deploy_release_and_deadline(database_url: Option<&str>) {
    let bmc = start_bmc();
    let m = Maasd::start_configured(&maasd_binary().unwrap(), database_url, Some(CONFIG)).unwrap();
    let api = Api::new(&m);
    let sid = load(&m, &[ipmi_spec("flow-1", bmc.port, 1)]).remove(0);
    assert_eq!(bmc_power(bmc.port).as_deref(), Some("off"));

    // Deploy: the runner power-cycles through the BMC (off → on).
    let j = api.op(&sid, "deploy");
    assert_eq!(j["status_name"], "Deploying", "{j}");
    wait_for("the BMC to be powered on by deploy", 20, || {
        (bmc_power(bmc.port).as_deref() == Some("on")).then_some(())
    });
    wait_for("power_state on recorded", 20, || {
        (api.machine(&sid)["power_state"] == "on").then_some(())
    });
    assert!(api.has_event(&sid, "Power cycle succeeded"));

    // Release: power off, wait for the BMC to report off, then Ready.
    let j = api.op(&sid, "release");
    assert_eq!(j["status_name"], "Releasing", "{j}");
    wait_for("release to finish", 20, || {
        (api.status(&sid) == "Ready").then_some(())
    });
    assert_eq!(bmc_power(bmc.port).as_deref(), Some("off"));
    assert_eq!(api.machine(&sid)["power_state"], "off");
    assert!(api.has_event(&sid, "Released (Releasing -> Ready)"));

    // Deploy again and let the (6 s) deadline pass: Failed deployment,
    // the reason in the event log, the machine powered off.
    api.op(&sid, "deploy");
    wait_for("the BMC on again", 20, || {
        (bmc_power(bmc.port).as_deref() == Some("on")).then_some(())
    });
    let started = Instant::now();
    wait_for("the deadline to fail the deployment", 30, || {
        (api.status(&sid) == "Failed deployment").then_some(())
    });
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "failed before its deadline"
    );
    assert!(
        api.has_event(&sid, "time-out during deployment"),
        "{:?}",
        api.events(&sid)
    );
    assert_eq!(
        api.machine(&sid)["error_description"],
        "time-out during deployment"
    );
    wait_for("the failed machine powered off", 20, || {
        (bmc_power(bmc.port).as_deref() == Some("off")).then_some(())
    });
}

#[test]
fn deploy_release_deadline_with_pyghmi_bmc_on_sqlite() {
    deploy_release_and_deadline(None);
}

#[test]
fn deploy_release_deadline_with_pyghmi_bmc_on_postgres() {
    let pg = Postgres::start().unwrap();
    deploy_release_and_deadline(Some(&pg.url()));
}

/// Rows of the workflow tables, read straight from the database.
fn workflow_rows(m: &Maasd) -> (usize, i64) {
    let url = m
        .database_url
        .clone()
        .unwrap_or_else(|| m.data_dir.path().join("maas.db").display().to_string());
    let pool = maas_server::db::Pool::open(&url, 1).unwrap();
    let mut c = pool.get().unwrap();
    (
        maas_server::workflow::store::all_operations(&mut c)
            .unwrap()
            .len(),
        maas_server::workflow::store::job_count(&mut c).unwrap(),
    )
}

fn kill_mid_deploy(database_url: Option<&str>) {
    const N: u8 = 3;
    let bmcs: Vec<Bmc> = (0..N).map(|_| start_bmc()).collect();
    let mut m =
        Maasd::start_configured(&maasd_binary().unwrap(), database_url, Some(CONFIG)).unwrap();
    let api = Api::new(&m);
    let specs: Vec<Value> = bmcs
        .iter()
        .enumerate()
        .map(|(i, b)| ipmi_spec(&format!("crash-{i}"), b.port, 0x10 + i as u8))
        .collect();
    let ids = load(&m, &specs);
    for sid in &ids {
        api.op(sid, "deploy");
    }
    m.kill9().unwrap();

    // The operation rows were committed with the status change.
    let (ops, _) = workflow_rows(&m);
    assert_eq!(ops, ids.len(), "one operation row per deploying machine");

    m.restart().unwrap();
    let legal = ["Deploying", "Failed deployment"];
    for sid in &ids {
        let st = api.status(sid);
        assert!(legal.contains(&st.as_str()), "{sid} is {st} after restart");
    }
    // Resumed: the power jobs left by the killed process ran (the BMCs came
    // on) …
    for b in &bmcs {
        wait_for("a resumed power cycle", 20, || {
            (bmc_power(b.port).as_deref() == Some("on")).then_some(())
        });
    }
    // … and then timed out at the deadline, with the reason, powered off.
    for sid in &ids {
        wait_for("every deployment to time out", 30, || {
            (api.status(sid) == "Failed deployment").then_some(())
        });
        assert!(api.has_event(sid, "time-out during deployment"));
        assert!(api.has_event(sid, "Power cycle succeeded"));
    }
    for b in &bmcs {
        wait_for("the failed machines powered off", 20, || {
            (bmc_power(b.port).as_deref() == Some("off")).then_some(())
        });
    }
    wait_for("the job queue to drain", 20, || {
        let (ops, jobs) = workflow_rows(&m);
        (ops == 0 && jobs == 0).then_some(())
    });
}

#[test]
fn kill_9_mid_deploy_then_restart_on_sqlite() {
    kill_mid_deploy(None);
}

#[test]
fn kill_9_mid_deploy_then_restart_on_postgres() {
    let pg = Postgres::start().unwrap();
    kill_mid_deploy(Some(&pg.url()));
}

// ------------------------------------------------------------------
// The ephemeral environment's reports drive the runner's operations.

/// Deadlines long enough that only the reports end the operations.
const SIGNAL_CONFIG: &str = r#"
[workflow]
tick_ms = 100
node_timeout_secs = 120
power_poll_secs = 0
power_retry_waits_ms = [200, 400, 800]
power_call_timeout_secs = 5
"#;

/// A node's OAuth credentials (from `op=get_token`).
struct NodeCreds {
    consumer: String,
    token: String,
    secret: String,
}

/// One raw HTTP/1.0 exchange, signed with `creds` when given.
fn http(
    addr: &str,
    creds: Option<&NodeCreds>,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, String) {
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(c) = creds {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        head += &format!(
            "Authorization: OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\", oauth_nonce=\"{}\", oauth_timestamp=\"{}\"\r\n",
            c.consumer,
            c.token,
            c.secret,
            now.as_nanos(),
            now.as_secs()
        );
    }
    head += &format!(
        "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// A multipart form as MAAS's runner posts it: fields, then files.
fn multipart(fields: &[(&str, &str)], files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    const B: &str = "flow-boundary-7f3a9c";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{B}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={B}"), body)
}

/// The hardware output recorded on a real machine (tests/fixtures).
fn recorded_outputs() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/commissioning");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn node_creds(api: &Api, sid: &str) -> NodeCreds {
    let (st, body) = api.call(
        "GET",
        &format!("/MAAS/api/2.0/machines/{sid}/?op=get_token"),
        "",
    );
    assert_eq!(st, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    NodeCreds {
        consumer: t["consumer_key"].as_str().unwrap().into(),
        token: t["token_key"].as_str().unwrap().into(),
        secret: t["token_secret"].as_str().unwrap().into(),
    }
}

fn signal(m: &Maasd, c: &NodeCreds, fields: &[(&str, &str)], files: &[(String, Vec<u8>)]) {
    let mut all = vec![("op", "signal")];
    all.extend_from_slice(fields);
    let (ctype, body) = multipart(&all, files);
    let (st, text) = http(
        &m.addr,
        Some(c),
        "POST",
        "/MAAS/metadata/2012-03-01/",
        &ctype,
        &body,
    );
    assert_eq!(st, 200, "signal {fields:?}: {text}");
}

fn webhook(m: &Maasd, c: &NodeCreds, sid: &str, event_type: &str, name: &str, result: &str) {
    let mut ev = json!({
        "event_type": event_type, "origin": "curtin", "name": name,
        "description": format!("curtin {name}"), "timestamp": 1_700_000_000.0,
    });
    if !result.is_empty() {
        ev["result"] = json!(result);
    }
    let body = ev.to_string();
    let (st, text) = http(
        &m.addr,
        Some(c),
        "POST",
        &format!("/MAAS/metadata/status/{sid}"),
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(st, 204, "webhook {event_type} {name}: {text}");
}

/// The operation row of a machine: (kind, step).
fn operation_of(m: &Maasd, sid: &str) -> Option<(String, String)> {
    let url = m
        .database_url
        .clone()
        .unwrap_or_else(|| m.data_dir.path().join("maas.db").display().to_string());
    let pool = maas_server::db::Pool::open(&url, 1).unwrap();
    let mut c = pool.get().unwrap();
    maas_server::workflow::store::operation(&mut c, sid)
        .unwrap()
        .map(|o| (o.kind, o.step))
}

fn stored(m: &Maasd, sid: &str) -> maas_server::db::machines::StoredMachine {
    let url = m
        .database_url
        .clone()
        .unwrap_or_else(|| m.data_dir.path().join("maas.db").display().to_string());
    let pool = maas_server::db::Pool::open(&url, 1).unwrap();
    let mut c = pool.get().unwrap();
    maas_server::db::machines::get(&mut c, &sid.parse().unwrap())
        .unwrap()
        .unwrap()
}

fn count_events(api: &Api, sid: &str, needle: &str) -> usize {
    api.events(sid)
        .iter()
        .filter(|e| {
            e["description"]
                .as_str()
                .is_some_and(|d| d.contains(needle))
        })
        .count()
}

/// Waits for the runner to have carried out the power step of the
/// operation just started (`n` power cycles in all) and the BMC to be on.
fn await_power_step(api: &Api, bmc: &Bmc, sid: &str, n: usize) {
    wait_for("the runner's power cycle", 30, || {
        (count_events(api, sid, "Power cycle succeeded") >= n).then_some(())
    });
    wait_for("the BMC on", 20, || {
        (bmc_power(bmc.port).as_deref() == Some("on")).then_some(())
    });
}

fn signals_drive_the_runner(database_url: Option<&str>) {
    let bmc = start_bmc();
    let m = Maasd::start_configured(&maasd_binary().unwrap(), database_url, Some(SIGNAL_CONFIG))
        .unwrap();
    let api = Api::new(&m);
    let sid = load(&m, &[ipmi_spec("sig-1", bmc.port, 0x40)]).remove(0);
    let node = node_creds(&api, &sid);
    let outputs = recorded_outputs();
    let cpus = outputs
        .iter()
        .find(|(n, _)| n == "00-maas-01-cpuinfo")
        .map(|(_, d)| {
            String::from_utf8_lossy(d)
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count()
        })
        .unwrap();

    // 1. Commissioning: the runner power-cycles through the BMC, the
    //    ephemeral environment reports its hardware and OK → Ready with the
    //    hardware and the default storage layout, the operation ended.
    let j = api.op(&sid, "commission");
    assert_eq!(j["status_name"], "Commissioning", "{j}");
    await_power_step(&api, &bmc, &sid, 1);
    assert_eq!(
        operation_of(&m, &sid),
        Some(("commission".into(), "netboot".into()))
    );
    signal(
        &m,
        &node,
        &[("status", "WORKING"), ("exit_status", "0")],
        &outputs,
    );
    assert_eq!(api.status(&sid), "Commissioning");
    signal(&m, &node, &[("status", "OK")], &[]);
    let j = api.machine(&sid);
    assert_eq!(j["status_name"], "Ready", "{:?}", api.events(&sid));
    assert_eq!(j["cpu_count"].as_u64(), Some(cpus as u64), "{j}");
    assert_eq!(j["boot_disk"]["name"], "vda", "{j}");
    let sm = stored(&m, &sid);
    assert_eq!(sm.record.extra.storage_layout, "flat");
    assert!(
        !sm.record.machine.storage.partitions.is_empty(),
        "the default layout partitions the boot disk"
    );
    assert_eq!(operation_of(&m, &sid), None);
    assert!(api.has_event(&sid, "Commissioned (Commissioning -> Ready)"));
    let (st, body) = api.call(
        "GET",
        &format!("/MAAS/api/2.0/nodes/{sid}/results/current-commissioning/"),
        "",
    );
    assert_eq!(st, 200, "{body}");
    let set: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(set["status_name"], "Passed", "{set}");
    assert!(
        set["results"].as_array().is_some_and(|r| r.len() >= 4),
        "{set}"
    );

    // 2. Deploy: power cycle, curtin's events, netboot off, the installed
    //    OS reads its user-data → Deployed, the operation ended.
    let j = api.op(&sid, "deploy");
    assert_eq!(j["status_name"], "Deploying", "{j}");
    await_power_step(&api, &bmc, &sid, 2);
    assert_eq!(
        operation_of(&m, &sid),
        Some(("deploy".into(), "netboot".into()))
    );
    webhook(&m, &node, &sid, "start", "cmd-install", "");
    webhook(&m, &node, &sid, "finish", "cmd-install", "SUCCESS");
    let (st, _) = http(
        &m.addr,
        None,
        "POST",
        &format!("/MAAS/metadata/latest/by-id/{sid}/"),
        "application/x-www-form-urlencoded",
        b"op=netboot_off",
    );
    assert_eq!(st, 200);
    assert_eq!(api.machine(&sid)["netboot"], false);
    assert_eq!(api.status(&sid), "Deploying");
    let (st, _) = http(
        &m.addr,
        Some(&node),
        "GET",
        "/MAAS/metadata/2012-03-01/user-data",
        "text/plain",
        b"",
    );
    assert_eq!(
        st, 404,
        "no user data was given; the hand-off happened anyway"
    );
    assert_eq!(api.status(&sid), "Deployed");
    assert_eq!(operation_of(&m, &sid), None);
    assert!(api.has_event(&sid, "Deployed (Deploying -> Deployed)"));
    assert!(api.has_event(&sid, "cmd-install"));
    assert_eq!(bmc_power(bmc.port).as_deref(), Some("on"));

    // 3. Release through the runner (power off, wait for off) → Ready.
    api.op(&sid, "release");
    wait_for("release to finish", 30, || {
        (api.status(&sid) == "Ready").then_some(())
    });
    assert_eq!(bmc_power(bmc.port).as_deref(), Some("off"));

    // 4. A FAILED report ends the operation failed, the reason logged.
    api.op(&sid, "commission");
    await_power_step(&api, &bmc, &sid, 3);
    signal(
        &m,
        &node,
        &[
            ("status", "FAILED"),
            ("error", "smartctl found a dying disk"),
        ],
        &[],
    );
    let j = api.machine(&sid);
    assert_eq!(j["status_name"], "Failed commissioning", "{j}");
    assert_eq!(j["error_description"], "smartctl found a dying disk");
    assert!(api.events(&sid).iter().any(|e| {
        e["level"] == "ERROR"
            && e["description"]
                .as_str()
                .is_some_and(|d| d.contains("smartctl found a dying disk"))
    }));
    assert_eq!(operation_of(&m, &sid), None);

    // 5. … and a failed install fails the deployment the same way.
    api.op(&sid, "commission");
    await_power_step(&api, &bmc, &sid, 4);
    signal(&m, &node, &[("status", "OK")], &[]);
    assert_eq!(api.status(&sid), "Ready");
    api.op(&sid, "deploy");
    await_power_step(&api, &bmc, &sid, 5);
    webhook(&m, &node, &sid, "start", "cmd-install", "");
    webhook(&m, &node, &sid, "finish", "cmd-install", "FAIL");
    let j = api.machine(&sid);
    assert_eq!(j["status_name"], "Failed deployment", "{j}");
    assert!(
        j["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("cmd-install")),
        "{j}"
    );
    assert!(api.events(&sid).iter().any(|e| {
        e["level"] == "ERROR"
            && e["description"]
                .as_str()
                .is_some_and(|d| d.contains("(Deploying -> Failed deployment)"))
    }));
    assert_eq!(operation_of(&m, &sid), None);
}

#[test]
fn signals_drive_the_runner_with_pyghmi_bmc_on_sqlite() {
    signals_drive_the_runner(None);
}

#[test]
fn signals_drive_the_runner_with_pyghmi_bmc_on_postgres() {
    let pg = Postgres::start().unwrap();
    signals_drive_the_runner(Some(&pg.url()));
}
