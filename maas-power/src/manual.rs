//! The `manual` power type: a human presses the button. Actions succeed and
//! change nothing; the state is never known.

use async_trait::async_trait;
use maas_core::PowerState;

use crate::driver::{Capabilities, OffMode, PowerDriver, PowerTarget};
use crate::error::Result;
use crate::params::ParamSpec;

/// MAAS's `manual` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualDriver;

#[async_trait]
impl PowerDriver for ManualDriver {
    fn power_type(&self) -> &'static str {
        "manual"
    }
    fn description(&self) -> &'static str {
        "Manual"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn schema(&self) -> &'static [ParamSpec] {
        &[]
    }
    async fn power_on(&self, _target: &PowerTarget) -> Result<()> {
        tracing::info!("manual power: switch the machine on by hand");
        Ok(())
    }
    async fn power_off(&self, _target: &PowerTarget, _mode: OffMode) -> Result<()> {
        tracing::info!("manual power: switch the machine off by hand");
        Ok(())
    }
    async fn power_query(&self, _target: &PowerTarget) -> Result<PowerState> {
        Ok(PowerState::Unknown)
    }
}
