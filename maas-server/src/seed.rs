//! Loading already-commissioned machines from a JSON inventory
//! (`maasd load-machines FILE`): what commissioning would have recorded —
//! CPUs, memory, disks, NICs — with the machine Ready (or another given
//! status). For labs, tests and benchmarks until commissioning runs through
//! the metadata API, and for migrating an inventory.
//!
//! ```json
//! [{"hostname": "n1", "architecture": "amd64/generic", "cpu_count": 4,
//!   "memory_mib": 8192, "tags": ["gpu"], "zone": "default",
//!   "disks": [{"name": "sda", "size": 500000000000, "tags": ["ssd"]}],
//!   "nics": [{"name": "eth0", "mac": "52:54:00:00:00:01",
//!             "links": [{"mode": "static", "subnet": "10.0.0.0/24", "ip": "10.0.0.5"}]}]}]
//! ```
//!
//! A NIC's `links` name existing subnets by CIDR; the NIC then sits on the
//! subnet's VLAN.

use maas_core::hardware::{BlockDevice, Interface, Link, LinkMode, SubnetRef, VlanRef};
use maas_core::{MacAddress, Machine, NodeStatus, SystemId};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::json::kinds;
use crate::db::machines::{MachineExtra, MachineRecord};
use crate::db::{DbConn, machines, objects, settings};
use crate::error::{Error, Result};

/// One disk of a [`MachineSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Kernel name (`sda`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Tags (`ssd`, `rotary`).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One NIC of a [`MachineSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicSpec {
    /// Name (`eth0`).
    pub name: String,
    /// MAC address.
    pub mac: String,
    /// Link speed in Mbit/s.
    #[serde(default)]
    pub link_speed: u64,
    /// Links to subnets.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
}

/// One link of a [`NicSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// `static`, `auto`, `dhcp` or `link_up`.
    pub mode: String,
    /// The subnet's CIDR (it must exist).
    #[serde(default)]
    pub subnet: Option<String>,
    /// The address (static links).
    #[serde(default)]
    pub ip: Option<std::net::IpAddr>,
}

/// The link a spec describes, with the VLAN of its subnet.
fn link(conn: &mut DbConn, host: &str, l: &LinkSpec) -> Result<(Link, Option<VlanRef>)> {
    let refused = |m: String| Error::Refused(format!("{host}: {m}"));
    let mode = match l.mode.as_str() {
        "static" => LinkMode::Static,
        "auto" => LinkMode::Auto,
        "dhcp" => LinkMode::Dhcp,
        "link_up" => LinkMode::LinkUp,
        m => return Err(refused(format!("unknown link mode {m}"))),
    };
    let (mut subnet, mut vlan) = (None, None);
    if let Some(cidr) = &l.subnet {
        let net: ipnet::IpNet = cidr
            .parse()
            .map_err(|_| refused(format!("bad subnet {cidr}")))?;
        let want = net.trunc().to_string();
        let s = objects::list(conn, kinds::SUBNET)?
            .into_iter()
            .find(|s| s.data.get("cidr").and_then(Value::as_str) == Some(want.as_str()))
            .ok_or_else(|| refused(format!("no subnet {want}")))?;
        let (sr, v) = subnet_refs(conn, &s)?;
        subnet = Some(sr);
        vlan = v;
    }
    if let (Some(ip), Some(s)) = (l.ip, &subnet)
        && !s
            .cidr
            .parse::<ipnet::IpNet>()
            .is_ok_and(|n| n.contains(&ip))
    {
        return Err(refused(format!("{ip} is outside {}", s.cidr)));
    }
    Ok((
        Link {
            id: settings::next_seq(conn, "link")?,
            mode,
            subnet,
            ip: l.ip,
        },
        vlan,
    ))
}

