//! # maas-boot: the rack's network-boot services
//!
//! DHCPv4 (on `dhcproto`), TFTP, boot-config rendering for pxelinux, GRUB and iPXE, and HTTP boot. Filled in by the DHCP and TFTP/HTTP issues.
#![warn(missing_docs)]

mod error;

pub use error::{Error, Result};
