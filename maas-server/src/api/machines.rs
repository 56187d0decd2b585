//! Machines and nodes: the collection (list with MAAS's filters, create,
//! allocate, bulk release, accept), the instance (read, update, delete and
//! the life-cycle ops, which `maas_core::actions` decides) and the node
//! sub-resources (interfaces, block devices, partitions).

use std::collections::HashMap;

use maas_core::hardware::{Interface, VlanRef};
use maas_core::{MacAddress, Machine, NodeStatus, SystemId};
use serde_json::{Map, Value, json};

use super::json::{
    self, Lookups, blockdevice_json, interface_json, kinds, machine_json, write_machine_list,
};
use super::resources::default_domain;
use super::{ApiError, Call, Reply};
use crate::db::events::NewEvent;
use crate::db::machines::{MachineExtra, MachineQuery, MachineRecord, StoredMachine};
use crate::db::{DbConn, events, machines, objects, settings};

/// Architectures MAAS knows (with `generic` as the default subarch).
pub const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "armhf", "i386", "ppc64el", "s390x", "riscv64",
];

/// Power types MAAS has drivers for, with their required parameters (§7).
pub const POWER_TYPES: &[(&str, &[&str])] = &[
    ("manual", &[]),
    ("ipmi", &["power_address"]),
    ("redfish", &["power_address", "power_user", "power_pass"]),
    ("virsh", &["power_address", "power_id"]),
    ("lxd", &["power_address", "instance_name"]),
    (
        "webhook",
        &["power_on_uri", "power_off_uri", "power_query_uri"],
    ),
    ("amt", &["power_address"]),
    ("apc", &["power_address", "node_outlet"]),
    ("dli", &["outlet_id", "power_address"]),
    ("eaton", &["power_address", "node_outlet"]),
    ("hmc", &["power_address", "server_name", "lpar"]),
    (
        "hmcz",
        &[
            "power_address",
            "power_user",
            "power_pass",
            "power_partition_name",
        ],
    ),
    ("moonshot", &["power_address", "power_hwaddress"]),
    ("mscm", &["power_address", "node_id"]),
    ("msftocs", &["power_address", "blade_id"]),
    ("openbmc", &["power_address", "power_user", "power_pass"]),
    ("proxmox", &["power_address", "power_user", "power_vm_name"]),
    ("raritan", &["power_address", "node_outlet"]),
    ("recs_box", &["node_id", "power_address"]),
    ("sm15k", &["system_id", "power_address"]),
    ("ucsm", &["uuid", "power_address"]),
    ("vmware", &["power_address", "power_user", "power_pass"]),
    ("wedge", &["power_address"]),
];

const NOT_FOUND: &str = "No Machine matches the given query.";

