//! The small resources: version, zones, resource pools, tags (with machine
//! membership), domains, events and global settings (boot sources and
//! resources: [`super::boot`]).

use maas_core::SystemId;
use serde_json::{Map, Value, json};

use super::json::{domain_json, kinds, pool_json, zone_json};
use super::{ApiError, Call, Reply};
use crate::db::{DbConn, events, machines, objects, settings};

/// `GET version/`.
pub fn version(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(json!({
        "capabilities": crate::CAPABILITIES,
        "version": crate::MAAS_VERSION,
        "subversion": "",
    })))
}

/// Creates the objects MAAS always has: the `default` zone and pool, the
/// `maas` domain, `fabric-0` with its untagged VLAN, the Ubuntu archives
/// and the default configuration values.
pub fn ensure_defaults(conn: &mut DbConn) -> crate::Result<()> {
    let mut d = Map::new();
    if objects::by_name(conn, kinds::ZONE, "default")?.is_none() {
        d.insert("description".into(), json!(""));
        objects::insert(conn, kinds::ZONE, "default", &d)?;
    }
    if objects::by_name(conn, kinds::POOL, "default")?.is_none() {
        d.insert("description".into(), json!("Default pool"));
        objects::insert(conn, kinds::POOL, "default", &d)?;
    }
    if objects::by_name(conn, kinds::DOMAIN, "maas")?.is_none() {
        let mut dd = Map::new();
        dd.insert("authoritative".into(), json!(true));
        dd.insert("ttl".into(), Value::Null);
        dd.insert("is_default".into(), json!(true));
        objects::insert(conn, kinds::DOMAIN, "maas", &dd)?;
    }
    if objects::by_name(conn, kinds::FABRIC, "fabric-0")?.is_none() {
        let f = objects::insert(conn, kinds::FABRIC, "fabric-0", &Map::new())?;
        let mut v = Map::new();
        v.insert("fabric_id".into(), json!(f.id));
        v.insert("vid".into(), json!(0));
        v.insert("mtu".into(), json!(1500));
        v.insert("dhcp_on".into(), json!(false));
        objects::insert(conn, kinds::VLAN, "untagged", &v)?;
    }
    super::repos::ensure_defaults(conn)?;
    for (k, v) in default_config() {
        if settings::get(conn, &config_key(k))?.is_none() {
            settings::set(conn, &config_key(k), &v)?;
        }
    }
    Ok(())
}

fn config_key(name: &str) -> String {
    format!("config:{name}")
}

fn default_config() -> Vec<(&'static str, Value)> {
    vec![
        ("maas_name", json!("maas-rs")),
        ("default_osystem", json!("ubuntu")),
        ("default_distro_series", json!("jammy")),
        ("default_min_hwe_kernel", json!("")),
        ("commissioning_osystem", json!("ubuntu")),
        ("commissioning_distro_series", json!("jammy")),
        ("enable_analytics", json!(false)),
        ("enable_third_party_drivers", json!(true)),
        ("ntp_servers", json!("ntp.ubuntu.com")),
        ("upstream_dns", json!("")),
        ("dnssec_validation", json!("auto")),
        ("default_storage_layout", json!("flat")),
        ("enable_disk_erasing_on_release", json!(false)),
        ("disk_erase_with_secure_erase", json!(false)),
        ("disk_erase_with_quick_erase", json!(false)),
        ("node_timeout", json!(30)),
        ("http_proxy", Value::Null),
        ("enable_http_proxy", json!(true)),
        ("curtin_verbose", json!(true)),
        ("default_dns_ttl", json!(30)),
        ("windows_kms_host", Value::Null),
        ("use_peer_proxy", json!(false)),
        ("kernel_opts", Value::Null),
        ("completed_intro", json!(true)),
        ("network_discovery", json!("enabled")),
        ("boot_images_auto_import", json!(true)),
    ]
}

