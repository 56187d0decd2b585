//! Script results in their own tables (migration `2026-11-22-221731_flow`):
//! a script set per run of a machine's commissioning, testing or
//! installation (MAAS's `ScriptSet`) and one row per script in it with its
//! status, exit code, raw output and times (MAAS's `ScriptResult`).
//!
//! A run starts a fresh set when the machine enters Commissioning, Testing
//! or Deploying ([`begin_runs_for`], called from the commit path every
//! transition takes); reports without a set (a deployed machine refreshing
//! its hardware) open one. A newer report of a script replaces the older
//! one in the same set, so a re-run clears an old failure.
#![allow(missing_docs)]

use diesel::prelude::*;
use maas_core::NodeStatus;

use crate::db::DbConn;
use crate::error::Result;

diesel::table! {
    script_sets (id) {
        id -> BigInt,
        system_id -> Text,
        result_type -> Integer,
        last_ping -> Nullable<BigInt>,
        created -> BigInt,
    }
}

diesel::table! {
    script_results (id) {
        id -> BigInt,
        script_set_id -> BigInt,
        name -> Text,
        script_id -> Nullable<BigInt>,
        status -> Integer,
        exit_status -> Nullable<Integer>,
        output -> Binary,
        stdout -> Binary,
        stderr -> Binary,
        result -> Binary,
        runtime_ms -> Nullable<BigInt>,
        started -> Nullable<BigInt>,
        ended -> Nullable<BigInt>,
        created -> BigInt,
        updated -> BigInt,
    }
}

/// MAAS's `RESULT_TYPE` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultType {
    /// 0.
    Commissioning,
    /// 1.
    Installation,
    /// 2.
    Testing,
}

impl ResultType {
    /// Every type, in MAAS's numeric order.
    pub const ALL: [ResultType; 3] = [
        ResultType::Commissioning,
        ResultType::Installation,
        ResultType::Testing,
    ];

    /// MAAS's number.
    pub fn code(self) -> i32 {
        match self {
            ResultType::Commissioning => 0,
            ResultType::Installation => 1,
            ResultType::Testing => 2,
        }
    }

    /// From MAAS's number.
    pub fn from_code(c: i32) -> Option<ResultType> {
        Self::ALL.into_iter().find(|t| t.code() == c)
    }

    /// MAAS's `result_type_name`.
    pub fn label(self) -> &'static str {
        match self {
            ResultType::Commissioning => "Commissioning",
            ResultType::Installation => "Installation",
            ResultType::Testing => "Testing",
        }
    }

    /// MAAS's `translate_result_type`: names or numbers (`installion` is
    /// MAAS's own spelling in its docs, accepted too).
    pub fn parse(s: &str) -> Option<ResultType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "commissioning" | "0" => Some(ResultType::Commissioning),
            "installation" | "installion" | "1" => Some(ResultType::Installation),
            "testing" | "test" | "2" => Some(ResultType::Testing),
            _ => None,
        }
    }

    /// The kind of results a machine in `status` is producing.
    pub fn for_status(status: NodeStatus) -> ResultType {
        match status {
            NodeStatus::Testing => ResultType::Testing,
            NodeStatus::Deploying => ResultType::Installation,
            _ => ResultType::Commissioning,
        }
    }
}

/// MAAS's `SCRIPT_STATUS` values this server produces.
pub mod status {
    pub const PENDING: i32 = 0;
    pub const RUNNING: i32 = 1;
    pub const PASSED: i32 = 2;
    pub const FAILED: i32 = 3;
    pub const TIMEDOUT: i32 = 4;
    pub const ABORTED: i32 = 5;

    /// MAAS's `status_name` of a script status.
    pub fn name(s: i32) -> &'static str {
        match s {
            PENDING => "Pending",
            RUNNING => "Running",
            PASSED => "Passed",
            FAILED => "Failed",
            TIMEDOUT => "Timed out",
            ABORTED => "Aborted",
            _ => "Unknown",
        }
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = script_sets)]
pub struct ScriptSet {
    pub id: i64,
    pub system_id: String,
    pub result_type: i32,
    /// Last report, ms since the epoch.
    pub last_ping: Option<i64>,
    pub created: i64,
}

