//! This `maasd` as MAAS's controller node: a region and rack controller in
//! one process (MAAS's `node_type` 4).
//!
//! The module owns what the controller API reports about it:
//! - its system id, generated once and kept in the `settings` table so it
//!   survives restarts ([`ensure_system_id`]);
//! - the host's facts read once at start ([`Host`]): hostname,
//!   architecture, CPUs, memory, operating system;
//! - the state of the services it runs, under MAAS's service names
//!   ([`Services`]): `regiond` while the API answers, `rackd`, `tftp`,
//!   `http` and `dhcpd` as the rack started them (or `off`), `dead` when
//!   a service's loop stopped on an error;
//! - where it serves (the rack's boot address and interface, the API's
//!   listen address) for `interface_set` and `ip_addresses`;
//! - the rack's image state as MAAS's `list_boot_images` shows it
//!   ([`boot_images`]): the images the store holds, and whether the
//!   selected images are all there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use maas_core::SystemId;
use maas_images::{ResourceKind, Selection, StoredResource};
use serde_json::{Value, json};

use crate::db::{DbConn, boot, machines, settings};
use crate::error::Result;

/// The setting that holds the controller's system id.
pub const SYSTEM_ID_SETTING: &str = "controller:system_id";

/// MAAS's `NODE_TYPE.REGION_AND_RACK_CONTROLLER`.
pub const NODE_TYPE: u8 = 4;
/// Its display name.
pub const NODE_TYPE_NAME: &str = "Region and rack controller";

/// The controller's system id: the stored one, or a new one (never a
/// machine's) stored now. Call inside a write transaction.
pub fn ensure_system_id(conn: &mut DbConn) -> Result<SystemId> {
    if let Some(id) = system_id(conn)? {
        return Ok(id);
    }
    let id = loop {
        let id = SystemId::generate(&mut rand::rng());
        if machines::get(conn, &id)?.is_none() {
            break id;
        }
    };
    settings::set(conn, SYSTEM_ID_SETTING, &json!(id.as_str()))?;
    Ok(id)
}

/// The stored system id, if one was generated.
pub fn system_id(conn: &mut DbConn) -> Result<Option<SystemId>> {
    Ok(settings::get(conn, SYSTEM_ID_SETTING)?
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok())))
}

// ---------------------------------------------------------------- host

/// What the host tells about itself, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The first label of the kernel's host name.
    pub hostname: String,
    /// MAAS's `arch/subarch` (`amd64/generic`).
    pub architecture: String,
    /// Logical CPUs.
    pub cpu_count: u64,
    /// Memory in MiB, 0 when unknown.
    pub memory_mib: u64,
    /// `ubuntu`, `debian`, … (os-release `ID`), empty when unknown.
    pub osystem: String,
    /// `noble`, `bookworm`, … (os-release `VERSION_CODENAME`).
    pub distro_series: String,
}

impl Host {
    /// Reads `/proc` and `/etc/os-release`; what cannot be read stays empty.
    pub fn probe() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let (osystem, distro_series) = os_release(&read("/etc/os-release"));
        Host {
            hostname: short_hostname(&read("/proc/sys/kernel/hostname")),
            architecture: format!("{}/generic", debian_arch(std::env::consts::ARCH)),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            memory_mib: mem_total_mib(&read("/proc/meminfo")).unwrap_or(0),
            osystem,
            distro_series,
        }
    }
}

/// A host name as MAAS keeps it: its first label, `maas` when empty.
fn short_hostname(raw: &str) -> String {
    let h = raw.trim().split('.').next().unwrap_or_default();
    if h.is_empty() {
        "maas".into()
    } else {
        h.to_owned()
    }
}

/// Debian's name of a Rust target architecture (MAAS names arches so).
fn debian_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `MemTotal` of `/proc/meminfo` in MiB.
fn mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// `ID` and `VERSION_CODENAME` of an os-release file.
fn os_release(text: &str) -> (String, String) {
    let mut id = String::new();
    let mut codename = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim() {
            "ID" => id = v,
            "VERSION_CODENAME" => codename = v,
            _ => {}
        }
    }
    (id, codename)
}

