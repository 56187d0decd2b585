//! The hardware a machine was commissioned with: block devices, network
//! interfaces and PCI/USB devices, as allocation, cloning and deployment
//! configuration see them.
//!
//! Every type derives `Default` so callers (and tests) can write
//! `BlockDevice { size: 10 << 30, ..Default::default() }` and keep compiling
//! as the model grows.

pub mod commissioning;
pub mod lshw;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::MacAddress;

/// Physical (a real disk) or virtual (RAID, LVM LV, bcache).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockDeviceKind {
    /// A disk the machine has.
    #[default]
    Physical,
    /// A device MAAS builds on top of others.
    Virtual,
}

/// A block device.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockDevice {
    /// Database id, unique across the machine.
    pub id: u64,
    /// Kernel name, such as `sda` or `nvme0n1`.
    pub name: String,
    /// Physical or virtual.
    pub kind: BlockDeviceKind,
    /// Size in bytes.
    pub size: u64,
    /// Logical block size in bytes.
    pub block_size: u64,
    /// Model string reported by the kernel.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// A stable path, such as `/dev/disk/by-id/…`.
    pub id_path: String,
    /// Tags such as `ssd`, `rotary`, `nvme`.
    pub tags: Vec<String>,
}

/// The kind of a network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    /// A physical NIC.
    #[default]
    Physical,
    /// A bond of other interfaces.
    Bond,
    /// A bridge.
    Bridge,
    /// A VLAN on a parent interface.
    Vlan,
    /// An alias (extra address) on a parent.
    Alias,
    /// Anything else.
    Unknown,
}

impl InterfaceKind {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Physical => "physical",
            InterfaceKind::Bond => "bond",
            InterfaceKind::Bridge => "bridge",
            InterfaceKind::Vlan => "vlan",
            InterfaceKind::Alias => "alias",
            InterfaceKind::Unknown => "unknown",
        }
    }
}

/// How an interface gets its address on a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    /// MAAS picks a static address at deploy time.
    #[default]
    Auto,
    /// DHCP.
    Dhcp,
    /// A fixed address chosen by the user.
    Static,
    /// Up, no address.
    LinkUp,
}

/// The VLAN an interface sits on, with its fabric.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VlanRef {
    /// VLAN database id.
    pub id: u64,
    /// 802.1Q VLAN id (0 = untagged).
    pub vid: u16,
    /// VLAN name.
    pub name: String,
    /// Fabric name.
    pub fabric: String,
    /// Fabric class (e.g. `10g`), empty when unset.
    pub fabric_class: String,
    /// Space name, empty when undefined.
    pub space: String,
}

/// The subnet a link is on.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetRef {
    /// Subnet database id.
    pub id: u64,
    /// Subnet name (often its CIDR).
    pub name: String,
    /// CIDR, such as `10.0.0.0/24`.
    pub cidr: String,
    /// Space name, empty when undefined.
    pub space: String,
    /// The subnet's gateway, when it has one.
    pub gateway_ip: Option<IpAddr>,
    /// DNS servers configured on the subnet.
    pub dns_servers: Vec<IpAddr>,
}

/// An interface's configured link to a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Link {
    /// Link database id.
    pub id: u64,
    /// How the address is obtained.
    pub mode: LinkMode,
    /// The subnet, when linked to one.
    pub subnet: Option<SubnetRef>,
    /// The address, when one is assigned.
    pub ip: Option<IpAddr>,
}

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    /// Database id, unique across the machine.
    pub id: u64,
    /// Name, such as `eth0` or `bond0`.
    pub name: String,
    /// Physical, bond, bridge, VLAN, alias.
    pub kind: InterfaceKind,
    /// MAC address.
    pub mac: MacAddress,
    /// Whether the interface is enabled.
    pub enabled: bool,
    /// Names of parent interfaces (bond members, VLAN parent).
    pub parents: Vec<String>,
    /// The VLAN (and so fabric) it is on.
    pub vlan: Option<VlanRef>,
    /// Links to subnets.
    pub links: Vec<Link>,
    /// Tags.
    pub tags: Vec<String>,
    /// Negotiated link speed in Mbit/s (0 when unknown).
    pub link_speed: u64,
    /// Maximum interface speed in Mbit/s (0 when unknown).
    pub interface_speed: u64,
    /// MTU; 0 means the VLAN's default (1500).
    pub mtu: u32,
    /// Bond parameters (bond interfaces; defaults when unset).
    pub bond: Option<crate::network::BondParams>,
    /// Bridge parameters (bridge interfaces; defaults when unset).
    pub bridge: Option<crate::network::BridgeParams>,
}

/// A PCI or USB device found by commissioning.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    /// Vendor id, four hex digits.
    pub vendor_id: String,
    /// Product id, four hex digits.
    pub product_id: String,
    /// Vendor name.
    pub vendor_name: String,
    /// Product name.
    pub product_name: String,
    /// The kernel driver bound during commissioning.
    pub commissioning_driver: String,
}
