//! The runner: one tokio task that, every tick, fails machines past their
//! deadline, queues BMC polls and hands due power jobs to at most
//! `workers` concurrent executions through `maas_power::PowerManager`.
//! Everything it knows is in the database, so a restart picks up where a
//! killed process stopped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maas_core::signals::Event;
use maas_core::{NodeStatus, PowerState, SystemId};
use maas_power::{OffMode, PolicyConfig, PowerAction, PowerManager, PowerParams, PowerTarget};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{WorkflowConfig, apply_event, note, store};
use crate::AppState;
use crate::db::{DbConn, machines};
use crate::error::{Error, Result};

/// Statuses the status monitor watches (MAAS's monitored statuses).
const MONITORED: [NodeStatus; 7] = [
    NodeStatus::Commissioning,
    NodeStatus::Deploying,
    NodeStatus::DiskErasing,
    NodeStatus::EnteringRescueMode,
    NodeStatus::Testing,
    NodeStatus::Releasing,
    NodeStatus::ExitingRescueMode,
];

/// The workflow runner (see the module docs).
#[derive(Debug)]
pub struct Runner {
    state: Arc<AppState>,
    power: PowerManager,
    cfg: WorkflowConfig,
    permits: Arc<Semaphore>,
    /// Machines with a job executing now: one job per machine at a time,
    /// in queue order.
    inflight: Mutex<HashSet<String>>,
    last_poll: Mutex<Option<i64>>,
}

/// Builds the runner, recovers what a previous process left and starts
/// the loop; it stops when `shutdown` is cancelled.
pub fn spawn(
    state: Arc<AppState>,
    cfg: WorkflowConfig,
    shutdown: CancellationToken,
) -> Result<(Arc<Runner>, JoinHandle<()>)> {
    let runner = Arc::new(Runner::new(state, cfg)?);
    runner.recover()?;
    let r = runner.clone();
    let handle = tokio::spawn(async move { r.run(shutdown).await });
    Ok((runner, handle))
}

impl Runner {
    /// A runner over `state` with the built-in power drivers.
    pub fn new(state: Arc<AppState>, cfg: WorkflowConfig) -> Result<Runner> {
        cfg.validate()?;
        let registry = maas_power::Registry::with_builtin()
            .map_err(|e| Error::Config(format!("power drivers: {e}")))?;
        let policy = PolicyConfig {
            retry_waits: cfg
                .power_retry_waits_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            call_timeout: Duration::from_secs(cfg.power_call_timeout_secs),
            per_bmc_limit: 1,
            overall_limit: cfg.workers,
        };
        Ok(Runner {
            power: PowerManager::new(registry, policy),
            permits: Arc::new(Semaphore::new(cfg.workers)),
            cfg,
            state,
            inflight: Mutex::new(HashSet::new()),
            last_poll: Mutex::new(None),
        })
    }

    fn now_ms(&self) -> i64 {
        self.state.clock.now().as_millis()
    }

