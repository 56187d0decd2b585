use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::lifecycle::ALLOCATED_LIKE;
use crate::signals::{self, Event, EventResult, SignalStatus};

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn cfg() -> LifecycleConfig {
    LifecycleConfig::default()
}

fn machine(status: NodeStatus) -> Machine {
    Machine {
        status,
        power_type: "ipmi".into(),
        hostname: "n1".into(),
        commissioned: true,
        ..Machine::default()
    }
}

fn owned(status: NodeStatus, owner: &str) -> Machine {
    Machine {
        owner: Some(owner.into()),
        ..machine(status)
    }
}

fn admin() -> Actor {
    Actor::admin("admin")
}

fn alice() -> Actor {
    Actor::user("alice")
}

fn bob() -> Actor {
    Actor::user("bob")
}

fn run(m: &Machine, who: &Actor, a: &Action) -> Result<Machine, Refusal> {
    let out = apply(m, who, a, T0, &cfg())?;
    let mut m = m.clone();
    out.apply_to(&mut m);
    Ok(m)
}

fn status_of(r: Result<Machine, Refusal>) -> Result<NodeStatus, u16> {
    r.map(|m| m.status).map_err(|e| e.http_status())
}

fn comment() -> Option<String> {
    None
}

#[test]
fn commission_is_admin_only_from_new_failed_ready_broken() {
    let a = Action::Commission(CommissionParams::default());
    for s in NodeStatus::ALL {
        let got = status_of(run(&machine(s), &admin(), &a));
        let want = if matches!(s, New | FailedCommissioning | Ready | Broken) {
            Ok(Commissioning)
        } else {
            Err(409)
        };
        assert_eq!(got, want, "{s:?}");
    }
    assert_eq!(status_of(run(&machine(Ready), &alice(), &a)), Err(403));
    let mut no_power = machine(New);
    no_power.power_type.clear();
    assert_eq!(status_of(run(&no_power, &admin(), &a)), Err(400));
    let out = apply(&machine(New), &admin(), &a, T0, &cfg()).unwrap();
    assert!(out.effects.contains(&Effect::PowerCycle));
    // Commissioning a machine that enlisted itself accepts it: a pass then
    // ends Ready, not New.
    let mut enlisted = machine(New);
    enlisted.enlisting = true;
    let out = apply(&enlisted, &admin(), &a, T0, &cfg()).unwrap();
    let mut after = enlisted.clone();
    out.apply_to(&mut after);
    assert!(!after.enlisting);
    let ok = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: false,
    };
    assert_eq!(
        signals::handle(&after, &ok, T0, &cfg()).unwrap().status,
        Ready
    );
    assert!(
        out.effects
            .contains(&Effect::SetDeadline(T0 + Duration::from_secs(1800)))
    );
}

#[test]
fn test_rules_and_where_a_pass_returns() {
    let a = Action::Test(TestParams::default());
    let mut fresh = machine(New);
    fresh.commissioned = false;
    assert_eq!(status_of(run(&fresh, &admin(), &a)), Err(409));
    assert_eq!(status_of(run(&machine(New), &admin(), &a)), Ok(Testing));
    assert_eq!(status_of(run(&machine(Deploying), &admin(), &a)), Err(409));
    assert_eq!(status_of(run(&machine(Ready), &alice(), &a)), Err(403));
    let destructive = Action::Test(TestParams {
        destructive: true,
        ..Default::default()
    });
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &admin(), &destructive)),
        Err(400)
    );

    // Passing returns to READY, NEW or the previous status as MAAS does.
    for (from, after) in [
        (Ready, Ready),
        (FailedCommissioning, New),
        (Allocated, Allocated),
        (Deployed, Deployed),
        (Broken, Ready),
    ] {
        let m = run(&owned(from, "alice"), &admin(), &a).unwrap();
        assert_eq!(m.previous_status, from);
        let ok = Event::Signal {
            status: SignalStatus::Ok,
            error: None,
            script_failed: false,
        };
        let out = signals::handle(&m, &ok, T0, &cfg()).unwrap();
        assert_eq!(out.status, after, "{from:?}");
        let bad = Event::Signal {
            status: SignalStatus::Failed,
            error: Some("disk".into()),
            script_failed: false,
        };
        assert_eq!(
            signals::handle(&m, &bad, T0, &cfg()).unwrap().status,
            FailedTesting
        );
    }
}

