//! The per-node metadata endpoints: the version index, `meta-data/…`,
//! `user-data` (DEPLOYING → DEPLOYED when the installed OS reads it),
//! `op=signal`, `op=netboot_off`/`netboot_on`, the preseeds and the
//! anonymous (enlistment) answers.

use axum::http::Method;
use maas_core::hardware::commissioning::{self, HardwareReport, IdKind};
use maas_core::signals::{Event, SignalStatus};
use maas_core::{NodeStatus, SystemId, Timestamp};
use serde_json::Value;

use super::results::{self, ResultType};
use super::{MetaReply, Req, not_found, scripts, sync_macs};
use crate::api::machine_ops::{commit_outcome, lifecycle_config, refusal};
use crate::api::machines::{event, node_token};
use crate::api::{ApiError, json::kinds, repos};
use crate::db::machines::{self as dbm, StoredMachine};
use crate::db::users::Token;
use crate::db::{DbConn, objects, settings};

/// Signal parameters that are not uploaded result files.
const SIGNAL_FIELDS: &[&str] = &[
    "op",
    "status",
    "error",
    "script_result_id",
    "script_version_id",
    "name",
    "exit_status",
    "script_result",
    "result",
    "runtime",
    "power_type",
    "power_parameters",
];

fn yaml(body: String) -> MetaReply {
    MetaReply::Body(200, "application/x-yaml; charset=utf-8", body.into_bytes())
}

fn render_err(e: maas_core::Error) -> ApiError {
    ApiError::internal(e)
}

fn method_not_allowed() -> ApiError {
    ApiError {
        status: 405,
        body: crate::api::ErrorBody::Text("Method not allowed".into()),
    }
}

/// Answers for callers without a node token (the enlistment environment).
pub fn anonymous(req: &Req<'_>, rest: &[&str]) -> Result<MetaReply, ApiError> {
    match rest {
        [] => Ok(MetaReply::text("meta-data\nuser-data")),
        ["meta-data"] => Ok(MetaReply::text("instance-id\nlocal-hostname\npublic-keys")),
        ["meta-data", "instance-id"] => Ok(MetaReply::text("i-maas-enlistment")),
        ["meta-data", "local-hostname"] => Ok(MetaReply::text("maas-enlisting-node")),
        ["meta-data", "public-keys"] => Ok(MetaReply::text("")),
        ["user-data"] => Ok(MetaReply::Body(
            200,
            "application/octet-stream",
            scripts::enlist_user_data(&format!("{}/MAAS", req.base)).into_bytes(),
        )),
        _ if req.auth.is_none() && *req.method == Method::POST => Err(ApiError::unauthorized(
            "Authorization Error: not authenticated",
        )),
        _ => Err(not_found()),
    }
}

/// `enlist-preseed/?op=get_enlist_preseed`.
pub fn enlist_preseed(conn: &mut DbConn, req: &Req<'_>) -> Result<MetaReply, ApiError> {
    if req.op().as_deref() != Some("get_enlist_preseed") {
        return Err(not_found());
    }
    let mut ctx = req.render_ctx(None);
    ctx.apt = repos::apt_for_ephemeral(conn, "")?;
    let p = maas_core::render::enlist_preseed(&ctx).map_err(render_err)?;
    Ok(MetaReply::text(p))
}

fn load_sid(conn: &mut DbConn, sid: &str) -> Result<StoredMachine, ApiError> {
    sid.parse::<SystemId>()
        .ok()
        .map(|s| dbm::get(conn, &s))
        .transpose()?
        .flatten()
        .ok_or_else(not_found)
}

