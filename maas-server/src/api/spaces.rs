//! Spaces and static routes (MAAS's `SpacesHandler`/`SpaceHandler` and
//! `StaticRoutesHandler`/`StaticRouteHandler`).
//!
//! A space groups VLANs: a VLAN's `space` field holds the space's name, and
//! a VLAN without one is in MAAS's pseudo-space `undefined` (id -1), which
//! the list shows while any VLAN is in it. Static routes join two subnets
//! through a gateway on the source subnet; deployed machines get the routes
//! of the subnets they have addresses on ([`render_routes`]).
//!
//! Both live as documents in the generic `objects` table: nothing filters
//! them in SQL, and a deployment reads every route anyway.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::json::kinds;
use super::network::{subnet_json, vlan_json};
use super::{ApiError, Call, ErrorBody, Params, Reply};
use crate::db::{DbConn, machines as dbm, objects};

/// The name MAAS reserves for VLANs without a space.
pub const UNDEFINED: &str = "undefined";

const UNDEFINED_DESCRIPTION: &str =
    "Backward compatibility object to ensure objects not associated with a space can be found.";

/// Form errors, `{field: [message, …]}`, as MAAS's `MAASAPIValidationError`.
#[derive(Default)]
struct FormErrors(Map<String, Value>);

impl FormErrors {
    fn add(&mut self, field: &str, msg: impl Into<String>) {
        let e = self.0.entry(field).or_insert_with(|| json!([]));
        if let Value::Array(a) = e {
            a.push(json!(msg.into()));
        }
    }
    fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
}

// --- spaces

/// What a space name must be (MAAS `validate_space_name` and
/// `Space.clean_name`); `own_id` is the space's id when it is renamed.
pub fn check_space_name(name: &str, own_id: Option<i64>) -> Result<(), String> {
    let len = name.chars().count();
    if len > 256 {
        return Err(format!(
            "Ensure this value has at most 256 characters (it has {len})."
        ));
    }
    // Python's `^[\w-]+$` on a str: Unicode word characters and '-'.
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("Invalid space name: {name}."));
    }
    if name == UNDEFINED {
        return Err("Reserved space name.".into());
    }
    // `space-<n>` is what MAAS names unnamed spaces: only space n may.
    if let Some(n) = name.strip_prefix("space-")
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && own_id.is_none_or(|id| name != format!("space-{id}"))
    {
        return Err("Reserved space name.".into());
    }
    Ok(())
}