/// `GET maas/?op=get_config&name=`.
pub fn get_config(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let name = c
        .params
        .get_nonempty("name")
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    // The Ubuntu archives' URLs are the default package repositories'
    // (MAAS's settings form for them writes there too).
    if let Some(url) = super::repos::archive_url(c.conn, &name)? {
        return Ok(Reply::Json(json!(url)));
    }
    if !default_config().iter().any(|(k, _)| *k == name) {
        return Err(ApiError::field(
            "name",
            format!("{name} is not a valid config setting."),
        ));
    }
    let v = settings::get(c.conn, &config_key(&name))?.unwrap_or(Value::Null);
    Ok(Reply::Json(v))
}

/// `POST maas/?op=set_config` (admin).
pub fn set_config(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = c
        .params
        .get_nonempty("name")
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    if super::repos::is_archive_setting(&name) {
        let url = c.params.get("value").unwrap_or_default();
        super::repos::set_archive_url(c.conn, &name, url.trim())?;
        return Ok(Reply::Json(json!("OK")));
    }
    let Some(default) = default_config()
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
    else {
        return Err(ApiError::field(
            "name",
            format!("{name} is not a valid config setting."),
        ));
    };
    let raw = c.params.get("value").unwrap_or_default();
    // Keep the type of the default: booleans and integers are parsed.
    let v = match default {
        Value::Bool(_) => json!(
            super::params::parse_bool(&raw)
                .ok_or_else(|| ApiError::field("value", "Must be a valid boolean."))?
        ),
        Value::Number(_) => json!(
            raw.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::field("value", "Enter a whole number."))?
        ),
        _ => json!(raw),
    };
    settings::set(c.conn, &config_key(&name), &v)?;
    Ok(Reply::Json(json!("OK")))
}

/// Reads a configuration value as text (empty when unset).
pub fn config_str(conn: &mut DbConn, name: &str) -> crate::Result<String> {
    Ok(match settings::get(conn, &config_key(name))? {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    })
}

/// Reads a boolean configuration value (`dflt` when unset or not a boolean).
pub fn config_bool(conn: &mut DbConn, name: &str, dflt: bool) -> crate::Result<bool> {
    Ok(settings::get(conn, &config_key(name))?
        .and_then(|v| v.as_bool())
        .unwrap_or(dflt))
}

fn desc_of(c: &Call<'_>) -> Value {
    json!(c.params.get("description").unwrap_or_default())
}

// ---------------------------------------------------------------- zones

fn zone_by_name(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let name = c.path_param(0).to_owned();
    objects::by_name(c.conn, kinds::ZONE, &name)?
        .ok_or_else(|| ApiError::not_found("No Zone matches the given query."))
}

/// `GET zones/`.
pub fn zones_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let zs = objects::list(c.conn, kinds::ZONE)?;
    Ok(Reply::Json(zs.iter().map(zone_json).collect()))
}

/// `POST zones/`.
pub fn zones_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = valid_name(c, "name")?;
    if objects::by_name(c.conn, kinds::ZONE, &name)?.is_some() {
        return Err(ApiError::field(
            "name",
            "Zone with this Name already exists.",
        ));
    }
    let mut d = Map::new();
    d.insert("description".into(), desc_of(c));
    let o = objects::insert(c.conn, kinds::ZONE, &name, &d)?;
    Ok(Reply::Json(zone_json(&o)))
}

/// `GET zones/{name}/`.
pub fn zone_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(zone_json(&zone_by_name(c)?)))
}

/// `PUT zones/{name}/`.
pub fn zone_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut o = zone_by_name(c)?;
    if c.params.has("description") {
        o.data.insert("description".into(), desc_of(c));
    }
    if let Some(n) = c.params.get_nonempty("name")
        && n != o.name
    {
        check_name(&n, "name")?;
        if objects::by_name(c.conn, kinds::ZONE, &n)?.is_some() {
            return Err(ApiError::field(
                "name",
                "Zone with this Name already exists.",
            ));
        }
        rename_in_machines(c.conn, &o.name, &n, |m| &mut m.zone, c.now_ms)?;
        o.name = n;
    }
    objects::update(c.conn, kinds::ZONE, &o)?;
    Ok(Reply::Json(zone_json(&o)))
}