/// `by-id/<system_id>/`: anonymous `GET ?op=get_preseed` (the kernel's
/// `cloud-config-url`) and `POST ?op=netboot_off|netboot_on` (curtin's late
/// command).
pub fn by_id(conn: &mut DbConn, req: &Req<'_>, sid: &str) -> Result<MetaReply, ApiError> {
    let mut sm = load_sid(conn, sid)?;
    match (req.method, req.op().as_deref()) {
        (&Method::GET, Some("get_preseed")) => {
            let token = node_token(conn, &sm.record.machine, req.now_ms)?;
            let mut ctx = req.render_ctx(Some(&token));
            // The preseed configures the ephemeral environment (commissioning
            // or the installer).
            let arch = sm
                .record
                .machine
                .architecture
                .split('/')
                .next()
                .unwrap_or_default();
            ctx.apt = repos::apt_for_ephemeral(conn, arch)?;
            let p = maas_core::render::preseed(&sm.record.machine, &ctx).map_err(render_err)?;
            Ok(MetaReply::text(p))
        }
        (&Method::POST, Some(op @ ("netboot_off" | "netboot_on"))) => {
            set_netboot(conn, req, &mut sm, op == "netboot_on")
        }
        _ => Err(ApiError::bad_request("Unrecognised signature.")),
    }
}

fn set_netboot(
    conn: &mut DbConn,
    req: &Req<'_>,
    sm: &mut StoredMachine,
    on: bool,
) -> Result<MetaReply, ApiError> {
    if sm.record.machine.netboot != on {
        sm.record.machine.netboot = on;
        save(conn, sm, req.now_ms)?;
        let m = &sm.record.machine;
        event(
            conn,
            m,
            "",
            "INFO",
            m.status.label(),
            if on {
                "Network boot turned on"
            } else {
                "Network boot turned off"
            },
            req.now_ms,
        )?;
    }
    Ok(MetaReply::text("OK"))
}

fn save(conn: &mut DbConn, sm: &mut StoredMachine, now_ms: i64) -> Result<(), ApiError> {
    if !dbm::update(conn, sm, now_ms)? {
        return Err(ApiError::conflict(
            "The machine was changed by another request; retry.",
        ));
    }
    sm.version += 1;
    Ok(())
}

/// Endpoints for an authenticated node.
pub fn node(
    conn: &mut DbConn,
    req: &Req<'_>,
    token: Token,
    mut sm: StoredMachine,
    rest: &[&str],
    curtin: bool,
) -> Result<MetaReply, ApiError> {
    match (req.method, rest) {
        (&Method::POST, []) => match req.op().as_deref() {
            Some("signal") => signal(conn, req, &mut sm),
            Some(op @ ("netboot_off" | "netboot_on")) => {
                set_netboot(conn, req, &mut sm, op == "netboot_on")
            }
            _ => Err(ApiError::bad_request("Unrecognised signature.")),
        },
        (&Method::GET, []) => {
            let m = &sm.record.machine;
            let mut items = vec!["maas-commissioning-scripts", "meta-data"];
            let user_data_missing =
                matches!(m.status, NodeStatus::Deploying | NodeStatus::Deployed)
                    && sm.record.extra.user_data.is_empty();
            if !user_data_missing {
                items.push("user-data");
            }
            Ok(MetaReply::text(items.join("\n")))
        }
        (&Method::GET, ["meta-data"]) => {
            let keys = public_keys(conn, &sm)?;
            let mut items = vec!["instance-id", "local-hostname"];
            if !keys.is_empty() {
                items.push("public-keys");
            }
            items.extend(["vendor-data", "x509"]);
            Ok(MetaReply::text(items.join("\n")))
        }
        (&Method::GET, ["meta-data", item]) => meta_data(conn, req, &token, &sm, item),
        (&Method::GET, ["user-data"]) if curtin && super::curtin::wants_config(&sm) => {
            super::curtin::user_data(conn, req, &token, &sm)
        }
        (&Method::GET, ["user-data"]) => user_data(conn, req, &mut sm, curtin),
        (&Method::GET, ["maas-scripts" | "maas-commissioning-scripts"])
            if sm.record.machine.status == NodeStatus::DiskErasing =>
        {
            super::erase::tarball(&sm)
        }
        (&Method::GET, ["maas-scripts" | "maas-commissioning-scripts"]) => {
            scripts::tarball(conn, &sm)
        }
        (_, ["meta-data", ..] | ["user-data"] | ["maas-scripts"] | []) => Err(method_not_allowed()),
        _ => Err(not_found()),
    }
}

