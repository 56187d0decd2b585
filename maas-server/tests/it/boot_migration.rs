//! The import migration (`2026-11-22-215954_import`) moves boot sources and
//! selections from `objects` documents into their own tables, keeping ids.
//! Shared by the SQLite test here and the PostgreSQL one in
//! `tests/tests/db_migrations_pg.rs` (included by path).

use diesel::prelude::*;
use maas_server::db::{self, DbConn};

/// The import migration's version.
const IMPORT: &str = "2026-11-22-215954";

/// Writes a source and a selection the way the earlier schema stored them,
/// migrates forward and reads them back through `db::boot`.
pub fn moves_boot_sources(conn: &mut DbConn) {
    use maas_server::db::schema::objects as t;

    db::migrate(conn).unwrap();
    db::revert_from(conn, IMPORT).unwrap();
    let source = serde_json::json!({
        "url": "http://mirror.example/stable/",
        "keyring_filename": "",
        "keyring_data": "AAEC",
        "priority": 5,
        "enabled": false,
        "skip_keyring_verification": false,
        "created": "2023-11-14T22:13:20.123",
        "updated": "2023-11-14T22:13:21.000",
    });
    diesel::insert_into(t::table)
        .values((
            t::id.eq(40i64),
            t::kind.eq("boot_source"),
            t::name.eq("mine"),
            t::data.eq(source.to_string()),
        ))
        .execute(conn)
        .unwrap();
    let selection = serde_json::json!({
        "boot_source_id": 40, "os": "ubuntu", "release": "noble",
        "arches": ["amd64", "arm64"], "subarches": ["*"], "labels": ["stable"],
    });
    diesel::insert_into(t::table)
        .values((
            t::id.eq(41i64),
            t::kind.eq("boot_source_selection"),
            t::name.eq("ubuntu/noble"),
            t::data.eq(selection.to_string()),
        ))
        .execute(conn)
        .unwrap();

    db::migrate(conn).unwrap();
    let sources = db::boot::sources(conn).unwrap();
    assert_eq!(sources.len(), 1);
    let s = &sources[0];
    assert_eq!(
        (
            s.id,
            s.name.as_str(),
            s.url.as_str(),
            s.keyring_data.as_str()
        ),
        (40, "mine", "http://mirror.example/stable/", "AAEC")
    );
    assert_eq!((s.priority, s.enabled), (5, false));
    assert_eq!(s.created, 1_700_000_000_000, "seconds kept, ms dropped");
    let sels = db::boot::selections(conn, Some(40)).unwrap();
    assert_eq!(sels.len(), 1);
    assert_eq!(sels[0].id, 41);
    assert_eq!(sels[0].arches, ["amd64", "arm64"]);
    assert_eq!(sels[0].labels, ["stable"]);
    let left: i64 = t::table
        .filter(t::kind.eq_any(["boot_source", "boot_source_selection"]))
        .count()
        .get_result(conn)
        .unwrap();
    assert_eq!(left, 0, "no documents left behind");
    // New rows get fresh ids after the moved ones.
    let mut n = s.clone();
    n.url = "http://other.example/".into();
    let added = db::boot::insert_source(conn, &n).unwrap();
    assert!(added.id > 40, "{}", added.id);
}
