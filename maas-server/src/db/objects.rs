//! The small named resources, behind one interface: an [`Object`] is an id,
//! a name and its fields as a JSON map, keyed by kind.
//!
//! The kinds the API and allocation query — zones, resource pools,
//! domains, tags, SSH keys, fabrics, VLANs, subnets and IP ranges — live in
//! a table each with a column per field ([`typed`]); the map is only the
//! shape callers see. Everything else (the MAC registry, scripts, results,
//! spaces, static routes) stays one JSON document per row in the
//! generic `objects` table, where the columns `kind` and `name` are indexed
//! for lookups by name.

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

/// Inserts a document and returns it with its id.
fn doc_insert(
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
    doc_get(conn, kind, id)?.ok_or_else(|| Error::Refused("object vanished".into()))
}

/// The object of `kind` with `id`.
fn doc_get(conn: &mut DbConn, kind: &str, id: i64) -> Result<Option<Object>> {
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
fn doc_by_name(conn: &mut DbConn, kind: &str, name: &str) -> Result<Option<Object>> {
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
fn doc_list(conn: &mut DbConn, kind: &str) -> Result<Vec<Object>> {
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
fn doc_update(conn: &mut DbConn, kind: &str, obj: &Object) -> Result<bool> {
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
fn doc_delete(conn: &mut DbConn, kind: &str, id: i64) -> Result<bool> {
    Ok(diesel::delete(
        objects::table
            .filter(objects::kind.eq(kind))
            .filter(objects::id.eq(id)),
    )
    .execute(conn)?
        > 0)
}

/// Inserts an object and returns it with its id.
pub fn insert(
    conn: &mut DbConn,
    kind: &str,
    name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<Object> {
    match typed::insert(conn, kind, name, data) {
        Some(r) => r,
        None => doc_insert(conn, kind, name, data),
    }
}

/// The object of `kind` with `id`.
pub fn get(conn: &mut DbConn, kind: &str, id: i64) -> Result<Option<Object>> {
    match typed::get(conn, kind, id) {
        Some(r) => r,
        None => doc_get(conn, kind, id),
    }
}

/// The first object of `kind` named `name`.
pub fn by_name(conn: &mut DbConn, kind: &str, name: &str) -> Result<Option<Object>> {
    match typed::by_name(conn, kind, name) {
        Some(r) => r,
        None => doc_by_name(conn, kind, name),
    }
}

/// Every object of `kind`, by id.
pub fn list(conn: &mut DbConn, kind: &str) -> Result<Vec<Object>> {
    match typed::list(conn, kind) {
        Some(r) => r,
        None => doc_list(conn, kind),
    }
}

/// Replaces an object's name and fields; returns whether it existed.
pub fn update(conn: &mut DbConn, kind: &str, obj: &Object) -> Result<bool> {
    match typed::update(conn, kind, obj) {
        Some(r) => r,
        None => doc_update(conn, kind, obj),
    }
}

/// Deletes an object; returns whether it existed.
pub fn delete(conn: &mut DbConn, kind: &str, id: i64) -> Result<bool> {
    match typed::delete(conn, kind, id) {
        Some(r) => r,
        None => doc_delete(conn, kind, id),
    }
}

/// Whether `kind` has its own table (rather than documents in `objects`).
pub fn is_typed(kind: &str) -> bool {
    typed::KINDS.contains(&kind)
}

pub mod typed {
    //! One table per queried kind. Each field is a nullable column of one
    //! of four shapes (`text`, `int`, `boolean`, or `json` text for lists);
    //! NULL reads back as "key not set", which every reader treats like a
    //! null value. A key outside a kind's columns is refused, so a new
    //! field needs a column (and a migration) rather than vanishing.

    use diesel::prelude::*;
    use serde_json::{Map, Value};

    use super::{DbConn, Object};
    use crate::error::{Error, Result};

    /// How a field is stored.
    pub(super) trait Shape {
        /// The column's Rust type.
        type Col;
        /// The column value for a map value (absent or null → NULL).
        fn to_col(kind: &str, key: &str, v: Option<&Value>) -> Result<Self::Col>;
        /// The map value of a column (NULL → absent).
        fn to_value(c: Self::Col) -> Result<Option<Value>>;
    }

    fn wrong(kind: &str, key: &str, v: &Value) -> Error {
        Error::Refused(format!("{kind}.{key} cannot hold {v}"))
    }

    /// Strings.
    pub(super) struct Text;
    impl Shape for Text {
        type Col = Option<String>;
        fn to_col(kind: &str, key: &str, v: Option<&Value>) -> Result<Self::Col> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(wrong(kind, key, other)),
            }
        }
        fn to_value(c: Self::Col) -> Result<Option<Value>> {
            Ok(c.map(Value::String))
        }
    }

    /// Integers.
    pub(super) struct Int;
    impl Shape for Int {
        type Col = Option<i64>;
        fn to_col(kind: &str, key: &str, v: Option<&Value>) -> Result<Self::Col> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n.as_i64().map(Some).ok_or_else(|| wrong(kind, key, n)),
            }
        }
        fn to_value(c: Self::Col) -> Result<Option<Value>> {
            Ok(c.map(Value::from))
        }
    }

    /// Booleans.
    pub(super) struct Boolean;
    impl Shape for Boolean {
        type Col = Option<bool>;
        fn to_col(kind: &str, key: &str, v: Option<&Value>) -> Result<Self::Col> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(b) => b.as_bool().map(Some).ok_or_else(|| wrong(kind, key, b)),
            }
        }
        fn to_value(c: Self::Col) -> Result<Option<Value>> {
            Ok(c.map(Value::Bool))
        }
    }

    /// Lists and other structured values, as JSON text.
    pub(super) struct Json;
    impl Shape for Json {
        type Col = Option<String>;
        fn to_col(_kind: &str, _key: &str, v: Option<&Value>) -> Result<Self::Col> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => Ok(Some(serde_json::to_string(v)?)),
            }
        }
        fn to_value(c: Self::Col) -> Result<Option<Value>> {
            c.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(Into::into)
        }
    }

    macro_rules! typed_kinds {
        ($( $kind:literal => $table:ident { $( $col:ident [$key:literal] : $shape:ident ),* $(,)? } ),* $(,)?) => {
            /// The kinds stored in their own tables.
            pub const KINDS: &[&str] = &[$($kind),*];

            $(
            mod $table {
                use super::*;
                use crate::db::schema::$table as t;

                #[derive(Queryable, Selectable)]
                #[diesel(table_name = t)]
                struct Row {
                    id: i64,
                    name: String,
                    $( $col: <$shape as Shape>::Col, )*
                }

                const KEYS: &[&str] = &[$($key),*];

                fn object(r: Row) -> Result<Object> {
                    let mut data = Map::new();
                    $(
                        if let Some(v) = <$shape as Shape>::to_value(r.$col)? {
                            data.insert($key.to_owned(), v);
                        }
                    )*
                    Ok(Object { id: r.id, name: r.name, data })
                }

                fn check(data: &Map<String, Value>) -> Result<()> {
                    match data.keys().find(|k| !KEYS.contains(&k.as_str())) {
                        Some(k) => Err(Error::Refused(format!("{} has no field {k}", $kind))),
                        None => Ok(()),
                    }
                }

                pub(super) fn insert(conn: &mut DbConn, name: &str, data: &Map<String, Value>) -> Result<Object> {
                    check(data)?;
                    diesel::insert_into(t::table)
                        .values((
                            t::name.eq(name),
                            $( t::$col.eq(<$shape as Shape>::to_col($kind, $key, data.get($key))?), )*
                        ))
                        .execute(conn)?;
                    // The newest row of that name: the one just written
                    // (writes run in a transaction).
                    let id: i64 = t::table
                        .filter(t::name.eq(name))
                        .select(diesel::dsl::max(t::id))
                        .first::<Option<i64>>(conn)?
                        .ok_or_else(|| Error::Refused("object vanished".into()))?;
                    get(conn, id)?.ok_or_else(|| Error::Refused("object vanished".into()))
                }

                pub(super) fn get(conn: &mut DbConn, id: i64) -> Result<Option<Object>> {
                    t::table
                        .filter(t::id.eq(id))
                        .select(Row::as_select())
                        .first(conn)
                        .optional()?
                        .map(object)
                        .transpose()
                }

                pub(super) fn by_name(conn: &mut DbConn, name: &str) -> Result<Option<Object>> {
                    t::table
                        .filter(t::name.eq(name))
                        .order(t::id.asc())
                        .select(Row::as_select())
                        .first(conn)
                        .optional()?
                        .map(object)
                        .transpose()
                }

                pub(super) fn list(conn: &mut DbConn) -> Result<Vec<Object>> {
                    t::table
                        .order(t::id.asc())
                        .select(Row::as_select())
                        .load(conn)?
                        .into_iter()
                        .map(object)
                        .collect()
                }

                pub(super) fn update(conn: &mut DbConn, o: &Object) -> Result<bool> {
                    check(&o.data)?;
                    Ok(diesel::update(t::table.filter(t::id.eq(o.id)))
                        .set((
                            t::name.eq(&o.name),
                            $( t::$col.eq(<$shape as Shape>::to_col($kind, $key, o.data.get($key))?), )*
                        ))
                        .execute(conn)?
                        > 0)
                }

                pub(super) fn delete(conn: &mut DbConn, id: i64) -> Result<bool> {
                    Ok(diesel::delete(t::table.filter(t::id.eq(id))).execute(conn)? > 0)
                }
            }
            )*

            /// `None` when `kind` has no table of its own.
            pub(super) fn insert(conn: &mut DbConn, kind: &str, name: &str, data: &Map<String, Value>) -> Option<Result<Object>> {
                match kind { $( $kind => Some($table::insert(conn, name, data)), )* _ => None }
            }
            pub(super) fn get(conn: &mut DbConn, kind: &str, id: i64) -> Option<Result<Option<Object>>> {
                match kind { $( $kind => Some($table::get(conn, id)), )* _ => None }
            }
            pub(super) fn by_name(conn: &mut DbConn, kind: &str, name: &str) -> Option<Result<Option<Object>>> {
                match kind { $( $kind => Some($table::by_name(conn, name)), )* _ => None }
            }
            pub(super) fn list(conn: &mut DbConn, kind: &str) -> Option<Result<Vec<Object>>> {
                match kind { $( $kind => Some($table::list(conn)), )* _ => None }
            }
            pub(super) fn update(conn: &mut DbConn, kind: &str, o: &Object) -> Option<Result<bool>> {
                match kind { $( $kind => Some($table::update(conn, o)), )* _ => None }
            }
            pub(super) fn delete(conn: &mut DbConn, kind: &str, id: i64) -> Option<Result<bool>> {
                match kind { $( $kind => Some($table::delete(conn, id)), )* _ => None }
            }
        };
    }

    // Kind names as in `api::json::kinds`; `[key]` is the field's name in
    // the object map (and the API), where it differs from a column name
    // SQL reserves (`type`, `user`, `key`).
    typed_kinds! {
        "zone" => zones { description["description"]: Text },
        "pool" => resource_pools { description["description"]: Text },
        "domain" => domains { authoritative["authoritative"]: Boolean, ttl["ttl"]: Int, is_default["is_default"]: Boolean },
        "tag" => tags { description["description"]: Text, comment["comment"]: Text, definition["definition"]: Text, kernel_opts["kernel_opts"]: Text },
        "sshkey" => sshkeys { public_key["key"]: Text, keysource["keysource"]: Text },
        "fabric" => fabrics { class_type["class_type"]: Text, description["description"]: Text },
        "vlan" => vlans { fabric_id["fabric_id"]: Int, vid["vid"]: Int, mtu["mtu"]: Int, dhcp_on["dhcp_on"]: Boolean, fabric["fabric"]: Text, space["space"]: Text, description["description"]: Text },
        "subnet" => subnets { cidr["cidr"]: Text, vlan_id["vlan_id"]: Int, gateway_ip["gateway_ip"]: Text, dns_servers["dns_servers"]: Json, rdns_mode["rdns_mode"]: Int, allow_dns["allow_dns"]: Boolean, allow_proxy["allow_proxy"]: Boolean, active_discovery["active_discovery"]: Boolean, managed["managed"]: Boolean, description["description"]: Text, space["space"]: Text },
        "iprange" => ipranges { subnet_id["subnet_id"]: Int, range_type["type"]: Text, start_ip["start_ip"]: Text, end_ip["end_ip"]: Text, comment["comment"]: Text, username["user"]: Text },
    }
}
