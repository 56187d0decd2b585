//! User actions on a machine, with MAAS's status and permission rules.
//!
//! [`apply`] takes a machine, the acting user, the action with its
//! parameters, the current time and the life-cycle settings, and returns
//! either a [`Refusal`] (the HTTP status MAAS would answer with and a
//! message) or an [`Outcome`]: the new status, the statuses passed through on
//! the way, and the [`Effect`]s the caller must carry out. Field effects
//! (owner, lock, netboot, deadline, …) are applied with
//! [`Outcome::apply_to`]; I/O effects (power, scripts, workflows) are the
//! caller's job. Nothing here does I/O or reads the clock.
//!
//! Every status change an outcome describes is allowed by
//! [`crate::lifecycle`]; the property tests check that for random action
//! sequences from every status.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::deadline::LifecycleConfig;
use crate::lifecycle::{self, InvalidTransition};
use crate::machine::Machine;
use crate::status::NodeStatus::{self, *};
use crate::status::PowerState;
use crate::time::Timestamp;

/// Who is acting.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// Username.
    pub username: String,
    /// Whether the user is a MAAS administrator.
    pub is_admin: bool,
}

impl Actor {
    /// An administrator.
    pub fn admin(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            is_admin: true,
        }
    }

    /// A non-administrator.
    pub fn user(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            is_admin: false,
        }
    }

    fn owns(&self, m: &Machine) -> bool {
        m.owner.as_deref() == Some(self.username.as_str())
    }
}

/// `soft` (ACPI) or `hard` power off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// Ask the OS to shut down.
    Soft,
    /// Cut the power.
    #[default]
    Hard,
}

