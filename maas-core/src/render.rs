//! Rendering what curtin and cloud-init read, as MAAS does: the curtin
//! config ([`curtin`]), netplan v2 and network v1 documents ([`netplan`],
//! [`netv1`], ESXi rules included), the `#cloud-config` preseeds
//! ([`preseed`]), vendor-data and user-data ([`vendor_data`]).
//!
//! The core cannot know the region's URLs, the node's OAuth token, NTP or
//! archive settings: the server passes them in a [`RenderContext`]. Output
//! is YAML text with keys sorted (MAAS dumps with PyYAML's sorted keys), so
//! it is stable for snapshots.
//!
//! ```
//! use maas_core::hardware::{BlockDevice, Interface, Link, LinkMode};
//! use maas_core::render::{curtin_config, vendor_data};
//! use maas_core::storage::apply_layout;
//! use maas_core::{BootMethod, LayoutRequest, MacAddress, Machine, RenderContext, StorageLayout};
//!
//! let mut m = Machine {
//!     hostname: "node1".into(),
//!     osystem: "ubuntu".into(),
//!     distro_series: "noble".into(),
//!     boot_method: BootMethod::Uefi,
//!     block_devices: vec![BlockDevice {
//!         id: 1,
//!         name: "sda".into(),
//!         size: 100 << 30,
//!         id_path: "/dev/disk/by-id/wwn-0x5000c500a0000001".into(),
//!         ..Default::default()
//!     }],
//!     interfaces: vec![Interface {
//!         id: 1,
//!         name: "eth0".into(),
//!         mac: MacAddress([0x52, 0x54, 0, 0, 0, 1]),
//!         enabled: true,
//!         links: vec![Link { mode: LinkMode::Dhcp, ..Default::default() }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! apply_layout(&mut m, &LayoutRequest::new(StorageLayout::Lvm)).unwrap();
//! maas_core::storage::validate_for_deploy(&m).unwrap();
//!
//! let ctx = RenderContext { maas_url: "http://10.0.0.1:5248/MAAS".into(), ..Default::default() };
//! let curtin = curtin_config(&m, &ctx).unwrap();
//! assert!(curtin.contains("type: lvm_volgroup"));
//! assert!(curtin.contains("macaddress: \"52:54:00:00:00:01\""));
//! assert!(vendor_data(&m, &ctx).unwrap().starts_with("cloud-init: |\n  #cloud-config\n"));
//! ```

pub mod curtin;
pub mod netplan;
pub mod netv1;
pub mod preseed;
pub mod vendor_data;
pub mod yaml;

use std::fmt;

use serde_json::{Value, json};

use crate::error::Result;
use crate::machine::Machine;

pub use curtin::{curtin_config, curtin_storage_config};
pub use preseed::{PreseedKind, commissioning_preseed, curtin_preseed, enlist_preseed, preseed};
pub use vendor_data::{decode_user_data, vendor_data};

/// A node's OAuth credentials (the token MAAS issues per node).
///
/// `Debug` hides the token key and secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NodeToken {
    /// Consumer key.
    pub consumer_key: String,
    /// Token key (identifies the node).
    pub token_key: String,
    /// Token secret.
    pub token_secret: String,
}

impl fmt::Debug for NodeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeToken")
            .field("consumer_key", &self.consumer_key)
            .field("token_key", &"<redacted>")
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

/// APT configuration for preseeds and curtin.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AptConfig {
    /// Main archive (amd64/i386), such as `http://archive.ubuntu.com/ubuntu`.
    pub archive: String,
    /// Ports archive for other architectures; `archive` when empty.
    pub ports_archive: String,
    /// HTTP proxy for APT (and snap), when one is configured.
    pub proxy: Option<String>,
    /// Pockets of the archive left out (`updates`, `security`, `backports`).
    pub disabled_pockets: Vec<String>,
    /// Components of the archive left out (`restricted`, `universe`,
    /// `multiverse`; `main` always stays).
    pub disabled_components: Vec<String>,
    /// An armoured key the archive is signed with (a private mirror's).
    pub archive_key: Option<String>,
    /// Additional repositories, each an `apt.sources` entry.
    pub sources: Vec<AptSource>,
}

/// One additional APT repository (MAAS's custom package repositories).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AptSource {
    /// The entry's name (also its list file's name on the node).
    pub name: String,
    /// `deb` lines (`$RELEASE` is the deployed series) or `ppa:owner/name`.
    pub source: String,
    /// The repository's armoured signing key.
    pub key: Option<String>,
}

