//! Scripts machines run and what they report: the `maas-scripts` tarball
//! (`index.json` plus one file per script, as MAAS's runner reads it), the
//! runner served as ephemeral user-data (`scripts/maas-run-scripts`, shipped
//! in this repository), and how uploaded files become result reports
//! (stored by [`super::results`]).

use maas_core::hardware::commissioning::BUILTIN_SCRIPTS;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::MetaReply;
use super::results::Report;
use crate::api::ApiError;
use crate::db::machines::StoredMachine;
use crate::db::{DbConn, objects};

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

fn base_name(file: &str) -> (&str, &str) {
    for suffix in [".out", ".err", ".yaml"] {
        if let Some(b) = file.strip_suffix(suffix) {
            return (b, suffix);
        }
    }
    (file, "")
}

/// Groups the uploaded files of one signal into one report per script
/// (`x`, `x.out`, `x.err`, `x.yaml` belong together: combined output,
/// stdout, stderr, result). `name` renames a lone report (MAAS's runner
/// names the script it reports on); user scripts get their id.
pub fn reports_from_files(
    files: &[(String, Vec<u8>)],
    name: Option<&str>,
    exit_status: Option<i32>,
    runtime_ms: Option<i64>,
    timed_out: bool,
    custom: &[(i64, CustomScript)],
) -> Vec<Report> {
    let mut reports: Vec<Report> = Vec::new();
    for (file, data) in files {
        let (base, suffix) = base_name(file);
        let idx = match reports.iter().position(|r| r.name == base) {
            Some(i) => i,
            None => {
                reports.push(Report {
                    name: base.to_owned(),
                    exit_status,
                    timed_out,
                    runtime_ms,
                    ..Report::default()
                });
                reports.len() - 1
            }
        };
        let r = &mut reports[idx];
        let slot = match suffix {
            ".out" => &mut r.stdout,
            ".err" => &mut r.stderr,
            ".yaml" => &mut r.result,
            _ => &mut r.output,
        };
        *slot = Some(data.clone());
    }
    if let (Some(n), [only]) = (name, reports.as_mut_slice()) {
        only.name = n.to_owned();
    }
    for r in &mut reports {
        r.script_id = custom
            .iter()
            .find(|(_, s)| s.name == r.name)
            .map(|(id, _)| *id);
    }
    reports
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
    let mut tar = ScriptsTar::new(sm);
    let index = serde_json::to_vec_pretty(&index_json(&custom)).map_err(ApiError::internal)?;
    tar.add("index.json", &index, 0o644)?;
    for s in BUILTIN_SCRIPTS {
        let body = format!(
            "#!/bin/sh\n# {}: builtin commissioning script (maasd)\n{}\n",
            s.name, s.command
        );
        tar.add(&format!("commissioning/{}", s.name), body.as_bytes(), 0o755)?;
    }
    for (_, s) in &custom {
        let dir = if s.script_type == "commissioning" {
            "commissioning"
        } else {
            "testing"
        };
        tar.add(&format!("{dir}/{}", s.name), s.script.as_bytes(), 0o755)?;
    }
    tar.reply()
}

/// A `maas-scripts` tarball being written: uncompressed, every entry
/// stamped with the machine's last update (MAAS's scripts read the index
/// and run what it names).
pub(crate) struct ScriptsTar {
    b: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl ScriptsTar {
    pub(crate) fn new(sm: &StoredMachine) -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
            mtime: u64::try_from(sm.updated / 1000).unwrap_or(0),
        }
    }

    pub(crate) fn add(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), ApiError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(self.mtime);
        h.set_cksum();
        self.b
            .append_data(&mut h, path, data)
            .map_err(ApiError::internal)
    }

    pub(crate) fn reply(self) -> Result<MetaReply, ApiError> {
        let data = self.b.into_inner().map_err(ApiError::internal)?;
        Ok(MetaReply::Body(200, "application/x-tar", data))
    }
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
    fn files_become_one_report_per_script() {
        let files = vec![
            ("a".to_owned(), b"all".to_vec()),
            ("a.out".to_owned(), b"out".to_vec()),
            ("a.err".to_owned(), b"err".to_vec()),
            ("a.yaml".to_owned(), b"y: 1".to_vec()),
            ("b.out".to_owned(), b"b".to_vec()),
        ];
        let custom = vec![(
            7,
            CustomScript {
                name: "b".into(),
                title: String::new(),
                description: String::new(),
                tags: vec![],
                script_type: "testing".into(),
                timeout_seconds: 0,
                destructive: false,
                comment: String::new(),
                script: "#!/bin/sh".into(),
            },
        )];
        let r = reports_from_files(&files, None, Some(0), Some(1500), false, &custom);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "a");
        assert_eq!(r[0].output.as_deref(), Some(&b"all"[..]));
        assert_eq!(r[0].stdout.as_deref(), Some(&b"out"[..]));
        assert_eq!(r[0].stderr.as_deref(), Some(&b"err"[..]));
        assert_eq!(r[0].result.as_deref(), Some(&b"y: 1"[..]));
        assert_eq!(r[0].script_id, None);
        assert_eq!((r[1].name.as_str(), r[1].script_id), ("b", Some(7)));
        assert_eq!(r[1].output, None);
        // A lone report takes the signal's name.
        let r = reports_from_files(&files[4..], Some("zz"), None, None, false, &[]);
        assert_eq!(r[0].name, "zz");
    }

    #[test]
    fn enlist_user_data_points_at_the_region() {
        let u = enlist_user_data("http://10.0.0.1:5240/MAAS");
        assert!(u.contains("DEFAULT_MODE = \"enlist\""));
        assert!(u.contains("DEFAULT_MAAS_URL = \"http://10.0.0.1:5240/MAAS\""));
        assert!(runner_user_data().starts_with("#!/usr/bin/env python3"));
    }
}
