//! The REST API side of scripts: user scripts uploaded through
//! `/MAAS/api/2.0/scripts/` (MAAS's `ScriptsHandler`), which the
//! `maas-scripts` tarball then hands to machines, and the stored results of
//! a node (`/MAAS/api/2.0/nodes/{system_id}/results/` and `…/results/{id}/`,
//! what `maas <profile> node-script-results read` and `node-script-result
//! read` call), rendered as MAAS's `NodeScriptResultHandler`.

use serde_json::{Value, json};

use base64::Engine;

use super::results;
use super::scripts::{self, CUSTOM_KIND, CustomScript};
use crate::api::{ApiError, Call, Reply};
use crate::db::objects;

fn not_found() -> ApiError {
    ApiError::not_found("No Script matches the given query.")
}

fn script_json(id: i64, s: &CustomScript) -> Value {
    let commissioning = s.script_type == "commissioning";
    json!({
        "id": id,
        "name": s.name,
        "title": s.title,
        "description": s.description,
        "tags": s.tags,
        "type": if commissioning { 0 } else { 2 },
        "type_name": if commissioning { "Commissioning script" } else { "Testing script" },
        "hardware_type": 0,
        "hardware_type_name": "Node",
        "parallel": 0,
        "parallel_name": "Disabled",
        "parameters": {},
        "packages": {},
        "results": [],
        "timeout": format!(
            "{}:{:02}:{:02}",
            s.timeout_seconds / 3600,
            s.timeout_seconds / 60 % 60,
            s.timeout_seconds % 60
        ),
        "destructive": s.destructive,
        "default": false,
        "for_hardware": [],
        "may_reboot": false,
        "recommission": false,
        "apply_configured_networking": false,
        "history": [{"id": id, "comment": s.comment, "created": ""}],
        "resource_uri": format!("/MAAS/api/2.0/scripts/{}", s.name),
    })
}

fn by_name(c: &mut Call<'_>) -> Result<(i64, CustomScript), ApiError> {
    let name = c.path_param(0).to_owned();
    scripts::custom_scripts(c.conn)?
        .into_iter()
        .find(|(_, s)| s.name == name)
        .ok_or_else(not_found)
}

/// `GET scripts/` (`type` filters).
pub fn scripts_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let want = c
        .params
        .get_nonempty("type")
        .map(|t| script_type(&t))
        .transpose()?;
    Ok(Reply::Json(Value::Array(
        scripts::custom_scripts(c.conn)?
            .iter()
            .filter(|(_, s)| want.is_none_or(|w| s.script_type == w))
            .map(|(id, s)| script_json(*id, s))
            .collect(),
    )))
}

/// MAAS accepts names and numbers for the script type.
fn script_type(t: &str) -> Result<&'static str, ApiError> {
    match t.to_ascii_lowercase().as_str() {
        "commissioning" | "0" => Ok("commissioning"),
        "testing" | "test" | "2" => Ok("testing"),
        _ => Err(ApiError::field(
            "type",
            format!("Select a valid choice. {t} is not one of the available choices."),
        )),
    }
}

/// `POST scripts/` (admin): `name`, `script` (an uploaded file or text),
/// `type`, `title`, `description`, `tags`, `timeout` (seconds),
/// `destructive`, `comment`.
pub fn scripts_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let p = c.params;
    let name = p
        .get_nonempty("name")
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    if name.contains('/') || name.starts_with('.') || name.len() > 255 {
        return Err(ApiError::field("name", "Invalid script name."));
    }
    if maas_core::hardware::commissioning::BUILTIN_SCRIPTS
        .iter()
        .any(|b| b.name == name)
        || scripts::custom_scripts(c.conn)?
            .iter()
            .any(|(_, s)| s.name == name)
    {
        return Err(ApiError::field(
            "name",
            "Script with this Name already exists.",
        ));
    }
    let body = p
        .bytes("script")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::field("script", "This field is required."))?;
    let script = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::field("script", "The script must be UTF-8 text."))?;
    if !script.starts_with("#!") {
        return Err(ApiError::field(
            "script",
            "Scripts must start with a shebang line (#!).",
        ));
    }
    let script_type = match p
        .get_nonempty("type")
        .or_else(|| p.get_nonempty("script_type"))
    {
        Some(t) => script_type(&t)?,
        None => "testing",
    };
    let timeout_seconds = match p.get_nonempty("timeout") {
        None => 0,
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| ApiError::field("timeout", "Enter a whole number of seconds."))?,
    };
    let s = CustomScript {
        name: name.clone(),
        title: p.get("title").unwrap_or_default(),
        description: p.get("description").unwrap_or_default(),
        tags: p.get_list("tags"),
        script_type: script_type.to_owned(),
        timeout_seconds,
        destructive: p.bool_or("destructive", false)?,
        comment: p.get("comment").unwrap_or_default(),
        script,
    };
    let data = match serde_json::to_value(&s).map_err(ApiError::internal)? {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let o = objects::insert(c.conn, CUSTOM_KIND, &name, &data)?;
    Ok(Reply::Json(script_json(o.id, &s)))
}

