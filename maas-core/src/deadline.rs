//! Operation deadlines (MAAS's status monitor timeouts), computed from an
//! injected time.

use std::time::Duration;

use crate::machine::Machine;
use crate::status::NodeStatus;
use crate::time::Timestamp;

/// MAAS's default `node_timeout`: 30 minutes.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Releasing and exiting rescue mode have a fixed 5-minute timeout.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Settings the life-cycle rules read (MAAS configuration items).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// `node_timeout`: commissioning, testing, deploying, disk erasing and
    /// entering rescue mode fail after this long without progress.
    pub node_timeout: Duration,
    /// Releasing times out after this (5 min in MAAS).
    pub releasing_timeout: Duration,
    /// Exiting rescue mode times out after this (5 min in MAAS).
    pub exiting_rescue_timeout: Duration,
    /// `enable_disk_erasing_on_release`: erase disks on every release.
    pub enable_disk_erasing_on_release: bool,
    /// `disk_erase_with_secure_erase` (default true).
    pub disk_erase_with_secure_erase: bool,
    /// `disk_erase_with_quick_erase` (default false).
    pub disk_erase_with_quick_erase: bool,
    /// `default_osystem` for deployments that name none.
    pub default_osystem: String,
    /// `default_distro_series` for deployments that name none.
    pub default_distro_series: String,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            node_timeout: DEFAULT_NODE_TIMEOUT,
            releasing_timeout: SHORT_TIMEOUT,
            exiting_rescue_timeout: SHORT_TIMEOUT,
            enable_disk_erasing_on_release: false,
            disk_erase_with_secure_erase: true,
            disk_erase_with_quick_erase: false,
            default_osystem: "ubuntu".into(),
            default_distro_series: "noble".into(),
        }
    }
}

impl LifecycleConfig {
    /// How long a machine may stay in `status` before the status monitor
    /// fails it; `None` for statuses that are not monitored.
    pub fn status_timeout(&self, status: NodeStatus) -> Option<Duration> {
        match status {
            NodeStatus::Commissioning
            | NodeStatus::Deploying
            | NodeStatus::DiskErasing
            | NodeStatus::EnteringRescueMode
            | NodeStatus::Testing => Some(self.node_timeout),
            NodeStatus::Releasing => Some(self.releasing_timeout),
            NodeStatus::ExitingRescueMode => Some(self.exiting_rescue_timeout),
            _ => None,
        }
    }

    /// The deploy workflow's overall limit: twice `node_timeout` (MAAS 3.5+).
    pub fn deploy_workflow_timeout(&self) -> Duration {
        self.node_timeout * 2
    }

    /// The deadline for entering `status` at `now`, if it is monitored.
    pub fn deadline_for(&self, status: NodeStatus, now: Timestamp) -> Option<Timestamp> {
        self.status_timeout(status).map(|d| now + d)
    }
}

/// Whether the machine's current operation has passed its deadline.
pub fn is_expired(machine: &Machine, now: Timestamp) -> bool {
    machine.status_expires.is_some_and(|t| t <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Clock, ManualClock};

    #[test]
    fn monitored_statuses_and_their_timeouts() {
        let cfg = LifecycleConfig::default();
        for s in NodeStatus::ALL {
            let want = match s {
                NodeStatus::Commissioning
                | NodeStatus::Deploying
                | NodeStatus::DiskErasing
                | NodeStatus::EnteringRescueMode
                | NodeStatus::Testing => Some(Duration::from_secs(1800)),
                NodeStatus::Releasing | NodeStatus::ExitingRescueMode => {
                    Some(Duration::from_secs(300))
                }
                _ => None,
            };
            assert_eq!(cfg.status_timeout(s), want, "{s:?}");
        }
        assert_eq!(cfg.deploy_workflow_timeout(), Duration::from_secs(3600));
    }

    #[test]
    fn expiry_with_a_fake_clock() {
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let cfg = LifecycleConfig::default();
        let m = Machine {
            status: NodeStatus::Releasing,
            status_expires: cfg.deadline_for(NodeStatus::Releasing, clock.now()),
            ..Machine::default()
        };
        clock.advance(Duration::from_secs(299));
        assert!(!is_expired(&m, clock.now()));
        clock.advance(Duration::from_secs(1));
        assert!(is_expired(&m, clock.now()));
    }
}
