//! What machines and monitors report, as life-cycle transitions.
//!
//! The ephemeral environment signals (`op=signal`, MAAS §3.3), cloud-init
//! and curtin post status-webhook events (§3.4), the installed OS fetches
//! its user-data (→ DEPLOYED), the power monitor observes power states, and
//! the status monitor notices deadlines. [`handle`] turns each into an
//! [`Outcome`] with MAAS's per-status effects, or a 409 [`Refusal`].

use serde::{Deserialize, Serialize};

use crate::actions::{self, Effect, Outcome, Refusal, StopMode, status_after_tests};
use crate::deadline::{LifecycleConfig, is_expired};
use crate::lifecycle::{self, failure_status};
use crate::machine::Machine;
use crate::status::NodeStatus::{self, *};
use crate::status::PowerState;
use crate::time::Timestamp;

/// The `status` field of `op=signal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalStatus {
    /// The step finished.
    Ok,
    /// The step failed.
    Failed,
    /// Still working (heartbeat).
    Working,
    /// A NEW machine starts commissioning.
    Commissioning,
    /// Commissioning is done; tests follow.
    Testing,
    /// A script timed out.
    Timedout,
    /// Installing script dependencies.
    Installing,
    /// Applying network configuration.
    ApplyingNetconf,
    /// Releasing scripts running.
    Releasing,
    /// Deployment scripts running.
    Deploying,
}

impl std::str::FromStr for SignalStatus {
    type Err = Refusal;

    fn from_str(s: &str) -> Result<Self, Refusal> {
        Ok(match s {
            "OK" => Self::Ok,
            "FAILED" => Self::Failed,
            "WORKING" => Self::Working,
            "COMMISSIONING" => Self::Commissioning,
            "TESTING" => Self::Testing,
            "TIMEDOUT" => Self::Timedout,
            "INSTALLING" => Self::Installing,
            "APPLYING_NETCONF" => Self::ApplyingNetconf,
            "RELEASING" => Self::Releasing,
            "DEPLOYING" => Self::Deploying,
            _ => {
                return Err(Refusal::BadRequest {
                    field: "status".into(),
                    message: format!("Unknown status: '{s}'."),
                });
            }
        })
    }
}

/// Result of a webhook `finish` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventResult {
    /// Finished successfully.
    Success,
    /// Finished with a warning (treated as success).
    Warn,
    /// Failed (`FAIL` or `FAILURE` on the wire).
    Fail,
}

/// Something a machine or a monitor reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `POST …/?op=signal`.
    Signal {
        /// The reported status.
        status: SignalStatus,
        /// `error` text, if any.
        error: Option<String>,
        /// Whether any uploaded script result failed (forces failure).
        #[serde(default)]
        script_failed: bool,
    },
    /// A top-level (`name` without `/`) webhook `finish` event, such as
    /// `modules-final` from cloud-init or `cmd-install` from curtin.
    Finish {
        /// Event name.
        name: String,
        /// Its result.
        result: EventResult,
        /// Its description.
        #[serde(default)]
        description: String,
    },
    /// A curtin stage event (`cmd-install/stage-early` …) or other sign of
    /// progress that resets the deadline.
    Progress {
        /// Event name.
        name: String,
    },
    /// The installed OS's cloud-init fetched its user-data with the node token.
    UserDataFetched,
    /// The power monitor saw this power state.
    PowerObserved {
        /// What the BMC reported.
        state: PowerState,
    },
    /// The status monitor found the deadline passed.
    DeadlineExpired,
}

/// Statuses in which `op=signal` is accepted (others get 409).
pub const SIGNALABLE: [NodeStatus; 16] = [
    Broken,
    Commissioning,
    FailedCommissioning,
    Deploying,
    FailedDeployment,
    Ready,
    DiskErasing,
    Releasing,
    EnteringRescueMode,
    RescueMode,
    FailedEnteringRescueMode,
    Testing,
    FailedTesting,
    New,
    Deployed,
    FailedDiskErasing,
];

fn stay(m: &Machine, what: &str) -> Outcome {
    Outcome {
        status: m.status,
        via: vec![],
        effects: vec![],
        event: what.into(),
    }
}

