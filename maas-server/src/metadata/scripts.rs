//! Scripts machines run and what they report: the `maas-scripts` tarball
//! (`index.json` plus one file per script, as MAAS's runner reads it), the
//! runner served as ephemeral user-data (`scripts/maas-run-scripts`, shipped
//! in this repository), and the stored script results.

use maas_core::SystemId;
use maas_core::hardware::commissioning::BUILTIN_SCRIPTS;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::MetaReply;
use crate::api::ApiError;
use crate::db::machines::StoredMachine;
use crate::db::{DbConn, objects};

/// Object kind of stored script results (name = system id).
pub const RESULT_KIND: &str = "script_result";

/// Object kind of user scripts uploaded through the REST API (name = the
/// script's name).
pub const CUSTOM_KIND: &str = "script";

/// A user script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomScript {
    /// Unique name.
    pub name: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `commissioning` or `testing`.
    pub script_type: String,
    /// Timeout in seconds, 0 for none.
    #[serde(default)]
    pub timeout_seconds: u64,
    /// Whether it destroys data.
    #[serde(default)]
    pub destructive: bool,
    /// Upload comment.
    #[serde(default)]
    pub comment: String,
    /// The script text (starts with `#!`).
    pub script: String,
}

/// Every user script with its object id, by id.
pub fn custom_scripts(conn: &mut DbConn) -> Result<Vec<(i64, CustomScript)>, ApiError> {
    Ok(objects::list(conn, CUSTOM_KIND)?
        .into_iter()
        .filter_map(|o| {
            serde_json::from_value::<CustomScript>(Value::Object(o.data))
                .ok()
                .map(|s| (o.id, s))
        })
        .collect())
}

/// The runner, as shipped for already-deployed machines.
const RUNNER: &str = include_str!("../../../scripts/maas-run-scripts");

/// The runner as the ephemeral environment's user-data: it reads its
/// credentials from the preseed cloud-init saved.
pub fn runner_user_data() -> String {
    RUNNER.to_owned()
}

/// The anonymous user-data of the enlistment environment: the runner in
/// enlistment mode, pointed at this region.
pub fn enlist_user_data(maas_url: &str) -> String {
    RUNNER
        .replacen(
            "DEFAULT_MODE = \"commission\"",
            "DEFAULT_MODE = \"enlist\"",
            1,
        )
        .replacen(
            "DEFAULT_MAAS_URL = \"\"",
            &format!("DEFAULT_MAAS_URL = {}", json!(maas_url)),
            1,
        )
}

/// One stored result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptResult {
    /// Script name.
    pub name: String,
    /// `commissioning`, `testing` or `installation`.
    pub result_type: String,
    /// Exit status, when reported.
    pub exit_status: Option<i64>,
    /// Combined output.
    pub output: String,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Run time in seconds, when reported.
    pub runtime: Option<f64>,
    /// When it was stored, ms since the epoch.
    pub updated: i64,
}

impl ScriptResult {
    /// Whether the script failed (non-zero exit).
    pub fn failed(&self) -> bool {
        self.exit_status.is_some_and(|s| s != 0)
    }
}

fn base_name(file: &str) -> (&str, &str) {
    for suffix in [".out", ".err", ".yaml"] {
        if let Some(b) = file.strip_suffix(suffix) {
            return (b, suffix);
        }
    }
    (file, "")
}

