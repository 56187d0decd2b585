//! The netboot lab (`tests/lab/`): real VMs under QEMU/libvirt in a network
//! namespace, behind real BMC emulators (sushy-tools Redfish, virtualbmc
//! IPMI), driven by our own power drivers; the signed Debian mirror the lab
//! builds, read by the reference simplestreams tools and imported by
//! `maas-images`; the lab installer writing a real disk that boots Debian with
//! its real cloud-init.
//!
//! libvirtd runs system-wide (one per machine), so every test that brings a
//! lab up is in the nextest group `lab` (one at a time, .config/nextest.toml).

mod harness;
mod images;
mod installer;
mod power;
mod scenario;
