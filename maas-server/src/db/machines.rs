//! Machine rows ↔ [`maas_core::Machine`].
//!
//! A row keeps the whole domain model (plus the API-only fields in
//! [`MachineExtra`]) as JSON, and copies the fields queries filter on
//! (system id, hostname, status, owner) into columns. Every write bumps
//! `version` and is conditional on the version read, so two concurrent
//! actions on one machine cannot both win (allocate relies on this).

use diesel::prelude::*;
use maas_core::{Machine, NodeStatus, SystemId};
use serde::{Deserialize, Serialize};

use super::DbConn;
use super::schema::machines;
use crate::error::{Error, Result};

/// API fields MAAS shows that the life-cycle model does not carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineExtra {
    /// Free-text description.
    pub description: String,
    /// Power driver parameters (`power_address`, `power_user`, …).
    pub power_parameters: serde_json::Map<String, serde_json::Value>,
    /// Owner-set key/values, cleared on release.
    pub owner_data: serde_json::Map<String, serde_json::Value>,
    /// Minimum HWE kernel, empty when unset.
    pub min_hwe_kernel: String,
    /// Base64 user-data given at deploy time.
    pub user_data: String,
    /// Swap size in bytes, when set.
    pub swap_size: Option<u64>,
    /// CPU speed in MHz.
    pub cpu_speed: u64,
    /// CPU model from commissioning, empty when unknown.
    pub cpu_model: String,
    /// Hardware UUID, empty when unknown.
    pub hardware_uuid: String,
    /// The storage layout last applied, empty when none.
    pub storage_layout: String,
    /// Short status message (the last event's description).
    pub status_message: String,
    /// Power actions requested but not yet carried out by a power worker.
    pub pending_power: Vec<String>,
    /// Whether hardware sync was requested at deploy.
    pub enable_hw_sync: bool,
    /// Whether kernel crash dumps were requested at deploy.
    pub enable_kernel_crash_dump: bool,
}

/// What a machine row stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// The domain model.
    pub machine: Machine,
    /// API-only fields.
    #[serde(default)]
    pub extra: MachineExtra,
}

/// A machine as read from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMachine {
    /// Row id (MAAS's node id; sorts the list).
    pub id: i64,
    /// Version read; a write succeeds only if it is still current.
    pub version: i64,
    /// Creation time, ms since the epoch.
    pub created: i64,
    /// Last update, ms since the epoch.
    pub updated: i64,
    /// The content.
    pub record: MachineRecord,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = machines)]
struct Row {
    id: i64,
    version: i64,
    data: String,
    created: i64,
    updated: i64,
}

impl TryFrom<Row> for StoredMachine {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(StoredMachine {
            id: r.id,
            version: r.version,
            created: r.created,
            updated: r.updated,
            record: serde_json::from_str(&r.data)?,
        })
    }
}

fn status_col(s: NodeStatus) -> i32 {
    i32::from(s.as_int())
}

/// Inserts a new machine. A taken hostname or system id is refused.
pub fn insert(conn: &mut DbConn, record: &MachineRecord, now_ms: i64) -> Result<StoredMachine> {
    let m = &record.machine;
    let taken = machines::table
        .filter(
            machines::hostname
                .eq(&m.hostname)
                .or(machines::system_id.eq(m.system_id.as_str())),
        )
        .count()
        .get_result::<i64>(conn)?;
    if taken > 0 {
        return Err(Error::Refused(format!(
            "Node with hostname \"{}\" already exists.",
            m.hostname
        )));
    }
    diesel::insert_into(machines::table)
        .values((
            machines::system_id.eq(m.system_id.as_str()),
            machines::hostname.eq(&m.hostname),
            machines::status.eq(status_col(m.status)),
            machines::owner.eq(m.owner.as_deref()),
            machines::version.eq(1i64),
            machines::data.eq(serde_json::to_string(record)?),
            machines::created.eq(now_ms),
            machines::updated.eq(now_ms),
        ))
        .execute(conn)?;
    get(conn, &m.system_id)?.ok_or_else(|| Error::Refused("machine vanished".into()))
}

/// The machine with this system id.
pub fn get(conn: &mut DbConn, id: &SystemId) -> Result<Option<StoredMachine>> {
    machines::table
        .filter(machines::system_id.eq(id.as_str()))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(StoredMachine::try_from)
        .transpose()
}

/// The machine with this hostname.
pub fn by_hostname(conn: &mut DbConn, hostname: &str) -> Result<Option<StoredMachine>> {
    machines::table
        .filter(machines::hostname.eq(hostname))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(StoredMachine::try_from)
        .transpose()
}

/// Every machine, by id.
pub fn list(conn: &mut DbConn) -> Result<Vec<StoredMachine>> {
    machines::table
        .order(machines::id.asc())
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredMachine::try_from)
        .collect()
}

/// Machines in `status` with no owner, by id (allocation candidates).
pub fn unowned_in_status(conn: &mut DbConn, status: NodeStatus) -> Result<Vec<StoredMachine>> {
    machines::table
        .filter(machines::status.eq(status_col(status)))
        .filter(machines::owner.is_null())
        .order(machines::id.asc())
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredMachine::try_from)
        .collect()
}

/// Writes `m` back if nobody changed it since it was read. Returns false
/// (and writes nothing) when the version moved on.
pub fn update(conn: &mut DbConn, m: &StoredMachine, now_ms: i64) -> Result<bool> {
    let mm = &m.record.machine;
    let n = diesel::update(
        machines::table
            .filter(machines::system_id.eq(mm.system_id.as_str()))
            .filter(machines::version.eq(m.version)),
    )
    .set((
        machines::hostname.eq(&mm.hostname),
        machines::status.eq(status_col(mm.status)),
        machines::owner.eq(mm.owner.as_deref()),
        machines::version.eq(m.version + 1),
        machines::data.eq(serde_json::to_string(&m.record)?),
        machines::updated.eq(now_ms),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a machine; returns whether it existed.
pub fn delete(conn: &mut DbConn, id: &SystemId) -> Result<bool> {
    Ok(
        diesel::delete(machines::table.filter(machines::system_id.eq(id.as_str())))
            .execute(conn)?
            > 0,
    )
}

/// Number of machines.
pub fn count(conn: &mut DbConn) -> Result<i64> {
    Ok(machines::table.count().get_result(conn)?)
}