/// The id a specifier names, as MAAS's `get_object_id`: an integer, or
/// `<prefix>-<integer>`.
fn specifier_id(key: &str, prefix: &str) -> Option<i64> {
    let key = key.trim();
    if let Ok(id) = key.parse::<i64>() {
        return Some(id);
    }
    key.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// The space a specifier names: an id, `space-<id>`, `name:<name>` or a
/// name. A purely numeric name is therefore only reachable through
/// `name:`, as in MAAS.
pub fn find_space(conn: &mut DbConn, key: &str) -> Result<Option<objects::Object>, ApiError> {
    if let Some(name) = key.strip_prefix("name:") {
        return Ok(objects::by_name(conn, kinds::SPACE, name)?);
    }
    if let Some(id) = key.strip_prefix("id:").map_or_else(
        || specifier_id(key, "space"),
        |v| v.trim().parse::<i64>().ok(),
    ) {
        return Ok(objects::get(conn, kinds::SPACE, id)?);
    }
    Ok(objects::by_name(conn, kinds::SPACE, key)?)
}

/// Fabric names by id, for VLAN JSON.
fn fabric_names(conn: &mut DbConn) -> Result<HashMap<i64, String>, ApiError> {
    Ok(objects::list(conn, kinds::FABRIC)?
        .into_iter()
        .map(|f| (f.id, f.name))
        .collect())
}

fn vlan_space(v: &objects::Object) -> Option<&str> {
    v.data
        .get("space")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A space's JSON; `None` is the `undefined` pseudo-space.
fn space_json(conn: &mut DbConn, space: Option<&objects::Object>) -> Result<Value, ApiError> {
    let fabrics = fabric_names(conn)?;
    let name = space.map(|s| s.name.as_str());
    let vlans: Vec<objects::Object> = objects::list(conn, kinds::VLAN)?
        .into_iter()
        .filter(|v| vlan_space(v) == name)
        .collect();
    let vlan_ids: Vec<i64> = vlans.iter().map(|v| v.id).collect();
    let mut subnets = Vec::new();
    for s in objects::list(conn, kinds::SUBNET)? {
        let vid = s.data.get("vlan_id").and_then(Value::as_i64).unwrap_or(0);
        if vlan_ids.contains(&vid) {
            subnets.push(subnet_json(conn, &s)?);
        }
    }
    let vlans: Vec<Value> = vlans
        .iter()
        .map(|v| {
            let mut j = vlan_json(v);
            let fid = v.data.get("fabric_id").and_then(Value::as_i64).unwrap_or(0);
            if let Some(f) = fabrics.get(&fid) {
                j["fabric"] = json!(f);
            }
            j
        })
        .collect();
    Ok(match space {
        Some(s) => json!({
            "id": s.id,
            "name": s.name,
            "description": s.data.get("description").cloned().unwrap_or(json!("")),
            "vlans": vlans,
            "subnets": subnets,
            "resource_uri": format!("/MAAS/api/2.0/spaces/{}/", s.id),
        }),
        None => json!({
            "id": -1,
            "name": UNDEFINED,
            "description": UNDEFINED_DESCRIPTION,
            "vlans": vlans,
            "subnets": subnets,
            "resource_uri": format!("/MAAS/api/2.0/spaces/{UNDEFINED}/"),
        }),
    })
}

/// Whether any VLAN is in no space (MAAS then lists `undefined`).
fn has_undefined(conn: &mut DbConn) -> Result<bool, ApiError> {
    Ok(objects::list(conn, kinds::VLAN)?
        .iter()
        .any(|v| vlan_space(v).is_none()))
}

/// The space of the path, 404 when there is none.
fn space_by_path(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let key = c.path_param(0).to_owned();
    find_space(c.conn, &key)?
        .ok_or_else(|| ApiError::not_found("No Space matches the given query."))
}

fn is_undefined_key(key: &str) -> bool {
    key == "-1" || key == UNDEFINED
}

/// Moves every VLAN in space `from` to `to` (`None`: undefined), and the
/// VLAN references machines' interfaces keep, which allocation filters
/// by space.
fn move_vlans(
    conn: &mut DbConn,
    from: &str,
    to: Option<&str>,
    now_ms: i64,
) -> Result<(), ApiError> {
    let mut moved = Vec::new();
    for mut v in objects::list(conn, kinds::VLAN)? {
        if vlan_space(&v) == Some(from) {
            match to {
                Some(n) => v.data.insert("space".into(), json!(n)),
                None => v.data.remove("space"),
            };
            objects::update(conn, kinds::VLAN, &v)?;
            moved.push(v.id);
        }
    }
    sync_machines(conn, &moved, to.unwrap_or(""), now_ms)
}

/// Rewrites the space of the VLAN references (and their subnets') in
/// machine records for the VLANs `vlan_ids`.
pub(super) fn sync_machines(
    conn: &mut DbConn,
    vlan_ids: &[i64],
    space: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    if vlan_ids.is_empty() {
        return Ok(());
    }
    for mut sm in dbm::list(conn)? {
        let mut changed = false;
        for i in &mut sm.record.machine.interfaces {
            let Some(v) = i.vlan.as_mut() else { continue };
            if !vlan_ids.contains(&(v.id as i64)) {
                continue;
            }
            if v.space != space {
                v.space = space.to_owned();
                changed = true;
            }
            for s in i.links.iter_mut().filter_map(|l| l.subnet.as_mut()) {
                if s.space != space {
                    s.space = space.to_owned();
                    changed = true;
                }
            }
        }
        // Writes run in one transaction, so the version cannot move.
        if changed && !dbm::update(conn, &sm, now_ms)? {
            return Err(ApiError::conflict(
                "A machine changed while its VLAN's space was updated; retry.",
            ));
        }
    }
    Ok(())
}

/// `GET spaces/`: every space, then `undefined` when a VLAN is in it.
pub fn spaces_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let mut out = Vec::new();
    for s in objects::list(c.conn, kinds::SPACE)? {
        out.push(space_json(c.conn, Some(&s))?);
    }
    if has_undefined(c.conn)? {
        out.push(space_json(c.conn, None)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// Checks a space name from the form, `None` when the field is absent or
/// empty (MAAS then names it `space-<id>`).
fn form_name(p: &Params, own_id: Option<i64>) -> Result<Option<String>, ApiError> {
    let Some(name) = p.get("name").map(|n| n.trim().to_owned()) else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    check_space_name(&name, own_id).map_err(|m| ApiError::field("name", m))?;
    Ok(Some(name))
}

fn ensure_unique(conn: &mut DbConn, name: &str, own_id: Option<i64>) -> Result<(), ApiError> {
    match objects::by_name(conn, kinds::SPACE, name)? {
        Some(o) if Some(o.id) != own_id => Err(ApiError::field(
            "name",
            "Space with this Name already exists.",
        )),
        _ => Ok(()),
    }
}

/// `POST spaces/` (admin): `name` (default `space-<id>`), `description`.
pub fn spaces_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = form_name(c.params, None)?;
    if let Some(n) = &name {
        ensure_unique(c.conn, n, None)?;
    }
    let mut d = Map::new();
    d.insert(
        "description".into(),
        json!(c.params.get("description").unwrap_or_default()),
    );
    let mut s = objects::insert(c.conn, kinds::SPACE, name.as_deref().unwrap_or(""), &d)?;
    if name.is_none() {
        s.name = format!("space-{}", s.id);
        ensure_unique(c.conn, &s.name, Some(s.id))?;
        objects::update(c.conn, kinds::SPACE, &s)?;
    }
    Ok(Reply::Json(space_json(c.conn, Some(&s))?))
}

/// `GET spaces/{id}/`; `-1`, and `undefined` while a VLAN is in no space,
/// read the pseudo-space.
pub fn space_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let key = c.path_param(0).to_owned();
    // MAAS: `id == "-1" or (id == "undefined" and _has_undefined_space())`.
    if key == "-1" || (key == UNDEFINED && has_undefined(c.conn)?) {
        return Ok(Reply::Json(space_json(c.conn, None)?));
    }
    let s = space_by_path(c)?;
    Ok(Reply::Json(space_json(c.conn, Some(&s))?))
}

/// `PUT spaces/{id}/` (admin): `name`, `description`. Renaming moves the
/// VLANs along.
pub fn space_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    if is_undefined_key(c.path_param(0)) {
        return Err(ApiError::bad_request(format!(
            "Space cannot be modified: {UNDEFINED}"
        )));
    }
    let mut s = space_by_path(c)?;
    c.admin()?;
    let old = s.name.clone();
    if c.params.has("name") {
        // An emptied name falls back to the default one (`clean_name`).
        let name = form_name(c.params, Some(s.id))?.unwrap_or_else(|| format!("space-{}", s.id));
        ensure_unique(c.conn, &name, Some(s.id))?;
        s.name = name;
    }
    if let Some(d) = c.params.get("description") {
        s.data.insert("description".into(), json!(d));
    }
    objects::update(c.conn, kinds::SPACE, &s)?;
    if s.name != old {
        let now = c.now_ms;
        move_vlans(c.conn, &old, Some(&s.name), now)?;
    }
    Ok(Reply::Json(space_json(c.conn, Some(&s))?))
}

/// `DELETE spaces/{id}/` (admin): its VLANs go back to `undefined`.
pub fn space_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    if is_undefined_key(c.path_param(0)) {
        return Err(ApiError::bad_request(format!(
            "Space cannot be deleted: {UNDEFINED}"
        )));
    }
    let s = space_by_path(c)?;
    c.admin()?;
    let now = c.now_ms;
    move_vlans(c.conn, &s.name, None, now)?;
    objects::delete(c.conn, kinds::SPACE, s.id)?;
    Ok(Reply::NoContent)
}

