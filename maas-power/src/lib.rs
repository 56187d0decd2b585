//! # maas-power: BMC power drivers
//!
//! Every machine MAAS manages is switched on and off through its BMC. This
//! crate holds:
//!
//! - the [`PowerDriver`] trait (on, off soft/hard, cycle, query, one-time
//!   network boot), each driver's parameter schema ([`ParamSpec`], names as
//!   in MAAS's API) and the [`Registry`] mapping `power_type` → driver;
//! - [`PowerManager`], the policy every call goes through: MAAS's retry waits
//!   (1, 2, 2, 4, 6, 8, 12 s), confirmation by query, a timeout per call, no
//!   retry on fatal errors, concurrency limits per BMC and overall;
//! - the drivers: `manual`, `webhook`, `virsh`, `redfish` and `ipmi` (IPMI 2.0
//!   RMCP+ with cipher suites 3 and 17, and IPMI 1.5 `LAN`, spoken natively:
//!   no ipmitool or FreeIPMI);
//! - [`ipmi::sim`], an in-process IPMI BMC for tests and benchmarks.
//!
//! Secrets (passwords, k_g, tokens) never appear in `Debug`, logs or errors.
//!
//! ```
//! use maas_power::{PolicyConfig, PowerAction, PowerManager, PowerParams, PowerTarget, Registry};
//! use maas_core::PowerState;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> maas_power::Result<()> {
//! let manager = PowerManager::new(Registry::with_builtin()?, PolicyConfig::default());
//! let target = PowerTarget::new(PowerParams::new());
//! // `manual` cannot query: actions succeed and the state stays unknown.
//! let state = manager.perform("manual", &target, PowerAction::On).await?;
//! assert_eq!(state, PowerState::Unknown);
//!
//! let secret = PowerParams::new().with("power_pass", "s3cret");
//! assert!(!format!("{secret:?}").contains("s3cret"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod driver;
mod error;
mod http;
pub mod ipmi;
pub mod manual;
mod params;
mod policy;
pub mod redfish;
pub mod virsh;
pub mod webhook;

pub use driver::{Capabilities, OffMode, PowerDriver, PowerTarget, Registry};
pub use error::{Error, Result};
pub use params::{ParamSpec, PowerParams, SECRET_NAMES, Scope, Secret, validate};
pub use policy::{MAAS_RETRY_WAITS, PolicyConfig, PowerAction, PowerManager};
