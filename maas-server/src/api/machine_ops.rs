//! The machine life-cycle ops. `maas_core::actions::apply` decides (status,
//! permission, lock, parameters); this module turns request parameters into
//! an [`Action`], persists the outcome with an event in the request's
//! transaction, and queues the I/O effects (power) for the power worker.

use base64::Engine;
use maas_core::actions::{
    AllocateParams, CommissionParams, DeployParams, PowerOffParams, PowerOnParams, ReleaseParams,
    StopMode, TestParams,
};
use maas_core::constraints::{self, Constraints, ConstraintsByType};
use maas_core::{
    Action, Actor, Effect, LifecycleConfig, Machine, NodeStatus, Refusal, SystemId, Timestamp,
};
use serde_json::{Value, json};

use super::json::kinds;
use super::machines::{event, render};
use super::{ApiError, Call, ErrorBody, Reply};
use crate::db::machines::{MachineQuery, MachineRecord, StoredMachine};
use crate::db::users::User;
use crate::db::{DbConn, machines, objects};

fn actor(u: &User) -> Actor {
    Actor {
        username: u.username.clone(),
        is_admin: u.is_superuser,
    }
}

/// MAAS's answer for a refusal: 400 field dict, 403 or 409 text.
pub fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::BadRequest { field, message } => ApiError::field(&field, message),
        Refusal::Forbidden(m) => ApiError::forbidden(m),
        Refusal::Conflict(m) => ApiError::conflict(m),
    }
}

/// The life-cycle settings from the `maas` configuration.
pub fn lifecycle_config(conn: &mut DbConn) -> Result<LifecycleConfig, ApiError> {
    use super::resources::config_str;
    let mut cfg = LifecycleConfig::default();
    if let Ok(n) = config_str(conn, "node_timeout")?.parse::<u64>()
        && n > 0
    {
        cfg.node_timeout = std::time::Duration::from_secs(n * 60);
    }
    // maasd's seconds override (tests) wins, so the life-cycle's own
    // timeout texts name the limit that really applied.
    if let Some(secs) = crate::workflow::node_timeout_secs(conn).map_err(ApiError::from)? {
        cfg.node_timeout = std::time::Duration::from_secs(secs);
    }
    let b = |s: String| matches!(s.as_str(), "true" | "True" | "1");
    cfg.enable_disk_erasing_on_release = b(config_str(conn, "enable_disk_erasing_on_release")?);
    cfg.disk_erase_with_secure_erase = b(config_str(conn, "disk_erase_with_secure_erase")?);
    cfg.disk_erase_with_quick_erase = b(config_str(conn, "disk_erase_with_quick_erase")?);
    let os = config_str(conn, "default_osystem")?;
    if !os.is_empty() {
        cfg.default_osystem = os;
    }
    let series = config_str(conn, "default_distro_series")?;
    if !series.is_empty() {
        cfg.default_distro_series = series;
    }
    Ok(cfg)
}

/// Admin edits (PUT, DELETE, restore ops): MAAS's `Update`/`Delete`
/// permission, which also refuses locked machines.
pub fn authorize_admin_edit(m: &Machine, u: &User) -> Result<(), ApiError> {
    maas_core::actions::authorize(m, &actor(u), &Action::Update).map_err(refusal)
}

/// Owner edits (owner data).
pub fn authorize_owner_edit(m: &Machine, u: &User) -> Result<(), ApiError> {
    maas_core::actions::authorize(m, &actor(u), &Action::SetOwnerData).map_err(refusal)
}

/// Applies the creation rules (`deployed=true` → DEPLOYED owned by the
/// creator).
pub fn on_create(
    _c: &mut Call<'_>,
    user: &User,
    record: &mut MachineRecord,
    deployed: bool,
) -> Result<(), ApiError> {
    let m = std::mem::take(&mut record.machine);
    record.machine = maas_core::actions::create(m, &actor(user), deployed).map_err(refusal)?;
    Ok(())
}

/// Starts commissioning of a machine just created by an admin.
pub fn commission_new(
    c: &mut Call<'_>,
    user: &User,
    sm: &mut StoredMachine,
) -> Result<(), ApiError> {
    let action = Action::Commission(CommissionParams::default());
    run(c, user, sm, &action).map(|_| ())
}

