//! What a netbooting MAC boots, from the database: the machine's boot
//! purpose (maas-core, from its status and netboot flag) and the kernel,
//! initrd and root filesystem of its release from the maas-images store.

use std::sync::Arc;

use maas_boot::bootconfig::{BootConfigSource, BootParams, BootRequest, Purpose, RootFs};
use maas_core::MacAddress;
use maas_core::boot::boot_purpose;

use crate::AppState;
use crate::db::machines::{self, StoredMachine};

/// The region side of the in-process rack.
pub struct DbBootSource {
    state: Arc<AppState>,
    store: Option<Arc<maas_images::Store>>,
    region_url: String,
}

impl std::fmt::Debug for DbBootSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbBootSource")
            .field("region_url", &self.region_url)
            .finish_non_exhaustive()
    }
}

/// The machine that has `mac` on one of its interfaces.
pub fn machine_by_mac(
    conn: &mut crate::db::DbConn,
    mac: MacAddress,
) -> crate::Result<Option<StoredMachine>> {
    machines::by_mac(conn, &mac)
}

/// The Ubuntu version of a release name MAAS deploys (for `ga-<version>`
/// kernels).
fn ubuntu_version(series: &str) -> &'static str {
    match series {
        "focal" => "20.04",
        "jammy" => "22.04",
        "oracular" => "24.10",
        "plucky" => "25.04",
        _ => "24.04",
    }
}

/// The release the ephemeral environment runs: MAAS's
/// `commissioning_osystem` / `commissioning_distro_series` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Operating system (`ubuntu`, `debian`, …).
    pub osystem: String,
    /// Release name (`noble`, `bookworm`, …).
    pub series: String,
}

impl Default for Release {
    fn default() -> Self {
        // MAAS's own defaults when nothing was configured.
        Self {
            osystem: "ubuntu".into(),
            series: "noble".into(),
        }
    }
}

/// The commissioning release from the settings (defaults where unset).
pub fn commissioning_release(conn: &mut crate::db::DbConn) -> crate::Result<Release> {
    let d = Release::default();
    let os = crate::api::resources::config_str(conn, "commissioning_osystem")?;
    let series = crate::api::resources::config_str(conn, "commissioning_distro_series")?;
    Ok(Release {
        osystem: if os.is_empty() { d.osystem } else { os },
        series: if series.is_empty() { d.series } else { series },
    })
}

impl DbBootSource {
    /// Answers from `state`'s database and, when given, the image store.
    pub fn new(
        state: Arc<AppState>,
        store: Option<Arc<maas_images::Store>>,
        region_url: String,
    ) -> Self {
        Self {
            state,
            store,
            region_url,
        }
    }