/// `DELETE zones/{name}/`: 204 also when there is no zone of that (valid)
/// name, as MAAS's `ModelOperationsHandler.delete`; a name no zone can
/// have (bad UTF-8, stray characters) is a 404.
pub fn zone_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = c.path_param(0).to_owned();
    if check_name(&name, "name").is_err() {
        return Err(ApiError::not_found("No Zone matches the given query."));
    }
    let Some(o) = objects::by_name(c.conn, kinds::ZONE, &name)? else {
        return Ok(Reply::NoContent);
    };
    if o.name == "default" {
        return Err(ApiError::bad_request(
            "This zone is the default zone, it cannot be deleted.",
        ));
    }
    // Machines in a deleted zone move to the default zone, as in MAAS.
    rename_in_machines(c.conn, &o.name, "default", |m| &mut m.zone, c.now_ms)?;
    objects::delete(c.conn, kinds::ZONE, o.id)?;
    Ok(Reply::NoContent)
}

fn rename_in_machines(
    conn: &mut DbConn,
    from: &str,
    to: &str,
    field: fn(&mut maas_core::Machine) -> &mut String,
    now_ms: i64,
) -> Result<(), ApiError> {
    for mut sm in machines::list(conn)? {
        let f = field(&mut sm.record.machine);
        if f == from {
            *f = to.to_owned();
            machines::update(conn, &sm, now_ms)?;
        }
    }
    Ok(())
}

fn check_name(name: &str, field: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            "Enter a valid name: letters, digits, '-', '_' and '.'.",
        ))
    }
}

fn valid_name(c: &Call<'_>, field: &str) -> Result<String, ApiError> {
    let n = c
        .params
        .get_nonempty(field)
        .ok_or_else(|| ApiError::field(field, "This field is required."))?;
    check_name(&n, field)?;
    Ok(n)
}

// ---------------------------------------------------------------- pools

fn pool_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::POOL, id)?
        .ok_or_else(|| ApiError::not_found("No ResourcePool matches the given query."))
}

/// `GET resourcepools/`.
pub fn pools_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let ps = objects::list(c.conn, kinds::POOL)?;
    Ok(Reply::Json(ps.iter().map(pool_json).collect()))
}

/// `POST resourcepools/`.
pub fn pools_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = valid_name(c, "name")?;
    if objects::by_name(c.conn, kinds::POOL, &name)?.is_some() {
        return Err(ApiError::field(
            "name",
            "Resource pool with this Name already exists.",
        ));
    }
    let mut d = Map::new();
    d.insert("description".into(), desc_of(c));
    let o = objects::insert(c.conn, kinds::POOL, &name, &d)?;
    Ok(Reply::Json(pool_json(&o)))
}

/// `GET resourcepool/{id}/`.
pub fn pool_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(pool_json(&pool_by_id(c)?)))
}

/// `PUT resourcepool/{id}/`.
pub fn pool_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    // MAAS looks the pool up before the permission
    // (`get_resource_pool_or_404`): a missing pool is 404 for anyone.
    c.user()?;
    let mut o = pool_by_id(c)?;
    c.admin()?;
    if c.params.has("description") {
        o.data.insert("description".into(), desc_of(c));
    }
    if let Some(n) = c.params.get_nonempty("name")
        && n != o.name
    {
        check_name(&n, "name")?;
        if objects::by_name(c.conn, kinds::POOL, &n)?.is_some() {
            return Err(ApiError::field(
                "name",
                "Resource pool with this Name already exists.",
            ));
        }
        rename_in_machines(c.conn, &o.name, &n, |m| &mut m.pool, c.now_ms)?;
        o.name = n;
    }
    objects::update(c.conn, kinds::POOL, &o)?;
    Ok(Reply::Json(pool_json(&o)))
}