/// The owner's SSH keys, one per line (none while commissioning: MAAS only
/// hands keys to an owner's machine).
fn public_keys(conn: &mut DbConn, sm: &StoredMachine) -> Result<Vec<String>, ApiError> {
    let Some(owner) = sm.record.machine.owner.clone() else {
        return Ok(Vec::new());
    };
    Ok(objects::list(conn, kinds::SSHKEY)?
        .into_iter()
        .filter(|o| o.name == owner)
        .filter_map(|o| o.data.get("key").and_then(Value::as_str).map(str::to_owned))
        .collect())
}

fn meta_data(
    conn: &mut DbConn,
    req: &Req<'_>,
    token: &Token,
    sm: &StoredMachine,
    item: &str,
) -> Result<MetaReply, ApiError> {
    let m = &sm.record.machine;
    match item {
        "instance-id" => Ok(MetaReply::text(m.system_id.as_str())),
        "local-hostname" => Ok(MetaReply::text(m.fqdn())),
        "public-keys" => Ok(MetaReply::text(public_keys(conn, sm)?.join("\n"))),
        // No SSL keys are kept for users: an empty list, as MAAS gives a
        // user without any.
        "x509" => Ok(MetaReply::text("")),
        "vendor-data" => {
            let mut ctx = req.render_ctx(Some(token));
            super::add_deployment_settings(conn, m, &mut ctx)?;
            let vd = maas_core::render::vendor_data(m, &ctx).map_err(render_err)?;
            Ok(yaml(vd))
        }
        _ => Err(not_found()),
    }
}

/// `user-data`: the deployed OS's user data (decoded), ending the
/// deployment when it is read while DEPLOYING; the script runner for the
/// ephemeral environment; a power-off script when the machine should be
/// off.
fn user_data(
    conn: &mut DbConn,
    req: &Req<'_>,
    sm: &mut StoredMachine,
    curtin: bool,
) -> Result<MetaReply, ApiError> {
    let status = sm.record.machine.status;
    // The installed OS (or, deploying to memory, the ephemeral one) reads
    // its user-data: MAAS's hand-off to the user. The curtin datasource is
    // the installer itself and does not count.
    if !curtin && status == NodeStatus::Deploying {
        let cfg = lifecycle_config(conn)?;
        let out = maas_core::signals::handle(
            &sm.record.machine,
            &Event::UserDataFetched,
            Timestamp(req.now_ms),
            &cfg,
        )
        .map_err(refusal)?;
        commit_outcome(conn, "", sm, out, req.now_ms)?.ok_or_else(|| {
            ApiError::conflict("The machine was changed by another request; retry.")
        })?;
    }
    let m = &sm.record.machine;
    if !curtin && matches!(m.status, NodeStatus::Deploying | NodeStatus::Deployed) {
        if sm.record.extra.user_data.is_empty() {
            return Ok(MetaReply::Body(
                404,
                "text/plain",
                b"No user data available for this node.".to_vec(),
            ));
        }
        let data =
            maas_core::render::decode_user_data(&sm.record.extra.user_data).map_err(render_err)?;
        return Ok(MetaReply::Body(200, "application/octet-stream", data));
    }
    if maas_core::boot_purpose(Some(m)) == maas_core::BootPurpose::Poweroff && !curtin {
        return Ok(MetaReply::Body(
            200,
            "application/octet-stream",
            b"#!/bin/sh\n# maasd: this machine should be off.\npoweroff\n".to_vec(),
        ));
    }
    Ok(MetaReply::Body(
        200,
        "application/octet-stream",
        scripts::runner_user_data().into_bytes(),
    ))
}