// ---------------------------------------------------------------- services

/// MAAS's `SERVICE_STATUS` values we report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Running and serving.
    Running,
    /// Turned off by configuration.
    Off,
    /// Should run but stopped (its loop ended on an error).
    Dead,
}

impl ServiceStatus {
    /// The API's string.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Running => "running",
            ServiceStatus::Off => "off",
            ServiceStatus::Dead => "dead",
        }
    }
}

/// The rack services by MAAS's names, in the order they are listed.
pub const RACK_SERVICES: [&str; 4] = ["rackd", "tftp", "http", "dhcpd"];

/// Why a rack service is off when no `[rack]` is configured.
const NO_RACK: &str = "the [rack] section is not configured";

/// The state of each service, by MAAS's name.
#[derive(Debug)]
pub struct Services {
    map: Mutex<BTreeMap<&'static str, (ServiceStatus, String)>>,
}

impl Default for Services {
    fn default() -> Self {
        let mut map = BTreeMap::new();
        // The region is this process: it runs while anyone can ask.
        map.insert("regiond", (ServiceStatus::Running, String::new()));
        for s in RACK_SERVICES {
            map.insert(s, (ServiceStatus::Off, NO_RACK.to_owned()));
        }
        Services {
            map: Mutex::new(map),
        }
    }
}

impl Services {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, (ServiceStatus, String)>> {
        // Plain values: a panic mid-update leaves a consistent map.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `name`'s state.
    pub fn set(&self, name: &'static str, status: ServiceStatus, info: impl Into<String>) {
        self.lock().insert(name, (status, info.into()));
    }

    /// `name`'s state.
    pub fn get(&self, name: &str) -> Option<(ServiceStatus, String)> {
        self.lock().get(name).cloned()
    }

    /// MAAS's `service_set`: `{name, status, status_info}` per service.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.lock()
                .iter()
                .map(|(name, (st, info))| {
                    json!({"name": name, "status": st.as_str(), "status_info": info})
                })
                .collect(),
        )
    }
}

/// Runs `fut` as service `name`: `dead` with the error when it fails,
/// `off` when it ends because the process is stopping.
pub async fn watch<T, E: std::fmt::Display>(
    services: &Services,
    name: &'static str,
    fut: impl std::future::Future<Output = std::result::Result<T, E>>,
) {
    match fut.await {
        Ok(_) => services.set(name, ServiceStatus::Off, "stopped"),
        Err(e) => {
            tracing::error!(error = %e, service = name, "rack service stopped");
            services.set(name, ServiceStatus::Dead, e.to_string());
        }
    }
}

// ---------------------------------------------------------------- controller

/// Where the controller serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// The rack's boot address and the interface DHCP binds to.
    pub rack: Option<(Ipv4Addr, Option<String>)>,
    /// The API's listen address.
    pub listen: Option<SocketAddr>,
}

/// This process as a controller node.
#[derive(Debug)]
pub struct Controller {
    /// Host facts.
    pub host: Host,
    /// Service states.
    pub services: Services,
    network: Mutex<Network>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller::new(Host::probe())
    }
}

impl Controller {
    /// A controller on `host` with no services started yet.
    pub fn new(host: Host) -> Controller {
        Controller {
            host,
            services: Services::default(),
            network: Mutex::new(Network::default()),
        }
    }

    fn net(&self) -> std::sync::MutexGuard<'_, Network> {
        self.network
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the rack's boot address and interface.
    pub fn set_rack(&self, address: Ipv4Addr, interface: Option<String>) {
        self.net().rack = Some((address, interface));
    }

    /// Records the API's listen address.
    pub fn set_listen(&self, addr: SocketAddr) {
        self.net().listen = Some(addr);
    }

    /// Where it serves now.
    pub fn network(&self) -> Network {
        self.net().clone()
    }
}

impl Network {
    /// The addresses machines and clients reach this controller at: the
    /// rack's, then the API's (loopback and unspecified ones left out, as
    /// MAAS lists no loopback addresses).
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        let candidates = self
            .rack
            .iter()
            .map(|(a, _)| IpAddr::V4(*a))
            .chain(self.listen.map(|l| l.ip()));
        for ip in candidates {
            if !ip.is_loopback() && !ip.is_unspecified() && !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }
}

