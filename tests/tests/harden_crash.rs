//! Crash safety: `kill -9` of `maasd` while 100 deploys are under way, then
//! restarts, on SQLite and on PostgreSQL.
//!
//! 100 machines are deployed by 100 concurrent API requests; `maasd` is
//! killed (SIGKILL: no shutdown code runs) the moment the 50th deploy is
//! answered, while the other requests are still in flight. It is started
//! again, and killed a second time once the resumed power cycles hang at
//! their BMCs (the BMCs hold their answers, see below). Then it is started
//! for good. Checked:
//!
//! - after each kill, the database passes its integrity check (SQLite's
//!   `PRAGMA integrity_check`, which also replays the WAL the killed writer
//!   left; on PostgreSQL, `amcheck`'s `verify_heapam` on every table and
//!   `bt_index_check` with `heapallindexed` on every index), and what was
//!   committed is coherent: a deploy answered 200 was not lost, and a
//!   machine is Deploying exactly when it has its `deploy` operation, its
//!   queued power cycle and one event from its deployer, while a Ready
//!   machine has none of them (status, event and workflow rows are written
//!   in one transaction); a power cycle interrupted at its BMC is still
//!   queued;
//! - after the last restart every machine is in a legal status (Ready,
//!   Deploying or Failed deployment), every queued power cycle runs again
//!   (the BMC sees it from the last run and the event log says it
//!   succeeded), and every deployment fails at its deadline, not before,
//!   with MAAS's reason, and is powered off; the job queue drains;
//! - a last `kill -9` leaves a database that passes the integrity check
//!   again, with an event log whose status changes chain legally from
//!   Ready to each machine's final status.
//!
//! The BMCs are one small HTTP server in this test driven through MAAS's
//! `webhook` power type (a real power driver over real HTTP). That is
//! enough here: the claim is crash safety of `maasd`'s own state, not BMC
//! compatibility (which `workflow_bmc.rs` and the power driver tests prove
//! against real BMC emulators), and a real emulator per machine would not
//! scale to 100 on this machine. The server answers power queries at once
//! but holds its answer to power on/off until the test opens a gate before
//! the last restart, so both kills land with every power cycle unfinished
//! whatever the machine's load: the test is deterministic; only the split
//! between deploys that committed and deploys that never arrived varies.
//!
//! What is killed is `maasd`, not the database server: for SQLite that is
//! the database's only writer dying mid-transaction (the operating system
//! keeps its page cache, so this is not a power-loss test); PostgreSQL sees
//! its client connections drop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use maas_core::lifecycle::can_transition;
use maas_core::{NodeStatus, SystemId};
use maas_e2e::harden::{ApiKey, Client};
use maas_e2e::{Maasd, Postgres, maasd_binary};
use maas_server::db::{DbConn, events, machines};
use maas_server::workflow::store;
use serde_json::{Value, json};

const MACHINES: usize = 100;
/// The deploy answer after which `maasd` is killed.
const KILL_AFTER: usize = 50;
/// The whole test, both runs of `maasd` included.
const BUDGET: Duration = Duration::from_secs(90);

/// Short deadlines (15 s for a deployment) so that they pass within the
/// budget; power calls may hang for a minute so that the killed process
/// never gives up on a held BMC answer before it dies; no power polling,
/// so the only BMC traffic is the deploys' own.
const CONFIG: &str = r#"
[workflow]
tick_ms = 100
node_timeout_secs = 15
power_poll_secs = 0
power_retry_waits_ms = [100, 200, 400]
power_call_timeout_secs = 60
"#;

