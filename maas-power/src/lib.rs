//! # maas-power: BMC power drivers
//!
//! The async `PowerDriver` trait and drivers for IPMI (native RMCP+), Redfish, virsh, webhook and manual power. Filled in by the power issue.
#![warn(missing_docs)]

mod error;

pub use error::{Error, Result};
