//! MAAS's controller handlers (`RackControllersHandler`,
//! `RackControllerHandler`, `RegionControllersHandler`,
//! `RegionControllerHandler`) answered for the one controller this process
//! is: a region and rack controller ([`crate::controller`]).
//!
//! As MAAS 3.6: anyone logged in lists and reads controllers;
//! `import_boot_images`, `list_boot_images` and `describe_power_types` are
//! for admins. `import_boot_images` answers 202 `Accepted` as MAAS does,
//! and (unlike MAAS 3.6, where racks no longer import) starts the import
//! `boot-resources/?op=import` starts, into the store the rack serves.

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::json::{domain_json, kinds, zone_json};
use super::{ApiError, Call, Reply};
use crate::controller::{self, NODE_TYPE, NODE_TYPE_NAME};
use crate::db::objects;

/// Which handler renders the controller (its `resource_uri`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Rack,
    Region,
}

impl Role {
    fn collection(self) -> &'static str {
        match self {
            Role::Rack => "rackcontrollers",
            Role::Region => "regioncontrollers",
        }
    }
    fn model(self) -> &'static str {
        match self {
            Role::Rack => "RackController",
            Role::Region => "RegionController",
        }
    }
}

/// The controller's system id (stored when the database is opened, see
/// [`crate::AppState::open`]).
fn system_id(c: &mut Call<'_>) -> Result<String, ApiError> {
    controller::system_id(c.conn)?
        .map(|id| id.as_str().to_owned())
        .ok_or_else(|| ApiError::internal("the controller has no system id"))
}

/// The MAC of interface `name` as the kernel reports it.
fn interface_mac(name: &str) -> Option<String> {
    // A name with a path separator is not an interface name.
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let mac = text.trim().to_owned();
    (!mac.is_empty()).then_some(mac)
}

/// The controller as MAAS renders a region and rack controller.
fn render(c: &mut Call<'_>, role: Role, sid: &str) -> Result<Value, ApiError> {
    let ctl = &c.state.controller;
    let host = &ctl.host;
    let net = ctl.network();
    let domain_name = super::resources::default_domain(c.conn)?;
    let domain = match objects::by_name(c.conn, kinds::DOMAIN, &domain_name)? {
        Some(d) => domain_json(&d, 0),
        None => json!({"name": domain_name}),
    };
    let zone = match objects::by_name(c.conn, kinds::ZONE, "default")? {
        Some(z) => zone_json(&z),
        None => json!({"name": "default"}),
    };
    let ips: Vec<String> = net.ip_addresses().iter().map(|ip| ip.to_string()).collect();
    // The interface the rack serves on, as configured: its name and the
    // MAC the kernel reports for it, with the boot address linked.
    let interfaces: Vec<Value> = match &net.rack {
        Some((addr, name)) => {
            let name = name.clone().unwrap_or_default();
            let mac = interface_mac(&name);
            vec![json!({
                "id": 0,
                "system_id": sid,
                "name": if name.is_empty() { "unknown" } else { name.as_str() },
                "type": "physical",
                "mac_address": mac,
                "enabled": true,
                "links": [{"id": 0, "mode": "static", "ip_address": addr.to_string()}],
                "parents": [],
                "children": [],
                "tags": [],
                "params": "",
                "discovered": null,
                "vlan": null,
                "effective_mtu": 1500,
                "link_connected": true,
            })]
        }
        None => Vec::new(),
    };
    let unknown = "Unknown";
    Ok(json!({
        "system_id": sid,
        "hostname": host.hostname,
        "description": "",
        "hardware_uuid": null,
        "domain": domain,
        "fqdn": format!("{}.{}", host.hostname, domain_name),
        "architecture": host.architecture,
        "cpu_count": host.cpu_count,
        "cpu_speed": 0,
        "memory": host.memory_mib,
        "swap_size": null,
        "osystem": host.osystem,
        "distro_series": host.distro_series,
        "power_type": "",
        "power_state": "unknown",
        "ip_addresses": ips,
        "interface_set": interfaces,
        "zone": zone,
        "pool": null,
        "owner": null,
        "status_action": "",
        "node_type": NODE_TYPE,
        "node_type_name": NODE_TYPE_NAME,
        "service_set": ctl.services.to_json(),
        "current_commissioning_result_id": null,
        "current_testing_result_id": null,
        "current_installation_result_id": null,
        "version": env!("CARGO_PKG_VERSION"),
        "commissioning_status": -1,
        "commissioning_status_name": unknown,
        "testing_status": -1,
        "testing_status_name": unknown,
        "cpu_test_status": -1,
        "cpu_test_status_name": unknown,
        "memory_test_status": -1,
        "memory_test_status_name": unknown,
        "network_test_status": -1,
        "network_test_status_name": unknown,
        "storage_test_status": -1,
        "storage_test_status_name": unknown,
        "other_test_status": -1,
        "other_test_status_name": unknown,
        "interface_test_status": -1,
        "interface_test_status_name": unknown,
        "tag_names": [],
        "resource_uri": format!("/MAAS/api/2.0/{}/{sid}/", role.collection()),
    }))
}