    /// After a (possibly violent) stop: drops operations whose machine is
    /// gone or no longer in a monitored status, gives every machine in a
    /// monitored status a deadline (so it resumes or times out) and counts
    /// the resumption. Queued jobs simply run again.
    pub fn recover(&self) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.state.pool.get()?;
        let (resumed, dropped, jobs) = conn.write_tx(|c| recover_tx(c, now))?;
        tracing::info!(resumed, dropped, jobs, "workflow state recovered");
        Ok(())
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.clone().step().await {
                tracing::warn!(error = %e, "workflow step failed");
            }
        }
    }

    /// One pass: deadlines, power polls, then due jobs (started, not awaited).
    pub async fn step(self: Arc<Self>) -> Result<()> {
        let now = self.now_ms();
        self.expire(now).await?;
        self.poll_power(now).await?;
        self.start_jobs(now).await.map(drop)
    }

    /// One pass that also waits for the jobs it started (tests, tools);
    /// returns how many ran.
    pub async fn step_and_wait(self: Arc<Self>) -> Result<usize> {
        let now = self.now_ms();
        self.expire(now).await?;
        self.poll_power(now).await?;
        let handles = self.start_jobs(now).await?;
        let n = handles.len();
        for h in handles {
            h.await.map_err(|e| Error::Task(e.to_string()))?;
        }
        Ok(n)
    }

    async fn expire(&self, now: i64) -> Result<()> {
        let expired = self
            .state
            .pool
            .run(move |c| {
                let mut out = Vec::new();
                for sid in store::machines_in(c, &MONITORED)? {
                    let Ok(id) = sid.parse::<SystemId>() else {
                        continue;
                    };
                    if let Some(sm) = machines::get(c, &id)?
                        && maas_core::deadline::is_expired(
                            &sm.record.machine,
                            maas_core::Timestamp(now),
                        )
                    {
                        out.push(id);
                    }
                }
                Ok(out)
            })
            .await?;
        for id in expired {
            let r = self
                .state
                .pool
                .run(move |c| apply_event(c, &id, &Event::DeadlineExpired, now).map(|a| (id, a)))
                .await?;
            tracing::info!(system_id = %r.0, outcome = ?r.1, "deadline expired");
        }
        Ok(())
    }

    async fn poll_power(&self, now: i64) -> Result<()> {
        if self.cfg.power_poll_secs == 0 {
            return Ok(());
        }
        let every =
            i64::try_from(self.cfg.power_poll_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        {
            let mut last = self
                .last_poll
                .lock()
                .map_err(|_| Error::Task("workflow poll lock poisoned".into()))?;
            if last.is_some_and(|t| now < t.saturating_add(every)) {
                return Ok(());
            }
            *last = Some(now);
        }
        let queued = self
            .state
            .pool
            .run(move |c| {
                c.write_tx(|c| {
                    let mut n = 0usize;
                    for sm in machines::list(c)? {
                        let m = &sm.record.machine;
                        if m.power_queryable()
                            && store::jobs_of(c, m.system_id.as_str())?.is_empty()
                        {
                            store::add_job(c, m.system_id.as_str(), "query", now)?;
                            n += 1;
                        }
                    }
                    Ok::<_, Error>(n)
                })
            })
            .await?;
        tracing::debug!(queued, "power poll queued");
        Ok(())
    }

    async fn start_jobs(self: Arc<Self>, now: i64) -> Result<Vec<JoinHandle<()>>> {
        let limit = i64::try_from(self.cfg.workers.saturating_mul(8)).unwrap_or(i64::MAX);
        let due = self
            .state
            .pool
            .run(move |c| store::due_jobs(c, now, limit))
            .await?;
        let mut seen = HashSet::new();
        let mut started = Vec::new();
        for job in due {
            // Only the first queued job of a machine may run.
            if !seen.insert(job.system_id.clone()) {
                continue;
            }
            {
                let mut busy = self
                    .inflight
                    .lock()
                    .map_err(|_| Error::Task("workflow lock poisoned".into()))?;
                if busy.contains(&job.system_id) {
                    continue;
                }
                let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                    break;
                };
                busy.insert(job.system_id.clone());
                let this = self.clone();
                started.push(tokio::spawn(async move {
                    let _permit = permit;
                    let sid = job.system_id.clone();
                    if let Err(e) = this.execute(job).await {
                        tracing::warn!(system_id = %sid, error = %e, "power job failed");
                    }
                    if let Ok(mut busy) = this.inflight.lock() {
                        busy.remove(&sid);
                    }
                }));
            }
        }
        Ok(started)
    }

    /// Runs one power job and records what came of it.
    async fn execute(&self, job: store::Job) -> Result<()> {
        let Ok(id) = job.system_id.parse::<SystemId>() else {
            let jid = job.id;
            self.state
                .pool
                .run(move |c| store::delete_job(c, jid).map(|_| ()))
                .await?;
            return Ok(());
        };
        let lookup = id.clone();
        let Some(sm) = self
            .state
            .pool
            .run(move |c| machines::get(c, &lookup))
            .await?
        else {
            let sid = job.system_id.clone();
            self.state.pool.run(move |c| store::forget(c, &sid)).await?;
            return Ok(());
        };
        let m = &sm.record.machine;
        let power_type = if m.power_type.is_empty() {
            "manual".to_owned()
        } else {
            m.power_type.clone()
        };
        let mut params = PowerParams::new();
        for (k, v) in &sm.record.extra.power_parameters {
            match v {
                serde_json::Value::String(s) => params.insert(k.clone(), s.clone()),
                serde_json::Value::Null => {}
                other => params.insert(k.clone(), other.to_string()),
            }
        }
        let target = PowerTarget::new(params).with_system_id(m.system_id.clone());
        let netboot = m.netboot;
        let action = match job.action.as_str() {
            "on" => PowerAction::On,
            "off:soft" => PowerAction::Off(OffMode::Soft),
            "off:hard" => PowerAction::Off(OffMode::Hard),
            "cycle" => PowerAction::Cycle,
            "query" => PowerAction::Query,
            other => {
                let (jid, what) = (job.id, format!("Unknown power job '{other}' dropped"));
                let now = self.now_ms();
                self.state
                    .pool
                    .run(move |c| {
                        c.write_tx(|c| {
                            store::delete_job(c, jid)?;
                            note(c, &sm, "ERROR", "Power error", &what, now)
                        })
                    })
                    .await?;
                return Ok(());
            }
        };
        // A machine that must netboot gets a one-time PXE boot first where
        // the driver can set it; a failure there is logged, not fatal (the
        // BMC may still boot from the network by its own order).
        if matches!(action, PowerAction::On | PowerAction::Cycle)
            && netboot
            && self
                .power
                .registry()
                .get(&power_type)
                .is_ok_and(|d| d.capabilities().can_set_boot_order)
            && let Err(e) = self
                .power
                .perform(&power_type, &target, PowerAction::SetBootPxe)
                .await
        {
            tracing::warn!(system_id = %id, error = %e, "one-time PXE boot not set");
        }
        let result = self.power.perform(&power_type, &target, action).await;
        let now = self.now_ms();
        let attempts = self.cfg.job_attempts;
        let backoff = i64::try_from(self.cfg.tick_ms).unwrap_or(500) * 4;
        let result = result.map_err(|e| e.to_string());
        self.state
            .pool
            .run(move |c| finish_job(c, &job, &id, action, result, attempts, backoff, now))
            .await
    }

    /// The power manager (its registry tells what drivers exist).
    pub fn power(&self) -> &PowerManager {
        &self.power
    }
}

