//! The policy every power call goes through: MAAS's retry schedule,
//! confirmation by query, a timeout per call and concurrency limits per BMC
//! and overall.
//!
//! Drivers make single attempts; [`PowerManager`] decides when to try again.
//! Its waits use `tokio::time`, so tests run it under paused time and never
//! sleep for real.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maas_core::PowerState;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::driver::{OffMode, PowerDriver, PowerTarget, Registry};
use crate::error::{Error, Result};

/// MAAS's waits between attempts, in seconds (`drivers/power/__init__.py`).
pub const MAAS_RETRY_WAITS: [u64; 7] = [1, 2, 2, 4, 6, 8, 12];

/// A power action as the server asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerAction {
    /// Switch on and confirm.
    On,
    /// Switch off (soft or hard) and confirm.
    Off(OffMode),
    /// Off if on, then on; confirm on.
    Cycle,
    /// Report the state.
    Query,
    /// Next boot from the network, once.
    SetBootPxe,
}

/// Knobs of the policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Waits between attempts; the number of entries is the number of attempts.
    pub retry_waits: Vec<Duration>,
    /// Upper bound on any single driver call.
    pub call_timeout: Duration,
    /// Calls in flight towards one BMC (many BMCs choke on parallel sessions).
    pub per_bmc_limit: usize,
    /// Calls in flight overall.
    pub overall_limit: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            retry_waits: MAAS_RETRY_WAITS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            call_timeout: Duration::from_secs(30),
            per_bmc_limit: 1,
            overall_limit: 1000,
        }
    }
}