/// Stores the uploaded files of one signal as results, one per script
/// (`x`, `x.out`, `x.err`, `x.yaml` belong together); a newer result of the
/// same script and type replaces the older one.
#[allow(clippy::too_many_arguments)]
pub fn store_results(
    conn: &mut DbConn,
    sid: &SystemId,
    result_type: &str,
    name: Option<&str>,
    files: &[(String, Vec<u8>)],
    exit_status: Option<i64>,
    runtime: Option<f64>,
    now_ms: i64,
) -> Result<Vec<ScriptResult>, ApiError> {
    let mut results: Vec<ScriptResult> = Vec::new();
    for (file, data) in files {
        let (base, suffix) = base_name(file);
        let text = String::from_utf8_lossy(data).into_owned();
        let idx = match results.iter().position(|r| r.name == base) {
            Some(i) => i,
            None => {
                results.push(ScriptResult {
                    name: base.to_owned(),
                    result_type: result_type.to_owned(),
                    exit_status,
                    output: String::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                    runtime,
                    updated: now_ms,
                });
                results.len() - 1
            }
        };
        let r = &mut results[idx];
        match suffix {
            ".out" => r.stdout = text,
            ".err" => r.stderr = text,
            ".yaml" => {}
            _ => r.output = text,
        }
    }
    if let (Some(n), [only]) = (name, results.as_mut_slice()) {
        only.name = n.to_owned();
    }
    let existing = list_results(conn, sid)?;
    for r in &results {
        for (id, old) in &existing {
            if old.name == r.name && old.result_type == r.result_type {
                objects::delete(conn, RESULT_KIND, *id)?;
            }
        }
        let data = match serde_json::to_value(r).map_err(ApiError::internal)? {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        objects::insert(conn, RESULT_KIND, sid.as_str(), &data)?;
    }
    Ok(results)
}

/// Every stored result of a machine with its object id, oldest first.
pub fn list_results(
    conn: &mut DbConn,
    sid: &SystemId,
) -> Result<Vec<(i64, ScriptResult)>, ApiError> {
    let mut out = Vec::new();
    for o in objects::list(conn, RESULT_KIND)? {
        if o.name != sid.as_str() {
            continue;
        }
        if let Ok(r) = serde_json::from_value::<ScriptResult>(Value::Object(o.data)) {
            out.push((o.id, r));
        }
    }
    Ok(out)
}

/// The `index.json` MAAS's runner reads: the builtin commissioning scripts
/// then the user's, and the user's testing scripts.
pub fn index_json(custom: &[(i64, CustomScript)]) -> Value {
    let entry = |dir: &str, name: &str, version: i64, timeout: u64| {
        json!({
            "name": name,
            "path": format!("{dir}/{name}"),
            "script_version_id": version,
            "timeout_seconds": timeout,
            "parallel": 0,
            "hardware_type": 0,
            "parameters": {},
            "packages": {},
            "for_hardware": [],
            "apply_configured_networking": false,
        })
    };
    let mut commissioning: Vec<Value> = BUILTIN_SCRIPTS
        .iter()
        .zip(1..)
        .map(|(s, i)| entry("commissioning", s.name, -i, 600))
        .collect();
    let mut testing = Vec::new();
    for (id, s) in custom {
        if s.script_type == "commissioning" {
            commissioning.push(entry("commissioning", &s.name, *id, s.timeout_seconds));
        } else {
            testing.push(entry("testing", &s.name, *id, s.timeout_seconds));
        }
    }
    json!({"1.0": {"commissioning_scripts": commissioning, "testing_scripts": testing}})
}

/// `maas-scripts`: an uncompressed tar of `index.json` and the scripts.
pub fn tarball(conn: &mut DbConn, sm: &StoredMachine) -> Result<MetaReply, ApiError> {
    let custom = custom_scripts(conn)?;
    let mut b = tar::Builder::new(Vec::new());
    let mtime = u64::try_from(sm.updated / 1000).unwrap_or(0);
    let mut add = |path: &str, data: &[u8], mode: u32| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_cksum();
        b.append_data(&mut h, path, data)
    };
    let index = serde_json::to_vec_pretty(&index_json(&custom)).map_err(ApiError::internal)?;
    add("index.json", &index, 0o644).map_err(ApiError::internal)?;
    for s in BUILTIN_SCRIPTS {
        let body = format!(
            "#!/bin/sh\n# {}: builtin commissioning script (maasd)\n{}\n",
            s.name, s.command
        );
        add(&format!("commissioning/{}", s.name), body.as_bytes(), 0o755)
            .map_err(ApiError::internal)?;
    }
    for (_, s) in &custom {
        let dir = if s.script_type == "commissioning" {
            "commissioning"
        } else {
            "testing"
        };
        add(&format!("{dir}/{}", s.name), s.script.as_bytes(), 0o755)
            .map_err(ApiError::internal)?;
    }
    let data = b.into_inner().map_err(ApiError::internal)?;
    Ok(MetaReply::Body(200, "application/x-tar", data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_files_group_by_script() {
        assert_eq!(
            base_name("00-maas-01-cpuinfo.out"),
            ("00-maas-01-cpuinfo", ".out")
        );
        assert_eq!(base_name("x.yaml"), ("x", ".yaml"));
        assert_eq!(base_name("plain"), ("plain", ""));
    }

    #[test]
    fn enlist_user_data_points_at_the_region() {
        let u = enlist_user_data("http://10.0.0.1:5240/MAAS");
        assert!(u.contains("DEFAULT_MODE = \"enlist\""));
        assert!(u.contains("DEFAULT_MAAS_URL = \"http://10.0.0.1:5240/MAAS\""));
        assert!(runner_user_data().starts_with("#!/usr/bin/env python3"));
    }
}
