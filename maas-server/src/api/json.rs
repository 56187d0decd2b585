//! MAAS's JSON shapes for machines and their nested objects (§2.8 of the
//! reference): field names and types python-libmaas checks.

use std::collections::HashMap;

use maas_core::hardware::{BlockDevice, BlockDeviceKind, Interface, LinkMode};
use maas_core::{Machine, NodeStatus};
use serde_json::{Value, json};

use crate::db::DbConn;
use crate::db::machines::StoredMachine;
use crate::db::objects;

/// Zones, pools and domains by name, loaded once per request so a list of
/// machines renders without a query per machine.
#[derive(Debug, Default)]
pub struct Lookups {
    zones: HashMap<String, Value>,
    pools: HashMap<String, Value>,
    domains: HashMap<String, Value>,
}

/// The kind names of the object store.
pub mod kinds {
    /// Physical zones.
    pub const ZONE: &str = "zone";
    /// Resource pools.
    pub const POOL: &str = "pool";
    /// DNS domains.
    pub const DOMAIN: &str = "domain";
    /// Tags.
    pub const TAG: &str = "tag";
    /// SSH keys.
    pub const SSHKEY: &str = "sshkey";
    /// Fabrics.
    pub const FABRIC: &str = "fabric";
    /// VLANs.
    pub const VLAN: &str = "vlan";
    /// Subnets.
    pub const SUBNET: &str = "subnet";
    /// IP ranges.
    pub const IPRANGE: &str = "iprange";
    /// Boot sources.
    pub const BOOT_SOURCE: &str = "boot_source";
    /// Boot source selections.
    pub const SELECTION: &str = "boot_source_selection";
    /// Boot resources.
    pub const BOOT_RESOURCE: &str = "boot_resource";
}

/// Zone JSON.
pub fn zone_json(o: &objects::Object) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "description": o.data.get("description").cloned().unwrap_or(json!("")),
        "resource_uri": format!("/MAAS/api/2.0/zones/{}/", o.name),
    })
}

/// Resource pool JSON.
pub fn pool_json(o: &objects::Object) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "description": o.data.get("description").cloned().unwrap_or(json!("")),
        "resource_uri": format!("/MAAS/api/2.0/resourcepool/{}/", o.id),
    })
}

/// Domain JSON; `count` is the number of resource records (machines in it).
pub fn domain_json(o: &objects::Object, count: usize) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "ttl": o.data.get("ttl").cloned().unwrap_or(Value::Null),
        "authoritative": o.data.get("authoritative").cloned().unwrap_or(json!(true)),
        "is_default": o.data.get("is_default").cloned().unwrap_or(json!(false)),
        "resource_record_count": count,
        "resource_uri": format!("/MAAS/api/2.0/domains/{}/", o.id),
    })
}

impl Lookups {
    /// Loads zones, pools and domains.
    pub fn load(conn: &mut DbConn) -> crate::Result<Lookups> {
        let mut l = Lookups::default();
        for z in objects::list(conn, kinds::ZONE)? {
            l.zones.insert(z.name.clone(), zone_json(&z));
        }
        for p in objects::list(conn, kinds::POOL)? {
            l.pools.insert(p.name.clone(), pool_json(&p));
        }
        for d in objects::list(conn, kinds::DOMAIN)? {
            l.domains.insert(d.name.clone(), domain_json(&d, 0));
        }
        Ok(l)
    }

    fn named(map: &HashMap<String, Value>, name: &str) -> Value {
        map.get(name).cloned().unwrap_or_else(
            || json!({"id": -1, "name": name, "description": "", "resource_uri": ""}),
        )
    }
}

fn vlan_json(i: &Interface) -> Value {
    match &i.vlan {
        None => Value::Null,
        Some(v) => json!({
            "id": v.id,
            "vid": v.vid,
            "name": if v.name.is_empty() { "untagged".to_owned() } else { v.name.clone() },
            "fabric": v.fabric,
            "fabric_id": 0,
            "mtu": 1500,
            "space": if v.space.is_empty() { "undefined" } else { v.space.as_str() },
            "dhcp_on": false,
            "external_dhcp": null,
            "primary_rack": null,
            "secondary_rack": null,
            "relay_vlan": null,
            "resource_uri": format!("/MAAS/api/2.0/vlans/{}/", v.id),
        }),
    }
}