/// Whether the controller passes the list filters MAAS's `NodesHandler`
/// takes that mean something here; a filter with no value passes.
fn passes(c: &Call<'_>, v: &Value) -> bool {
    let one_of = |key: &str, have: &str| {
        let want = c.params.get_list(key);
        want.is_empty() || want.iter().any(|w| w == have)
    };
    let str_of = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let arch = str_of("architecture");
    let arches = c.params.get_list("arch");
    let macs = c.params.get_list("mac_address");
    let my_macs: Vec<String> = v["interface_set"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["mac_address"].as_str().map(str::to_ascii_lowercase))
        .collect();
    let sid = str_of("system_id");
    let mut ids = c.params.get_list("id");
    ids.extend(c.params.get_list("system_id"));
    // libmaas sends host names as given; MAAS matches their first label.
    let hostnames = c.params.get_list("hostname");
    let hostname = str_of("hostname");
    (ids.is_empty() || ids.contains(&sid))
        && (hostnames.is_empty()
            || hostnames
                .iter()
                .any(|h| h.split('.').next() == Some(hostname.as_str())))
        && one_of("domain", v["domain"]["name"].as_str().unwrap_or_default())
        && one_of("zone", v["zone"]["name"].as_str().unwrap_or_default())
        && (arches.is_empty()
            || arches
                .iter()
                .any(|a| arch == *a || arch.split('/').next() == Some(a.as_str())))
        && (macs.is_empty()
            || macs
                .iter()
                .any(|m| my_macs.contains(&m.replace('-', ":").to_ascii_lowercase())))
}

fn list(c: &mut Call<'_>, role: Role) -> Result<Reply, ApiError> {
    c.user()?;
    let sid = system_id(c)?;
    let v = render(c, role, &sid)?;
    let out = if passes(c, &v) { vec![v] } else { Vec::new() };
    Ok(Reply::Json(Value::Array(out)))
}

/// The controller named by the path, or MAAS's 404.
fn this(c: &mut Call<'_>, role: Role) -> Result<String, ApiError> {
    let sid = system_id(c)?;
    if c.path_param(0) == sid {
        Ok(sid)
    } else {
        Err(ApiError::not_found(format!(
            "No {} matches the given query.",
            role.model()
        )))
    }
}

fn read(c: &mut Call<'_>, role: Role) -> Result<Reply, ApiError> {
    c.user()?;
    let sid = this(c, role)?;
    Ok(Reply::Json(render(c, role, &sid)?))
}

/// `GET rackcontrollers/`.
pub fn racks_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    list(c, Role::Rack)
}

/// `GET rackcontrollers/{system_id}/`.
pub fn rack_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    read(c, Role::Rack)
}

/// `GET regioncontrollers/`.
pub fn regions_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    list(c, Role::Region)
}

/// `GET regioncontrollers/{system_id}/`.
pub fn region_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    read(c, Role::Region)
}

/// The list filters the controller is matched against; a `nodes/` list
/// with any other filter (status, owner, tags, paging…) is about machines.
const CONTROLLER_FILTERS: &[&str] = &[
    "id",
    "system_id",
    "hostname",
    "domain",
    "zone",
    "arch",
    "mac_address",
];

/// `GET nodes/`: the machines, then the controller (MAAS's `NodesHandler`
/// lists every node type) when it passes the filters.
pub fn nodes_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let machines = super::machines::list(c)?;
    let only_controller_filters = c
        .params
        .pairs()
        .iter()
        .all(|(k, _)| CONTROLLER_FILTERS.contains(&k.as_str()));
    if !only_controller_filters {
        return Ok(machines);
    }
    let sid = system_id(c)?;
    let v = render(c, Role::Rack, &sid)?;
    if !passes(c, &v) {
        return Ok(machines);
    }
    Ok(match machines {
        Reply::Raw(ct, body) => Reply::Raw(ct, append_to_array(body, &v)),
        Reply::Json(Value::Array(mut a)) => {
            a.push(v);
            Reply::Json(Value::Array(a))
        }
        other => other,
    })
}

/// `body`, a serialised JSON array, with `v` appended.
fn append_to_array(mut body: Vec<u8>, v: &Value) -> Vec<u8> {
    while body.last().is_some_and(u8::is_ascii_whitespace) {
        body.pop();
    }
    if body.pop() != Some(b']') {
        // Not an array: leave the answer as it was.
        body.push(b']');
        return body;
    }
    let empty = body
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    if !empty {
        body.push(b',');
    }
    body.extend_from_slice(v.to_string().as_bytes());
    body.push(b']');
    body
}

/// `GET nodes/{system_id}/` for the controller (MAAS's `NodeHandler` reads
/// every node type); machines otherwise.
pub fn node_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let sid = system_id(c)?;
    if c.path_param(0) == sid {
        return Ok(Reply::Json(render(c, Role::Rack, &sid)?));
    }
    super::machines::read(c)
}