fn to(status: NodeStatus, event: impl Into<String>, effects: Vec<Effect>) -> Outcome {
    Outcome {
        status,
        via: vec![],
        effects,
        event: event.into(),
    }
}

/// Marks the machine failed as MAAS's `mark_failed`: the failure status of
/// the operation in progress; a silent no-op on NEW or an already failed
/// machine; 409 otherwise.
pub fn mark_failed(m: &Machine, description: &str) -> Result<Outcome, Refusal> {
    match failure_status(m.status) {
        Some(f) => Ok(to(
            f,
            format!("Marked failed: {description}"),
            vec![
                Effect::SetErrorDescription(description.to_owned()),
                Effect::AbortScripts,
                Effect::ClearDeadline,
                Effect::EndWorkflow,
            ],
        )),
        None if m.status == New || m.status.is_failed() => Ok(stay(m, "Already failed")),
        None => Err(Refusal::Conflict(format!(
            "The status of the machine is {}; this status cannot be transitioned to a corresponding failed status.",
            m.status.label()
        ))),
    }
}

/// Turns a report into a transition.
pub fn handle(
    m: &Machine,
    event: &Event,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    let out = decide(m, event, now, cfg)?;
    for (from, to) in out.hops(m.status) {
        lifecycle::check_transition(from, to)?;
    }
    Ok(out)
}

fn decide(
    m: &Machine,
    event: &Event,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    match event {
        Event::Signal {
            status,
            error,
            script_failed,
        } => signal(m, *status, error.as_deref(), *script_failed, now, cfg),
        Event::Finish {
            name,
            result,
            description,
        } => {
            let failed = *result == EventResult::Fail;
            let why = if description.is_empty() {
                name.clone()
            } else {
                format!("{name}: {description}")
            };
            match m.status {
                Commissioning | Deploying | Testing | EnteringRescueMode if failed => {
                    mark_failed(m, &why)
                }
                Deploying if name == "modules-final" => Ok(stay(m, "Installer finished")
                    .with_effects(vec![Effect::WorkflowSignal("netboot-finished".into())])),
                DiskErasing | Releasing if name == "modules-final" => {
                    if failed {
                        mark_failed(m, &why)
                    } else {
                        let (st, eff) = actions::finish_release(m);
                        let mut out = to(st, "Released", eff);
                        if m.status == DiskErasing {
                            // DISK_ERASING → NEW is not in the table: go through RELEASING.
                            out.via.push(Releasing);
                        }
                        Ok(out)
                    }
                }
                DiskErasing | Releasing if failed => mark_failed(m, &why),
                _ => Ok(stay(m, &format!("Event {name}"))),
            }
        }
        Event::Progress { name } => match m.status {
            Deploying | Commissioning | Testing | DiskErasing => {
                Ok(stay(m, &format!("Progress: {name}")).with_effects(
                    cfg.deadline_for(m.status, now)
                        .map(Effect::SetDeadline)
                        .into_iter()
                        .collect(),
                ))
            }
            _ => Ok(stay(m, &format!("Progress: {name}"))),
        },
        Event::UserDataFetched => {
            if m.status == Deploying {
                Ok(to(
                    Deployed,
                    "Deployed",
                    vec![
                        Effect::ClearDeadline,
                        Effect::EndWorkflow,
                        Effect::SetNetboot(false),
                    ],
                ))
            } else {
                Ok(stay(m, "User data fetched"))
            }
        }
        Event::PowerObserved { state: p } => {
            let mut eff = vec![Effect::SetPowerState(*p)];
            match (m.status, p) {
                (Releasing, PowerState::Off) => {
                    let (st, fin) = actions::finish_release(m);
                    eff.extend(fin);
                    Ok(to(st, "Released", eff))
                }
                (ExitingRescueMode, PowerState::Off) if m.previous_status != Deployed => {
                    eff.extend(actions::exit_rescue_finish(m));
                    Ok(to(
                        actions::rescue_return_status(m.previous_status),
                        "Exited rescue mode",
                        eff,
                    ))
                }
                (ExitingRescueMode, PowerState::On) if m.previous_status == Deployed => {
                    eff.extend(actions::exit_rescue_finish(m));
                    Ok(to(Deployed, "Exited rescue mode", eff))
                }
                _ => Ok(stay(m, "Power state recorded").with_effects(eff)),
            }
        }
        Event::DeadlineExpired => {
            if !is_expired(m, now) {
                return Ok(stay(m, "Deadline not reached"));
            }
            let secs = cfg
                .status_timeout(m.status)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            // MAAS's text counts whole minutes; a timeout shortened below
            // that (maasd's seconds override, used by tests) says seconds.
            let after = match secs {
                s if s % 60 == 0 => format!("{} minutes", s / 60),
                s => format!("{s} seconds"),
            };
            let why = match m.status {
                Deploying => "time-out during deployment".to_owned(),
                s => format!("Machine operation '{}' timed out after {after}.", s.label()),
            };
            let mut out = mark_failed(m, &why)?;
            if out.status != m.status {
                out.effects.push(Effect::PowerOff(StopMode::Hard));
            }
            Ok(out)
        }
    }
}

