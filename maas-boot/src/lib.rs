//! # maas-boot: the rack's network-boot services
//!
//! DHCPv4 (on `dhcproto`), TFTP, boot-config rendering for pxelinux, GRUB and iPXE, and HTTP boot. Filled in by the DHCP and TFTP/HTTP issues.
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

pub mod dhcp;
mod error;

pub use error::{Error, Result};
