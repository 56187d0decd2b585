//! The authorization matrix beyond machines: {admin, user, other user,
//! anonymous} × list / read / create / update / delete (and the tag ops
//! `rebuild` and `update_nodes`) on zones, resource pools, tags, users,
//! subnets, boot sources and SSH keys. Every case acts on its own object,
//! all cases are sent concurrently to the real `maasd`, on SQLite and
//! PostgreSQL, and each is checked twice: the HTTP status, and afterwards
//! (read back by the admin) that a refused write changed nothing and an
//! accepted one did what it said.
//!
//! The expected answers are [`maas`], written from MAAS's source rather
//! than from maas-rs code:
//! - `maasserver/urls_api.py`: every handler here is a `RestrictedResource`
//!   except the boot sources (and their selections), which are
//!   `AdminRestrictedResource`; no handler here has an anonymous handler
//!   wired, so piston answers a request without credentials with its OAuth
//!   challenge (401) — except on an `AdminRestrictedResource`, whose
//!   `authenticate` raises `PermissionDenied` for anything but a superuser
//!   before piston looks at the challenge, so anonymous gets 403 there
//!   (`maasserver/api/support.py`);
//! - `api/zones.py` (create `@admin_method`; update/delete through
//!   `ModelOperationsHandler`, both `@admin_method`), `api/resourcepools.py`
//!   (`ResourcePoolPermission` create/edit/delete: superusers only without
//!   RBAC; view: everyone), `api/tags.py` (`get_tag_or_404(to_edit=True)`
//!   and `create`/`update_nodes` refuse non-superusers), `api/users.py`
//!   (create and delete need the edit-identities entitlement: superusers),
//!   `api/subnets.py` (create `@admin_method`; update/delete need
//!   `NodePermission.admin`), `api/boot_sources.py`, and `api/ssh_keys.py`
//!   (anyone adds their own key; only a superuser may name another `user`,
//!   others get 400; any key can be read by id; only the key's owner may
//!   delete it — even a superuser gets 403).
//!
//! Known divergences from MAAS would be listed in [`maasd_divergence`] and
//! reported with the counts: at present none (anonymous requests on boot
//! sources were 401 until maasd's route table learnt MAAS's
//! `AdminRestrictedResource`; now 403 as MAAS).

use std::collections::BTreeMap;

use maas_e2e::harden::{ApiKey, Client, StartOpts, form, par_map};
use maas_e2e::{Maasd, Postgres, maasd_binary};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    /// `alice`, who owns the SSH keys the cases act on.
    User,
    /// `bob`.
    Other,
    Anon,
}

const WHO: [Who; 4] = [Who::Admin, Who::User, Who::Other, Who::Anon];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Res {
    Zone,
    Pool,
    Tag,
    User,
    Subnet,
    BootSource,
    SshKey,
}

const RESOURCES: [Res; 7] = [
    Res::Zone,
    Res::Pool,
    Res::Tag,
    Res::User,
    Res::Subnet,
    Res::BootSource,
    Res::SshKey,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    List,
    Read,
    Create,
    /// SSH keys only: create naming `user=alice`.
    CreateFor,
    Update,
    Delete,
    /// Tags only.
    Rebuild,
    /// Tags only.
    UpdateNodes,
}

fn ops(r: Res) -> &'static [Op] {
    use Op::*;
    match r {
        Res::Tag => &[List, Read, Create, Update, Delete, Rebuild, UpdateNodes],
        // MAAS's UserHandler has no update.
        Res::User => &[List, Read, Create, Delete],
        Res::SshKey => &[List, Read, Create, CreateFor, Delete],
        _ => &[List, Read, Create, Update, Delete],
    }
}