#[test]
fn allocate_only_ready_and_unowned() {
    let a = Action::Allocate(AllocateParams {
        agent_name: "juju".into(),
        comment: comment(),
    });
    let m = run(&machine(Ready), &alice(), &a).unwrap();
    assert_eq!(
        (m.status, m.owner.as_deref(), m.agent_name.as_str()),
        (Allocated, Some("alice"), "juju")
    );
    assert_eq!(status_of(run(&m, &bob(), &a)), Err(409));
    for s in NodeStatus::ALL.into_iter().filter(|s| *s != Ready) {
        assert_eq!(status_of(run(&machine(s), &alice(), &a)), Err(409), "{s:?}");
    }
}

#[test]
fn deploy_auto_allocates_and_checks_owner() {
    let a = Action::Deploy(DeployParams {
        distro_series: "ubuntu/22.04".into(),
        ..Default::default()
    });
    let out = apply(&machine(Ready), &alice(), &a, T0, &cfg()).unwrap();
    assert_eq!(out.via, vec![Allocated]);
    let m = run(&machine(Ready), &alice(), &a).unwrap();
    assert_eq!(
        (m.status, m.owner.as_deref(), m.distro_series.as_str()),
        (Deploying, Some("alice"), "jammy")
    );
    assert!(out.effects.contains(&Effect::StartWorkflow {
        workflow: Workflow::Deploy,
        deadline: T0 + Duration::from_secs(3600)
    }));

    assert_eq!(
        status_of(run(&owned(Allocated, "alice"), &alice(), &a)),
        Ok(Deploying)
    );
    assert_eq!(
        status_of(run(&owned(Allocated, "alice"), &bob(), &a)),
        Err(403)
    );
    assert_eq!(
        status_of(run(&owned(Allocated, "alice"), &admin(), &a)),
        Ok(Deploying)
    );
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &alice(), &a)),
        Err(409)
    );
    assert_eq!(status_of(run(&machine(New), &admin(), &a)), Err(409));
    let kvm = Action::Deploy(DeployParams {
        install_kvm: true,
        ..Default::default()
    });
    assert_eq!(status_of(run(&machine(Ready), &alice(), &kvm)), Err(400));
    let bad = Action::Deploy(DeployParams {
        distro_series: "ubuntu/".into(),
        ..Default::default()
    });
    assert_eq!(status_of(run(&machine(Ready), &alice(), &bad)), Err(400));
}

#[test]
fn distro_series_forms() {
    let c = cfg();
    for (input, want) in [
        ("ubuntu/jammy", ("ubuntu", "jammy")),
        ("jammy", ("ubuntu", "jammy")),
        ("ubuntu/22.04", ("ubuntu", "jammy")),
        ("22.04", ("ubuntu", "jammy")),
        ("", ("ubuntu", "noble")),
        ("centos/8", ("centos", "8")),
    ] {
        let (os, s) = parse_distro_series(input, &c).unwrap();
        assert_eq!((os.as_str(), s.as_str()), want, "{input}");
    }
    assert!(parse_distro_series("a/b/c", &c).is_err());
}

