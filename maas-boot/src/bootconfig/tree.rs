//! The config-file names loaders ask for (maas.md §4.4) and the tree that
//! answers them from a [`BootConfigSource`].

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use maas_core::MacAddress;

use super::templates::{grub_bootstrap, ipxe_bootstrap, ipxe_bootstrap_for, render_for};
use super::{BootConfigSource, BootRequest, Loader};
use crate::tree::{BootFile, BootPath, BootTree, Client};
use crate::{Error, Result};

/// What a config path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigPath {
    /// `grub/grub.cfg`.
    GrubBootstrap,
    /// `ipxe.cfg`.
    IpxeBootstrap,
    /// A per-machine or arch-default config.
    Config {
        /// The loader.
        loader: Loader,
        /// The MAC, for per-machine names.
        mac: Option<MacAddress>,
        /// The arch, for default names.
        arch: Option<String>,
    },
    /// A pxelinux name this server never has (UUID, hex IP): a quick "not found"
    /// so pxelinux moves on to the next name.
    Absent,
}

fn arch_suffix(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= 64).then(|| s.to_owned())
}

/// Recognises config-file paths; `None` means "not a config, look in the loader files".
pub fn parse_config_path(path: &BootPath) -> Option<ConfigPath> {
    let c = path.components();
    let cfg = |loader, mac, arch| Some(ConfigPath::Config { loader, mac, arch });
    match c {
        [f] if f == "ipxe.cfg" => Some(ConfigPath::IpxeBootstrap),
        [f] => {
            let rest = f.strip_prefix("ipxe.cfg-")?;
            if let Some(arch) = rest.strip_prefix("default-") {
                return cfg(Loader::Ipxe, None, arch_suffix(arch));
            }
            rest.parse()
                .ok()
                .and_then(|mac| cfg(Loader::Ipxe, Some(mac), None))
        }
        [d, f] if d == "pxelinux.cfg" => {
            if f == "default" {
                return cfg(Loader::Pxelinux, None, None);
            }
            if let Some(arch) = f.strip_prefix("default-").or(f.strip_prefix("default.")) {
                return cfg(Loader::Pxelinux, None, arch_suffix(arch));
            }
            if let Some(mac) = f.strip_prefix("01-").and_then(|m| m.parse().ok()) {
                return cfg(Loader::Pxelinux, Some(mac), None);
            }
            Some(ConfigPath::Absent)
        }
        [d, f] if d == "grub" => {
            if f == "grub.cfg" {
                return Some(ConfigPath::GrubBootstrap);
            }
            let rest = f.strip_prefix("grub.cfg-")?;
            if let Some(arch) = rest.strip_prefix("default-") {
                return cfg(Loader::Grub, None, arch_suffix(arch));
            }
            // GRUB's own search also tries `01-<mac>`; accept both spellings.
            let mac = rest.strip_prefix("01-").unwrap_or(rest);
            mac.parse()
                .ok()
                .and_then(|mac| cfg(Loader::Grub, Some(mac), None))
        }
        _ => None,
    }
}

/// Generated configs over a fallback tree of loader files.
#[derive(Clone)]
pub struct ConfigTree {
    source: Arc<dyn BootConfigSource>,
    files: Arc<dyn BootTree>,
}

impl std::fmt::Debug for ConfigTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigTree").finish_non_exhaustive()
    }
}

impl ConfigTree {
    /// Configs from `source`, everything else from `files`.
    pub fn new(source: Arc<dyn BootConfigSource>, files: Arc<dyn BootTree>) -> Self {
        Self { source, files }
    }
}

#[async_trait]
impl BootTree for ConfigTree {
    async fn open(&self, path: &BootPath, client: &Client) -> Result<BootFile> {
        let text = match parse_config_path(path) {
            None => return self.files.open(path, client).await,
            Some(ConfigPath::Absent) => return Err(Error::NotFound(path.as_string())),
            Some(ConfigPath::GrubBootstrap) => grub_bootstrap(),
            // Name ourselves: under proxyDHCP `${next-server}` is not us.
            Some(ConfigPath::IpxeBootstrap) if !client.local.ip().is_unspecified() => {
                ipxe_bootstrap_for(client.local.ip())
            }
            Some(ConfigPath::IpxeBootstrap) => ipxe_bootstrap(),
            Some(ConfigPath::Config { loader, mac, arch }) => {
                let req = BootRequest {
                    loader,
                    mac,
                    arch,
                    remote: client.peer.ip(),
                    rack: client.local.ip(),
                };
                let params = self.source.boot_params(&req).await?;
                // An arch-default name says the architecture (pxelinux:
                // `default.amd64-generic`); a per-MAC one does not.
                let (arch, subarch) = match req.arch.as_deref() {
                    Some(a) => match a.split_once('-') {
                        Some((a, s)) => (Some(a), Some(s)),
                        None => (Some(a), None),
                    },
                    None => (None, None),
                };
                render_for(loader, &params, req.rack, arch, subarch)
            }
        };
        Ok(BootFile::Bytes(Bytes::from(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<ConfigPath> {
        parse_config_path(&BootPath::parse(s.as_bytes()).unwrap())
    }

    #[test]
    fn recognises_loader_names() {
        let mac: MacAddress = "52:54:00:00:00:03".parse().unwrap();
        let per_mac = |loader| {
            Some(ConfigPath::Config {
                loader,
                mac: Some(mac),
                arch: None,
            })
        };
        assert_eq!(
            p("pxelinux.cfg/01-52-54-00-00-00-03"),
            per_mac(Loader::Pxelinux)
        );
        assert_eq!(p("/grub/grub.cfg-52:54:00:00:00:03"), per_mac(Loader::Grub));
        assert_eq!(p("grub/grub.cfg-52-54-00-00-00-03"), per_mac(Loader::Grub));
        assert_eq!(p("ipxe.cfg-52:54:00:00:00:03"), per_mac(Loader::Ipxe));
        assert_eq!(
            p("grub/grub.cfg-default-x86_64"),
            Some(ConfigPath::Config {
                loader: Loader::Grub,
                mac: None,
                arch: Some("x86_64".into())
            })
        );
        assert_eq!(
            p("ipxe.cfg-default-amd64"),
            Some(ConfigPath::Config {
                loader: Loader::Ipxe,
                mac: None,
                arch: Some("amd64".into())
            })
        );
        assert_eq!(
            p("pxelinux.cfg/default"),
            Some(ConfigPath::Config {
                loader: Loader::Pxelinux,
                mac: None,
                arch: None
            })
        );
        assert_eq!(p("pxelinux.cfg/C000026F"), Some(ConfigPath::Absent));
        assert_eq!(p("grub/grub.cfg"), Some(ConfigPath::GrubBootstrap));
        assert_eq!(p("ipxe.cfg"), Some(ConfigPath::IpxeBootstrap));
        assert_eq!(p("lpxelinux.0"), None);
        assert_eq!(p("grub/x86_64-efi/command.lst"), None);
    }
}
