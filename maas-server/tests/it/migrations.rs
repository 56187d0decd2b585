//! Migrations run up, down and up again on SQLite with the same schema.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use maas_server::db::{self, DbConn};

fn schema(conn: &mut DbConn) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Sql {
        #[diesel(sql_type = diesel::sql_types::Text)]
        sql: String,
    }
    diesel::sql_query(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '__diesel%' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load::<Sql>(conn)
    .unwrap()
    .into_iter()
    .map(|s| s.sql)
    .collect()
}

#[test]
fn sqlite_up_down_up_gives_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").display().to_string();
    let mut conn = <DbConn as diesel::Connection>::establish(&url).unwrap();
    db::migrate(&mut conn).unwrap();
    let first = schema(&mut conn);
    assert!(first.iter().any(|s| s.contains("CREATE TABLE machines")));
    db::revert_all(&mut conn).unwrap();
    assert!(schema(&mut conn).is_empty());
    db::migrate(&mut conn).unwrap();
    assert_eq!(schema(&mut conn), first);
    conn.batch_execute("SELECT 1").unwrap();
}

#[test]
fn sqlite_listing_migration_converts_existing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").display().to_string();
    let mut conn = <DbConn as diesel::Connection>::establish(&url).unwrap();
    crate::listing_migration::converts_existing_rows(&mut conn);
}

#[test]
fn sqlite_import_migration_moves_boot_sources() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").display().to_string();
    let mut conn = <DbConn as diesel::Connection>::establish(&url).unwrap();
    crate::boot_migration::moves_boot_sources(&mut conn);
}

#[test]
fn sqlite_api_migration_moves_objects_into_tables() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").display().to_string();
    let mut conn = <DbConn as diesel::Connection>::establish(&url).unwrap();
    crate::objects_migration::converts_existing_rows(&mut conn);
}

/// Diesel keys a migration by the part of its directory name before the first
/// `_`; two directories with the same timestamp would make one of them be
/// skipped silently. Both backends must also carry the same list.
#[test]
fn migration_versions_are_unique_and_paired() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(b))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = list("sqlite");
    assert_eq!(sqlite, list("postgres"));
    let mut versions: Vec<&str> = sqlite
        .iter()
        .map(|n| n.split('_').next().unwrap())
        .collect();
    let n = versions.len();
    versions.dedup();
    assert_eq!(
        versions.len(),
        n,
        "duplicate migration versions in {sqlite:?}"
    );
}