#[test]
fn release_paths() {
    let a = Action::Release(ReleaseParams::default());
    // Queryable power, still on: wait in RELEASING for the power monitor.
    let mut m = owned(Deployed, "alice");
    m.power_state = PowerState::On;
    let r = run(&m, &alice(), &a).unwrap();
    assert_eq!((r.status, r.owner.as_deref()), (Releasing, Some("alice")));
    assert_eq!(r.status_expires, Some(T0 + Duration::from_secs(300)));
    let fin = signals::handle(
        &r,
        &Event::PowerObserved {
            state: PowerState::Off,
        },
        T0,
        &cfg(),
    )
    .unwrap();
    assert_eq!(fin.status, Ready);
    // Manual power: finishes at once, through RELEASING.
    let mut manual = owned(Allocated, "alice");
    manual.power_type = "manual".into();
    let out = apply(&manual, &alice(), &a, T0, &cfg()).unwrap();
    assert_eq!((out.via.clone(), out.status), (vec![Releasing], Ready));
    // Never commissioned → NEW.
    manual.commissioned = false;
    assert_eq!(status_of(run(&manual, &alice(), &a)), Ok(New));
    // Idempotent on READY and RELEASING; refused elsewhere.
    assert_eq!(status_of(run(&machine(Ready), &admin(), &a)), Ok(Ready));
    assert_eq!(
        status_of(run(&owned(Releasing, "alice"), &alice(), &a)),
        Ok(Releasing)
    );
    assert_eq!(status_of(run(&machine(New), &admin(), &a)), Err(409));
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &bob(), &a)),
        Err(403)
    );
    // Erase flags → DISK_ERASING with the right mode.
    let quick = Action::Release(ReleaseParams {
        erase: true,
        quick_erase: true,
        ..Default::default()
    });
    let out = apply(&owned(Deployed, "alice"), &alice(), &quick, T0, &cfg()).unwrap();
    assert_eq!(out.status, DiskErasing);
    assert!(
        out.effects
            .contains(&Effect::RunScripts(Scripts::Erase(EraseMode::Quick)))
    );
    let global = LifecycleConfig {
        enable_disk_erasing_on_release: true,
        ..cfg()
    };
    let out = apply(&owned(Deployed, "alice"), &alice(), &a, T0, &global).unwrap();
    assert!(
        out.effects
            .contains(&Effect::RunScripts(Scripts::Erase(EraseMode::Secure)))
    );
}

#[test]
fn abort_returns_each_operation_where_maas_does() {
    let a = Action::Abort { comment: comment() };
    assert_eq!(
        status_of(run(&machine(Commissioning), &admin(), &a)),
        Ok(New)
    );
    assert_eq!(
        status_of(run(&owned(Deploying, "alice"), &alice(), &a)),
        Ok(Allocated)
    );
    assert_eq!(
        status_of(run(&owned(DiskErasing, "alice"), &alice(), &a)),
        Ok(FailedDiskErasing)
    );
    let mut testing = machine(Testing);
    testing.previous_status = Ready;
    assert_eq!(status_of(run(&testing, &admin(), &a)), Ok(Ready));
    assert_eq!(status_of(run(&machine(Ready), &admin(), &a)), Err(409));
    assert_eq!(
        status_of(run(&owned(Deploying, "alice"), &bob(), &a)),
        Err(403)
    );
}

#[test]
fn broken_and_fixed() {
    let broken = Action::MarkBroken {
        comment: Some("fan died".into()),
    };
    // Queryable power not known to be off: the release inside mark_broken
    // does not finish, so the owner stays (models/node.py mark_broken).
    let m = run(&owned(Deployed, "alice"), &alice(), &broken).unwrap();
    assert_eq!(
        (m.status, m.owner.as_deref(), m.error_description.as_str()),
        (Broken, Some("alice"), "fan died")
    );
    assert_eq!(m.previous_status, Deployed);
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &bob(), &broken)),
        Err(403)
    );
    assert_eq!(status_of(run(&machine(Ready), &bob(), &broken)), Err(403));

    let fixed = Action::MarkFixed { comment: comment() };
    assert_eq!(status_of(run(&m, &alice(), &fixed)), Err(403));
    let f = run(&m, &admin(), &fixed).unwrap();
    assert_eq!((f.status, f.error_description.as_str()), (Deployed, ""));
    let from_ready = run(&owned(Ready, "alice"), &alice(), &broken).unwrap();
    assert_eq!(status_of(run(&from_ready, &admin(), &fixed)), Ok(Ready));
    assert_eq!(status_of(run(&machine(Ready), &admin(), &fixed)), Err(409));
}

#[test]
fn mark_broken_wants_the_owner_even_from_an_admin() {
    // api/machines.py mark_broken: 403 unless the caller owns the machine.
    let broken = Action::MarkBroken { comment: comment() };
    for s in [Ready, New, Deployed, Broken] {
        assert_eq!(
            status_of(run(&owned(s, "alice"), &admin(), &broken)),
            Err(403),
            "{s:?}"
        );
        assert_eq!(status_of(run(&machine(s), &admin(), &broken)), Err(403));
        assert_eq!(status_of(run(&machine(s), &alice(), &broken)), Err(403));
    }
    let own = owned(Deployed, "admin");
    assert_eq!(status_of(run(&own, &admin(), &broken)), Ok(Broken));
}