/// What a webhook BMC was asked: (machine, "on"/"off", epoch: which run of
/// `maasd` asked, 0 for the first).
type Call = (usize, &'static str, u8);

#[derive(Default)]
struct BmcState {
    /// Power of each machine, off at first.
    on: Mutex<Vec<bool>>,
    calls: Mutex<Vec<Call>>,
    epoch: AtomicU8,
    /// Open: power on/off are answered. Closed: held.
    gate: Mutex<bool>,
    opened: Condvar,
    stop: AtomicBool,
}

/// 100 webhook BMCs behind one loopback HTTP server (`/bmc/<n>/on`, `off`
/// and `query`), stopped on drop.
struct WebhookBmcs {
    port: u16,
    state: Arc<BmcState>,
}

impl WebhookBmcs {
    fn start(n: usize) -> WebhookBmcs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(BmcState {
            on: Mutex::new(vec![false; n]),
            ..Default::default()
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve_bmc(conn, &st));
            }
        });
        WebhookBmcs { port, state }
    }

    fn params(&self, n: usize) -> Value {
        let base = format!("http://127.0.0.1:{}/bmc/{n}", self.port);
        json!({
            "power_on_uri": format!("{base}/on"),
            "power_off_uri": format!("{base}/off"),
            "power_query_uri": format!("{base}/query"),
        })
    }

    /// Calls from now on are recorded with `epoch`.
    fn set_epoch(&self, epoch: u8) {
        self.state.epoch.store(epoch, Ordering::SeqCst);
    }

    fn open_gate(&self) {
        *self.state.gate.lock().unwrap() = true;
        self.state.opened.notify_all();
    }

    fn is_on(&self, n: usize) -> bool {
        self.state.on.lock().unwrap()[n]
    }

    fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }
}

impl Drop for WebhookBmcs {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.open_gate();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request per connection (answers carry `Connection: close`).
fn serve_bmc(mut conn: TcpStream, st: &BmcState) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let target = match parts.as_slice() {
        ["bmc", n, verb] => n.parse::<usize>().ok().map(|n| (n, *verb)),
        _ => None,
    };
    let len = st.on.lock().unwrap().len();
    let (code, body) = match (method, target) {
        ("GET", Some((n, "query"))) if n < len => {
            let on = st.on.lock().unwrap()[n];
            let s = if on { "running" } else { "stopped" };
            (200, format!("{{\"status\": \"{s}\"}}"))
        }
        ("POST", Some((n, verb @ ("on" | "off")))) if n < len => {
            // The BMC acts at once; only its answer waits for the gate.
            st.on.lock().unwrap()[n] = verb == "on";
            let verb = if verb == "on" { "on" } else { "off" };
            st.calls
                .lock()
                .unwrap()
                .push((n, verb, st.epoch.load(Ordering::SeqCst)));
            let mut open = st.gate.lock().unwrap();
            while !*open {
                open = st.opened.wait(open).unwrap();
            }
            (200, "{}".to_owned())
        }
        _ => (404, "{}".to_owned()),
    };
    let reason = if code == 200 { "OK" } else { "Not Found" };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn status_of(label: &str) -> NodeStatus {
    NodeStatus::ALL
        .into_iter()
        .find(|s| s.label() == label)
        .unwrap_or_else(|| panic!("unknown status label {label:?}"))
}

/// `X -> Y` at the end of an event description.
fn hop(desc: &str) -> Option<(NodeStatus, NodeStatus)> {
    let inner = desc.strip_suffix(')')?;
    let start = inner.rfind(" (")?;
    let (from, to) = inner[start + 2..].split_once(" -> ")?;
    Some((status_of(from), status_of(to)))
}

/// Allowed by MAAS's transition table, directly or through Allocated
/// (deploy of a Ready machine allocates it first).
fn legal(from: NodeStatus, to: NodeStatus) -> bool {
    can_transition(from, to)
        || (can_transition(from, NodeStatus::Allocated)
            && can_transition(NodeStatus::Allocated, to))
}

fn db_url(m: &Maasd) -> String {
    m.database_url
        .clone()
        .unwrap_or_else(|| m.data_dir.path().join("maas.db").display().to_string())
}

/// A direct connection to `maasd`'s database (only while `maasd` is dead,
/// so SQLite never meets a concurrent writer).
fn connect(m: &Maasd) -> DbConn {
    DbConn::establish(&db_url(m))
        .unwrap_or_else(|e| panic!("opening the database after kill -9: {e}"))
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The backend's integrity check; panics with what it found.
fn integrity_check(c: &mut DbConn) {
    match c {
        DbConn::Sqlite(c) => {
            let rows: Vec<IntegrityRow> =
                diesel::sql_query("PRAGMA integrity_check").load(c).unwrap();
            let found: Vec<&str> = rows.iter().map(|r| r.integrity_check.as_str()).collect();
            assert_eq!(found, ["ok"], "SQLite integrity_check");
        }
        DbConn::Pg(c) => {
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS amcheck")
                .execute(c)
                .unwrap();
            let tables: Vec<Count> = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE s.nspname = 'public' AND c.relkind = 'r'",
            )
            .load(c)
            .unwrap();
            assert!(tables[0].n >= 5, "only {} tables", tables[0].n);
            let corrupt: Vec<Count> = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace, \
                 LATERAL verify_heapam(c.oid, on_error_stop => false) \
                 WHERE s.nspname = 'public' AND c.relkind = 'r'",
            )
            .load(c)
            .unwrap();
            assert_eq!(corrupt[0].n, 0, "verify_heapam found corruption");
            // bt_index_check raises an error on the first bad index.
            let checked = diesel::sql_query(
                "SELECT bt_index_check(c.oid, true) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace s ON s.oid = c.relnamespace \
                 JOIN pg_am a ON a.oid = c.relam \
                 WHERE s.nspname = 'public' AND a.amname = 'btree'",
            )
            .execute(c)
            .unwrap_or_else(|e| panic!("bt_index_check: {e}"));
            assert!(checked >= 5, "only {checked} indexes checked");
        }
    }
}