/// Parameters of `op=commission`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CommissionParams {
    /// Leave SSH enabled in the ephemeral environment (no self power-off).
    pub enable_ssh: bool,
    /// Do not configure the BMC.
    pub skip_bmc_config: bool,
    /// Keep the current network configuration.
    pub skip_networking: bool,
    /// Keep the current storage configuration.
    pub skip_storage: bool,
    /// Extra commissioning scripts (names).
    pub commissioning_scripts: Vec<String>,
    /// Testing scripts to run afterwards (`["none"]` disables testing).
    pub testing_scripts: Vec<String>,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=test`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TestParams {
    /// Leave SSH enabled.
    pub enable_ssh: bool,
    /// Testing scripts (names); empty = the default set.
    pub testing_scripts: Vec<String>,
    /// Whether any selected script is destructive (refused on deployed machines).
    pub destructive: bool,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=allocate` once a machine has been chosen.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocateParams {
    /// Agent name (Juju sets it).
    pub agent_name: String,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=deploy`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeployParams {
    /// `ubuntu/jammy`, `jammy`, `ubuntu/22.04` or `22.04`; empty = the default.
    pub distro_series: String,
    /// HWE kernel, such as `hwe-22.04`.
    pub hwe_kernel: Option<String>,
    /// User data (already base64-decoded).
    pub user_data: Option<Vec<u8>>,
    /// Deploy to memory.
    pub ephemeral_deploy: bool,
    /// Removed in MAAS: `true` is refused with 400.
    pub install_kvm: bool,
    /// Removed in MAAS: `true` is refused with 400.
    pub install_rackd: bool,
    /// Removed in MAAS: `true` is refused with 400.
    pub register_vmhost: bool,
    /// Enable hardware sync.
    pub enable_hw_sync: bool,
    /// Agent name when the deploy auto-allocates.
    pub agent_name: String,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=release`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseParams {
    /// Erase disks.
    pub erase: bool,
    /// Use secure erase where the disk supports it.
    pub secure_erase: bool,
    /// Wipe only the start and end of each disk.
    pub quick_erase: bool,
    /// Release even when the power state cannot be confirmed.
    pub force: bool,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=power_on`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PowerOnParams {
    /// User data for a deployment started by this power-on.
    pub user_data: Option<Vec<u8>>,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// Parameters of `op=power_off`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PowerOffParams {
    /// Soft or hard.
    pub stop_mode: StopMode,
    /// Event-log comment.
    pub comment: Option<String>,
}

/// A user action on one machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `op=commission` (admin).
    Commission(CommissionParams),
    /// `op=test` (admin).
    Test(TestParams),
    /// `op=allocate` of this machine.
    Allocate(AllocateParams),
    /// `op=deploy`.
    Deploy(DeployParams),
    /// `op=release`.
    Release(ReleaseParams),
    /// `op=abort`.
    Abort {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=mark_broken`.
    MarkBroken {
        /// Becomes the error description.
        comment: Option<String>,
    },
    /// `op=mark_fixed` (admin).
    MarkFixed {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=rescue_mode` (admin).
    RescueMode {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=exit_rescue_mode` (admin).
    ExitRescueMode {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=lock`.
    Lock {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=unlock`.
    Unlock {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=power_on`.
    PowerOn(PowerOnParams),
    /// `op=power_off`.
    PowerOff(PowerOffParams),
    /// `op=query_power_state`.
    QueryPower,
    /// `op=override_failed_testing` (admin).
    OverrideFailedTesting {
        /// Event-log comment.
        comment: Option<String>,
    },
    /// `op=accept` / `op=accept_all` for this machine (admin).
    Accept,
    /// PUT on the machine, and the other admin edits (storage layout,
    /// interfaces, power parameters).
    Update,
    /// DELETE the machine (admin).
    Delete,
    /// `op=set_storage_layout` (admin, Ready only).
    SetStorageLayout,
    /// `op=set_owner_data` (owner or admin).
    SetOwnerData,
}

impl Action {
    /// The API `op` name (`read`-style CRUD names for update/delete).
    pub fn op(&self) -> &'static str {
        match self {
            Action::Commission(_) => "commission",
            Action::Test(_) => "test",
            Action::Allocate(_) => "allocate",
            Action::Deploy(_) => "deploy",
            Action::Release(_) => "release",
            Action::Abort { .. } => "abort",
            Action::MarkBroken { .. } => "mark_broken",
            Action::MarkFixed { .. } => "mark_fixed",
            Action::RescueMode { .. } => "rescue_mode",
            Action::ExitRescueMode { .. } => "exit_rescue_mode",
            Action::Lock { .. } => "lock",
            Action::Unlock { .. } => "unlock",
            Action::PowerOn(_) => "power_on",
            Action::PowerOff(_) => "power_off",
            Action::QueryPower => "query_power_state",
            Action::OverrideFailedTesting { .. } => "override_failed_testing",
            Action::Accept => "accept",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::SetStorageLayout => "set_storage_layout",
            Action::SetOwnerData => "set_owner_data",
        }
    }

    fn comment(&self) -> Option<&str> {
        match self {
            Action::Commission(p) => p.comment.as_deref(),
            Action::Test(p) => p.comment.as_deref(),
            Action::Allocate(p) => p.comment.as_deref(),
            Action::Deploy(p) => p.comment.as_deref(),
            Action::Release(p) => p.comment.as_deref(),
            Action::PowerOn(p) => p.comment.as_deref(),
            Action::PowerOff(p) => p.comment.as_deref(),
            Action::Abort { comment }
            | Action::MarkBroken { comment }
            | Action::MarkFixed { comment }
            | Action::RescueMode { comment }
            | Action::ExitRescueMode { comment }
            | Action::Lock { comment }
            | Action::Unlock { comment }
            | Action::OverrideFailedTesting { comment } => comment.as_deref(),
            Action::QueryPower
            | Action::Accept
            | Action::Update
            | Action::Delete
            | Action::SetStorageLayout
            | Action::SetOwnerData => None,
        }
    }

    /// The permission MAAS checks before the action.
    pub fn permission(&self) -> Permission {
        match self {
            Action::QueryPower => Permission::View,
            Action::Allocate(_) => Permission::Allocate,
            Action::Deploy(_) => Permission::Deploy,
            Action::Lock { .. } | Action::Unlock { .. } => Permission::Lock,
            Action::Release(_)
            | Action::Abort { .. }
            | Action::MarkBroken { .. }
            | Action::PowerOn(_)
            | Action::PowerOff(_)
            | Action::SetOwnerData => Permission::Edit,
            Action::Commission(_)
            | Action::Test(_)
            | Action::MarkFixed { .. }
            | Action::RescueMode { .. }
            | Action::ExitRescueMode { .. }
            | Action::OverrideFailedTesting { .. }
            | Action::Accept
            | Action::Update
            | Action::Delete
            | Action::SetStorageLayout => Permission::Admin,
        }
    }
}

/// The permission levels of MAAS's (non-RBAC) authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Anyone authenticated may look.
    View,
    /// Anyone may allocate an unowned Ready machine.
    Allocate,
    /// As [`Permission::Edit`] (MAAS checks edit; a Ready machine nobody
    /// owns is allocated to the caller on the way).
    Deploy,
    /// Owner, admin, or anyone when nobody owns the machine; not refused by
    /// the lock itself.
    Lock,
    /// Owner, admin, or anyone when nobody owns the machine (MAAS's
    /// `_can_edit`), and the machine must not be locked. `mark_broken`
    /// additionally wants the owner.
    Edit,
    /// Admin only, and the machine must not be locked.
    Admin,
}

/// Why an action was refused, with the HTTP status MAAS answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// 400: a parameter is wrong.
    #[error("{field}: {message}")]
    BadRequest {
        /// The parameter.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 403: the actor may not do this (or the machine is locked).
    #[error("{0}")]
    Forbidden(String),
    /// 409: the machine's status does not allow it.
    #[error("{0}")]
    Conflict(String),
}

impl Refusal {
    /// The HTTP status MAAS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::BadRequest { .. } => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::Conflict(_) => 409,
        }
    }

    fn bad(field: &str, message: impl Into<String>) -> Self {
        Refusal::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<InvalidTransition> for Refusal {
    fn from(e: InvalidTransition) -> Self {
        Refusal::Conflict(e.to_string())
    }
}

/// What the ephemeral environment runs for a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseMode {
    /// Overwrite every disk.
    Full,
    /// Secure erase where supported, else full.
    Secure,
    /// Wipe the first and last megabytes.
    Quick,
    /// Secure erase where supported, else quick.
    SecureThenQuick,
}

/// Which set of scripts the ephemeral environment runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scripts {
    /// Commissioning (built-in plus the named ones), then testing.
    Commissioning {
        /// Extra commissioning scripts.
        commissioning: Vec<String>,
        /// Testing scripts that follow.
        testing: Vec<String>,
        /// Keep the storage model (no default layout afterwards).
        skip_storage: bool,
        /// Keep the network model.
        skip_networking: bool,
        /// Do not configure the BMC.
        skip_bmc_config: bool,
        /// Keep SSH on.
        enable_ssh: bool,
    },
    /// Testing.
    Testing {
        /// Testing scripts.
        testing: Vec<String>,
        /// Keep SSH on.
        enable_ssh: bool,
    },
    /// The `wipe-disks` release script.
    Erase(EraseMode),
}

/// Long-running operations that get a durable workflow row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workflow {
    /// Commissioning (and the tests that follow).
    Commission,
    /// Testing.
    Test,
    /// Deployment.
    Deploy,
    /// Release (power off, wait for off).
    Release,
    /// Disk erasing.
    Erase,
    /// Entering rescue mode.
    EnterRescue,
    /// Exiting rescue mode.
    ExitRescue,
}

/// Something the caller must do (or record) as a result of an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", content = "value", rename_all = "snake_case")]
pub enum Effect {
    /// Set the owner.
    SetOwner(String),
    /// Clear the owner.
    ClearOwner,
    /// Delete the owner's key/value data.
    ClearOwnerData,
    /// Set the agent name.
    SetAgentName(String),
    /// Lock or unlock.
    SetLocked(bool),
    /// Whether the machine netboots.
    SetNetboot(bool),
    /// Remember the status to return to.
    SetPreviousStatus(NodeStatus),
    /// Set (or clear, with "") the error description.
    SetErrorDescription(String),
    /// Record what is being deployed.
    SetDeployTarget {
        /// OS, such as `ubuntu`.
        osystem: String,
        /// Release, such as `noble`.
        distro_series: String,
        /// HWE kernel.
        hwe_kernel: Option<String>,
        /// In-memory deployment.
        ephemeral: bool,
    },
    /// Forget the deployed OS (release, mark fixed to Ready).
    ClearDeployTarget,
    /// Store (or clear) the user data served to the deployed OS.
    SetUserData(Option<Vec<u8>>),
    /// Whether successful commissioning returns the machine to NEW.
    SetEnlisting(bool),
    /// Whether the machine has passed commissioning.
    SetCommissioned(bool),
    /// The current operation fails at this time.
    SetDeadline(Timestamp),
    /// No operation is running.
    ClearDeadline,
    /// Power on through the BMC.
    PowerOn,
    /// Power off through the BMC.
    PowerOff(StopMode),
    /// Power on if off, cycle if on (MAAS's deploy/commission start).
    PowerCycle,
    /// Query the BMC and record the state.
    QueryPower,
    /// Record the power state the BMC reported.
    SetPowerState(PowerState),
    /// Tell the running workflow that a milestone was reached
    /// (`netboot-finished` when the installer's cloud-init finishes).
    WorkflowSignal(String),
    /// Have the ephemeral environment run these scripts.
    RunScripts(Scripts),
    /// Abort pending and running script results.
    AbortScripts,
    /// Apply the default storage layout (after commissioning).
    ApplyDefaultStorageLayout,
    /// Start a durable workflow that fails at `deadline`.
    StartWorkflow {
        /// Which operation.
        workflow: Workflow,
        /// When it fails if not finished.
        deadline: Timestamp,
    },
    /// The running workflow is over.
    EndWorkflow,
    /// Release can finish once the power monitor sees the machine off.
    AwaitPowerOff,
    /// Delete the machine.
    DeleteMachine,
}

/// What an accepted action does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The status the machine ends in.
    pub status: NodeStatus,
    /// Statuses passed through before `status` (for the event log), in order.
    pub via: Vec<NodeStatus>,
    /// What the caller must do, in order.
    pub effects: Vec<Effect>,
    /// The event-log line for this action.
    pub event: String,
}

impl Outcome {
    fn new(status: NodeStatus, event: impl Into<String>) -> Self {
        Self {
            status,
            via: Vec::new(),
            effects: Vec::new(),
            event: event.into(),
        }
    }

    fn with(mut self, e: Effect) -> Self {
        self.effects.push(e);
        self
    }

    fn extend(mut self, es: impl IntoIterator<Item = Effect>) -> Self {
        self.effects.extend(es);
        self
    }

    /// Every hop `from → via… → status`.
    pub fn hops(&self, from: NodeStatus) -> Vec<(NodeStatus, NodeStatus)> {
        let mut out = Vec::new();
        let mut cur = from;
        for s in self.via.iter().copied().chain(std::iter::once(self.status)) {
            out.push((cur, s));
            cur = s;
        }
        out
    }

    /// Applies the status and the field effects to `m`; I/O effects (power,
    /// scripts, workflows, delete) are left to the caller.
    pub fn apply_to(&self, m: &mut Machine) {
        m.status = self.status;
        for e in &self.effects {
            match e {
                Effect::SetOwner(u) => m.owner = Some(u.clone()),
                Effect::ClearOwner => m.owner = None,
                Effect::SetAgentName(a) => m.agent_name = a.clone(),
                Effect::SetLocked(l) => m.locked = *l,
                Effect::SetNetboot(n) => m.netboot = *n,
                Effect::SetPreviousStatus(s) => m.previous_status = *s,
                Effect::SetErrorDescription(d) => m.error_description = d.clone(),
                Effect::SetDeployTarget {
                    osystem,
                    distro_series,
                    hwe_kernel,
                    ephemeral,
                } => {
                    m.osystem = osystem.clone();
                    m.distro_series = distro_series.clone();
                    m.hwe_kernel = hwe_kernel.clone();
                    m.ephemeral_deploy = *ephemeral;
                }
                Effect::ClearDeployTarget => {
                    m.osystem.clear();
                    m.distro_series.clear();
                    m.hwe_kernel = None;
                    m.ephemeral_deploy = false;
                }
                Effect::SetEnlisting(b) => m.enlisting = *b,
                Effect::SetCommissioned(b) => m.commissioned = *b,
                Effect::SetDeadline(t) => m.status_expires = Some(*t),
                Effect::SetPowerState(p) => m.power_state = *p,
                Effect::ClearDeadline => m.status_expires = None,
                Effect::ClearOwnerData
                | Effect::SetUserData(_)
                | Effect::PowerOn
                | Effect::PowerOff(_)
                | Effect::PowerCycle
                | Effect::QueryPower
                | Effect::WorkflowSignal(_)
                | Effect::RunScripts(_)
                | Effect::AbortScripts
                | Effect::ApplyDefaultStorageLayout
                | Effect::StartWorkflow { .. }
                | Effect::EndWorkflow
                | Effect::AwaitPowerOff
                | Effect::DeleteMachine => {}
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.event, self.status.label())
    }
}

fn conflict(op: &str, m: &Machine) -> Refusal {
    Refusal::Conflict(format!(
        "Cannot {} machine {} because it is in the '{}' state.",
        op.replace('_', " "),
        m.system_id,
        m.status.label()
    ))
}

/// Checks the permission of `action` for `actor` on `m` (and the lock).
pub fn authorize(m: &Machine, actor: &Actor, action: &Action) -> Result<(), Refusal> {
    let locked = || {
        Refusal::Forbidden(format!(
            "Machine {} is locked; unlock it before '{}'.",
            m.system_id,
            action.op()
        ))
    };
    let not_yours = || {
        Refusal::Forbidden(format!(
            "User '{}' may not '{}' machine {}: it is not theirs.",
            actor.username,
            action.op(),
            m.system_id
        ))
    };
    let may_edit = actor.is_admin || m.owner.is_none() || actor.owns(m);
    match action.permission() {
        Permission::View => Ok(()),
        Permission::Allocate => {
            if m.locked {
                Err(locked())
            } else {
                Ok(())
            }
        }
        // MAAS's `_can_edit` (auth/local.py, without RBAC): an admin, the
        // owner, or anyone at all when nobody owns the machine. The status
        // rules then decide (mostly 409 for a machine nobody holds).
        Permission::Lock => {
            if may_edit {
                Ok(())
            } else {
                Err(not_yours())
            }
        }
        Permission::Deploy | Permission::Edit => {
            if m.locked {
                Err(locked())
            } else if !may_edit {
                Err(not_yours())
            } else if matches!(action, Action::MarkBroken { .. }) && !actor.owns(m) {
                // api/machines.py `mark_broken`: after the edit permission,
                // the REST handler refuses anyone but the owner, admins too.
                Err(Refusal::Forbidden(format!(
                    "Only the owner of machine {} may mark it broken.",
                    m.system_id
                )))
            } else {
                Ok(())
            }
        }
        Permission::Admin => {
            if m.locked {
                Err(locked())
            } else if actor.is_admin {
                Ok(())
            } else {
                Err(Refusal::Forbidden(format!(
                    "Only administrators may '{}' machines.",
                    action.op()
                )))
            }
        }
    }
}

/// Statuses `op=release` accepts (`RELEASABLE_STATUSES`).
pub const RELEASABLE: [NodeStatus; 8] = [
    Allocated,
    Reserved,
    Broken,
    Deploying,
    Deployed,
    FailedDeployment,
    FailedDiskErasing,
    FailedReleasing,
];

/// Statuses `op=test` accepts (NEW only when commissioned before).
pub const TESTABLE: [NodeStatus; 17] = [
    FailedCommissioning,
    New,
    Ready,
    Reserved,
    Allocated,
    FailedDeployment,
    Deployed,
    Missing,
    Retired,
    Broken,
    RescueMode,
    FailedReleasing,
    FailedDiskErasing,
    FailedEnteringRescueMode,
    FailedExitingRescueMode,
    FailedTesting,
    // Testing a machine already testing restarts the tests.
    Testing,
];

/// Statuses after which a passed test returns the machine to READY.
const TEST_RESETS_TO_READY: [NodeStatus; 12] = [
    New,
    Commissioning,
    FailedDeployment,
    Missing,
    Retired,
    Broken,
    FailedReleasing,
    FailedDiskErasing,
    FailedEnteringRescueMode,
    FailedExitingRescueMode,
    FailedTesting,
    Testing,
];

/// The status a passed test leaves the machine in, given where it came from.
pub fn status_after_tests(previous: NodeStatus) -> NodeStatus {
    if previous == FailedCommissioning {
        New
    } else if TEST_RESETS_TO_READY.contains(&previous) {
        Ready
    } else {
        previous
    }
}

/// Splits MAAS's distro_series forms (`ubuntu/jammy`, `jammy`, `ubuntu/22.04`,
/// `22.04`) into (osystem, series); version numbers map to Ubuntu codenames.
pub fn parse_distro_series(
    value: &str,
    cfg: &LifecycleConfig,
) -> Result<(String, String), Refusal> {
    let v = value.trim();
    if v.is_empty() {
        return Ok((
            cfg.default_osystem.clone(),
            cfg.default_distro_series.clone(),
        ));
    }
    let (os, series) = match v.split_once('/') {
        Some((os, s)) => (os.to_owned(), s.to_owned()),
        None => (cfg.default_osystem.clone(), v.to_owned()),
    };
    if os.is_empty() || series.is_empty() || series.contains('/') {
        return Err(Refusal::bad(
            "distro_series",
            format!("'{value}' is not a valid distro series."),
        ));
    }
    let series = if os == "ubuntu" {
        ubuntu_codename(&series).unwrap_or(&series).to_owned()
    } else {
        series
    };
    Ok((os, series))
}

fn ubuntu_codename(version: &str) -> Option<&'static str> {
    Some(match version {
        "16.04" => "xenial",
        "18.04" => "bionic",
        "20.04" => "focal",
        "22.04" => "jammy",
        "24.04" => "noble",
        "24.10" => "oracular",
        "25.04" => "plucky",
        "25.10" => "questing",
        "26.04" => "resolute",
        _ => return None,
    })
}

fn deadline(cfg: &LifecycleConfig, status: NodeStatus, now: Timestamp) -> Vec<Effect> {
    cfg.deadline_for(status, now)
        .map(Effect::SetDeadline)
        .into_iter()
        .collect()
}

/// The effects of finishing a release: READY if commissioned, else NEW.
pub(crate) fn finish_release(m: &Machine) -> (NodeStatus, Vec<Effect>) {
    let to = if m.commissioned { Ready } else { New };
    (
        to,
        vec![
            Effect::ClearOwner,
            Effect::ClearOwnerData,
            Effect::SetAgentName(String::new()),
            Effect::ClearDeployTarget,
            Effect::SetUserData(None),
            Effect::ClearDeadline,
            Effect::EndWorkflow,
        ],
    )
}

fn start_commissioning(
    m: &Machine,
    p: &CommissionParams,
    now: Timestamp,
    cfg: &LifecycleConfig,
    event: &str,
) -> Outcome {
    // A Broken machine may still have an owner (mark_broken keeps it when
    // the release did not finish); commissioning takes it back into the
    // pool. (MAAS's start_commissioning records the commissioning user as
    // owner instead; maas-core keeps commissioning machines unowned.)
    let owner = m.owner.as_ref().map(|_| Effect::ClearOwner);
    Outcome::new(Commissioning, event).extend(
        owner
            .into_iter()
            .chain([
                Effect::SetPreviousStatus(m.status),
                Effect::SetErrorDescription(String::new()),
                Effect::SetNetboot(true),
            ])
            .chain(deadline(cfg, Commissioning, now))
            .chain([
                Effect::StartWorkflow {
                    workflow: Workflow::Commission,
                    deadline: now + cfg.node_timeout,
                },
                Effect::RunScripts(Scripts::Commissioning {
                    commissioning: p.commissioning_scripts.clone(),
                    testing: p.testing_scripts.clone(),
                    skip_storage: p.skip_storage,
                    skip_networking: p.skip_networking,
                    skip_bmc_config: p.skip_bmc_config,
                    enable_ssh: p.enable_ssh,
                }),
                Effect::PowerCycle,
            ]),
    )
}

fn start_deployment(
    m: &Machine,
    actor: &Actor,
    p: &DeployParams,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    let (osystem, distro_series) = parse_distro_series(&p.distro_series, cfg)?;
    let mut out = Outcome::new(Deploying, "Deploying");
    if m.status == Ready {
        out.via.push(Allocated);
        out.effects.push(Effect::SetOwner(actor.username.clone()));
        out.effects.push(Effect::SetAgentName(p.agent_name.clone()));
    }
    Ok(out.extend(
        [
            Effect::SetDeployTarget {
                osystem,
                distro_series,
                hwe_kernel: p.hwe_kernel.clone(),
                ephemeral: p.ephemeral_deploy,
            },
            Effect::SetUserData(p.user_data.clone()),
            Effect::SetErrorDescription(String::new()),
            Effect::SetNetboot(true),
        ]
        .into_iter()
        .chain(deadline(cfg, Deploying, now))
        .chain([
            Effect::StartWorkflow {
                workflow: Workflow::Deploy,
                deadline: now + cfg.deploy_workflow_timeout(),
            },
            Effect::PowerCycle,
        ]),
    ))
}

/// Validates `action` by `actor` on `m` at `now` and returns what it does.
pub fn apply(
    m: &Machine,
    actor: &Actor,
    action: &Action,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    authorize(m, actor, action)?;
    let out = decide(m, actor, action, now, cfg)?;
    // Belt and braces: every hop must be in MAAS's table.
    for (from, to) in out.hops(m.status) {
        lifecycle::check_transition(from, to)?;
    }
    Ok(out)
}

fn decide(
    m: &Machine,
    actor: &Actor,
    action: &Action,
    now: Timestamp,
    cfg: &LifecycleConfig,
) -> Result<Outcome, Refusal> {
    let op = action.op();
    let comment = action.comment().unwrap_or_default().to_owned();
    match action {
        Action::Commission(p) => {
            if !matches!(m.status, New | FailedCommissioning | Ready | Broken) {
                return Err(conflict(op, m));
            }
            if m.power_type.is_empty() {
                return Err(Refusal::bad(
                    "power_type",
                    "The machine's power type must be set to commission it.",
                ));
            }
            // An admin commissioning a machine that enlisted itself accepts
            // it: it ends Ready, not back in New (as MAAS does).
            Ok(start_commissioning(m, p, now, cfg, "Commissioning")
                .with(Effect::SetEnlisting(false)))
        }
        Action::Accept => match m.status {
            New => Ok(
                start_commissioning(m, &CommissionParams::default(), now, cfg, "Accepted")
                    .with(Effect::SetEnlisting(false)),
            ),
            Ready | Commissioning => Ok(Outcome::new(m.status, "Already accepted")),
            _ => Err(conflict(op, m)),
        },
        Action::Test(p) => {
            if !TESTABLE.contains(&m.status) || (m.status == New && !m.commissioned) {
                return Err(conflict(op, m));
            }
            if m.status == Deployed && p.destructive {
                return Err(Refusal::bad(
                    "testing_scripts",
                    "Destructive tests cannot be run on a deployed machine.",
                ));
            }
            let previous = if m.status == Testing {
                m.previous_status
            } else {
                m.status
            };
            Ok(Outcome::new(Testing, "Testing").extend(
                [
                    Effect::SetPreviousStatus(previous),
                    Effect::SetNetboot(true),
                ]
                .into_iter()
                .chain(deadline(cfg, Testing, now))
                .chain([
                    Effect::StartWorkflow {
                        workflow: Workflow::Test,
                        deadline: now + cfg.node_timeout,
                    },
                    Effect::RunScripts(Scripts::Testing {
                        testing: p.testing_scripts.clone(),
                        enable_ssh: p.enable_ssh,
                    }),
                    Effect::PowerCycle,
                ]),
            ))
        }
        Action::Allocate(p) => {
            if m.status != Ready || m.owner.is_some() {
                return Err(Refusal::Conflict(format!(
                    "Machine {} is not available: it is '{}'{}.",
                    m.system_id,
                    m.status.label(),
                    m.owner
                        .as_ref()
                        .map(|o| format!(" and owned by {o}"))
                        .unwrap_or_default()
                )));
            }
            Ok(Outcome::new(Allocated, "Allocated")
                .with(Effect::SetOwner(actor.username.clone()))
                .with(Effect::SetAgentName(p.agent_name.clone())))
        }
        Action::Deploy(p) => {
            for (removed, set) in [
                ("install_kvm", p.install_kvm),
                ("install_rackd", p.install_rackd),
                ("register_vmhost", p.register_vmhost),
            ] {
                if set {
                    return Err(Refusal::bad(
                        removed,
                        format!("'{removed}' has been removed from MAAS."),
                    ));
                }
            }
            match m.status {
                Ready if m.owner.is_none() => start_deployment(m, actor, p, now, cfg),
                Allocated => start_deployment(m, actor, p, now, cfg),
                _ => Err(conflict(op, m)),
            }
        }
        Action::Release(p) => {
            if matches!(m.status, Ready | Releasing) {
                return Ok(Outcome::new(m.status, "Already released"));
            }
            if !RELEASABLE.contains(&m.status) {
                return Err(conflict(op, m));
            }
            let erase =
                p.erase || p.secure_erase || p.quick_erase || cfg.enable_disk_erasing_on_release;
            let base = [
                Effect::SetNetboot(true),
                Effect::PowerOff(StopMode::Hard),
                Effect::SetErrorDescription(String::new()),
            ];
            if erase {
                let secure = p.secure_erase || (!p.quick_erase && cfg.disk_erase_with_secure_erase);
                let quick = p.quick_erase || (!p.secure_erase && cfg.disk_erase_with_quick_erase);
                let mode = match (secure, quick) {
                    (true, true) => EraseMode::SecureThenQuick,
                    (true, false) => EraseMode::Secure,
                    (false, true) => EraseMode::Quick,
                    (false, false) => EraseMode::Full,
                };
                return Ok(
                    Outcome::new(DiskErasing, "Releasing with disk erasing").extend(
                        [Effect::SetPreviousStatus(m.status)]
                            .into_iter()
                            .chain(base)
                            .chain(deadline(cfg, DiskErasing, now))
                            .chain([
                                Effect::StartWorkflow {
                                    workflow: Workflow::Erase,
                                    deadline: now + cfg.node_timeout,
                                },
                                Effect::RunScripts(Scripts::Erase(mode)),
                                Effect::PowerCycle,
                            ]),
                    ),
                );
            }
            let out = Outcome::new(Releasing, "Releasing").extend(base);
            if !m.power_queryable() || m.power_state == PowerState::Off || p.force {
                // Nothing to wait for: finish the release now.
                let (to, fin) = finish_release(m);
                let mut out = out.extend(fin);
                out.via.push(Releasing);
                out.status = to;
                Ok(out)
            } else {
                Ok(out.extend(deadline(cfg, Releasing, now)).extend([
                    Effect::StartWorkflow {
                        workflow: Workflow::Release,
                        deadline: now + cfg.releasing_timeout,
                    },
                    Effect::AwaitPowerOff,
                ]))
            }
        }
        Action::Abort { .. } => {
            let (to, extra): (NodeStatus, Vec<Effect>) = match m.status {
                Commissioning => (New, vec![]),
                Deploying => (Allocated, vec![]),
                Testing => {
                    let to = status_after_abort_testing(m);
                    (
                        to,
                        if matches!(to, Ready | New) {
                            vec![Effect::ClearOwner]
                        } else {
                            vec![]
                        },
                    )
                }
                DiskErasing => (FailedDiskErasing, vec![]),
                _ => return Err(conflict(op, m)),
            };
            Ok(
                Outcome::new(to, format!("Aborted {}", m.status.label().to_lowercase()))
                    .extend(extra)
                    .extend([
                        Effect::AbortScripts,
                        Effect::ClearDeadline,
                        Effect::EndWorkflow,
                        Effect::PowerOff(StopMode::Hard),
                    ]),
            )
        }
        Action::MarkBroken { comment: c } => {
            let c = c.clone().unwrap_or_default();
            let mut out = Outcome::new(Broken, "Marked broken");
            if RELEASABLE.contains(&m.status) {
                out = out.extend([
                    Effect::SetNetboot(true),
                    Effect::ClearOwnerData,
                    Effect::ClearDeployTarget,
                    Effect::SetUserData(None),
                    Effect::SetAgentName(String::new()),
                ]);
                // models/node.py `mark_broken` releases first; `_release`
                // finishes at once (owner cleared) only when the power is
                // already off or cannot be queried. Otherwise the release
                // would wait for the power monitor, which a Broken machine
                // never gets to, so the owner stays.
                if !m.power_queryable() || m.power_state == PowerState::Off {
                    out = out.with(Effect::ClearOwner);
                }
            }
            if m.status == Broken {
                return Ok(out.with(Effect::SetErrorDescription(c)));
            }
            Ok(out.extend([
                Effect::SetPreviousStatus(m.status),
                Effect::SetErrorDescription(c),
                Effect::AbortScripts,
                Effect::ClearDeadline,
                Effect::EndWorkflow,
                Effect::PowerOff(StopMode::Hard),
            ]))
        }
        Action::MarkFixed { .. } => {
            if m.status != Broken {
                return Err(Refusal::Conflict(
                    "Can't mark a non-broken machine as 'Ready'.".into(),
                ));
            }
            if m.previous_status == Deployed {
                Ok(Outcome::new(Deployed, "Marked fixed")
                    .with(Effect::SetErrorDescription(String::new())))
            } else {
                // mark_broken may have kept the owner; back in the pool
                // nobody holds it (maas-core's rule; MAAS's mark_fixed leaves
                // the owner field alone).
                Ok(Outcome::new(Ready, "Marked fixed").extend([
                    Effect::SetErrorDescription(String::new()),
                    Effect::ClearDeployTarget,
                    Effect::ClearOwner,
                ]))
            }
        }
        Action::RescueMode { .. } => {
            if !lifecycle::can_transition(m.status, EnteringRescueMode)
                || m.status == EnteringRescueMode
            {
                return Err(conflict(op, m));
            }
            let mut out = Outcome::new(EnteringRescueMode, "Entering rescue mode");
            if m.owner.is_none() {
                out.effects.push(Effect::SetOwner(actor.username.clone()));
            }
            Ok(out.extend(
                [
                    Effect::SetPreviousStatus(m.status),
                    Effect::SetNetboot(true),
                ]
                .into_iter()
                .chain(deadline(cfg, EnteringRescueMode, now))
                .chain([
                    Effect::StartWorkflow {
                        workflow: Workflow::EnterRescue,
                        deadline: now + cfg.node_timeout,
                    },
                    Effect::PowerCycle,
                ]),
            ))
        }
        Action::ExitRescueMode { .. } => {
            if !matches!(
                m.status,
                RescueMode
                    | EnteringRescueMode
                    | FailedEnteringRescueMode
                    | FailedExitingRescueMode
            ) {
                return Err(conflict(op, m));
            }
            let prev = m.previous_status;
            let out = Outcome::new(ExitingRescueMode, "Exiting rescue mode");
            if !m.power_queryable() {
                // Nothing to wait for: back to where it came from.
                let mut out = out.extend(exit_rescue_finish(m));
                out.via.push(ExitingRescueMode);
                out.status = rescue_return_status(prev);
                return Ok(out);
            }
            let power = if prev == Deployed {
                Effect::PowerCycle
            } else {
                Effect::PowerOff(StopMode::Hard)
            };
            Ok(out.extend(deadline(cfg, ExitingRescueMode, now)).extend([
                Effect::StartWorkflow {
                    workflow: Workflow::ExitRescue,
                    deadline: now + cfg.exiting_rescue_timeout,
                },
                power,
            ]))
        }
        Action::Lock { .. } => {
            if m.locked {
                return Err(Refusal::Conflict(format!(
                    "Machine {} is already locked.",
                    m.system_id
                )));
            }
            if !matches!(m.status, Deployed | Deploying) {
                return Err(Refusal::Conflict(format!(
                    "Can't lock machine {}: only deployed or deploying machines can be locked.",
                    m.system_id
                )));
            }
            Ok(Outcome::new(m.status, "Locked").with(Effect::SetLocked(true)))
        }
        Action::Unlock { .. } => {
            if !m.locked {
                return Err(Refusal::Conflict(format!(
                    "Machine {} is not locked.",
                    m.system_id
                )));
            }
            Ok(Outcome::new(m.status, "Unlocked").with(Effect::SetLocked(false)))
        }
        Action::PowerOn(p) => {
            if m.owner.is_none() {
                return Err(Refusal::Conflict(
                    "Can't start node: it hasn't been allocated.".into(),
                ));
            }
            if m.status == Allocated {
                let dp = DeployParams {
                    user_data: p.user_data.clone(),
                    comment: p.comment.clone(),
                    ..Default::default()
                };
                return start_deployment(m, actor, &dp, now, cfg);
            }
            let mut out = Outcome::new(m.status, "Powering on").with(Effect::PowerOn);
            if p.user_data.is_some() {
                out.effects
                    .insert(0, Effect::SetUserData(p.user_data.clone()));
            }
            Ok(out)
        }
        Action::PowerOff(p) => {
            Ok(Outcome::new(m.status, "Powering off").with(Effect::PowerOff(p.stop_mode)))
        }
        Action::QueryPower => {
            Ok(Outcome::new(m.status, "Querying power state").with(Effect::QueryPower))
        }
        Action::OverrideFailedTesting { .. } => {
            if m.status != FailedTesting {
                return Err(conflict(op, m));
            }
            let to = if m.osystem.is_empty() {
                Ready
            } else {
                Deployed
            };
            let out = Outcome::new(to, "Overrode failed testing")
                .with(Effect::SetErrorDescription(String::new()));
            // Back in the pool: nobody may hold a Ready machine.
            Ok(if to == Ready {
                out.with(Effect::ClearOwner)
            } else {
                out
            })
        }
        Action::SetStorageLayout => {
            if m.status != Ready {
                return Err(Refusal::Conflict(format!(
                    "Cannot change the storage layout of machine {}: it must be Ready, not '{}'.",
                    m.system_id,
                    m.status.label()
                )));
            }
            Ok(Outcome::new(m.status, "Storage layout set"))
        }
        Action::Update | Action::SetOwnerData => {
            Ok(Outcome::new(m.status, format!("Updated ({op})")))
        }
        Action::Delete => Ok(Outcome::new(m.status, "Deleted").with(Effect::DeleteMachine)),
    }
    .map(|mut out| {
        if !comment.is_empty() {
            out.event = format!("{} ({comment})", out.event);
        }
        out
    })
}

fn status_after_abort_testing(m: &Machine) -> NodeStatus {
    // MAAS returns an aborted test run to where testing started; the
    // transition table must allow it, else the machine is left failed.
    let prev = m.previous_status;
    if prev == Commissioning {
        // Tests that followed commissioning: the hardware is known.
        if m.enlisting { New } else { Ready }
    } else if prev != Testing && lifecycle::can_transition(Testing, prev) {
        prev
    } else {
        FailedTesting
    }
}

/// Where exiting rescue mode returns a machine.
pub(crate) fn rescue_return_status(previous: NodeStatus) -> NodeStatus {
    match previous {
        Deployed => Deployed,
        Broken => Broken,
        s if lifecycle::can_transition(ExitingRescueMode, s)
            && !matches!(s, RescueMode | ExitingRescueMode) =>
        {
            s
        }
        _ => Ready,
    }
}

pub(crate) fn exit_rescue_finish(m: &Machine) -> Vec<Effect> {
    let mut v = vec![Effect::ClearDeadline, Effect::EndWorkflow];
    // Rescue mode took ownership of an unowned machine; give it back. A
    // machine that was allocated before keeps its owner.
    if !lifecycle::ALLOCATED_LIKE.contains(&rescue_return_status(m.previous_status)) {
        v.push(Effect::ClearOwner);
    }
    v
}

/// Creates a machine record in NEW (or, with `deployed`, straight in
/// DEPLOYED owned by its creator, as MAAS's `deployed=true`).
pub fn create(mut machine: Machine, creator: &Actor, deployed: bool) -> Result<Machine, Refusal> {
    if deployed {
        if !creator.is_admin {
            return Err(Refusal::Forbidden(
                "Only administrators may add deployed machines.".into(),
            ));
        }
        machine.status = Deployed;
        machine.owner = Some(creator.username.clone());
        machine.netboot = false;
    } else {
        if !lifecycle::CREATION_TARGETS.contains(&machine.status) {
            return Err(Refusal::Conflict(format!(
                "Machines cannot be created in status '{}'.",
                machine.status.label()
            )));
        }
        machine.owner = None;
    }
    machine.locked = false;
    Ok(machine)
}

#[cfg(test)]
mod tests;