/// `DELETE resourcepool/{id}/`.
pub fn pool_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    // MAAS looks the pool up before the permission
    // (`get_resource_pool_or_404`): a missing pool is 404 for anyone.
    c.user()?;
    let o = pool_by_id(c)?;
    c.admin()?;
    if o.name == "default" {
        return Err(ApiError::bad_request(
            "This is the default pool, it cannot be deleted.",
        ));
    }
    let used = machines::list(c.conn)?
        .iter()
        .any(|m| m.record.machine.pool == o.name);
    if used {
        return Err(ApiError::bad_request(
            "Pool has machines in it, it cannot be deleted.",
        ));
    }
    objects::delete(c.conn, kinds::POOL, o.id)?;
    Ok(Reply::NoContent)
}

// ---------------------------------------------------------------- tags

fn tag_json(o: &objects::Object) -> Value {
    let s = |k: &str| o.data.get(k).cloned().unwrap_or(json!(""));
    json!({
        "name": o.name,
        "comment": s("comment"),
        "definition": s("definition"),
        "kernel_opts": s("kernel_opts"),
        "resource_uri": format!("/MAAS/api/2.0/tags/{}/", o.name),
    })
}

fn tag_by_name(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let name = c.path_param(0).to_owned();
    objects::by_name(c.conn, kinds::TAG, &name)?
        .ok_or_else(|| ApiError::not_found("No Tag matches the given query."))
}

/// `GET tags/`.
pub fn tags_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let ts = objects::list(c.conn, kinds::TAG)?;
    Ok(Reply::Json(ts.iter().map(tag_json).collect()))
}

/// `POST tags/`.
pub fn tags_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = valid_name(c, "name")?;
    if objects::by_name(c.conn, kinds::TAG, &name)?.is_some() {
        return Err(ApiError::field(
            "name",
            "Tag with this Name already exists.",
        ));
    }
    let mut d = Map::new();
    for k in ["comment", "definition", "kernel_opts"] {
        d.insert(k.into(), json!(c.params.get(k).unwrap_or_default()));
    }
    let o = objects::insert(c.conn, kinds::TAG, &name, &d)?;
    Ok(Reply::Json(tag_json(&o)))
}

/// `GET tags/{name}/`.
pub fn tag_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(tag_json(&tag_by_name(c)?)))
}

/// `PUT tags/{name}/`.
pub fn tag_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut o = tag_by_name(c)?;
    for k in ["comment", "definition", "kernel_opts"] {
        if let Some(v) = c.params.get(k) {
            o.data.insert(k.into(), json!(v));
        }
    }
    if let Some(n) = c.params.get_nonempty("name")
        && n != o.name
    {
        check_name(&n, "name")?;
        if objects::by_name(c.conn, kinds::TAG, &n)?.is_some() {
            return Err(ApiError::field(
                "name",
                "Tag with this Name already exists.",
            ));
        }
        for mut sm in machines::list(c.conn)? {
            let tags = &mut sm.record.machine.tags;
            if let Some(t) = tags.iter_mut().find(|t| **t == o.name) {
                *t = n.clone();
                machines::update(c.conn, &sm, c.now_ms)?;
            }
        }
        o.name = n;
    }
    objects::update(c.conn, kinds::TAG, &o)?;
    Ok(Reply::Json(tag_json(&o)))
}

/// `DELETE tags/{name}/`.
pub fn tag_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let o = tag_by_name(c)?;
    for mut sm in machines::list(c.conn)? {
        let before = sm.record.machine.tags.len();
        sm.record.machine.tags.retain(|t| *t != o.name);
        if sm.record.machine.tags.len() != before {
            machines::update(c.conn, &sm, c.now_ms)?;
        }
    }
    objects::delete(c.conn, kinds::TAG, o.id)?;
    Ok(Reply::NoContent)
}

