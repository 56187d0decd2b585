//! Boot-config rendering: what pxelinux, GRUB and iPXE read after the loader,
//! for each boot purpose, with MAAS's kernel command line (maas.md §4.4–4.6).
//!
//! Rendering is pure ([`render`], [`cmdline::kernel_command_line`]). What to
//! render for a machine comes from a [`BootConfigSource`], the trait the region
//! implements ("the machine with this MAC boots this kernel for this purpose");
//! [`ConfigTree`] turns config-file requests (`pxelinux.cfg/01-<mac>`,
//! `grub/grub.cfg-<mac>`, `ipxe.cfg-<mac>`, …) into calls of that trait and
//! serves every other path from a fallback tree (the bootloaders).

use std::net::IpAddr;

use async_trait::async_trait;
use maas_core::{BootPurpose, MacAddress};

use crate::Result;

pub mod cmdline;
mod templates;
mod tree;

pub use templates::{
    grub_bootstrap, ipxe_bootstrap, ipxe_bootstrap_for, render, render_for, template_candidates,
    template_for,
};
pub use tree::{ConfigTree, parse_config_path};

/// The rack's HTTP port (nginx in MAAS, our router in maasd).
pub const HTTP_PORT: u16 = 5248;
/// The rack's syslog port for `log_port=`.
pub const SYSLOG_PORT: u16 = 5247;

/// What a config makes the machine do. MAAS's template names; rescue renders
/// like commissioning (MAAS boots the commissioning environment for it) and
/// ephemeral like xinstall without the installer's preseed semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Unknown machine: boot the ephemeral environment to enlist.
    Enlist,
    /// Ephemeral environment for commissioning, testing, erasing, releasing.
    Commissioning,
    /// Ephemeral environment that installs the OS (curtin).
    Xinstall,
    /// An ephemeral (in-memory) deployment.
    Ephemeral,
    /// Boot the local disk.
    Local,
    /// Power off.
    Poweroff,
    /// Rescue mode (ephemeral environment, rendered like commissioning).
    Rescue,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 7] = [
        Purpose::Enlist,
        Purpose::Commissioning,
        Purpose::Xinstall,
        Purpose::Ephemeral,
        Purpose::Local,
        Purpose::Poweroff,
        Purpose::Rescue,
    ];

    /// The MAAS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Enlist => "enlist",
            Purpose::Commissioning => "commissioning",
            Purpose::Xinstall => "xinstall",
            Purpose::Ephemeral => "ephemeral",
            Purpose::Local => "local",
            Purpose::Poweroff => "poweroff",
            Purpose::Rescue => "rescue",
        }
    }

    /// Whether the machine boots a kernel from the rack (everything but local and poweroff).
    pub fn boots_kernel(self) -> bool {
        !matches!(self, Purpose::Local | Purpose::Poweroff)
    }
}

impl From<BootPurpose> for Purpose {
    fn from(p: BootPurpose) -> Self {
        match p {
            BootPurpose::Enlist => Purpose::Enlist,
            BootPurpose::Commissioning => Purpose::Commissioning,
            BootPurpose::Xinstall => Purpose::Xinstall,
            BootPurpose::Local => Purpose::Local,
            BootPurpose::Poweroff => Purpose::Poweroff,
        }
    }
}

/// Which loader asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loader {
    /// pxelinux / lpxelinux (BIOS).
    Pxelinux,
    /// GRUB (UEFI, OpenFirmware).
    Grub,
    /// iPXE.
    Ipxe,
}

/// The root filesystem the ephemeral environment mounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootFs {
    /// A squashfs image: `root=squash:` plus overlayroot options.
    Squashfs(String),
    /// A tarball image (`.tgz`, `.txz`): `root=tar:`.
    Tarball(String),
}

/// A config-file request, as the region sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootRequest {
    /// The loader asking.
    pub loader: Loader,
    /// The MAC from a per-machine config name; `None` for the arch defaults.
    pub mac: Option<MacAddress>,
    /// The architecture from a default config name (`amd64`, `x86_64`, `arm64`…).
    pub arch: Option<String>,
    /// The machine's IP address.
    pub remote: IpAddr,
    /// The rack address the request arrived on.
    pub rack: IpAddr,
}

/// What the region says the machine boots (MAAS `GetBootConfig`'s answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootParams {
    /// What the boot does.
    pub purpose: Purpose,
    /// The machine's hostname (`maas-enlist` for enlistment).
    pub hostname: String,
    /// Kernel path under the rack's `/images/`.
    pub kernel: String,
    /// Initrd path under `/images/`.
    pub initrd: String,
    /// Root filesystem under `/images/`, if the environment mounts one.
    pub rootfs: Option<RootFs>,
    /// The cloud-config URL (`…/MAAS/metadata/latest/by-id/<id>/?op=get_preseed`).
    pub preseed_url: String,
    /// Boots Ubuntu older than jammy: add `apparmor=0`.
    pub apparmor_off: bool,
    /// Per-architecture options (console and the like).
    pub arch_opts: Vec<String>,
    /// Tag / quirk options for the ephemeral environment only.
    pub ephemeral_opts: Vec<String>,
    /// The user's kernel options, placed after curtin's `---` separator.
    pub extra_opts: Vec<String>,
}

/// The region side of the rack: answers "what does this machine boot now?".
#[async_trait]
pub trait BootConfigSource: Send + Sync + 'static {
    /// Boot parameters for a request; [`crate::Error::NotFound`] makes the loader
    /// fall back to its next config name.
    async fn boot_params(&self, request: &BootRequest) -> Result<BootParams>;
}
