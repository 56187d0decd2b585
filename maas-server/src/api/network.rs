//! Fabrics, VLANs, subnets and IP ranges: what DHCP needs to know.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::json::kinds;
use super::{ApiError, Call, Params, Reply};
use crate::db::{DbConn, objects};

fn g(o: &objects::Object, k: &str, d: Value) -> Value {
    o.data.get(k).cloned().unwrap_or(d)
}

/// A VLAN's JSON (`fabric` as stored; callers that know the fabric set it).
pub(super) fn vlan_json(o: &objects::Object) -> Value {
    let fid = g(o, "fabric_id", json!(0));
    let vid = g(o, "vid", json!(0));
    json!({
        "id": o.id,
        "name": o.name,
        "vid": vid,
        "fabric_id": fid,
        "fabric": g(o, "fabric", json!("")),
        "mtu": g(o, "mtu", json!(1500)),
        "dhcp_on": g(o, "dhcp_on", json!(false)),
        "external_dhcp": null,
        "primary_rack": null,
        "secondary_rack": null,
        "relay_vlan": null,
        "space": match o.data.get("space").and_then(Value::as_str) {
            Some(sp) if !sp.is_empty() => json!(sp),
            _ => json!(super::spaces::UNDEFINED),
        },
        "resource_uri": format!("/MAAS/api/2.0/vlans/{}/", o.id),
    })
}

fn vlans_of(conn: &mut DbConn, fabric_id: i64) -> Result<Vec<objects::Object>, ApiError> {
    Ok(objects::list(conn, kinds::VLAN)?
        .into_iter()
        .filter(|v| v.data.get("fabric_id") == Some(&json!(fabric_id)))
        .collect())
}

fn fabric_json(conn: &mut DbConn, o: &objects::Object) -> Result<Value, ApiError> {
    let vlans: Vec<Value> = vlans_of(conn, o.id)?
        .iter()
        .map(|v| {
            let mut j = vlan_json(v);
            j["fabric"] = json!(o.name);
            j
        })
        .collect();
    Ok(json!({
        "id": o.id,
        "name": o.name,
        "class_type": g(o, "class_type", Value::Null),
        "vlans": vlans,
        "resource_uri": format!("/MAAS/api/2.0/fabrics/{}/", o.id),
    }))
}

fn fabric_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::FABRIC, id)?
        .ok_or_else(|| ApiError::not_found("No Fabric matches the given query."))
}