/// `GET scripts/{name}/`.
pub fn script_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let (id, s) = by_name(c)?;
    Ok(Reply::Json(script_json(id, &s)))
}

/// `GET scripts/{name}/?op=download`: the script text.
pub fn script_download(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let (_, s) = by_name(c)?;
    Ok(Reply::Raw("text/plain", s.script.into_bytes()))
}

/// `DELETE scripts/{name}/` (admin).
pub fn script_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (id, _) = by_name(c)?;
    objects::delete(c.conn, CUSTOM_KIND, id)?;
    Ok(Reply::NoContent)
}

fn fmt_time(ms: Option<i64>) -> Value {
    match ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        // MAAS's email.utils.format_datetime of a naive UTC time.
        Some(t) => jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_string(&t)
            .map_or(Value::Null, Value::String),
        None => Value::Null,
    }
}

fn epoch_secs(ms: Option<i64>) -> Value {
    ms.map_or(json!(""), |ms| json!(ms as f64 / 1000.0))
}

/// The node of a results request, if the caller may view it.
fn results_node(c: &mut Call<'_>) -> Result<maas_core::SystemId, ApiError> {
    let user = c.user()?.clone();
    let nf = || ApiError::not_found("No Node matches the given query.");
    let sid: maas_core::SystemId = c.path_param(0).parse().map_err(|_| nf())?;
    let sm = crate::db::machines::get(c.conn, &sid)?.ok_or_else(nf)?;
    let m = &sm.record.machine;
    if !(user.is_superuser || m.owner.is_none() || m.owner.as_deref() == Some(&user.username)) {
        return Err(nf());
    }
    Ok(sid)
}

/// The output and selection options of a results read.
struct View {
    include_output: bool,
    filters: Option<Vec<String>>,
    /// `hardware_type` other than node: every script here is a node script.
    other_hardware: bool,
}

fn view(c: &Call<'_>) -> Result<View, ApiError> {
    let other_hardware = match c.params.get_nonempty("hardware_type") {
        None => false,
        Some(h) => match h.to_ascii_lowercase().as_str() {
            "node" | "0" => false,
            "cpu" | "1" | "memory" | "2" | "storage" | "3" | "network" | "4" | "gpu" | "5" => true,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Hardware type must be node, cpu, memory, storage, network or gpu, not {h}."
                )));
            }
        },
    };
    Ok(View {
        // MAAS: any value of include_output includes it.
        include_output: c.params.get("include_output").is_some(),
        filters: c
            .params
            .get_nonempty("filters")
            .map(|f| f.split(',').map(|s| s.trim().to_owned()).collect()),
        other_hardware,
    })
}

fn result_json(r: &results::ScriptResult, v: &View) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut j = json!({
        "id": r.id,
        "created": fmt_time(Some(r.created)),
        "updated": fmt_time(Some(r.updated)),
        "name": r.name,
        "status": r.status,
        "status_name": results::status::name(r.status),
        "exit_status": r.exit_status,
        "started": fmt_time(r.started),
        "ended": fmt_time(r.ended),
        "runtime": results::runtime_text(r.runtime_ms.filter(|_| r.ended.is_some())),
        "starttime": epoch_secs(r.started),
        "endtime": epoch_secs(r.ended),
        "estimated_runtime": if r.ended.is_some() {
            results::runtime_text(r.runtime_ms)
        } else {
            "Unknown".to_owned()
        },
        "parameters": {},
        "script_id": r.script_id,
        "script_revision_id": Value::Null,
        "suppressed": false,
    });
    if v.include_output {
        j["output"] = json!(b64(&r.output));
        j["stdout"] = json!(b64(&r.stdout));
        j["stderr"] = json!(b64(&r.stderr));
        j["result"] = json!(b64(&r.result));
    }
    j
}

