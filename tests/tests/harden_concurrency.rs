//! Concurrency on one machine: deploy, release, mark_broken, lock, unlock,
//! power_on, abort, mark_fixed and allocate fired at the same machine all
//! at once (several machines, each its own storm), on SQLite and
//! PostgreSQL. Afterwards every machine must be in a legal state, and its
//! event log coherent: each status-changing event's `before -> after`
//! starts where the previous one ended, every step is allowed by MAAS's
//! transition table (`maas_core::lifecycle`, directly or through the one
//! intermediate status an action passes through, such as Ready → Allocated
//! → Deploying), the chain ends in the machine's final status, and there
//! is exactly one event per accepted write, none lost or doubled.
//!
//! (1,000 concurrent allocations of 100 machines on both backends are
//! `api_concurrency.rs`.)

use maas_core::NodeStatus;
use maas_core::lifecycle::can_transition;
use maas_e2e::harden::{ApiKey, Client, StartOpts, machine_spec, par_map};
use maas_e2e::{Maasd, Postgres, maasd_binary};
use serde_json::{Value, json};

const MACHINES: usize = 8;

/// (actor is admin, method, op, form) of one storm request.
type StormRequest = (
    bool,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const STORM: &[StormRequest] = &[
    (false, "POST", "deploy", &[("distro_series", "jammy")]),
    (false, "POST", "release", &[]),
    (false, "POST", "mark_broken", &[("comment", "storm")]),
    (false, "POST", "lock", &[]),
    (false, "POST", "unlock", &[]),
    (false, "POST", "power_on", &[]),
    (false, "POST", "abort", &[]),
    (true, "POST", "mark_fixed", &[]),
    (true, "POST", "release", &[]),
    (false, "ALLOCATE", "allocate", &[]),
    (false, "GET", "query_power_state", &[]),
];

const ROUNDS: usize = 5;

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

/// Allowed directly, or through one of the statuses an action passes
/// through on the way (deploy from Ready allocates first; a release that
/// has nothing to wait for passes Releasing; exiting rescue mode passes
/// Exiting rescue mode).
fn legal(from: NodeStatus, to: NodeStatus) -> bool {
    can_transition(from, to)
        || [
            NodeStatus::Allocated,
            NodeStatus::Releasing,
            NodeStatus::ExitingRescueMode,
        ]
        .into_iter()
        .any(|via| can_transition(from, via) && can_transition(via, to))
}

fn storm(m: &Maasd) {
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", "pw-alice", false).unwrap();
    let specs: Vec<Value> = (0..MACHINES)
        .map(|i| machine_spec(i, &format!("storm-{i}")))
        .collect();
    let ids = m.load_machines(&Value::Array(specs)).unwrap();

    let mut work = Vec::new();
    for _ in 0..ROUNDS {
        for id in &ids {
            for (k, req) in STORM.iter().enumerate() {
                work.push((id.clone(), k, *req));
            }
        }
    }
    // Interleave deterministically so each machine sees a mix at once.
    work.sort_by_key(|(id, k, _)| (*k * 7919 + id.len()) % 13);
    let addr = m.addr.clone();
    let answers = par_map(work.clone(), 16, |(id, _, (as_admin, method, op, form))| {
        let key = if as_admin {
            admin.clone()
        } else {
            alice.clone()
        };
        let c = Client::new(&addr, Some(key));
        match method {
            "ALLOCATE" => c.post(
                "/MAAS/api/2.0/machines/?op=allocate",
                &[("system_id", id.as_str())],
            ),
            "GET" => c.get(&format!("/MAAS/api/2.0/machines/{id}/?op={op}")),
            _ => c.post(&format!("/MAAS/api/2.0/machines/{id}/?op={op}"), form),
        }
    });

    let mut accepted_writes = std::collections::HashMap::<String, usize>::new();
    for ((id, _, (_, method, op, _)), a) in work.iter().zip(&answers) {
        let r = a.as_ref().unwrap_or_else(|e| panic!("{op} on {id}: {e:#}"));
        assert!(
            r.status < 500 && !r.body.is_empty(),
            "{op} on {id}: HTTP {} {}",
            r.status,
            r.text()
        );
        if *method != "GET" && (200..300).contains(&r.status) {
            *accepted_writes.entry(id.clone()).or_default() += 1;
        }
    }

    let adm = Client::new(&m.addr, Some(admin));
    for id in &ids {
        let r = adm.get(&format!("/MAAS/api/2.0/machines/{id}/")).unwrap();
        let mj = r.json().unwrap();
        let fin = status_of(mj["status_name"].as_str().unwrap());
        let owner = &mj["owner"];
        // State invariants MAAS keeps.
        if matches!(fin, NodeStatus::Ready | NodeStatus::New) {
            assert_eq!(owner, &Value::Null, "{id}: {fin:?} with an owner");
        }
        if matches!(fin, NodeStatus::Allocated | NodeStatus::Deploying) {
            assert_eq!(owner, &json!("alice"), "{id}: {fin:?} without its owner");
        }
        if mj["locked"] == json!(true) {
            assert!(
                matches!(fin, NodeStatus::Deployed | NodeStatus::Deploying),
                "{id}: locked in {fin:?}"
            );
        }
        let r = adm
            .get(&format!(
                "/MAAS/api/2.0/events/?op=query&id={id}&limit=1000"
            ))
            .unwrap();
        let ev = r.json().unwrap();
        let mut events: Vec<&Value> = ev["events"].as_array().unwrap().iter().collect();
        events.sort_by_key(|e| e["id"].as_i64());
        let mut cur = NodeStatus::Ready;
        let mut changes = 0;
        for e in &events {
            let desc = e["description"].as_str().unwrap();
            if let Some((from, to)) = hop(desc) {
                assert_eq!(
                    from, cur,
                    "{id}: event {} starts from {from:?}, the machine was {cur:?}",
                    e["id"]
                );
                assert!(legal(from, to), "{id}: illegal {from:?} -> {to:?}: {desc}");
                cur = to;
                changes += 1;
            }
        }
        assert_eq!(
            cur, fin,
            "{id}: the event chain ends in {cur:?}, the machine is {fin:?}"
        );
        // The workflow runner adds its own events (power results, releases
        // finishing when the power is seen off) under no username; every
        // accepted API write adds exactly one under the caller's name.
        let by_users = events
            .iter()
            .filter(|e| e["username"].as_str().is_some_and(|u| !u.is_empty()))
            .count();
        assert_eq!(
            by_users,
            accepted_writes.get(id).copied().unwrap_or(0),
            "{id}: one event per accepted write"
        );
        eprintln!(
            "{id}: {} accepted writes, {changes} status changes, final {fin:?}",
            events.len()
        );
    }
}

#[test]
fn concurrent_actions_on_one_machine_on_sqlite() {
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &StartOpts::default()).unwrap();
    storm(&m);
}

#[test]
fn concurrent_actions_on_one_machine_on_postgres() {
    let pg = Postgres::start().unwrap();
    let opts = StartOpts {
        database_url: Some(pg.url()),
        ..Default::default()
    };
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &opts).unwrap();
    storm(&m);
}

#[test]
fn event_hops_parse() {
    assert_eq!(
        hop("Deploying (a (nested) comment) (Ready -> Deploying)"),
        Some((NodeStatus::Ready, NodeStatus::Deploying))
    );
    assert_eq!(
        hop("Marked broken (Failed deployment -> Broken)"),
        Some((NodeStatus::FailedDeployment, NodeStatus::Broken))
    );
    assert_eq!(hop("Locked"), None);
    assert!(legal(NodeStatus::Ready, NodeStatus::Deploying));
    assert!(!legal(NodeStatus::New, NodeStatus::Deployed));
    assert!(!legal(NodeStatus::New, NodeStatus::Deploying));
}
