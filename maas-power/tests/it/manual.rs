use maas_core::PowerState;
use maas_power::{PowerAction, PowerParams, PowerTarget};

use crate::common::fast_manager;

#[tokio::test]
async fn manual_actions_succeed_and_state_stays_unknown() {
    let m = fast_manager();
    let t = PowerTarget::new(PowerParams::new());
    for action in [
        PowerAction::On,
        PowerAction::Off(maas_power::OffMode::Hard),
        PowerAction::Cycle,
        PowerAction::Query,
    ] {
        assert_eq!(
            m.perform("manual", &t, action).await.unwrap(),
            PowerState::Unknown
        );
    }
    let e = m
        .perform("manual", &t, PowerAction::SetBootPxe)
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
    let d = m.registry().get("manual").unwrap();
    assert!(!d.capabilities().queryable);
    assert!(d.schema().is_empty());
}