/// `GET tags/{name}/?op=machines`.
pub fn tag_machines(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let o = tag_by_name(c)?;
    let q = machines::MachineQuery {
        tags: vec![o.name.clone()],
        ..machines::MachineQuery::default()
    };
    let ms = machines::query(c.conn, &q)?;
    super::machines::machine_list_reply(c.conn, &ms)
}

/// `POST tags/{name}/?op=update_nodes` with `add`/`remove` system ids.
pub fn tag_update_nodes(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let o = tag_by_name(c)?;
    if !o
        .data
        .get("definition")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ApiError::conflict(
            "Cannot manually change nodes of a tag with a definition.",
        ));
    }
    let (mut added, mut removed) = (0, 0);
    for (key, add) in [("add", true), ("remove", false)] {
        for id in c.params.get_list(key) {
            let sid: SystemId = id
                .parse()
                .map_err(|_| ApiError::field(key, format!("Unknown node: {id}")))?;
            let mut sm = machines::get(c.conn, &sid)?
                .ok_or_else(|| ApiError::field(key, format!("Unknown node: {id}")))?;
            let tags = &mut sm.record.machine.tags;
            let has = tags.contains(&o.name);
            if add && !has {
                tags.push(o.name.clone());
                added += 1;
            } else if !add && has {
                tags.retain(|t| *t != o.name);
                removed += 1;
            } else {
                continue;
            }
            machines::update(c.conn, &sm, c.now_ms)?;
        }
    }
    Ok(Reply::Json(json!({"added": added, "removed": removed})))
}

/// `POST tags/{name}/?op=rebuild`: definitions (XPath over lshw) are
/// evaluated when commissioning data exists; there is none to evaluate yet.
pub fn tag_rebuild(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    tag_by_name(c)?;
    Ok(Reply::Json(json!({"rebuilding": c.path_param(0)})))
}

// ---------------------------------------------------------------- domains

fn domain_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::DOMAIN, id)?
        .ok_or_else(|| ApiError::not_found("No Domain matches the given query."))
}

fn domain_count(conn: &mut DbConn, name: &str) -> Result<usize, ApiError> {
    Ok(machines::list(conn)?
        .iter()
        .filter(|m| m.record.machine.domain == name)
        .count())
}

/// `GET domains/`.
pub fn domains_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let ds = objects::list(c.conn, kinds::DOMAIN)?;
    let ms = machines::list(c.conn)?;
    Ok(Reply::Json(
        ds.iter()
            .map(|d| {
                let n = ms
                    .iter()
                    .filter(|m| m.record.machine.domain == d.name)
                    .count();
                domain_json(d, n)
            })
            .collect(),
    ))
}

/// `POST domains/`.
pub fn domains_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = valid_name(c, "name")?;
    if objects::by_name(c.conn, kinds::DOMAIN, &name)?.is_some() {
        return Err(ApiError::field(
            "name",
            "Domain with this Name already exists.",
        ));
    }
    let mut d = Map::new();
    d.insert(
        "authoritative".into(),
        json!(c.params.bool_or("authoritative", true)?),
    );
    d.insert(
        "ttl".into(),
        c.params
            .int("ttl")?
            .map(|t| json!(t))
            .unwrap_or(Value::Null),
    );
    d.insert("is_default".into(), json!(false));
    let o = objects::insert(c.conn, kinds::DOMAIN, &name, &d)?;
    Ok(Reply::Json(domain_json(&o, 0)))
}

/// `GET domains/{id}/`.
pub fn domain_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let o = domain_by_id(c)?;
    let n = domain_count(c.conn, &o.name)?;
    Ok(Reply::Json(domain_json(&o, n)))
}