/// MAAS's answer to `who` doing `op` on `r` (an existing object, valid
/// parameters).
fn maas(r: Res, op: Op, who: Who) -> u16 {
    let admin = who == Who::Admin;
    if who == Who::Anon {
        return if r == Res::BootSource { 403 } else { 401 };
    }
    match (r, op) {
        (Res::BootSource, _) if !admin => 403,
        (Res::BootSource, Op::Create) => 201,
        (_, Op::List | Op::Read) => 200,
        (Res::SshKey, Op::Create) => 201,
        (Res::SshKey, Op::CreateFor) => {
            if admin {
                201
            } else {
                400
            }
        }
        (Res::SshKey, Op::Delete) => {
            if who == Who::User {
                204
            } else {
                403
            }
        }
        (_, _) if !admin => 403,
        (_, Op::Delete) => 204,
        _ => 200,
    }
}

/// Where maasd knowingly answers differently from MAAS: its answer.
fn maasd_divergence(_r: Res, _who: Who) -> Option<u16> {
    // None left: add a documented (resource, caller) → code here when maasd
    // knowingly answers otherwise than MAAS.
    None
}

/// One case: a request and how to tell afterwards whether it took effect.
#[derive(Debug, Clone)]
struct Case {
    res: Res,
    op: Op,
    who: Who,
    method: &'static str,
    path: String,
    form: Vec<(String, String)>,
    effect: Effect,
}