// ---------------------------------------------------------------- images

/// MAAS's image sync states of a rack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// Every selected image is in the store.
    Synced,
    /// An import is running into the store.
    Syncing,
    /// Some selected image is missing and no import is running.
    OutOfSync,
}

impl SyncStatus {
    /// The API's string.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "synced",
            SyncStatus::Syncing => "syncing",
            SyncStatus::OutOfSync => "out-of-sync",
        }
    }
}

/// Whether the store holding `stored` has every image `selections` ask
/// for: per selection and per named architecture (any one when it names
/// `*` or none), a boot image it matches.
pub fn sync_status(
    importing: bool,
    selections: &[Selection],
    stored: &[StoredResource],
) -> SyncStatus {
    if importing {
        return SyncStatus::Syncing;
    }
    let boots: Vec<_> = stored
        .iter()
        .filter_map(|s| match &s.kind {
            ResourceKind::Boot(b) => Some(b),
            _ => None,
        })
        .collect();
    let present = |sel: &Selection| boots.iter().any(|b| sel.matches(b));
    let all = selections.iter().all(|sel| {
        if sel.arches.is_empty() || sel.arches.iter().any(|a| a == "*") {
            return present(sel);
        }
        sel.arches.iter().all(|arch| {
            let one = Selection {
                arches: vec![arch.clone()],
                ..sel.clone()
            };
            present(&one)
        })
    });
    if all {
        SyncStatus::Synced
    } else {
        SyncStatus::OutOfSync
    }
}

/// The images the store holds as MAAS's rack lists them: one entry per
/// name (`os/release`, an upload's own name) and architecture, with the
/// subarchitectures present. Bootloaders are not listed.
pub fn image_list(stored: &[StoredResource]) -> Vec<Value> {
    let mut by: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for s in stored {
        let (name, arch, subarch) = match &s.kind {
            ResourceKind::Boot(b) => (
                format!("{}/{}", b.os, b.release),
                b.arch.clone(),
                b.subarch.clone(),
            ),
            ResourceKind::Custom(c) => {
                let (arch, sub) = c
                    .architecture
                    .split_once('/')
                    .unwrap_or((c.architecture.as_str(), "generic"));
                (c.name.clone(), arch.to_owned(), sub.to_owned())
            }
            ResourceKind::Bootloader(_) => continue,
        };
        by.entry((name, arch)).or_default().insert(subarch);
    }
    by.into_iter()
        .map(|((name, architecture), subarches)| {
            json!({"name": name, "architecture": architecture, "subarches": subarches})
        })
        .collect()
}