/// Runs power actions through drivers with retries, confirmation, timeouts
/// and concurrency limits. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PowerManager {
    registry: Registry,
    config: PolicyConfig,
    overall: Arc<Semaphore>,
    per_bmc: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl PowerManager {
    /// A manager over `registry` with `config`.
    pub fn new(registry: Registry, config: PolicyConfig) -> Self {
        let overall = Arc::new(Semaphore::new(config.overall_limit.max(1)));
        Self {
            registry,
            config,
            overall,
            per_bmc: Mutex::new(HashMap::new()),
        }
    }

    /// The registry of drivers.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Performs `action` on the machine behind `target` with the driver for
    /// `power_type`. Returns the confirmed (or queried) state; `Unknown` for
    /// drivers that cannot query and for boot-device changes.
    pub async fn perform(
        &self,
        power_type: &str,
        target: &PowerTarget,
        action: PowerAction,
    ) -> Result<PowerState> {
        let driver = self.registry.get(power_type)?;
        let bmc = bmc_key(power_type, target);
        let system_id = target.system_id.as_ref().map(ToString::to_string);
        tracing::debug!(power_type, ?system_id, ?action, "power action");
        let result = match action {
            PowerAction::On => {
                self.change(&*driver, &bmc, target, action, PowerState::On)
                    .await
            }
            PowerAction::Off(_) => {
                self.change(&*driver, &bmc, target, action, PowerState::Off)
                    .await
            }
            PowerAction::Cycle => {
                self.change(&*driver, &bmc, target, action, PowerState::On)
                    .await
            }
            PowerAction::Query => self.query(&*driver, &bmc, target).await,
            PowerAction::SetBootPxe => self
                .retrying(&*driver, &bmc, target, action)
                .await
                .map(|()| PowerState::Unknown),
        };
        if let Err(e) = &result {
            tracing::warn!(power_type, ?system_id, ?action, error = %e, "power action failed");
        }
        result
    }

    /// One driver call under the limits and the timeout.
    async fn call(
        &self,
        driver: &dyn PowerDriver,
        bmc: &str,
        target: &PowerTarget,
        action: PowerAction,
    ) -> Result<Option<PowerState>> {
        let _permits = self.permits(bmc).await?;
        let fut = async {
            match action {
                PowerAction::On => driver.power_on(target).await.map(|()| None),
                PowerAction::Off(mode) => driver.power_off(target, mode).await.map(|()| None),
                PowerAction::Cycle => driver.power_cycle(target).await.map(|()| None),
                PowerAction::Query => driver.power_query(target).await.map(Some),
                PowerAction::SetBootPxe => driver.set_boot_pxe_once(target).await.map(|()| None),
            }
        };
        match tokio::time::timeout(self.config.call_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(self.config.call_timeout)),
        }
    }

    async fn permits(&self, bmc: &str) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let per_bmc = {
            // The lock is never held across an await.
            let mut map = self
                .per_bmc
                .lock()
                .map_err(|_| Error::Invalid("power manager lock poisoned".into()))?;
            map.entry(bmc.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_bmc_limit.max(1))))
                .clone()
        };
        let closed = |_| Error::Invalid("power manager shut down".into());
        let overall = self.overall.clone().acquire_owned().await.map_err(closed)?;
        let bmc = per_bmc.acquire_owned().await.map_err(closed)?;
        Ok((overall, bmc))
    }

    /// Retries an action that has nothing to confirm (boot device).
    async fn retrying(
        &self,
        driver: &dyn PowerDriver,
        bmc: &str,
        target: &PowerTarget,
        action: PowerAction,
    ) -> Result<()> {
        let mut last = None;
        for wait in &self.config.retry_waits {
            match self.call(driver, bmc, target, action).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(*wait).await;
        }
        Err(last.unwrap_or_else(|| Error::Invalid("no attempts configured".into())))
    }

    async fn query(
        &self,
        driver: &dyn PowerDriver,
        bmc: &str,
        target: &PowerTarget,
    ) -> Result<PowerState> {
        if !driver.capabilities().queryable {
            return Ok(PowerState::Unknown);
        }
        let mut last = None;
        for wait in &self.config.retry_waits {
            match self.call(driver, bmc, target, PowerAction::Query).await {
                Ok(state) => return Ok(state.unwrap_or(PowerState::Unknown)),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(*wait).await;
        }
        Err(last.unwrap_or_else(|| Error::Invalid("no attempts configured".into())))
    }

    /// MAAS's `perform_power`: act, wait, query; again until the wanted
    /// state is seen or the schedule is exhausted.
    async fn change(
        &self,
        driver: &dyn PowerDriver,
        bmc: &str,
        target: &PowerTarget,
        action: PowerAction,
        wanted: PowerState,
    ) -> Result<PowerState> {
        let queryable = driver.capabilities().queryable;
        let mut last_err = None;
        let mut seen = PowerState::Unknown;
        for wait in &self.config.retry_waits {
            match self.call(driver, bmc, target, action).await {
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(*wait).await;
                    continue;
                }
                Ok(_) if !queryable => return Ok(PowerState::Unknown),
                Ok(_) => {}
            }
            tokio::time::sleep(*wait).await;
            match self.call(driver, bmc, target, PowerAction::Query).await {
                Ok(Some(state)) if state == wanted => return Ok(state),
                Ok(state) => seen = state.unwrap_or(PowerState::Unknown),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(match last_err {
            Some(e) if seen == PowerState::Unknown => e,
            _ => Error::NotConfirmed { wanted, seen },
        })
    }
}

/// Calls to one BMC share a limit: same power type, same address (the
/// query URI for webhooks, which have no address). The key may hold a URI
/// with credentials in it, so it is never logged.
fn bmc_key(power_type: &str, target: &PowerTarget) -> String {
    let p = &target.params;
    let addr = p
        .get("power_address")
        .or_else(|| p.get("power_query_uri"))
        .unwrap_or_default();
    format!("{power_type}:{addr}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tokio::time::Instant;

    use super::*;
    use crate::driver::Capabilities;
    use crate::params::{ParamSpec, PowerParams};

    /// A scripted driver: policy tests are about the policy, not a BMC.
    #[derive(Debug, Default)]
    struct Scripted {
        /// Fail the first N actions with a transient error.
        transient_failures: usize,
        fatal: bool,
        hang: bool,
        /// Queries report `On` only after this many queries.
        on_after_queries: usize,
        actions: Mutex<Vec<Instant>>,
        queries: AtomicUsize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    #[async_trait]
    impl PowerDriver for Scripted {
        fn power_type(&self) -> &'static str {
            "scripted"
        }
        fn description(&self) -> &'static str {
            "scripted"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                queryable: true,
                ..Capabilities::default()
            }
        }
        fn schema(&self) -> &'static [ParamSpec] {
            &[]
        }
        async fn power_on(&self, _: &PowerTarget) -> Result<()> {
            let n = {
                let mut a = self.actions.lock().unwrap();
                a.push(Instant::now());
                a.len()
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            if self.fatal {
                return Err(Error::Auth("bad password".into()));
            }
            if n <= self.transient_failures {
                return Err(Error::Connection("no answer".into()));
            }
            Ok(())
        }
        async fn power_off(&self, t: &PowerTarget, _: OffMode) -> Result<()> {
            self.power_on(t).await
        }
        async fn power_query(&self, _: &PowerTarget) -> Result<PowerState> {
            let q = self.queries.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(if q > self.on_after_queries {
                PowerState::On
            } else {
                PowerState::Off
            })
        }
    }

    fn manager(d: Arc<Scripted>, config: PolicyConfig) -> PowerManager {
        let mut r = Registry::new();
        r.register(d);
        PowerManager::new(r, config)
    }

    fn target(addr: &str) -> PowerTarget {
        PowerTarget::new(PowerParams::new().with("power_address", addr))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_follow_maas_waits() {
        let d = Arc::new(Scripted {
            transient_failures: 3,
            ..Default::default()
        });
        let m = manager(d.clone(), PolicyConfig::default());
        let state = m
            .perform("scripted", &target("a"), PowerAction::On)
            .await
            .unwrap();
        assert_eq!(state, PowerState::On);
        let a = d.actions.lock().unwrap().clone();
        assert_eq!(a.len(), 4);
        let gaps: Vec<u64> = a
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        // each gap = the 100 ms call + MAAS's wait
        assert_eq!(gaps, vec![1100, 2100, 2100]);
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_error_is_not_retried() {
        let d = Arc::new(Scripted {
            fatal: true,
            ..Default::default()
        });
        let m = manager(d.clone(), PolicyConfig::default());
        let e = m
            .perform("scripted", &target("a"), PowerAction::On)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Auth(_)), "{e}");
        assert_eq!(d.actions.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn confirms_by_query_and_gives_up_after_schedule() {
        let d = Arc::new(Scripted {
            on_after_queries: 2,
            ..Default::default()
        });
        let m = manager(d.clone(), PolicyConfig::default());
        let start = Instant::now();
        assert_eq!(
            m.perform("scripted", &target("a"), PowerAction::On)
                .await
                .unwrap(),
            PowerState::On
        );
        assert_eq!(d.queries.load(Ordering::SeqCst), 3);
        // three rounds: waits 1 + 2 + 2 s, plus 3 x 100 ms calls
        assert_eq!(start.elapsed(), Duration::from_millis(5300));

        let never = Arc::new(Scripted {
            on_after_queries: usize::MAX,
            ..Default::default()
        });
        let m = manager(never.clone(), PolicyConfig::default());
        let e = m
            .perform("scripted", &target("a"), PowerAction::On)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            Error::NotConfirmed {
                wanted: PowerState::On,
                seen: PowerState::Off
            }
        ));
        assert_eq!(never.actions.lock().unwrap().len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_is_bounded_by_the_timeout() {
        let d = Arc::new(Scripted {
            hang: true,
            ..Default::default()
        });
        let config = PolicyConfig {
            retry_waits: vec![Duration::from_secs(1); 2],
            call_timeout: Duration::from_secs(5),
            ..PolicyConfig::default()
        };
        let m = manager(d.clone(), config);
        let start = Instant::now();
        let e = m
            .perform("scripted", &target("a"), PowerAction::On)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert_eq!(start.elapsed(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_limited_per_bmc_and_overall() {
        let d = Arc::new(Scripted::default());
        let m = Arc::new(manager(
            d.clone(),
            PolicyConfig {
                per_bmc_limit: 1,
                overall_limit: 3,
                ..PolicyConfig::default()
            },
        ));
        // five calls to one BMC never overlap
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                m.perform("scripted", &target("same"), PowerAction::On)
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(d.max_in_flight.load(Ordering::SeqCst), 1);
        // ten BMCs: at most three at once
        let mut tasks = Vec::new();
        for i in 0..10 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                m.perform("scripted", &target(&format!("bmc{i}")), PowerAction::On)
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(d.max_in_flight.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unknown_power_type_is_fatal() {
        let m = PowerManager::new(Registry::new(), PolicyConfig::default());
        let e = m
            .perform("nope", &target("a"), PowerAction::Query)
            .await
            .unwrap_err();
        assert!(e.is_fatal());
    }
}
