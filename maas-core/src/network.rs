//! A machine's network configuration as the renderers need it: bond and
//! bridge parameters, and [`NetworkPlan`], the checked, ordered view of the
//! interfaces (physical, bond, bridge, VLAN, alias), their links on subnets
//! (auto/dhcp/static/link_up) and the chosen default gateways.
//!
//! The interfaces themselves, their VLANs (and so fabrics) and subnets are in
//! [`crate::hardware`]; this module checks that they make sense together.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hardware::{Interface, InterfaceKind, Link, LinkMode};
use crate::machine::Machine;

/// Linux bonding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum BondMode {
    /// Round robin (MAAS's default).
    #[default]
    #[serde(rename = "balance-rr")]
    BalanceRr,
    /// One active member.
    #[serde(rename = "active-backup")]
    ActiveBackup,
    /// XOR hash.
    #[serde(rename = "balance-xor")]
    BalanceXor,
    /// Transmit on all members.
    #[serde(rename = "broadcast")]
    Broadcast,
    /// LACP.
    #[serde(rename = "802.3ad")]
    Lacp,
    /// Adaptive transmit load balancing.
    #[serde(rename = "balance-tlb")]
    BalanceTlb,
    /// Adaptive load balancing.
    #[serde(rename = "balance-alb")]
    BalanceAlb,
}

impl BondMode {
    /// All modes.
    pub const ALL: [BondMode; 7] = [
        BondMode::BalanceRr,
        BondMode::ActiveBackup,
        BondMode::BalanceXor,
        BondMode::Broadcast,
        BondMode::Lacp,
        BondMode::BalanceTlb,
        BondMode::BalanceAlb,
    ];

    /// The kernel / MAAS name.
    pub fn as_str(self) -> &'static str {
        match self {
            BondMode::BalanceRr => "balance-rr",
            BondMode::ActiveBackup => "active-backup",
            BondMode::BalanceXor => "balance-xor",
            BondMode::Broadcast => "broadcast",
            BondMode::Lacp => "802.3ad",
            BondMode::BalanceTlb => "balance-tlb",
            BondMode::BalanceAlb => "balance-alb",
        }
    }

    /// The ESXi NIC-teaming policy this mode maps to; ESXi knows only three.
    pub fn esxi_teaming_policy(self) -> Option<&'static str> {
        match self {
            BondMode::BalanceRr => Some("portid"),
            BondMode::ActiveBackup => Some("explicit"),
            BondMode::Lacp => Some("iphash"),
            _ => None,
        }
    }
}

impl fmt::Display for BondMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BondMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BondMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::Network {
                interface: String::new(),
                reason: format!("unknown bond mode {s:?}"),
            })
    }
}

/// LACP rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LacpRate {
    /// Every second (MAAS's default).
    #[default]
    Fast,
    /// Every 30 seconds.
    Slow,
}

impl LacpRate {
    /// The kernel name.
    pub fn as_str(self) -> &'static str {
        match self {
            LacpRate::Fast => "fast",
            LacpRate::Slow => "slow",
        }
    }
}

/// Bond parameters (MAAS's `bond_*` fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondParams {
    /// Mode.
    pub mode: BondMode,
    /// Link monitoring interval in ms.
    pub miimon: u32,
    /// Delay before disabling a failed member, ms.
    pub downdelay: u32,
    /// Delay before enabling a recovered member, ms.
    pub updelay: u32,
    /// LACP rate (802.3ad only).
    pub lacp_rate: LacpRate,
    /// Transmit hash policy (`layer2`, `layer2+3`, `layer3+4`, `encap2+3`,
    /// `encap3+4`).
    pub xmit_hash_policy: String,
    /// Gratuitous ARPs after failover (1–255).
    pub num_grat_arp: u8,
}

impl Default for BondParams {
    fn default() -> Self {
        Self {
            mode: BondMode::BalanceRr,
            miimon: 100,
            downdelay: 0,
            updelay: 0,
            lacp_rate: LacpRate::Fast,
            xmit_hash_policy: "layer2".into(),
            num_grat_arp: 1,
        }
    }
}