fn recover_tx(c: &mut DbConn, now: i64) -> Result<(usize, usize, i64)> {
    let mut dropped = 0;
    for op in store::all_operations(c)? {
        let keep = match op.system_id.parse::<SystemId>() {
            Ok(id) => machines::get(c, &id)?
                .is_some_and(|sm| MONITORED.contains(&sm.record.machine.status)),
            Err(_) => false,
        };
        if !keep {
            store::end_operation(c, &op.system_id)?;
            dropped += 1;
        }
    }
    let cfg = crate::api::machine_ops::lifecycle_config(c)
        .map_err(|e| Error::Refused(format!("reading the life-cycle settings: {e:?}")))?;
    for sid in store::machines_in(c, &MONITORED)? {
        let Ok(id) = sid.parse::<SystemId>() else {
            continue;
        };
        if let Some(mut sm) = machines::get(c, &id)?
            && sm.record.machine.status_expires.is_none()
        {
            // A monitored status without a deadline would never resume nor
            // time out: give it one from now.
            let st = sm.record.machine.status;
            sm.record.machine.status_expires = cfg.deadline_for(st, maas_core::Timestamp(now));
            machines::update(c, &sm, now)?;
        }
    }
    let resumed = store::bump_attempts(c, now)?;
    Ok((resumed, dropped, store::job_count(c)?))
}

