//! MAAS's life-cycle transition table, as data.
//!
//! [`allowed_targets`] is MAAS's `NODE_TRANSITIONS`: one exhaustive `match`
//! with no catch-all arm, so adding a status cannot silently allow anything.
//! [`check_transition`] is the rule every status change obeys (same → same is
//! always allowed); [`failure_status`] is the map from an operation in
//! progress to its failed status. [`export`] renders the table as text,
//! Markdown, JSON, mermaid or Graphviz dot.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::status::NodeStatus::{self, *};

/// Statuses a node may be created in.
pub const CREATION_TARGETS: [NodeStatus; 3] = [New, Missing, Retired];

/// The statuses `from` may change to (not counting `from` itself).
pub fn allowed_targets(from: NodeStatus) -> &'static [NodeStatus] {
    match from {
        New => &[
            Commissioning,
            Missing,
            Ready,
            Retired,
            Broken,
            EnteringRescueMode,
            Testing,
        ],
        Commissioning => &[
            New,
            FailedCommissioning,
            Missing,
            Ready,
            Retired,
            Broken,
            Testing,
        ],
        FailedCommissioning => &[
            Commissioning,
            Missing,
            Retired,
            Broken,
            EnteringRescueMode,
            Testing,
        ],
        Missing => &[
            New,
            Commissioning,
            Ready,
            Broken,
            Allocated,
            EnteringRescueMode,
            Testing,
        ],
        Ready => &[
            Commissioning,
            Missing,
            Reserved,
            Retired,
            Broken,
            Allocated,
            EnteringRescueMode,
            Testing,
        ],
        Reserved => &[
            Missing,
            Ready,
            Retired,
            Broken,
            Allocated,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        Deployed => &[
            Missing,
            Ready,
            Broken,
            Allocated,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        Retired => &[New, Missing, Ready, Broken, EnteringRescueMode, Testing],
        Broken => &[
            Commissioning,
            Ready,
            Deployed,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        Deploying => &[
            Missing,
            Ready,
            Deployed,
            Broken,
            Allocated,
            FailedDeployment,
            Releasing,
            DiskErasing,
        ],
        Allocated => &[
            Missing,
            Ready,
            Retired,
            Broken,
            Deploying,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        FailedDeployment => &[
            Missing,
            Ready,
            Broken,
            Allocated,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        Releasing => &[
            New,
            Missing,
            Ready,
            Reserved,
            Deployed,
            Broken,
            Allocated,
            FailedDeployment,
            FailedReleasing,
            FailedDiskErasing,
        ],
        FailedReleasing => &[Ready, Broken, Releasing, DiskErasing, Testing],
        DiskErasing => &[Ready, Broken, Releasing, DiskErasing, FailedDiskErasing],
        FailedDiskErasing => &[
            Ready,
            Broken,
            Allocated,
            Releasing,
            DiskErasing,
            EnteringRescueMode,
            Testing,
        ],
        RescueMode => &[Broken, ExitingRescueMode, Testing],
        EnteringRescueMode => &[
            Ready,
            Deployed,
            Broken,
            RescueMode,
            FailedEnteringRescueMode,
            ExitingRescueMode,
        ],
        FailedEnteringRescueMode => &[Broken, EnteringRescueMode, ExitingRescueMode, Testing],
        ExitingRescueMode => &[
            New,
            FailedCommissioning,
            Missing,
            Ready,
            Reserved,
            Deployed,
            Retired,
            Broken,
            Allocated,
            FailedDeployment,
            FailedReleasing,
            FailedDiskErasing,
            RescueMode,
            FailedEnteringRescueMode,
            FailedExitingRescueMode,
            FailedTesting,
        ],
        FailedExitingRescueMode => &[Broken, ExitingRescueMode, Testing],
        Testing => &[
            New,
            Commissioning,
            Missing,
            Ready,
            Reserved,
            Deployed,
            Retired,
            Broken,
            Allocated,
            FailedDeployment,
            FailedReleasing,
            FailedDiskErasing,
            FailedEnteringRescueMode,
            FailedExitingRescueMode,
            FailedTesting,
        ],
        FailedTesting => &[
            Commissioning,
            Missing,
            Ready,
            Deployed,
            Broken,
            EnteringRescueMode,
            Testing,
        ],
    }
}

/// Whether `from → to` is allowed: same → same always is.
pub fn can_transition(from: NodeStatus, to: NodeStatus) -> bool {
    from == to || allowed_targets(from).contains(&to)
}

/// A status change the table forbids (MAAS answers 409).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid transition: {} -> {}.", from.label(), to.label())]
pub struct InvalidTransition {
    /// The current status.
    pub from: NodeStatus,
    /// The refused target.
    pub to: NodeStatus,
}

/// `Ok` if `from → to` is allowed.
pub fn check_transition(from: NodeStatus, to: NodeStatus) -> Result<(), InvalidTransition> {
    if can_transition(from, to) {
        Ok(())
    } else {
        Err(InvalidTransition { from, to })
    }
}

/// The failed status an operation in progress falls into
/// (`NODE_FAILURE_STATUS_TRANSITION_MAP`).
pub fn failure_status(s: NodeStatus) -> Option<NodeStatus> {
    match s {
        Commissioning => Some(FailedCommissioning),
        Deploying => Some(FailedDeployment),
        Releasing => Some(FailedReleasing),
        DiskErasing => Some(FailedDiskErasing),
        EnteringRescueMode => Some(FailedEnteringRescueMode),
        ExitingRescueMode => Some(FailedExitingRescueMode),
        Testing => Some(FailedTesting),
        _ => None,
    }
}

/// Statuses in which the machine is held by an owner (`ALLOCATED_NODE_STATUSES`).
pub const ALLOCATED_LIKE: [NodeStatus; 15] = [
    Allocated,
    Deploying,
    Deployed,
    FailedDeployment,
    Releasing,
    FailedReleasing,
    DiskErasing,
    FailedDiskErasing,
    RescueMode,
    EnteringRescueMode,
    FailedEnteringRescueMode,
    ExitingRescueMode,
    FailedExitingRescueMode,
    Testing,
    FailedTesting,
];

pub use crate::boot::COMMISSIONING_LIKE;

/// Output formats of [`export`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One line per status: `NAME (n) -> A, B, C`.
    Table,
    /// A Markdown table like MAAS's reference.
    Markdown,
    /// JSON: statuses with integers and labels, transitions by name, the
    /// failure map and the named sets.
    Json,
    /// A mermaid `stateDiagram-v2`.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" | "text" => Ok(Self::Table),
            "markdown" | "md" => Ok(Self::Markdown),
            "json" => Ok(Self::Json),
            "mermaid" => Ok(Self::Mermaid),
            "dot" => Ok(Self::Dot),
            _ => Err(format!(
                "unknown format {s:?} (table, markdown, json, mermaid, dot)"
            )),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Markdown => "markdown",
            Self::Json => "json",
            Self::Mermaid => "mermaid",
            Self::Dot => "dot",
        })
    }
}

