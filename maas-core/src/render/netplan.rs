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
