//! Linking a machine's interface to a subnet (MAAS's `InterfaceHandler`
//! `op=link_subnet` / `op=unlink_subnet`): DHCP, a static address (given,
//! or the first free one), AUTO or LINK_UP. The links are what the deployed
//! system's network configuration is rendered from.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use maas_core::NodeStatus;
use maas_core::hardware::{Link, LinkMode};
use serde_json::Value;

use super::json::{interface_json, kinds};
use super::machines::{save, sub_of};
use super::{ApiError, Call, Reply};
use crate::db::{DbConn, machines as dbm, objects, settings};

/// Addresses [`first_free`] looks through at most.
const SCAN_LIMIT: usize = 1 << 16;

fn no_subnet() -> ApiError {
    ApiError::field(
        "subnet",
        "Select a valid choice. That choice is not one of the available choices.",
    )
}

/// A subnet named by id or CIDR.
fn find_subnet(conn: &mut DbConn, spec: &str) -> Result<objects::Object, ApiError> {
    let spec = spec.trim();
    let subnets = objects::list(conn, kinds::SUBNET)?;
    let by_cidr = spec.parse::<IpNet>().ok().map(|n| n.trunc().to_string());
    subnets
        .into_iter()
        .find(|s| {
            s.id.to_string() == spec
                || by_cidr
                    .as_deref()
                    .is_some_and(|c| s.data.get("cidr").and_then(Value::as_str) == Some(c))
        })
        .ok_or_else(no_subnet)
}

fn cidr_of(s: &objects::Object) -> Option<IpNet> {
    s.data
        .get("cidr")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<IpNet>().ok())
}

/// Addresses no new static link may take: every machine's assigned ones,
/// the subnet's gateway and the IP ranges (dynamic and reserved).
struct Taken {
    ips: HashSet<IpAddr>,
    ranges: Vec<(IpAddr, IpAddr)>,
}

impl Taken {
    fn load(conn: &mut DbConn, subnet: &objects::Object) -> Result<Taken, ApiError> {
        let mut ips: HashSet<IpAddr> = dbm::list(conn)?
            .iter()
            .flat_map(|sm| sm.record.machine.interfaces.iter())
            .flat_map(|i| i.links.iter().filter_map(|l| l.ip))
            .collect();
        if let Some(g) = subnet
            .data
            .get("gateway_ip")
            .and_then(Value::as_str)
            .and_then(|g| g.parse().ok())
        {
            ips.insert(g);
        }
        let ranges = objects::list(conn, kinds::IPRANGE)?
            .iter()
            .filter_map(|r| {
                let ip = |k: &str| {
                    r.data
                        .get(k)
                        .and_then(Value::as_str)?
                        .parse::<IpAddr>()
                        .ok()
                };
                Some((ip("start_ip")?, ip("end_ip")?))
            })
            .collect();
        Ok(Taken { ips, ranges })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.ips.contains(&ip) || self.ranges.iter().any(|(a, b)| *a <= ip && ip <= *b)
    }
}

/// The lowest address of the subnet nothing has taken.
fn first_free(conn: &mut DbConn, subnet: &objects::Object) -> Result<IpAddr, ApiError> {
    let net = cidr_of(subnet).ok_or_else(no_subnet)?;
    let taken = Taken::load(conn, subnet)?;
    net.hosts()
        .take(SCAN_LIMIT)
        .find(|ip| !taken.contains(*ip))
        .ok_or_else(|| ApiError::bad_request(format!("No more IPs available in subnet: {net}.")))
}

/// Interfaces change only while the machine is not in use (MAAS's rule).
fn check_status(status: NodeStatus, what: &str) -> Result<(), ApiError> {
    if matches!(
        status,
        NodeStatus::New | NodeStatus::Ready | NodeStatus::Allocated | NodeStatus::Broken
    ) {
        Ok(())
    } else {
        Err(ApiError::conflict(format!(
            "Cannot {what} interface because the machine is not New, Ready, Allocated, or Broken."
        )))
    }
}