/// One script's result.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = script_results)]
pub struct ScriptResult {
    pub id: i64,
    pub script_set_id: i64,
    pub name: String,
    /// The user script's id; `None` for builtin scripts.
    pub script_id: Option<i64>,
    pub status: i32,
    pub exit_status: Option<i32>,
    /// Combined output (the file named after the script).
    pub output: Vec<u8>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The `.yaml` result file.
    pub result: Vec<u8>,
    pub runtime_ms: Option<i64>,
    /// ms since the epoch.
    pub started: Option<i64>,
    /// ms since the epoch.
    pub ended: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

impl ScriptResult {
    /// Whether this result fails its run.
    pub fn failed(&self) -> bool {
        matches!(self.status, status::FAILED | status::TIMEDOUT)
    }
}

/// What one signal reported about one script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub script_id: Option<i64>,
    pub exit_status: Option<i32>,
    pub timed_out: bool,
    pub output: Option<Vec<u8>>,
    pub stdout: Option<Vec<u8>>,
    pub stderr: Option<Vec<u8>>,
    pub result: Option<Vec<u8>>,
    pub runtime_ms: Option<i64>,
}

impl Report {
    fn status(&self) -> i32 {
        match (self.timed_out, self.exit_status) {
            (true, _) => status::TIMEDOUT,
            (false, Some(0)) => status::PASSED,
            (false, Some(_)) => status::FAILED,
            (false, None) => status::RUNNING,
        }
    }
}