/// What the database holds about one machine.
#[derive(Debug)]
struct Snapshot {
    status: NodeStatus,
    owner: Option<String>,
    expires_ms: Option<i64>,
    operation: Option<String>,
    jobs: Vec<String>,
    events: Vec<events::Event>,
}

fn snapshot(c: &mut DbConn, ids: &[String]) -> BTreeMap<String, Snapshot> {
    let mut out = BTreeMap::new();
    for sid in ids {
        let id: SystemId = sid.parse().unwrap();
        let sm = machines::get(c, &id).unwrap().expect("machine lost");
        let m = &sm.record.machine;
        let mut evs = events::query(
            c,
            &events::EventQuery {
                system_ids: vec![sid.clone()],
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
        evs.sort_by_key(|e| e.id);
        out.insert(
            sid.clone(),
            Snapshot {
                status: m.status,
                owner: m.owner.clone(),
                expires_ms: m.status_expires.map(|t| t.as_millis()),
                operation: store::operation(c, sid).unwrap().map(|o| o.kind),
                jobs: store::jobs_of(c, sid)
                    .unwrap()
                    .into_iter()
                    .map(|j| j.action)
                    .collect(),
                events: evs,
            },
        );
    }
    out
}

fn wait_for(what: &str, until: Instant, mut f: impl FnMut() -> bool) {
    while !f() {
        assert!(
            Instant::now() < until,
            "timed out (test budget) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The state committed when maasd died: a machine is Deploying with its
/// owner, deadline, `deploy` operation, queued power cycle and one event
/// from its deployer, or Ready with none of them; no answered deploy was
/// lost. Returns the Deploying machines.
fn check_committed(at_kill: &BTreeMap<String, Snapshot>, acked: &HashSet<String>) -> Vec<String> {
    let mut deploying = Vec::new();
    for (sid, s) in at_kill {
        let by_users: Vec<&events::Event> =
            s.events.iter().filter(|e| !e.username.is_empty()).collect();
        match s.status {
            NodeStatus::Deploying => {
                assert_eq!(s.owner.as_deref(), Some("admin"), "{sid}: {s:?}");
                assert_eq!(s.operation.as_deref(), Some("deploy"), "{sid}: {s:?}");
                assert_eq!(s.jobs, ["cycle"], "{sid}: the power cycle is queued");
                assert!(
                    s.expires_ms.is_some(),
                    "{sid}: Deploying without a deadline"
                );
                assert_eq!(by_users.len(), 1, "{sid}: one deploy event: {s:?}");
                assert_eq!(
                    by_users[0].description.rsplit(" -> ").next(),
                    Some("Deploying)"),
                    "{sid}: {s:?}"
                );
                deploying.push(sid.clone());
            }
            NodeStatus::Ready => {
                assert!(!acked.contains(sid), "{sid}: an answered deploy was lost");
                assert_eq!(s.owner, None, "{sid}: {s:?}");
                assert_eq!(s.operation, None, "{sid}: {s:?}");
                assert!(s.jobs.is_empty(), "{sid}: {s:?}");
                assert!(by_users.is_empty(), "{sid}: {s:?}");
            }
            other => panic!("{sid} is {other:?} at the kill: {s:?}"),
        }
    }
    deploying
}

fn crash_during_deploys(pg: Option<&Postgres>) {
    let started = Instant::now();
    let until = started + BUDGET;
    let bmcs = WebhookBmcs::start(MACHINES);
    let url = pg.map(Postgres::url);
    let mut m =
        Maasd::start_configured(&maasd_binary().unwrap(), url.as_deref(), Some(CONFIG)).unwrap();
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let specs: Vec<Value> = (0..MACHINES)
        .map(|n| {
            let mut s = maas_e2e::harden::machine_spec(0x4000 + n, &format!("crash-{n}"));
            s["power_type"] = json!("webhook");
            s["power_parameters"] = bmcs.params(n);
            s
        })
        .collect();
    let ids = m.load_machines(&Value::Array(specs)).unwrap();
    assert_eq!(ids.len(), MACHINES);
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();

    // 100 deploys at once; the thread that receives the 50th answer kills
    // maasd before anything else can happen.
    let answered = AtomicUsize::new(0);
    let pid = m.pid();
    let addr = m.addr.clone();
    let results = maas_e2e::harden::par_map(ids.clone(), MACHINES, |sid| {
        let c = Client::new(&addr, Some(admin.clone()));
        let r = c.post(&format!("/MAAS/api/2.0/machines/{sid}/?op=deploy"), &[]);
        if let Ok(resp) = &r
            && resp.status == 200
            && answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER
        {
            let st = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("running kill");
            assert!(st.success(), "kill -9 {pid}: {st}");
        }
        (sid, r)
    });
    let mut acked = HashSet::new();
    let mut unanswered = 0;
    for (sid, r) in &results {
        match r {
            Ok(resp) => {
                assert!(
                    resp.status < 500,
                    "deploy {sid}: HTTP {} {}",
                    resp.status,
                    resp.text()
                );
                if resp.status == 200 {
                    acked.insert(sid.clone());
                }
            }
            Err(_) => unanswered += 1,
        }
    }
    assert!(
        acked.len() >= KILL_AFTER,
        "only {} deploys answered",
        acked.len()
    );

    // Right after the crash: integrity, and what committed is coherent.
    let mut c = connect(&m);
    integrity_check(&mut c);
    let at_kill = snapshot(&mut c, &ids);
    drop(c);
    let deploying = check_committed(&at_kill, &acked);
    eprintln!(
        "kill -9 after {} answered deploys ({} unanswered, {} committed) at {:?}",
        acked.len(),
        unanswered,
        deploying.len(),
        started.elapsed()
    );

    // Restart with the BMCs still holding their answers: the resumed power
    // cycles reach them, and maasd is killed again while they hang there.
    bmcs.set_epoch(1);
    m.restart().unwrap();
    let want_held = deploying.len().min(8);
    wait_for("resumed power cycles to reach the BMCs", until, || {
        bmcs.calls().iter().filter(|c| c.2 == 1).count() >= want_held
    });
    m.kill9().unwrap();
    let held: Vec<Call> = bmcs.calls().into_iter().filter(|c| c.2 == 1).collect();
    let mut c = connect(&m);
    integrity_check(&mut c);
    let at_kill2 = snapshot(&mut c, &ids);
    drop(c);
    for (sid, s) in &at_kill2 {
        let n = index[sid.as_str()];
        if at_kill[sid].status == NodeStatus::Ready {
            assert_eq!(s.status, NodeStatus::Ready, "{sid}: {s:?}");
            assert!(s.jobs.is_empty(), "{sid}: {s:?}");
            assert!(
                held.iter().all(|c| c.0 != n),
                "{sid}: Ready, its BMC called"
            );
        } else {
            // Still deploying (or failed, if its deadline passed meanwhile),
            // its interrupted power cycle still first in its queue.
            assert!(
                matches!(
                    s.status,
                    NodeStatus::Deploying | NodeStatus::FailedDeployment
                ),
                "{sid}: {s:?}"
            );
            assert_eq!(
                s.jobs.first().map(String::as_str),
                Some("cycle"),
                "{sid}: {s:?}"
            );
        }
    }
    eprintln!(
        "second kill -9 with {} power calls hanging at the BMCs at {:?}",
        held.len(),
        started.elapsed()
    );

    // Restart; the BMCs answer from now on.
    bmcs.set_epoch(2);
    bmcs.open_gate();
    m.restart().unwrap();
    let adm = Client::new(&m.addr, Some(admin));
    for sid in &ids {
        let r = adm.get(&format!("/MAAS/api/2.0/machines/{sid}/")).unwrap();
        let st = r.json().unwrap()["status_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            ["Ready", "Deploying", "Failed deployment"].contains(&st.as_str()),
            "{sid} is {st} after the restart"
        );
        if at_kill[sid].status == NodeStatus::Ready {
            assert_eq!(st, "Ready", "{sid} changed status while maasd was dead");
        }
    }
    // Every deployment fails at its deadline (nothing boots), and then the
    // runner has nothing left to do: no machine Deploying, no operation, no
    // job (read from the database, which maasd keeps using meanwhile).
    let pool = maas_server::db::Pool::open(&db_url(&m), 1).unwrap();
    wait_for(
        "every deployment to fail and the queue to drain",
        until,
        || {
            let mut c = pool.get().unwrap();
            store::machines_in(&mut c, &[NodeStatus::Deploying])
                .unwrap()
                .is_empty()
                && store::all_operations(&mut c).unwrap().is_empty()
                && store::job_count(&mut c).unwrap() == 0
        },
    );
    drop(pool);
    // Second crash, then the final state straight from the database.
    m.kill9().unwrap();
    let mut c = connect(&m);
    integrity_check(&mut c);
    let fin = snapshot(&mut c, &ids);
    let ops = store::all_operations(&mut c).unwrap().len();
    let jobs = store::job_count(&mut c).unwrap();
    drop(c);
    assert_eq!((ops, jobs), (0, 0), "operations and jobs left over");

    let after = bmcs.calls();
    for (sid, s) in &fin {
        let n = index[sid.as_str()];
        let mut cur = NodeStatus::Ready;
        for e in &s.events {
            if let Some((from, to)) = hop(&e.description) {
                assert_eq!(from, cur, "{sid}: {} starts from {from:?}", e.description);
                assert!(legal(from, to), "{sid}: illegal {}", e.description);
                cur = to;
            }
        }
        assert_eq!(cur, s.status, "{sid}: the event chain ends elsewhere");
        if at_kill[sid].status == NodeStatus::Ready {
            assert_eq!(s.status, NodeStatus::Ready, "{sid}");
            assert!(
                after.iter().all(|(k, _, _)| *k != n),
                "{sid}: a Ready machine's BMC was touched"
            );
            continue;
        }
        assert_eq!(s.status, NodeStatus::FailedDeployment, "{sid}: {s:?}");
        // Resumed: the queued cycle ran again after the restart …
        assert!(
            after.contains(&(n, "on", 2)),
            "{sid}: its power cycle did not run after the restart"
        );
        assert!(
            s.events
                .iter()
                .any(|e| e.description.starts_with("Power cycle succeeded")),
            "{sid}: no successful power cycle: {s:?}"
        );
        // … and the deployment failed at its deadline, not before.
        let deadline = at_kill[sid].expires_ms.unwrap_or_default();
        let failed = s
            .events
            .iter()
            .find(|e| e.description.contains("time-out during deployment"))
            .unwrap_or_else(|| panic!("{sid}: no time-out event: {s:?}"));
        assert!(
            failed.created >= deadline,
            "{sid}: failed {} ms before its deadline",
            deadline - failed.created
        );
        assert!(
            s.events
                .iter()
                .any(|e| e.id > failed.id && e.description.starts_with("Power off succeeded")),
            "{sid}: not powered off after failing: {s:?}"
        );
        assert!(!bmcs.is_on(n), "{sid}: left powered on");
    }
    assert!(started.elapsed() < BUDGET, "took {:?}", started.elapsed());
    eprintln!(
        "{} deployments resumed and failed at their deadlines, {} machines untouched, in {:?}",
        deploying.len(),
        MACHINES - deploying.len(),
        started.elapsed()
    );
}

#[test]
fn kill_9_during_100_deploys_then_restart_on_sqlite() {
    crash_during_deploys(None);
}

#[test]
fn kill_9_during_100_deploys_then_restart_on_postgres() {
    let pg = Postgres::start().unwrap();
    crash_during_deploys(Some(&pg));
}

#[test]
fn event_hops_parse() {
    assert_eq!(
        hop("Deploying (Ready -> Deploying)"),
        Some((NodeStatus::Ready, NodeStatus::Deploying))
    );
    assert_eq!(hop("Power cycle succeeded; power state on"), None);
    assert!(legal(NodeStatus::Ready, NodeStatus::Deploying));
    assert!(legal(NodeStatus::Deploying, NodeStatus::FailedDeployment));
    assert!(!legal(NodeStatus::Ready, NodeStatus::FailedDeployment));
}
