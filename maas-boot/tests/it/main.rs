//! Integration tests of maas-boot's public API, one module per area.

mod bootconfig;
mod common;
mod dhcp;
mod http;
mod netboot;
mod tftp;
