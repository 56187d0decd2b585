//! The small named resources (zones, pools, tags, domains, fabrics, VLANs,
//! subnets, IP ranges, SSH keys, boot sources and selections): one table,
//! one JSON document per object, keyed by kind and id.
//!
//! These are read whole and are few (tens to hundreds), so a document store
//! keeps the schema small while the API shapes settle; the columns `kind`
//! and `name` are indexed for lookups by name.

use diesel::prelude::*;

use super::DbConn;
use super::schema::objects;
use crate::error::{Error, Result};

/// One stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Row id, the API's `id`.
    pub id: i64,
    /// Name (unique per kind where the API says so).
    pub name: String,
    /// The fields.
    pub data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = objects)]
struct Row {
    id: i64,
    name: String,
    data: String,
}

fn decode(r: Row) -> Result<Object> {
    let v: serde_json::Value = serde_json::from_str(&r.data)?;
    let data = match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok(Object {
        id: r.id,
        name: r.name,
        data,
    })
}

/// Inserts an object and returns it with its id.
pub fn insert(
    conn: &mut DbConn,
    kind: &str,
    name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<Object> {
    diesel::insert_into(objects::table)
        .values((
            objects::kind.eq(kind),
            objects::name.eq(name),
            objects::data.eq(serde_json::to_string(data)?),
        ))
        .execute(conn)?;
    let id: i64 = objects::table
        .filter(objects::kind.eq(kind))
        .select(diesel::dsl::max(objects::id))
        .first::<Option<i64>>(conn)?
        .ok_or_else(|| Error::Refused("object vanished".into()))?;
    get(conn, kind, id)?.ok_or_else(|| Error::Refused("object vanished".into()))
}

/// The object of `kind` with `id`.
pub fn get(conn: &mut DbConn, kind: &str, id: i64) -> Result<Option<Object>> {
    objects::table
        .filter(objects::kind.eq(kind))
        .filter(objects::id.eq(id))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(decode)
        .transpose()
}

/// The first object of `kind` named `name`.
pub fn by_name(conn: &mut DbConn, kind: &str, name: &str) -> Result<Option<Object>> {
    objects::table
        .filter(objects::kind.eq(kind))
        .filter(objects::name.eq(name))
        .order(objects::id.asc())
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(decode)
        .transpose()
}

/// Every object of `kind`, by id.
pub fn list(conn: &mut DbConn, kind: &str) -> Result<Vec<Object>> {
    objects::table
        .filter(objects::kind.eq(kind))
        .order(objects::id.asc())
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(decode)
        .collect()
}

/// Replaces an object's name and fields; returns whether it existed.
pub fn update(conn: &mut DbConn, kind: &str, obj: &Object) -> Result<bool> {
    Ok(diesel::update(
        objects::table
            .filter(objects::kind.eq(kind))
            .filter(objects::id.eq(obj.id)),
    )
    .set((
        objects::name.eq(&obj.name),
        objects::data.eq(serde_json::to_string(&obj.data)?),
    ))
    .execute(conn)?
        > 0)
}

/// Deletes an object; returns whether it existed.
pub fn delete(conn: &mut DbConn, kind: &str, id: i64) -> Result<bool> {
    Ok(diesel::delete(
        objects::table
            .filter(objects::kind.eq(kind))
            .filter(objects::id.eq(id)),
    )
    .execute(conn)?
        > 0)
}