fn set_json(
    c: &mut Call<'_>,
    sid: &str,
    set: &results::ScriptSet,
    v: &View,
) -> Result<Value, ApiError> {
    let all = results::results_of(c.conn, set.id)?;
    let status = results::set_status(&all);
    let started = all.iter().filter_map(|r| r.started).min();
    let ended = if all.iter().all(|r| r.ended.is_some()) {
        all.iter().filter_map(|r| r.ended).max()
    } else {
        None
    };
    let shown: Vec<Value> = all
        .iter()
        .filter(|_| !v.other_hardware)
        .filter(|r| {
            v.filters.as_ref().is_none_or(|fs| {
                fs.iter()
                    .any(|f| *f == r.name || f.parse::<i64>().is_ok_and(|id| id == r.id))
            })
        })
        .map(|r| result_json(r, v))
        .collect();
    let rt = results::ResultType::from_code(set.result_type);
    Ok(json!({
        "id": set.id,
        "system_id": sid,
        "type": set.result_type,
        "type_name": rt.map_or("Unknown", results::ResultType::label),
        "last_ping": fmt_time(set.last_ping),
        "status": status,
        "status_name": results::status::name(status),
        "started": fmt_time(started),
        "ended": fmt_time(ended),
        "runtime": match (started, ended) {
            (Some(s), Some(e)) => results::runtime_text(Some(e - s)),
            _ => String::new(),
        },
        "results": shown,
        "suppressed": false,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{sid}/results/{}/", set.id),
    }))
}

/// `GET nodes/{system_id}/results/`: every script set of the node, oldest
/// first (`type`, `hardware_type`, `include_output`, `filters` as MAAS).
pub fn node_results(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let sid = results_node(c)?;
    let rt = c
        .params
        .get_nonempty("type")
        .map(|t| {
            results::ResultType::parse(&t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Result type must be commissioning, testing or installation, not {t}."
                ))
            })
        })
        .transpose()?;
    let v = view(c)?;
    let sets = results::sets_of(c.conn, sid.as_str(), rt)?;
    let mut out = Vec::with_capacity(sets.len());
    for s in &sets {
        out.push(set_json(c, sid.as_str(), s, &v)?);
    }
    Ok(Reply::Json(Value::Array(out)))
}

/// The set `{id}` names: a number or `current-commissioning`,
/// `current-testing`, `current-installation`.
fn named_set(c: &mut Call<'_>, sid: &maas_core::SystemId) -> Result<results::ScriptSet, ApiError> {
    let id = c.path_param(1).to_owned();
    let nf = || ApiError::not_found("No ScriptSet matches the given query.");
    let current = match id.as_str() {
        "current-commissioning" => Some(results::ResultType::Commissioning),
        "current-testing" => Some(results::ResultType::Testing),
        "current-installation" => Some(results::ResultType::Installation),
        _ => None,
    };
    match current {
        Some(rt) => results::current_set(c.conn, sid.as_str(), rt)?.ok_or_else(nf),
        None => {
            let n: i64 = id.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Unknown id \"{id}\" must be current-commissioning, current-testing, current-installation, or the id number of a specific result."
                ))
            })?;
            results::set_by_id(c.conn, sid.as_str(), n)?.ok_or_else(nf)
        }
    }
}

/// `GET nodes/{system_id}/results/{id}/`.
pub fn node_result(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let sid = results_node(c)?;
    let set = named_set(c, &sid)?;
    let v = view(c)?;
    Ok(Reply::Json(set_json(c, sid.as_str(), &set, &v)?))
}

/// `DELETE nodes/{system_id}/results/{id}/` (admin).
pub fn node_result_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let sid = results_node(c)?;
    let set = named_set(c, &sid)?;
    results::delete_set(c.conn, set.id)?;
    Ok(Reply::NoContent)
}