// --- static routes

/// The subnet a specifier names, as MAAS's `SpecifierOrModelChoiceField`
/// over subnets: an id, `subnet-<id>`, `id:`, `cidr:`, `name:`, a CIDR or
/// a name.
pub fn find_subnet(conn: &mut DbConn, key: &str) -> Result<Option<objects::Object>, ApiError> {
    let key = key.trim();
    let by_cidr = |conn: &mut DbConn, net: IpNet| -> Result<Option<objects::Object>, ApiError> {
        let cidr = net.trunc().to_string();
        Ok(objects::list(conn, kinds::SUBNET)?
            .into_iter()
            .find(|s| s.data.get("cidr").and_then(Value::as_str) == Some(cidr.as_str())))
    };
    if let Some(v) = key.strip_prefix("id:") {
        return match v.trim().parse::<i64>() {
            Ok(id) => Ok(objects::get(conn, kinds::SUBNET, id)?),
            Err(_) => Ok(None),
        };
    }
    if let Some(v) = key.strip_prefix("cidr:") {
        return match v.trim().parse::<IpNet>() {
            Ok(n) => by_cidr(conn, n),
            Err(_) => Ok(None),
        };
    }
    if let Some(v) = key.strip_prefix("name:") {
        return Ok(objects::by_name(conn, kinds::SUBNET, v)?);
    }
    if let Some(id) = specifier_id(key, "subnet") {
        return Ok(objects::get(conn, kinds::SUBNET, id)?);
    }
    if let Ok(n) = key.parse::<IpNet>() {
        return by_cidr(conn, n);
    }
    Ok(objects::by_name(conn, kinds::SUBNET, key)?)
}