/// `POST …/?op=signal`.
fn signal(conn: &mut DbConn, req: &Req<'_>, sm: &mut StoredMachine) -> Result<MetaReply, ApiError> {
    let p = req.params;
    let status: SignalStatus = p
        .get_nonempty("status")
        .ok_or_else(|| ApiError::field("status", "This field is required."))?
        .parse()
        .map_err(refusal)?;
    let exit_status = ["exit_status", "script_result", "result"]
        .iter()
        .find_map(|k| p.get_nonempty(k))
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| ApiError::field("exit_status", format!("'{s}' is not an integer.")))
        })
        .transpose()?;
    let runtime = p
        .get_nonempty("runtime")
        .and_then(|s| s.parse::<f64>().ok());
    // Every other part is an uploaded result file, keyed by script name.
    let files: Vec<(String, Vec<u8>)> = p
        .keys()
        .into_iter()
        .filter(|k| !SIGNAL_FIELDS.contains(k))
        .filter_map(|k| p.bytes(k).map(|b| (k.to_owned(), b.to_vec())))
        .collect();
    let status_before = sm.record.machine.status;
    // Results and hardware only count while the machine runs scripts (or is
    // a deployed machine refreshing its hardware).
    let takes_results = matches!(
        status_before,
        NodeStatus::Commissioning
            | NodeStatus::Testing
            | NodeStatus::Deployed
            | NodeStatus::New
            | NodeStatus::Deploying
    );
    let result_type = ResultType::for_status(status_before);
    let sid = sm.record.machine.system_id.as_str().to_owned();
    if takes_results && !files.is_empty() {
        let custom = scripts::custom_scripts(conn)?;
        let reports = scripts::reports_from_files(
            &files,
            p.get_nonempty("name").as_deref(),
            exit_status.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            runtime.map(|s| (s * 1000.0).round() as i64),
            status == SignalStatus::Timedout,
            &custom,
        );
        results::store(conn, &sid, result_type, &reports, req.now_ms)?;
        // A failed script's output is kept but not believed.
        // Enlistment (a NEW machine) runs the commissioning scripts too, and
        // MAAS keeps what they found.
        if matches!(
            status_before,
            NodeStatus::New | NodeStatus::Commissioning | NodeStatus::Deployed
        ) && exit_status.is_none_or(|s| s == 0)
        {
            apply_hardware(conn, sm, &files, result_type, req.now_ms)?;
        }
    }
    if matches!(
        status_before,
        NodeStatus::Commissioning | NodeStatus::New | NodeStatus::Deployed
    ) && let Some(pt) = p.get_nonempty("power_type")
    {
        sm.record.machine.power_type = pt;
        if let Some(pp) = p.power_parameters()? {
            sm.record.extra.power_parameters = pp;
        }
    }
    // MAAS: any failed result of the running script set fails the
    // operation when the machine reports it is done. A newer result of a
    // script replaces the older one, so a re-run clears an old failure.
    let script_failed = status == SignalStatus::Ok
        && takes_results
        && results::current_failed(conn, &sid, result_type)?;
    let cfg = lifecycle_config(conn)?;
    let out = maas_core::signals::handle(
        &sm.record.machine,
        &Event::Signal {
            status,
            error: p.get_nonempty("error"),
            script_failed,
        },
        Timestamp(req.now_ms),
        &cfg,
    )
    .map_err(refusal)?;
    if out.status == status_before && out.effects.is_empty() {
        // A heartbeat or an upload: keep what it carried, no event line.
        save(conn, sm, req.now_ms)?;
    } else {
        commit_outcome(conn, "", sm, out, req.now_ms)?.ok_or_else(|| {
            ApiError::conflict("The machine was changed by another request; retry.")
        })?;
    }
    Ok(MetaReply::text("OK"))
}