#[test]
fn mark_broken_clears_the_owner_only_when_the_release_finishes() {
    let broken = Action::MarkBroken { comment: comment() };
    // Manual power cannot be queried: the release finishes at once.
    let mut manual = owned(Deployed, "alice");
    manual.power_type = "manual".into();
    let m = run(&manual, &alice(), &broken).unwrap();
    assert_eq!((m.status, m.owner.as_deref()), (Broken, None));
    // Power already off: same.
    let mut off = owned(Allocated, "alice");
    off.power_state = PowerState::Off;
    assert_eq!(run(&off, &alice(), &broken).unwrap().owner, None);
    // Power on: the owner stays.
    let mut on = owned(Allocated, "alice");
    on.power_state = PowerState::On;
    let m = run(&on, &alice(), &broken).unwrap();
    assert_eq!(m.owner.as_deref(), Some("alice"));
    assert!(m.agent_name.is_empty());
    // Not releasable (rescue mode): nothing is released, the owner stays.
    let mut rescue = owned(RescueMode, "alice");
    rescue.power_type = "manual".into();
    let m = run(&rescue, &alice(), &broken).unwrap();
    assert_eq!((m.status, m.owner.as_deref()), (Broken, Some("alice")));
}

#[test]
fn anyone_may_edit_a_machine_nobody_owns() {
    // auth/local.py `_can_edit`: owner is None or the caller. The status
    // rules answer instead of a 403.
    let release = Action::Release(ReleaseParams::default());
    let mut b = machine(Broken);
    b.power_type = "manual".into();
    assert_eq!(status_of(run(&b, &bob(), &release)), Ok(Ready));
    assert_eq!(status_of(run(&machine(Ready), &bob(), &release)), Ok(Ready));
    assert_eq!(status_of(run(&machine(New), &bob(), &release)), Err(409));
    let abort = Action::Abort { comment: comment() };
    assert_eq!(
        status_of(run(&machine(Deploying), &bob(), &abort)),
        Ok(Allocated)
    );
    let on = Action::PowerOn(PowerOnParams::default());
    assert_eq!(status_of(run(&machine(Deployed), &bob(), &on)), Err(409));
    let off = Action::PowerOff(PowerOffParams::default());
    assert_eq!(
        status_of(run(&machine(Deployed), &bob(), &off)),
        Ok(Deployed)
    );
    let lock = Action::Lock { comment: comment() };
    assert!(run(&machine(Deployed), &bob(), &lock).unwrap().locked);
    let mut locked = machine(Deployed);
    locked.locked = true;
    let unlock = Action::Unlock { comment: comment() };
    assert!(!run(&locked, &bob(), &unlock).unwrap().locked);
    // The lock still refuses edits.
    assert_eq!(status_of(run(&locked, &bob(), &off)), Err(403));
    let deploy = Action::Deploy(DeployParams::default());
    assert_eq!(
        status_of(run(&machine(Deployed), &bob(), &deploy)),
        Err(409)
    );
    assert_eq!(
        status_of(run(&machine(Allocated), &bob(), &deploy)),
        Ok(Deploying)
    );
    assert_eq!(
        status_of(run(&machine(Ready), &bob(), &Action::SetOwnerData)),
        Ok(Ready)
    );
    // Someone else's machine is still refused.
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &bob(), &off)),
        Err(403)
    );
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &bob(), &lock)),
        Err(403)
    );
}

#[test]
fn lock_refuses_every_edit_until_unlock() {
    let lock = Action::Lock { comment: comment() };
    let unlock = Action::Unlock { comment: comment() };
    let m = run(&owned(Deployed, "alice"), &alice(), &lock).unwrap();
    assert!(m.locked);
    assert_eq!(status_of(run(&m, &alice(), &lock)), Err(409));
    assert_eq!(
        status_of(run(&owned(Ready, "alice"), &alice(), &lock)),
        Err(409)
    );
    assert_eq!(status_of(run(&m, &bob(), &unlock)), Err(403));
    for a in [
        Action::Release(ReleaseParams::default()),
        Action::MarkBroken { comment: comment() },
        Action::PowerOff(PowerOffParams::default()),
        Action::PowerOn(PowerOnParams::default()),
        Action::Update,
        Action::Delete,
        Action::RescueMode { comment: comment() },
        Action::Test(TestParams::default()),
    ] {
        assert_eq!(status_of(run(&m, &admin(), &a)), Err(403), "{a:?}");
    }
    assert_eq!(
        status_of(run(&m, &bob(), &Action::QueryPower)),
        Ok(Deployed)
    );
    let u = run(&m, &alice(), &unlock).unwrap();
    assert!(!u.locked);
    assert_eq!(status_of(run(&u, &alice(), &unlock)), Err(409));
}

