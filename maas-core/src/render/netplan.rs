//! netplan v2 documents, as MAAS writes them for Ubuntu: `ethernets`
//! matched by MAC and renamed, `bonds`, `vlans`, `bridges`, static
//! addresses, DHCP, default routes and nameservers.

use serde_json::{Map, Value, json};

use super::{RenderContext, to_yaml};
use crate::error::Result;
use crate::hardware::InterfaceKind;
use crate::machine::Machine;
use crate::network::{Address, BondMode, BridgeKind, NetworkPlan, PlannedInterface, plan};

/// The DNS servers and search domains every statically configured interface
/// gets: MAAS's own first, then the subnets'.
pub(crate) fn nameservers(machine: &Machine, ctx: &RenderContext, plan: &NetworkPlan<'_>) -> Value {
    let mut addrs: Vec<String> = Vec::new();
    for ip in ctx.dns_servers.iter().chain(&plan.dns_servers) {
        let s = ip.to_string();
        if !addrs.contains(&s) {
            addrs.push(s);
        }
    }
    let search: Vec<&str> = if machine.domain.is_empty() {
        vec![]
    } else {
        vec![machine.domain.as_str()]
    };
    json!({ "addresses": addrs, "search": search })
}

fn common(
    machine: &Machine,
    ctx: &RenderContext,
    plan: &NetworkPlan<'_>,
    pi: &PlannedInterface<'_>,
    out: &mut Map<String, Value>,
) {
    if pi.iface.mtu > 0 {
        out.insert("mtu".into(), json!(pi.iface.mtu));
    }
    let mut addresses = Vec::new();
    for a in &pi.addresses {
        match a {
            Address::Dhcp { v6: false } => {
                out.insert("dhcp4".into(), json!(true));
            }
            Address::Dhcp { v6: true } => {
                out.insert("dhcp6".into(), json!(true));
            }
            Address::Static { ip, .. } => addresses.push(ip.to_string()),
        }
    }
    let mut routes = Vec::new();
    for gw in [&plan.gateway_v4, &plan.gateway_v6].into_iter().flatten() {
        if gw.0 == pi.name() {
            routes.push(json!({ "to": "default", "via": gw.1.to_string() }));
        }
    }
    // MAAS adds the static routes of every subnet the interface has an
    // address on (DHCP links excluded), after the default route.
    let sources: Vec<u64> = pi
        .addresses
        .iter()
        .filter_map(|a| match a {
            Address::Static { subnet, .. } => Some(*subnet),
            Address::Dhcp { .. } => None,
        })
        .collect();
    for r in ctx.routes_from(&sources) {
        routes.push(json!({
            "to": r.destination.to_string(),
            "via": r.gateway.to_string(),
            "metric": r.metric,
        }));
    }
    if !addresses.is_empty() {
        out.insert("addresses".into(), json!(addresses));
        out.insert("nameservers".into(), nameservers(machine, ctx, plan));
    }
    if !routes.is_empty() {
        out.insert("routes".into(), json!(routes));
    }
}

/// The `network:` value (`{version: 2, ethernets: …}`) for the machine.
pub fn netplan_network(machine: &Machine, ctx: &RenderContext) -> Result<Value> {
    let plan = plan(machine)?;
    let mut ethernets = Map::new();
    let mut bonds = Map::new();
    let mut vlans = Map::new();
    let mut bridges = Map::new();
    for pi in &plan.interfaces {
        let mut m = Map::new();
        let mac = pi.iface.mac.colon();
        let has_mac = pi.iface.mac.0 != [0; 6];
        match pi.kind {
            InterfaceKind::Physical | InterfaceKind::Unknown => {
                m.insert("match".into(), json!({ "macaddress": mac }));
                m.insert("set-name".into(), json!(pi.name()));
            }
            InterfaceKind::Bond => {
                m.insert("interfaces".into(), json!(pi.parents));
                if has_mac {
                    m.insert("macaddress".into(), json!(mac));
                }
                let b = &pi.bond;
                let mut p = Map::new();
                p.insert("mode".into(), json!(b.mode.as_str()));
                p.insert("mii-monitor-interval".into(), json!(b.miimon));
                p.insert("up-delay".into(), json!(b.updelay));
                p.insert("down-delay".into(), json!(b.downdelay));
                // netplan only accepts these for the modes that use them.
                if b.mode == BondMode::Lacp {
                    p.insert("lacp-rate".into(), json!(b.lacp_rate.as_str()));
                }
                if matches!(
                    b.mode,
                    BondMode::Lacp | BondMode::BalanceXor | BondMode::BalanceTlb
                ) {
                    p.insert("transmit-hash-policy".into(), json!(b.xmit_hash_policy));
                }
                if b.mode == BondMode::ActiveBackup {
                    p.insert("gratuitous-arp".into(), json!(b.num_grat_arp));
                }
                m.insert("parameters".into(), Value::Object(p));
            }
            InterfaceKind::Vlan => {
                m.insert("id".into(), json!(pi.vid));
                m.insert("link".into(), json!(pi.parents[0]));
            }
            InterfaceKind::Bridge => {
                m.insert("interfaces".into(), json!(pi.parents));
                if has_mac {
                    m.insert("macaddress".into(), json!(mac));
                }
                m.insert(
                    "parameters".into(),
                    json!({ "stp": pi.bridge.stp, "forward-delay": pi.bridge.fd }),
                );
                if pi.bridge.kind == BridgeKind::Ovs {
                    m.insert("openvswitch".into(), json!({}));
                }
            }
            InterfaceKind::Alias => continue,
        }
        common(machine, ctx, &plan, pi, &mut m);
        let section = match pi.kind {
            InterfaceKind::Bond => &mut bonds,
            InterfaceKind::Vlan => &mut vlans,
            InterfaceKind::Bridge => &mut bridges,
            _ => &mut ethernets,
        };
        section.insert(pi.name().to_owned(), Value::Object(m));
    }
    let mut net = Map::new();
    net.insert("version".into(), json!(2));
    for (k, v) in [
        ("ethernets", ethernets),
        ("bonds", bonds),
        ("vlans", vlans),
        ("bridges", bridges),
    ] {
        if !v.is_empty() {
            net.insert(k.into(), Value::Object(v));
        }
    }
    Ok(Value::Object(net))
}

