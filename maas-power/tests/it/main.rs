//! Integration tests of maas-power's public API, each driver against its
//! real peer: a local HTTP server (webhook), libvirt's test driver through
//! `virsh`, sushy-tools' Redfish emulator, and IPMI simulators (OpenIPMI's
//! `ipmi_sim`, pyghmi's fake BMC) read back with `ipmitool`.

mod common;
mod ipmi;
mod manual;
mod redfish;
mod secrets;
mod virsh;
mod webhook;
