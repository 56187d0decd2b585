//! cloud-init / curtin network config version 1, which MAAS sends to
//! non-Ubuntu OSes and ESXi, and the ESXi restrictions: only DHCP,
//! static/auto addresses, aliases, VLANs and bonds whose mode maps onto an
//! ESXi NIC-teaming policy.

use serde_json::{Map, Value, json};

use super::RenderContext;
use crate::error::{Error, Result};
use crate::hardware::InterfaceKind;
use crate::machine::Machine;
use crate::network::{Address, NetworkPlan, PlannedInterface, plan};

fn subnets(ctx: &RenderContext, plan: &NetworkPlan<'_>, pi: &PlannedInterface<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    for a in &pi.addresses {
        match a {
            Address::Dhcp { v6 } => {
                out.push(json!({ "type": if *v6 { "dhcp6" } else { "dhcp4" } }))
            }
            Address::Static {
                ip,
                subnet,
                gateway,
                dns,
            } => {
                let mut s = Map::new();
                s.insert("type".into(), json!("static"));
                s.insert("address".into(), json!(ip.to_string()));
                // Only the chosen default gateway becomes a gateway: several
                // would give the OS competing default routes.
                let chosen = [&plan.gateway_v4, &plan.gateway_v6]
                    .into_iter()
                    .flatten()
                    .any(|(n, g)| n == pi.name() && Some(*g) == *gateway);
                if chosen && let Some(g) = gateway {
                    s.insert("gateway".into(), json!(g.to_string()));
                }
                if !dns.is_empty() {
                    let d: Vec<String> = dns.iter().map(ToString::to_string).collect();
                    s.insert("dns_nameservers".into(), json!(d));
                }
                // MAAS renders v1 static routes within the subnet they
                // leave from (preseed_network.py, `routes` of the subnet).
                let routes: Vec<Value> = ctx
                    .routes_from(&[*subnet])
                    .into_iter()
                    .map(|r| {
                        json!({
                            "destination": r.destination.to_string(),
                            "gateway": r.gateway.to_string(),
                            "metric": r.metric,
                        })
                    })
                    .collect();
                if !routes.is_empty() {
                    s.insert("routes".into(), json!(routes));
                }
                out.push(Value::Object(s));
            }
        }
    }
    if out.is_empty() {
        out.push(json!({ "type": "manual" }));
    }
    out
}

fn render(machine: &Machine, ctx: &RenderContext, plan: &NetworkPlan<'_>, esxi: bool) -> Value {
    let mut config = Vec::new();
    for pi in &plan.interfaces {
        let mut m = Map::new();
        m.insert("id".into(), json!(pi.name()));
        m.insert("name".into(), json!(pi.name()));
        if pi.iface.mtu > 0 {
            m.insert("mtu".into(), json!(pi.iface.mtu));
        }
        let has_mac = pi.iface.mac.0 != [0; 6];
        match pi.kind {
            InterfaceKind::Physical | InterfaceKind::Unknown => {
                m.insert("type".into(), json!("physical"));
                m.insert("mac_address".into(), json!(pi.iface.mac.colon()));
            }
            InterfaceKind::Bond => {
                m.insert("type".into(), json!("bond"));
                if has_mac {
                    m.insert("mac_address".into(), json!(pi.iface.mac.colon()));
                }
                m.insert("bond_interfaces".into(), json!(pi.parents));
                let b = &pi.bond;
                let mut p = Map::new();
                p.insert("bond-mode".into(), json!(b.mode.as_str()));
                p.insert("bond-miimon".into(), json!(b.miimon));
                p.insert("bond-downdelay".into(), json!(b.downdelay));
                p.insert("bond-updelay".into(), json!(b.updelay));
                p.insert("bond-num-grat-arp".into(), json!(b.num_grat_arp));
                // ESXi's teaming ignores the LACP rate and hash policy.
                if !esxi {
                    p.insert("bond-lacp_rate".into(), json!(b.lacp_rate.as_str()));
                    p.insert("bond-xmit_hash_policy".into(), json!(b.xmit_hash_policy));
                }
                m.insert("params".into(), Value::Object(p));
            }
            InterfaceKind::Vlan => {
                m.insert("type".into(), json!("vlan"));
                m.insert("vlan_link".into(), json!(pi.parents[0]));
                m.insert("vlan_id".into(), json!(pi.vid));
            }
            InterfaceKind::Bridge => {
                m.insert("type".into(), json!("bridge"));
                if has_mac {
                    m.insert("mac_address".into(), json!(pi.iface.mac.colon()));
                }
                m.insert("bridge_interfaces".into(), json!(pi.parents));
                m.insert(
                    "params".into(),
                    json!({ "bridge_stp": pi.bridge.stp, "bridge_fd": pi.bridge.fd }),
                );
            }
            InterfaceKind::Alias => continue,
        }
        m.insert("subnets".into(), json!(subnets(ctx, plan, pi)));
        config.push(Value::Object(m));
    }
    let ns = super::netplan::nameservers(machine, ctx, plan);
    let empty = ns["addresses"].as_array().is_none_or(Vec::is_empty)
        && ns["search"].as_array().is_none_or(Vec::is_empty);
    if !empty {
        config.push(json!({
            "type": "nameserver",
            "address": ns["addresses"],
            "search": ns["search"],
        }));
    }
    json!({ "version": 1, "config": config })
}