/// Bridge flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeKind {
    /// A Linux bridge.
    #[default]
    Standard,
    /// An Open vSwitch bridge.
    Ovs,
}

/// Bridge parameters (MAAS's `bridge_*` fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeParams {
    /// Linux bridge or OVS.
    pub kind: BridgeKind,
    /// Spanning tree.
    pub stp: bool,
    /// Forward delay in seconds.
    pub fd: u32,
}

impl Default for BridgeParams {
    fn default() -> Self {
        Self {
            kind: BridgeKind::Standard,
            stp: false,
            fd: 15,
        }
    }
}

/// How one address is configured on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// DHCP for the family of the subnet (IPv4 when there is none).
    Dhcp {
        /// Whether the subnet is IPv6.
        v6: bool,
    },
    /// A fixed address (static or auto-assigned) with its prefix.
    Static {
        /// Address and prefix length.
        ip: IpNet,
        /// Database id of the subnet (the source of its static routes).
        subnet: u64,
        /// The subnet's gateway.
        gateway: Option<IpAddr>,
        /// The subnet's DNS servers.
        dns: Vec<IpAddr>,
    },
}

/// One interface, checked, with what the renderers need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedInterface<'a> {
    /// The interface.
    pub iface: &'a Interface,
    /// Its kind (aliases are folded into their parent and never appear).
    pub kind: InterfaceKind,
    /// Parent names (bond members, bridge ports, VLAN parent).
    pub parents: Vec<&'a str>,
    /// Addresses, including those of its aliases.
    pub addresses: Vec<Address>,
    /// Bond parameters (bonds).
    pub bond: BondParams,
    /// Bridge parameters (bridges).
    pub bridge: BridgeParams,
    /// VLAN id (VLAN interfaces).
    pub vid: u16,
}

impl PlannedInterface<'_> {
    /// The interface name.
    pub fn name(&self) -> &str {
        &self.iface.name
    }
}

/// The checked network configuration of a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPlan<'a> {
    /// Interfaces: physical, then bonds, VLANs, bridges; each by name.
    pub interfaces: Vec<PlannedInterface<'a>>,
    /// IPv4 default gateway and the interface that reaches it.
    pub gateway_v4: Option<(String, IpAddr)>,
    /// IPv6 default gateway and the interface that reaches it.
    pub gateway_v6: Option<(String, IpAddr)>,
    /// DNS servers of all static subnets, in order, without duplicates.
    pub dns_servers: Vec<IpAddr>,
}

fn net_err(iface: &str, reason: impl Into<String>) -> Error {
    Error::Network {
        interface: iface.to_owned(),
        reason: reason.into(),
    }
}

fn kind_rank(k: InterfaceKind) -> u8 {
    match k {
        InterfaceKind::Physical | InterfaceKind::Unknown => 0,
        InterfaceKind::Bond => 1,
        InterfaceKind::Vlan => 2,
        InterfaceKind::Bridge => 3,
        InterfaceKind::Alias => 4,
    }
}

