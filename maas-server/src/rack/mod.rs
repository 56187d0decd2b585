//! The rack, in-process: `maas-boot`'s DHCP, TFTP and HTTP boot servers
//! answered from the database.
//!
//! - [`source::DbBootSource`] says what a MAC boots now (maas-core's boot
//!   purpose from the machine's status; kernel, initrd and squashfs from
//!   the maas-images store for the machine's release and architecture).
//! - [`dhcp::DbBackend`] gives the DHCP handler its reservations (machines'
//!   static addresses) and records leases and unknown MACs in the
//!   `rack_leases` / `rack_unknown_macs` tables; [`dhcp::load_config`]
//!   builds the served subnets from the API's subnets whose VLAN has
//!   `dhcp_on`, refreshed every `refresh_ms`.
//! - [`images`] records where the rack serves its image store, so the
//!   metadata API can point the installer at a release's root image.
//! - [`start`] binds the sockets and runs maas-boot's own loops (pure
//!   handler + thin tokio loop); nothing here reimplements them.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::controller::ServiceStatus;
use crate::error::{Error, Result};

pub mod dhcp;
pub mod images;
pub mod source;

/// `[rack]` in the `maasd` configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackConfig {
    /// The rack's address on the boot network (DHCP server id, next-server,
    /// TFTP and HTTP listen address).
    pub address: Ipv4Addr,
    /// Interface DHCP binds to (`SO_BINDTODEVICE`); needed when the host
    /// has several networks.
    #[serde(default)]
    pub interface: Option<String>,
    /// DHCP port (67); 0 turns DHCP off.
    #[serde(default = "default_dhcp_port")]
    pub dhcp_port: u16,
    /// TFTP port (69); 0 turns TFTP off.
    #[serde(default = "default_tftp_port")]
    pub tftp_port: u16,
    /// HTTP boot port (MAAS: 5248); 0 turns HTTP boot off.
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// Directory of loader files (pxelinux.0, grubx64.efi, …).
    #[serde(default)]
    pub loaders_dir: Option<PathBuf>,
    /// Root of the maas-images store (kernels, initrds, squashfs).
    #[serde(default)]
    pub images_dir: Option<PathBuf>,
    /// The region URL machines reach the metadata API at; default
    /// `http://<address>:5240/MAAS/`.
    #[serde(default)]
    pub region_url: Option<String>,
    /// How often the DHCP configuration and reservations are re-read, ms.
    #[serde(default = "default_refresh_ms")]
    pub refresh_ms: u64,
}

fn default_dhcp_port() -> u16 {
    67
}
fn default_tftp_port() -> u16 {
    69
}
fn default_http_port() -> u16 {
    5248
}
fn default_refresh_ms() -> u64 {
    1000
}

impl RackConfig {
    /// Refuses values the rack cannot work with.
    pub fn validate(&self) -> Result<()> {
        if self.refresh_ms == 0 {
            return Err(Error::Config("rack.refresh_ms must be positive".into()));
        }
        if let Some(u) = &self.region_url
            && url::Url::parse(u).is_err()
        {
            return Err(Error::Config(format!("rack.region_url is not a URL: {u}")));
        }
        Ok(())
    }

    fn region_url(&self) -> String {
        let mut u = self
            .region_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:5240/MAAS/", self.address));
        if !u.ends_with('/') {
            u.push('/');
        }
        u
    }
}

/// A tree with no files (no loaders or images configured).
#[derive(Debug, Clone, Copy)]
struct EmptyTree;

#[async_trait::async_trait]
impl maas_boot::tree::BootTree for EmptyTree {
    async fn open(
        &self,
        path: &maas_boot::tree::BootPath,
        _client: &maas_boot::tree::Client,
    ) -> maas_boot::Result<maas_boot::tree::BootFile> {
        Err(maas_boot::Error::NotFound(path.as_string()))
    }
}

fn dir_tree(dir: Option<&PathBuf>) -> Result<Arc<dyn maas_boot::tree::BootTree>> {
    Ok(match dir {
        Some(d) => Arc::new(
            maas_boot::tree::DirTree::new(d)
                .map_err(|e| Error::Config(format!("{}: {e}", d.display())))?,
        ),
        None => Arc::new(EmptyTree),
    })
}

