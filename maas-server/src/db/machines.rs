//! Machine rows ↔ [`maas_core::Machine`].
//!
//! A row keeps the whole domain model (plus the API-only fields in
//! [`MachineExtra`]) as JSON, which actions read and write whole. What the
//! list endpoints filter on is copied, on every write, into columns
//! (system id, hostname, status, owner, zone, pool, domain, architecture,
//! CPU, memory, power state, agent) and child tables (`machine_tags`,
//! `machine_interfaces`, `machine_blockdevices`), so [`query`] answers a
//! filtered, paged list in SQL. Each write also stores the machine's list
//! JSON (`listing`, see `api::json::listing_template`), so a list copies
//! text instead of decoding models; allocation walks the SQL-filtered
//! candidates cheapest first and decodes only those it looks at. MAC
//! lookups go through the indexed `machine_interfaces.mac`. Every write
//! bumps `version` and is conditional on the version read, so two
//! concurrent actions on one machine cannot both win (allocate relies on
//! this).

use diesel::prelude::*;
use maas_core::hardware::BlockDeviceKind;
use maas_core::{MacAddress, Machine, NodeStatus, SystemId};
use serde::{Deserialize, Serialize};

use super::DbConn;
use super::schema::{machine_blockdevices, machine_interfaces, machine_tags, machines};
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
    /// How the last release asked the disks to be erased (what the
    /// `wipe-disks` script the erasing environment gets does).
    pub erase_mode: Option<maas_core::actions::EraseMode>,
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
    let stored =
        get(conn, &m.system_id)?.ok_or_else(|| Error::Refused("machine vanished".into()))?;
    write_listing(conn, stored.id, record)?;
    Ok(stored)
}

/// Deletes a machine's rows of a child table and inserts `rows` instead.
/// Rows go in one by one: diesel's multi-backend connection has no batch
/// insert, and a machine has a handful of each.
macro_rules! rewrite_children {
    ($conn:expr, $table:ident, $id:expr, $rows:expr) => {{
        diesel::delete($table::table.filter($table::machine_id.eq($id))).execute($conn)?;
        for row in $rows {
            diesel::insert_into($table::table)
                .values(row)
                .execute($conn)?;
        }
    }};
}

/// Copies what lists filter on into the row's columns and child tables,
/// and stores the rendered listing template.
fn write_listing(conn: &mut DbConn, id: i64, record: &MachineRecord) -> Result<()> {
    let m = &record.machine;
    diesel::update(machines::table.filter(machines::id.eq(id)))
        .set((
            machines::zone.eq(&m.zone),
            machines::pool.eq(&m.pool),
            machines::domain.eq(&m.domain),
            machines::architecture.eq(&m.architecture),
            machines::arch.eq(m.arch()),
            machines::cpu_count.eq(i64::from(m.cpu_count)),
            machines::memory_mib.eq(clamp_i64(m.memory_mib)),
            machines::power_state.eq(m.power_state.as_str()),
            machines::agent_name.eq(&m.agent_name),
            machines::listing.eq(crate::api::json::listing_template(record)),
        ))
        .execute(conn)?;
    let mut tags: Vec<&str> = m.tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    rewrite_children!(
        conn,
        machine_tags,
        id,
        tags.iter()
            .map(|t| (machine_tags::machine_id.eq(id), machine_tags::name.eq(*t)))
    );
    let mut seen = std::collections::HashSet::new();
    rewrite_children!(
        conn,
        machine_interfaces,
        id,
        m.interfaces
            .iter()
            .filter(|i| seen.insert(i.name.as_str()))
            .map(|i| {
                (
                    machine_interfaces::machine_id.eq(id),
                    machine_interfaces::name.eq(i.name.as_str()),
                    machine_interfaces::mac.eq(i.mac.colon()),
                )
            })
    );
    let mut seen = std::collections::HashSet::new();
    rewrite_children!(
        conn,
        machine_blockdevices,
        id,
        m.block_devices
            .iter()
            .filter(|d| seen.insert(d.name.as_str()))
            .map(|d| {
                (
                    machine_blockdevices::machine_id.eq(id),
                    machine_blockdevices::name.eq(d.name.as_str()),
                    machine_blockdevices::kind.eq(match d.kind {
                        BlockDeviceKind::Physical => "physical",
                        BlockDeviceKind::Virtual => "virtual",
                    }),
                    machine_blockdevices::size.eq(clamp_i64(d.size)),
                )
            })
    );
    Ok(())
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
    if n == 1 {
        write_listing(conn, m.id, &m.record)?;
    }
    Ok(n == 1)
}

