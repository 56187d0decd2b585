//! Our power drivers (maas-power's Redfish and native IPMI) switch real
//! libvirt VMs through the lab's BMC emulators: sushy-emulator and virtualbmc
//! in front of the lab's own libvirtd.

use std::time::Duration;

use maas_core::PowerState;
use maas_power::{OffMode, PolicyConfig, PowerAction, PowerManager, PowerTarget, Registry};

use crate::harness::Lab;

fn manager() -> PowerManager {
    PowerManager::new(
        Registry::with_builtin().expect("registry"),
        PolicyConfig {
            // libvirt applies changes at once; the schedule's length matters.
            retry_waits: vec![Duration::from_millis(500); 10],
            call_timeout: Duration::from_secs(20),
            ..PolicyConfig::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn redfish_and_ipmi_bmcs_switch_real_vms() {
    let lab = tokio::task::spawn_blocking(|| Lab::up(2))
        .await
        .expect("join")
        .expect("lab up");
    let m = manager();
    for n in [1, 2] {
        let vm = lab.vm(n);
        let (ptype, params) = lab.power(n, lab.bmc_pass());
        assert_eq!(ptype, if n == 1 { "redfish" } else { "ipmi" });
        assert_eq!(vm.firmware, if n == 1 { "bios" } else { "uefi" });
        assert_eq!(vm.mac, format!("52:54:00:1a:b0:{n:02x}"));
        let t = PowerTarget::new(params);
        let q = m.perform(ptype, &t, PowerAction::Query).await;
        assert_eq!(q.expect("query"), PowerState::Off, "{vm:?}");
        assert_eq!(lab.domstate(n), "shut off");

        m.perform(ptype, &t, PowerAction::SetBootPxe)
            .await
            .unwrap_or_else(|e| panic!("{ptype} set boot pxe: {e}"));
        let on = m.perform(ptype, &t, PowerAction::On).await;
        assert_eq!(on.expect("power on"), PowerState::On, "{vm:?}");
        assert_eq!(lab.domstate(n), "running", "libvirt disagrees for {vm:?}");

        let off = m.perform(ptype, &t, PowerAction::Off(OffMode::Hard)).await;
        assert_eq!(off.expect("power off"), PowerState::Off, "{vm:?}");
        assert_eq!(lab.domstate(n), "shut off");

        // The BMCs check credentials, and the password never leaks into errors.
        let wrong = "not-the-bmc-secret";
        let (_, bad) = lab.power(n, wrong);
        let err = m
            .perform(ptype, &PowerTarget::new(bad), PowerAction::Query)
            .await
            .expect_err("a wrong password must be refused");
        let text = format!("{err} {err:?}");
        assert!(!text.contains(wrong), "{text}");
    }
}