#[test]
fn rescue_mode_round_trip() {
    let enter = Action::RescueMode { comment: comment() };
    let exit = Action::ExitRescueMode { comment: comment() };
    let m = run(&machine(Ready), &admin(), &enter).unwrap();
    assert_eq!(
        (m.status, m.owner.as_deref(), m.previous_status),
        (EnteringRescueMode, Some("admin"), Ready)
    );
    let ok = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: false,
    };
    let mut r = m.clone();
    signals::handle(&m, &ok, T0, &cfg())
        .unwrap()
        .apply_to(&mut r);
    assert_eq!(r.status, RescueMode);
    let x = run(&r, &admin(), &exit).unwrap();
    assert_eq!(x.status, ExitingRescueMode);
    let back = signals::handle(
        &x,
        &Event::PowerObserved {
            state: PowerState::Off,
        },
        T0,
        &cfg(),
    )
    .unwrap();
    let mut b = x.clone();
    back.apply_to(&mut b);
    assert_eq!((b.status, b.owner.as_deref()), (Ready, None));

    // From DEPLOYED the owner stays and the machine is deployed when seen on.
    let d = run(&owned(Deployed, "alice"), &admin(), &enter).unwrap();
    let mut r = d.clone();
    signals::handle(&d, &ok, T0, &cfg())
        .unwrap()
        .apply_to(&mut r);
    let x = run(&r, &admin(), &exit).unwrap();
    let back = signals::handle(
        &x,
        &Event::PowerObserved {
            state: PowerState::On,
        },
        T0,
        &cfg(),
    )
    .unwrap();
    let mut b = x.clone();
    back.apply_to(&mut b);
    assert_eq!((b.status, b.owner.as_deref()), (Deployed, Some("alice")));
    assert_eq!(status_of(run(&machine(Ready), &alice(), &enter)), Err(403));
    assert_eq!(status_of(run(&machine(Ready), &admin(), &exit)), Err(409));
}

#[test]
fn power_actions() {
    let on = Action::PowerOn(PowerOnParams::default());
    assert_eq!(status_of(run(&machine(Ready), &admin(), &on)), Err(409));
    assert_eq!(
        status_of(run(&owned(Allocated, "alice"), &alice(), &on)),
        Ok(Deploying)
    );
    let out = apply(&owned(Deployed, "alice"), &alice(), &on, T0, &cfg()).unwrap();
    assert_eq!(
        (out.status, out.effects.clone()),
        (Deployed, vec![Effect::PowerOn])
    );
    let off = Action::PowerOff(PowerOffParams {
        stop_mode: StopMode::Soft,
        comment: comment(),
    });
    let out = apply(&owned(Deployed, "alice"), &alice(), &off, T0, &cfg()).unwrap();
    assert_eq!(out.effects, vec![Effect::PowerOff(StopMode::Soft)]);
    assert_eq!(
        status_of(run(&owned(Deployed, "alice"), &bob(), &off)),
        Err(403)
    );
}

#[test]
fn override_failed_testing_and_accept() {
    let o = Action::OverrideFailedTesting { comment: comment() };
    assert_eq!(
        status_of(run(&machine(FailedTesting), &admin(), &o)),
        Ok(Ready)
    );
    let mut deployed = machine(FailedTesting);
    deployed.osystem = "ubuntu".into();
    assert_eq!(status_of(run(&deployed, &admin(), &o)), Ok(Deployed));
    assert_eq!(status_of(run(&machine(Ready), &admin(), &o)), Err(409));
    assert_eq!(
        status_of(run(&machine(FailedTesting), &alice(), &o)),
        Err(403)
    );

    assert_eq!(
        status_of(run(&machine(New), &admin(), &Action::Accept)),
        Ok(Commissioning)
    );
    assert_eq!(
        status_of(run(&machine(Ready), &admin(), &Action::Accept)),
        Ok(Ready)
    );
    assert_eq!(
        status_of(run(&machine(Deployed), &admin(), &Action::Accept)),
        Err(409)
    );
    assert_eq!(
        status_of(run(&machine(New), &alice(), &Action::Accept)),
        Err(403)
    );
}