/// Where the interface `id` is among the machine's, or 404.
fn interface_index(m: &maas_core::Machine, id: u64) -> Result<usize, ApiError> {
    m.interfaces
        .iter()
        .position(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found("No Interface matches the given query."))
}

fn interface_reply(m: &maas_core::Machine, at: usize) -> Reply {
    Reply::Json(interface_json(m, &m.interfaces[at]))
}

/// `POST nodes/{system_id}/interfaces/{id}/?op=link_subnet` (admin).
pub fn link_subnet(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (mut sm, id) = sub_of(c, "Interface")?;
    let at = interface_index(&sm.record.machine, id)?;
    check_status(sm.record.machine.status, "link subnet to")?;
    let mode_name = c.params.get("mode").unwrap_or_default();
    let mode = match mode_name.trim().to_ascii_uppercase().as_str() {
        "AUTO" => LinkMode::Auto,
        "DHCP" => LinkMode::Dhcp,
        "STATIC" => LinkMode::Static,
        "LINK_UP" => LinkMode::LinkUp,
        "" => return Err(ApiError::field("mode", "This field is required.")),
        _ => {
            return Err(ApiError::field(
                "mode",
                format!("Select a valid choice. {mode_name} is not one of the available choices."),
            ));
        }
    };
    let subnet = match c.params.get_nonempty("subnet") {
        Some(s) => Some(find_subnet(c.conn, &s)?),
        None if matches!(mode, LinkMode::Auto | LinkMode::Static) => {
            return Err(ApiError::field("subnet", "This field is required."));
        }
        None => None,
    };
    let ip = match (mode, &subnet, c.params.get_nonempty("ip_address")) {
        (LinkMode::Static, Some(s), Some(given)) => {
            let ip: IpAddr = given.trim().parse().map_err(|_| {
                ApiError::field("ip_address", "Enter a valid IPv4 or IPv6 address.")
            })?;
            let net = cidr_of(s).ok_or_else(no_subnet)?;
            if !net.contains(&ip) {
                return Err(ApiError::field(
                    "ip_address",
                    format!("IP address is not in the given subnet '{net}'."),
                ));
            }
            if Taken::load(c.conn, s)?.contains(ip) {
                return Err(ApiError::field(
                    "ip_address",
                    format!("IP address {ip} is already in use."),
                ));
            }
            Some(ip)
        }
        // Without one, MAAS picks the address itself (STATIC at once, AUTO
        // when the deployment starts; here both at once).
        (LinkMode::Static | LinkMode::Auto, Some(s), _) => Some(first_free(c.conn, s)?),
        (_, _, Some(_)) => {
            return Err(ApiError::field(
                "ip_address",
                "An IP address can only be given for a STATIC link.",
            ));
        }
        _ => None,
    };
    let default_gateway = c.params.bool_or("default_gateway", false)?;
    if default_gateway && !matches!(mode, LinkMode::Auto | LinkMode::Static) {
        return Err(ApiError::field(
            "default_gateway",
            "Cannot set as the default gateway: only AUTO and STATIC links have one.",
        ));
    }
    let refs = match &subnet {
        Some(s) => Some(crate::seed::subnet_refs(c.conn, s)?),
        None => None,
    };
    let link_id = settings::next_seq(c.conn, "link")?;
    let m = &mut sm.record.machine;
    let iface = &mut m.interfaces[at];
    // A real link replaces the interface's bare LINK_UP one.
    iface.links.retain(|l| l.mode != LinkMode::LinkUp);
    let subnet_ref = refs.map(|(s, vlan)| {
        if vlan.is_some() {
            iface.vlan = vlan;
        }
        s
    });
    let gateway = subnet_ref.as_ref().and_then(|s| s.gateway_ip);
    iface.links.push(Link {
        id: link_id,
        mode,
        subnet: subnet_ref,
        ip,
    });
    if default_gateway {
        let gw = gateway.ok_or_else(|| {
            ApiError::field("default_gateway", "The subnet has no gateway IP address.")
        })?;
        set_gateway_link(m, gw, link_id);
    }
    save(c, &mut sm)?;
    let m = &sm.record.machine;
    Ok(interface_reply(m, at))
}