fn subnet_net(s: &objects::Object) -> Option<IpNet> {
    s.data
        .get("cidr")
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
}

fn route_json(conn: &mut DbConn, o: &objects::Object) -> Result<Value, ApiError> {
    let subnet = |conn: &mut DbConn, k: &str| -> Result<Value, ApiError> {
        let id = o.data.get(k).and_then(Value::as_i64).unwrap_or(0);
        match objects::get(conn, kinds::SUBNET, id)? {
            Some(s) => subnet_json(conn, &s),
            None => Ok(Value::Null),
        }
    };
    Ok(json!({
        "id": o.id,
        "source": subnet(conn, "source_id")?,
        "destination": subnet(conn, "destination_id")?,
        "gateway_ip": o.data.get("gateway_ip").cloned().unwrap_or(Value::Null),
        "metric": o.data.get("metric").cloned().unwrap_or(json!(0)),
        "resource_uri": format!("/MAAS/api/2.0/static-routes/{}/", o.id),
    }))
}

const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";

/// A subnet field of the route form: absent, naming no subnet (`Err`), or
/// the subnet's id and network.
pub type SubnetField = Option<Result<(i64, IpNet), ()>>;

/// A checked static route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFields {
    /// Source subnet id and network.
    pub source: (i64, IpNet),
    /// Destination subnet id and network.
    pub destination: (i64, IpNet),
    /// Gateway on the source subnet.
    pub gateway: IpAddr,
    /// Metric.
    pub metric: u32,
}