#[test]
fn create_new_or_already_deployed() {
    let m = create(machine(New), &admin(), true).unwrap();
    assert_eq!((m.status, m.owner.as_deref()), (Deployed, Some("admin")));
    assert_eq!(
        create(machine(New), &alice(), true)
            .unwrap_err()
            .http_status(),
        403
    );
    assert_eq!(create(machine(New), &alice(), false).unwrap().status, New);
    assert_eq!(
        create(machine(Ready), &alice(), false)
            .unwrap_err()
            .http_status(),
        409
    );
}

#[test]
fn signals_per_status() {
    let ok = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: false,
    };
    let failed = Event::Signal {
        status: SignalStatus::Failed,
        error: Some("lshw".into()),
        script_failed: false,
    };
    let mut enlisting = machine(Commissioning);
    enlisting.enlisting = true;
    assert_eq!(
        signals::handle(&enlisting, &ok, T0, &cfg()).unwrap().status,
        New
    );
    assert_eq!(
        signals::handle(&machine(Commissioning), &ok, T0, &cfg())
            .unwrap()
            .status,
        Ready
    );
    let f = signals::handle(&machine(Commissioning), &failed, T0, &cfg()).unwrap();
    assert_eq!(f.status, FailedCommissioning);
    assert!(
        f.effects
            .contains(&Effect::SetErrorDescription("lshw".into()))
    );
    let script_failed = Event::Signal {
        status: SignalStatus::Ok,
        error: None,
        script_failed: true,
    };
    assert_eq!(
        signals::handle(&machine(Commissioning), &script_failed, T0, &cfg())
            .unwrap()
            .status,
        FailedCommissioning
    );
    let start = Event::Signal {
        status: SignalStatus::Commissioning,
        error: None,
        script_failed: false,
    };
    assert_eq!(
        signals::handle(&machine(New), &start, T0, &cfg())
            .unwrap()
            .status,
        Commissioning
    );
    assert_eq!(
        signals::handle(&owned(Deploying, "a"), &failed, T0, &cfg())
            .unwrap()
            .status,
        FailedDeployment
    );
    assert_eq!(
        signals::handle(&owned(Deploying, "a"), &ok, T0, &cfg())
            .unwrap()
            .status,
        Deploying
    );
    assert_eq!(
        signals::handle(&machine(Ready), &ok, T0, &cfg())
            .unwrap()
            .status,
        Ready
    );
    assert_eq!(
        signals::handle(&owned(Allocated, "a"), &ok, T0, &cfg())
            .unwrap_err()
            .http_status(),
        409
    );
    assert_eq!(
        "BOGUS".parse::<SignalStatus>().unwrap_err().http_status(),
        400
    );

    // Webhook finish events.
    let fail = Event::Finish {
        name: "cmd-install".into(),
        result: EventResult::Fail,
        description: "curtin".into(),
    };
    assert_eq!(
        signals::handle(&owned(Deploying, "a"), &fail, T0, &cfg())
            .unwrap()
            .status,
        FailedDeployment
    );
    let final_ok = Event::Finish {
        name: "modules-final".into(),
        result: EventResult::Success,
        description: String::new(),
    };
    let out = signals::handle(&owned(Deploying, "a"), &final_ok, T0, &cfg()).unwrap();
    assert_eq!(out.status, Deploying);
    assert!(
        out.effects
            .contains(&Effect::WorkflowSignal("netboot-finished".into()))
    );
    let erased = signals::handle(&owned(DiskErasing, "a"), &final_ok, T0, &cfg()).unwrap();
    assert_eq!(
        (erased.status, erased.effects.contains(&Effect::ClearOwner)),
        (Ready, true)
    );
}