fn link_address(iface: &Interface, link: &Link) -> Result<Option<Address>> {
    match link.mode {
        LinkMode::LinkUp => Ok(None),
        LinkMode::Dhcp => {
            let v6 = match &link.subnet {
                Some(s) => s
                    .cidr
                    .parse::<IpNet>()
                    .map_err(|_| {
                        net_err(&iface.name, format!("subnet CIDR {:?} is invalid", s.cidr))
                    })?
                    .addr()
                    .is_ipv6(),
                None => false,
            };
            Ok(Some(Address::Dhcp { v6 }))
        }
        LinkMode::Static | LinkMode::Auto => {
            let Some(subnet) = &link.subnet else {
                return Err(net_err(
                    &iface.name,
                    format!("link {} ({:?}) has no subnet", link.id, link.mode),
                ));
            };
            let cidr: IpNet = subnet.cidr.parse().map_err(|_| {
                net_err(
                    &iface.name,
                    format!("subnet CIDR {:?} is invalid", subnet.cidr),
                )
            })?;
            let Some(ip) = link.ip else {
                // An auto link gets its address when the deployment starts;
                // rendering without one would configure nothing.
                return Err(net_err(
                    &iface.name,
                    format!(
                        "link {} on {} has no address assigned yet",
                        link.id, subnet.cidr
                    ),
                ));
            };
            if !cidr.contains(&ip) {
                return Err(net_err(
                    &iface.name,
                    format!("address {ip} is outside subnet {}", subnet.cidr),
                ));
            }
            if let Some(gw) = subnet.gateway_ip
                && !cidr.contains(&gw)
            {
                return Err(net_err(
                    &iface.name,
                    format!("gateway {gw} is outside subnet {}", subnet.cidr),
                ));
            }
            let ipnet = IpNet::new(ip, cidr.prefix_len())
                .map_err(|_| net_err(&iface.name, "bad prefix length"))?;
            Ok(Some(Address::Static {
                ip: ipnet,
                subnet: subnet.id,
                gateway: subnet.gateway_ip,
                dns: subnet.dns_servers.clone(),
            }))
        }
    }
}

/// Checks the machine's enabled interfaces and builds the plan.
pub fn plan(machine: &Machine) -> Result<NetworkPlan<'_>> {
    let enabled: Vec<&Interface> = machine.interfaces.iter().filter(|i| i.enabled).collect();
    let by_name: HashMap<&str, &Interface> =
        enabled.iter().map(|i| (i.name.as_str(), *i)).collect();
    if by_name.len() != enabled.len() {
        let mut seen = HashSet::new();
        for i in &enabled {
            if !seen.insert(i.name.as_str()) {
                return Err(net_err(&i.name, "two enabled interfaces have this name"));
            }
        }
    }
    let mut planned: BTreeMap<(u8, &str), PlannedInterface<'_>> = BTreeMap::new();
    let mut alias_addrs: HashMap<&str, Vec<Address>> = HashMap::new();
    for iface in &enabled {
        if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains(['/', ' ', ':']) {
            // 15 = IFNAMSIZ - 1; ':' is reserved for legacy alias names.
            if iface.kind != InterfaceKind::Alias {
                return Err(net_err(&iface.name, "not a valid Linux interface name"));
            }
        }
        let parents: Vec<&str> = iface.parents.iter().map(String::as_str).collect();
        for p in &parents {
            if !by_name.contains_key(p) {
                return Err(net_err(
                    &iface.name,
                    format!("parent {p:?} is not an enabled interface"),
                ));
            }
        }
        let need = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(net_err(&iface.name, what.to_owned()))
            }
        };
        let mut vid = 0;
        match iface.kind {
            InterfaceKind::Physical | InterfaceKind::Unknown => {
                need(parents.is_empty(), "a physical interface has no parents")?;
                need(
                    iface.mac.0 != [0; 6],
                    "a physical interface needs its MAC address",
                )?;
            }
            InterfaceKind::Bond => {
                need(!parents.is_empty(), "a bond needs at least one member")?;
                for p in &parents {
                    let k = by_name[p].kind;
                    need(
                        matches!(k, InterfaceKind::Physical | InterfaceKind::Unknown),
                        "bond members must be physical interfaces",
                    )?;
                }
            }
            InterfaceKind::Bridge => {
                need(!parents.is_empty(), "a bridge needs at least one port")?;
            }
            InterfaceKind::Vlan => {
                need(
                    parents.len() == 1,
                    "a VLAN interface has exactly one parent",
                )?;
                vid = iface.vlan.as_ref().map_or(0, |v| v.vid);
                need(
                    (1..=4094).contains(&vid),
                    "a VLAN interface needs a VLAN id between 1 and 4094",
                )?;
            }
            InterfaceKind::Alias => {
                need(parents.len() == 1, "an alias has exactly one parent")?;
            }
        }
        let mut addresses = Vec::new();
        for link in &iface.links {
            if let Some(a) = link_address(iface, link)? {
                addresses.push(a);
            }
        }
        if iface.kind == InterfaceKind::Alias {
            alias_addrs.entry(parents[0]).or_default().extend(addresses);
            continue;
        }
        planned.insert(
            (kind_rank(iface.kind), iface.name.as_str()),
            PlannedInterface {
                iface,
                kind: iface.kind,
                parents,
                addresses,
                bond: iface.bond.clone().unwrap_or_default(),
                bridge: iface.bridge.clone().unwrap_or_default(),
                vid,
            },
        );
    }
    let mut interfaces: Vec<PlannedInterface<'_>> = planned.into_values().collect();
    for pi in &mut interfaces {
        if let Some(extra) = alias_addrs.remove(pi.iface.name.as_str()) {
            pi.addresses.extend(extra);
        }
    }
    if let Some((name, _)) = alias_addrs.into_iter().next() {
        return Err(net_err(name, "an alias cannot sit on another alias"));
    }
    // A member of a bond or bridge carries no address of its own.
    let members: HashSet<&str> = interfaces
        .iter()
        .filter(|p| matches!(p.kind, InterfaceKind::Bond | InterfaceKind::Bridge))
        .flat_map(|p| p.parents.iter().copied())
        .collect();
    for pi in &interfaces {
        if members.contains(pi.name()) && !pi.addresses.is_empty() {
            return Err(net_err(
                pi.name(),
                "a bond member or bridge port cannot have addresses",
            ));
        }
    }
    let gateway_v4 = pick_gateway(machine, &interfaces, machine.gateway_link_ipv4, false)?;
    let gateway_v6 = pick_gateway(machine, &interfaces, machine.gateway_link_ipv6, true)?;
    let mut dns_servers = Vec::new();
    for pi in &interfaces {
        for a in &pi.addresses {
            if let Address::Static { dns, .. } = a {
                for d in dns {
                    if !dns_servers.contains(d) {
                        dns_servers.push(*d);
                    }
                }
            }
        }
    }
    Ok(NetworkPlan {
        interfaces,
        gateway_v4,
        gateway_v6,
        dns_servers,
    })
}