/// Parses the builtin hardware outputs among `files` and merges them into
/// the machine (CPU, memory, disks, NICs, PCI/USB).
fn apply_hardware(
    conn: &mut DbConn,
    sm: &mut StoredMachine,
    files: &[(String, Vec<u8>)],
    result_type: ResultType,
    now_ms: i64,
) -> Result<(), ApiError> {
    let mut report = HardwareReport::default();
    for (name, data) in files {
        // Output we cannot read is stored with its result and logged; the
        // rest of the hardware still counts.
        if let Err(e) = report.add_output(name, data) {
            let m = &sm.record.machine;
            event(
                conn,
                m,
                "",
                "ERROR",
                m.status.label(),
                &format!("Commissioning output not understood: {e}"),
                now_ms,
            )?;
        }
    }
    // The firmware the machine runs (machine-resources `system.firmware`):
    // the storage layout needs an ESP on UEFI. The rack cannot always tell
    // (an iPXE ROM asks the same way from BIOS and UEFI), the machine can.
    for (name, data) in files {
        if let Some(bm) = firmware_boot_method(name, data) {
            sm.record.machine.boot_method = bm;
        }
    }
    if report.is_empty() {
        return Ok(());
    }
    // What this run's passed scripts already reported (this signal's are
    // stored by now) outranks lshw.
    let sid = sm.record.machine.system_id.as_str().to_owned();
    let reported: Vec<commissioning::OutputKind> =
        match results::current_set(conn, &sid, result_type)? {
            Some(set) => results::results_of(conn, set.id)?
                .iter()
                .filter(|r| r.status == results::status::PASSED)
                .filter_map(|r| commissioning::output_kind(&r.name))
                .collect(),
            None => Vec::new(),
        };
    report.yield_to(&|k| reported.contains(&k));
    let vlan = crate::api::machines::default_vlan(conn)?;
    let mut seq_err = None;
    let changes = {
        let mut next_id = |k: IdKind| -> maas_core::Result<u64> {
            let name = match k {
                IdKind::BlockDevice => "blockdevice",
                IdKind::Interface => "interface",
            };
            settings::next_seq(conn, name).map_err(|e| {
                let msg = e.to_string();
                seq_err = Some(e);
                maas_core::Error::Commissioning {
                    script: "id allocation".into(),
                    reason: msg,
                }
            })
        };
        commissioning::apply(&report, &mut sm.record.machine, vlan.as_ref(), &mut next_id)
    };
    if let Some(e) = seq_err {
        return Err(e.into());
    }
    let changes = changes.map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(cpu) = &report.effective().cpu {
        sm.record.extra.cpu_model = cpu.model.clone();
        sm.record.extra.cpu_speed = cpu.speed_mhz;
    }
    let sid = sm.record.machine.system_id.clone();
    sync_macs(conn, &sid, &changes)
}

/// `uefi`/`bios` from the machine-resources output (`50-maas-01-commissioning`)
/// as a boot method; `None` for other outputs or when it does not say.
fn firmware_boot_method(name: &str, data: &[u8]) -> Option<maas_core::BootMethod> {
    if !name.ends_with("maas-01-commissioning") && name != "maas-machine-resources" {
        return None;
    }
    let v: Value = serde_json::from_slice(data).ok()?;
    let system = v
        .pointer("/resources/system")
        .or_else(|| v.pointer("/system"))?;
    match system.pointer("/firmware/type")?.as_str()? {
        "uefi" | "efi" => Some(maas_core::BootMethod::Uefi),
        "bios" => Some(maas_core::BootMethod::Pxe),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_type_gives_the_boot_method() {
        let uefi = br#"{"resources": {"system": {"firmware": {"type": "uefi"}}}}"#;
        let bios = br#"{"resources": {"system": {"firmware": {"type": "bios"}}}}"#;
        let name = "50-maas-01-commissioning";
        assert_eq!(
            firmware_boot_method(name, uefi),
            Some(maas_core::BootMethod::Uefi)
        );
        assert_eq!(
            firmware_boot_method(name, bios),
            Some(maas_core::BootMethod::Pxe)
        );
        // Other outputs, unreadable JSON and a silent firmware say nothing.
        assert_eq!(
            firmware_boot_method("40-maas-01-network-interfaces", uefi),
            None
        );
        assert_eq!(firmware_boot_method(name, b"not json"), None);
        assert_eq!(firmware_boot_method(name, br#"{"resources": {}}"#), None);
    }
}
