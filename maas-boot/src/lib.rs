//! # maas-boot: the rack's network-boot services
//!
//! DHCPv4 (on `dhcproto`), TFTP, boot-config rendering for pxelinux, GRUB and iPXE, and HTTP boot. Filled in by the DHCP and TFTP/HTTP issues.
//!
//! After DHCP, a firmware fetches a loader over [`tftp`] (or [`http`]), the
//! loader fetches its per-machine config, rendered by [`bootconfig`] from what
//! the region's [`bootconfig::BootConfigSource`] says the machine boots, then
//! the kernel and initrd from the image store over [`http`]. TFTP and HTTP
//! both serve a [`tree::BootTree`]: generated configs over loader files and
//! the store, reached only through validated [`tree::BootPath`]s.
//!
//! ```
//! use maas_boot::bootconfig::{render, BootParams, Loader, Purpose, RootFs};
//!
//! let params = BootParams {
//!     purpose: Purpose::Commissioning,
//!     hostname: "node-1".into(),
//!     kernel: "ubuntu/amd64/ga-24.04/noble/stable/boot-kernel".into(),
//!     initrd: "ubuntu/amd64/ga-24.04/noble/stable/boot-initrd".into(),
//!     rootfs: Some(RootFs::Squashfs("ubuntu/amd64/ga-24.04/noble/stable/squashfs".into())),
//!     preseed_url: "http://192.0.2.1:5248/MAAS/metadata/latest/by-id/abc123/?op=get_preseed".into(),
//!     apparmor_off: false,
//!     arch_opts: vec![],
//!     ephemeral_opts: vec![],
//!     extra_opts: vec![],
//! };
//! let cfg = render(Loader::Pxelinux, &params, "192.0.2.1".parse().unwrap());
//! assert!(cfg.contains("KERNEL http://192.0.2.1:5248/images/ubuntu/amd64/"));
//! assert!(cfg.contains("ip=::::node-1:BOOTIF:dhcp"));
//!
//! let path = maas_boot::tree::BootPath::parse(b"../etc/passwd");
//! assert!(path.is_err());
//! ```
#![warn(missing_docs)]

pub mod bootconfig;
mod error;
pub mod http;
pub mod tftp;
pub mod tree;

pub use error::{Error, Result};
