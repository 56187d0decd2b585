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
//!
//! ## DHCP
//!
//! [`dhcp`] is a DHCPv4 server split into a pure [`dhcp::Handler`] (a decoded
//! request and the time in, a reply or a drop out) and a thin tokio loop,
//! [`dhcp::serve`], that owns nothing but an already-bound socket:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::sync::Arc;
//! use maas_boot::dhcp::{self, Action, DhcpConfig, Handler, MemoryStore, StaticBackend, Subnet};
//! use maas_core::Timestamp;
//!
//! let mut subnet = Subnet::new("192.0.2.0/24".parse().unwrap());
//! subnet.add_range(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 150)).unwrap();
//! let config = DhcpConfig::new(Ipv4Addr::new(192, 0, 2, 1), vec![subnet]);
//! let handler = Handler::new(config, Arc::new(MemoryStore::default()), Arc::new(StaticBackend::default())).unwrap();
//!
//! let discover = dhcp::testing::discover([0x52, 0x54, 0, 0, 0, 1]);
//! match handler.handle(&discover, Timestamp::from_secs(1_700_000_000)) {
//!     Action::Reply(reply) => assert_eq!(reply.message.yiaddr(), Ipv4Addr::new(192, 0, 2, 100)),
//!     other => panic!("no offer: {other:?}"),
//! }
//! ```
#![warn(missing_docs)]

pub mod bootconfig;
pub mod dhcp;
mod error;
pub mod http;
pub mod tftp;
pub mod tree;

pub use error::{Error, Result};
