//! The listing written from stored templates, allocation filtered in SQL
//! (same choice as the full scan, at 10,000 machines) and the indexed MAC
//! lookup.

use diesel::prelude::*;
use maas_core::constraints::{self, Constraints};
use maas_server::db::machines;
use maas_server::db::schema::machines as t;
use serde_json::{Value, json};

use crate::Fixture;

/// Loads `n` Ready machines `r{i:05}` in zones `default`/`z-odd`, tagged
/// `even` on even `i`, with one NIC and one disk each.
fn seed(f: &Fixture, n: usize) -> Vec<String> {
    let specs: Vec<maas_server::seed::MachineSpec> = serde_json::from_value(Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "hostname": format!("r{i:05}"),
                    "architecture": if i % 5 == 0 { "arm64/generic" } else { "amd64/generic" },
                    "cpu_count": 1 + (i * 7) % 13,
                    "memory_mib": 512 * (1 + (i * 3) % 11),
                    "tags": if i % 2 == 0 { json!(["even"]) } else { json!([]) },
                    "zone": if i % 2 == 1 { "z-odd" } else { "default" },
                    "pool": if i % 3 == 0 { "p3" } else { "default" },
                    "disks": [{"name": "sda", "size": 100_000_000_000u64 + (i as u64 % 7) * 50_000_000_000}],
                    "nics": [{"name": "eth0", "mac": format!("52:54:0b:{:02x}:{:02x}:{:02x}", i >> 16, (i >> 8) & 255, i & 255)}],
                })
            })
            .collect(),
    ))
    .unwrap();
    let mut conn = f.state.pool.get().unwrap();
    maas_server::seed::load(&mut conn, &specs, 0)
        .unwrap()
        .into_iter()
        .map(|s| s.to_string())
        .collect()
}

async fn list(f: &Fixture, query: &str) -> Vec<Value> {
    let (s, b) = f.get(&format!("/MAAS/api/2.0/machines/{query}")).await;
    assert_eq!(s, 200, "{b}");
    serde_json::from_str(&b).unwrap()
}

#[tokio::test]
async fn listing_templates_fill_slots_and_fall_back_to_the_model() {
    let f = Fixture::new();
    let ids = seed(&f, 6);
    let first = list(&f, "").await;
    assert_eq!(first.len(), 6);
    for (m, id) in first.iter().zip(&ids) {
        let (s, one) = f.get(&format!("/MAAS/api/2.0/machines/{id}/")).await;
        assert_eq!(s, 200);
        assert_eq!(m, &serde_json::from_str::<Value>(&one).unwrap());
    }
    // Every write stored a template.
    let mut conn = f.state.pool.get().unwrap();
    let stored: Vec<Option<String>> = t::table
        .order(t::id.asc())
        .select(t::listing)
        .load(&mut conn)
        .unwrap();
    assert!(stored.iter().all(|l| l.is_some()), "{stored:?}");
    // A template from "another renderer", a missing one and a broken one
    // are rendered from the model: the list does not change.
    diesel::update(t::table.filter(t::hostname.eq("r00001")))
        .set(t::listing.eq("0123456789abcdef\u{1}{\"stale\":\u{1}}\u{1}\u{1}"))
        .execute(&mut conn)
        .unwrap();
    diesel::update(t::table.filter(t::hostname.eq("r00002")))
        .set(t::listing.eq(None::<String>))
        .execute(&mut conn)
        .unwrap();
    diesel::update(t::table.filter(t::hostname.eq("r00003")))
        .set(t::listing.eq("garbage"))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    assert_eq!(list(&f, "").await, first);
    // ... and their templates were refreshed for the next list.
    let mut conn = f.state.pool.get().unwrap();
    let refreshed: Vec<Option<String>> = t::table
        .order(t::id.asc())
        .select(t::listing)
        .load(&mut conn)
        .unwrap();
    assert_eq!(refreshed, stored);
    drop(conn);
    // A zone edit (no machine write) shows in the pasted slot at once.
    let (s, b) = f
        .put("/MAAS/api/2.0/zones/z-odd/", "description=odd+ones")
        .await;
    assert_eq!(s, 200, "{b}");
    let after = list(&f, "?zone=z-odd").await;
    assert_eq!(after.len(), 3);
    assert!(
        after
            .iter()
            .all(|m| m["zone"]["description"] == json!("odd ones")),
        "{after:?}"
    );
    // A filtered list pastes the same pieces as the full one.
    let (s, one) = f.get(&format!("/MAAS/api/2.0/machines/{}/", ids[0])).await;
    assert_eq!(s, 200);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(list(&f, "?hostname=r00000").await, vec![one]);
}