/// `GET fabrics/`.
pub fn fabrics_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let fs = objects::list(c.conn, kinds::FABRIC)?;
    let mut out = Vec::new();
    for f in &fs {
        out.push(fabric_json(c.conn, f)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST fabrics/`: a fabric always gets an untagged VLAN.
pub fn fabrics_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let n = objects::list(c.conn, kinds::FABRIC)?.len();
    let name = c
        .params
        .get_nonempty("name")
        .unwrap_or_else(|| format!("fabric-{n}"));
    if objects::by_name(c.conn, kinds::FABRIC, &name)?.is_some() {
        return Err(ApiError::field(
            "name",
            "Fabric with this Name already exists.",
        ));
    }
    let mut d = Map::new();
    if let Some(ct) = c.params.get_nonempty("class_type") {
        d.insert("class_type".into(), json!(ct));
    }
    let f = objects::insert(c.conn, kinds::FABRIC, &name, &d)?;
    let mut v = Map::new();
    v.insert("fabric_id".into(), json!(f.id));
    v.insert("vid".into(), json!(0));
    v.insert("mtu".into(), json!(1500));
    objects::insert(c.conn, kinds::VLAN, "untagged", &v)?;
    Ok(Reply::Json(fabric_json(c.conn, &f)?))
}

/// `GET fabrics/{id}/`.
pub fn fabric_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let f = fabric_by_id(c)?;
    Ok(Reply::Json(fabric_json(c.conn, &f)?))
}

/// `PUT fabrics/{id}/`.
pub fn fabric_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut f = fabric_by_id(c)?;
    if let Some(n) = c.params.get_nonempty("name") {
        f.name = n;
    }
    if let Some(ct) = c.params.get("class_type") {
        f.data.insert("class_type".into(), json!(ct));
    }
    objects::update(c.conn, kinds::FABRIC, &f)?;
    Ok(Reply::Json(fabric_json(c.conn, &f)?))
}

/// `DELETE fabrics/{id}/`.
pub fn fabric_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let f = fabric_by_id(c)?;
    if f.name == "fabric-0" {
        return Err(ApiError::bad_request(
            "The default fabric cannot be deleted.",
        ));
    }
    for v in vlans_of(c.conn, f.id)? {
        objects::delete(c.conn, kinds::VLAN, v.id)?;
    }
    objects::delete(c.conn, kinds::FABRIC, f.id)?;
    Ok(Reply::NoContent)
}

fn vlan_by_vid(c: &mut Call<'_>) -> Result<(objects::Object, objects::Object), ApiError> {
    let f = fabric_by_id(c)?;
    let vid: i64 = c.path_id(1)?;
    let v = vlans_of(c.conn, f.id)?
        .into_iter()
        .find(|v| v.data.get("vid") == Some(&json!(vid)))
        .ok_or_else(|| ApiError::not_found("No VLAN matches the given query."))?;
    Ok((f, v))
}

/// `GET fabrics/{id}/vlans/`.
pub fn vlans_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let f = fabric_by_id(c)?;
    Ok(Reply::Json(
        vlans_of(c.conn, f.id)?
            .iter()
            .map(|v| {
                let mut j = vlan_json(v);
                j["fabric"] = json!(f.name);
                j
            })
            .collect(),
    ))
}

/// `POST fabrics/{id}/vlans/`.
pub fn vlans_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let f = fabric_by_id(c)?;
    let vid = c
        .params
        .int("vid")?
        .ok_or_else(|| ApiError::field("vid", "This field is required."))?;
    if !(0..=4094).contains(&vid) {
        return Err(ApiError::field("vid", "VID must be between 0 and 4094."));
    }
    if vlans_of(c.conn, f.id)?
        .iter()
        .any(|v| v.data.get("vid") == Some(&json!(vid)))
    {
        return Err(ApiError::field(
            "__all__",
            "VLAN with this Vid and Fabric already exists.",
        ));
    }
    let name = c.params.get_nonempty("name").unwrap_or_default();
    let mut d = Map::new();
    d.insert("fabric_id".into(), json!(f.id));
    d.insert("vid".into(), json!(vid));
    d.insert("mtu".into(), json!(c.params.int("mtu")?.unwrap_or(1500)));
    d.insert("dhcp_on".into(), json!(false));
    if let Some(sp) = vlan_space_param(c.params, c.conn)?.filter(|s| !s.is_empty()) {
        d.insert("space".into(), json!(sp));
    }
    let v = objects::insert(c.conn, kinds::VLAN, &name, &d)?;
    let mut j = vlan_json(&v);
    j["fabric"] = json!(f.name);
    Ok(Reply::Json(j))
}

/// The `space` a VLAN form names (a space id, `space-<id>` or name), as
/// the space's name; `Some("")` when it is cleared (an empty value), 400
/// when no space matches.
fn vlan_space_param(p: &Params, conn: &mut DbConn) -> Result<Option<String>, ApiError> {
    let Some(key) = p.get("space").map(|s| s.trim().to_owned()) else {
        return Ok(None);
    };
    // Only an empty value clears it: MAAS's form looks `undefined` up like
    // any other name (and finds nothing).
    if key.is_empty() {
        return Ok(Some(String::new()));
    }
    match super::spaces::find_space(conn, &key)? {
        Some(s) => Ok(Some(s.name)),
        None => Err(ApiError::field(
            "space",
            "Select a valid choice. That choice is not one of the available choices.",
        )),
    }
}

/// `GET fabrics/{id}/vlans/{vid}/`.
pub fn vlan_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let (f, v) = vlan_by_vid(c)?;
    let mut j = vlan_json(&v);
    j["fabric"] = json!(f.name);
    Ok(Reply::Json(j))
}

/// `PUT fabrics/{id}/vlans/{vid}/`.
pub fn vlan_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (f, mut v) = vlan_by_vid(c)?;
    if let Some(n) = c.params.get("name") {
        v.name = n;
    }
    if let Some(m) = c.params.int("mtu")? {
        v.data.insert("mtu".into(), json!(m));
    }
    if let Some(d) = c.params.bool("dhcp_on")? {
        v.data.insert("dhcp_on".into(), json!(d));
    }
    if c.params.has("space") {
        let before = v
            .data
            .get("space")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let after = vlan_space_param(c.params, c.conn)?.unwrap_or_default();
        if after.is_empty() {
            v.data.remove("space");
        } else {
            v.data.insert("space".into(), json!(after));
        }
        if before != after {
            let now = c.now_ms;
            super::spaces::sync_machines(c.conn, &[v.id], &after, now)?;
        }
    }
    objects::update(c.conn, kinds::VLAN, &v)?;
    let mut j = vlan_json(&v);
    j["fabric"] = json!(f.name);
    Ok(Reply::Json(j))
}

/// `DELETE fabrics/{id}/vlans/{vid}/`.
pub fn vlan_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (_, v) = vlan_by_vid(c)?;
    if v.data.get("vid") == Some(&json!(0)) {
        return Err(ApiError::bad_request("The default VLAN cannot be deleted."));
    }
    objects::delete(c.conn, kinds::VLAN, v.id)?;
    Ok(Reply::NoContent)
}

/// A subnet's JSON, with its VLAN's and the VLAN's space.
pub(super) fn subnet_json(conn: &mut DbConn, o: &objects::Object) -> Result<Value, ApiError> {
    let vlan_id = o.data.get("vlan_id").and_then(Value::as_i64).unwrap_or(0);
    let (vlan, space) = match objects::get(conn, kinds::VLAN, vlan_id)? {
        Some(v) => {
            let mut j = vlan_json(&v);
            let fid = v.data.get("fabric_id").and_then(Value::as_i64).unwrap_or(0);
            if let Some(f) = objects::get(conn, kinds::FABRIC, fid)? {
                j["fabric"] = json!(f.name);
            }
            let space = j["space"].clone();
            (j, space)
        }
        None => (Value::Null, json!(super::spaces::UNDEFINED)),
    };
    Ok(json!({
        "id": o.id,
        "name": o.name,
        "cidr": g(o, "cidr", json!("")),
        "vlan": vlan,
        "gateway_ip": g(o, "gateway_ip", Value::Null),
        "dns_servers": g(o, "dns_servers", json!([])),
        "rdns_mode": g(o, "rdns_mode", json!(2)),
        "allow_dns": g(o, "allow_dns", json!(true)),
        "allow_proxy": g(o, "allow_proxy", json!(true)),
        "active_discovery": g(o, "active_discovery", json!(false)),
        "managed": g(o, "managed", json!(true)),
        "disabled_boot_architectures": [],
        "space": space,
        "description": g(o, "description", json!("")),
        "resource_uri": format!("/MAAS/api/2.0/subnets/{}/", o.id),
    }))
}

fn subnet_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let key = c.path_param(0).to_owned();
    let found = match key.parse::<i64>() {
        Ok(id) => objects::get(c.conn, kinds::SUBNET, id)?,
        Err(_) => objects::list(c.conn, kinds::SUBNET)?.into_iter().find(|s| {
            s.name == key || s.data.get("cidr").and_then(Value::as_str) == Some(key.as_str())
        }),
    };
    found.ok_or_else(|| ApiError::not_found("No Subnet matches the given query."))
}

fn apply_subnet(p: &Params, conn: &mut DbConn, d: &mut Map<String, Value>) -> Result<(), ApiError> {
    let cidr: Option<IpNet> = match d.get("cidr").and_then(Value::as_str) {
        Some(s) => s.parse().ok(),
        None => None,
    };
    if let Some(gw) = p.get_nonempty("gateway_ip") {
        let ip: IpAddr = gw
            .parse()
            .map_err(|_| ApiError::field("gateway_ip", "Enter a valid IPv4 or IPv6 address."))?;
        if let Some(net) = cidr
            && !net.contains(&ip)
        {
            return Err(ApiError::field(
                "gateway_ip",
                "Gateway IP must be within CIDR range.",
            ));
        }
        d.insert("gateway_ip".into(), json!(gw));
    }
    let dns = p.get_list("dns_servers");
    if !dns.is_empty() {
        d.insert("dns_servers".into(), json!(dns));
    }
    for k in ["managed", "allow_dns", "allow_proxy", "active_discovery"] {
        if let Some(b) = p.bool(k)? {
            d.insert(k.into(), json!(b));
        }
    }
    if let Some(desc) = p.get("description") {
        d.insert("description".into(), json!(desc));
    }
    if let Some(v) = p.int("vlan")? {
        if objects::get(conn, kinds::VLAN, v)?.is_none() {
            return Err(ApiError::field("vlan", "No such VLAN."));
        }
        d.insert("vlan_id".into(), json!(v));
    }
    Ok(())
}

/// `GET subnets/`.
pub fn subnets_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let ss = objects::list(c.conn, kinds::SUBNET)?;
    let mut out = Vec::new();
    for s in &ss {
        out.push(subnet_json(c.conn, s)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST subnets/`.
pub fn subnets_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let cidr_s = c
        .params
        .get_nonempty("cidr")
        .ok_or_else(|| ApiError::field("cidr", "This field is required."))?;
    let net: IpNet = cidr_s
        .parse()
        .map_err(|_| ApiError::field("cidr", "Required format: <network>/<prefixlen>."))?;
    let cidr = net.trunc().to_string();
    if objects::list(c.conn, kinds::SUBNET)?
        .iter()
        .any(|s| s.data.get("cidr") == Some(&json!(cidr)))
    {
        return Err(ApiError::field(
            "cidr",
            "Subnet with this Cidr already exists.",
        ));
    }
    let mut d = Map::new();
    d.insert("cidr".into(), json!(cidr));
    // Default VLAN: the untagged VLAN of fabric-0.
    let default_vlan = match objects::by_name(c.conn, kinds::FABRIC, "fabric-0")? {
        Some(f) => vlans_of(c.conn, f.id)?.first().map(|v| v.id).unwrap_or(0),
        None => 0,
    };
    d.insert("vlan_id".into(), json!(default_vlan));
    apply_subnet(c.params, c.conn, &mut d)?;
    let name = c
        .params
        .get_nonempty("name")
        .unwrap_or_else(|| cidr.clone());
    let o = objects::insert(c.conn, kinds::SUBNET, &name, &d)?;
    Ok(Reply::Json(subnet_json(c.conn, &o)?))
}

/// `GET subnets/{id}/`.
pub fn subnet_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let s = subnet_by_id(c)?;
    Ok(Reply::Json(subnet_json(c.conn, &s)?))
}