/// Applies `action` to the stored machine and persists the outcome with
/// [`commit_outcome`]. A concurrent write to the same machine gives
/// `Ok(None)` so callers can retry.
fn try_run(
    c: &mut Call<'_>,
    user: &User,
    sm: &mut StoredMachine,
    action: &Action,
) -> Result<Option<maas_core::Outcome>, ApiError> {
    let cfg = lifecycle_config(c.conn)?;
    let out = maas_core::apply(
        &sm.record.machine,
        &actor(user),
        action,
        Timestamp(c.now_ms),
        &cfg,
    )
    .map_err(refusal)?;
    commit_outcome(c.conn, &user.username, sm, out, c.now_ms)
}

/// Persists a life-cycle outcome (from `maas_core::apply` or
/// `maas_core::signals::handle`) for the machine: applies its field effects,
/// queues the I/O ones, writes the machine (version-checked) and one event
/// by `actor` (a username; empty for the machine itself or the system).
///
/// The REST API's actions, the metadata API's signals and the workflow
/// runner's observations (power results, deadlines) all go through here so
/// an outcome is handled the same whoever caused it. Returns
/// `Ok(None)` without writing anything when the machine was changed
/// concurrently since it was read (callers retry or answer 409).
pub fn commit_outcome(
    conn: &mut DbConn,
    actor: &str,
    sm: &mut StoredMachine,
    out: maas_core::Outcome,
    now_ms: i64,
) -> Result<Option<maas_core::Outcome>, ApiError> {
    let before = sm.record.machine.status;
    out.apply_to(&mut sm.record.machine);
    for e in &out.effects {
        match e {
            Effect::ClearOwnerData => sm.record.extra.owner_data.clear(),
            Effect::SetUserData(d) => {
                sm.record.extra.user_data = d
                    .as_ref()
                    .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                    .unwrap_or_default();
            }
            Effect::ApplyDefaultStorageLayout => apply_default_layout(sm),
            Effect::RunScripts(maas_core::actions::Scripts::Erase(mode)) => {
                sm.record.extra.erase_mode = Some(*mode);
            }
            _ => {}
        }
    }
    // Entering a failure status: the reason is what users see (status
    // message, an ERROR event), whoever reported it.
    let failed = sm.record.machine.status.is_failed() && !before.is_failed();
    sm.record.extra.status_message = if failed {
        sm.record.machine.error_description.clone()
    } else {
        out.event.clone()
    };
    crate::workflow::prepare(conn, &mut sm.record.machine, &out, now_ms)?;
    if out.effects.contains(&Effect::DeleteMachine) {
        machines::delete(conn, &sm.record.machine.system_id)?;
    } else if !machines::update(conn, sm, now_ms)? {
        return Ok(None);
    } else {
        sm.version += 1;
    }
    // Workflow rows and power jobs (the runner carries them out), in this
    // same transaction, once the machine's write won.
    crate::workflow::record(conn, &sm.record.machine, &out, now_ms)?;
    // Entering commissioning, testing or deployment is a new run: its
    // script results go to a fresh set.
    crate::metadata::results::begin_runs_for(
        conn,
        sm.record.machine.system_id.as_str(),
        before,
        sm.record.machine.status,
        now_ms,
    )?;
    let m = &sm.record.machine;
    let desc = if before == m.status {
        out.event.clone()
    } else {
        format!("{} ({} -> {})", out.event, before.label(), m.status.label())
    };
    let level = if failed { "ERROR" } else { "INFO" };
    event(conn, m, actor, level, m.status.label(), &desc, now_ms)?;
    Ok(Some(out))
}

/// MAAS applies the default layout (flat) after commissioning; a machine
/// without a usable boot disk simply keeps no layout (as MAAS logs and
/// carries on).
fn apply_default_layout(sm: &mut StoredMachine) {
    use maas_core::storage::layout::{LayoutRequest, StorageLayout, apply_layout};
    if sm.record.machine.boot_disk().is_none() {
        return;
    }
    let req = LayoutRequest::new(StorageLayout::Flat);
    match apply_layout(&mut sm.record.machine, &req) {
        Ok(()) => sm.record.extra.storage_layout = "flat".into(),
        Err(e) => tracing::warn!(
            system_id = %sm.record.machine.system_id,
            error = %e,
            "default storage layout not applied"
        ),
    }
}

/// The 409 of a write that lost a race with another request.
pub const CHANGED_CONCURRENTLY: &str = "The machine was changed by another request; retry.";