/// Makes `link`'s subnet gateway (`gw`) the machine's default route for
/// its address family.
fn set_gateway_link(m: &mut maas_core::Machine, gw: IpAddr, link: u64) {
    if gw.is_ipv4() {
        m.gateway_link_ipv4 = Some(link);
    } else {
        m.gateway_link_ipv6 = Some(link);
    }
}

/// `POST nodes/{system_id}/interfaces/{id}/?op=set_default_gateway`
/// (admin): the gateway of the link `link_id` (else of the interface's first
/// AUTO or STATIC link of each address family that has one) becomes the
/// machine's default route.
pub fn set_default_gateway(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (mut sm, id) = sub_of(c, "Interface")?;
    let at = interface_index(&sm.record.machine, id)?;
    check_status(sm.record.machine.status, "set default gateway for")?;
    let wanted: Option<u64> = c
        .params
        .get_nonempty("link_id")
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::field("link_id", "Enter a whole number."))
        })
        .transpose()?;
    let m = &mut sm.record.machine;
    let iface = &m.interfaces[at];
    let usable: Vec<(u64, IpAddr)> = iface
        .links
        .iter()
        .filter(|l| matches!(l.mode, LinkMode::Auto | LinkMode::Static))
        .filter_map(|l| Some((l.id, l.subnet.as_ref()?.gateway_ip?)))
        .collect();
    let chosen: Vec<(u64, IpAddr)> = match wanted {
        Some(w) => match usable.iter().find(|(l, _)| *l == w) {
            Some(u) => vec![*u],
            None if iface.links.iter().any(|l| l.id == w) => {
                return Err(ApiError::field(
                    "link_id",
                    "This link has no usable gateway: it must be AUTO or STATIC on a subnet with a gateway.",
                ));
            }
            None => {
                return Err(ApiError::field(
                    "link_id",
                    "Select a valid choice. That choice is not one of the available choices.",
                ));
            }
        },
        None => {
            let v4 = usable.iter().find(|(_, g)| g.is_ipv4());
            let v6 = usable.iter().find(|(_, g)| g.is_ipv6());
            v4.into_iter().chain(v6).copied().collect()
        }
    };
    if chosen.is_empty() {
        return Err(ApiError::bad_request(
            "This interface has no usable gateways.",
        ));
    }
    for (link, gw) in chosen {
        set_gateway_link(m, gw, link);
    }
    save(c, &mut sm)?;
    Ok(interface_reply(&sm.record.machine, at))
}

/// `POST nodes/{system_id}/interfaces/{id}/?op=unlink_subnet&id=<link>`
/// (admin): the interface keeps a bare LINK_UP link when none is left.
pub fn unlink_subnet(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let (mut sm, id) = sub_of(c, "Interface")?;
    let at = interface_index(&sm.record.machine, id)?;
    check_status(sm.record.machine.status, "unlink subnet from")?;
    let link_id: u64 = c
        .params
        .get_nonempty("id")
        .ok_or_else(|| ApiError::field("id", "This field is required."))?
        .trim()
        .parse()
        .map_err(|_| ApiError::field("id", "Enter a whole number."))?;
    let next = settings::next_seq(c.conn, "link")?;
    let m = &mut sm.record.machine;
    let iface = &mut m.interfaces[at];
    let before = iface.links.len();
    iface.links.retain(|l| l.id != link_id);
    if iface.links.len() == before {
        return Err(ApiError::field(
            "id",
            "Select a valid choice. That choice is not one of the available choices.",
        ));
    }
    if iface.links.is_empty() {
        iface.links.push(Link {
            id: next,
            mode: LinkMode::LinkUp,
            subnet: None,
            ip: None,
        });
    }
    save(c, &mut sm)?;
    let m = &sm.record.machine;
    Ok(interface_reply(m, at))
}