/// A complete netplan file (`network: {version: 2, …}`), as written to
/// `/etc/netplan/50-maas.yaml` for ephemeral deployments.
pub fn netplan_yaml(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    to_yaml(&json!({ "network": netplan_network(machine, ctx)? }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::MacAddress;
    use crate::hardware::{Interface, Link, LinkMode, SubnetRef};
    use crate::render::StaticRoute;

    fn subnet(id: u64, cidr: &str, gw: Option<&str>) -> SubnetRef {
        SubnetRef {
            id,
            name: cidr.into(),
            cidr: cidr.into(),
            gateway_ip: gw.map(|g| g.parse().unwrap()),
            ..Default::default()
        }
    }

    /// eth0 static on subnet 1 (10.0.0.0/24), eth1 DHCP on subnet 2
    /// (10.1.0.0/24), eth2 static on subnet 3 (fd00::/64).
    pub(crate) fn machine() -> Machine {
        let nic = |id: u64, name: &str, link: Link| Interface {
            id,
            name: name.into(),
            mac: MacAddress([0x52, 0x54, 0, 0, 0, id as u8]),
            enabled: true,
            links: vec![link],
            ..Default::default()
        };
        Machine {
            hostname: "n1".into(),
            interfaces: vec![
                nic(
                    1,
                    "eth0",
                    Link {
                        id: 1,
                        mode: LinkMode::Static,
                        subnet: Some(subnet(1, "10.0.0.0/24", Some("10.0.0.1"))),
                        ip: "10.0.0.5".parse().ok(),
                    },
                ),
                nic(
                    2,
                    "eth1",
                    Link {
                        id: 2,
                        mode: LinkMode::Dhcp,
                        subnet: Some(subnet(2, "10.1.0.0/24", None)),
                        ip: None,
                    },
                ),
                nic(
                    3,
                    "eth2",
                    Link {
                        id: 3,
                        mode: LinkMode::Auto,
                        subnet: Some(subnet(3, "fd00::/64", None)),
                        ip: "fd00::5".parse().ok(),
                    },
                ),
            ],
            ..Default::default()
        }
    }

    pub(crate) fn route(id: u64, source: u64, dest: &str, gw: &str, metric: u32) -> StaticRoute {
        StaticRoute {
            id,
            source,
            destination: dest.parse().unwrap(),
            gateway: gw.parse().unwrap(),
            metric,
        }
    }

    pub(crate) fn ctx() -> RenderContext {
        RenderContext {
            // Out of id order on purpose: MAAS sorts by id.
            static_routes: vec![
                route(9, 1, "192.168.9.0/24", "10.0.0.254", 50),
                route(4, 1, "172.16.0.0/12", "10.0.0.253", 0),
                route(5, 2, "192.168.2.0/24", "10.1.0.1", 0),
                route(6, 3, "fd01::/64", "fd00::1", 7),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn routes_follow_the_default_route_on_the_source_subnets_interface() {
        let net = netplan_network(&machine(), &ctx()).unwrap();
        assert_eq!(
            net["ethernets"]["eth0"]["routes"],
            json!([
                {"to": "default", "via": "10.0.0.1"},
                {"to": "172.16.0.0/12", "via": "10.0.0.253", "metric": 0},
                {"to": "192.168.9.0/24", "via": "10.0.0.254", "metric": 50},
            ])
        );
        assert_eq!(
            net["ethernets"]["eth2"]["routes"],
            json!([{"to": "fd01::/64", "via": "fd00::1", "metric": 7}])
        );
        // A DHCP link has no MAAS-assigned address: no routes (as MAAS).
        assert!(net["ethernets"]["eth1"].get("routes").is_none());
    }

    #[test]
    fn no_routes_without_static_routes() {
        let net = netplan_network(&machine(), &RenderContext::default()).unwrap();
        assert_eq!(
            net["ethernets"]["eth0"]["routes"],
            json!([{"to": "default", "via": "10.0.0.1"}])
        );
        assert!(net["ethernets"]["eth2"].get("routes").is_none());
        let yaml = netplan_yaml(&machine(), &ctx()).unwrap();
        assert!(yaml.contains("to: \"192.168.9.0/24\""), "{yaml}");
        assert!(yaml.contains("metric: 50"), "{yaml}");
    }
}
