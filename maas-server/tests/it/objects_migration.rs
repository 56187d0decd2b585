//! The API migration (`2026-11-22-215956_api`) moves zones, pools, domains,
//! tags, SSH keys, fabrics, VLANs, subnets and IP ranges from `objects`
//! documents into their own tables, keeping ids and fields. Shared by the
//! SQLite test here and the PostgreSQL one in
//! `tests/tests/db_migrations_pg.rs` (included by path).

use diesel::prelude::*;
use maas_server::db::{self, DbConn, objects};
use serde_json::{Map, Value, json};

/// The migration's version.
const API: &str = "2026-11-22-215956";

/// One document per kind, as the old store held them (ids chosen by hand,
/// interleaved across kinds as the shared id sequence left them).
fn documents() -> Vec<(i64, &'static str, &'static str, Value)> {
    vec![
        (3, "zone", "z-old", json!({"description": "rack row 3"})),
        (4, "pool", "p-old", json!({"description": ""})),
        (
            5,
            "domain",
            "old.example",
            json!({"authoritative": false, "ttl": 300, "is_default": false}),
        ),
        (
            6,
            "domain",
            "nottl.example",
            json!({"authoritative": true, "ttl": null, "is_default": false}),
        ),
        (
            7,
            "tag",
            "gpu",
            json!({"comment": "c", "definition": "", "kernel_opts": "nomodeset", "description": ""}),
        ),
        (
            8,
            "sshkey",
            "admin",
            json!({"key": "ssh-ed25519 AAAA test", "keysource": null}),
        ),
        (9, "fabric", "fabric-9", json!({"class_type": "10g"})),
        (
            10,
            "vlan",
            "untagged",
            json!({"fabric_id": 9, "vid": 0, "mtu": 1500, "dhcp_on": true}),
        ),
        (
            11,
            "subnet",
            "10.9.0.0/24",
            json!({"cidr": "10.9.0.0/24", "vlan_id": 10, "gateway_ip": "10.9.0.1",
                   "dns_servers": ["10.9.0.2", "10.9.0.3"], "managed": false}),
        ),
        (
            12,
            "iprange",
            "",
            json!({"subnet_id": 11, "type": "dynamic", "start_ip": "10.9.0.100",
                   "end_ip": "10.9.0.200", "comment": "", "user": "admin"}),
        ),
        (13, "boot_source", "http://x/", json!({"url": "http://x/"})),
    ]
}

/// Writes the documents in the old schema, migrates forward and reads them
/// back through `objects` with the same ids and fields; new rows continue
/// after the old ids, and the documents of other kinds stay documents.
pub fn converts_existing_rows(conn: &mut DbConn) {
    use maas_server::db::schema::objects as o;

    db::migrate(conn).unwrap();
    db::revert_from(conn, API).unwrap();
    for (id, kind, name, data) in documents() {
        diesel::insert_into(o::table)
            .values((
                o::id.eq(id),
                o::kind.eq(kind),
                o::name.eq(name),
                o::data.eq(data.to_string()),
            ))
            .execute(conn)
            .unwrap();
    }
    db::migrate(conn).unwrap();
    for (id, kind, name, data) in documents() {
        let got = objects::get(conn, kind, id)
            .unwrap()
            .unwrap_or_else(|| panic!("{kind} {id} lost"));
        assert_eq!(got.name, name, "{kind}");
        // A null field reads back as not set, which readers treat alike.
        let want: Map<String, Value> = data
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got.data, want, "{kind}");
        assert_eq!(
            objects::is_typed(kind),
            kind != "boot_source",
            "{kind} stored where it should be"
        );
    }
    let left: Vec<String> = o::table.select(o::kind).load(conn).unwrap();
    assert_eq!(left, ["boot_source"]);
    // Ids continue after the migrated ones (PostgreSQL: the sequence moved).
    let z = objects::insert(conn, "zone", "z-new", &Map::new()).unwrap();
    assert!(z.id > 3, "{}", z.id);
    let mut v = objects::by_name(conn, "vlan", "untagged").unwrap().unwrap();
    v.data.insert("mtu".into(), json!(9000));
    assert!(objects::update(conn, "vlan", &v).unwrap());
    assert_eq!(
        objects::get(conn, "vlan", 10).unwrap().unwrap().data["mtu"],
        json!(9000)
    );
    // A field the table has no column for is refused, not dropped.
    let mut bad = Map::new();
    bad.insert("colour".into(), json!("red"));
    assert!(objects::insert(conn, "zone", "z-bad", &bad).is_err());
    assert!(objects::delete(conn, "zone", z.id).unwrap());
    assert!(objects::get(conn, "zone", z.id).unwrap().is_none());
}