/// `PUT domains/{id}/`.
pub fn domain_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut o = domain_by_id(c)?;
    if let Some(a) = c.params.bool("authoritative")? {
        o.data.insert("authoritative".into(), json!(a));
    }
    if c.params.has("ttl") {
        o.data.insert(
            "ttl".into(),
            c.params
                .int("ttl")?
                .map(|t| json!(t))
                .unwrap_or(Value::Null),
        );
    }
    if let Some(n) = c.params.get_nonempty("name")
        && n != o.name
    {
        check_name(&n, "name")?;
        rename_in_machines(c.conn, &o.name, &n, |m| &mut m.domain, c.now_ms)?;
        o.name = n;
    }
    objects::update(c.conn, kinds::DOMAIN, &o)?;
    let n = domain_count(c.conn, &o.name)?;
    Ok(Reply::Json(domain_json(&o, n)))
}

/// `DELETE domains/{id}/`.
pub fn domain_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let o = domain_by_id(c)?;
    if o.data.get("is_default") == Some(&json!(true)) {
        return Err(ApiError::bad_request(
            "This domain is the default domain, it cannot be deleted.",
        ));
    }
    if domain_count(c.conn, &o.name)? > 0 {
        return Err(ApiError::bad_request(
            "Domain has machines in it, it cannot be deleted.",
        ));
    }
    objects::delete(c.conn, kinds::DOMAIN, o.id)?;
    Ok(Reply::NoContent)
}

/// `POST domains/{id}/?op=set_default`.
pub fn domain_set_default(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let target = domain_by_id(c)?;
    for mut d in objects::list(c.conn, kinds::DOMAIN)? {
        d.data.insert("is_default".into(), json!(d.id == target.id));
        objects::update(c.conn, kinds::DOMAIN, &d)?;
    }
    let o = domain_by_id(c)?;
    let n = domain_count(c.conn, &o.name)?;
    Ok(Reply::Json(domain_json(&o, n)))
}

/// The default domain's name.
pub fn default_domain(conn: &mut DbConn) -> crate::Result<String> {
    Ok(objects::list(conn, kinds::DOMAIN)?
        .into_iter()
        .find(|d| d.data.get("is_default") == Some(&json!(true)))
        .map(|d| d.name)
        .unwrap_or_else(|| "maas".into()))
}

// ---------------------------------------------------------------- timestamps

/// MAAS's timestamp format for boot sources (no zone; libmaas parses
/// `%Y-%m-%dT%H:%M:%S.%f`).
pub fn iso_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

// ---------------------------------------------------------------- events

/// Event time as MAAS formats it (`%a, %d %b. %Y %H:%M:%S`).
fn event_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%a, %d %b. %Y %H:%M:%S")
        .to_string()
}