/// Normalises an architecture (`amd64` → `amd64/generic`), 400 when unknown.
pub fn normalise_arch(arch: &str, subarch: Option<&str>) -> Result<String, ApiError> {
    let (a, s) = match arch.split_once('/') {
        Some((a, s)) => (a, s.to_owned()),
        None => (arch, subarch.unwrap_or("generic").to_owned()),
    };
    if !ARCHITECTURES.contains(&a) || s.is_empty() || s.contains('/') {
        return Err(ApiError::field(
            "architecture",
            format!(
                "'{arch}' is not a valid architecture.  It should be one of: {}.",
                ARCHITECTURES
                    .iter()
                    .map(|a| format!("'{a}/generic'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(format!("{a}/{s}"))
}

/// Checks a power type and its required parameters; webhook regexes get
/// MAAS's defaults.
pub fn check_power(power_type: &str, params: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some((_, required)) = POWER_TYPES.iter().find(|(t, _)| *t == power_type) else {
        return Err(ApiError::field(
            "power_type",
            format!("Select a valid choice. {power_type} is not one of the available choices."),
        ));
    };
    if power_type == "webhook" {
        params
            .entry("power_on_regex")
            .or_insert(json!(r"status.*\:.*running"));
        params
            .entry("power_off_regex")
            .or_insert(json!(r"status.*\:.*stopped"));
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| {
            params
                .get(*k)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError {
            status: 400,
            body: super::ErrorBody::Fields(json!({
                "power_parameters": missing.iter().map(|k| format!("{k}: This field is required.")).collect::<Vec<_>>()
            })),
        });
    }
    Ok(())
}

/// A hostname MAAS accepts (RFC 1123 label, no domain part).
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Loads the machine named by path parameter 0 (as visible to the caller).
fn load(c: &mut Call<'_>) -> Result<StoredMachine, ApiError> {
    let sid: SystemId = c
        .path_param(0)
        .parse()
        .map_err(|_| ApiError::not_found(NOT_FOUND))?;
    let sm = machines::get(c.conn, &sid)?.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    if !can_view(c, &sm.record.machine) {
        return Err(not_viewable(&sm.record.machine));
    }
    Ok(sm)
}

/// MAAS's answer for a machine that exists but that the caller may not
/// view (`get_node_or_404` raises PermissionDenied): 403.
pub fn not_viewable(m: &Machine) -> ApiError {
    ApiError::forbidden(format!(
        "You do not have permission to view machine {}.",
        m.system_id
    ))
}

/// Non-admins see unowned machines and their own (MAAS without RBAC).
fn can_view(c: &Call<'_>, m: &Machine) -> bool {
    match c.user {
        Some(u) => u.is_superuser || m.owner.is_none() || m.owner.as_deref() == Some(&u.username),
        None => false,
    }
}

/// Writes the machine back, 409 if it changed meanwhile.
pub fn save(c: &mut Call<'_>, sm: &mut StoredMachine) -> Result<(), ApiError> {
    if !machines::update(c.conn, sm, c.now_ms)? {
        return Err(ApiError::conflict(
            "The machine was changed by another request; retry.",
        ));
    }
    sm.version += 1;
    Ok(())
}

/// Appends an event for the machine.
pub fn event(
    conn: &mut DbConn,
    m: &Machine,
    username: &str,
    level: &str,
    type_name: &str,
    description: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    events::add(
        conn,
        &NewEvent {
            system_id: m.system_id.as_str(),
            hostname: &m.hostname,
            username,
            level,
            type_name,
            description,
        },
        now_ms,
    )?;
    Ok(())
}

/// The machine JSON of one machine.
pub fn render(c: &mut Call<'_>, sm: &StoredMachine) -> Result<Value, ApiError> {
    let l = Lookups::load(c.conn)?;
    Ok(machine_json(sm, &l))
}

// ---------------------------------------------------------------- listing

/// MAAS's status filter names (`ready`, `failed_commissioning`, …).
fn status_by_filter_name(s: &str) -> Option<NodeStatus> {
    NodeStatus::ALL.iter().copied().find(|st| {
        st.name().eq_ignore_ascii_case(s)
            || st.label().eq_ignore_ascii_case(s)
            || st.as_int().to_string() == s
    })
}

/// The read filters of `GET machines/` (MAAS's `ReadNodesForm`, the
/// commonly used subset), plus `offset`/`limit` paging beyond MAAS, as a
/// database query; callers who are not admins see unowned machines and
/// their own.
pub fn machine_query(c: &Call<'_>) -> Result<MachineQuery, ApiError> {
    let p = c.params;
    let user = c.user()?;
    let mut system_ids = p.get_list("id");
    system_ids.extend(p.get_list("system_id"));
    let hostnames: Vec<String> = p
        .get_list("hostname")
        .into_iter()
        .map(|h| h.split('.').next().unwrap_or_default().to_owned())
        .collect();
    let macs: Vec<String> = p
        .get_list("mac_address")
        .iter()
        .map(|m| {
            m.parse::<MacAddress>().map(|m| m.colon()).map_err(|_| {
                ApiError::field("mac_address", format!("'{m}' is not a valid MAC address."))
            })
        })
        .collect::<Result<_, _>>()?;
    let statuses: Vec<NodeStatus> = p
        .get_list("status")
        .iter()
        .map(|s| {
            status_by_filter_name(s)
                .ok_or_else(|| ApiError::field("status", format!("'{s}' is not a valid status.")))
        })
        .collect::<Result<_, _>>()?;
    let not_statuses: Vec<NodeStatus> = p
        .get_list("not_status")
        .iter()
        .filter_map(|s| status_by_filter_name(s))
        .collect();
    let simple = p.get_list("simple_status");
    let statuses_also = (!simple.is_empty()).then(|| {
        NodeStatus::ALL
            .iter()
            .copied()
            .filter(|st| {
                simple
                    .iter()
                    .any(|s| st.simple().label().eq_ignore_ascii_case(s))
            })
            .collect()
    });
    Ok(MachineQuery {
        visible_to: (!user.is_superuser).then(|| user.username.clone()),
        system_ids,
        not_system_ids: p.get_list("not_id"),
        hostnames,
        not_hostnames: p.get_list("not_hostname"),
        macs,
        domains: p.get_list("domain"),
        not_domains: p.get_list("not_domain"),
        zones: p.get_list("zone"),
        not_zones: p.get_list("not_in_zone"),
        pools: p.get_list("pool"),
        not_pools: p.get_list("not_in_pool"),
        statuses,
        statuses_also,
        not_statuses,
        owners: p.get_list("owner"),
        not_owners: p.get_list("not_owner"),
        power_states: p.get_list("power_state"),
        arches: p.get_list("arch"),
        tags: p.get_list("tags"),
        not_tags: p.get_list("not_tags"),
        agent_names: p.get_list("agent_name"),
        min_cpu_count: p.int("cpu_count")?,
        min_memory_mib: p.int("mem")?,
        offset: p.int("offset")?.unwrap_or(0).max(0),
        limit: p.int("limit")?.map(|l| l.max(0)),
    })
}

/// A JSON array of machines, serialised straight into the body.
pub fn machine_list_reply(conn: &mut DbConn, ms: &[StoredMachine]) -> Result<Reply, ApiError> {
    let l = Lookups::load(conn)?;
    let mut out = Vec::with_capacity(ms.len() * 8192 + 2);
    write_machine_list(&mut out, ms, &l).map_err(ApiError::internal)?;
    Ok(Reply::Raw("application/json; charset=utf-8", out))
}

/// The JSON array of the machines matching `q`, written from their stored
/// listing templates; rows without a usable one (written before the
/// templates existed, or by another build's renderer) are rendered from the
/// model and their template refreshed for the next list.
pub fn listing_reply(conn: &mut DbConn, q: &MachineQuery) -> Result<Reply, ApiError> {
    let rows = machines::query_listing(conn, q)?;
    let l = Lookups::load(conn)?;
    let stale: Vec<i64> = rows
        .iter()
        .filter(|r| !json::listing_usable(r))
        .map(|r| r.id)
        .collect();
    let models: HashMap<i64, StoredMachine> = machines::by_row_ids(conn, &stale)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let mut out = Vec::with_capacity(
        rows.iter()
            .map(|r| r.listing.as_ref().map_or(8192, String::len))
            .sum::<usize>()
            + 4096,
    );
    json::write_listing(&mut out, &rows, &models, &l).map_err(ApiError::internal)?;
    if !models.is_empty() {
        // A cache refresh: failing it only costs the next list a re-render.
        let refreshed = conn.write_tx(|conn| {
            for sm in models.values() {
                if let Some(t) = json::listing_template(&sm.record) {
                    machines::store_listing(conn, sm.id, sm.version, &t)?;
                }
            }
            Ok::<_, crate::Error>(())
        });
        if let Err(e) = refreshed {
            tracing::debug!(error = %e, "listing templates not refreshed");
        }
    }
    Ok(Reply::Raw("application/json; charset=utf-8", out))
}

/// `GET machines/` (and `nodes/`).
pub fn list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let q = machine_query(c)?;
    listing_reply(c.conn, &q)
}

/// `GET machines/{system_id}/`.
pub fn read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let sm = load(c)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// `GET machines/?op=list_allocated`.
pub fn list_allocated(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let me = c.user()?.username.clone();
    let ids = c.params.get_list("id");
    let q = MachineQuery {
        system_ids: ids,
        owners: vec![me],
        statuses: vec![NodeStatus::Allocated],
        ..MachineQuery::default()
    };
    listing_reply(c.conn, &q)
}

// ---------------------------------------------------------------- create

/// A `mac_addresses` value parsed and checked to be on no machine yet.
fn free_mac(conn: &mut DbConn, s: &str) -> Result<MacAddress, ApiError> {
    let mac: MacAddress = s.parse().map_err(|_| {
        ApiError::field(
            "mac_addresses",
            format!("'{s}' is not a valid MAC address."),
        )
    })?;
    if let Some(owner) = mac_taken(conn, &mac)? {
        return Err(ApiError::field(
            "mac_addresses",
            format!("One or more MAC addresses is invalid. ('{s}' is already in use on {owner}.)"),
        ));
    }
    Ok(mac)
}

/// The system id of the machine that has `mac` (an indexed lookup).
pub(crate) fn mac_taken(conn: &mut DbConn, mac: &MacAddress) -> Result<Option<String>, ApiError> {
    Ok(machines::system_id_by_mac(conn, mac)?)
}

pub(crate) fn register_macs(conn: &mut DbConn, m: &Machine) -> Result<(), ApiError> {
    for i in &m.interfaces {
        let mut d = Map::new();
        d.insert("system_id".into(), json!(m.system_id.as_str()));
        objects::insert(conn, "mac", &i.mac.colon(), &d)?;
    }
    Ok(())
}

pub(crate) fn unregister_macs(conn: &mut DbConn, m: &Machine) -> Result<(), ApiError> {
    for i in &m.interfaces {
        if let Some(o) = objects::by_name(conn, "mac", &i.mac.colon())? {
            objects::delete(conn, "mac", o.id)?;
        }
    }
    Ok(())
}

fn resolve_domain(conn: &mut DbConn, v: &str) -> Result<String, ApiError> {
    let found = match v.parse::<i64>() {
        Ok(id) => objects::get(conn, kinds::DOMAIN, id)?,
        Err(_) => objects::by_name(conn, kinds::DOMAIN, v)?,
    };
    found
        .map(|d| d.name)
        .ok_or_else(|| ApiError::field("domain", format!("Unknown domain: {v}.")))
}

fn new_system_id(conn: &mut DbConn) -> Result<SystemId, ApiError> {
    // The controller is a node too: its id is taken.
    let controller = crate::controller::system_id(conn)?;
    for _ in 0..20 {
        let id = SystemId::generate(&mut rand::rng());
        if controller.as_ref() != Some(&id) && machines::get(conn, &id)?.is_none() {
            return Ok(id);
        }
    }
    Err(ApiError::internal("could not find a free system id"))
}

/// The untagged VLAN of `fabric-0`, which new interfaces sit on.
pub(crate) fn default_vlan(conn: &mut DbConn) -> Result<Option<VlanRef>, ApiError> {
    let Some(f) = objects::by_name(conn, kinds::FABRIC, "fabric-0")? else {
        return Ok(None);
    };
    let v = objects::list(conn, kinds::VLAN)?.into_iter().find(|v| {
        v.data.get("fabric_id") == Some(&json!(f.id)) && v.data.get("vid") == Some(&json!(0))
    });
    Ok(v.map(|v| VlanRef {
        id: v.id as u64,
        vid: 0,
        name: "untagged".into(),
        fabric: f.name.clone(),
        fabric_class: String::new(),
        // Allocation filters on the space the reference carries.
        space: v
            .data
            .get("space")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }))
}

/// Builds a machine from create parameters (shared by the admin and the
/// anonymous enlistment paths).
fn machine_from_params(c: &mut Call<'_>, deployed: bool) -> Result<MachineRecord, ApiError> {
    let p = c.params;
    let power_type = p.get_nonempty("power_type").unwrap_or_default();
    let mut power_parameters = p.power_parameters()?.unwrap_or_default();
    // A machine known only by its BMC (MAAS: IPMI/Redfish credentials and
    // no MAC) is matched later, when its ephemeral environment enlists with
    // that BMC address.
    let bmc_only = matches!(power_type.as_str(), "ipmi" | "redfish")
        && power_parameters
            .get("power_address")
            .and_then(Value::as_str)
            .is_some_and(|a| !a.is_empty());
    let needs_macs = !((deployed && matches!(power_type.as_str(), "" | "manual")) || bmc_only);
    let architecture = match p.get_nonempty("architecture") {
        Some(a) => normalise_arch(&a, p.get_nonempty("subarchitecture").as_deref())?,
        None if !needs_macs => String::new(),
        None => return Err(ApiError::field("architecture", "This field is required.")),
    };
    let mac_strs = p.get_list("mac_addresses");
    if mac_strs.is_empty() && needs_macs {
        return Err(ApiError::field("mac_addresses", "This field is required."));
    }
    let mut macs: Vec<MacAddress> = Vec::new();
    for s in &mac_strs {
        let mac = free_mac(c.conn, s)?;
        if !macs.contains(&mac) {
            macs.push(mac);
        }
    }
    if !power_type.is_empty() {
        check_power(&power_type, &mut power_parameters)?;
    }
    let hostname = match p.get_nonempty("hostname") {
        Some(h) => {
            let h = h.split('.').next().unwrap_or_default().to_owned();
            if !valid_hostname(&h) {
                return Err(ApiError::field(
                    "hostname",
                    format!("Invalid hostname: '{h}'."),
                ));
            }
            if machines::by_hostname(c.conn, &h)?.is_some() {
                return Err(ApiError::field(
                    "hostname",
                    format!("Node with hostname \"{h}\" already exists."),
                ));
            }
            Some(h)
        }
        None => None,
    };
    let domain = match p.get_nonempty("domain") {
        Some(d) => resolve_domain(c.conn, &d)?,
        None => default_domain(c.conn)?,
    };
    let system_id = new_system_id(c.conn)?;
    let vlan = default_vlan(c.conn)?;
    let mut interfaces = Vec::new();
    for (n, mac) in macs.iter().enumerate() {
        interfaces.push(Interface {
            id: settings::next_seq(c.conn, "interface")?,
            name: format!("eth{n}"),
            mac: *mac,
            enabled: true,
            vlan: vlan.clone(),
            ..Default::default()
        });
    }
    let machine = Machine {
        hostname: hostname.unwrap_or_else(|| format!("node-{system_id}")),
        system_id,
        power_type: if power_type.is_empty() {
            "manual".into()
        } else {
            power_type
        },
        architecture,
        domain,
        interfaces,
        ..Default::default()
    };
    let extra = MachineExtra {
        description: p.get("description").unwrap_or_default(),
        power_parameters,
        min_hwe_kernel: p.get_nonempty("min_hwe_kernel").unwrap_or_default(),
        ..Default::default()
    };
    Ok(MachineRecord { machine, extra })
}

fn store_new(c: &mut Call<'_>, record: &MachineRecord) -> Result<StoredMachine, ApiError> {
    let sm = machines::insert(c.conn, record, c.now_ms).map_err(|e| match e {
        crate::Error::Refused(m) => ApiError::field("hostname", m),
        other => ApiError::from(other),
    })?;
    register_macs(c.conn, &record.machine)?;
    Ok(sm)
}

/// `POST machines/` (authenticated).
pub fn create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    if !user.is_superuser {
        return Err(ApiError::forbidden(
            "Only administrators may create machines.",
        ));
    }
    let deployed = c.params.bool_or("deployed", false)?;
    let commission = c.params.bool_or("commission", true)? && !deployed;
    let mut record = machine_from_params(c, deployed)?;
    super::machine_ops::on_create(c, &user, &mut record, deployed)?;
    let mut sm = store_new(c, &record)?;
    let m = &sm.record.machine;
    event(
        c.conn,
        m,
        &user.username,
        "INFO",
        "Created",
        &format!("Created machine {}", m.hostname),
        c.now_ms,
    )?;
    if commission {
        super::machine_ops::commission_new(c, &user, &mut sm)?;
    }
    Ok(Reply::Json(render(c, &sm)?))
}

/// `POST machines/` (anonymous enlistment): re-uses a NEW or COMMISSIONING
/// machine with one of the MACs, otherwise creates one in NEW.
pub fn anon_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    for s in c.params.get_list("mac_addresses") {
        if let Ok(mac) = s.parse::<MacAddress>()
            && let Some(sid) = mac_taken(c.conn, &mac)?
            && let Ok(sid) = sid.parse::<SystemId>()
            && let Some(sm) = machines::get(c.conn, &sid)?
            && matches!(
                sm.record.machine.status,
                NodeStatus::New | NodeStatus::Commissioning
            )
        {
            return Ok(Reply::Json(render(c, &sm)?));
        }
    }
    if let Some(sm) = match_by_bmc(c)? {
        return Ok(Reply::Json(render(c, &sm)?));
    }
    let mut record = machine_from_params(c, false)?;
    record.machine.enlisting = true;
    let sm = store_new(c, &record)?;
    let m = &sm.record.machine;
    event(
        c.conn,
        m,
        "",
        "INFO",
        "Enlisted",
        "Machine enlisted itself",
        c.now_ms,
    )?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// Anonymous enlistment of a machine an admin added with only its BMC
/// credentials: the ephemeral environment reports the same BMC address, so
/// its MACs join that machine instead of creating a new one.
fn match_by_bmc(c: &mut Call<'_>) -> Result<Option<StoredMachine>, ApiError> {
    let Some(pp) = c.params.power_parameters()? else {
        return Ok(None);
    };
    let Some(addr) = pp
        .get("power_address")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let Some(mut sm) = machines::list(c.conn)?.into_iter().find(|sm| {
        sm.record.machine.interfaces.is_empty()
            && sm.record.extra.power_parameters.get("power_address") == Some(&json!(addr))
    }) else {
        return Ok(None);
    };
    let vlan = default_vlan(c.conn)?;
    for (n, s) in c.params.get_list("mac_addresses").iter().enumerate() {
        let mac = free_mac(c.conn, s)?;
        sm.record.machine.interfaces.push(Interface {
            id: settings::next_seq(c.conn, "interface")?,
            name: format!("eth{n}"),
            mac,
            enabled: true,
            vlan: vlan.clone(),
            ..Default::default()
        });
    }
    if let Some(a) = c.params.get_nonempty("architecture")
        && sm.record.machine.architecture.is_empty()
    {
        sm.record.machine.architecture =
            normalise_arch(&a, c.params.get_nonempty("subarchitecture").as_deref())?;
    }
    save(c, &mut sm)?;
    register_macs(c.conn, &sm.record.machine)?;
    let m = &sm.record.machine;
    event(
        c.conn,
        m,
        "",
        "INFO",
        "Enlisted",
        &format!("Matched by BMC address {addr}"),
        c.now_ms,
    )?;
    Ok(Some(sm))
}

/// `GET machines/?op=is_registered&mac_address=`.
pub fn is_registered(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let s = c
        .params
        .get_nonempty("mac_address")
        .ok_or_else(|| ApiError::field("mac_address", "This field is required."))?;
    let mac: MacAddress = s.parse().map_err(|_| {
        ApiError::field("mac_address", format!("'{s}' is not a valid MAC address."))
    })?;
    Ok(Reply::Json(json!(mac_taken(c.conn, &mac)?.is_some())))
}

/// `GET machines/?op=is_action_in_progress&mac_address=`.
pub fn is_action_in_progress(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let s = c.params.get_nonempty("mac_address").unwrap_or_default();
    let Ok(mac) = s.parse::<MacAddress>() else {
        return Ok(Reply::Json(json!(false)));
    };
    let Some(sid) = mac_taken(c.conn, &mac)? else {
        return Ok(Reply::Json(json!(false)));
    };
    let busy = match sid.parse::<SystemId>() {
        Ok(id) => machines::get(c.conn, &id)?.is_some_and(|sm| {
            matches!(
                sm.record.machine.status,
                NodeStatus::Commissioning
                    | NodeStatus::Deploying
                    | NodeStatus::Releasing
                    | NodeStatus::DiskErasing
                    | NodeStatus::Testing
                    | NodeStatus::EnteringRescueMode
                    | NodeStatus::ExitingRescueMode
            )
        }),
        Err(_) => false,
    };
    Ok(Reply::Json(json!(busy)))
}

// ---------------------------------------------------------------- update / delete

/// `PUT machines/{system_id}/`.
pub fn update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let mut sm = load(c)?;
    super::machine_ops::authorize_admin_edit(&sm.record.machine, &user)?;
    let p = c.params;
    if let Some(h) = p.get_nonempty("hostname") {
        let h = h.split('.').next().unwrap_or_default().to_owned();
        if !valid_hostname(&h) {
            return Err(ApiError::field(
                "hostname",
                format!("Invalid hostname: '{h}'."),
            ));
        }
        if h != sm.record.machine.hostname && machines::by_hostname(c.conn, &h)?.is_some() {
            return Err(ApiError::field(
                "hostname",
                format!("Node with hostname \"{h}\" already exists."),
            ));
        }
        sm.record.machine.hostname = h;
    }
    if let Some(d) = p.get("description") {
        sm.record.extra.description = d;
    }
    if let Some(d) = p.get_nonempty("domain") {
        sm.record.machine.domain = resolve_domain(c.conn, &d)?;
    }
    if let Some(a) = p.get_nonempty("architecture") {
        sm.record.machine.architecture = normalise_arch(&a, None)?;
    }
    if let Some(k) = p.get("min_hwe_kernel") {
        sm.record.extra.min_hwe_kernel = k;
    }
    if let Some(z) = p.get_nonempty("zone") {
        if objects::by_name(c.conn, kinds::ZONE, &z)?.is_none() {
            return Err(ApiError::field("zone", format!("No such zone: '{z}'.")));
        }
        sm.record.machine.zone = z;
    }
    if let Some(pool) = p.get_nonempty("pool") {
        let found = match pool.parse::<i64>() {
            Ok(id) => objects::get(c.conn, kinds::POOL, id)?,
            Err(_) => objects::by_name(c.conn, kinds::POOL, &pool)?,
        };
        sm.record.machine.pool = found
            .ok_or_else(|| ApiError::field("pool", format!("No such pool: '{pool}'.")))?
            .name;
    }
    if let Some(n) = p.int("cpu_count")? {
        sm.record.machine.cpu_count = u32::try_from(n).map_err(|_| {
            ApiError::field(
                "cpu_count",
                "Ensure this value is greater than or equal to 0.",
            )
        })?;
    }
    if let Some(n) = p.int("memory")? {
        sm.record.machine.memory_mib = u64::try_from(n).map_err(|_| {
            ApiError::field("memory", "Ensure this value is greater than or equal to 0.")
        })?;
    }
    if let Some(v) = p.get("swap_size") {
        sm.record.extra.swap_size = parse_swap_size(&v)?;
    }
    let new_type = p.get_nonempty("power_type");
    let new_params = p.power_parameters()?;
    if new_type.is_some() || new_params.is_some() {
        let t = new_type.unwrap_or_else(|| sm.record.machine.power_type.clone());
        let mut params = match new_params {
            Some(np) if t == sm.record.machine.power_type => {
                let mut merged = sm.record.extra.power_parameters.clone();
                merged.extend(np);
                merged
            }
            Some(np) => np,
            None => Map::new(),
        };
        if !c.params.bool_or("power_parameters_skip_check", false)? {
            check_power(&t, &mut params)?;
        }
        sm.record.machine.power_type = t;
        sm.record.extra.power_parameters = params;
    }
    save(c, &mut sm)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// `DELETE machines/{system_id}/`.
pub fn delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let sm = load(c)?;
    super::machine_ops::authorize_admin_edit(&sm.record.machine, &user)?;
    unregister_macs(c.conn, &sm.record.machine)?;
    // Its script results go with it (MAAS cascades them), as when a
    // workflow deletes a machine.
    crate::metadata::results::forget(c.conn, sm.record.machine.system_id.as_str())?;
    machines::delete(c.conn, &sm.record.machine.system_id)?;
    event(
        c.conn,
        &sm.record.machine,
        &user.username,
        "INFO",
        "Deleted",
        "Machine deleted",
        c.now_ms,
    )?;
    Ok(Reply::NoContent)
}

// ---------------------------------------------------------------- simple ops

/// `GET machines/{system_id}/?op=power_parameters` (admin).
pub fn power_parameters(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let sm = load(c)?;
    Ok(Reply::Json(Value::Object(sm.record.extra.power_parameters)))
}

/// `GET machines/?op=power_parameters&id=…` (admin).
pub fn power_parameters_many(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let ids = c.params.get_list("id");
    let mut out = Map::new();
    for sm in machines::list(c.conn)? {
        let m = &sm.record.machine;
        if ids.is_empty() || ids.iter().any(|i| i == m.system_id.as_str()) {
            out.insert(
                m.system_id.to_string(),
                Value::Object(sm.record.extra.power_parameters.clone()),
            );
        }
    }
    Ok(Reply::Json(Value::Object(out)))
}

/// `POST machines/{system_id}/?op=set_owner_data`: every parameter but `op`
/// is a key; an empty value deletes the key.
pub fn set_owner_data(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let mut sm = load(c)?;
    super::machine_ops::authorize_owner_edit(&sm.record.machine, &user)?;
    // MAAS: owner data belongs to the owner; anyone else (an admin too)
    // gets 409.
    if sm.record.machine.owner.as_deref() != Some(user.username.as_str()) {
        return Err(ApiError::conflict(
            "Cannot set owner data: the machine is not owned by the requesting user.",
        ));
    }
    for k in c.params.keys() {
        if k == "op" {
            continue;
        }
        let v = c.params.get(k).unwrap_or_default();
        if v.is_empty() {
            sm.record.extra.owner_data.remove(k);
        } else {
            sm.record.extra.owner_data.insert(k.to_owned(), json!(v));
        }
    }
    save(c, &mut sm)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// Ops MAAS supports that change nothing this server models yet (network
/// and storage configuration restore, gateway clearing): the machine is
/// returned unchanged after the permission check.
pub fn noop_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let sm = load(c)?;
    super::machine_ops::authorize_admin_edit(&sm.record.machine, &user)?;
    Ok(Reply::Json(render(c, &sm)?))
}

/// `GET machines/{system_id}/?op=details`: BSON of commissioning output;
/// an empty BSON document until commissioning data is stored.
pub fn details(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    load(c)?;
    // The empty BSON document: int32 length 5, then the terminating NUL.
    Ok(Reply::Raw("application/bson", vec![5, 0, 0, 0, 0]))
}

/// `GET machines/{system_id}/?op=get_token` (admin): the node's metadata
/// token, created on first use.
pub fn get_token(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let sm = load(c)?;
    let t = node_token(c.conn, &sm.record.machine, c.now_ms)?;
    Ok(Reply::Json(json!({
        "token_key": t.token_key,
        "token_secret": t.token_secret,
        "consumer_key": t.consumer_key,
    })))
}

/// The user node tokens belong to (MAAS's `node-init-user`).
pub const NODE_INIT_USER: &str = "maas-init-node";

/// The machine's metadata token (named by its system id), created once.
pub fn node_token(
    conn: &mut DbConn,
    m: &Machine,
    now_ms: i64,
) -> Result<crate::db::users::Token, ApiError> {
    use crate::db::users;
    if users::by_name(conn, NODE_INIT_USER)?.is_none() {
        // No password login: the hash of a random string nobody knows.
        let pw: String = (0..32)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        // Two first `get_token` calls can race here (GET runs outside a
        // transaction): the loser's insert fails on the unique username,
        // and the user it wanted exists.
        if let Err(e) = users::create(conn, NODE_INIT_USER, "", &pw, false, now_ms)
            && users::by_name(conn, NODE_INIT_USER)?.is_none()
        {
            return Err(e.into());
        }
    }
    let name = format!("node:{}", m.system_id);
    if let Some(t) = users::tokens_of(conn, NODE_INIT_USER)?
        .into_iter()
        .find(|t| t.name == name)
    {
        return Ok(t);
    }
    Ok(users::create_token(conn, NODE_INIT_USER, &name, now_ms)?)
}

/// `GET machines/{system_id}/?op=get_curtin_config`: the curtin
/// configuration `maas_core::render::curtin` builds for the machine (its
/// storage, network, reporting and datasource), as YAML `text/plain` like
/// MAAS; 400 outside Deploying, Deployed and Failed deployment.
pub fn get_curtin_config(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let sm = load(c)?;
    let m = &sm.record.machine;
    if !matches!(
        m.status,
        NodeStatus::Deploying | NodeStatus::Deployed | NodeStatus::FailedDeployment
    ) {
        return Err(ApiError::bad_request(format!(
            "Machine {} is not in a deployment state.",
            m.hostname
        )));
    }
    let t = node_token(c.conn, m, c.now_ms)?;
    let mut ctx = maas_core::RenderContext {
        maas_url: format!("{}/MAAS", c.base),
        token: maas_core::render::NodeToken {
            consumer_key: t.consumer_key,
            token_key: t.token_key,
            token_secret: t.token_secret,
        },
        swap_size: sm.record.extra.swap_size,
        ..maas_core::RenderContext::default()
    };
    crate::metadata::add_deployment_settings(c.conn, m, &mut ctx)?;
    // Without commissioning nothing set a layout yet; MAAS would have
    // applied the default one then, so render with it.
    let mut with_layout;
    let m = if m.storage.is_empty() && m.boot_disk().is_some() {
        with_layout = m.clone();
        let mut req = maas_core::LayoutRequest::new(maas_core::StorageLayout::Flat);
        req.allow_fallback = true;
        maas_core::storage::apply_layout(&mut with_layout, &req)
            .map_err(|e| ApiError::bad_request(format!("Cannot apply the default layout: {e}")))?;
        &with_layout
    } else {
        m
    };
    let yaml = maas_core::render::curtin_config(m, &ctx).map_err(|e| {
        ApiError::bad_request(format!("Cannot render the curtin configuration: {e}"))
    })?;
    Ok(Reply::Raw("text/plain", yaml.into_bytes()))
}

/// `POST machines/?op=set_zone` (admin).
pub fn set_zone(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let zone = c
        .params
        .get_nonempty("zone")
        .ok_or_else(|| ApiError::field("zone", "This field is required."))?;
    if objects::by_name(c.conn, kinds::ZONE, &zone)?.is_none() {
        return Err(ApiError::field("zone", format!("No such zone: '{zone}'.")));
    }
    for id in c.params.get_list("nodes") {
        let sid: SystemId = id
            .parse()
            .map_err(|_| ApiError::field("nodes", format!("Unknown node: {id}")))?;
        let mut sm = machines::get(c.conn, &sid)?
            .ok_or_else(|| ApiError::field("nodes", format!("Unknown node: {id}")))?;
        sm.record.machine.zone = zone.clone();
        save(c, &mut sm)?;
    }
    Ok(Reply::NoContent)
}

// ---------------------------------------------------------------- sub-resources

/// MAAS's 404 for a sub-resource (`Interface`, `BlockDevice`).
fn no_such(what: &str) -> ApiError {
    ApiError::not_found(format!("No {what} matches the given query."))
}

/// The machine of path parameter 0 and the `what` id of parameter 1.
pub(crate) fn sub_of(c: &mut Call<'_>, what: &str) -> Result<(StoredMachine, u64), ApiError> {
    let sm = load(c)?;
    let id: u64 = c.path_param(1).parse().map_err(|_| no_such(what))?;
    Ok((sm, id))
}

/// `GET nodes/{system_id}/interfaces/`.
pub fn interfaces_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let sm = load(c)?;
    let m = &sm.record.machine;
    Ok(Reply::Json(
        m.interfaces.iter().map(|i| interface_json(m, i)).collect(),
    ))
}

/// `GET nodes/{system_id}/interfaces/{id}/`.
pub fn interface_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let (sm, id) = sub_of(c, "Interface")?;
    let m = &sm.record.machine;
    let i = m
        .interfaces
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| no_such("Interface"))?;
    Ok(Reply::Json(interface_json(m, i)))
}