#[test]
fn deadlines_fail_operations_with_a_fake_clock() {
    let c = cfg();
    let m = run(
        &machine(Ready),
        &admin(),
        &Action::Commission(CommissionParams::default()),
    )
    .unwrap();
    let early = signals::handle(
        &m,
        &Event::DeadlineExpired,
        T0 + Duration::from_secs(1799),
        &c,
    )
    .unwrap();
    assert_eq!(early.status, Commissioning);
    let late = signals::handle(
        &m,
        &Event::DeadlineExpired,
        T0 + Duration::from_secs(1800),
        &c,
    )
    .unwrap();
    assert_eq!(late.status, FailedCommissioning);
    assert!(late.effects.contains(&Effect::SetErrorDescription(
        "Machine operation 'Commissioning' timed out after 30 minutes.".into()
    )));
    // A limit that is not whole minutes is named in seconds.
    let mut short = cfg();
    short.node_timeout = Duration::from_secs(90);
    let late = signals::handle(
        &m,
        &Event::DeadlineExpired,
        T0 + Duration::from_secs(1800),
        &short,
    )
    .unwrap();
    assert!(late.effects.contains(&Effect::SetErrorDescription(
        "Machine operation 'Commissioning' timed out after 90 seconds.".into()
    )));
    // Curtin progress pushes the deploy deadline out.
    let d = run(
        &owned(Allocated, "a"),
        &Actor::user("a"),
        &Action::Deploy(DeployParams::default()),
    )
    .unwrap();
    let later = T0 + Duration::from_secs(1500);
    let mut d2 = d.clone();
    signals::handle(
        &d,
        &Event::Progress {
            name: "cmd-install/stage-early".into(),
        },
        later,
        &c,
    )
    .unwrap()
    .apply_to(&mut d2);
    assert_eq!(d2.status_expires, Some(later + c.node_timeout));
    let out = signals::handle(
        &d2,
        &Event::DeadlineExpired,
        T0 + Duration::from_secs(1900),
        &c,
    )
    .unwrap();
    assert_eq!(out.status, Deploying);
    let out = signals::handle(&d2, &Event::DeadlineExpired, later + c.node_timeout, &c).unwrap();
    assert_eq!(out.status, FailedDeployment);
    // Releasing has 5 minutes.
    let mut r = owned(Releasing, "a");
    r.status_expires = c.deadline_for(Releasing, T0);
    assert_eq!(
        signals::handle(&r, &Event::DeadlineExpired, T0 + SHORT, &c)
            .unwrap()
            .status,
        FailedReleasing
    );
    // mark_failed: no-op on NEW and failed, 409 on others.
    assert_eq!(
        signals::mark_failed(&machine(New), "x").unwrap().status,
        New
    );
    assert_eq!(
        signals::mark_failed(&machine(FailedTesting), "x")
            .unwrap()
            .status,
        FailedTesting
    );
    assert_eq!(
        signals::mark_failed(&machine(Ready), "x")
            .unwrap_err()
            .http_status(),
        409
    );
}

const SHORT: Duration = Duration::from_secs(300);

// --- property tests ---------------------------------------------------------

fn any_status() -> impl Strategy<Value = NodeStatus> {
    (0usize..23).prop_map(|i| NodeStatus::ALL[i])
}

fn any_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![Just(admin()), Just(alice()), Just(bob())]
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        any::<bool>().prop_map(|s| Action::Commission(CommissionParams {
            skip_storage: s,
            ..Default::default()
        })),
        any::<bool>().prop_map(|d| Action::Test(TestParams {
            destructive: d,
            ..Default::default()
        })),
        Just(Action::Allocate(AllocateParams::default())),
        any::<bool>().prop_map(|e| Action::Deploy(DeployParams {
            ephemeral_deploy: e,
            ..Default::default()
        })),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(erase, quick, force)| {
            Action::Release(ReleaseParams {
                erase,
                quick_erase: quick,
                force,
                ..Default::default()
            })
        }),
        Just(Action::Abort { comment: None }),
        Just(Action::MarkBroken {
            comment: Some("x".into())
        }),
        Just(Action::MarkFixed { comment: None }),
        Just(Action::RescueMode { comment: None }),
        Just(Action::ExitRescueMode { comment: None }),
        Just(Action::Lock { comment: None }),
        Just(Action::Unlock { comment: None }),
        Just(Action::PowerOn(PowerOnParams::default())),
        Just(Action::PowerOff(PowerOffParams::default())),
        Just(Action::QueryPower),
        Just(Action::OverrideFailedTesting { comment: None }),
        Just(Action::Accept),
        Just(Action::Update),
        Just(Action::SetStorageLayout),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    let sig = prop_oneof![
        Just(SignalStatus::Ok),
        Just(SignalStatus::Failed),
        Just(SignalStatus::Working),
        Just(SignalStatus::Commissioning),
        Just(SignalStatus::Testing),
        Just(SignalStatus::Timedout),
    ];
    prop_oneof![
        (sig, any::<bool>()).prop_map(|(status, f)| Event::Signal {
            status,
            error: None,
            script_failed: f
        }),
        (
            prop_oneof![Just("modules-final"), Just("cmd-install")],
            any::<bool>()
        )
            .prop_map(|(n, ok)| Event::Finish {
                name: n.into(),
                result: if ok {
                    EventResult::Success
                } else {
                    EventResult::Fail
                },
                description: String::new(),
            }),
        Just(Event::Progress {
            name: "cmd-install/stage-late".into()
        }),
        Just(Event::UserDataFetched),
        prop_oneof![Just(PowerState::On), Just(PowerState::Off)]
            .prop_map(|state| Event::PowerObserved { state }),
        Just(Event::DeadlineExpired),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Act(Actor, Action),
    Report(Event),
    Wait(u64),
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any_actor(), any_action()).prop_map(|(a, x)| Step::Act(a, x)),
        3 => any_event().prop_map(Step::Report),
        1 => (0u64..4000).prop_map(Step::Wait),
    ]
}

