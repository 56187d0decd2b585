//! The `#cloud-config` preseeds MAAS serves at
//! `by-id/<system_id>/?op=get_preseed` (the kernel's `cloud-config-url`):
//! the commissioning preseed (commissioning-like statuses, power-off,
//! ephemeral deployments), the curtin preseed (installing) and the
//! credential-less enlistment preseed.

use serde_json::{Map, Value, json};

use super::{RenderContext, cloud_config};
use crate::boot::COMMISSIONING_LIKE;
use crate::error::Result;
use crate::machine::Machine;
use crate::status::NodeStatus;

/// Which preseed a machine gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreseedKind {
    /// Ephemeral environment: commissioning, testing, erasing, rescue,
    /// power-off, deploying to memory.
    Commissioning,
    /// The installer environment (curtin).
    Curtin,
}

/// MAAS's chooser: commissioning-like statuses, machines that should power
/// off and ephemeral deployments get the commissioning preseed, everything
/// else the curtin one.
pub fn preseed_kind(machine: &Machine) -> PreseedKind {
    let poweroff = crate::boot::boot_purpose(Some(machine)) == crate::BootPurpose::Poweroff;
    if COMMISSIONING_LIKE.contains(&machine.status) || poweroff || machine.ephemeral_deploy {
        PreseedKind::Commissioning
    } else {
        PreseedKind::Curtin
    }
}

/// The preseed MAAS would serve the machine now.
pub fn preseed(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    match preseed_kind(machine) {
        PreseedKind::Commissioning => commissioning_preseed(machine, ctx),
        PreseedKind::Curtin => curtin_preseed(machine, ctx),
    }
}

/// Ubuntu release numbers, to pick the sources.list format (deb822 from
/// 24.04 on).
fn ubuntu_version(series: &str) -> Option<(u32, u32)> {
    Some(match series {
        "xenial" => (16, 4),
        "bionic" => (18, 4),
        "focal" => (20, 4),
        "jammy" => (22, 4),
        "mantic" => (23, 10),
        "noble" => (24, 4),
        "oracular" => (24, 10),
        "plucky" => (25, 4),
        "questing" => (25, 10),
        _ => return None,
    })
}

/// `apt:` for preseeds and curtin: archives, sources list, proxy.
pub fn apt_config(machine: &Machine, ctx: &RenderContext) -> Value {
    let mut apt = Map::new();
    apt.insert("preserve_sources_list".into(), json!(false));
    if !ctx.apt.archive.is_empty() {
        let ports = if ctx.apt.ports_archive.is_empty() {
            &ctx.apt.archive
        } else {
            &ctx.apt.ports_archive
        };
        let mirrors = json!([
            { "arches": ["amd64", "i386"], "uri": ctx.apt.archive },
            { "arches": ["default"], "uri": ports },
        ]);
        apt.insert("primary".into(), mirrors.clone());
        apt.insert("security".into(), mirrors);
        let deb822 = ubuntu_version(&machine.distro_series).is_some_and(|v| v >= (24, 4));
        let comps = "main restricted universe multiverse";
        let sources = if deb822 {
            format!(
                "Types: deb\nURIs: $PRIMARY\nSuites: $RELEASE $RELEASE-updates $RELEASE-backports\n\
                 Components: {comps}\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n\n\
                 Types: deb\nURIs: $SECURITY\nSuites: $RELEASE-security\n\
                 Components: {comps}\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
            )
        } else {
            format!(
                "deb $PRIMARY $RELEASE {comps}\n\
                 deb $PRIMARY $RELEASE-updates {comps}\n\
                 deb $PRIMARY $RELEASE-backports {comps}\n\
                 deb $SECURITY $RELEASE-security {comps}\n"
            )
        };
        apt.insert("sources_list".into(), json!(sources));
    }
    if let Some(p) = &ctx.apt.proxy {
        apt.insert("proxy".into(), json!(p));
    }
    Value::Object(apt)
}

/// Keys both preseeds share.
fn base(machine: &Machine, ctx: &RenderContext, metadata_url: String) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("datasource".into(), ctx.datasource(metadata_url));
    c.insert("manage_etc_hosts".into(), json!(true));
    if let Some(s) = &ctx.syslog {
        c.insert("rsyslog".into(), json!({ "remotes": { "maas": s } }));
    }
    c.insert("reporting".into(), ctx.reporting(machine));
    c.insert("apt".into(), apt_config(machine, ctx));
    if let Some(p) = &ctx.apt.proxy {
        c.insert(
            "snap".into(),
            json!({ "commands": [format!("snap set system proxy.http={p} proxy.https={p}")] }),
        );
    }
    c
}

/// The commissioning preseed: datasource at `…/MAAS/metadata/`, power off
/// when done (3600 s, 7 days when erasing) unless rescuing, keeping SSH,
/// or deploying to memory.
pub fn commissioning_preseed(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    let mut c = base(machine, ctx, ctx.metadata_url());
    let mut packages = vec!["python3-yaml", "python3-oauthlib"];
    if machine.status == NodeStatus::DiskErasing {
        packages.push("nvme-cli");
    }
    c.insert("packages".into(), json!(packages));
    let rescue = matches!(
        machine.status,
        NodeStatus::RescueMode | NodeStatus::EnteringRescueMode
    );
    let ssh_kept = ctx.enable_ssh
        && matches!(
            machine.status,
            NodeStatus::Commissioning | NodeStatus::Testing
        );
    if !(rescue || ssh_kept || machine.ephemeral_deploy) {
        let timeout = if machine.status == NodeStatus::DiskErasing {
            7 * 24 * 3600
        } else {
            3600
        };
        c.insert(
            "power_state".into(),
            json!({
                "mode": "poweroff",
                "delay": "now",
                "timeout": timeout,
                "condition": "test ! -e /tmp/block-poweroff",
            }),
        );
    }
    cloud_config(&Value::Object(c))
}

/// The curtin preseed: datasource at `…/MAAS/metadata/curtin`, reboot into
/// the installed OS (1800 s).
pub fn curtin_preseed(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    let mut c = base(machine, ctx, ctx.curtin_metadata_url());
    c.insert("packages".into(), json!(["python3-packaging"]));
    c.insert(
        "power_state".into(),
        json!({
            "mode": "reboot",
            "delay": "now",
            "timeout": 1800,
            "condition": "test ! -e /tmp/block-reboot",
        }),
    );
    cloud_config(&Value::Object(c))
}

/// The enlistment preseed: datasource without credentials, syslog, APT,
/// power off when done.
pub fn enlist_preseed(ctx: &RenderContext) -> Result<String> {
    let mut c = Map::new();
    c.insert(
        "datasource".into(),
        json!({ "MAAS": { "metadata_url": ctx.metadata_url() } }),
    );
    if let Some(s) = &ctx.syslog {
        c.insert("rsyslog".into(), json!({ "remotes": { "maas": s } }));
    }
    c.insert("apt".into(), apt_config(&Machine::default(), ctx));
    c.insert(
        "power_state".into(),
        json!({
            "mode": "poweroff",
            "delay": "now",
            "timeout": 1800,
            "condition": "test ! -e /tmp/block-poweroff",
        }),
    );
    cloud_config(&Value::Object(c))
}
