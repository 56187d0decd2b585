//! The authorization matrix: {admin, owner, other user, anonymous} × every
//! machine operation of the API × representative statuses (New, Ready,
//! Allocated, Deploying, Deployed, Deployed+locked, Broken, Failed
//! deployment, Failed testing, Rescue mode), each case on its own machine,
//! all sent concurrently to the real `maasd`, on SQLite and PostgreSQL.
//!
//! The expected answer of every case (HTTP status AND resulting status,
//! owner and lock) is computed by [`maas`], written from MAAS's source, not
//! from maas-rs code: `maasserver/auth/local.py` (`MAASAuthorizationBackend`:
//! view/edit/lock/admin/admin_read permissions; edit and admin refuse locked
//! machines), `BaseNodeManager.get_node_or_404` (a failed permission is 403,
//! also for machines the caller may not see), `api/machines.py` and
//! `api/nodes.py` (which permission each op asks for; mark_broken needs the
//! caller to own the machine; set_owner_data answers 409 to non-owners;
//! set_storage_layout 409 unless Ready; deploy needs DEPLOYING reachable),
//! `forms/ephemeral.py` + `node_action.py` (commission and test in a status
//! their action does not list are 400), and `models/node.py` (lock only
//! Deployed/Deploying, abort, release, rescue mode). maas.md §1.4 summarises.
//!
//! Deliberate divergences from MAAS would be listed in [`maasd_divergence`];
//! there are none at present.

use std::collections::HashMap;

use maas_core::NodeStatus::{self, *};
use maas_e2e::harden::{ApiKey, Client, StartOpts, machine_spec, par_map};
use maas_e2e::{Maasd, Postgres, maasd_binary};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Owner,
    Other,
    Anon,
}

const WHO: [Who; 4] = [Who::Admin, Who::Owner, Who::Other, Who::Anon];

impl Who {
    fn username(self) -> Option<&'static str> {
        match self {
            Who::Admin => Some("admin"),
            Who::Owner => Some("alice"),
            Who::Other => Some("bob"),
            Who::Anon => None,
        }
    }
}

/// A machine as the case starts: owned machines belong to `alice` (the
/// "owner" actor).
#[derive(Clone, Copy, Debug)]
struct Fixture {
    status: NodeStatus,
    owned: bool,
    locked: bool,
    previous: NodeStatus,
}

const fn fx(status: NodeStatus, owned: bool) -> Fixture {
    Fixture {
        status,
        owned,
        locked: false,
        previous: Ready,
    }
}

const FIXTURES: [Fixture; 10] = [
    fx(New, false),
    fx(Ready, false),
    fx(Allocated, true),
    fx(Deploying, true),
    fx(Deployed, true),
    Fixture {
        status: Deployed,
        owned: true,
        locked: true,
        previous: Ready,
    },
    fx(Broken, false),
    fx(FailedDeployment, true),
    fx(FailedTesting, false),
    fx(RescueMode, false),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Update,
    Delete,
    Deploy,
    Release,
    Commission,
    Test,
    Abort,
    MarkBroken,
    MarkFixed,
    RescueMode,
    ExitRescueMode,
    Lock,
    Unlock,
    PowerOn,
    PowerOff,
    QueryPowerState,
    OverrideFailedTesting,
    SetStorageLayout,
    ClearDefaultGateways,
    SetOwnerData,
    Details,
    GetToken,
    PowerParameters,
    GetCurtinConfig,
    // On the collection, naming the machine.
    Allocate,
    Accept,
    ReleaseMany,
}

const OPS: [Op; 28] = [
    Op::Read,
    Op::Update,
    Op::Delete,
    Op::Deploy,
    Op::Release,
    Op::Commission,
    Op::Test,
    Op::Abort,
    Op::MarkBroken,
    Op::MarkFixed,
    Op::RescueMode,
    Op::ExitRescueMode,
    Op::Lock,
    Op::Unlock,
    Op::PowerOn,
    Op::PowerOff,
    Op::QueryPowerState,
    Op::OverrideFailedTesting,
    Op::SetStorageLayout,
    Op::ClearDefaultGateways,
    Op::SetOwnerData,
    Op::Details,
    Op::GetToken,
    Op::PowerParameters,
    Op::GetCurtinConfig,
    Op::Allocate,
    Op::Accept,
    Op::ReleaseMany,
];

