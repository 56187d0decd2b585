//! The [`PowerDriver`] trait every BMC type implements, and the registry
//! that maps a MAAS `power_type` to its driver.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use maas_core::{PowerState, SystemId};

use crate::error::{Error, Result};
use crate::params::{ParamSpec, PowerParams};

/// How to switch a machine off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffMode {
    /// Ask the OS to shut down (ACPI soft-off, GracefulShutdown).
    Soft,
    /// Cut the power (MAAS's default).
    #[default]
    Hard,
}

impl OffMode {
    /// Reads MAAS's `power_off_mode` parameter (`soft` / `hard`, default hard).
    pub fn from_params(params: &PowerParams) -> Result<Self> {
        match params.get("power_off_mode") {
            None | Some("hard") => Ok(OffMode::Hard),
            Some("soft") => Ok(OffMode::Soft),
            Some(other) => Err(Error::Settings(format!(
                "power_off_mode: {other:?} is not soft or hard"
            ))),
        }
    }
}

/// What a driver can do beyond switching power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The driver can report the power state (`manual` cannot).
    pub queryable: bool,
    /// The driver can make the next boot a network boot.
    pub can_set_boot_order: bool,
    /// The driver can switch off softly (not just cut the power).
    pub soft_off: bool,
}

/// The machine a power call is about: its parameters and, when known, its
/// system id (the webhook driver sends it as the `System_Id` header).
#[derive(Clone, Debug, Default)]
pub struct PowerTarget {
    /// MAAS system id of the machine, if it has one yet.
    pub system_id: Option<SystemId>,
    /// The machine's power parameters (BMC and node scoped, merged).
    pub params: PowerParams,
}

impl PowerTarget {
    /// A target with parameters only.
    pub fn new(params: PowerParams) -> Self {
        Self {
            system_id: None,
            params,
        }
    }
    /// Sets the system id (builder style).
    pub fn with_system_id(mut self, id: SystemId) -> Self {
        self.system_id = Some(id);
        self
    }
}

/// A BMC type: how to switch power, query it and request a network boot.
///
/// Implementations make one attempt per call; retries, confirmation by
/// query, timeouts and concurrency limits belong to
/// [`PowerManager`](crate::PowerManager).
#[async_trait]
pub trait PowerDriver: Send + Sync + fmt::Debug {
    /// MAAS's `power_type` name, e.g. `ipmi`.
    fn power_type(&self) -> &'static str;
    /// A human name, as MAAS shows it.
    fn description(&self) -> &'static str;
    /// What the driver can do.
    fn capabilities(&self) -> Capabilities;
    /// The driver's parameters (the API validates `power_parameters` with it).
    fn schema(&self) -> &'static [ParamSpec];

    /// Switches the machine on.
    async fn power_on(&self, target: &PowerTarget) -> Result<()>;
    /// Switches the machine off.
    async fn power_off(&self, target: &PowerTarget, mode: OffMode) -> Result<()>;
    /// Reports the power state.
    async fn power_query(&self, target: &PowerTarget) -> Result<PowerState>;

    /// Power-cycles the machine: MAAS's semantics, off if it is on, then on.
    async fn power_cycle(&self, target: &PowerTarget) -> Result<()> {
        if self.capabilities().queryable && self.power_query(target).await? == PowerState::On {
            self.power_off(target, OffMode::Hard).await?;
        }
        self.power_on(target).await
    }

    /// Makes the next boot (only) a network (PXE) boot.
    async fn set_boot_pxe_once(&self, target: &PowerTarget) -> Result<()> {
        let _ = target;
        Err(Error::Unsupported(format!(
            "{} cannot set the boot device",
            self.power_type()
        )))
    }
}

/// power_type → driver.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: BTreeMap<&'static str, Arc<dyn PowerDriver>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.drivers.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The five drivers of this crate with their default settings.
    pub fn with_builtin() -> Result<Self> {
        let mut r = Self::new();
        r.register(Arc::new(crate::manual::ManualDriver));
        r.register(Arc::new(crate::webhook::WebhookDriver::new()?));
        r.register(Arc::new(crate::virsh::VirshDriver::new()));
        r.register(Arc::new(crate::redfish::RedfishDriver::new()?));
        r.register(Arc::new(crate::ipmi::IpmiDriver::new()));
        Ok(r)
    }

    /// Adds (or replaces) a driver under its power type.
    pub fn register(&mut self, driver: Arc<dyn PowerDriver>) {
        self.drivers.insert(driver.power_type(), driver);
    }

    /// The driver for `power_type`.
    pub fn get(&self, power_type: &str) -> Result<Arc<dyn PowerDriver>> {
        self.drivers
            .get(power_type)
            .cloned()
            .ok_or_else(|| Error::UnknownPowerType(power_type.to_owned()))
    }

    /// Every registered power type, sorted.
    pub fn power_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.drivers.keys().copied()
    }

    /// Validates `params` for `power_type` (the API's check).
    pub fn validate(&self, power_type: &str, params: &PowerParams) -> Result<()> {
        crate::params::validate(self.get(power_type)?.schema(), params)
    }
}
