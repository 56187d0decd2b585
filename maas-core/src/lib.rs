//! # maas-core: the MAAS domain, without I/O
//!
//! The machine model, MAAS's life-cycle state machine (the same 23 statuses,
//! integers, labels and transition table, so python-libmaas works unchanged),
//! user actions with MAAS's permission rules, allocation constraints,
//! cloning and deployment configuration. Everything here is pure: actions
//! take a machine, an actor and the current time and return either a typed
//! refusal or the new status plus the *effects* the caller must carry out.
//!
//! ```
//! use maas_core::{NodeStatus, SystemId};
//!
//! let id = SystemId::from_number(8_000_000).unwrap();
//! assert_eq!(id.as_str().len(), 6);
//! assert_eq!(NodeStatus::FailedReleasing.label(), "Releasing failed");
//! ```
#![warn(missing_docs)]

pub mod actions;
pub mod boot;
pub mod clone;
pub mod constraints;
pub mod deadline;
mod error;
pub mod hardware;
pub mod ids;
pub mod lifecycle;
pub mod machine;
pub mod network;
pub mod render;
pub mod signals;
pub mod status;
pub mod storage;
pub mod time;

pub use actions::{Action, Actor, Effect, Outcome, Refusal, apply};
pub use boot::{BootMethod, BootPurpose, boot_purpose};
pub use constraints::{Constraints, ConstraintsByType};
pub use deadline::LifecycleConfig;
pub use error::{Error, Result};
pub use ids::{MacAddress, SystemId};
pub use machine::Machine;
pub use render::{RenderContext, StaticRoute};
pub use status::{NodeStatus, NodeType, PowerState, SimpleStatus};
pub use storage::{LayoutRequest, StorageLayout};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
