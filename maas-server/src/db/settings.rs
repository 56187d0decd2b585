//! Global settings (`maas set_config`/`get_config`) and id sequences, as
//! JSON values in the `settings` table.

use diesel::prelude::*;

use super::DbConn;
use super::schema::settings;
use crate::error::Result;

/// The stored value of `name`, if set.
pub fn get(conn: &mut DbConn, name: &str) -> Result<Option<serde_json::Value>> {
    let v: Option<String> = settings::table
        .filter(settings::name.eq(name))
        .select(settings::value)
        .first(conn)
        .optional()?;
    Ok(v.map(|s| serde_json::from_str(&s)).transpose()?)
}

/// Sets `name` to `value`.
pub fn set(conn: &mut DbConn, name: &str, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string(value)?;
    let n = diesel::update(settings::table.filter(settings::name.eq(name)))
        .set(settings::value.eq(&text))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(&text)))
            .execute(conn)?;
    }
    Ok(())
}

/// Takes the next value of the sequence `name` (1, 2, …). Call inside a
/// write transaction.
pub fn next_seq(conn: &mut DbConn, name: &str) -> Result<u64> {
    let key = format!("seq:{name}");
    let cur = get(conn, &key)?.and_then(|v| v.as_u64()).unwrap_or(0);
    set(conn, &key, &serde_json::json!(cur + 1))?;
    Ok(cur + 1)
}