/// The default gateway of one family: the chosen link's, else the first
/// static/auto address with a gateway (interfaces in plan order).
fn pick_gateway(
    machine: &Machine,
    interfaces: &[PlannedInterface<'_>],
    chosen: Option<u64>,
    v6: bool,
) -> Result<Option<(String, IpAddr)>> {
    if let Some(link_id) = chosen {
        for iface in &machine.interfaces {
            if let Some(link) = iface.links.iter().find(|l| l.id == link_id) {
                let gw = link.subnet.as_ref().and_then(|s| s.gateway_ip);
                let Some(gw) = gw.filter(|g| g.is_ipv6() == v6) else {
                    return Err(net_err(
                        &iface.name,
                        format!("default gateway link {link_id} has no matching gateway"),
                    ));
                };
                // Aliases render on their parent.
                let owner = if iface.kind == InterfaceKind::Alias {
                    iface.parents.first().cloned().unwrap_or_default()
                } else {
                    iface.name.clone()
                };
                return Ok(Some((owner, gw)));
            }
        }
        return Err(net_err(
            "",
            format!("default gateway link {link_id} does not exist"),
        ));
    }
    for pi in interfaces {
        for a in &pi.addresses {
            if let Address::Static {
                gateway: Some(gw), ..
            } = a
                && gw.is_ipv6() == v6
            {
                return Ok(Some((pi.name().to_owned(), *gw)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MacAddress;
    use crate::hardware::{SubnetRef, VlanRef};
    use proptest::prelude::*;

    fn phys(id: u64, name: &str, last: u8) -> Interface {
        Interface {
            id,
            name: name.into(),
            enabled: true,
            mac: MacAddress([0x52, 0x54, 0, 0, 0, last]),
            ..Default::default()
        }
    }

    fn static_link(id: u64, ip: &str, cidr: &str, gw: Option<&str>) -> Link {
        Link {
            id,
            mode: LinkMode::Static,
            ip: Some(ip.parse().unwrap()),
            subnet: Some(SubnetRef {
                cidr: cidr.into(),
                gateway_ip: gw.map(|g| g.parse().unwrap()),
                dns_servers: vec!["10.0.0.2".parse().unwrap()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn orders_and_picks_gateway() {
        let mut eth0 = phys(1, "eth0", 1);
        eth0.links
            .push(static_link(1, "10.0.0.5", "10.0.0.0/24", Some("10.0.0.1")));
        let mut vlan = Interface {
            id: 3,
            name: "eth0.20".into(),
            kind: InterfaceKind::Vlan,
            enabled: true,
            parents: vec!["eth0".into()],
            vlan: Some(VlanRef {
                vid: 20,
                ..Default::default()
            }),
            ..Default::default()
        };
        vlan.links.push(static_link(
            2,
            "10.0.20.5",
            "10.0.20.0/24",
            Some("10.0.20.1"),
        ));
        let m = Machine {
            interfaces: vec![vlan, eth0],
            gateway_link_ipv4: Some(2),
            ..Default::default()
        };
        let p = plan(&m).unwrap();
        let names: Vec<&str> = p.interfaces.iter().map(|i| i.name()).collect();
        assert_eq!(names, ["eth0", "eth0.20"]);
        assert_eq!(
            p.gateway_v4,
            Some(("eth0.20".into(), "10.0.20.1".parse().unwrap()))
        );
        assert_eq!(p.dns_servers, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn rejects_address_outside_subnet() {
        let mut eth0 = phys(1, "eth0", 1);
        eth0.links
            .push(static_link(1, "10.9.0.5", "10.0.0.0/24", None));
        let m = Machine {
            interfaces: vec![eth0],
            ..Default::default()
        };
        let err = plan(&m).unwrap_err().to_string();
        assert!(err.contains("eth0") && err.contains("outside"), "{err}");
    }

    #[test]
    fn rejects_missing_parent_and_bad_vlan() {
        let bond = Interface {
            id: 2,
            name: "bond0".into(),
            kind: InterfaceKind::Bond,
            enabled: true,
            parents: vec!["eth9".into()],
            ..Default::default()
        };
        let m = Machine {
            interfaces: vec![phys(1, "eth0", 1), bond],
            ..Default::default()
        };
        assert!(plan(&m).unwrap_err().to_string().contains("eth9"));
        let vlan = Interface {
            id: 2,
            name: "eth0.0".into(),
            kind: InterfaceKind::Vlan,
            enabled: true,
            parents: vec!["eth0".into()],
            ..Default::default()
        };
        let m = Machine {
            interfaces: vec![phys(1, "eth0", 1), vlan],
            ..Default::default()
        };
        assert!(plan(&m).unwrap_err().to_string().contains("VLAN id"));
    }

    #[test]
    fn esxi_mapping() {
        assert_eq!(BondMode::BalanceRr.esxi_teaming_policy(), Some("portid"));
        assert_eq!(
            BondMode::ActiveBackup.esxi_teaming_policy(),
            Some("explicit")
        );
        assert_eq!(BondMode::Lacp.esxi_teaming_policy(), Some("iphash"));
        assert_eq!(BondMode::BalanceXor.esxi_teaming_policy(), None);
    }

    proptest! {
        #[test]
        fn bond_mode_parse(s in "[a-z0-9.-]{0,14}") {
            match s.parse::<BondMode>() {
                Ok(m) => prop_assert_eq!(m.as_str(), s.as_str()),
                Err(e) => prop_assert!(e.to_string().contains("unknown bond mode")),
            }
        }
    }

    #[test]
    fn bond_mode_round_trip() {
        for m in BondMode::ALL {
            assert_eq!(m.as_str().parse::<BondMode>().unwrap(), m);
        }
    }
}
