//! A machine's whole life through the public API: New → commissioned →
//! Ready → allocated by constraints → Deploying → Deployed → released → Ready.

use maas_core::actions::{
    self, Action, Actor, AllocateParams, CommissionParams, DeployParams, ReleaseParams,
};
use maas_core::constraints::{self, Constraints};
use maas_core::hardware::BlockDevice;
use maas_core::signals::{self, Event, SignalStatus};
use maas_core::{LifecycleConfig, Machine, NodeStatus, PowerState, Timestamp};

#[test]
fn new_to_deployed_to_ready() {
    let cfg = LifecycleConfig::default();
    let admin = Actor::admin("admin");
    let alice = Actor::user("alice");
    let mut now = Timestamp::from_secs(1_700_000_000);
    let mut m = actions::create(
        Machine {
            hostname: "node1".into(),
            power_type: "ipmi".into(),
            architecture: "amd64/generic".into(),
            ..Machine::default()
        },
        &admin,
        false,
    )
    .unwrap();
    assert_eq!(m.status, NodeStatus::New);

    let out = actions::apply(
        &m,
        &admin,
        &Action::Commission(CommissionParams::default()),
        now,
        &cfg,
    )
    .unwrap();
    out.apply_to(&mut m);
    assert_eq!(m.status, NodeStatus::Commissioning);
    assert_eq!(m.status_expires, Some(now + cfg.node_timeout));

    // The ephemeral environment reports the hardware and finishes.
    m.cpu_count = 4;
    m.memory_mib = 8192;
    m.block_devices.push(BlockDevice {
        id: 1,
        name: "sda".into(),
        size: 100_000_000_000,
        ..Default::default()
    });
    now = now + std::time::Duration::from_secs(300);
    let ok = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: false,
    };
    signals::handle(&m, &ok, now, &cfg)
        .unwrap()
        .apply_to(&mut m);
    assert_eq!(m.status, NodeStatus::Ready);
    assert!(m.commissioned);
    assert_eq!(m.status_expires, None);

    let c = Constraints::parse(&[("cpu_count", "2"), ("storage", "root:50")]).unwrap();
    let machines = [m.clone()];
    let (chosen, by_type) = constraints::allocate(&c, &machines).unwrap();
    assert_eq!(by_type.storage["root"], vec![1]);
    actions::apply(
        chosen,
        &alice,
        &Action::Allocate(AllocateParams::default()),
        now,
        &cfg,
    )
    .unwrap()
    .apply_to(&mut m);
    assert_eq!(
        (m.status, m.owner.as_deref()),
        (NodeStatus::Allocated, Some("alice"))
    );

    let deploy = Action::Deploy(DeployParams {
        distro_series: "22.04".into(),
        ..Default::default()
    });
    actions::apply(&m, &alice, &deploy, now, &cfg)
        .unwrap()
        .apply_to(&mut m);
    assert_eq!(
        (m.status, m.osystem.as_str(), m.distro_series.as_str()),
        (NodeStatus::Deploying, "ubuntu", "jammy")
    );
    signals::handle(&m, &Event::UserDataFetched, now, &cfg)
        .unwrap()
        .apply_to(&mut m);
    assert_eq!(m.status, NodeStatus::Deployed);

    let release = Action::Release(ReleaseParams::default());
    actions::apply(&m, &alice, &release, now, &cfg)
        .unwrap()
        .apply_to(&mut m);
    assert_eq!(m.status, NodeStatus::Releasing);
    signals::handle(&m, &Event::PowerObserved(PowerState::Off), now, &cfg)
        .unwrap()
        .apply_to(&mut m);
    assert_eq!(
        (m.status, m.owner.as_deref(), m.osystem.as_str()),
        (NodeStatus::Ready, None, "")
    );
}