#[tokio::test]
async fn a_user_string_that_looks_like_a_slot_is_still_listed_right() {
    let f = Fixture::new();
    let ids = seed(&f, 2);
    // Owner data holding the slot marker text: the template is refused and
    // the machine is rendered from its model.
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/?op=allocate",
            &format!("system_id={}", ids[0]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{}/?op=set_owner_data", ids[0]),
            "k=%01maas-rs-slot%01",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let listed = list(&f, "").await;
    let (_, one) = f.get(&format!("/MAAS/api/2.0/machines/{}/", ids[0])).await;
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(listed[0], one);
    assert_eq!(one["owner_data"]["k"], json!("\u{1}maas-rs-slot\u{1}"));
    assert_eq!(listed[0]["zone"]["name"], json!("default"));
}

/// Allocation (dry run) through the API picks what the full scan over
/// every machine picks, for a spread of constraints, at 10,000 machines.
#[tokio::test]
async fn allocation_at_10k_machines_matches_the_full_scan() {
    let f = Fixture::new();
    seed(&f, 10_000);
    let everything = {
        let mut conn = f.state.pool.get().unwrap();
        machines::list(&mut conn).unwrap()
    };
    let cases = [
        "",
        "tags=even",
        "not_tags=even&zone=z-odd",
        "cpu_count=12&mem=5000",
        "cpu_count=12.5",
        "arch=arm64&pool=p3",
        "not_in_pool=p3&not_in_zone=default&mem=5632",
        "storage=root:300",
        "name=r09999.maas",
        "name=r04321",
        "tags=even&zone=z-odd",
        "cpu_count=14",
    ];
    for q in cases {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect();
        let cons = Constraints::parse(&pairs).unwrap();
        let want = constraints::allocate(&cons, everything.iter().map(|s| &s.record.machine))
            .map(|(m, _)| m.hostname.clone());
        let body = if q.is_empty() {
            "dry_run=true".to_owned()
        } else {
            format!("{q}&dry_run=true")
        };
        let (s, b) = f.post("/MAAS/api/2.0/machines/?op=allocate", &body).await;
        match want {
            Some(h) => {
                assert_eq!(s, 200, "{q}: {b}");
                let v: Value = serde_json::from_str(&b).unwrap();
                assert_eq!(v["hostname"], json!(h), "{q}");
            }
            None => assert_eq!(s, 409, "{q}: {b}"),
        }
    }
    // A real allocation takes the cheapest and the next one moves on.
    let (s, b) = f
        .post("/MAAS/api/2.0/machines/?op=allocate", "tags=even")
        .await;
    assert_eq!(s, 200, "{b}");
    let first: Value = serde_json::from_str(&b).unwrap();
    let (s, b) = f
        .post("/MAAS/api/2.0/machines/?op=allocate", "tags=even")
        .await;
    assert_eq!(s, 200, "{b}");
    let second: Value = serde_json::from_str(&b).unwrap();
    assert_ne!(first["system_id"], second["system_id"]);
}

#[test]
fn mac_lookup_follows_interfaces_and_deletes() {
    let f = Fixture::new();
    let ids = seed(&f, 3);
    let mut conn = f.state.pool.get().unwrap();
    let mac: maas_core::MacAddress = "52:54:0b:00:00:02".parse().unwrap();
    let found = machines::by_mac(&mut conn, &mac).unwrap().unwrap();
    assert_eq!(found.record.machine.hostname, "r00002");
    assert_eq!(
        machines::system_id_by_mac(&mut conn, &mac)
            .unwrap()
            .as_deref(),
        Some(ids[2].as_str())
    );
    assert_eq!(
        maas_server::rack::source::machine_by_mac(&mut conn, mac)
            .unwrap()
            .map(|m| m.id),
        Some(found.id)
    );
    let other: maas_core::MacAddress = "52:54:0b:ff:ff:ff".parse().unwrap();
    assert!(machines::by_mac(&mut conn, &other).unwrap().is_none());
    machines::delete(&mut conn, &found.record.machine.system_id).unwrap();
    assert!(machines::by_mac(&mut conn, &mac).unwrap().is_none());
}