/// What an accepted write leaves behind, checked by the admin afterwards
/// (for SSH keys by their owner `alice`).
#[derive(Debug, Clone)]
enum Effect {
    None,
    /// `path` exists.
    Exists(String),
    /// `path` is gone.
    Gone(String),
    /// `path`'s JSON `field` became `value`.
    Field(String, &'static str, String),
    /// `alice`'s key list holds this key.
    AliceHasKey(String),
}

const API: &str = "/MAAS/api/2.0";

/// A syntactically valid OpenSSH public key line unique to `n`.
fn ssh_key(n: usize) -> String {
    format!("ssh-ed25519 AAAA{n:08} case{n}@harden")
}

struct Fixtures {
    admin: ApiKey,
    alice: ApiKey,
    bob: ApiKey,
}

fn post_ok(c: &Client, path: &str, pairs: &[(&str, &str)]) -> Value {
    let r = c.post(path, pairs).unwrap();
    assert!(
        (200..300).contains(&r.status),
        "fixture POST {path}: {} {}",
        r.status,
        r.text()
    );
    r.json().unwrap()
}

/// Creates the object case `n` acts on (as the admin; SSH keys as
/// `alice`) and builds the case.
fn make_case(m: &Maasd, fx: &Fixtures, n: usize, res: Res, op: Op, who: Who) -> Case {
    let admin = Client::new(&m.addr, Some(fx.admin.clone()));
    let alice = Client::new(&m.addr, Some(fx.alice.clone()));
    let s = |x: &str| x.to_owned();
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let changed = format!("changed-{n}");
    let (coll, item, new_pairs, update_field): (String, String, Vec<(String, String)>, &str) =
        match res {
            Res::Zone => {
                let name = format!("z{n}");
                post_ok(&admin, &format!("{API}/zones/"), &[("name", &name)]);
                (
                    format!("{API}/zones/"),
                    format!("{API}/zones/{name}/"),
                    pairs(&[("name", &format!("zn{n}"))]),
                    "description",
                )
            }
            Res::Pool => {
                let j = post_ok(
                    &admin,
                    &format!("{API}/resourcepools/"),
                    &[("name", &format!("p{n}"))],
                );
                (
                    format!("{API}/resourcepools/"),
                    format!("{API}/resourcepool/{}/", j["id"]),
                    pairs(&[("name", &format!("pn{n}"))]),
                    "description",
                )
            }
            Res::Tag => {
                let name = format!("t{n}");
                post_ok(&admin, &format!("{API}/tags/"), &[("name", &name)]);
                (
                    format!("{API}/tags/"),
                    format!("{API}/tags/{name}/"),
                    pairs(&[("name", &format!("tn{n}"))]),
                    "comment",
                )
            }
            Res::User => {
                let name = format!("u{n}");
                post_ok(
                    &admin,
                    &format!("{API}/users/"),
                    &[
                        ("username", &name),
                        ("email", &format!("{name}@example.com")),
                        ("password", "pw-u"),
                        ("is_superuser", "0"),
                    ],
                );
                let new = format!("un{n}");
                (
                    format!("{API}/users/"),
                    format!("{API}/users/{name}/"),
                    pairs(&[
                        ("username", &new),
                        ("email", &format!("{new}@example.com")),
                        ("password", "pw-un"),
                        ("is_superuser", "0"),
                    ]),
                    "",
                )
            }
            Res::Subnet => {
                let cidr = format!("10.{}.{}.0/24", 64 + n / 256, n % 256);
                let j = post_ok(&admin, &format!("{API}/subnets/"), &[("cidr", &cidr)]);
                let new = format!("10.{}.{}.0/24", 128 + n / 256, n % 256);
                (
                    format!("{API}/subnets/"),
                    format!("{API}/subnets/{}/", j["id"]),
                    pairs(&[("cidr", &new)]),
                    "description",
                )
            }
            Res::BootSource => {
                let keyring = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";
                let j = post_ok(
                    &admin,
                    &format!("{API}/boot-sources/"),
                    &[
                        ("url", &format!("http://bs{n}.example/streams/v1/")),
                        ("keyring_filename", keyring),
                    ],
                );
                (
                    format!("{API}/boot-sources/"),
                    format!("{API}/boot-sources/{}/", j["id"]),
                    pairs(&[
                        ("url", &format!("http://bsn{n}.example/streams/v1/")),
                        ("keyring_filename", keyring),
                    ]),
                    "keyring_filename",
                )
            }
            Res::SshKey => {
                let j = post_ok(
                    &alice,
                    &format!("{API}/account/prefs/sshkeys/"),
                    &[("key", &ssh_key(2 * n))],
                );
                (
                    format!("{API}/account/prefs/sshkeys/"),
                    format!("{API}/account/prefs/sshkeys/{}/", j["id"]),
                    pairs(&[("key", &ssh_key(2 * n + 1))]),
                    "",
                )
            }
        };
    let (method, path, form, effect) = match op {
        Op::List => ("GET", coll, vec![], Effect::None),
        Op::Read => ("GET", item, vec![], Effect::None),
        Op::Create => {
            let effect = match res {
                Res::Zone => Effect::Exists(format!("{API}/zones/zn{n}/")),
                Res::Tag => Effect::Exists(format!("{API}/tags/tn{n}/")),
                Res::User => Effect::Exists(format!("{API}/users/un{n}/")),
                Res::SshKey => Effect::None,
                // Created under a new id; found by listing.
                _ => Effect::None,
            };
            ("POST", coll, new_pairs, effect)
        }
        Op::CreateFor => {
            let mut f = new_pairs;
            f.push((s("user"), s("alice")));
            let key = ssh_key(2 * n + 1);
            ("POST", coll, f, Effect::AliceHasKey(key))
        }
        Op::Update => (
            "PUT",
            item.clone(),
            vec![(update_field.to_owned(), changed.clone())],
            Effect::Field(item, update_field, changed.clone()),
        ),
        Op::Delete => ("DELETE", item.clone(), vec![], Effect::Gone(item)),
        Op::Rebuild => ("POST", format!("{item}?op=rebuild"), vec![], Effect::None),
        Op::UpdateNodes => (
            "POST",
            format!("{item}?op=update_nodes"),
            vec![],
            Effect::None,
        ),
    };
    Case {
        res,
        op,
        who,
        method,
        path,
        form,
        effect,
    }
}

fn run_matrix(m: &Maasd) {
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", "pw-alice", false).unwrap();
    let bob = m.create_user(&admin, "bob", "pw-bob", false).unwrap();
    let fx = Fixtures { admin, alice, bob };

    let mut cases = Vec::new();
    for res in RESOURCES {
        for &op in ops(res) {
            for who in WHO {
                let n = cases.len();
                cases.push(make_case(m, &fx, n, res, op, who));
            }
        }
    }
    let key_of = |who: Who| match who {
        Who::Admin => Some(fx.admin.clone()),
        Who::User => Some(fx.alice.clone()),
        Who::Other => Some(fx.bob.clone()),
        Who::Anon => None,
    };
    let addr = m.addr.clone();
    let answers = par_map(cases.clone(), 16, |c| {
        let client = Client::new(&addr, key_of(c.who));
        let pairs: Vec<(&str, &str)> = c
            .form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = form(&pairs);
        client
            .call(
                c.method,
                &c.path,
                (!body.is_empty()).then_some(body.as_str()),
            )
            .unwrap_or_else(|e| panic!("{c:?}: {e:#}"))
    });

    let admin_c = Client::new(&m.addr, Some(fx.admin.clone()));
    let alice_c = Client::new(&m.addr, Some(fx.alice.clone()));
    let mut failures = Vec::new();
    let mut by_code = BTreeMap::<u16, usize>::new();
    let mut diverged = 0;
    for (c, r) in cases.iter().zip(&answers) {
        let label = format!(
            "{:?} {:?} as {:?} ({} {})",
            c.res, c.op, c.who, c.method, c.path
        );
        *by_code.entry(r.status).or_default() += 1;
        let want = maas(c.res, c.op, c.who);
        let want = match maasd_divergence(c.res, c.who) {
            Some(code) => {
                diverged += 1;
                code
            }
            None => want,
        };
        if r.status != want {
            failures.push(format!(
                "{label}: HTTP {} (MAAS: {want}) {}",
                r.status,
                r.text()
            ));
            continue;
        }
        if r.status >= 400 && r.body.is_empty() {
            failures.push(format!("{label}: {} without a message", r.status));
        }
        let accepted = (200..300).contains(&r.status);
        let reader = if c.res == Res::SshKey {
            &alice_c
        } else {
            &admin_c
        };
        match &c.effect {
            Effect::None => {}
            Effect::Exists(p) => {
                let st = reader.get(p).unwrap().status;
                if (st == 200) != accepted {
                    failures.push(format!("{label}: afterwards GET {p} is {st}"));
                }
            }
            Effect::Gone(p) => {
                let st = reader.get(p).unwrap().status;
                if (st == 404) != accepted {
                    failures.push(format!("{label}: afterwards GET {p} is {st}"));
                }
            }
            Effect::Field(p, f, v) => {
                let j = reader.get(p).unwrap().json().unwrap();
                let now = j[*f].as_str().unwrap_or_default();
                if (now == v) != accepted {
                    failures.push(format!("{label}: afterwards {f} is {now:?}"));
                }
            }
            Effect::AliceHasKey(k) => {
                let j = alice_c
                    .get(&format!("{API}/account/prefs/sshkeys/"))
                    .unwrap()
                    .json()
                    .unwrap();
                let has = j
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["key"].as_str() == Some(k)));
                if has != accepted {
                    failures.push(format!("{label}: afterwards alice has the key: {has}"));
                }
            }
        }
    }
    // Creates that leave an object under a new id: count by listing.
    for (res, list, field, prefix) in [
        (Res::Pool, "resourcepools/", "name", "pn"),
        (Res::Subnet, "subnets/", "cidr", "10.1"),
        (Res::BootSource, "boot-sources/", "url", "http://bsn"),
    ] {
        let want = cases
            .iter()
            .filter(|c| c.res == res && c.op == Op::Create)
            .filter(|c| (200..300).contains(&maas(c.res, c.op, c.who)))
            .count();
        let j = admin_c
            .get(&format!("{API}/{list}"))
            .unwrap()
            .json()
            .unwrap();
        let got = j.as_array().map_or(0, |a| {
            a.iter()
                .filter(|x| x[field].as_str().is_some_and(|s| s.starts_with(prefix)))
                .count()
        });
        // Subnet fixtures are 10.64+/…, new subnets 10.128+/…: the prefix
        // "10.1" matches only the new ones (10.128 … 10.19x).
        if got != want {
            failures.push(format!("{res:?} create: {got} new objects, MAAS: {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from MAAS:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    for code in [200, 201, 204, 400, 401, 403] {
        assert!(
            by_code.get(&code).copied().unwrap_or(0) > 0,
            "no case answered {code}: {by_code:?}"
        );
    }
    eprintln!(
        "{} cases, answers by code {by_code:?}, {diverged} with a documented divergence",
        cases.len()
    );
    check_missing(m, &fx);
}

/// Writes on objects that do not exist: MAAS checks the permission first
/// where the handler is admin-only as a whole (`@admin_method`, tags'
/// `get_tag_or_404(to_edit=True)`, `AdminRestrictedResource`), and the
/// generic model delete and the user delete answer 204 for nothing; pools
/// and subnets are looked up before the permission
/// (`get_resource_pool_or_404`, `get_subnet_or_404`), so a missing one is
/// 404 for anyone.
fn check_missing(m: &Maasd, fx: &Fixtures) {
    let admin = Client::new(&m.addr, Some(fx.admin.clone()));
    let alice = Client::new(&m.addr, Some(fx.alice.clone()));
    let table: [(&Client, &str, &str, u16); 19] = [
        (&admin, "DELETE", "zones/nozone/", 204),
        (&alice, "DELETE", "zones/nozone/", 403),
        (&alice, "PUT", "zones/nozone/", 403),
        (&admin, "DELETE", "users/nouser/", 204),
        (&alice, "DELETE", "users/nouser/", 403),
        (&admin, "DELETE", "users/admin/", 400),
        (&admin, "DELETE", "tags/notag/", 404),
        (&alice, "DELETE", "tags/notag/", 403),
        (&alice, "PUT", "tags/notag/", 403),
        (&admin, "DELETE", "resourcepool/999999/", 404),
        (&admin, "DELETE", "subnets/999999/", 404),
        (&alice, "DELETE", "resourcepool/999999/", 404),
        (&alice, "PUT", "resourcepool/999999/", 404),
        (&alice, "DELETE", "subnets/999999/", 404),
        (&alice, "PUT", "subnets/999999/", 404),
        (&admin, "DELETE", "boot-sources/999999/", 404),
        (&alice, "DELETE", "boot-sources/999999/", 403),
        (&admin, "DELETE", "account/prefs/sshkeys/999999/", 404),
        (&alice, "GET", "account/prefs/sshkeys/999999/", 404),
    ];
    let mut failures = Vec::new();
    for (client, method, path, want) in table {
        let body = (method == "PUT").then_some("description=x");
        let r = client.call(method, &format!("{API}/{path}"), body).unwrap();
        if r.status != want {
            failures.push(format!(
                "{method} {path}: HTTP {} (MAAS: {want}) {}",
                r.status,
                r.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resource_authorization_matrix_on_sqlite() {
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &StartOpts::default()).unwrap();
    run_matrix(&m);
}

#[test]
fn resource_authorization_matrix_on_postgres() {
    let pg = Postgres::start().unwrap();
    let opts = StartOpts {
        database_url: Some(pg.url()),
        ..Default::default()
    };
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &opts).unwrap();
    run_matrix(&m);
}

#[test]
fn the_oracle_follows_maas_rules() {
    // Headline rules, checked on the oracle so a typo cannot weaken the
    // matrix.
    for r in RESOURCES {
        assert_eq!(maas(r, Op::List, Who::Anon) / 100, 4);
        if r != Res::SshKey {
            assert_eq!(maas(r, Op::Create, Who::User), 403, "{r:?}");
            assert_eq!(maas(r, Op::Delete, Who::User), 403, "{r:?}");
            assert_eq!(maas(r, Op::Delete, Who::Admin), 204, "{r:?}");
        }
    }
    assert_eq!(maas(Res::BootSource, Op::List, Who::User), 403);
    assert_eq!(maas(Res::SshKey, Op::Delete, Who::Admin), 403);
    assert_eq!(maas(Res::SshKey, Op::Delete, Who::User), 204);
    assert_eq!(maas(Res::SshKey, Op::CreateFor, Who::User), 400);
    assert_eq!(maas(Res::Zone, Op::Read, Who::Other), 200);
}