impl Op {
    /// (method, target, form body) of the request for machine `id`.
    fn request(self, id: &str) -> (&'static str, String, Option<Vec<(&'static str, String)>>) {
        let inst = format!("/MAAS/api/2.0/machines/{id}/");
        let coll = "/MAAS/api/2.0/machines/";
        let post = |op: &str, extra: Vec<(&'static str, String)>| {
            ("POST", format!("{inst}?op={op}"), Some(extra))
        };
        let get = |op: &str| ("GET", format!("{inst}?op={op}"), None);
        match self {
            Op::Read => ("GET", inst.clone(), None),
            Op::Update => (
                "PUT",
                inst.clone(),
                Some(vec![("description", "hardened".into())]),
            ),
            Op::Delete => ("DELETE", inst.clone(), None),
            Op::Deploy => post("deploy", vec![("distro_series", "jammy".into())]),
            Op::Release => post("release", vec![("comment", "matrix".into())]),
            Op::Commission => post("commission", vec![]),
            Op::Test => post("test", vec![]),
            Op::Abort => post("abort", vec![]),
            Op::MarkBroken => post("mark_broken", vec![("comment", "matrix".into())]),
            Op::MarkFixed => post("mark_fixed", vec![]),
            Op::RescueMode => post("rescue_mode", vec![]),
            Op::ExitRescueMode => post("exit_rescue_mode", vec![]),
            Op::Lock => post("lock", vec![]),
            Op::Unlock => post("unlock", vec![]),
            Op::PowerOn => post("power_on", vec![]),
            Op::PowerOff => post("power_off", vec![]),
            Op::QueryPowerState => get("query_power_state"),
            Op::OverrideFailedTesting => post("override_failed_testing", vec![]),
            Op::SetStorageLayout => post(
                "set_storage_layout",
                vec![("storage_layout", "flat".into())],
            ),
            Op::ClearDefaultGateways => post("clear_default_gateways", vec![]),
            Op::SetOwnerData => post("set_owner_data", vec![("rack", "r1".into())]),
            Op::Details => get("details"),
            Op::GetToken => get("get_token"),
            Op::PowerParameters => get("power_parameters"),
            Op::GetCurtinConfig => get("get_curtin_config"),
            Op::Allocate => (
                "POST",
                format!("{coll}?op=allocate"),
                Some(vec![("system_id", id.to_owned())]),
            ),
            Op::Accept => (
                "POST",
                format!("{coll}?op=accept"),
                Some(vec![("machines", id.to_owned())]),
            ),
            Op::ReleaseMany => (
                "POST",
                format!("{coll}?op=release"),
                Some(vec![("machines", id.to_owned())]),
            ),
        }
    }
}

/// Who owns the machine afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Own {
    /// As before.
    Keep,
    /// This actor.
    Is(Who),
    /// Nobody.
    Nobody,
    /// Not checked (MAAS and maas-rs record it differently, or it does not
    /// matter for authorization).
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expect {
    code: u16,
    /// The status afterwards; `None` = deleted.
    status: Option<NodeStatus>,
    owner: Own,
    locked: bool,
}

