//! Durable workflows: the operations a machine is going through and the
//! power effects they need, kept in the database so that a `kill -9` of
//! `maasd` loses nothing.
//!
//! - [`record`] runs inside the transaction that writes a machine's new
//!   status: `StartWorkflow`/`EndWorkflow` effects become an `operations`
//!   row, power effects become `jobs` rows ([`store`]).
//! - [`Runner`] (started by `maasd serve` through [`spawn`]) drains the jobs
//!   through `maas_power::PowerManager` with bounded concurrency, records
//!   power states and events, feeds `PowerObserved` to the life-cycle
//!   (release finishes when the BMC says off), fails machines whose
//!   deadline passed (`DeadlineExpired`, reason in the event log) and polls
//!   queryable BMCs.
//! - On start, every operation is resumed (its queued jobs run again; power
//!   actions are idempotent) or, past its deadline, failed.

use maas_core::actions::{StopMode, Workflow};
use maas_core::signals::{self, Event};
use maas_core::{Effect, Machine, NodeStatus, Outcome, SystemId, Timestamp};
use serde::Deserialize;

use crate::db::machines::StoredMachine;
use crate::db::{DbConn, events, machines, settings};
use crate::error::{Error, Result};

mod runner;
pub mod store;

pub use runner::{Runner, spawn};

/// Setting (written by `maasd serve` from `[workflow] node_timeout_secs`)
/// that replaces MAAS's minute-granular operation timeouts with seconds;
/// tests and labs use it to see deadlines expire quickly.
pub const NODE_TIMEOUT_SETTING: &str = "maasd_node_timeout_secs";

/// `[workflow]` in the `maasd` configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Run the workers at all (default true).
    pub enabled: bool,
    /// How often the runner looks for due jobs and deadlines, in ms.
    pub tick_ms: u64,
    /// Power jobs in flight at once.
    pub workers: usize,
    /// Seconds between polls of queryable BMCs; 0 turns the power monitor off.
    pub power_poll_secs: u64,
    /// Operation timeout in seconds instead of MAAS's `node_timeout` minutes.
    pub node_timeout_secs: Option<u64>,
    /// Waits between attempts of one power call, ms (MAAS: 1, 2, 2, 4, 6, 8, 12 s).
    pub power_retry_waits_ms: Vec<u64>,
    /// Upper bound on one BMC call, seconds.
    pub power_call_timeout_secs: u64,
    /// Attempts of a power job before the operation fails.
    pub job_attempts: u32,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_ms: 500,
            workers: 16,
            power_poll_secs: 300,
            node_timeout_secs: None,
            power_retry_waits_ms: maas_power::MAAS_RETRY_WAITS
                .iter()
                .map(|s| s * 1000)
                .collect(),
            power_call_timeout_secs: 30,
            job_attempts: 3,
        }
    }
}