/// `PUT subnets/{id}/`.
pub fn subnet_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    // MAAS looks the subnet up before the permission (`get_subnet_or_404`
    // with `NodePermission.admin`): a missing subnet is 404 for anyone.
    c.user()?;
    let mut s = subnet_by_id(c)?;
    c.admin()?;
    apply_subnet(c.params, c.conn, &mut s.data)?;
    if let Some(n) = c.params.get_nonempty("name") {
        s.name = n;
    }
    objects::update(c.conn, kinds::SUBNET, &s)?;
    Ok(Reply::Json(subnet_json(c.conn, &s)?))
}

/// `DELETE subnets/{id}/`.
pub fn subnet_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let s = subnet_by_id(c)?;
    c.admin()?;
    for r in objects::list(c.conn, kinds::IPRANGE)? {
        if r.data.get("subnet_id") == Some(&json!(s.id)) {
            objects::delete(c.conn, kinds::IPRANGE, r.id)?;
        }
    }
    super::spaces::delete_routes_of(c.conn, s.id)?;
    objects::delete(c.conn, kinds::SUBNET, s.id)?;
    Ok(Reply::NoContent)
}

fn iprange_json(conn: &mut DbConn, o: &objects::Object) -> Result<Value, ApiError> {
    let sid = o.data.get("subnet_id").and_then(Value::as_i64).unwrap_or(0);
    let subnet = match objects::get(conn, kinds::SUBNET, sid)? {
        Some(s) => subnet_json(conn, &s)?,
        None => Value::Null,
    };
    Ok(json!({
        "id": o.id,
        "type": g(o, "type", json!("reserved")),
        "start_ip": g(o, "start_ip", json!("")),
        "end_ip": g(o, "end_ip", json!("")),
        "comment": g(o, "comment", json!("")),
        "user": g(o, "user", json!("")),
        "subnet": subnet,
        "resource_uri": format!("/MAAS/api/2.0/ipranges/{}/", o.id),
    }))
}