/// Deletes a machine; returns whether it existed.
pub fn delete(conn: &mut DbConn, id: &SystemId) -> Result<bool> {
    // Child rows go explicitly: connections opened without the pool's
    // `foreign_keys` pragma would not cascade on SQLite.
    let row = || {
        machines::table
            .filter(machines::system_id.eq(id.as_str()))
            .select(machines::id)
    };
    diesel::delete(machine_tags::table.filter(machine_tags::machine_id.eq_any(row())))
        .execute(conn)?;
    diesel::delete(machine_interfaces::table.filter(machine_interfaces::machine_id.eq_any(row())))
        .execute(conn)?;
    diesel::delete(
        machine_blockdevices::table.filter(machine_blockdevices::machine_id.eq_any(row())),
    )
    .execute(conn)?;
    Ok(
        diesel::delete(machines::table.filter(machines::system_id.eq(id.as_str())))
            .execute(conn)?
            > 0,
    )
}

/// Number of machines per status integer.
pub fn count_by_status(conn: &mut DbConn) -> Result<Vec<(i32, i64)>> {
    Ok(machines::table
        .group_by(machines::status)
        .select((machines::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Number of machines.
pub fn count(conn: &mut DbConn) -> Result<i64> {
    Ok(machines::table.count().get_result(conn)?)
}

/// The filters of `GET machines/` that SQL answers (MAAS's
/// `ReadNodesForm`). Empty lists do not filter; every non-empty field must
/// hold.
#[derive(Debug, Clone, Default)]
pub struct MachineQuery {
    /// Only machines visible to this non-admin user (unowned or theirs).
    pub visible_to: Option<String>,
    /// System ids, any of.
    pub system_ids: Vec<String>,
    /// System ids excluded.
    pub not_system_ids: Vec<String>,
    /// Hostnames (without domain), any of.
    pub hostnames: Vec<String>,
    /// Hostnames excluded.
    pub not_hostnames: Vec<String>,
    /// MAC addresses (colon form, lower case), any interface with any of them.
    pub macs: Vec<String>,
    /// Domains, any of.
    pub domains: Vec<String>,
    /// Domains excluded.
    pub not_domains: Vec<String>,
    /// Zones, any of.
    pub zones: Vec<String>,
    /// Zones excluded.
    pub not_zones: Vec<String>,
    /// Pools, any of.
    pub pools: Vec<String>,
    /// Pools excluded.
    pub not_pools: Vec<String>,
    /// Statuses, any of.
    pub statuses: Vec<NodeStatus>,
    /// A second status set that must also hold (`simple_status`).
    pub statuses_also: Option<Vec<NodeStatus>>,
    /// Statuses excluded.
    pub not_statuses: Vec<NodeStatus>,
    /// Owners, any of (unowned machines never match).
    pub owners: Vec<String>,
    /// Owners excluded (unowned machines always pass).
    pub not_owners: Vec<String>,
    /// Power states (`on`, `off`, …), any of.
    pub power_states: Vec<String>,
    /// Architectures, `amd64` or `amd64/generic`, any of.
    pub arches: Vec<String>,
    /// Tags, all of.
    pub tags: Vec<String>,
    /// Tags, none of.
    pub not_tags: Vec<String>,
    /// Agent names, any of.
    pub agent_names: Vec<String>,
    /// At least this many CPUs.
    pub min_cpu_count: Option<i64>,
    /// At least this much memory (MiB).
    pub min_memory_mib: Option<i64>,
    /// Rows to skip.
    pub offset: i64,
    /// At most this many rows.
    pub limit: Option<i64>,
}

fn status_ints(v: &[NodeStatus]) -> Vec<i32> {
    v.iter().copied().map(status_col).collect()
}

/// The backend type of [`DbConn`], for boxed queries.
type Db = <DbConn as diesel::Connection>::Backend;

/// Machines matching `q`, by id.
pub fn query(conn: &mut DbConn, q: &MachineQuery) -> Result<Vec<StoredMachine>> {
    filtered(q)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredMachine::try_from)
        .collect()
}

/// What the list endpoints read of a machine: the stored listing template
/// and the names its slots are filled from, without the model.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = machines)]
pub struct ListingRow {
    /// Row id.
    pub id: i64,
    /// Domain name.
    pub domain: String,
    /// Zone name.
    pub zone: String,
    /// Pool name.
    pub pool: String,
    /// The template written with the row (see `api::json::listing_template`).
    pub listing: Option<String>,
}

/// The listing rows of the machines matching `q`, by id.
pub fn query_listing(conn: &mut DbConn, q: &MachineQuery) -> Result<Vec<ListingRow>> {
    Ok(filtered(q).select(ListingRow::as_select()).load(conn)?)
}

/// The machines with these row ids, by id.
pub fn by_row_ids(conn: &mut DbConn, ids: &[i64]) -> Result<Vec<StoredMachine>> {
    let mut out = Vec::with_capacity(ids.len());
    // Chunks stay far below SQLite's bound-parameter limit.
    for chunk in ids.chunks(500) {
        let rows = machines::table
            .filter(machines::id.eq_any(chunk.to_vec()))
            .order(machines::id.asc())
            .select(Row::as_select())
            .load(conn)?;
        for r in rows {
            out.push(StoredMachine::try_from(r)?);
        }
    }
    Ok(out)
}

/// Stores a freshly rendered listing template for a row read at `version`
/// (nothing when the row changed since: its writer stored its own).
pub fn store_listing(conn: &mut DbConn, id: i64, version: i64, listing: &str) -> Result<()> {
    diesel::update(
        machines::table
            .filter(machines::id.eq(id))
            .filter(machines::version.eq(version)),
    )
    .set(machines::listing.eq(listing))
    .execute(conn)?;
    Ok(())
}

/// The system id of the machine with an interface of this MAC (the lowest
/// row id if several claim it), by the indexed `machine_interfaces.mac`.
pub fn system_id_by_mac(conn: &mut DbConn, mac: &MacAddress) -> Result<Option<String>> {
    Ok(machine_interfaces::table
        .inner_join(machines::table)
        .filter(machine_interfaces::mac.eq(mac.colon()))
        .order(machine_interfaces::machine_id.asc())
        .select(machines::system_id)
        .first(conn)
        .optional()?)
}

/// The machine with an interface of this MAC (see [`system_id_by_mac`]).
pub fn by_mac(conn: &mut DbConn, mac: &MacAddress) -> Result<Option<StoredMachine>> {
    let id: Option<i64> = machine_interfaces::table
        .filter(machine_interfaces::mac.eq(mac.colon()))
        .order(machine_interfaces::machine_id.asc())
        .select(machine_interfaces::machine_id)
        .first(conn)
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    machines::table
        .filter(machines::id.eq(id))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(StoredMachine::try_from)
        .transpose()
}

/// A machine's place in allocation order: MAAS's cost
/// (`cpu_count + memory_mib / 1024`, compared exactly as
/// `cpu_count * 1024 + memory_mib`), then row id.
pub fn allocation_key(sm: &StoredMachine) -> (i64, i64) {
    let m = &sm.record.machine;
    (
        (i64::from(m.cpu_count) * 1024).saturating_add(clamp_i64(m.memory_mib)),
        sm.id,
    )
}

/// Ready, unowned machines passing `q`'s filters, in allocation order
/// ([`allocation_key`]: the order in which
/// `maas_core::constraints::allocate` prefers them), starting after the key
/// `after`, at most `limit` of them. Allocation reads them page by page and
/// decodes only the machines it has to look at.
pub fn allocation_candidates(
    conn: &mut DbConn,
    q: &MachineQuery,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<StoredMachine>> {
    let q = MachineQuery {
        statuses: vec![NodeStatus::Ready],
        offset: 0,
        limit: None,
        ..q.clone()
    };
    let cost = || machines::cpu_count * 1024i64 + machines::memory_mib;
    let mut s = filtered_unordered(&q).filter(machines::owner.is_null());
    if let Some((c, id)) = after {
        s = s.filter(cost().gt(c).or(cost().eq(c).and(machines::id.gt(id))));
    }
    s.order((cost().asc(), machines::id.asc()))
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredMachine::try_from)
        .collect()
}

/// `q`'s filters, ordering and paging as one boxed query.
fn filtered(q: &MachineQuery) -> machines::BoxedQuery<'static, Db> {
    let mut s = filtered_unordered(q).order(machines::id.asc());
    if q.offset > 0 {
        s = s.offset(q.offset);
    }
    if let Some(l) = q.limit {
        s = s.limit(l);
    } else if q.offset > 0 {
        // SQL has no OFFSET without LIMIT on SQLite.
        s = s.limit(i64::MAX);
    }
    s
}

/// `q`'s filters alone.
fn filtered_unordered(q: &MachineQuery) -> machines::BoxedQuery<'static, Db> {
    let mut s = machines::table.into_boxed();
    if let Some(u) = &q.visible_to {
        s = s.filter(machines::owner.is_null().or(machines::owner.eq(u.clone())));
    }
    if !q.system_ids.is_empty() {
        s = s.filter(machines::system_id.eq_any(q.system_ids.clone()));
    }
    if !q.not_system_ids.is_empty() {
        s = s.filter(machines::system_id.ne_all(q.not_system_ids.clone()));
    }
    if !q.hostnames.is_empty() {
        s = s.filter(machines::hostname.eq_any(q.hostnames.clone()));
    }
    if !q.not_hostnames.is_empty() {
        s = s.filter(machines::hostname.ne_all(q.not_hostnames.clone()));
    }
    if !q.macs.is_empty() {
        s = s.filter(
            machines::id.eq_any(
                machine_interfaces::table
                    .filter(machine_interfaces::mac.eq_any(q.macs.clone()))
                    .select(machine_interfaces::machine_id),
            ),
        );
    }
    if !q.domains.is_empty() {
        s = s.filter(machines::domain.eq_any(q.domains.clone()));
    }
    if !q.not_domains.is_empty() {
        s = s.filter(machines::domain.ne_all(q.not_domains.clone()));
    }
    if !q.zones.is_empty() {
        s = s.filter(machines::zone.eq_any(q.zones.clone()));
    }
    if !q.not_zones.is_empty() {
        s = s.filter(machines::zone.ne_all(q.not_zones.clone()));
    }
    if !q.pools.is_empty() {
        s = s.filter(machines::pool.eq_any(q.pools.clone()));
    }
    if !q.not_pools.is_empty() {
        s = s.filter(machines::pool.ne_all(q.not_pools.clone()));
    }
    if !q.statuses.is_empty() {
        s = s.filter(machines::status.eq_any(status_ints(&q.statuses)));
    }
    if let Some(also) = &q.statuses_also {
        s = s.filter(machines::status.eq_any(status_ints(also)));
    }
    if !q.not_statuses.is_empty() {
        s = s.filter(machines::status.ne_all(status_ints(&q.not_statuses)));
    }
    if !q.owners.is_empty() {
        s = s.filter(machines::owner.eq_any(q.owners.clone()));
    }
    if !q.not_owners.is_empty() {
        s = s.filter(
            machines::owner
                .is_null()
                .or(machines::owner.ne_all(q.not_owners.clone())),
        );
    }
    if !q.power_states.is_empty() {
        s = s.filter(machines::power_state.eq_any(q.power_states.clone()));
    }
    if !q.arches.is_empty() {
        s = s.filter(
            machines::architecture
                .eq_any(q.arches.clone())
                .or(machines::arch.eq_any(q.arches.clone())),
        );
    }
    for t in &q.tags {
        s = s.filter(
            machines::id.eq_any(
                machine_tags::table
                    .filter(machine_tags::name.eq(t.clone()))
                    .select(machine_tags::machine_id),
            ),
        );
    }
    if !q.not_tags.is_empty() {
        s = s.filter(
            machines::id.ne_all(
                machine_tags::table
                    .filter(machine_tags::name.eq_any(q.not_tags.clone()))
                    .select(machine_tags::machine_id),
            ),
        );
    }
    if !q.agent_names.is_empty() {
        s = s.filter(machines::agent_name.eq_any(q.agent_names.clone()));
    }
    if let Some(n) = q.min_cpu_count {
        s = s.filter(machines::cpu_count.ge(n));
    }
    if let Some(n) = q.min_memory_mib {
        s = s.filter(machines::memory_mib.ge(n));
    }
    s
}