/// Starts the import `boot-resources/?op=import` starts (one at a time).
fn start_import(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.admin()?.username.clone();
    let started = c
        .state
        .images
        .start_import(c.state.pool.clone(), c.state.clock.clone(), user)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !started {
        tracing::info!("images: rack import requested while one is running");
    }
    Ok(Reply::Text(202, "Accepted"))
}

/// `POST rackcontrollers/?op=import_boot_images` (admin).
pub fn racks_import_boot_images(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    start_import(c)
}

/// `POST rackcontrollers/{system_id}/?op=import_boot_images` (admin).
pub fn rack_import_boot_images(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    this(c, Role::Rack)?;
    start_import(c)
}

/// `GET rackcontrollers/{system_id}/?op=list_boot_images` (admin): the
/// images the rack's store holds and whether the selected ones are all
/// there (`syncing` while an import runs).
pub fn rack_list_boot_images(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    this(c, Role::Rack)?;
    Ok(Reply::Json(controller::boot_images(
        c.conn,
        &c.state.images,
    )?))
}

/// MAAS's field type of a power parameter.
fn field_type(p: &maas_power::ParamSpec) -> &'static str {
    if p.secret {
        "password"
    } else if !p.choices.is_empty() && p.multiple {
        "multiple_choice"
    } else if !p.choices.is_empty() {
        "choice"
    } else if p.name == "mac_address" {
        "mac_address"
    } else {
        "string"
    }
}

/// The power drivers' schemas as MAAS's `describe_power_types` lists them.
fn power_types() -> Result<&'static Value, ApiError> {
    static TYPES: OnceLock<Value> = OnceLock::new();
    if let Some(v) = TYPES.get() {
        return Ok(v);
    }
    let registry = maas_power::Registry::with_builtin().map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for name in registry.power_types() {
        let d = registry.get(name).map_err(ApiError::internal)?;
        let fields: Vec<Value> = d
            .schema()
            .iter()
            .map(|p| {
                let ftype = field_type(p);
                let default = match (p.default, ftype) {
                    (Some(v), "multiple_choice") => json!(v.split(',').collect::<Vec<_>>()),
                    (Some(v), _) => json!(v),
                    (None, "multiple_choice") => json!([]),
                    (None, _) => json!(""),
                };
                json!({
                    "name": p.name,
                    "label": p.label,
                    "required": p.required,
                    "field_type": ftype,
                    "choices": p.choices.iter().map(|c| [c, c]).collect::<Vec<_>>(),
                    "default": default,
                    "scope": match p.scope {
                        maas_power::Scope::Bmc => "bmc",
                        maas_power::Scope::Node => "node",
                    },
                    "secret": p.secret,
                })
            })
            .collect();
        out.push(json!({
            "driver_type": "power",
            "name": name,
            "description": d.description(),
            "fields": fields,
            "missing_packages": [],
            "chassis": false,
            "can_probe": false,
            "queryable": d.capabilities().queryable,
        }));
    }
    Ok(TYPES.get_or_init(|| Value::Array(out)))
}

/// `GET rackcontrollers/?op=describe_power_types` (admin).
pub fn describe_power_types(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    Ok(Reply::Json(power_types()?.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_types_describe_every_builtin_driver() {
        let v = power_types().unwrap();
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        for n in ["ipmi", "manual", "redfish", "virsh", "webhook"] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        let ipmi = v
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "ipmi")
            .unwrap();
        assert_eq!(ipmi["driver_type"], "power");
        assert_eq!(ipmi["queryable"], true);
        let field = |n: &str| {
            ipmi["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == n)
                .unwrap()
                .clone()
        };
        assert_eq!(field("power_address")["required"], true);
        assert_eq!(field("power_pass")["field_type"], "password");
        assert_eq!(field("power_pass")["secret"], true);
        assert_eq!(field("mac_address")["scope"], "node");
        let driver = field("power_driver");
        assert_eq!(driver["field_type"], "choice");
        assert_eq!(driver["choices"][0][0], driver["choices"][0][1]);
    }

    #[test]
    fn append_to_array_keeps_json_valid() {
        let v = json!({"a": 1});
        let one = append_to_array(b"[]".to_vec(), &v);
        assert_eq!(
            serde_json::from_slice::<Value>(&one).unwrap(),
            json!([{"a": 1}])
        );
        let two = append_to_array(b"[{\"b\":2}]\n".to_vec(), &v);
        assert_eq!(
            serde_json::from_slice::<Value>(&two).unwrap(),
            json!([{"b": 2}, {"a": 1}])
        );
    }

    #[test]
    fn interface_mac_refuses_paths() {
        assert_eq!(interface_mac("../etc"), None);
        assert_eq!(interface_mac("a/b"), None);
        assert_eq!(interface_mac(""), None);
        assert_eq!(interface_mac("lo").as_deref(), Some("00:00:00:00:00:00"));
    }
}