fn run(
    c: &mut Call<'_>,
    user: &User,
    sm: &mut StoredMachine,
    action: &Action,
) -> Result<maas_core::Outcome, ApiError> {
    try_run(c, user, sm, action)?.ok_or_else(|| ApiError::conflict(CHANGED_CONCURRENTLY))
}

/// MAAS checks commission and test through forms that refuse a status
/// their action does not list with a 400 validation error, not a 409.
fn as_form_error(e: ApiError, display: &str) -> ApiError {
    match &e.body {
        ErrorBody::Text(t) if e.status == 409 && t != CHANGED_CONCURRENTLY => {
            ApiError::bad_request(format!(
                "{display} is not available because of the current state of the node."
            ))
        }
        _ => e,
    }
}

fn load(c: &mut Call<'_>) -> Result<(User, StoredMachine), ApiError> {
    let user = c.user()?.clone();
    let sid: SystemId = c
        .path_param(0)
        .parse()
        .map_err(|_| ApiError::not_found("No Machine matches the given query."))?;
    let sm = machines::get(c.conn, &sid)?
        .ok_or_else(|| ApiError::not_found("No Machine matches the given query."))?;
    let m = &sm.record.machine;
    if !(user.is_superuser || m.owner.is_none() || m.owner.as_deref() == Some(&user.username)) {
        // MAAS's get_node_or_404: a machine the caller may not view is 403.
        return Err(super::machines::not_viewable(m));
    }
    Ok((user, sm))
}

fn comment(c: &Call<'_>) -> Option<String> {
    c.params.get_nonempty("comment")
}

/// Runs a simple action on the path's machine and returns its JSON.
fn simple(c: &mut Call<'_>, action: Action) -> Result<Reply, ApiError> {
    let (user, mut sm) = load(c)?;
    run(c, &user, &mut sm, &action)?;
    Ok(Reply::Json(render(c, &sm)?))
}

fn csv(c: &Call<'_>, key: &str) -> Vec<String> {
    c.params.get_list(key)
}

/// `POST machines/{id}/?op=deploy`.
pub fn deploy(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let p = c.params;
    let user_data = match p.get_nonempty("user_data") {
        None => None,
        Some(s) => {
            let cleaned: String = s.chars().filter(|ch| !ch.is_whitespace()).collect();
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(cleaned.as_bytes())
                    .map_err(|_| {
                        ApiError::field("user_data", "User data must be base64-encoded.")
                    })?,
            )
        }
    };
    let action = Action::Deploy(DeployParams {
        distro_series: p.get("distro_series").unwrap_or_default(),
        hwe_kernel: p.get_nonempty("hwe_kernel"),
        user_data,
        ephemeral_deploy: p.bool_or("ephemeral_deploy", false)?,
        install_kvm: p.bool_or("install_kvm", false)?,
        install_rackd: p.bool_or("install_rackd", false)?,
        register_vmhost: p.bool_or("register_vmhost", false)?,
        enable_hw_sync: p.bool_or("enable_hw_sync", false)?,
        agent_name: p.get("agent_name").unwrap_or_default(),
        comment: comment(c),
    });
    let (user, mut sm) = load(c)?;
    sm.record.extra.enable_hw_sync = p.bool_or("enable_hw_sync", false)?;
    sm.record.extra.enable_kernel_crash_dump = p.bool_or("enable_kernel_crash_dump", false)?;
    run(c, &user, &mut sm, &action)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// The release scripts there are: MAAS's built-in `wipe-disks` and the
/// tags it carries (`scripts` takes names or tags).
const RELEASE_SCRIPT_NAMES: &[&str] = &["wipe-disks", "wipe", "disk", "storage"];

/// Checks a release's `scripts` (names or tags, repeated or
/// comma-separated) as MAAS's `ReleaseForm` does; returns whether they
/// select `wipe-disks`.
fn release_scripts_wipe(scripts: &[String]) -> Result<bool, ApiError> {
    for s in scripts {
        if !RELEASE_SCRIPT_NAMES.contains(&s.as_str()) {
            return Err(ApiError::field(
                "scripts",
                format!("Select a valid choice. {s} is not one of the available choices."),
            ));
        }
    }
    Ok(!scripts.is_empty())
}

