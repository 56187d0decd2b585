//! Migrations on a real PostgreSQL 15: the listing and API migrations
//! convert existing rows, and up → down → up gives the same schema.

#[path = "../../maas-server/tests/it/boot_migration.rs"]
mod boot_migration;
#[path = "../../maas-server/tests/it/listing_migration.rs"]
mod listing_migration;
#[path = "../../maas-server/tests/it/objects_migration.rs"]
mod objects_migration;

use diesel::prelude::*;
use maas_e2e::Postgres;
use maas_server::db::{self, DbConn};

/// Every column of the public schema as `table.column type nullable default`.
fn schema(conn: &mut DbConn) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        c: String,
    }
    diesel::sql_query(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
         || ' ' || COALESCE(column_default, '') AS c FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '__diesel%' ORDER BY c",
    )
    .load::<Col>(conn)
    .unwrap()
    .into_iter()
    .map(|c| c.c)
    .collect()
}

#[test]
fn postgres_migrations_convert_rows_and_revert_cleanly() {
    let pg = Postgres::start().unwrap();
    let mut conn = <DbConn as diesel::Connection>::establish(&pg.url()).unwrap();
    listing_migration::converts_existing_rows(&mut conn);
    boot_migration::moves_boot_sources(&mut conn);
    objects_migration::converts_existing_rows(&mut conn);
    let first = schema(&mut conn);
    assert!(
        first.iter().any(|c| c.starts_with("machine_tags.name ")),
        "{first:?}"
    );
    assert!(
        first.iter().any(|c| c.starts_with("machines.zone ")),
        "{first:?}"
    );
    db::revert_all(&mut conn).unwrap();
    assert!(schema(&mut conn).is_empty());
    db::migrate(&mut conn).unwrap();
    assert_eq!(schema(&mut conn), first);
}