/// Everything the renderers need that the machine record does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RenderContext {
    /// Base URL of the MAAS service the node reaches, through its rack:
    /// `http://<rack>:5248/MAAS` (no trailing slash).
    pub maas_url: String,
    /// The node's OAuth token.
    pub token: NodeToken,
    /// Remote syslog target, `host:port` (MAAS: `<rack>:5247`).
    pub syslog: Option<String>,
    /// NTP servers: IP addresses become `servers`, names `pools`.
    pub ntp_servers: Vec<String>,
    /// DNS servers MAAS itself offers (rack/region), listed before subnet
    /// DNS servers.
    pub dns_servers: Vec<std::net::IpAddr>,
    /// APT settings.
    pub apt: AptConfig,
    /// Name of the default user created in the deployed OS, when set.
    pub default_user: Option<String>,
    /// Full name of the owner (the default user's gecos).
    pub owner_name: Option<String>,
    /// Swap size in bytes curtin creates (`0` disables); curtin's own default
    /// when unset.
    pub swap_size: Option<u64>,
    /// Kernel package to install; derived from `hwe_kernel` when unset.
    pub kernel_package: Option<String>,
    /// `verbosity: 3` and `showtrace` in curtin (MAAS's `curtin_verbose`).
    pub curtin_verbose: bool,
    /// Whether commissioning/testing keeps the machine on for SSH (no
    /// `power_state` in the commissioning preseed).
    pub enable_ssh: bool,
    /// Force network v1 even for Ubuntu (`force_v1_network_yaml`).
    pub force_v1_network: bool,
    /// Every static route MAAS knows; an interface gets those whose source
    /// subnet it has a static or auto address on.
    pub static_routes: Vec<StaticRoute>,
}

/// A static route (MAAS's `StaticRoute`): traffic for `destination` goes
/// through `gateway`, which sits on the `source` subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// Database id; routes render in id order, as MAAS sorts them.
    pub id: u64,
    /// Database id of the source subnet.
    pub source: u64,
    /// The destination network.
    pub destination: ipnet::IpNet,
    /// The next hop, inside the source subnet.
    pub gateway: std::net::IpAddr,
    /// Route metric.
    pub metric: u32,
}

impl RenderContext {
    /// The static routes whose source is one of `subnets`, by id, each once.
    pub(crate) fn routes_from(&self, subnets: &[u64]) -> Vec<&StaticRoute> {
        let mut out: Vec<&StaticRoute> = self
            .static_routes
            .iter()
            .filter(|r| subnets.contains(&r.source))
            .collect();
        out.sort_by_key(|r| r.id);
        out.dedup_by_key(|r| r.id);
        out
    }
}

impl RenderContext {
    /// `http://…/MAAS/metadata/`: the installed OS's datasource URL.
    pub fn metadata_url(&self) -> String {
        format!("{}/metadata/", self.maas_url)
    }

    /// `http://…/MAAS/metadata/curtin`: the datasource URL of the ephemeral
    /// environment that installs.
    pub fn curtin_metadata_url(&self) -> String {
        format!("{}/metadata/curtin", self.maas_url)
    }

    /// The status webhook of a node.
    pub fn status_url(&self, machine: &Machine) -> String {
        format!(
            "{}/metadata/status/{}",
            self.maas_url,
            machine.system_id.as_str()
        )
    }

    /// `…/metadata/latest/by-id/<id>/`: where `op=netboot_off` is posted.
    pub fn by_id_url(&self, machine: &Machine) -> String {
        format!(
            "{}/metadata/latest/by-id/{}/",
            self.maas_url,
            machine.system_id.as_str()
        )
    }

    /// The `reporting.maas` webhook handler (cloud-init and curtin).
    pub(crate) fn reporting(&self, machine: &Machine) -> Value {
        json!({
            "maas": {
                "type": "webhook",
                "endpoint": self.status_url(machine),
                "consumer_key": self.token.consumer_key,
                "token_key": self.token.token_key,
                "token_secret": self.token.token_secret,
            }
        })
    }

    /// `datasource.MAAS` pointing at `metadata_url`.
    pub(crate) fn datasource(&self, metadata_url: String) -> Value {
        json!({
            "MAAS": {
                "metadata_url": metadata_url,
                "consumer_key": self.token.consumer_key,
                "token_key": self.token.token_key,
                "token_secret": self.token.token_secret,
            }
        })
    }
}

/// Whether the machine deploys Ubuntu (or Ubuntu Core), which gets netplan
/// v2 and ephemeral networking.
pub fn is_ubuntu(machine: &Machine) -> bool {
    matches!(machine.osystem.as_str(), "ubuntu" | "ubuntu-core" | "")
}

/// Serialises a value as YAML that YAML 1.1 readers (PyYAML in cloud-init
/// and curtin) read back unchanged.
pub(crate) fn to_yaml(v: &Value) -> Result<String> {
    Ok(yaml::emit(v))
}

/// Serialises a value as a `#cloud-config` document.
pub(crate) fn cloud_config(v: &Value) -> Result<String> {
    Ok(format!("#cloud-config\n{}", to_yaml(v)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_hides_secrets() {
        let ctx = RenderContext {
            token: NodeToken {
                consumer_key: "ck".into(),
                token_key: "tk-SECRET".into(),
                token_secret: "ts-SECRET".into(),
            },
            ..Default::default()
        };
        let dbg = format!("{ctx:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert!(dbg.contains("ck"));
    }
}