#[derive(Serialize)]
struct JsonStatus {
    value: u8,
    name: &'static str,
    label: &'static str,
    simple: &'static str,
}

#[derive(Serialize)]
struct JsonTable {
    statuses: Vec<JsonStatus>,
    creation: Vec<&'static str>,
    transitions: std::collections::BTreeMap<&'static str, Vec<&'static str>>,
    failure: std::collections::BTreeMap<&'static str, &'static str>,
    commissioning_like: Vec<&'static str>,
    allocated_like: Vec<&'static str>,
}

/// The transition table rendered in `format`.
pub fn export(format: ExportFormat) -> String {
    let names = |v: &[NodeStatus]| v.iter().map(|s| s.name()).collect::<Vec<_>>();
    match format {
        ExportFormat::Table => {
            let mut out = String::new();
            out.push_str(&format!(
                "(creation) -> {}\n",
                names(&CREATION_TARGETS).join(", ")
            ));
            for s in NodeStatus::ALL {
                out.push_str(&format!(
                    "{} ({}) -> {}\n",
                    s.name(),
                    s.as_int(),
                    names(allowed_targets(s)).join(", ")
                ));
            }
            out
        }
        ExportFormat::Markdown => {
            let mut out = String::from("| From | Allowed targets |\n|---|---|\n");
            out.push_str(&format!(
                "| (creation) | {} |\n",
                names(&CREATION_TARGETS).join(", ")
            ));
            for s in NodeStatus::ALL {
                out.push_str(&format!(
                    "| {} {} | {} |\n",
                    s.name(),
                    s.as_int(),
                    names(allowed_targets(s)).join(", ")
                ));
            }
            out
        }
        ExportFormat::Json => {
            let t = JsonTable {
                statuses: NodeStatus::ALL
                    .iter()
                    .map(|s| JsonStatus {
                        value: s.as_int(),
                        name: s.name(),
                        label: s.label(),
                        simple: s.simple().label(),
                    })
                    .collect(),
                creation: names(&CREATION_TARGETS),
                transitions: NodeStatus::ALL
                    .iter()
                    .map(|s| (s.name(), names(allowed_targets(*s))))
                    .collect(),
                failure: NodeStatus::ALL
                    .iter()
                    .filter_map(|s| failure_status(*s).map(|f| (s.name(), f.name())))
                    .collect(),
                commissioning_like: names(&COMMISSIONING_LIKE),
                allocated_like: names(&ALLOCATED_LIKE),
            };
            let mut s = serde_json::to_string_pretty(&t).expect("invariant: plain data");
            s.push('\n');
            s
        }
        ExportFormat::Mermaid => {
            let mut out = String::from("stateDiagram-v2\n");
            for t in CREATION_TARGETS {
                out.push_str(&format!("    [*] --> {}\n", t.name()));
            }
            for s in NodeStatus::ALL {
                for t in allowed_targets(s) {
                    out.push_str(&format!("    {} --> {}\n", s.name(), t.name()));
                }
            }
            out
        }
        ExportFormat::Dot => {
            let mut out = String::from("digraph maas_lifecycle {\n    rankdir=LR;\n");
            for s in NodeStatus::ALL {
                out.push_str(&format!(
                    "    {} [label=\"{}\\n{}\"];\n",
                    s.name(),
                    s.label(),
                    s.as_int()
                ));
            }
            for s in NodeStatus::ALL {
                for t in allowed_targets(s) {
                    out.push_str(&format!("    {} -> {};\n", s.name(), t.name()));
                }
            }
            out.push_str("}\n");
            out
        }
    }
}