/// MAAS's event levels in rising order; AUDIT sits apart (below DEBUG).
const EVENT_LEVELS: [&str; 6] = ["AUDIT", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// `events/?op=query&level=`: as in MAAS, the minimum level of the events
/// returned (INFO also returns WARNING, ERROR and CRITICAL), except AUDIT,
/// which returns exactly the audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LevelFilter(usize);

impl LevelFilter {
    fn parse(name: &str) -> Option<LevelFilter> {
        EVENT_LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .map(LevelFilter)
    }

    fn keeps(self, level: &str) -> bool {
        match EVENT_LEVELS.iter().position(|l| *l == level) {
            Some(0) | None => self.0 == 0 && level == EVENT_LEVELS[0],
            Some(rank) => self.0 != 0 && rank >= self.0,
        }
    }
}

/// `GET events/?op=query`.
pub fn events_query(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let limit = c.params.int("limit")?.unwrap_or(100);
    if limit > MAX_EVENTS {
        return Err(ApiError::bad_request(format!(
            "Requested number of events {limit} is greater than limit: {MAX_EVENTS}"
        )));
    }
    let (before, after) = (c.params.int("before")?, c.params.int("after")?);
    if before.is_some() && after.is_some() {
        return Err(ApiError::bad_request(
            "There is undetermined behaviour when both `after` and `before` are specified.",
        ));
    }
    // MAAS's default level is INFO (DEBUG events, such as status changes,
    // only when asked for).
    let name = c
        .params
        .get_nonempty("level")
        .unwrap_or_else(|| "INFO".into());
    let level = LevelFilter::parse(&name)
        .ok_or_else(|| ApiError::bad_request(format!("Unrecognised log level: {name}")))?;
    let q = events::EventQuery {
        system_ids: c.params.get_list("id"),
        hostnames: c.params.get_list("hostname"),
        before,
        after,
        limit: limit.max(1),
        levels: Some(
            EVENT_LEVELS
                .iter()
                .filter(|l| level.keeps(l))
                .map(|l| (*l).to_owned())
                .collect(),
        ),
    };
    let evs = events::query(c.conn, &q)?;
    let list: Vec<Value> = evs
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "node": e.system_id,
                "hostname": e.hostname,
                "username": e.username,
                "level": e.level,
                "created": event_time(e.created),
                "type": e.type_name,
                "description": e.description,
            })
        })
        .collect();
    // Newer events: after the newest shown; older: before the oldest shown.
    let next_uri = match (evs.first(), before) {
        (Some(newest), _) => Some(events_uri(c, "after", Some(newest.id))),
        (None, Some(b)) => Some(events_uri(c, "after", Some(b - 1))),
        (None, None) => Some(events_uri(c, "after", after)),
    };
    let prev_uri = match (evs.last(), after) {
        (Some(oldest), _) => Some(events_uri(c, "before", Some(oldest.id))),
        (None, Some(a)) => Some(events_uri(c, "before", Some(a + 1))),
        (None, None) => None,
    };
    Ok(Reply::Json(json!({
        "count": list.len(),
        "events": list,
        "next_uri": next_uri,
        "prev_uri": prev_uri,
    })))
}

/// Most events one `events/?op=query` returns (MAAS's `MAX_EVENT_LOG_COUNT`).
const MAX_EVENTS: i64 = 1000;

/// A paging link of `events/?op=query` as MAAS builds it: the request's
/// parameters that MAAS carries over (`op`, `id`, `level`, `limit`, `zone`,
/// `agent_name`, `mac_address`), then `key=value` (`after` or `before`).
fn events_uri(c: &Call<'_>, key: &str, value: Option<i64>) -> String {
    const KEPT: [&str; 7] = [
        "op",
        "agent_name",
        "id",
        "level",
        "limit",
        "mac_address",
        "zone",
    ];
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in c.params.pairs() {
        if KEPT.contains(&k.as_str()) {
            q.append_pair(&k, &v);
        }
    }
    if let Some(v) = value {
        q.append_pair(key, &v.to_string());
    }
    format!("/MAAS/api/2.0/events/?{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_level_is_a_minimum_except_audit() {
        let info = LevelFilter::parse("info").unwrap();
        assert!(info.keeps("INFO") && info.keeps("WARNING") && info.keeps("ERROR"));
        assert!(!info.keeps("DEBUG") && !info.keeps("AUDIT"));
        let debug = LevelFilter::parse("DEBUG").unwrap();
        assert!(debug.keeps("DEBUG") && debug.keeps("ERROR") && debug.keeps("CRITICAL"));
        assert!(!debug.keeps("AUDIT"));
        let audit = LevelFilter::parse("AUDIT").unwrap();
        assert!(audit.keeps("AUDIT") && !audit.keeps("ERROR"));
        assert!(!info.keeps("NOTALEVEL"));
        assert_eq!(LevelFilter::parse("LOUD"), None);
    }

    #[test]
    fn timestamps_in_maas_formats() {
        assert_eq!(iso_ms(1_700_000_000_123), "2023-11-14T22:13:20.123");
        assert_eq!(event_time(1_700_000_000_123), "Tue, 14 Nov. 2023 22:13:20");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("rack-1_a.b", "name").is_ok());
        assert!(check_name("", "name").is_err());
        assert!(check_name("has space", "name").is_err());
    }
}
