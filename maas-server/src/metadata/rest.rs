//! The REST API side of scripts: user scripts uploaded through
//! `/MAAS/api/2.0/scripts/` (MAAS's `ScriptsHandler`), which the
//! `maas-scripts` tarball then hands to machines, and the stored results of
//! a node (`/MAAS/api/2.0/nodes/{system_id}/results/`).

use serde_json::{Value, json};

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

/// `GET nodes/{system_id}/results/`: the stored results, one set per kind
/// (commissioning, testing, installation). `type` filters.
pub fn node_results(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.clone();
    let sid: maas_core::SystemId = c
        .path_param(0)
        .parse()
        .map_err(|_| ApiError::not_found("No Node matches the given query."))?;
    let sm = crate::db::machines::get(c.conn, &sid)?
        .ok_or_else(|| ApiError::not_found("No Node matches the given query."))?;
    let m = &sm.record.machine;
    if !(user.is_superuser || m.owner.is_none() || m.owner.as_deref() == Some(&user.username)) {
        return Err(ApiError::not_found("No Node matches the given query."));
    }
    let want = c.params.get_nonempty("type");
    let results = scripts::list_results(c.conn, &sid)?;
    let mut sets = Vec::new();
    for (n, kind) in ["commissioning", "testing", "installation"]
        .iter()
        .enumerate()
    {
        if want.as_deref().is_some_and(|w| w != *kind) {
            continue;
        }
        let rs: Vec<Value> = results
            .iter()
            .filter(|(_, r)| r.result_type == *kind)
            .map(|(id, r)| {
                let (status, status_name) = match r.exit_status {
                    Some(0) => (2, "Passed"),
                    Some(_) => (3, "Failed"),
                    None => (1, "Running"),
                };
                json!({
                    "id": id,
                    "name": r.name,
                    "status": status,
                    "status_name": status_name,
                    "exit_status": r.exit_status,
                    "runtime": r.runtime,
                    "output": r.output,
                    "stdout": r.stdout,
                    "stderr": r.stderr,
                })
            })
            .collect();
        if rs.is_empty() {
            continue;
        }
        sets.push(json!({
            "id": n,
            "system_id": sid.as_str(),
            "type": n,
            "type_name": kind,
            "results": rs,
            "resource_uri": format!("/MAAS/api/2.0/nodes/{}/results/{n}/", sid.as_str()),
        }));
    }
    Ok(Reply::Json(Value::Array(sets)))
}