/// `op=release` parameters as MAAS's `ReleaseForm`: `erase`,
/// `secure_erase`, `quick_erase`, `force`, `comment`, and the `scripts`
/// form, where `wipe-disks` (or one of its tags) erases and its parameters
/// come as `wipe-disks_secure_erase` / `wipe-disks_quick_erase`. Any erase
/// flag runs `wipe-disks`.
fn release_params(c: &Call<'_>) -> Result<ReleaseParams, ApiError> {
    let p = c.params;
    let wipe = release_scripts_wipe(&p.get_list("scripts"))?;
    Ok(ReleaseParams {
        erase: p.bool_or("erase", false)? || wipe,
        secure_erase: p.bool_or("secure_erase", false)?
            || p.bool_or("wipe-disks_secure_erase", false)?,
        quick_erase: p.bool_or("quick_erase", false)?
            || p.bool_or("wipe-disks_quick_erase", false)?,
        force: p.bool_or("force", false)?,
        comment: comment(c),
    })
}

/// `POST machines/{id}/?op=release`.
pub fn release(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::Release(release_params(c)?);
    simple(c, a)
}

/// `POST machines/?op=release` with `machines` ids: all or nothing.
pub fn release_many(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let action = Action::Release(release_params(c)?);
    let ids = c.params.get_list("machines");
    let mut unknown = Vec::new();
    let mut found = Vec::new();
    for id in &ids {
        match id
            .parse::<SystemId>()
            .ok()
            .map(|s| machines::get(c.conn, &s))
            .transpose()?
        {
            Some(Some(sm)) => found.push(sm),
            _ => unknown.push(id.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Unknown machine(s): {}.",
            unknown.join(", ")
        )));
    }
    // MAAS checks the edit permission on every machine first: 403 naming
    // those the caller may not release.
    let denied: Vec<String> = found
        .iter()
        .filter(|sm| {
            maas_core::actions::authorize(&sm.record.machine, &actor(&user), &action).is_err()
        })
        .map(|sm| sm.record.machine.system_id.to_string())
        .collect();
    if !denied.is_empty() {
        return Err(ApiError::forbidden(format!(
            "You don't have the required permission to release the following machine(s): {}.",
            denied.join(", ")
        )));
    }
    let mut released = Vec::new();
    let mut refused = Vec::new();
    for mut sm in found {
        match try_run(c, &user, &mut sm, &action) {
            Ok(Some(_)) => released.push(sm.record.machine.system_id.to_string()),
            Ok(None) => refused.push(format!(
                "{}: changed concurrently",
                sm.record.machine.system_id
            )),
            Err(e) => refused.push(format!(
                "{}: {}",
                sm.record.machine.system_id,
                match e.body {
                    ErrorBody::Text(t) => t,
                    ErrorBody::Fields(v) => v.to_string(),
                }
            )),
        }
    }
    if !refused.is_empty() {
        // The transaction rolls back: nothing is released.
        return Err(ApiError::conflict(format!(
            "Machine(s) cannot be released in their current state: {}",
            refused.join("; ")
        )));
    }
    Ok(Reply::Json(json!(released)))
}

/// `POST machines/?op=allocate`: the cheapest Ready machine matching the
/// constraints becomes the caller's; 409 when none does.
pub fn allocate(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let pairs = c.params.pairs();
    let cons = Constraints::parse(&pairs).map_err(constraint_error)?;
    let tags: Vec<String> = objects::list(c.conn, kinds::TAG)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    let zones: Vec<String> = objects::list(c.conn, kinds::ZONE)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    let pools: Vec<String> = objects::list(c.conn, kinds::POOL)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    cons.validate_names(&as_refs(&tags), &as_refs(&zones), &as_refs(&pools))
        .map_err(constraint_error)?;
    // MAAS refuses an architecture it does not know (400) rather than
    // finding no machine for it (409).
    for a in c.params.get_list("arch") {
        let base = a.split('/').next().unwrap_or_default();
        if !super::machines::ARCHITECTURES.contains(&base) {
            return Err(ApiError::field(
                "arch",
                format!("Architecture not recognised: {a}."),
            ));
        }
    }
    let dry_run = c.params.bool_or("dry_run", false)?;
    let verbose = c.params.bool_or("verbose", false)?;
    let action = Action::Allocate(AllocateParams {
        agent_name: c.params.get("agent_name").unwrap_or_default(),
        comment: comment(c),
    });
    // Another request may take the chosen machine between our read and
    // write (PostgreSQL, several pools); the versioned write notices and we
    // pick again from a fresh list.
    let prefilter = allocation_prefilter(&cons);
    for _ in 0..50 {
        let Some((mut sm, by_type)) = cheapest_match(c.conn, &cons, &prefilter)? else {
            return Err(ApiError::conflict(format!(
                "No available machine matches constraints: {}",
                describe_constraints(c)
            )));
        };
        let sid = sm.record.machine.system_id.clone();
        let mut cbt = serde_json::to_value(&by_type).unwrap_or(Value::Null);
        if verbose && let Some(o) = cbt.as_object_mut() {
            let extra: Vec<(String, Value)> = o
                .iter()
                .map(|(k, v)| (format!("verbose_{k}"), json!({ sid.as_str(): v })))
                .collect();
            o.extend(extra);
        }
        if dry_run {
            let mut j = render(c, &sm)?;
            j["constraints_by_type"] = cbt;
            return Ok(Reply::Json(j));
        }
        if try_run(c, &user, &mut sm, &action)?.is_some() {
            let mut j = render(c, &sm)?;
            j["constraints_by_type"] = cbt;
            return Ok(Reply::Json(j));
        }
    }
    Err(ApiError::conflict("Allocation contention too high; retry."))
}