    /// Kernel, initrd and root filesystem paths under `/images/` for
    /// `os`/`series` on `arch`: from the store when it has them, else MAAS's
    /// conventional names (the loader then reports the missing file).
    fn files(
        &self,
        os: &str,
        arch: &str,
        subarch: &str,
        series: &str,
    ) -> (String, String, Option<RootFs>) {
        // Ubuntu kernels are published per HWE flavour (`ga-24.04`); other
        // systems under `generic` (or the machine's own subarch).
        let kernel_name = if os == "ubuntu" {
            format!("ga-{}", ubuntu_version(series))
        } else {
            "generic".to_owned()
        };
        if let Some(store) = &self.store {
            let images = store.root().join("images");
            let rel = |p: &std::path::Path| {
                p.strip_prefix(&images)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| p.display().to_string())
            };
            let found = store
                .boot_files(os, arch, subarch, series)
                .or_else(|| store.boot_files(os, arch, &kernel_name, series))
                .or_else(|| store.boot_files(os, arch, "generic", series));
            if let Some(b) = found {
                let root = match (&b.squashfs, &b.root_image) {
                    (Some(s), _) => Some(RootFs::Squashfs(rel(s))),
                    (None, Some(t)) => Some(RootFs::Tarball(rel(t))),
                    (None, None) => None,
                };
                return (rel(&b.kernel), rel(&b.initrd), root);
            }
        }
        let base = format!("{os}/{arch}/{kernel_name}/{series}/stable");
        (
            format!("{base}/boot-kernel"),
            format!("{base}/boot-initrd"),
            Some(RootFs::Squashfs(format!("{base}/squashfs"))),
        )
    }

    fn params(
        &self,
        machine: Option<&StoredMachine>,
        arch_hint: Option<&str>,
        commissioning: &Release,
    ) -> BootParams {
        let m = machine.map(|s| &s.record.machine);
        let purpose = boot_purpose(m);
        let (arch, subarch) = m
            .map(|m| m.architecture.as_str())
            .filter(|a| !a.is_empty())
            .and_then(|a| a.split_once('/'))
            .map(|(a, s)| (a.to_owned(), s.to_owned()))
            .unwrap_or_else(|| {
                (
                    arch_hint.map_or("amd64", normalise_arch).to_owned(),
                    "generic".to_owned(),
                )
            });
        let mut purpose: Purpose = purpose.into();
        if purpose == Purpose::Xinstall && m.is_some_and(|m| m.ephemeral_deploy) {
            purpose = Purpose::Ephemeral;
        }
        if matches!(
            m.map(|m| m.status),
            Some(maas_core::NodeStatus::EnteringRescueMode | maas_core::NodeStatus::RescueMode)
        ) {
            purpose = Purpose::Rescue;
        }
        // As MAAS: enlistment, commissioning, testing, rescue and erasing
        // run the commissioning release's ephemeral environment, and so does
        // an installation (the installer runs there and writes the
        // machine's own release to disk, see `metadata::curtin`). Only a
        // deployment to memory boots the deployed release itself.
        let release = match (purpose, m) {
            (Purpose::Ephemeral, Some(m)) if !m.distro_series.is_empty() => Release {
                osystem: if m.osystem.is_empty() {
                    commissioning.osystem.clone()
                } else {
                    m.osystem.clone()
                },
                series: m.distro_series.clone(),
            },
            _ => commissioning.clone(),
        };
        let series = release.series.clone();
        let (kernel, initrd, rootfs) = self.files(&release.osystem, &arch, &subarch, &series);
        let (hostname, preseed_url) = match m {
            Some(m) => (
                m.hostname.clone(),
                format!(
                    "{}metadata/latest/by-id/{}/?op=get_preseed",
                    self.region_url, m.system_id
                ),
            ),
            None => (
                "maas-enlist".to_owned(),
                format!(
                    "{}metadata/latest/enlist-preseed/?op=get_enlist_preseed",
                    self.region_url
                ),
            ),
        };
        BootParams {
            purpose,
            hostname,
            kernel,
            initrd,
            rootfs,
            preseed_url,
            apparmor_off: matches!(series.as_str(), "focal" | "bionic"),
            arch_opts: if arch == "amd64" {
                vec!["console=tty1".into(), "console=ttyS0".into()]
            } else {
                vec![]
            },
            ephemeral_opts: vec![],
            extra_opts: vec![],
        }
    }
}

/// `x86_64` (GRUB's name) → `amd64`; `aarch64` → `arm64`.
fn normalise_arch(a: &str) -> &str {
    match a {
        "x86_64" | "i386" => "amd64",
        "aarch64" | "arm64" => "arm64",
        other => other,
    }
}

#[async_trait::async_trait]
impl BootConfigSource for DbBootSource {
    async fn boot_params(&self, request: &BootRequest) -> maas_boot::Result<BootParams> {
        let mac = request.mac;
        let st = self.state.clone();
        let (machine, release) = st
            .pool
            .run(move |c| {
                let m = match mac {
                    Some(mac) => machine_by_mac(c, mac)?,
                    None => None,
                };
                Ok((m, commissioning_release(c)?))
            })
            .await
            .map_err(|e| maas_boot::Error::NotFound(format!("machine lookup: {e}")))?;
        Ok(self.params(machine.as_ref(), request.arch.as_deref(), &release))
    }
}
