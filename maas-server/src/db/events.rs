//! The event log: every state change of a machine writes one row.

use diesel::prelude::*;

use super::DbConn;
use super::schema::events;
use crate::error::Result;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct Event {
    /// Row id.
    pub id: i64,
    /// Machine system id.
    pub system_id: String,
    /// Machine hostname at the time.
    pub hostname: String,
    /// Acting user, empty for the system.
    pub username: String,
    /// `INFO`, `WARNING`, `ERROR`, `AUDIT`, `DEBUG`.
    pub level: String,
    /// Event type description, such as `Deploying`.
    pub type_name: String,
    /// Free text.
    pub description: String,
    /// Time, ms since the epoch.
    pub created: i64,
}

/// A new event.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Machine system id.
    pub system_id: &'a str,
    /// Machine hostname.
    pub hostname: &'a str,
    /// Acting user.
    pub username: &'a str,
    /// Level.
    pub level: &'a str,
    /// Event type description.
    pub type_name: &'a str,
    /// Free text.
    pub description: &'a str,
}

/// Appends an event.
pub fn add(conn: &mut DbConn, e: &NewEvent<'_>, now_ms: i64) -> Result<()> {
    diesel::insert_into(events::table)
        .values((
            events::system_id.eq(e.system_id),
            events::hostname.eq(e.hostname),
            events::username.eq(e.username),
            events::level.eq(e.level),
            events::type_name.eq(e.type_name),
            events::description.eq(e.description),
            events::created.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Filter for [`query`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these system ids (empty: all).
    pub system_ids: Vec<String>,
    /// Only these hostnames (empty: all).
    pub hostnames: Vec<String>,
    /// Events with id < this (paging backwards).
    pub before: Option<i64>,
    /// Events with id > this.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: i64,
    /// Only events of these levels (`None`: all).
    pub levels: Option<Vec<String>>,
}

/// Events matching `q`, newest first. With only `after`, the `limit`
/// events right after it (MAAS pages forward that way), still newest first.
pub fn query(conn: &mut DbConn, q: &EventQuery) -> Result<Vec<Event>> {
    let mut s = events::table.into_boxed();
    if !q.system_ids.is_empty() {
        s = s.filter(events::system_id.eq_any(&q.system_ids));
    }
    if !q.hostnames.is_empty() {
        s = s.filter(events::hostname.eq_any(&q.hostnames));
    }
    if let Some(levels) = &q.levels {
        s = s.filter(events::level.eq_any(levels));
    }
    if let Some(b) = q.before {
        s = s.filter(events::id.lt(b));
    }
    if let Some(a) = q.after {
        s = s.filter(events::id.gt(a));
    }
    // Paging forward takes the oldest events after `after`.
    let forward = q.after.is_some() && q.before.is_none();
    s = if forward {
        s.order(events::id.asc())
    } else {
        s.order(events::id.desc())
    };
    let mut v = s.limit(q.limit).select(Event::as_select()).load(conn)?;
    if forward {
        v.reverse();
    }
    Ok(v)
}