/// MAAS's answer to `who` doing `op` on a machine like `f`.
fn maas(op: Op, f: &Fixture, who: Who) -> Expect {
    let refuse = |code| Expect {
        code,
        status: Some(f.status),
        owner: Own::Keep,
        locked: f.locked,
    };
    let ok = |status, owner| Expect {
        code: 200,
        status: Some(status),
        owner,
        locked: f.locked,
    };
    let same = ok(f.status, Own::Keep);
    if who == Who::Anon {
        // MachineHandler has no anonymous handler: 401. The collection has
        // AnonMachinesHandler: unknown ops are 400 (piston dispatch), and
        // its `accept` raises Unauthorized.
        return refuse(match op {
            Op::Allocate | Op::ReleaseMany => 400,
            _ => 401,
        });
    }
    let admin = who == Who::Admin;
    let mine = f.owned && who == Who::Owner;
    // MAASAuthorizationBackend without RBAC.
    let view = admin || !f.owned || mine;
    let edit = !f.locked && view;
    let lock = view;
    let adm = !f.locked && admin;
    let s = f.status;
    let releasable = matches!(
        s,
        Allocated
            | Reserved
            | Broken
            | Deploying
            | Deployed
            | FailedDeployment
            | FailedDiskErasing
            | FailedReleasing
    );
    match op {
        Op::Read | Op::Details | Op::QueryPowerState => {
            if view {
                same
            } else {
                refuse(403)
            }
        }
        Op::GetToken | Op::PowerParameters => {
            if admin {
                same
            } else {
                refuse(403)
            }
        }
        // api/machines.py get_curtin_config: view permission, then 400
        // outside DEPLOYING, DEPLOYED and FAILED_DEPLOYMENT.
        Op::GetCurtinConfig => match (view, s) {
            (false, _) => refuse(403),
            (true, Deploying | Deployed | FailedDeployment) => same,
            (true, _) => refuse(400),
        },
        Op::Update | Op::ClearDefaultGateways => {
            if adm {
                same
            } else {
                refuse(403)
            }
        }
        Op::Delete => {
            if adm {
                Expect {
                    code: 204,
                    status: None,
                    owner: Own::Any,
                    locked: false,
                }
            } else {
                refuse(403)
            }
        }
        Op::Deploy => match (edit, s) {
            (false, _) => refuse(403),
            (true, Ready) => ok(Deploying, Own::Is(who)),
            (true, Allocated) => ok(Deploying, Own::Keep),
            _ => refuse(409),
        },
        Op::Release | Op::ReleaseMany => match edit {
            false => refuse(403),
            true if s == Ready => same,
            // Manual power cannot be queried: the release finishes at once.
            true if releasable => ok(Ready, Own::Nobody),
            true => refuse(409),
        },
        Op::Commission => match adm {
            false => refuse(403),
            true if matches!(s, New | FailedCommissioning | Ready | Broken) => {
                ok(Commissioning, Own::Any)
            }
            true => refuse(400),
        },
        Op::Test => match adm {
            false => refuse(403),
            true if matches!(
                s,
                FailedCommissioning
                    | New
                    | Ready
                    | Reserved
                    | Allocated
                    | FailedDeployment
                    | Deployed
                    | Missing
                    | Retired
                    | Broken
                    | RescueMode
                    | FailedReleasing
                    | FailedDiskErasing
                    | FailedEnteringRescueMode
                    | FailedExitingRescueMode
                    | FailedTesting
            ) =>
            {
                ok(Testing, Own::Any)
            }
            true => refuse(400),
        },
        Op::Abort => match (edit, s) {
            (false, _) => refuse(403),
            (true, Deploying) => ok(Allocated, Own::Keep),
            _ => refuse(409),
        },
        Op::MarkBroken => {
            if !edit || !mine {
                refuse(403)
            } else {
                ok(Broken, Own::Any)
            }
        }
        Op::MarkFixed => match (adm, s) {
            (false, _) => refuse(403),
            (true, Broken) => ok(Ready, Own::Any),
            _ => refuse(409),
        },
        Op::RescueMode => match adm {
            false => refuse(403),
            // NODE_TRANSITIONS allows ENTERING_RESCUE_MODE from these.
            true if matches!(
                s,
                New | FailedCommissioning
                    | Missing
                    | Ready
                    | Reserved
                    | Deployed
                    | Retired
                    | Broken
                    | Allocated
                    | FailedDeployment
                    | FailedDiskErasing
                    | FailedEnteringRescueMode
                    | FailedTesting
            ) =>
            {
                ok(EnteringRescueMode, Own::Any)
            }
            true => refuse(409),
        },
        Op::ExitRescueMode => match (adm, s) {
            (false, _) => refuse(403),
            // Manual power: straight back to the previous status (Ready),
            // owner cleared.
            (true, RescueMode) => ok(f.previous, Own::Nobody),
            _ => refuse(409),
        },
        Op::Lock => match lock {
            false => refuse(403),
            true if f.locked => refuse(409),
            true if matches!(s, Deployed | Deploying) => Expect {
                locked: true,
                ..same
            },
            true => refuse(409),
        },
        Op::Unlock => match lock {
            false => refuse(403),
            true if f.locked => Expect {
                locked: false,
                ..same
            },
            true => refuse(409),
        },
        Op::PowerOn => match edit {
            false => refuse(403),
            true if !f.owned => refuse(409),
            true if s == Allocated => ok(Deploying, Own::Keep),
            true => same,
        },
        Op::PowerOff => {
            if edit {
                same
            } else {
                refuse(403)
            }
        }
        Op::OverrideFailedTesting => match (adm, s) {
            (false, _) => refuse(403),
            (true, FailedTesting) => ok(Ready, Own::Nobody),
            _ => refuse(409),
        },
        Op::SetStorageLayout => match (adm, s) {
            (false, _) => refuse(403),
            (true, Ready) => same,
            _ => refuse(409),
        },
        Op::SetOwnerData => match edit {
            false => refuse(403),
            true if !mine => refuse(409),
            true => same,
        },
        Op::Allocate => {
            if s == Ready && !f.owned {
                ok(Allocated, Own::Is(who))
            } else {
                refuse(409)
            }
        }
        Op::Accept => match (admin, f.locked, s) {
            (false, _, _) | (true, true, _) => refuse(403),
            (true, false, New) => ok(Commissioning, Own::Any),
            (true, false, Ready | Commissioning) => same,
            _ => refuse(409),
        },
    }
}