/// Starts the configured rack services; they stop when `shutdown` is
/// cancelled. Returns their tasks.
pub async fn start(
    state: Arc<AppState>,
    cfg: RackConfig,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    cfg.validate()?;
    let services = &state.controller.services;
    // The one store the importer writes (its catalog is cached in memory).
    let store = match &cfg.images_dir {
        Some(d) => Some(state.images.open_store(d)?),
        None => None,
    };
    // The region names deployable images by the URL this rack serves them
    // at (curtin's `sources:`), as MAAS asks its racks.
    if let (Some(store), true) = (&store, cfg.http_port != 0) {
        let reg = images::RackImages {
            images_dir: store.root().to_owned(),
            http_base: format!("http://{}:{}/images/", cfg.address, cfg.http_port),
        };
        let st = state.clone();
        st.pool
            .run(move |c| c.write_tx(|c| images::register(c, &reg)))
            .await?;
    }
    let source = Arc::new(source::DbBootSource::new(
        state.clone(),
        store.clone(),
        cfg.region_url(),
    ));
    let loaders = dir_tree(cfg.loaders_dir.as_ref())?;
    let boot: Arc<dyn maas_boot::tree::BootTree> =
        Arc::new(maas_boot::bootconfig::ConfigTree::new(source, loaders));
    let images = dir_tree(store.as_ref().map(|s| s.root().join("images")).as_ref())?;
    let mut tasks = Vec::new();

    if cfg.tftp_port != 0 {
        let addr = SocketAddr::V4(SocketAddrV4::new(cfg.address, cfg.tftp_port));
        let sock = tokio::net::UdpSocket::bind(addr).await.map_err(Error::Io)?;
        tracing::info!(%addr, "rack: TFTP listening");
        let (tree, stop, st) = (boot.clone(), shutdown.clone(), state.clone());
        services.set(
            "tftp",
            ServiceStatus::Running,
            format!("listening on {addr}"),
        );
        tasks.push(tokio::spawn(async move {
            let serving =
                maas_boot::tftp::serve(sock, tree, maas_boot::tftp::TftpConfig::default(), stop);
            crate::controller::watch(&st.controller.services, "tftp", serving).await;
        }));
    }
    if cfg.http_port != 0 {
        let addr = SocketAddr::V4(SocketAddrV4::new(cfg.address, cfg.http_port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(Error::Io)?;
        tracing::info!(%addr, "rack: HTTP boot listening");
        let app = maas_boot::http::BootHttp::new(images, boot.clone(), addr);
        let (stop, st) = (shutdown.clone(), state.clone());
        services.set(
            "http",
            ServiceStatus::Running,
            format!("listening on {addr}"),
        );
        tasks.push(tokio::spawn(async move {
            let serving = maas_boot::http::serve(listener, app, stop);
            crate::controller::watch(&st.controller.services, "http", serving).await;
        }));
    }
    if cfg.dhcp_port != 0 {
        tasks.extend(dhcp::start(state.clone(), &cfg, &data_dir, shutdown)?);
    }
    for (name, port) in [
        ("tftp", cfg.tftp_port),
        ("http", cfg.http_port),
        ("dhcpd", cfg.dhcp_port),
    ] {
        if port == 0 {
            services.set(name, ServiceStatus::Off, "port 0 in [rack]: turned off");
        }
    }
    state
        .controller
        .set_rack(cfg.address, cfg.interface.clone());
    services.set("rackd", ServiceStatus::Running, "");
    Ok(tasks)
}

/// Sleeps `every`; false when `shutdown` came first.
pub(crate) async fn every(every: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(every) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c: RackConfig = toml::from_str("address = \"10.0.0.1\"\n").unwrap();
        assert_eq!((c.dhcp_port, c.tftp_port, c.http_port), (67, 69, 5248));
        assert_eq!(c.region_url(), "http://10.0.0.1:5240/MAAS/");
        c.validate().unwrap();
        assert!(toml::from_str::<RackConfig>("address = \"x\"\n").is_err());
        assert!(toml::from_str::<RackConfig>("address = \"10.0.0.1\"\nport = 1\n").is_err());
        let bad: RackConfig =
            toml::from_str("address = \"10.0.0.1\"\nregion_url = \"not a url\"\n").unwrap();
        assert!(bad.validate().is_err());
    }
}