/// MAAS's `StaticRouteForm` and `StaticRoute.clean`, on subnets already
/// looked up (`Err(())`: the specifier matched none). `others` are the
/// other routes' (source, destination, gateway) for the uniqueness check.
pub fn check_route(
    source: SubnetField,
    destination: SubnetField,
    gateway: Option<&str>,
    metric: Option<&str>,
    others: &[(i64, i64, IpAddr)],
) -> Result<RouteFields, Map<String, Value>> {
    let mut e = FormErrors::default();
    let mut subnet = |field: &str, v: SubnetField| match v {
        None => {
            e.add(field, "This field is required.");
            None
        }
        Some(Err(())) => {
            e.add(field, INVALID_CHOICE);
            None
        }
        Some(Ok(s)) => Some(s),
    };
    let source = subnet("source", source);
    let destination = subnet("destination", destination);
    let gateway = match gateway.map(str::trim) {
        None | Some("") => {
            e.add("gateway_ip", "This field is required.");
            None
        }
        Some(g) => match g.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                e.add("gateway_ip", "Enter a valid IPv4 or IPv6 address.");
                None
            }
        },
    };
    let metric = match metric.map(str::trim).filter(|m| !m.is_empty()) {
        None => Some(0),
        Some(m) => match m.parse::<i64>() {
            Err(_) => {
                e.add("metric", "Enter a whole number.");
                None
            }
            Ok(n) if n < 0 => {
                e.add("metric", "Ensure this value is greater than or equal to 0.");
                None
            }
            Ok(n) if n > 2_147_483_647 => {
                e.add(
                    "metric",
                    "Ensure this value is less than or equal to 2147483647.",
                );
                None
            }
            Ok(n) => u32::try_from(n).ok(),
        },
    };
    // The form's own check, then the model's (`clean`), then uniqueness.
    if let (Some(src), Some(gw)) = (source, gateway)
        && !src.1.contains(&gw)
    {
        e.add("gateway_ip", format!("Enter an IP address in {}.", src.1));
    }
    if let (Some(src), Some(dst)) = (source, destination) {
        if src.0 == dst.0 {
            e.add(
                "__all__",
                "source and destination cannot be the same subnet.",
            );
        } else if src.1.addr().is_ipv4() != dst.1.addr().is_ipv4() {
            e.add(
                "__all__",
                "source and destination must be the same IP version.",
            );
        }
    }
    let (Some(source), Some(destination), Some(gateway), Some(metric)) =
        (source, destination, gateway, metric)
    else {
        return Err(e.0);
    };
    if !e.has("gateway_ip")
        && !e.has("__all__")
        && others.contains(&(source.0, destination.0, gateway))
    {
        e.add(
            "__all__",
            "Static route with this Source, Destination and Gateway IP already exists.",
        );
    }
    if !e.0.is_empty() {
        return Err(e.0);
    }
    Ok(RouteFields {
        source,
        destination,
        gateway,
        metric,
    })
}

fn route_by_path(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::STATIC_ROUTE, id)?
        .ok_or_else(|| ApiError::not_found("No StaticRoute matches the given query."))
}

/// Reads the form over `current` (an update keeps what is not given).
fn route_form(
    c: &mut Call<'_>,
    current: Option<&objects::Object>,
) -> Result<Map<String, Value>, ApiError> {
    let mut lookup = |field: &str, id_key: &str| -> Result<SubnetField, ApiError> {
        // A field sent empty is a missing required one; one not sent keeps
        // the route's value (MAAS's forms on an instance).
        let found = match c.params.get(field) {
            Some(key) if key.trim().is_empty() => return Ok(None),
            Some(key) => find_subnet(c.conn, &key)?,
            None => match current
                .and_then(|r| r.data.get(id_key))
                .and_then(Value::as_i64)
            {
                Some(id) => objects::get(c.conn, kinds::SUBNET, id)?,
                None => return Ok(None),
            },
        };
        Ok(Some(
            found
                .and_then(|s| subnet_net(&s).map(|n| (s.id, n)))
                .ok_or(()),
        ))
    };
    let source = lookup("source", "source_id")?;
    let destination = lookup("destination", "destination_id")?;
    let cur = |k: &str| {
        current
            .and_then(|r| r.data.get(k))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    };
    let gateway = c.params.get("gateway_ip").or_else(|| cur("gateway_ip"));
    // An empty metric is the default, 0.
    let metric = c.params.get("metric").or_else(|| cur("metric"));
    let own = current.map(|r| r.id);
    let others: Vec<(i64, i64, IpAddr)> = objects::list(c.conn, kinds::STATIC_ROUTE)?
        .iter()
        .filter(|r| Some(r.id) != own)
        .filter_map(|r| {
            let g = |k: &str| r.data.get(k).and_then(Value::as_i64);
            let gw = r.data.get("gateway_ip")?.as_str()?.parse().ok()?;
            Some((g("source_id")?, g("destination_id")?, gw))
        })
        .collect();
    let f = check_route(
        source,
        destination,
        gateway.as_deref(),
        metric.as_deref(),
        &others,
    )
    .map_err(|m| ApiError {
        status: 400,
        body: ErrorBody::Fields(Value::Object(m)),
    })?;
    let mut d = Map::new();
    d.insert("source_id".into(), json!(f.source.0));
    d.insert("destination_id".into(), json!(f.destination.0));
    d.insert("gateway_ip".into(), json!(f.gateway.to_string()));
    d.insert("metric".into(), json!(f.metric));
    Ok(d)
}