fn signal(
    m: &Machine,
    status: SignalStatus,
    error: Option<&str>,
    script_failed: bool,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    use SignalStatus as S;
    if !SIGNALABLE.contains(&m.status) {
        return Err(Refusal::Conflict(format!(
            "Machine wasn't commissioning, testing, deploying, erasing or entering rescue mode (status is {}).",
            m.status.label()
        )));
    }
    let failed = matches!(status, S::Failed | S::Timedout) || (status == S::Ok && script_failed);
    let why = error.unwrap_or("").to_owned();
    match m.status {
        New if status == S::Commissioning => Ok(to(
            Commissioning,
            "Commissioning started by the machine",
            cfg.deadline_for(Commissioning, now)
                .map(Effect::SetDeadline)
                .into_iter()
                .collect(),
        )),
        Commissioning if failed => mark_failed(
            m,
            if why.is_empty() {
                "Commissioning failed"
            } else {
                &why
            },
        ),
        Commissioning if status == S::Ok => {
            let st = if m.enlisting { New } else { Ready };
            Ok(to(
                st,
                "Commissioned",
                vec![
                    Effect::SetCommissioned(true),
                    Effect::ApplyDefaultStorageLayout,
                    Effect::ClearDeadline,
                    Effect::EndWorkflow,
                ],
            ))
        }
        Commissioning if status == S::Testing => Ok(to(
            Testing,
            "Commissioned; testing",
            vec![
                Effect::SetCommissioned(true),
                Effect::ApplyDefaultStorageLayout,
                Effect::SetPreviousStatus(Commissioning),
            ]
            .into_iter()
            .chain(cfg.deadline_for(Testing, now).map(Effect::SetDeadline))
            .collect(),
        )),
        Testing if failed => mark_failed(
            m,
            if why.is_empty() {
                "Testing failed"
            } else {
                &why
            },
        ),
        Testing if status == S::Ok => {
            // An enlisting machine goes back to NEW to await acceptance.
            let st = if m.enlisting && m.previous_status == Commissioning {
                New
            } else {
                status_after_tests(m.previous_status)
            };
            let mut eff = vec![Effect::ClearDeadline, Effect::EndWorkflow];
            if matches!(st, Ready | New) {
                // A machine back in the pool has no owner, or nobody could allocate it.
                eff.push(Effect::ClearOwner);
            }
            Ok(to(st, "Tests passed", eff))
        }
        Deploying | DiskErasing | Releasing if failed => {
            mark_failed(m, if why.is_empty() { "Failed" } else { &why })
        }
        EnteringRescueMode if failed => mark_failed(
            m,
            if why.is_empty() {
                "Failed to enter rescue mode"
            } else {
                &why
            },
        ),
        EnteringRescueMode if matches!(status, S::Ok | S::Working) => Ok(to(
            RescueMode,
            "Entered rescue mode",
            vec![Effect::ClearDeadline, Effect::EndWorkflow],
        )),
        // Heartbeats and signals in other signalable states change nothing
        // (MAAS answers 200).
        _ => Ok(stay(m, "Signal recorded")),
    }
}

trait WithEffects {
    fn with_effects(self, e: Vec<Effect>) -> Self;
}

impl WithEffects for Outcome {
    fn with_effects(mut self, e: Vec<Effect>) -> Self {
        self.effects.extend(e);
        self
    }
}