/// `GET nodes/{system_id}/blockdevices/`.
pub fn blockdevices_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let sm = load(c)?;
    let m = &sm.record.machine;
    Ok(Reply::Json(
        m.block_devices
            .iter()
            .map(|d| blockdevice_json(m, d))
            .collect(),
    ))
}

fn device_of(c: &mut Call<'_>) -> Result<(StoredMachine, u64), ApiError> {
    let (sm, id) = sub_of(c, "BlockDevice")?;
    if !sm.record.machine.block_devices.iter().any(|d| d.id == id) {
        return Err(no_such("BlockDevice"));
    }
    Ok((sm, id))
}

/// `GET nodes/{system_id}/blockdevices/{id}/`.
pub fn blockdevice_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let (sm, id) = device_of(c)?;
    let m = &sm.record.machine;
    let d = m
        .block_devices
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| no_such("BlockDevice"))?;
    Ok(Reply::Json(blockdevice_json(m, d)))
}

/// `GET nodes/{system_id}/blockdevices/{device_id}/partitions/`: the
/// storage model has no partitions until a layout is applied.
pub fn partitions_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    device_of(c)?;
    Ok(Reply::Json(json!([])))
}

/// `GET nodes/{system_id}/blockdevices/{device_id}/partition/{id}`.
pub fn partition_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    device_of(c)?;
    Err(ApiError::not_found("No Partition matches the given query."))
}

