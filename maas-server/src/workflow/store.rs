//! The workflow tables (`operations`, `jobs`; migration `2026-11-21-190000_flow`)
//! and their queries. Declared here rather than in `db::schema` because no
//! other module joins them.
#![allow(missing_docs)]

use diesel::prelude::*;
use maas_core::NodeStatus;

use crate::db::DbConn;
use crate::error::Result;

diesel::table! {
    operations (id) {
        id -> BigInt,
        system_id -> Text,
        kind -> Text,
        step -> Text,
        deadline -> BigInt,
        attempt -> Integer,
        last_error -> Text,
        created -> BigInt,
        updated -> BigInt,
    }
}

diesel::table! {
    jobs (id) {
        id -> BigInt,
        system_id -> Text,
        action -> Text,
        attempt -> Integer,
        not_before -> BigInt,
        last_error -> Text,
        created -> BigInt,
    }
}

/// One running operation of a machine (at most one per machine).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = operations)]
pub struct Operation {
    /// Row id.
    pub id: i64,
    /// The machine.
    pub system_id: String,
    /// `deploy`, `commission`, `release`, … (maas_core's `Workflow`, snake case).
    pub kind: String,
    /// Where it is: `power` (effects queued), `netboot` (waiting for the
    /// machine), `await-off` (release waiting for the BMC to say off).
    pub step: String,
    /// When the operation as a whole fails, ms since the epoch.
    pub deadline: i64,
    /// Times the operation was resumed after a restart.
    pub attempt: i32,
    /// The last error seen, empty when none.
    pub last_error: String,
    /// Start, ms since the epoch.
    pub created: i64,
    /// Last change, ms since the epoch.
    pub updated: i64,
}

/// A durable power effect, executed in id order per machine.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct Job {
    /// Row id (execution order).
    pub id: i64,
    /// The machine.
    pub system_id: String,
    /// `on`, `off:hard`, `off:soft`, `cycle` or `query`.
    pub action: String,
    /// Failed attempts so far.
    pub attempt: i32,
    /// Not to be run before this time, ms since the epoch (retry back-off).
    pub not_before: i64,
    /// The last failure, empty when none.
    pub last_error: String,
    /// Queued at, ms since the epoch.
    pub created: i64,
}

/// Starts (or replaces) the operation of `system_id`.
pub fn start_operation(
    conn: &mut DbConn,
    system_id: &str,
    kind: &str,
    deadline: i64,
    now_ms: i64,
) -> Result<()> {
    end_operation(conn, system_id)?;
    diesel::insert_into(operations::table)
        .values((
            operations::system_id.eq(system_id),
            operations::kind.eq(kind),
            operations::step.eq("power"),
            operations::deadline.eq(deadline),
            operations::attempt.eq(0),
            operations::last_error.eq(""),
            operations::created.eq(now_ms),
            operations::updated.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends the operation of `system_id`, if any.
pub fn end_operation(conn: &mut DbConn, system_id: &str) -> Result<()> {
    diesel::delete(operations::table.filter(operations::system_id.eq(system_id))).execute(conn)?;
    Ok(())
}

/// Moves the operation of `system_id` to `step` (no-op without one).
pub fn set_step(conn: &mut DbConn, system_id: &str, step: &str, now_ms: i64) -> Result<()> {
    diesel::update(operations::table.filter(operations::system_id.eq(system_id)))
        .set((operations::step.eq(step), operations::updated.eq(now_ms)))
        .execute(conn)?;
    Ok(())
}

/// Records an error on the operation of `system_id`.
pub fn note_error(conn: &mut DbConn, system_id: &str, error: &str, now_ms: i64) -> Result<()> {
    diesel::update(operations::table.filter(operations::system_id.eq(system_id)))
        .set((
            operations::last_error.eq(error),
            operations::updated.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Counts a resumption (after a restart) of every operation.
pub fn bump_attempts(conn: &mut DbConn, now_ms: i64) -> Result<usize> {
    Ok(diesel::update(operations::table)
        .set((
            operations::attempt.eq(operations::attempt + 1),
            operations::updated.eq(now_ms),
        ))
        .execute(conn)?)
}

/// The operation of `system_id`.
pub fn operation(conn: &mut DbConn, system_id: &str) -> Result<Option<Operation>> {
    Ok(operations::table
        .filter(operations::system_id.eq(system_id))
        .select(Operation::as_select())
        .first(conn)
        .optional()?)
}

/// Every running operation, oldest first.
pub fn all_operations(conn: &mut DbConn) -> Result<Vec<Operation>> {
    Ok(operations::table
        .order(operations::id.asc())
        .select(Operation::as_select())
        .load(conn)?)
}

/// Queues a power job.
pub fn add_job(conn: &mut DbConn, system_id: &str, action: &str, now_ms: i64) -> Result<()> {
    diesel::insert_into(jobs::table)
        .values((
            jobs::system_id.eq(system_id),
            jobs::action.eq(action),
            jobs::attempt.eq(0),
            jobs::not_before.eq(now_ms),
            jobs::last_error.eq(""),
            jobs::created.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Jobs due at `now_ms`, in execution order.
pub fn due_jobs(conn: &mut DbConn, now_ms: i64, limit: i64) -> Result<Vec<Job>> {
    Ok(jobs::table
        .filter(jobs::not_before.le(now_ms))
        .order(jobs::id.asc())
        .limit(limit)
        .select(Job::as_select())
        .load(conn)?)
}

/// Every queued job of `system_id`, in execution order.
pub fn jobs_of(conn: &mut DbConn, system_id: &str) -> Result<Vec<Job>> {
    Ok(jobs::table
        .filter(jobs::system_id.eq(system_id))
        .order(jobs::id.asc())
        .select(Job::as_select())
        .load(conn)?)
}

/// Number of queued jobs.
pub fn job_count(conn: &mut DbConn) -> Result<i64> {
    Ok(jobs::table.count().get_result(conn)?)
}

/// Whether the job still exists (a concurrent delete of the machine drops it).
pub fn delete_job(conn: &mut DbConn, id: i64) -> Result<bool> {
    Ok(diesel::delete(jobs::table.filter(jobs::id.eq(id))).execute(conn)? > 0)
}

/// Records a failed attempt and when to try again.
pub fn retry_job(
    conn: &mut DbConn,
    id: i64,
    attempt: i32,
    not_before: i64,
    error: &str,
) -> Result<()> {
    diesel::update(jobs::table.filter(jobs::id.eq(id)))
        .set((
            jobs::attempt.eq(attempt),
            jobs::not_before.eq(not_before),
            jobs::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops the operation and jobs of a deleted machine.
pub fn forget(conn: &mut DbConn, system_id: &str) -> Result<()> {
    end_operation(conn, system_id)?;
    diesel::delete(jobs::table.filter(jobs::system_id.eq(system_id))).execute(conn)?;
    Ok(())
}

/// System ids of the machines in any of `statuses`.
pub fn machines_in(conn: &mut DbConn, statuses: &[NodeStatus]) -> Result<Vec<String>> {
    use crate::db::schema::machines;
    let codes: Vec<i32> = statuses.iter().map(|s| i32::from(s.as_int())).collect();
    Ok(machines::table
        .filter(machines::status.eq_any(codes))
        .order(machines::id.asc())
        .select(machines::system_id)
        .load(conn)?)
}