/// Validates an IP range's fields and finds its subnet.
fn check_range(conn: &mut DbConn, d: &mut Map<String, Value>) -> Result<(), ApiError> {
    let ip = |k: &str| -> Result<IpAddr, ApiError> {
        d.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::field(k, "This field is required."))?
            .parse()
            .map_err(|_| ApiError::field(k, "Enter a valid IPv4 or IPv6 address."))
    };
    let (start, end) = (ip("start_ip")?, ip("end_ip")?);
    if start > end {
        return Err(ApiError::field(
            "end_ip",
            "End IP address must not be less than Start IP address.",
        ));
    }
    let t = d.get("type").and_then(Value::as_str).unwrap_or("reserved");
    if !matches!(t, "dynamic" | "reserved") {
        return Err(ApiError::field("type", "Type must be dynamic or reserved."));
    }
    let subnets = objects::list(conn, kinds::SUBNET)?;
    let subnet = subnets
        .iter()
        .find(|s| {
            s.data
                .get("cidr")
                .and_then(Value::as_str)
                .and_then(|c| c.parse::<IpNet>().ok())
                .is_some_and(|n| n.contains(&start) && n.contains(&end))
        })
        .ok_or_else(|| {
            ApiError::field(
                "start_ip",
                "No subnet contains this range; create the subnet first.",
            )
        })?;
    d.insert("subnet_id".into(), json!(subnet.id));
    Ok(())
}