fn start_machine() -> impl Strategy<Value = Machine> {
    (
        any_status(),
        prop_oneof![Just(None), Just(Some("alice")), Just(Some("bob"))],
        any::<bool>(),
        any::<bool>(),
        any_status(),
        prop_oneof![Just("ipmi"), Just("manual")],
    )
        .prop_map(
            |(status, owner, locked, commissioned, previous, pt)| Machine {
                status,
                previous_status: previous,
                // Only statuses MAAS holds for an owner start with one.
                owner: owner
                    .filter(|_| ALLOCATED_LIKE.contains(&status))
                    .map(str::to_owned),
                locked: locked && matches!(status, Deployed | Deploying),
                commissioned,
                power_type: pt.into(),
                ..Machine::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random actions and reports from any status never leave MAAS's table,
    /// never hand an owned machine to someone else, and never unlock a
    /// machine without `unlock`.
    #[test]
    fn random_walks_stay_legal(mut m in start_machine(), steps in prop::collection::vec(any_step(), 1..40)) {
        let c = cfg();
        let mut now = T0;
        for step in steps {
            let before = m.clone();
            let (out, is_unlock, is_allocation) = match &step {
                Step::Wait(s) => { now = now + Duration::from_secs(*s); continue; }
                Step::Act(who, a) => {
                    let r = apply(&m, who, a, now, &c);
                    if let Err(e) = &r {
                        prop_assert!(matches!(e.http_status(), 400 | 403 | 409));
                    }
                    (r.ok(), matches!(a, Action::Unlock { .. }), matches!(a, Action::Allocate(_) | Action::Deploy(_) | Action::RescueMode { .. }))
                }
                Step::Report(ev) => (signals::handle(&m, ev, now, &c).ok(), false, false),
            };
            let Some(out) = out else { continue };
            for (from, to) in out.hops(before.status) {
                prop_assert!(lifecycle::can_transition(from, to), "{:?} -> {:?} via {:?}", from, to, step);
            }
            out.apply_to(&mut m);
            prop_assert_eq!(m.status, out.status);
            // One owner at a time: an owner is only ever replaced by nobody,
            // and only allocation-type actions give an unowned machine one.
            if let (Some(a), Some(b)) = (&before.owner, &m.owner) {
                prop_assert_eq!(a, b, "owner changed hands via {:?}", step);
            }
            if before.owner.is_none() && m.owner.is_some() {
                prop_assert!(is_allocation, "owner appeared via {:?}", step);
            }
            if before.locked && !m.locked {
                prop_assert!(is_unlock, "unlocked via {:?}", step);
            }
            if before.locked {
                // A locked machine's status only changes through reports.
                if let Step::Act(..) = step { prop_assert_eq!(m.status, before.status); }
            }
            // Machines outside the allocated-like set that MAAS frees have no owner.
            if matches!(m.status, Ready | New | Commissioning | FailedCommissioning) && before.status != m.status {
                prop_assert!(m.owner.is_none(), "{:?} with owner after {:?}", m.status, step);
            }
        }
    }

    #[test]
    fn refusals_never_change_anything(m in start_machine(), who in any_actor(), a in any_action()) {
        if let Err(e) = apply(&m, &who, &a, T0, &cfg()) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