/// MAAS's `NodeForm.clean_swap_size`: empty clears it (curtin's default),
/// else bytes, optionally with a decimal `K`, `M`, `G` or `T` suffix.
/// MAAS stores a negative number as is (and would render `swap: {size:
/// -1B}` for curtin); maasd refuses it instead of guessing what was meant.
fn parse_swap_size(v: &str) -> Result<Option<u64>, ApiError> {
    let bad = || ApiError::field("swap_size", format!("Invalid size for swap: {v}"));
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (digits, unit) = match v.as_bytes()[v.len() - 1] {
        b'K' => (&v[..v.len() - 1], 1_000u64),
        b'M' => (&v[..v.len() - 1], 1_000_000),
        b'G' => (&v[..v.len() - 1], 1_000_000_000),
        b'T' => (&v[..v.len() - 1], 1_000_000_000_000),
        _ => (v, 1),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit).map(Some).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_normalise() {
        assert_eq!(normalise_arch("amd64", None).unwrap(), "amd64/generic");
        assert_eq!(normalise_arch("arm64/xgene", None).unwrap(), "arm64/xgene");
        assert_eq!(
            normalise_arch("amd64", Some("hwe-22.04")).unwrap(),
            "amd64/hwe-22.04"
        );
        assert_eq!(normalise_arch("z80", None).unwrap_err().status, 400);
        assert_eq!(
            normalise_arch("amd64/generic/x", None).unwrap_err().status,
            400
        );
    }

    #[test]
    fn power_parameters_are_checked_per_type() {
        let mut p = Map::new();
        assert!(check_power("manual", &mut p).is_ok());
        assert_eq!(check_power("nope", &mut p).unwrap_err().status, 400);
        let e = check_power("redfish", &mut p).unwrap_err();
        assert_eq!(e.status, 400);
        let mut w = Map::new();
        for k in ["power_on_uri", "power_off_uri", "power_query_uri"] {
            w.insert(k.into(), json!("http://127.0.0.1/x"));
        }
        check_power("webhook", &mut w).unwrap();
        assert_eq!(w["power_on_regex"], json!(r"status.*\:.*running"));
    }

    #[test]
    fn hostnames() {
        assert!(valid_hostname("node-1"));
        assert!(!valid_hostname("-bad"));
        assert!(!valid_hostname("has_underscore"));
        assert!(!valid_hostname(""));
    }

    #[test]
    fn status_filter_names() {
        assert_eq!(status_by_filter_name("ready"), Some(NodeStatus::Ready));
        assert_eq!(
            status_by_filter_name("Failed deployment"),
            Some(NodeStatus::FailedDeployment)
        );
        assert_eq!(status_by_filter_name("4"), Some(NodeStatus::Ready));
        assert_eq!(status_by_filter_name("bogus"), None);
    }

    #[test]
    fn swap_size_follows_maas_and_refuses_negatives() {
        assert_eq!(super::parse_swap_size("").unwrap(), None);
        assert_eq!(super::parse_swap_size("0").unwrap(), Some(0));
        assert_eq!(super::parse_swap_size("4096").unwrap(), Some(4096));
        assert_eq!(super::parse_swap_size("2G").unwrap(), Some(2_000_000_000));
        assert_eq!(super::parse_swap_size("5M").unwrap(), Some(5_000_000));
        for bad in ["-1", "-1G", "abc", "1.5G", "G", "99999999999T"] {
            let e = super::parse_swap_size(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn swap_size_parser_never_panics(s in ".{0,24}") {
            let _ = super::parse_swap_size(&s);
        }

        #[test]
        fn swap_size_round_trips_bytes(n in 0u64..u64::MAX) {
            proptest::prop_assert_eq!(super::parse_swap_size(&n.to_string()).unwrap(), Some(n));
        }
    }
}