/// How many allocation candidates are decoded at a time.
const CANDIDATE_PAGE: i64 = 64;

/// The part of `cons` SQL can answer, as a list query: a superset of the
/// machines `Constraints::matches` accepts (the core still checks each).
fn allocation_prefilter(cons: &Constraints) -> MachineQuery {
    // Counts compare as integers: `n as f64 >= c` is `n >= ceil(c)`.
    let at_least = |v: f64| v.ceil() as i64;
    let (hostnames, domains) = match cons.name.as_deref().map(|n| n.split_once('.')) {
        None => (vec![], vec![]),
        Some(Some((host, domain))) => (vec![host.to_owned()], vec![domain.to_owned()]),
        Some(None) => (cons.name.iter().cloned().collect(), vec![]),
    };
    MachineQuery {
        system_ids: cons.system_id.iter().cloned().collect(),
        hostnames,
        domains,
        arches: cons.arch.clone(),
        min_cpu_count: cons.cpu_count.map(at_least),
        min_memory_mib: cons.mem.map(at_least),
        tags: cons.tags.clone(),
        not_tags: cons.not_tags.clone(),
        zones: cons.zone.iter().cloned().collect(),
        not_zones: cons.not_in_zone.clone(),
        pools: cons.pool.iter().cloned().collect(),
        not_pools: cons.not_in_pool.clone(),
        ..MachineQuery::default()
    }
}