/// Where maasd deliberately answers differently from MAAS, and what it
/// answers instead.
fn maasd_divergence(_op: Op, _f: &Fixture, _who: Who) -> Option<Expect> {
    // None left: get_curtin_config renders the configuration in Deploying,
    // Deployed and Failed deployment as MAAS does.
    None
}

fn fixture_spec(i: usize, f: &Fixture) -> Value {
    let mut s = machine_spec(i, &format!("m{i:04}"));
    s["status"] = json!(f.status.name());
    s["previous_status"] = json!(f.previous.name());
    if f.owned {
        s["owner"] = json!("alice");
    }
    s["locked"] = json!(f.locked);
    s
}

struct Case {
    op: Op,
    fixture: Fixture,
    who: Who,
}

fn run_matrix(m: &Maasd) {
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", "pw-alice", false).unwrap();
    let bob = m.create_user(&admin, "bob", "pw-bob", false).unwrap();
    let keys: HashMap<&str, ApiKey> =
        HashMap::from([("admin", admin.clone()), ("alice", alice), ("bob", bob)]);

    let mut cases = Vec::new();
    for f in FIXTURES {
        for op in OPS {
            for who in WHO {
                cases.push(Case {
                    op,
                    fixture: f,
                    who,
                });
            }
        }
    }
    let specs: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| fixture_spec(i, &c.fixture))
        .collect();
    let ids = m.load_machines(&Value::Array(specs)).unwrap();
    assert_eq!(ids.len(), cases.len());

    let work: Vec<(usize, String)> = ids.iter().cloned().enumerate().collect();
    let addr = m.addr.clone();
    let answers = par_map(work, 8, |(i, id)| {
        let c = &cases[i];
        let key = c.who.username().map(|u| keys[u].clone());
        let client = Client::new(&addr, key);
        let (method, target, body) = c.op.request(&id);
        let body = body.map(|pairs| {
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            maas_e2e::harden::form(&refs)
        });
        client.call(method, &target, body.as_deref())
    });

    // Every machine's state afterwards, as the admin sees it.
    let list = Client::new(&m.addr, Some(admin))
        .get("/MAAS/api/2.0/machines/")
        .unwrap();
    assert_eq!(list.status, 200, "{}", list.text());
    let by_id: HashMap<String, Value> = list
        .json()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["system_id"].as_str().unwrap().to_owned(), m.clone()))
        .collect();

    let mut failures = Vec::new();
    let mut diverged = 0;
    let mut by_code: HashMap<u16, usize> = HashMap::new();
    for ((c, id), answer) in cases.iter().zip(&ids).zip(&answers) {
        let label = format!(
            "{:?} by {:?} on {}{}{} ({id})",
            c.op,
            c.who,
            c.fixture.status.label(),
            if c.fixture.owned {
                " owned by alice"
            } else {
                ""
            },
            if c.fixture.locked { ", locked" } else { "" },
        );
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{label}: no answer: {e:#}"));
                continue;
            }
        };
        *by_code.entry(r.status).or_default() += 1;
        let mut want = maas(c.op, &c.fixture, c.who);
        if let Some(d) = maasd_divergence(c.op, &c.fixture, c.who) {
            diverged += 1;
            want = d;
        }
        if r.status != want.code {
            failures.push(format!(
                "{label}: HTTP {} (want {}): {}",
                r.status,
                want.code,
                r.text().chars().take(200).collect::<String>()
            ));
            continue;
        }
        if r.status >= 400 && r.body.is_empty() {
            failures.push(format!("{label}: HTTP {} without a message", r.status));
        }
        let got = by_id.get(id.as_str());
        match (want.status, got) {
            (None, None) => continue,
            (None, Some(_)) => {
                failures.push(format!("{label}: still exists after delete"));
                continue;
            }
            (Some(_), None) => {
                failures.push(format!("{label}: machine vanished"));
                continue;
            }
            (Some(st), Some(g)) => {
                if g["status_name"] != json!(st.label()) {
                    failures.push(format!(
                        "{label}: status {} (want {})",
                        g["status_name"],
                        st.label()
                    ));
                }
                let owner_before = c.fixture.owned.then_some("alice");
                let want_owner = match want.owner {
                    Own::Keep => Some(owner_before),
                    Own::Is(w) => Some(w.username()),
                    Own::Nobody => Some(None),
                    Own::Any => None,
                };
                if let Some(o) = want_owner
                    && g["owner"] != json!(o)
                {
                    failures.push(format!("{label}: owner {} (want {o:?})", g["owner"]));
                }
                if g["locked"] != json!(want.locked) {
                    failures.push(format!(
                        "{label}: locked {} (want {})",
                        g["locked"], want.locked
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from MAAS:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The matrix must exercise every kind of answer.
    for code in [200, 204, 400, 401, 403, 409] {
        assert!(
            by_code.get(&code).copied().unwrap_or(0) > 0,
            "no case answered {code}: {by_code:?}"
        );
    }
    eprintln!(
        "{} cases, answers by code {by_code:?}, {diverged} documented divergences",
        cases.len()
    );
}

#[test]
fn authorization_matrix_on_sqlite() {
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &StartOpts::default()).unwrap();
    run_matrix(&m);
}

#[test]
fn authorization_matrix_on_postgres() {
    let pg = Postgres::start().unwrap();
    let opts = StartOpts {
        database_url: Some(pg.url()),
        ..Default::default()
    };
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &opts).unwrap();
    run_matrix(&m);
}

#[test]
fn the_oracle_follows_the_issue_rules() {
    // The headline rules of the issue, checked on the oracle itself so a
    // typo in `maas` cannot silently weaken the matrix.
    let locked = FIXTURES[5];
    assert!(locked.locked);
    for op in [
        Op::Update,
        Op::Delete,
        Op::Release,
        Op::Deploy,
        Op::PowerOff,
        Op::MarkBroken,
    ] {
        for who in [Who::Admin, Who::Owner] {
            assert_eq!(maas(op, &locked, who).code, 403, "{op:?} {who:?}");
        }
    }
    let deployed = FIXTURES[4];
    for op in [
        Op::Deploy,
        Op::Release,
        Op::PowerOn,
        Op::PowerOff,
        Op::ReleaseMany,
    ] {
        assert_eq!(maas(op, &deployed, Who::Other).code, 403, "{op:?}");
    }
    let broken = FIXTURES[6];
    for (op, f) in [
        (Op::Commission, FIXTURES[1]),
        (Op::Test, FIXTURES[1]),
        (Op::RescueMode, FIXTURES[1]),
        (Op::MarkFixed, broken),
        (Op::Accept, FIXTURES[0]),
    ] {
        assert_eq!(maas(op, &f, Who::Owner).code, 403, "{op:?}");
        assert_eq!(maas(op, &f, Who::Admin).code, 200, "{op:?}");
    }
}

fn run_clone(m: &Maasd) {
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", "pw-alice", false).unwrap();
    let mut specs: Vec<Value> = (0..4).map(|i| machine_spec(i, &format!("c{i}"))).collect();
    specs[0]["disks"][0]["tags"] = json!(["ssd"]);
    specs[3]["status"] = json!("DEPLOYED");
    specs[3]["owner"] = json!("alice");
    let ids = m.load_machines(&Value::Array(specs)).unwrap();
    let (src, dst, dst2, deployed) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let clone = |key: Option<ApiKey>, dest: &str| {
        Client::new(&m.addr, key)
            .post(
                "/MAAS/api/2.0/machines/?op=clone",
                &[
                    ("source", src.as_str()),
                    ("destinations", dest),
                    ("storage", "true"),
                ],
            )
            .unwrap()
    };
    let tags_of = |id: &str| {
        let r = Client::new(&m.addr, Some(admin.clone()))
            .get(&format!("/MAAS/api/2.0/machines/{id}/"))
            .unwrap();
        r.json().unwrap()["blockdevice_set"][0]["tags"].clone()
    };
    // Anonymous: AnonMachinesHandler has no clone (400, as MAAS).
    assert_eq!(clone(None, dst).status, 400);
    // A non-admin: MAAS's CloneForm offers them no destination (400 on
    // `destinations`, forms/clone.py). Nothing is copied.
    let r = clone(Some(alice), dst);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("destinations"), "{}", r.text());
    assert_eq!(tags_of(dst), json!([]));
    // A destination that is not Ready or Failed testing: 400.
    let r = clone(Some(admin.clone()), deployed);
    assert_eq!(r.status, 400, "{}", r.text());
    // The admin clones storage: 204 and the destination has the source's
    // disk tags.
    let r = clone(Some(admin.clone()), dst2);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(tags_of(dst2), json!(["ssd"]));
}

#[test]
fn clone_is_for_admins_on_sqlite() {
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &StartOpts::default()).unwrap();
    run_clone(&m);
}
