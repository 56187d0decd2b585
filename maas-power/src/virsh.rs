//! The `virsh` power type: libvirt domains driven through the `virsh` CLI
//! (`virsh --connect <power_address> start|destroy|domstate <power_id>`).
//!
//! When `power_pass` is set (an SSH URI such as `qemu+ssh://user@host/system`),
//! it reaches ssh through `SSH_ASKPASS`: a throw-away script that prints an
//! environment variable, so the password is never on a command line.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use maas_core::PowerState;
use tokio::process::Command;

use crate::driver::{Capabilities, OffMode, PowerDriver, PowerTarget};
use crate::error::{Error, Result};
use crate::params::ParamSpec;

const SCHEMA: &[ParamSpec] = &[
    ParamSpec::new("power_address", "Address").required(),
    ParamSpec::new("power_pass", "Password (optional)").secret(),
    ParamSpec::new("power_id", "Virsh VM ID").node().required(),
];

/// MAAS's `virsh` driver.
#[derive(Debug, Clone)]
pub struct VirshDriver {
    program: PathBuf,
}

impl Default for VirshDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps `virsh domstate` output to a power state, as MAAS does: only
/// `running` and `in shutdown` count as on.
pub fn parse_domstate(out: &str) -> Result<PowerState> {
    match out.trim() {
        "running" | "in shutdown" => Ok(PowerState::On),
        "shut off" | "no state" | "idle" | "paused" | "crashed" | "pmsuspended" => {
            Ok(PowerState::Off)
        }
        other => Err(Error::Bmc(format!(
            "unexpected virsh domain state {other:?}"
        ))),
    }
}

impl VirshDriver {
    /// Uses `virsh` from `PATH`.
    pub fn new() -> Self {
        Self::with_program("virsh")
    }

    /// Uses the given `virsh` binary.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    async fn virsh(&self, target: &PowerTarget, verb: &str) -> Result<String> {
        let p = &target.params;
        let uri = p.require("power_address")?;
        let domain = p.require("power_id")?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("--connect")
            .arg(uri)
            .arg(verb)
            .arg("--")
            .arg(domain)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Keep the askpass script alive until virsh has finished.
        let _askpass = match p.get("power_pass") {
            Some(pass) => Some(askpass(&mut cmd, pass)?),
            None => None,
        };
        let out = cmd.output().await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ToolMissing {
                    program: self.program.display().to_string(),
                    package: "libvirt-clients".into(),
                }
            } else {
                Error::Connection(format!("cannot run virsh: {e}"))
            }
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(classify_failure(verb, &err))
    }

    async fn state(&self, target: &PowerTarget) -> Result<PowerState> {
        parse_domstate(&self.virsh(target, "domstate").await?)
    }
}

fn classify_failure(verb: &str, stderr: &str) -> Error {
    let lower = stderr.to_lowercase();
    let msg = format!("virsh {verb}: {stderr}");
    if lower.contains("failed to get domain") || lower.contains("domain not found") {
        Error::Settings(msg)
    } else if lower.contains("authentication") || lower.contains("permission denied") {
        Error::Auth(msg)
    } else if lower.contains("failed to connect") {
        Error::Connection(msg)
    } else {
        Error::Bmc(msg)
    }
}

/// Writes an askpass helper and points ssh at it.
fn askpass(cmd: &mut Command, pass: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().map_err(|e| Error::Invalid(format!("temp dir: {e}")))?;
    let script = dir.path().join("askpass");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$MAAS_POWER_PASS\"\n")
        .and_then(|()| std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| Error::Invalid(format!("askpass script: {e}")))?;
    cmd.env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("MAAS_POWER_PASS", pass);
    Ok(dir)
}

#[async_trait]
impl PowerDriver for VirshDriver {
    fn power_type(&self) -> &'static str {
        "virsh"
    }
    fn description(&self) -> &'static str {
        "Virsh (virtual systems)"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            queryable: true,
            can_set_boot_order: false,
            soft_off: false,
        }
    }
    fn schema(&self) -> &'static [ParamSpec] {
        SCHEMA
    }
    async fn power_on(&self, target: &PowerTarget) -> Result<()> {
        if self.state(target).await? != PowerState::On {
            self.virsh(target, "start").await?;
        }
        Ok(())
    }
    async fn power_off(&self, target: &PowerTarget, mode: OffMode) -> Result<()> {
        if self.state(target).await? == PowerState::On {
            let verb = match mode {
                OffMode::Soft => "shutdown",
                OffMode::Hard => "destroy",
            };
            self.virsh(target, verb).await?;
        }
        Ok(())
    }
    async fn power_query(&self, target: &PowerTarget) -> Result<PowerState> {
        self.state(target).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domstate_mapping() {
        assert_eq!(parse_domstate("running\n\n").unwrap(), PowerState::On);
        assert_eq!(parse_domstate("shut off\n").unwrap(), PowerState::Off);
        assert_eq!(parse_domstate("paused").unwrap(), PowerState::Off);
        assert!(parse_domstate("exploded").is_err());
    }

    proptest::proptest! {
        #[test]
        fn domstate_parser_never_panics(s in ".*") {
            let _ = parse_domstate(&s);
            let _ = classify_failure("start", &s);
        }
    }

    #[test]
    fn failures_are_classified() {
        assert!(classify_failure("start", "error: failed to get domain 'x'").is_fatal());
        assert!(
            !classify_failure("start", "error: failed to connect to the hypervisor").is_fatal()
        );
    }
}