/// The machine `constraints::allocate` would pick among all Ready, unowned
/// machines, found by walking the SQL-filtered candidates cheapest first a
/// page at a time: the first page holding a match holds the cheapest match,
/// so only the machines up to it are decoded.
fn cheapest_match(
    conn: &mut DbConn,
    cons: &Constraints,
    prefilter: &MachineQuery,
) -> Result<Option<(StoredMachine, ConstraintsByType)>, ApiError> {
    let mut after = None;
    loop {
        let page = machines::allocation_candidates(conn, prefilter, after, CANDIDATE_PAGE)?;
        let found = constraints::allocate(cons, page.iter().map(|s| &s.record.machine))
            .map(|(m, by_type)| (m.system_id.clone(), by_type));
        if let Some((sid, by_type)) = found {
            return Ok(page
                .into_iter()
                .find(|s| s.record.machine.system_id == sid)
                .map(|sm| (sm, by_type)));
        }
        if (page.len() as i64) < CANDIDATE_PAGE {
            return Ok(None);
        }
        after = page.last().map(machines::allocation_key);
    }
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn describe_constraints(c: &Call<'_>) -> String {
    c.params
        .pairs()
        .into_iter()
        .filter(|(k, _)| !constraints::NON_CONSTRAINT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn constraint_error(e: constraints::ConstraintError) -> ApiError {
    ApiError {
        status: 400,
        body: ErrorBody::Fields(serde_json::to_value(&e.errors).unwrap_or(Value::Null)),
    }
}

/// `POST machines/{id}/?op=commission`.
pub fn commission(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let p = c.params;
    let a = Action::Commission(CommissionParams {
        enable_ssh: p.bool_or("enable_ssh", false)?,
        skip_bmc_config: p.bool_or("skip_bmc_config", false)?,
        skip_networking: p.bool_or("skip_networking", false)?,
        skip_storage: p.bool_or("skip_storage", false)?,
        commissioning_scripts: csv(c, "commissioning_scripts"),
        testing_scripts: csv(c, "testing_scripts"),
        comment: comment(c),
    });
    simple(c, a).map_err(|e| as_form_error(e, "Commission"))
}

/// `POST machines/{id}/?op=test`.
pub fn test(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let p = c.params;
    let a = Action::Test(TestParams {
        enable_ssh: p.bool_or("enable_ssh", false)?,
        testing_scripts: csv(c, "testing_scripts"),
        destructive: false,
        comment: comment(c),
    });
    simple(c, a).map_err(|e| as_form_error(e, "Test"))
}

/// `POST machines/{id}/?op=abort`.
pub fn abort(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::Abort {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=mark_broken`.
pub fn mark_broken(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::MarkBroken {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=mark_fixed`.
pub fn mark_fixed(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::MarkFixed {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=rescue_mode`.
pub fn rescue_mode(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::RescueMode {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=exit_rescue_mode`.
pub fn exit_rescue_mode(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::ExitRescueMode {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=lock`.
pub fn lock(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::Lock {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=unlock`.
pub fn unlock(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::Unlock {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=power_on`.
pub fn power_on(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user_data = c
        .params
        .get_nonempty("user_data")
        .map(|s| base64::engine::general_purpose::STANDARD.decode(s.trim().as_bytes()))
        .transpose()
        .map_err(|_| ApiError::field("user_data", "User data must be base64-encoded."))?;
    let a = Action::PowerOn(PowerOnParams {
        user_data,
        comment: comment(c),
    });
    simple(c, a)
}

/// `POST machines/{id}/?op=power_off`.
pub fn power_off(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let stop_mode = match c.params.get_nonempty("stop_mode").as_deref() {
        None | Some("hard") => StopMode::Hard,
        Some("soft") => StopMode::Soft,
        Some(o) => {
            return Err(ApiError::field(
                "stop_mode",
                format!("Select a valid choice. {o} is not one of the available choices."),
            ));
        }
    };
    let a = Action::PowerOff(PowerOffParams {
        stop_mode,
        comment: comment(c),
    });
    simple(c, a)
}

/// `GET machines/{id}/?op=query_power_state`: the last known state (the
/// power worker refreshes it; a query is queued).
pub fn query_power_state(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let (user, sm) = load(c)?;
    maas_core::actions::authorize(&sm.record.machine, &actor(&user), &Action::QueryPower)
        .map_err(refusal)?;
    Ok(Reply::Json(
        json!({"state": sm.record.machine.power_state.as_str()}),
    ))
}

/// `POST machines/{id}/?op=override_failed_testing`.
pub fn override_failed_testing(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let a = Action::OverrideFailedTesting {
        comment: comment(c),
    };
    simple(c, a)
}

/// `POST machines/{id}/?op=set_storage_layout`: on a Ready machine,
/// replaces its storage configuration with the layout built by
/// `maas_core::storage::layout` (flat, lvm, bcache, blank, custom) from
/// MAAS's parameters; a parameter the layout cannot honour is a 400 naming
/// it.
pub fn set_storage_layout(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    use maas_core::storage::layout::{LayoutRequest, StorageLayout, apply_layout};
    // MAAS's order: the machine and permission, its status, then the form
    // (`StorageLayoutForm(required=True)`).
    let (user, mut sm) = load(c)?;
    maas_core::actions::authorize(&sm.record.machine, &actor(&user), &Action::SetStorageLayout)
        .map_err(refusal)?;
    if sm.record.machine.status != NodeStatus::Ready {
        return Err(ApiError::conflict(
            "Cannot change the storage layout on a machine that is not Ready.",
        ));
    }
    let layout = c
        .params
        .get_nonempty("storage_layout")
        .ok_or_else(|| ApiError::field("storage_layout", "This field is required."))?;
    let kind: StorageLayout = match layout.as_str() {
        "vmfs6" | "vmfs7" => {
            return Err(ApiError::field(
                "storage_layout",
                format!("The {layout} layout (VMware ESXi) is not supported by this server."),
            ));
        }
        other => other.parse().map_err(|_| {
            ApiError::field(
                "storage_layout",
                format!("Select a valid choice. {layout} is not one of the available choices."),
            )
        })?,
    };
    let size = |key: &str| -> Result<Option<maas_core::storage::Size>, ApiError> {
        c.params
            .get_nonempty(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::field(key, format!("'{v}' is not a valid size.")))
            })
            .transpose()
    };
    let device = |key: &str| -> Result<Option<u64>, ApiError> {
        c.params
            .get_nonempty(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::field(key, format!("'{v}' is not a valid block device id."))
                })
            })
            .transpose()
    };
    let req = LayoutRequest {
        layout: kind,
        boot_size: size("boot_size")?,
        root_size: size("root_size")?,
        root_device: device("root_device")?,
        vg_name: c.params.get_nonempty("vg_name"),
        lv_name: c.params.get_nonempty("lv_name"),
        lv_size: size("lv_size")?,
        cache_device: device("cache_device")?,
        cache_mode: c
            .params
            .get_nonempty("cache_mode")
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::field(
                        "cache_mode",
                        format!("Select a valid choice. {v} is not one of the available choices."),
                    )
                })
            })
            .transpose()?,
        cache_size: size("cache_size")?,
        cache_no_part: c.params.bool_or("cache_no_part", false)?,
        // The API refuses what the default-layout path would fall back from.
        allow_fallback: false,
    };
    if sm.record.machine.boot_disk().is_none() && kind != StorageLayout::Blank {
        return Err(ApiError::bad_request(
            "Machine is missing a boot disk; no storage layout can be applied.",
        ));
    }
    apply_layout(&mut sm.record.machine, &req).map_err(|e| match e {
        maas_core::Error::LayoutParam { param, reason, .. } => ApiError::field(param, reason),
        other => ApiError::bad_request(other.to_string()),
    })?;
    sm.record.extra.storage_layout = layout;
    super::machines::save(c, &mut sm)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// `POST machines/?op=accept` with `machines` ids (admin).
pub fn accept(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.admin()?.clone();
    let ids = c.params.get_list("machines");
    let mut out = Vec::new();
    for id in ids {
        let sid: SystemId = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("Unknown machine(s): {id}.")))?;
        let mut sm = machines::get(c.conn, &sid)?
            .ok_or_else(|| ApiError::bad_request(format!("Unknown machine(s): {id}.")))?;
        let m = &sm.record.machine;
        // As MAAS: the admin permission excludes locked machines (403);
        // Ready and Commissioning are already accepted; anything else 409.
        if m.locked {
            return Err(ApiError::forbidden(format!(
                "You don't have the required permission to accept the following machine(s): {id}."
            )));
        }
        match m.status {
            NodeStatus::New => {
                run(c, &user, &mut sm, &Action::Accept)?;
                out.push(render(c, &sm)?);
            }
            NodeStatus::Ready | NodeStatus::Commissioning => {}
            other => {
                return Err(ApiError::conflict(format!(
                    "Cannot accept node enlistment: node {id} is in state {}.",
                    other.label()
                )));
            }
        }
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST machines/?op=accept` without credentials: MAAS's anonymous
/// handler answers 401.
pub fn anon_accept(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(ApiError::unauthorized(
        "You must be logged in to accept machines.",
    ))
}

/// `POST machines/?op=accept_all` (admin).
pub fn accept_all(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.admin()?.clone();
    let mut out = Vec::new();
    for mut sm in machines::list(c.conn)? {
        if sm.record.machine.status == NodeStatus::New {
            run(c, &user, &mut sm, &Action::Accept)?;
            out.push(render(c, &sm)?);
        }
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST machines/?op=clone`: `source`, `destinations`, `storage`,
/// `interfaces`; 204 on success. Not an admin method in MAAS: forms/clone.py
/// limits the destination choices to machines the caller may administer,
/// so a non-admin's destinations are invalid choices (400), not a 403.
pub fn clone(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let src_id = c
        .params
        .get_nonempty("source")
        .ok_or_else(|| ApiError::field("source", "This field is required."))?;
    let src = src_id
        .parse::<SystemId>()
        .ok()
        .map(|s| machines::get(c.conn, &s))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::field("source", format!("Machine {src_id} is not found.")))?;
    let mut dests = Vec::new();
    for (nth, id) in c.params.get_list("destinations").into_iter().enumerate() {
        if !user.is_superuser {
            return Err(ApiError::field(
                "destinations",
                format!(
                    "Machine {nth} is invalid: Select a valid choice. {id} is not one of the available choices."
                ),
            ));
        }
        let sm = id
            .parse::<SystemId>()
            .ok()
            .map(|s| machines::get(c.conn, &s))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                ApiError::field("destinations", format!("Machine {id} is not found."))
            })?;
        dests.push(sm);
    }
    if dests.is_empty() {
        return Err(ApiError::field("destinations", "This field is required."));
    }
    let opts = maas_core::clone::CloneOptions {
        storage: c.params.bool_or("storage", false)?,
        interfaces: c.params.bool_or("interfaces", false)?,
    };
    let refs: Vec<&Machine> = dests.iter().map(|d| &d.record.machine).collect();
    let plans = maas_core::clone::plan(&src.record.machine, &refs, opts).map_err(|e| ApiError {
        status: 400,
        body: ErrorBody::Fields(serde_json::to_value(&e).unwrap_or(Value::Null)),
    })?;
    let s = &src.record.machine;
    for (mut d, plan) in dests.into_iter().zip(plans) {
        apply_clone(s, &mut d.record.machine, &plan);
        super::machines::save(c, &mut d)?;
        event(
            c.conn,
            &d.record.machine,
            &user.username,
            "INFO",
            "Cloned",
            &format!("Configuration cloned from {}", s.system_id),
            c.now_ms,
        )?;
    }
    Ok(Reply::NoContent)
}

/// Copies the mapped storage and interface configuration onto `d`.
fn apply_clone(s: &Machine, d: &mut Machine, plan: &maas_core::clone::ClonePlan) {
    for (sid, did) in &plan.storage {
        if let (Some(sd), Some(dd)) = (
            s.block_devices.iter().find(|b| b.id == *sid),
            d.block_devices.iter_mut().find(|b| b.id == *did),
        ) {
            dd.tags = sd.tags.clone();
        }
    }
    for (name, did) in &plan.interfaces {
        if let (Some(si), Some(di)) = (
            s.interfaces.iter().find(|i| &i.name == name),
            d.interfaces.iter_mut().find(|i| i.id == *did),
        ) {
            di.vlan = si.vlan.clone();
            di.links = si
                .links
                .iter()
                .map(|l| maas_core::hardware::Link {
                    ip: None,
                    ..l.clone()
                })
                .collect();
            di.tags = si.tags.clone();
            di.mtu = si.mtu;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_scripts_take_wipe_disks_by_name_or_tag_and_refuse_others() {
        assert!(!release_scripts_wipe(&[]).expect("no scripts"));
        for ok in ["wipe-disks", "wipe", "disk", "storage"] {
            assert!(release_scripts_wipe(&[ok.to_owned()]).expect(ok), "{ok}");
        }
        let e = release_scripts_wipe(&["wipe-disks".into(), "shred".into()])
            .expect_err("unknown script");
        assert_eq!(e.status, 400);
        let ErrorBody::Fields(v) = e.body else {
            panic!("field error expected")
        };
        assert_eq!(
            v["scripts"][0],
            "Select a valid choice. shred is not one of the available choices."
        );
    }

    #[test]
    fn the_allocation_prefilter_is_what_sql_can_answer() {
        let pairs: Vec<(String, String)> = [
            ("name", "node1.maas"),
            ("cpu_count", "2.5"),
            ("mem", "1024"),
            ("tags", "gpu,fast"),
            ("not_tags", "broken"),
            ("zone", "z1"),
            ("not_in_pool", "p9"),
            ("arch", "amd64"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let cons = Constraints::parse(&pairs).expect("valid");
        let q = allocation_prefilter(&cons);
        assert_eq!(q.hostnames, ["node1"]);
        assert_eq!(q.domains, ["maas"]);
        assert_eq!(q.min_cpu_count, Some(3), "2.5 CPUs need 3");
        assert_eq!(q.min_memory_mib, Some(1024));
        assert_eq!(q.tags, ["gpu", "fast"]);
        assert_eq!(q.not_tags, ["broken"]);
        assert_eq!(q.zones, ["z1"]);
        assert_eq!(q.not_pools, ["p9"]);
        assert_eq!(q.arches, ["amd64"]);
        assert!(q.statuses.is_empty() && q.limit.is_none());
        let bare = allocation_prefilter(&Constraints::default());
        assert!(bare.hostnames.is_empty() && bare.min_cpu_count.is_none());
    }
}