/// What a machine's link records of a stored subnet: the subnet and its
/// VLAN (with fabric and space).
pub(crate) fn subnet_refs(
    conn: &mut DbConn,
    s: &objects::Object,
) -> Result<(SubnetRef, Option<VlanRef>)> {
    let want = s
        .data
        .get("cidr")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<ipnet::IpNet>().ok())
        .map(|n| n.trunc().to_string())
        .unwrap_or_default();
    let mut vlan = None;
    let vlan_id = s.data.get("vlan_id").and_then(Value::as_i64).unwrap_or(0);
    let v = objects::get(conn, kinds::VLAN, vlan_id)?;
    let space = v
        .as_ref()
        .and_then(|v| v.data.get("space"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(v) = v {
        let fid = v.data.get("fabric_id").and_then(Value::as_i64).unwrap_or(0);
        let fabric = objects::get(conn, kinds::FABRIC, fid)?
            .map(|f| f.name)
            .unwrap_or_default();
        let vid = v.data.get("vid").and_then(Value::as_u64).unwrap_or(0);
        vlan = Some(VlanRef {
            id: v.id as u64,
            vid: u16::try_from(vid).unwrap_or(0),
            name: if v.name.is_empty() && vid == 0 {
                "untagged".into()
            } else {
                v.name.clone()
            },
            fabric,
            fabric_class: String::new(),
            space: space.clone(),
        });
    }
    let subnet = SubnetRef {
        id: s.id as u64,
        name: s.name.clone(),
        cidr: want,
        space,
        gateway_ip: s
            .data
            .get("gateway_ip")
            .and_then(Value::as_str)
            .and_then(|g| g.parse().ok()),
        dns_servers: s
            .data
            .get("dns_servers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
            .unwrap_or_default(),
    };
    Ok((subnet, vlan))
}

fn default_status() -> String {
    "ready".into()
}
fn default_name() -> String {
    "default".into()
}

/// One machine of the inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Hostname.
    pub hostname: String,
    /// `arch/subarch`.
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// CPU count.
    #[serde(default)]
    pub cpu_count: u32,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: u64,
    /// Tags (created when missing).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Zone (created when missing).
    #[serde(default = "default_name")]
    pub zone: String,
    /// Pool (created when missing).
    #[serde(default = "default_name")]
    pub pool: String,
    /// Status name, `ready` by default.
    #[serde(default = "default_status")]
    pub status: String,
    /// Power type (`manual` by default).
    #[serde(default)]
    pub power_type: String,
    /// Power parameters.
    #[serde(default)]
    pub power_parameters: Map<String, Value>,
    /// Disks.
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// NICs.
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// Owner's username (for Allocated, Deployed, … inventories; the user
    /// is not checked).
    #[serde(default)]
    pub owner: Option<String>,
    /// Locked against changes.
    #[serde(default)]
    pub locked: bool,
    /// The status to return to (mark fixed, exit rescue mode); defaults to
    /// `status`.
    #[serde(default)]
    pub previous_status: Option<String>,
}

fn default_arch() -> String {
    "amd64/generic".into()
}

fn ensure(conn: &mut DbConn, kind: &str, name: &str) -> Result<()> {
    if objects::by_name(conn, kind, name)?.is_none() {
        let mut d = Map::new();
        d.insert("description".into(), json!(""));
        if kind == kinds::TAG {
            d.insert("comment".into(), json!(""));
            d.insert("definition".into(), json!(""));
            d.insert("kernel_opts".into(), json!(""));
        }
        objects::insert(conn, kind, name, &d)?;
    }
    Ok(())
}

/// Inserts every machine of `specs` (in one transaction) and returns their
/// system ids.
pub fn load(conn: &mut DbConn, specs: &[MachineSpec], now_ms: i64) -> Result<Vec<SystemId>> {
    conn.write_tx(|conn| {
        let mut ids = Vec::with_capacity(specs.len());
        let controller = crate::controller::system_id(conn)?;
        let fabric = objects::by_name(conn, kinds::FABRIC, "fabric-0")?;
        let vlan = match &fabric {
            Some(f) => objects::list(conn, kinds::VLAN)?
                .into_iter()
                .find(|v| v.data.get("fabric_id") == Some(&json!(f.id)))
                .map(|v| maas_core::hardware::VlanRef {
                    id: v.id as u64,
                    vid: 0,
                    name: "untagged".into(),
                    fabric: f.name.clone(),
                    space: v
                        .data
                        .get("space")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    ..Default::default()
                }),
            None => None,
        };
        let mut known: Vec<(String, String)> = Vec::new();
        for s in specs {
            let by_name = |name: &str| {
                NodeStatus::ALL
                    .into_iter()
                    .find(|st| st.name().eq_ignore_ascii_case(name))
                    .ok_or_else(|| Error::Refused(format!("{}: unknown status {name}", s.hostname)))
            };
            let status = by_name(&s.status)?;
            let previous_status = match &s.previous_status {
                Some(p) => by_name(p)?,
                None => status,
            };
            for (kind, name) in std::iter::once((kinds::ZONE, &s.zone))
                .chain(std::iter::once((kinds::POOL, &s.pool)))
                .chain(s.tags.iter().map(|t| (kinds::TAG, t)))
            {
                if !known.iter().any(|(k, n)| k == kind && n == name) {
                    ensure(conn, kind, name)?;
                    known.push((kind.to_owned(), name.clone()));
                }
            }
            let mut block_devices = Vec::new();
            for d in &s.disks {
                block_devices.push(BlockDevice {
                    id: settings::next_seq(conn, "blockdevice")?,
                    name: d.name.clone(),
                    size: d.size,
                    block_size: 512,
                    // What the installer finds the disk by; commissioning
                    // would record a by-id path, the kernel name is what
                    // a spec gives.
                    id_path: format!("/dev/{}", d.name),
                    tags: d.tags.clone(),
                    ..Default::default()
                });
            }
            let mut interfaces = Vec::new();
            for n in &s.nics {
                let mac: MacAddress = n
                    .mac
                    .parse()
                    .map_err(|_| Error::Refused(format!("{}: bad MAC {}", s.hostname, n.mac)))?;
                let mut links = Vec::new();
                let mut nic_vlan = vlan.clone();
                for l in &n.links {
                    let (l, v) = link(conn, &s.hostname, l)?;
                    links.push(l);
                    if v.is_some() {
                        nic_vlan = v;
                    }
                }
                interfaces.push(Interface {
                    id: settings::next_seq(conn, "interface")?,
                    name: n.name.clone(),
                    mac,
                    enabled: true,
                    vlan: nic_vlan,
                    links,
                    link_speed: n.link_speed,
                    interface_speed: n.link_speed,
                    ..Default::default()
                });
            }
            let system_id = loop {
                let id = SystemId::generate(&mut rand::rng());
                if controller.as_ref() != Some(&id) && machines::get(conn, &id)?.is_none() {
                    break id;
                }
            };
            let machine = Machine {
                system_id: system_id.clone(),
                hostname: s.hostname.clone(),
                status,
                previous_status,
                owner: s.owner.clone(),
                locked: s.locked,
                power_type: if s.power_type.is_empty() {
                    "manual".into()
                } else {
                    s.power_type.clone()
                },
                architecture: s.architecture.clone(),
                cpu_count: s.cpu_count,
                memory_mib: s.memory_mib,
                tags: s.tags.clone(),
                zone: s.zone.clone(),
                pool: s.pool.clone(),
                commissioned: true,
                netboot: true,
                block_devices,
                interfaces,
                ..Default::default()
            };
            let record = MachineRecord {
                machine,
                extra: MachineExtra {
                    power_parameters: s.power_parameters.clone(),
                    ..Default::default()
                },
            };
            machines::insert(conn, &record, now_ms)?;
            for i in &record.machine.interfaces {
                let mut d = Map::new();
                d.insert("system_id".into(), json!(system_id.as_str()));
                objects::insert(conn, "mac", &i.mac.colon(), &d)?;
            }
            ids.push(system_id);
        }
        Ok(ids)
    })
}