fn action_label(a: PowerAction) -> &'static str {
    match a {
        PowerAction::On => "Power on",
        PowerAction::Off(_) => "Power off",
        PowerAction::Cycle => "Power cycle",
        PowerAction::Query => "Query power state",
        PowerAction::SetBootPxe => "Set boot device",
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_job(
    c: &mut DbConn,
    job: &store::Job,
    id: &SystemId,
    action: PowerAction,
    result: std::result::Result<PowerState, String>,
    attempts: u32,
    backoff_ms: i64,
    now: i64,
) -> Result<()> {
    match result {
        Ok(state) => {
            // One transaction: the observation (which may finish a release or
            // a rescue exit), the event and the job's removal.
            for _ in 0..20 {
                let done = c.write_tx(|c| {
                    let Some(sm) = machines::get(c, id)? else {
                        store::forget(c, id.as_str())?;
                        return Ok::<_, Error>(true);
                    };
                    let was = sm.record.machine.power_state;
                    if state != PowerState::Unknown {
                        match super::try_apply_event(c, id, &Event::PowerObserved { state }, now)? {
                            // A concurrent write won; nothing written yet: retry.
                            None => return Ok(false),
                            Some(a) => {
                                tracing::debug!(system_id = %id, outcome = ?a, "power observed")
                            }
                        }
                    }
                    store::delete_job(c, job.id)?;
                    if !matches!(action, PowerAction::Query) {
                        note(
                            c,
                            &sm,
                            "INFO",
                            action_label(action),
                            &format!(
                                "{} succeeded; power state {}",
                                action_label(action),
                                state.as_str()
                            ),
                            now,
                        )?;
                        let step = match action {
                            PowerAction::Off(_) => "await-off",
                            _ => "netboot",
                        };
                        store::set_step(c, id.as_str(), step, now)?;
                    } else if state != was && state != PowerState::Unknown {
                        note(
                            c,
                            &sm,
                            "INFO",
                            "Power state changed",
                            &format!("Power state {} -> {}", was.as_str(), state.as_str()),
                            now,
                        )?;
                    }
                    Ok(true)
                })?;
                if done {
                    return Ok(());
                }
            }
            Err(Error::Refused(format!(
                "machine {id} kept changing while recording a power result"
            )))
        }
        Err(err) => {
            let attempt = job.attempt.saturating_add(1);
            if u32::try_from(attempt).unwrap_or(u32::MAX) < attempts {
                c.write_tx(|c| {
                    store::retry_job(c, job.id, attempt, now.saturating_add(backoff_ms), &err)?;
                    store::note_error(c, id.as_str(), &err, now)
                })?;
                return Ok(());
            }
            let failing = c.write_tx(|c| {
                store::delete_job(c, job.id)?;
                let Some(sm) = machines::get(c, id)? else {
                    return Ok::<_, Error>(false);
                };
                let what = format!("{} failed: {err}", action_label(action));
                note(c, &sm, "ERROR", "Power error", &what, now)?;
                store::note_error(c, id.as_str(), &what, now)?;
                Ok(store::operation(c, id.as_str())?.is_some()
                    && !matches!(action, PowerAction::Query))
            })?;
            if failing {
                // The operation cannot go on without its power action: fail it
                // now rather than at its deadline (MAAS marks the node failed).
                let why = format!("{} failed: {err}", action_label(action));
                for _ in 0..20 {
                    if c.write_tx(|c| fail_now(c, id, &why, now))? {
                        return Ok(());
                    }
                }
                return Err(Error::Refused(format!(
                    "machine {id} kept changing while failing its operation"
                )));
            }
            Ok(())
        }
    }
}

/// Marks the machine's operation failed with `why`, as the status monitor
/// would at the deadline, through the same commit path as every other
/// transition. `Ok(false)` when a concurrent write won (retry).
fn fail_now(c: &mut DbConn, id: &SystemId, why: &str, now: i64) -> Result<bool> {
    let Some(mut sm) = machines::get(c, id)? else {
        return Ok(true);
    };
    let Ok(out) = maas_core::signals::mark_failed(&sm.record.machine, why) else {
        return Ok(true);
    };
    if out.status == sm.record.machine.status {
        // NEW or already failed: nothing to record.
        return Ok(true);
    }
    let done = crate::api::machine_ops::commit_outcome(c, "", &mut sm, out, now)
        .map_err(super::api_error)?;
    Ok(done.is_some())
}