/// The `network:` value (`{version: 1, config: […]}`) for the machine.
pub fn network_v1(machine: &Machine, ctx: &RenderContext) -> Result<Value> {
    let plan = plan(machine)?;
    Ok(render(machine, ctx, &plan, false))
}

/// Network v1 for ESXi, refusing what ESXi cannot express: bridges, bond
/// modes other than balance-rr (→ `portid`), active-backup (→ `explicit`)
/// and 802.3ad (→ `iphash`, LACP rate and hash policy ignored).
pub fn esxi_network(machine: &Machine, ctx: &RenderContext) -> Result<Value> {
    let plan = plan(machine)?;
    for pi in &plan.interfaces {
        let unsupported = |feature: String| Error::NetworkUnsupported {
            os: "esxi".into(),
            interface: pi.name().to_owned(),
            feature,
        };
        match pi.kind {
            InterfaceKind::Bridge => return Err(unsupported("a bridge".into())),
            InterfaceKind::Unknown => {
                return Err(unsupported("an interface of unknown type".into()));
            }
            InterfaceKind::Bond if pi.bond.mode.esxi_teaming_policy().is_none() => {
                return Err(unsupported(format!(
                    "bond mode {} (ESXi teams only balance-rr, active-backup and 802.3ad)",
                    pi.bond.mode
                )));
            }
            _ => {}
        }
    }
    Ok(render(machine, ctx, &plan, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::netplan::tests::{ctx, machine};

    fn iface<'a>(net: &'a Value, name: &str) -> &'a Value {
        net["config"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    #[test]
    fn routes_sit_in_the_source_subnet_entry() {
        let net = network_v1(&machine(), &ctx()).unwrap();
        let eth0 = &iface(&net, "eth0")["subnets"][0];
        assert_eq!(eth0["type"], "static");
        assert_eq!(
            eth0["routes"],
            json!([
                {"destination": "172.16.0.0/12", "gateway": "10.0.0.253", "metric": 0},
                {"destination": "192.168.9.0/24", "gateway": "10.0.0.254", "metric": 50},
            ])
        );
        assert_eq!(
            iface(&net, "eth2")["subnets"][0]["routes"],
            json!([{"destination": "fd01::/64", "gateway": "fd00::1", "metric": 7}])
        );
        assert!(iface(&net, "eth1")["subnets"][0].get("routes").is_none());
        // ESXi's v1 carries them too.
        let esxi = esxi_network(&machine(), &ctx()).unwrap();
        assert_eq!(
            iface(&esxi, "eth0")["subnets"][0]["routes"][1]["metric"],
            50
        );
    }

    #[test]
    fn no_routes_key_without_routes() {
        let net = network_v1(&machine(), &RenderContext::default()).unwrap();
        assert!(iface(&net, "eth0")["subnets"][0].get("routes").is_none());
    }
}