/// Opens a new set for `rt` (a new run).
pub fn begin_run(conn: &mut DbConn, system_id: &str, rt: ResultType, now_ms: i64) -> Result<i64> {
    diesel::insert_into(script_sets::table)
        .values((
            script_sets::system_id.eq(system_id),
            script_sets::result_type.eq(rt.code()),
            script_sets::last_ping.eq(None::<i64>),
            script_sets::created.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(script_sets::table
        .filter(script_sets::system_id.eq(system_id))
        .filter(script_sets::result_type.eq(rt.code()))
        .select(diesel::dsl::max(script_sets::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or_default())
}

/// Opens the sets a transition from `before` to `after` starts: entering
/// Commissioning, Testing or Deploying is a new run of that kind.
pub fn begin_runs_for(
    conn: &mut DbConn,
    system_id: &str,
    before: NodeStatus,
    after: NodeStatus,
    now_ms: i64,
) -> Result<()> {
    if before != after
        && matches!(
            after,
            NodeStatus::Commissioning | NodeStatus::Testing | NodeStatus::Deploying
        )
    {
        begin_run(conn, system_id, ResultType::for_status(after), now_ms)?;
    }
    Ok(())
}

/// The latest set of `rt`.
pub fn current_set(
    conn: &mut DbConn,
    system_id: &str,
    rt: ResultType,
) -> Result<Option<ScriptSet>> {
    Ok(script_sets::table
        .filter(script_sets::system_id.eq(system_id))
        .filter(script_sets::result_type.eq(rt.code()))
        .order(script_sets::id.desc())
        .select(ScriptSet::as_select())
        .first(conn)
        .optional()?)
}

/// Stores reports in the current set of `rt` (opening one if there is
/// none); returns the rows' ids.
pub fn store(
    conn: &mut DbConn,
    system_id: &str,
    rt: ResultType,
    reports: &[Report],
    now_ms: i64,
) -> Result<Vec<i64>> {
    let set_id = match current_set(conn, system_id, rt)? {
        Some(s) => s.id,
        None => begin_run(conn, system_id, rt, now_ms)?,
    };
    diesel::update(script_sets::table.filter(script_sets::id.eq(set_id)))
        .set(script_sets::last_ping.eq(Some(now_ms)))
        .execute(conn)?;
    let mut ids = Vec::with_capacity(reports.len());
    for r in reports {
        let ended = r.exit_status.is_some().then_some(now_ms);
        let started = ended.map(|e| e.saturating_sub(r.runtime_ms.unwrap_or(0)));
        let existing: Option<ScriptResult> = script_results::table
            .filter(script_results::script_set_id.eq(set_id))
            .filter(script_results::name.eq(&r.name))
            .select(ScriptResult::as_select())
            .first(conn)
            .optional()?;
        match existing {
            Some(old) => {
                // A later report of the same script: what it carries wins,
                // the rest of the earlier one stays.
                diesel::update(script_results::table.filter(script_results::id.eq(old.id)))
                    .set((
                        script_results::status.eq(r.status()),
                        script_results::exit_status.eq(r.exit_status),
                        script_results::script_id.eq(r.script_id.or(old.script_id)),
                        script_results::output.eq(r.output.clone().unwrap_or(old.output)),
                        script_results::stdout.eq(r.stdout.clone().unwrap_or(old.stdout)),
                        script_results::stderr.eq(r.stderr.clone().unwrap_or(old.stderr)),
                        script_results::result.eq(r.result.clone().unwrap_or(old.result)),
                        script_results::runtime_ms.eq(r.runtime_ms),
                        script_results::started.eq(started.or(old.started)),
                        script_results::ended.eq(ended),
                        script_results::updated.eq(now_ms),
                    ))
                    .execute(conn)?;
                ids.push(old.id);
            }
            None => {
                diesel::insert_into(script_results::table)
                    .values((
                        script_results::script_set_id.eq(set_id),
                        script_results::name.eq(&r.name),
                        script_results::script_id.eq(r.script_id),
                        script_results::status.eq(r.status()),
                        script_results::exit_status.eq(r.exit_status),
                        script_results::output.eq(r.output.clone().unwrap_or_default()),
                        script_results::stdout.eq(r.stdout.clone().unwrap_or_default()),
                        script_results::stderr.eq(r.stderr.clone().unwrap_or_default()),
                        script_results::result.eq(r.result.clone().unwrap_or_default()),
                        script_results::runtime_ms.eq(r.runtime_ms),
                        script_results::started.eq(started),
                        script_results::ended.eq(ended),
                        script_results::created.eq(now_ms),
                        script_results::updated.eq(now_ms),
                    ))
                    .execute(conn)?;
                ids.push(
                    script_results::table
                        .filter(script_results::script_set_id.eq(set_id))
                        .filter(script_results::name.eq(&r.name))
                        .select(script_results::id)
                        .first(conn)?,
                );
            }
        }
    }
    Ok(ids)
}

/// Whether the current set of `rt` holds a failed or timed-out result.
pub fn current_failed(conn: &mut DbConn, system_id: &str, rt: ResultType) -> Result<bool> {
    let Some(set) = current_set(conn, system_id, rt)? else {
        return Ok(false);
    };
    Ok(results_of(conn, set.id)?.iter().any(ScriptResult::failed))
}

/// The sets of a machine, oldest first, optionally of one type.
pub fn sets_of(
    conn: &mut DbConn,
    system_id: &str,
    rt: Option<ResultType>,
) -> Result<Vec<ScriptSet>> {
    let mut q = script_sets::table
        .filter(script_sets::system_id.eq(system_id))
        .into_boxed();
    if let Some(rt) = rt {
        q = q.filter(script_sets::result_type.eq(rt.code()));
    }
    Ok(q.order(script_sets::id.asc())
        .select(ScriptSet::as_select())
        .load(conn)?)
}

/// One set of a machine by id.
pub fn set_by_id(conn: &mut DbConn, system_id: &str, id: i64) -> Result<Option<ScriptSet>> {
    Ok(script_sets::table
        .filter(script_sets::system_id.eq(system_id))
        .filter(script_sets::id.eq(id))
        .select(ScriptSet::as_select())
        .first(conn)
        .optional()?)
}

/// The results of a set, by name (MAAS sorts them so).
pub fn results_of(conn: &mut DbConn, set_id: i64) -> Result<Vec<ScriptResult>> {
    Ok(script_results::table
        .filter(script_results::script_set_id.eq(set_id))
        .order((script_results::name.asc(), script_results::id.asc()))
        .select(ScriptResult::as_select())
        .load(conn)?)
}

/// Deletes one set and its results.
pub fn delete_set(conn: &mut DbConn, set_id: i64) -> Result<()> {
    diesel::delete(script_results::table.filter(script_results::script_set_id.eq(set_id)))
        .execute(conn)?;
    diesel::delete(script_sets::table.filter(script_sets::id.eq(set_id))).execute(conn)?;
    Ok(())
}

/// Deletes every set of a deleted machine.
pub fn forget(conn: &mut DbConn, system_id: &str) -> Result<()> {
    for s in sets_of(conn, system_id, None)? {
        delete_set(conn, s.id)?;
    }
    Ok(())
}

/// MAAS's `ScriptSet.status`: running while anything runs, else failed if
/// anything failed, else passed (pending when empty).
pub fn set_status(results: &[ScriptResult]) -> i32 {
    if results.is_empty() {
        status::PENDING
    } else if results
        .iter()
        .any(|r| matches!(r.status, status::RUNNING | status::PENDING))
    {
        status::RUNNING
    } else if results.iter().any(|r| r.status == status::FAILED) {
        status::FAILED
    } else if results.iter().any(|r| r.status == status::TIMEDOUT) {
        status::TIMEDOUT
    } else if results.iter().any(|r| r.status == status::ABORTED) {
        status::ABORTED
    } else {
        status::PASSED
    }
}

/// MAAS's runtime rendering: `H:MM:SS` (whole seconds), empty when unknown.
pub fn runtime_text(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms >= 0 => {
            let s = ms / 1000;
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_types_parse_names_and_numbers() {
        for t in ResultType::ALL {
            assert_eq!(ResultType::from_code(t.code()), Some(t));
            assert_eq!(ResultType::parse(&t.code().to_string()), Some(t));
            assert_eq!(ResultType::parse(t.label()), Some(t));
        }
        assert_eq!(ResultType::parse("bogus"), None);
        assert_eq!(
            ResultType::for_status(NodeStatus::Testing),
            ResultType::Testing
        );
    }

    #[test]
    fn runtime_is_hours_minutes_seconds() {
        assert_eq!(runtime_text(Some(3_723_400)), "1:02:03");
        assert_eq!(runtime_text(Some(999)), "0:00:00");
        assert_eq!(runtime_text(None), "");
    }

    #[test]
    fn report_status_follows_exit_code_and_timeout() {
        let mut r = Report::default();
        assert_eq!(r.status(), status::RUNNING);
        r.exit_status = Some(0);
        assert_eq!(r.status(), status::PASSED);
        r.exit_status = Some(3);
        assert_eq!(r.status(), status::FAILED);
        r.timed_out = true;
        assert_eq!(r.status(), status::TIMEDOUT);
    }

    #[test]
    fn set_status_aggregates_as_maas() {
        let mk = |st| ScriptResult {
            id: 0,
            script_set_id: 0,
            name: String::new(),
            script_id: None,
            status: st,
            exit_status: None,
            output: vec![],
            stdout: vec![],
            stderr: vec![],
            result: vec![],
            runtime_ms: None,
            started: None,
            ended: None,
            created: 0,
            updated: 0,
        };
        assert_eq!(set_status(&[]), status::PENDING);
        assert_eq!(set_status(&[mk(status::PASSED)]), status::PASSED);
        assert_eq!(
            set_status(&[mk(status::PASSED), mk(status::FAILED)]),
            status::FAILED
        );
        assert_eq!(
            set_status(&[mk(status::RUNNING), mk(status::FAILED)]),
            status::RUNNING
        );
    }
}
