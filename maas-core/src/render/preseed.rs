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

/// `apt:` for preseeds and curtin: archives, sources list, proxy, the
/// archive's key and additional repositories.
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
        let comps = ["main", "restricted", "universe", "multiverse"]
            .into_iter()
            .filter(|c| *c == "main" || !ctx.apt.disabled_components.iter().any(|d| d == c))
            .collect::<Vec<_>>()
            .join(" ");
        let on = |pocket: &str| !ctx.apt.disabled_pockets.iter().any(|p| p == pocket);
        let mut suites = vec!["$RELEASE".to_owned()];
        suites.extend(
            ["updates", "backports"]
                .into_iter()
                .filter(|p| on(p))
                .map(|p| format!("$RELEASE-{p}")),
        );
        let sources = if deb822 {
            let mut s = format!(
                "Types: deb\nURIs: $PRIMARY\nSuites: {}\n\
                 Components: {comps}\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n",
                suites.join(" ")
            );
            if on("security") {
                s.push_str(&format!(
                    "\nTypes: deb\nURIs: $SECURITY\nSuites: $RELEASE-security\n\
                     Components: {comps}\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
                ));
            }
            s
        } else {
            let mut s: String = suites
                .iter()
                .map(|suite| format!("deb $PRIMARY {suite} {comps}\n"))
                .collect();
            if on("security") {
                s.push_str(&format!("deb $SECURITY $RELEASE-security {comps}\n"));
            }
            s
        };
        apt.insert("sources_list".into(), json!(sources));
    }
    let mut sources = Map::new();
    if let Some(k) = &ctx.apt.archive_key {
        sources.insert("archive_key".into(), json!({ "key": k }));
    }
    for s in &ctx.apt.sources {
        let mut e = Map::new();
        e.insert("source".into(), json!(s.source));
        if let Some(k) = &s.key {
            e.insert("key".into(), json!(k));
        }
        sources.insert(s.name.clone(), Value::Object(e));
    }
    if !sources.is_empty() {
        apt.insert("sources".into(), Value::Object(sources));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{AptConfig, AptSource};

    fn ctx(apt: AptConfig) -> RenderContext {
        RenderContext {
            apt,
            ..RenderContext::default()
        }
    }

    fn machine(series: &str) -> Machine {
        Machine {
            distro_series: series.into(),
            ..Machine::default()
        }
    }

    #[test]
    fn no_archive_leaves_the_image_sources_alone() {
        let apt = apt_config(&machine("jammy"), &ctx(AptConfig::default()));
        assert_eq!(apt, json!({ "preserve_sources_list": false }));
    }

    #[test]
    fn the_archive_with_pockets_and_components_disabled() {
        let a = AptConfig {
            archive: "http://mirror.example/ubuntu".into(),
            ports_archive: "http://mirror.example/ports".into(),
            proxy: Some("http://proxy.example:3128/".into()),
            disabled_pockets: vec!["backports".into(), "security".into()],
            disabled_components: vec!["multiverse".into(), "main".into()],
            ..AptConfig::default()
        };
        let apt = apt_config(&machine("jammy"), &ctx(a.clone()));
        assert_eq!(apt["primary"][0]["uri"], "http://mirror.example/ubuntu");
        assert_eq!(apt["primary"][1]["uri"], "http://mirror.example/ports");
        assert_eq!(apt["proxy"], "http://proxy.example:3128/");
        assert_eq!(
            apt["sources_list"],
            "deb $PRIMARY $RELEASE main restricted universe\n\
             deb $PRIMARY $RELEASE-updates main restricted universe\n"
        );
        // deb822 from 24.04: the same suites, no security stanza.
        let apt = apt_config(&machine("noble"), &ctx(a));
        let list = apt["sources_list"].as_str().unwrap();
        assert!(
            list.contains("Suites: $RELEASE $RELEASE-updates\n"),
            "{list}"
        );
        assert!(
            list.contains("Components: main restricted universe\n"),
            "{list}"
        );
        assert!(!list.contains("security"), "{list}");
    }

    #[test]
    fn every_pocket_by_default() {
        let a = AptConfig {
            archive: "http://archive.ubuntu.com/ubuntu".into(),
            ..AptConfig::default()
        };
        let list = apt_config(&machine("jammy"), &ctx(a))["sources_list"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(list.lines().count(), 4, "{list}");
        assert!(
            list.ends_with("deb $SECURITY $RELEASE-security main restricted universe multiverse\n")
        );
    }

    #[test]
    fn additional_repositories_and_the_archive_key() {
        let a = AptConfig {
            archive_key: Some("ARCHIVE KEY".into()),
            sources: vec![
                AptSource {
                    name: "tools_3".into(),
                    source: "deb http://repo.example/tools $RELEASE main".into(),
                    key: Some("TOOLS KEY".into()),
                },
                AptSource {
                    name: "ppa_4".into(),
                    source: "ppa:owner/name".into(),
                    key: None,
                },
            ],
            ..AptConfig::default()
        };
        let apt = apt_config(&machine("jammy"), &ctx(a));
        assert_eq!(
            apt["sources"],
            json!({
                "archive_key": { "key": "ARCHIVE KEY" },
                "tools_3": { "source": "deb http://repo.example/tools $RELEASE main", "key": "TOOLS KEY" },
                "ppa_4": { "source": "ppa:owner/name" },
            })
        );
    }
}