/// Interface JSON.
pub fn interface_json(m: &Machine, i: &Interface) -> Value {
    let links: Vec<Value> = i
        .links
        .iter()
        .map(|l| {
            let mut o = json!({
                "id": l.id,
                "mode": match l.mode {
                    LinkMode::Auto => "auto",
                    LinkMode::Dhcp => "dhcp",
                    LinkMode::Static => "static",
                    LinkMode::LinkUp => "link_up",
                },
                "subnet": l.subnet.as_ref().map(|s| json!({
                    "id": s.id,
                    "name": s.name,
                    "cidr": s.cidr,
                    "space": if s.space.is_empty() { "undefined" } else { s.space.as_str() },
                    "resource_uri": format!("/MAAS/api/2.0/subnets/{}/", s.id),
                })),
            });
            if let Some(ip) = l.ip {
                o["ip_address"] = json!(ip.to_string());
            }
            o
        })
        .collect();
    let children: Vec<&str> = m
        .interfaces
        .iter()
        .filter(|c| c.parents.iter().any(|p| p == &i.name))
        .map(|c| c.name.as_str())
        .collect();
    json!({
        "system_id": m.system_id.as_str(),
        "id": i.id,
        "name": i.name,
        "type": i.kind.as_str(),
        "vlan": vlan_json(i),
        "mac_address": i.mac.colon(),
        "parents": i.parents,
        "children": children,
        "tags": i.tags,
        "enabled": i.enabled,
        "links": links,
        "params": "",
        "discovered": null,
        "effective_mtu": if i.mtu == 0 { 1500 } else { i.mtu },
        "vendor": null,
        "product": null,
        "firmware_version": null,
        "link_connected": true,
        "interface_speed": i.interface_speed,
        "link_speed": i.link_speed,
        "numa_node": 0,
        "sriov_max_vf": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/interfaces/{}/", m.system_id, i.id),
    })
}

/// Block device JSON.
pub fn blockdevice_json(m: &Machine, d: &BlockDevice) -> Value {
    json!({
        "system_id": m.system_id.as_str(),
        "id": d.id,
        "name": d.name,
        "uuid": null,
        "type": match d.kind { BlockDeviceKind::Physical => "physical", BlockDeviceKind::Virtual => "virtual" },
        "path": format!("/dev/disk/by-dname/{}", d.name),
        "model": d.model,
        "serial": d.serial,
        "id_path": d.id_path,
        "size": d.size,
        "block_size": d.block_size,
        "available_size": d.size,
        "used_size": 0,
        "used_for": "Unused",
        "tags": d.tags,
        "filesystem": null,
        "partition_table_type": null,
        "partitions": [],
        "firmware_version": null,
        "storage_pool": null,
        "numa_node": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{}/", m.system_id, d.id),
    })
}

fn test_status_fields(o: &mut serde_json::Map<String, Value>) {
    for k in [
        "commissioning_status",
        "testing_status",
        "cpu_test_status",
        "memory_test_status",
        "network_test_status",
        "storage_test_status",
        "other_test_status",
        "interface_test_status",
    ] {
        o.insert(k.to_owned(), json!(-1));
        o.insert(format!("{k}_name"), json!("Unknown"));
    }
}

/// A status verb for `status_action` (MAAS shows the running operation).
fn status_action(s: NodeStatus) -> Value {
    match s {
        NodeStatus::Commissioning
        | NodeStatus::Deploying
        | NodeStatus::Releasing
        | NodeStatus::DiskErasing
        | NodeStatus::Testing
        | NodeStatus::EnteringRescueMode
        | NodeStatus::ExitingRescueMode => json!(s.label()),
        _ => json!(""),
    }
}