impl WorkflowConfig {
    /// Refuses values the runner cannot work with.
    pub fn validate(&self) -> Result<()> {
        if self.tick_ms == 0 || self.tick_ms > 60_000 {
            return Err(Error::Config(
                "workflow.tick_ms must be between 1 and 60000".into(),
            ));
        }
        if self.workers == 0 || self.workers > 4096 {
            return Err(Error::Config(
                "workflow.workers must be between 1 and 4096".into(),
            ));
        }
        if self.power_retry_waits_ms.is_empty() {
            return Err(Error::Config(
                "workflow.power_retry_waits_ms needs at least one entry".into(),
            ));
        }
        if self.job_attempts == 0 || self.power_call_timeout_secs == 0 {
            return Err(Error::Config(
                "workflow.job_attempts and workflow.power_call_timeout_secs must be positive"
                    .into(),
            ));
        }
        if self.node_timeout_secs == Some(0) {
            return Err(Error::Config(
                "workflow.node_timeout_secs must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Stores (or clears) the seconds override of operation timeouts.
pub fn store_node_timeout(conn: &mut DbConn, secs: Option<u64>) -> Result<()> {
    settings::set(
        conn,
        NODE_TIMEOUT_SETTING,
        &secs.map_or(serde_json::Value::Null, serde_json::Value::from),
    )
}

/// The seconds override of operation timeouts, if `maasd serve` set one.
pub fn node_timeout_secs(conn: &mut DbConn) -> Result<Option<u64>> {
    Ok(settings::get(conn, NODE_TIMEOUT_SETTING)?.and_then(|v| v.as_u64()))
}

fn node_timeout_override(conn: &mut DbConn) -> Result<Option<i64>> {
    Ok(settings::get(conn, NODE_TIMEOUT_SETTING)?
        .and_then(|v| v.as_u64())
        .and_then(|s| i64::try_from(s.saturating_mul(1000)).ok()))
}

/// The `operations.kind` name of a workflow.
pub fn kind_name(w: Workflow) -> &'static str {
    match w {
        Workflow::Commission => "commission",
        Workflow::Test => "test",
        Workflow::Deploy => "deploy",
        Workflow::Release => "release",
        Workflow::Erase => "erase",
        Workflow::EnterRescue => "enter-rescue",
        Workflow::ExitRescue => "exit-rescue",
    }
}

/// Before writing `m` (already changed by `out.apply_to`): with a seconds
/// override of the node timeout, moves the deadline `out` set.
pub fn prepare(conn: &mut DbConn, m: &mut Machine, out: &Outcome, now_ms: i64) -> Result<()> {
    if let Some(ms) = node_timeout_override(conn)?
        && out
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetDeadline(_)))
    {
        m.status_expires = Some(Timestamp(now_ms.saturating_add(ms)));
    }
    Ok(())
}

/// Makes `out`'s workflow and power effects durable: call in the same
/// transaction, after the machine's write succeeded (a lost version race
/// must leave no rows behind).
pub fn record(conn: &mut DbConn, m: &Machine, out: &Outcome, now_ms: i64) -> Result<()> {
    let sid = m.system_id.as_str().to_owned();
    let short = node_timeout_override(conn)?;
    for e in &out.effects {
        match e {
            Effect::StartWorkflow { workflow, deadline } => {
                let deadline = match short {
                    // Deploy's overall limit is twice the node timeout, as in MAAS.
                    Some(ms) if *workflow == Workflow::Deploy => now_ms.saturating_add(2 * ms),
                    Some(ms) => now_ms.saturating_add(ms),
                    None => deadline.as_millis(),
                };
                store::start_operation(conn, &sid, kind_name(*workflow), deadline, now_ms)?;
            }
            Effect::EndWorkflow => store::end_operation(conn, &sid)?,
            Effect::AwaitPowerOff => store::set_step(conn, &sid, "await-off", now_ms)?,
            Effect::PowerOn => store::add_job(conn, &sid, "on", now_ms)?,
            Effect::PowerOff(StopMode::Soft) => store::add_job(conn, &sid, "off:soft", now_ms)?,
            Effect::PowerOff(StopMode::Hard) => store::add_job(conn, &sid, "off:hard", now_ms)?,
            Effect::PowerCycle => store::add_job(conn, &sid, "cycle", now_ms)?,
            Effect::QueryPower => store::add_job(conn, &sid, "query", now_ms)?,
            Effect::DeleteMachine => {
                store::forget(conn, &sid)?;
                crate::metadata::results::forget(conn, &sid)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// What [`apply_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The machine does not exist (any more).
    NoMachine,
    /// The life-cycle refused the event in the machine's state.
    Refused(String),
    /// Nothing changed (a repeated power observation).
    Unchanged,
    /// The machine moved from one status to another (maybe the same).
    Changed {
        /// Status before.
        from: NodeStatus,
        /// Status after.
        to: NodeStatus,
    },
}

/// Applies a system event (a monitor's observation) to a machine in one
/// write transaction: life-cycle decision, machine, event log, workflow
/// rows. Retries on a concurrent write to the same machine.
pub fn apply_event(
    conn: &mut DbConn,
    system_id: &SystemId,
    event: &Event,
    now_ms: i64,
) -> Result<Applied> {
    for _ in 0..20 {
        let r = conn.write_tx(|c| try_apply_event(c, system_id, event, now_ms))?;
        if let Some(a) = r {
            return Ok(a);
        }
    }
    Err(Error::Refused(format!(
        "machine {system_id} kept changing under the workflow runner"
    )))
}

pub(crate) fn try_apply_event(
    conn: &mut DbConn,
    system_id: &SystemId,
    event: &Event,
    now_ms: i64,
) -> Result<Option<Applied>> {
    let Some(mut sm) = machines::get(conn, system_id)? else {
        store::forget(conn, system_id.as_str())?;
        return Ok(Some(Applied::NoMachine));
    };
    let cfg = crate::api::machine_ops::lifecycle_config(conn).map_err(api_error)?;
    let before = sm.record.machine.status;
    let out = match signals::handle(&sm.record.machine, event, Timestamp(now_ms), &cfg) {
        Ok(o) => o,
        Err(r) => return Ok(Some(Applied::Refused(format!("{r:?}")))),
    };
    // A repeated observation (the same power state again) writes nothing:
    // no version bump, no event line.
    let mut probe = sm.record.machine.clone();
    out.apply_to(&mut probe);
    if probe == sm.record.machine && out.effects.iter().all(is_field_effect) {
        return Ok(Some(Applied::Unchanged));
    }
    // The same path the REST API and the metadata API take: field effects
    // (default storage layout, owner data, user data), the deadline
    // override, workflow rows, power jobs and the event line.
    let committed = crate::api::machine_ops::commit_outcome(conn, "", &mut sm, out, now_ms)
        .map_err(api_error)?;
    Ok(committed.map(|_| Applied::Changed {
        from: before,
        to: sm.record.machine.status,
    }))
}

/// The REST layer's error, as this crate's (the runner has no HTTP caller
/// to answer).
pub(crate) fn api_error(e: crate::api::ApiError) -> Error {
    Error::Refused(format!("{} {:?}", e.status, e.body))
}

/// Effects that only change the machine's fields (nothing to record when
/// the fields are unchanged).
fn is_field_effect(e: &Effect) -> bool {
    matches!(e, Effect::SetPowerState(_))
}

/// Writes an event about a machine outside the life-cycle (power results).
pub(crate) fn note(
    conn: &mut DbConn,
    sm: &StoredMachine,
    level: &str,
    type_name: &str,
    description: &str,
    now_ms: i64,
) -> Result<()> {
    let m = &sm.record.machine;
    events::add(
        conn,
        &events::NewEvent {
            system_id: m.system_id.as_str(),
            hostname: &m.hostname,
            username: "",
            level,
            type_name,
            description,
        },
        now_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_maas_and_bad_values_are_refused() {
        let c = WorkflowConfig::default();
        assert_eq!(c.power_retry_waits_ms[0], 1000);
        assert_eq!(c.power_retry_waits_ms.len(), 7);
        c.validate().unwrap();
        for bad in [
            WorkflowConfig {
                tick_ms: 0,
                ..WorkflowConfig::default()
            },
            WorkflowConfig {
                workers: 0,
                ..WorkflowConfig::default()
            },
            WorkflowConfig {
                power_retry_waits_ms: vec![],
                ..WorkflowConfig::default()
            },
            WorkflowConfig {
                node_timeout_secs: Some(0),
                ..WorkflowConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kind_names_are_distinct() {
        let all = [
            Workflow::Commission,
            Workflow::Test,
            Workflow::Deploy,
            Workflow::Release,
            Workflow::Erase,
            Workflow::EnterRescue,
            Workflow::ExitRescue,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|w| kind_name(*w)).collect();
        assert_eq!(names.len(), all.len());
    }
}