/// MAAS's `list_boot_images` answer for this rack: `connected` (the rack is
/// this process), `status` and `images`.
pub fn boot_images(conn: &mut DbConn, images: &crate::images::Images) -> Result<Value> {
    let enabled: BTreeSet<i64> = boot::sources(conn)?
        .into_iter()
        .filter(|s| s.enabled)
        .map(|s| s.id)
        .collect();
    let selections: Vec<Selection> = boot::selections(conn, None)?
        .into_iter()
        .filter(|s| enabled.contains(&s.boot_source_id))
        .map(|s| Selection {
            os: s.os,
            release: s.release,
            arches: s.arches,
            subarches: s.subarches,
            labels: s.labels,
        })
        .collect();
    // Read the import flag first: an import that ends between the two
    // reads shows as syncing once more, never as out-of-sync too early.
    let importing = images.is_importing();
    let stored = images.store().map(|s| s.resources()).unwrap_or_default();
    Ok(json!({
        "connected": true,
        "status": sync_status(importing, &selections, &stored).as_str(),
        "images": image_list(&stored),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_parse() {
        assert_eq!(short_hostname("rack1.example.com\n"), "rack1");
        assert_eq!(short_hostname("\n"), "maas");
        assert_eq!(debian_arch("x86_64"), "amd64");
        assert_eq!(debian_arch("aarch64"), "arm64");
        assert_eq!(
            mem_total_mib("MemFree: 10 kB\nMemTotal:       16384000 kB\n"),
            Some(16000)
        );
        assert_eq!(mem_total_mib("nothing"), None);
        assert_eq!(
            os_release("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_CODENAME=noble\n"),
            ("ubuntu".into(), "noble".into())
        );
    }

    #[test]
    fn services_start_off_and_record_changes() {
        let s = Services::default();
        assert_eq!(s.get("regiond").unwrap().0, ServiceStatus::Running);
        assert_eq!(s.get("tftp").unwrap().0, ServiceStatus::Off);
        s.set("tftp", ServiceStatus::Dead, "socket closed");
        let v = s.to_json();
        let tftp = v
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "tftp")
            .unwrap();
        assert_eq!(tftp["status"], "dead");
        assert_eq!(tftp["status_info"], "socket closed");
        assert_eq!(v.as_array().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn watch_marks_a_failed_service_dead() {
        let s = Services::default();
        s.set("http", ServiceStatus::Running, "");
        watch(&s, "http", async { Err::<(), _>("bind lost") }).await;
        assert_eq!(
            s.get("http").unwrap(),
            (ServiceStatus::Dead, "bind lost".into())
        );
        watch(&s, "http", async { Ok::<(), String>(()) }).await;
        assert_eq!(s.get("http").unwrap().0, ServiceStatus::Off);
    }

    #[test]
    fn ip_addresses_skip_loopback_and_duplicates() {
        let n = Network {
            rack: Some((Ipv4Addr::new(10, 0, 0, 2), Some("eth1".into()))),
            listen: Some("10.0.0.2:5240".parse().unwrap()),
        };
        assert_eq!(
            n.ip_addresses(),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))]
        );
        let n = Network {
            rack: None,
            listen: Some("127.0.0.1:5240".parse().unwrap()),
        };
        assert!(n.ip_addresses().is_empty());
    }

    fn boot(release: &str, arch: &str, subarch: &str) -> StoredResource {
        let kind = ResourceKind::Boot(maas_images::simplestreams::BootProduct {
            os: "ubuntu".into(),
            release: release.into(),
            arch: arch.into(),
            subarch: subarch.into(),
            subarches: vec![subarch.into()],
            label: "stable".into(),
            kflavor: Some("generic".into()),
            version: None,
        });
        StoredResource {
            product: format!("{release}:{arch}:{subarch}"),
            version: "20250101".into(),
            kind,
            files: Vec::new(),
        }
    }

    #[test]
    fn sync_status_follows_the_selections() {
        let sel = Selection::new("ubuntu", "noble", &["amd64", "arm64"]);
        let amd = boot("noble", "amd64", "ga-24.04");
        let arm = boot("noble", "arm64", "ga-24.04");
        assert_eq!(sync_status(false, &[], &[]), SyncStatus::Synced);
        assert_eq!(
            sync_status(
                false,
                std::slice::from_ref(&sel),
                std::slice::from_ref(&amd)
            ),
            SyncStatus::OutOfSync,
            "arm64 is missing"
        );
        assert_eq!(
            sync_status(false, std::slice::from_ref(&sel), &[amd.clone(), arm]),
            SyncStatus::Synced
        );
        assert_eq!(
            sync_status(true, std::slice::from_ref(&sel), &[]),
            SyncStatus::Syncing
        );
        let any = Selection::new("ubuntu", "jammy", &["*"]);
        assert_eq!(sync_status(false, &[any], &[amd]), SyncStatus::OutOfSync);
    }

    #[test]
    fn image_list_groups_subarches_per_name_and_arch() {
        let l = image_list(&[
            boot("noble", "amd64", "hwe-24.04"),
            boot("noble", "amd64", "ga-24.04"),
            boot("jammy", "arm64", "ga-22.04"),
        ]);
        assert_eq!(
            l,
            vec![
                json!({"name": "ubuntu/jammy", "architecture": "arm64", "subarches": ["ga-22.04"]}),
                json!({"name": "ubuntu/noble", "architecture": "amd64", "subarches": ["ga-24.04", "hwe-24.04"]}),
            ]
        );
    }
}