/// The full machine JSON (`DISPLAYED_MACHINE_FIELDS` + `resource_uri`).
pub fn machine_json(sm: &StoredMachine, l: &Lookups) -> Value {
    let m = &sm.record.machine;
    let x = &sm.record.extra;
    let interfaces: Vec<Value> = m.interfaces.iter().map(|i| interface_json(m, i)).collect();
    let disks: Vec<Value> = m
        .block_devices
        .iter()
        .map(|d| blockdevice_json(m, d))
        .collect();
    let physical: Vec<Value> = m
        .block_devices
        .iter()
        .filter(|d| d.kind == BlockDeviceKind::Physical)
        .map(|d| blockdevice_json(m, d))
        .collect();
    let virt: Vec<Value> = m
        .block_devices
        .iter()
        .filter(|d| d.kind == BlockDeviceKind::Virtual)
        .map(|d| blockdevice_json(m, d))
        .collect();
    let ip_addresses: Vec<String> = m
        .interfaces
        .iter()
        .flat_map(|i| i.links.iter().filter_map(|l| l.ip.map(|a| a.to_string())))
        .collect();
    let boot_interface = m
        .interfaces
        .first()
        .map(|i| interface_json(m, i))
        .unwrap_or(Value::Null);
    let boot_disk = m
        .boot_disk()
        .map(|d| blockdevice_json(m, d))
        .unwrap_or(Value::Null);
    let mut o = json!({
        "system_id": m.system_id.as_str(),
        "hostname": m.hostname,
        "description": x.description,
        "hardware_uuid": if x.hardware_uuid.is_empty() { Value::Null } else { json!(x.hardware_uuid) },
        "domain": Lookups::named(&l.domains, &m.domain),
        "fqdn": m.fqdn(),
        "owner": m.owner,
        "owner_data": x.owner_data,
        "locked": m.locked,
        "cache_sets": [],
        "bcaches": [],
        "bios_boot_method": m.boot_method.as_str(),
        "boot_interface": boot_interface,
        "architecture": if m.architecture.is_empty() { Value::Null } else { json!(m.architecture) },
        "min_hwe_kernel": if x.min_hwe_kernel.is_empty() { Value::Null } else { json!(x.min_hwe_kernel) },
        "hwe_kernel": m.hwe_kernel,
        "cpu_count": m.cpu_count,
        "cpu_speed": x.cpu_speed,
        "memory": m.memory_mib,
        "swap_size": x.swap_size,
        "storage": m.storage_mb(),
        "status": m.status.as_int(),
        "osystem": m.osystem,
        "distro_series": m.distro_series,
        "ephemeral_deploy": m.ephemeral_deploy,
        "error_description": m.error_description,
        "netboot": m.netboot,
        "power_type": m.power_type,
        "power_state": m.power_state.as_str(),
        "tag_names": m.tags,
        "address_ttl": null,
        "ip_addresses": ip_addresses,
        "interface_set": interfaces,
        "zone": Lookups::named(&l.zones, &m.zone),
        "pool": Lookups::named(&l.pools, &m.pool),
        "disable_ipv4": false,
        "constraints_by_type": null,
        "boot_disk": boot_disk,
        "blockdevice_set": disks,
        "physicalblockdevice_set": physical,
        "virtualblockdevice_set": virt,
        "volume_groups": [],
        "raids": [],
        "status_action": status_action(m.status),
        "status_message": if x.status_message.is_empty() { Value::Null } else { json!(x.status_message) },
        "status_name": m.status.label(),
        "node_type": m.node_type.as_int(),
        "node_type_name": m.node_type.label(),
        "special_filesystems": [],
        "parent": null,
        "default_gateways": {
            "ipv4": {"gateway_ip": null, "link_id": null},
            "ipv6": {"gateway_ip": null, "link_id": null},
        },
        "current_commissioning_result_id": null,
        "current_testing_result_id": null,
        "current_installation_result_id": null,
        "hardware_info": {
            "system_vendor": "Unknown", "system_product": "Unknown", "system_family": "Unknown",
            "system_version": "Unknown", "system_sku": "Unknown", "system_serial": "Unknown",
            "cpu_model": if x.cpu_model.is_empty() { "Unknown" } else { x.cpu_model.as_str() }, "mainboard_vendor": "Unknown", "mainboard_product": "Unknown",
            "mainboard_serial": "Unknown", "mainboard_version": "Unknown",
            "mainboard_firmware_vendor": "Unknown", "mainboard_firmware_date": "Unknown",
            "mainboard_firmware_version": "Unknown", "chassis_vendor": "Unknown",
            "chassis_type": "Unknown", "chassis_serial": "Unknown", "chassis_version": "Unknown",
        },
        "numanode_set": [{"index": 0, "cores": (0..m.cpu_count).collect::<Vec<u32>>(), "memory": m.memory_mib, "hugepages_set": []}],
        "workload_annotations": {},
        "last_sync": null,
        "sync_interval": null,
        "next_sync": null,
        "enable_hw_sync": x.enable_hw_sync,
        "enable_kernel_crash_dump": x.enable_kernel_crash_dump,
        "is_dpu": false,
        "resource_uri": format!("/MAAS/api/2.0/machines/{}/", m.system_id),
    });
    if let Some(map) = o.as_object_mut() {
        test_status_fields(map);
    }
    o
}