/// `GET static-routes/`.
pub fn routes_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let mut out = Vec::new();
    for r in objects::list(c.conn, kinds::STATIC_ROUTE)? {
        out.push(route_json(c.conn, &r)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST static-routes/` (admin): `source`, `destination`, `gateway_ip`,
/// `metric` (default 0).
pub fn routes_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let d = route_form(c, None)?;
    let r = objects::insert(c.conn, kinds::STATIC_ROUTE, "", &d)?;
    Ok(Reply::Json(route_json(c.conn, &r)?))
}

/// `GET static-routes/{id}/`.
pub fn route_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let r = route_by_path(c)?;
    Ok(Reply::Json(route_json(c.conn, &r)?))
}

/// `PUT static-routes/{id}/` (admin).
pub fn route_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let mut r = route_by_path(c)?;
    c.admin()?;
    r.data = route_form(c, Some(&r))?;
    objects::update(c.conn, kinds::STATIC_ROUTE, &r)?;
    Ok(Reply::Json(route_json(c.conn, &r)?))
}

/// `DELETE static-routes/{id}/` (admin).
pub fn route_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let r = route_by_path(c)?;
    c.admin()?;
    objects::delete(c.conn, kinds::STATIC_ROUTE, r.id)?;
    Ok(Reply::NoContent)
}

/// Deletes the routes from or to subnet `id` (MAAS cascades).
pub(super) fn delete_routes_of(conn: &mut DbConn, subnet_id: i64) -> Result<(), ApiError> {
    for r in objects::list(conn, kinds::STATIC_ROUTE)? {
        let of = |k: &str| r.data.get(k).and_then(Value::as_i64) == Some(subnet_id);
        if of("source_id") || of("destination_id") {
            objects::delete(conn, kinds::STATIC_ROUTE, r.id)?;
        }
    }
    Ok(())
}

/// Every static route, for the renderers.
pub fn render_routes(conn: &mut DbConn) -> Result<Vec<maas_core::StaticRoute>, ApiError> {
    let subnets: HashMap<i64, IpNet> = objects::list(conn, kinds::SUBNET)?
        .iter()
        .filter_map(|s| subnet_net(s).map(|n| (s.id, n)))
        .collect();
    Ok(objects::list(conn, kinds::STATIC_ROUTE)?
        .iter()
        .filter_map(|r| {
            let id = |k: &str| r.data.get(k).and_then(Value::as_i64);
            Some(maas_core::StaticRoute {
                id: r.id as u64,
                source: id("source_id")? as u64,
                destination: *subnets.get(&id("destination_id")?)?,
                gateway: r.data.get("gateway_ip")?.as_str()?.parse().ok()?,
                metric: r
                    .data
                    .get("metric")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(0),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names_as_maas() {
        assert!(check_space_name("dmz", None).is_ok());
        assert!(check_space_name("my_space-2", None).is_ok());
        // Numeric names pass the validator (lookups then read them as ids).
        assert!(check_space_name("42", None).is_ok());
        assert!(check_space_name("myspace-1999", None).is_ok());
        assert_eq!(
            check_space_name("undefined", None).unwrap_err(),
            "Reserved space name."
        );
        assert_eq!(
            check_space_name("space-7", None).unwrap_err(),
            "Reserved space name."
        );
        assert!(check_space_name("space-7", Some(7)).is_ok());
        assert!(check_space_name("space-7", Some(8)).is_err());
        assert_eq!(
            check_space_name("has space", None).unwrap_err(),
            "Invalid space name: has space."
        );
        assert!(check_space_name("a*b", None).is_err());
        assert!(check_space_name(&"x".repeat(257), None).is_err());
    }

    #[test]
    fn specifier_ids() {
        assert_eq!(specifier_id("12", "space"), Some(12));
        assert_eq!(specifier_id("space-12", "space"), Some(12));
        assert_eq!(specifier_id("space-", "space"), None);
        assert_eq!(specifier_id("dmz", "space"), None);
        assert_eq!(specifier_id("subnet-3", "subnet"), Some(3));
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ok(id: i64, cidr: &str) -> SubnetField {
        Some(Ok((id, net(cidr))))
    }

    fn errs(m: Map<String, Value>) -> Value {
        Value::Object(m)
    }

    #[test]
    fn route_checks_as_maas() {
        let r = check_route(
            ok(1, "10.0.0.0/24"),
            ok(2, "10.1.0.0/24"),
            Some("10.0.0.254"),
            None,
            &[],
        )
        .unwrap();
        assert_eq!(r.metric, 0);
        assert_eq!(r.gateway, "10.0.0.254".parse::<IpAddr>().unwrap());

        let e = check_route(None, None, None, None, &[]).unwrap_err();
        assert_eq!(
            errs(e),
            json!({
                "source": ["This field is required."],
                "destination": ["This field is required."],
                "gateway_ip": ["This field is required."],
            })
        );
        let e = check_route(
            ok(1, "10.0.0.0/24"),
            Some(Err(())),
            Some("10.9.0.1"),
            Some("-1"),
            &[],
        )
        .unwrap_err();
        assert_eq!(e["destination"], json!([INVALID_CHOICE]));
        assert_eq!(
            e["gateway_ip"],
            json!(["Enter an IP address in 10.0.0.0/24."])
        );
        assert_eq!(
            e["metric"],
            json!(["Ensure this value is greater than or equal to 0."])
        );
        let e = check_route(
            ok(1, "10.0.0.0/24"),
            ok(1, "10.0.0.0/24"),
            Some("10.0.0.1"),
            Some("x"),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e["__all__"],
            json!(["source and destination cannot be the same subnet."])
        );
        assert_eq!(e["metric"], json!(["Enter a whole number."]));
        let e = check_route(
            ok(1, "10.0.0.0/24"),
            ok(3, "fd00::/64"),
            Some("10.0.0.1"),
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e["__all__"],
            json!(["source and destination must be the same IP version."])
        );
        let e = check_route(
            ok(1, "10.0.0.0/24"),
            ok(2, "10.1.0.0/24"),
            Some("not-an-ip"),
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e["gateway_ip"],
            json!(["Enter a valid IPv4 or IPv6 address."])
        );
        let taken = [(1, 2, "10.0.0.254".parse().unwrap())];
        let e = check_route(
            ok(1, "10.0.0.0/24"),
            ok(2, "10.1.0.0/24"),
            Some("10.0.0.254"),
            Some("5"),
            &taken,
        )
        .unwrap_err();
        assert_eq!(
            e["__all__"],
            json!(["Static route with this Source, Destination and Gateway IP already exists."])
        );
        // Another gateway is another route.
        assert!(
            check_route(
                ok(1, "10.0.0.0/24"),
                ok(2, "10.1.0.0/24"),
                Some("10.0.0.253"),
                None,
                &taken
            )
            .is_ok()
        );
    }
}