fn iprange_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::IPRANGE, id)?
        .ok_or_else(|| ApiError::not_found("No IPRange matches the given query."))
}

/// `GET ipranges/`.
pub fn ipranges_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let rs = objects::list(c.conn, kinds::IPRANGE)?;
    let mut out = Vec::new();
    for r in &rs {
        out.push(iprange_json(c.conn, r)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// `POST ipranges/`.
pub fn ipranges_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let mut d = Map::new();
    for k in ["type", "start_ip", "end_ip", "comment"] {
        if let Some(v) = c.params.get_nonempty(k) {
            d.insert(k.into(), json!(v));
        }
    }
    d.insert("user".into(), json!(user));
    check_range(c.conn, &mut d)?;
    let o = objects::insert(c.conn, kinds::IPRANGE, "", &d)?;
    Ok(Reply::Json(iprange_json(c.conn, &o)?))
}

/// `GET ipranges/{id}/`.
pub fn iprange_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let r = iprange_by_id(c)?;
    Ok(Reply::Json(iprange_json(c.conn, &r)?))
}

/// `PUT ipranges/{id}/`.
pub fn iprange_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let mut r = iprange_by_id(c)?;
    for k in ["type", "start_ip", "end_ip", "comment"] {
        if let Some(v) = c.params.get_nonempty(k) {
            r.data.insert(k.into(), json!(v));
        }
    }
    check_range(c.conn, &mut r.data)?;
    objects::update(c.conn, kinds::IPRANGE, &r)?;
    Ok(Reply::Json(iprange_json(c.conn, &r)?))
}

/// `DELETE ipranges/{id}/`.
pub fn iprange_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let r = iprange_by_id(c)?;
    objects::delete(c.conn, kinds::IPRANGE, r.id)?;
    Ok(Reply::NoContent)
}
