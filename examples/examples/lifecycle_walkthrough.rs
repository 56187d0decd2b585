//! A machine's life under MAAS's rules, from maas-core alone (no server):
//! New → Commissioning → Ready → Allocated → Deploying → Deployed →
//! Releasing → Ready, printing each step and the effects a server would
//! carry out. Also shows a refused action and the answer MAAS would give.
//!
//! Run with: cargo run -p maas-examples --example lifecycle_walkthrough

use std::time::Duration;

use maas_core::actions::{self, Action, Actor, CommissionParams, DeployParams, ReleaseParams};
use maas_core::constraints::{self, Constraints};
use maas_core::hardware::BlockDevice;
use maas_core::signals::{self, Event, SignalStatus};
use maas_core::{LifecycleConfig, Machine, Outcome, PowerState, SystemId, Timestamp};

fn show(m: &Machine, step: &str, out: &Outcome) {
    println!(
        "{step:<34} {:>13} -> {:<13} effects: {:?}",
        format!("{:?}", m.status),
        format!("{:?}", out.status),
        out.effects
    );
}

fn step(m: &mut Machine, what: &str, out: Outcome) {
    show(m, what, &out);
    out.apply_to(m);
}

fn main() -> anyhow::Result<()> {
    let cfg = LifecycleConfig::default();
    let admin = Actor::admin("admin");
    let alice = Actor::user("alice");
    let mut now = Timestamp::from_secs(1_700_000_000);
    let mut m = actions::create(
        Machine {
            system_id: SystemId::generate(&mut rand::rng()),
            hostname: "node-1".into(),
            power_type: "ipmi".into(),
            architecture: "amd64/generic".into(),
            ..Machine::default()
        },
        &admin,
        false,
    )?;
    println!(
        "created {} ({}) in status {} ({})\n",
        m.hostname,
        m.system_id,
        m.status,
        m.status.as_int()
    );

    let out = actions::apply(
        &m,
        &admin,
        &Action::Commission(CommissionParams::default()),
        now,
        &cfg,
    )?;
    step(&mut m, "admin: commission", out);
    m.cpu_count = 8;
    m.memory_mib = 16384;
    m.block_devices.push(BlockDevice {
        id: 1,
        name: "sda".into(),
        size: 500_000_000_000,
        ..Default::default()
    });
    now = now + Duration::from_secs(240);
    let ok = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: false,
    };
    let out = signals::handle(&m, &ok, now, &cfg)?;
    step(&mut m, "machine: signal OK", out);

    let wanted = Constraints::parse(&[("cpu_count", "4"), ("storage", "root:100")])?;
    let fleet = [m.clone()];
    let (chosen, by_type) =
        constraints::allocate(&wanted, &fleet).ok_or_else(|| anyhow::anyhow!("no match"))?;
    println!(
        "{:<34} matched {} with storage {:?}",
        "alice: allocate cpu_count=4 …", chosen.system_id, by_type.storage
    );
    let out = actions::apply(
        chosen,
        &alice,
        &Action::Allocate(Default::default()),
        now,
        &cfg,
    )?;
    step(&mut m, "alice: allocate", out);

    // Someone else may not deploy alice's machine: MAAS answers 403.
    let bob = Actor::user("bob");
    let refused = actions::apply(
        &m,
        &bob,
        &Action::Deploy(DeployParams::default()),
        now,
        &cfg,
    )
    .unwrap_err();
    println!(
        "{:<34} refused with HTTP {}: {refused}",
        "bob: deploy",
        refused.http_status()
    );

    let deploy = Action::Deploy(DeployParams {
        distro_series: "ubuntu/24.04".into(),
        ..Default::default()
    });
    let out = actions::apply(&m, &alice, &deploy, now, &cfg)?;
    step(&mut m, "alice: deploy ubuntu/24.04", out);
    now = now + Duration::from_secs(600);
    let out = signals::handle(&m, &Event::UserDataFetched, now, &cfg)?;
    step(&mut m, "installed OS: GET user-data", out);
    let out = actions::apply(
        &m,
        &alice,
        &Action::Release(ReleaseParams::default()),
        now,
        &cfg,
    )?;
    step(&mut m, "alice: release", out);
    let out = signals::handle(&m, &Event::PowerObserved(PowerState::Off), now, &cfg)?;
    step(&mut m, "power monitor: off", out);

    println!(
        "\nfinal: {} owner={:?} osystem={:?}",
        m.status, m.owner, m.osystem
    );
    anyhow::ensure!(m.status == maas_core::NodeStatus::Ready && m.owner.is_none());
    Ok(())
}
