//! MAAS's JSON shapes for machines and their nested objects (§2.8 of the
//! reference): field names and types python-libmaas checks.

use std::collections::HashMap;

use maas_core::hardware::{BlockDevice, BlockDeviceKind, Interface, LinkMode, VlanRef};
use maas_core::{Machine, NodeStatus};
use serde::Serialize;
use serde_json::{Value, json};

use crate::db::DbConn;
use crate::db::machines::{ListingRow, MachineExtra, MachineRecord, StoredMachine};
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
    /// Spaces (documents in `objects`).
    pub const SPACE: &str = "space";
    /// Static routes (documents in `objects`).
    pub const STATIC_ROUTE: &str = "staticroute";
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
}

// The shapes below are typed views that borrow from the stored model and
// serialise straight to bytes: a list of thousands of machines is written
// without building a `serde_json::Value` tree per machine (which cost
// about a thousand allocations each).

const UNKNOWN: &str = "Unknown";

#[derive(Debug, Serialize)]
struct VlanOut<'a> {
    id: u64,
    vid: u16,
    name: &'a str,
    fabric: &'a str,
    fabric_id: u8,
    mtu: u32,
    space: &'a str,
    dhcp_on: bool,
    external_dhcp: Option<()>,
    primary_rack: Option<()>,
    secondary_rack: Option<()>,
    relay_vlan: Option<()>,
    resource_uri: String,
}

impl<'a> VlanOut<'a> {
    fn new(v: &'a VlanRef) -> Self {
        VlanOut {
            id: v.id,
            vid: v.vid,
            name: if v.name.is_empty() {
                "untagged"
            } else {
                &v.name
            },
            fabric: &v.fabric,
            fabric_id: 0,
            mtu: 1500,
            space: or_undefined(&v.space),
            dhcp_on: false,
            external_dhcp: None,
            primary_rack: None,
            secondary_rack: None,
            relay_vlan: None,
            resource_uri: format!("/MAAS/api/2.0/vlans/{}/", v.id),
        }
    }
}

fn or_undefined(space: &str) -> &str {
    if space.is_empty() { "undefined" } else { space }
}

#[derive(Debug, Serialize)]
struct SubnetOut<'a> {
    id: u64,
    name: &'a str,
    cidr: &'a str,
    space: &'a str,
    resource_uri: String,
}

#[derive(Debug, Serialize)]
struct LinkOut<'a> {
    id: u64,
    mode: &'static str,
    subnet: Option<SubnetOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
}

fn link_mode(m: LinkMode) -> &'static str {
    match m {
        LinkMode::Auto => "auto",
        LinkMode::Dhcp => "dhcp",
        LinkMode::Static => "static",
        LinkMode::LinkUp => "link_up",
    }
}

/// An interface as MAAS shows it (`interface_set`, `nodes/…/interfaces/`).
#[derive(Debug, Serialize)]
pub struct InterfaceOut<'a> {
    system_id: &'a str,
    id: u64,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    vlan: Option<VlanOut<'a>>,
    mac_address: String,
    parents: &'a [String],
    children: Vec<&'a str>,
    tags: &'a [String],
    enabled: bool,
    links: Vec<LinkOut<'a>>,
    params: &'static str,
    discovered: Option<()>,
    effective_mtu: u32,
    vendor: Option<()>,
    product: Option<()>,
    firmware_version: Option<()>,
    link_connected: bool,
    interface_speed: u64,
    link_speed: u64,
    numa_node: u8,
    sriov_max_vf: u8,
    resource_uri: String,
}

impl<'a> InterfaceOut<'a> {
    /// The view of interface `i` of machine `m`.
    pub fn new(m: &'a Machine, i: &'a Interface) -> Self {
        InterfaceOut {
            system_id: m.system_id.as_str(),
            id: i.id,
            name: &i.name,
            kind: i.kind.as_str(),
            vlan: i.vlan.as_ref().map(VlanOut::new),
            mac_address: i.mac.colon(),
            parents: &i.parents,
            children: m
                .interfaces
                .iter()
                .filter(|c| c.parents.iter().any(|p| p == &i.name))
                .map(|c| c.name.as_str())
                .collect(),
            tags: &i.tags,
            enabled: i.enabled,
            links: i
                .links
                .iter()
                .map(|l| LinkOut {
                    id: l.id,
                    mode: link_mode(l.mode),
                    subnet: l.subnet.as_ref().map(|s| SubnetOut {
                        id: s.id,
                        name: &s.name,
                        cidr: &s.cidr,
                        space: or_undefined(&s.space),
                        resource_uri: format!("/MAAS/api/2.0/subnets/{}/", s.id),
                    }),
                    ip_address: l.ip.map(|a| a.to_string()),
                })
                .collect(),
            params: "",
            discovered: None,
            effective_mtu: if i.mtu == 0 { 1500 } else { i.mtu },
            vendor: None,
            product: None,
            firmware_version: None,
            link_connected: true,
            interface_speed: i.interface_speed,
            link_speed: i.link_speed,
            numa_node: 0,
            sriov_max_vf: 0,
            resource_uri: format!("/MAAS/api/2.0/nodes/{}/interfaces/{}/", m.system_id, i.id),
        }
    }
}

/// A block device as MAAS shows it (`blockdevice_set`, `nodes/…/blockdevices/`).
#[derive(Debug, Serialize)]
pub struct BlockDeviceOut<'a> {
    system_id: &'a str,
    id: u64,
    name: &'a str,
    uuid: Option<()>,
    #[serde(rename = "type")]
    kind: &'static str,
    path: String,
    model: &'a str,
    serial: &'a str,
    id_path: &'a str,
    size: u64,
    block_size: u64,
    available_size: u64,
    used_size: u64,
    used_for: &'static str,
    tags: &'a [String],
    filesystem: Option<()>,
    partition_table_type: Option<()>,
    partitions: [(); 0],
    firmware_version: Option<()>,
    storage_pool: Option<()>,
    numa_node: u8,
    resource_uri: String,
}

impl<'a> BlockDeviceOut<'a> {
    /// The view of block device `d` of machine `m`.
    pub fn new(m: &'a Machine, d: &'a BlockDevice) -> Self {
        BlockDeviceOut {
            system_id: m.system_id.as_str(),
            id: d.id,
            name: &d.name,
            uuid: None,
            kind: match d.kind {
                BlockDeviceKind::Physical => "physical",
                BlockDeviceKind::Virtual => "virtual",
            },
            path: format!("/dev/disk/by-dname/{}", d.name),
            model: &d.model,
            serial: &d.serial,
            id_path: &d.id_path,
            size: d.size,
            block_size: d.block_size,
            available_size: d.size,
            used_size: 0,
            used_for: "Unused",
            tags: &d.tags,
            filesystem: None,
            partition_table_type: None,
            partitions: [],
            firmware_version: None,
            storage_pool: None,
            numa_node: 0,
            resource_uri: format!("/MAAS/api/2.0/nodes/{}/blockdevices/{}/", m.system_id, d.id),
        }
    }
}

/// Interface JSON.
pub fn interface_json(m: &Machine, i: &Interface) -> Value {
    to_value(&InterfaceOut::new(m, i))
}

/// Block device JSON.
pub fn blockdevice_json(m: &Machine, d: &BlockDevice) -> Value {
    to_value(&BlockDeviceOut::new(m, d))
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // The views hold only strings, integers, booleans and nulls, which
    // always convert; Null would only hide a bug, never bad input.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A status verb for `status_action` (MAAS shows the running operation).
fn status_action(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Commissioning
        | NodeStatus::Deploying
        | NodeStatus::Releasing
        | NodeStatus::DiskErasing
        | NodeStatus::Testing
        | NodeStatus::EnteringRescueMode
        | NodeStatus::ExitingRescueMode => s.label(),
        _ => "",
    }
}

#[derive(Debug, Serialize)]
struct GatewayOut {
    gateway_ip: Option<()>,
    link_id: Option<()>,
}

#[derive(Debug, Serialize)]
struct DefaultGatewaysOut {
    ipv4: GatewayOut,
    ipv6: GatewayOut,
}

#[derive(Debug, Serialize)]
struct NumaOut {
    index: u8,
    cores: Cores,
    memory: u64,
    hugepages_set: [(); 0],
}

/// Core indexes `0..n`, written as an array without collecting them.
#[derive(Debug)]
struct Cores(u32);

impl Serialize for Cores {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(0..self.0)
    }
}

/// What commissioning fills in; MAAS shows "Unknown" until then.
#[derive(Debug, Serialize)]
struct HardwareInfoOut<'a> {
    system_vendor: &'static str,
    system_product: &'static str,
    system_family: &'static str,
    system_version: &'static str,
    system_sku: &'static str,
    system_serial: &'static str,
    cpu_model: &'a str,
    mainboard_vendor: &'static str,
    mainboard_product: &'static str,
    mainboard_serial: &'static str,
    mainboard_version: &'static str,
    mainboard_firmware_vendor: &'static str,
    mainboard_firmware_date: &'static str,
    mainboard_firmware_version: &'static str,
    chassis_vendor: &'static str,
    chassis_type: &'static str,
    chassis_serial: &'static str,
    chassis_version: &'static str,
}

const HARDWARE_INFO: HardwareInfoOut<'static> = HardwareInfoOut {
    system_vendor: UNKNOWN,
    system_product: UNKNOWN,
    system_family: UNKNOWN,
    system_version: UNKNOWN,
    system_sku: UNKNOWN,
    system_serial: UNKNOWN,
    cpu_model: UNKNOWN,
    mainboard_vendor: UNKNOWN,
    mainboard_product: UNKNOWN,
    mainboard_serial: UNKNOWN,
    mainboard_version: UNKNOWN,
    mainboard_firmware_vendor: UNKNOWN,
    mainboard_firmware_date: UNKNOWN,
    mainboard_firmware_version: UNKNOWN,
    chassis_vendor: UNKNOWN,
    chassis_type: UNKNOWN,
    chassis_serial: UNKNOWN,
    chassis_version: UNKNOWN,
};

/// Script results MAAS summarises per machine; no results are kept yet,
/// so every summary is -1 ("Unknown"), as MAAS shows before any run.
#[derive(Debug, Serialize)]
struct TestStatusOut {
    commissioning_status: i8,
    commissioning_status_name: &'static str,
    testing_status: i8,
    testing_status_name: &'static str,
    cpu_test_status: i8,
    cpu_test_status_name: &'static str,
    memory_test_status: i8,
    memory_test_status_name: &'static str,
    network_test_status: i8,
    network_test_status_name: &'static str,
    storage_test_status: i8,
    storage_test_status_name: &'static str,
    other_test_status: i8,
    other_test_status_name: &'static str,
    interface_test_status: i8,
    interface_test_status_name: &'static str,
}

const TEST_STATUS: TestStatusOut = TestStatusOut {
    commissioning_status: -1,
    commissioning_status_name: UNKNOWN,
    testing_status: -1,
    testing_status_name: UNKNOWN,
    cpu_test_status: -1,
    cpu_test_status_name: UNKNOWN,
    memory_test_status: -1,
    memory_test_status_name: UNKNOWN,
    network_test_status: -1,
    network_test_status_name: UNKNOWN,
    storage_test_status: -1,
    storage_test_status_name: UNKNOWN,
    other_test_status: -1,
    other_test_status_name: UNKNOWN,
    interface_test_status: -1,
    interface_test_status_name: UNKNOWN,
};

fn none_if_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// The full machine JSON (`DISPLAYED_MACHINE_FIELDS` + `resource_uri`) as a
/// typed view of a stored machine.
#[derive(Debug, Serialize)]
pub struct MachineOut<'a> {
    system_id: &'a str,
    hostname: &'a str,
    description: &'a str,
    hardware_uuid: Option<&'a str>,
    domain: NamedOut<'a>,
    fqdn: String,
    owner: Option<&'a str>,
    owner_data: &'a serde_json::Map<String, Value>,
    locked: bool,
    cache_sets: [(); 0],
    bcaches: [(); 0],
    bios_boot_method: &'static str,
    boot_interface: Option<InterfaceOut<'a>>,
    architecture: Option<&'a str>,
    min_hwe_kernel: Option<&'a str>,
    hwe_kernel: Option<&'a str>,
    cpu_count: u32,
    cpu_speed: u64,
    memory: u64,
    swap_size: Option<u64>,
    storage: f64,
    status: u8,
    osystem: &'a str,
    distro_series: &'a str,
    ephemeral_deploy: bool,
    error_description: &'a str,
    netboot: bool,
    power_type: &'a str,
    power_state: &'static str,
    tag_names: &'a [String],
    address_ttl: Option<()>,
    ip_addresses: Vec<String>,
    interface_set: Vec<InterfaceOut<'a>>,
    zone: NamedOut<'a>,
    pool: NamedOut<'a>,
    disable_ipv4: bool,
    constraints_by_type: Option<()>,
    boot_disk: Option<BlockDeviceOut<'a>>,
    blockdevice_set: Vec<BlockDeviceOut<'a>>,
    physicalblockdevice_set: Vec<BlockDeviceOut<'a>>,
    virtualblockdevice_set: Vec<BlockDeviceOut<'a>>,
    volume_groups: [(); 0],
    raids: [(); 0],
    status_action: &'static str,
    status_message: Option<&'a str>,
    status_name: &'static str,
    node_type: u8,
    node_type_name: &'static str,
    special_filesystems: [(); 0],
    parent: Option<()>,
    default_gateways: DefaultGatewaysOut,
    current_commissioning_result_id: Option<()>,
    current_testing_result_id: Option<()>,
    current_installation_result_id: Option<()>,
    hardware_info: HardwareInfoOut<'a>,
    numanode_set: [NumaOut; 1],
    workload_annotations: EmptyObject,
    last_sync: Option<()>,
    sync_interval: Option<()>,
    next_sync: Option<()>,
    enable_hw_sync: bool,
    enable_kernel_crash_dump: bool,
    is_dpu: bool,
    resource_uri: String,
    #[serde(flatten)]
    test_status: &'static TestStatusOut,
}

/// `{}`.
#[derive(Debug)]
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// A nested zone, pool or domain: the looked-up object, or a placeholder
/// naming it when it was deleted under the machine.
#[derive(Debug)]
enum NamedOut<'a> {
    Found(&'a Value),
    Missing(&'a str),
    /// A hole in a stored listing template, filled per request.
    Slot,
}

impl Serialize for NamedOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NamedOut::Found(v) => v.serialize(s),
            NamedOut::Missing(name) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("id", &-1)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("description", "")?;
                m.serialize_entry("resource_uri", "")?;
                m.end()
            }
            NamedOut::Slot => s.serialize_str(SLOT_MARK),
        }
    }
}

impl Lookups {
    fn named<'a>(map: &'a HashMap<String, Value>, name: &'a str) -> NamedOut<'a> {
        match map.get(name) {
            Some(v) => NamedOut::Found(v),
            None => NamedOut::Missing(name),
        }
    }
}

impl<'a> MachineOut<'a> {
    /// The view of a stored machine, with zone/pool/domain from `l`.
    pub fn new(sm: &'a StoredMachine, l: &'a Lookups) -> Self {
        let m = &sm.record.machine;
        Self::with_named(
            &sm.record,
            Lookups::named(&l.domains, &m.domain),
            Lookups::named(&l.zones, &m.zone),
            Lookups::named(&l.pools, &m.pool),
        )
    }

    fn with_named(
        rec: &'a MachineRecord,
        domain: NamedOut<'a>,
        zone: NamedOut<'a>,
        pool: NamedOut<'a>,
    ) -> Self {
        let m = &rec.machine;
        let x = &rec.extra;
        let disks = |kind: Option<BlockDeviceKind>| -> Vec<BlockDeviceOut<'a>> {
            m.block_devices
                .iter()
                .filter(|d| kind.is_none_or(|k| d.kind == k))
                .map(|d| BlockDeviceOut::new(m, d))
                .collect()
        };
        MachineOut {
            system_id: m.system_id.as_str(),
            hostname: &m.hostname,
            description: &x.description,
            hardware_uuid: none_if_empty(&x.hardware_uuid),
            domain,
            fqdn: m.fqdn(),
            owner: m.owner.as_deref(),
            owner_data: &x.owner_data,
            locked: m.locked,
            cache_sets: [],
            bcaches: [],
            bios_boot_method: m.boot_method.as_str(),
            boot_interface: m.interfaces.first().map(|i| InterfaceOut::new(m, i)),
            architecture: none_if_empty(&m.architecture),
            min_hwe_kernel: none_if_empty(&x.min_hwe_kernel),
            hwe_kernel: m.hwe_kernel.as_deref(),
            cpu_count: m.cpu_count,
            cpu_speed: x.cpu_speed,
            memory: m.memory_mib,
            swap_size: x.swap_size,
            storage: m.storage_mb(),
            status: m.status.as_int(),
            osystem: &m.osystem,
            distro_series: &m.distro_series,
            ephemeral_deploy: m.ephemeral_deploy,
            error_description: &m.error_description,
            netboot: m.netboot,
            power_type: &m.power_type,
            power_state: m.power_state.as_str(),
            tag_names: &m.tags,
            address_ttl: None,
            ip_addresses: m
                .interfaces
                .iter()
                .flat_map(|i| i.links.iter().filter_map(|l| l.ip.map(|a| a.to_string())))
                .collect(),
            interface_set: m
                .interfaces
                .iter()
                .map(|i| InterfaceOut::new(m, i))
                .collect(),
            zone,
            pool,
            disable_ipv4: false,
            constraints_by_type: None,
            boot_disk: m.boot_disk().map(|d| BlockDeviceOut::new(m, d)),
            blockdevice_set: disks(None),
            physicalblockdevice_set: disks(Some(BlockDeviceKind::Physical)),
            virtualblockdevice_set: disks(Some(BlockDeviceKind::Virtual)),
            volume_groups: [],
            raids: [],
            status_action: status_action(m.status),
            status_message: none_if_empty(&x.status_message),
            status_name: m.status.label(),
            node_type: m.node_type.as_int(),
            node_type_name: m.node_type.label(),
            special_filesystems: [],
            parent: None,
            default_gateways: DefaultGatewaysOut {
                ipv4: GatewayOut {
                    gateway_ip: None,
                    link_id: None,
                },
                ipv6: GatewayOut {
                    gateway_ip: None,
                    link_id: None,
                },
            },
            current_commissioning_result_id: None,
            current_testing_result_id: None,
            current_installation_result_id: None,
            hardware_info: HardwareInfoOut {
                cpu_model: if x.cpu_model.is_empty() {
                    UNKNOWN
                } else {
                    &x.cpu_model
                },
                ..HARDWARE_INFO
            },
            numanode_set: [NumaOut {
                index: 0,
                cores: Cores(m.cpu_count),
                memory: m.memory_mib,
                hugepages_set: [],
            }],
            workload_annotations: EmptyObject,
            last_sync: None,
            sync_interval: None,
            next_sync: None,
            enable_hw_sync: x.enable_hw_sync,
            enable_kernel_crash_dump: x.enable_kernel_crash_dump,
            is_dpu: false,
            resource_uri: format!("/MAAS/api/2.0/machines/{}/", m.system_id),
            test_status: &TEST_STATUS,
        }
    }
}

/// The full machine JSON as a value (single reads, action replies).
pub fn machine_json(sm: &StoredMachine, l: &Lookups) -> Value {
    to_value(&MachineOut::new(sm, l))
}

/// Writes a JSON array of machines straight into `out`, one machine view
/// at a time (the list endpoints).
pub fn write_machine_list<'a>(
    out: &mut Vec<u8>,
    machines: impl IntoIterator<Item = &'a StoredMachine>,
    l: &Lookups,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (n, sm) in machines.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &MachineOut::new(sm, l))?;
    }
    out.push(b']');
    Ok(())
}

// ------------------------------------------------------------ listing cache
//
// A machine's list JSON is a function of its own record and of three shared
// objects (its domain, zone and pool, which an admin edits without touching
// the machine). So every machine write stores the machine's JSON with those
// three values cut out (`machines.listing`), and `GET machines/` pastes the
// current objects between the stored pieces: no model decode and no render
// per machine, which is what the 10,000-machine list spent its time on.

/// What a slot is first rendered as. A user string equal to it renders the
/// same, so a template is kept only when exactly three appear.
const SLOT_MARK: &str = "\u{1}maas-rs-slot\u{1}";

/// What each slot becomes in a stored template: serde_json escapes every
/// control character inside strings, so a raw SOH never occurs in its
/// output and splits a template unambiguously.
const SLOT: char = '\u{1}';

/// Bump when `MachineOut` changes in a way the fingerprint sample below does
/// not exercise; either way stored templates of the old shape stop being
/// used (they are re-rendered from the model).
const LISTING_FORMAT: u64 = 1;

/// FNV-1a: stable across builds and toolchains, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn render_template(rec: &MachineRecord) -> Option<String> {
    let view = MachineOut::with_named(rec, NamedOut::Slot, NamedOut::Slot, NamedOut::Slot);
    let text = serde_json::to_string(&view).ok()?;
    let mark = serde_json::to_string(SLOT_MARK).ok()?;
    (text.matches(mark.as_str()).count() == 3).then(|| text.replace(mark.as_str(), "\u{1}"))
}

/// A machine that exercises every nested shape of the view, so that a
/// change to the renderer changes [`renderer_tag`].
fn fingerprint_sample() -> MachineRecord {
    use maas_core::hardware::{Link, SubnetRef};
    let iface = Interface {
        id: 1,
        name: "eth0".into(),
        vlan: Some(VlanRef {
            id: 1,
            fabric: "fabric-0".into(),
            ..VlanRef::default()
        }),
        links: vec![Link {
            id: 1,
            mode: LinkMode::Static,
            subnet: Some(SubnetRef {
                id: 1,
                name: "10.0.0.0/24".into(),
                cidr: "10.0.0.0/24".into(),
                ..SubnetRef::default()
            }),
            ip: "10.0.0.1".parse().ok(),
        }],
        tags: vec!["t".into()],
        ..Interface::default()
    };
    let disk = BlockDevice {
        id: 1,
        name: "sda".into(),
        size: 1 << 30,
        tags: vec!["ssd".into()],
        ..BlockDevice::default()
    };
    let mut owner_data = serde_json::Map::new();
    owner_data.insert("k".into(), json!("v"));
    MachineRecord {
        machine: Machine {
            hostname: "fingerprint".into(),
            owner: Some("o".into()),
            architecture: "amd64/generic".into(),
            cpu_count: 2,
            memory_mib: 1024,
            tags: vec!["tag".into()],
            hwe_kernel: Some("ga-24.04".into()),
            interfaces: vec![iface],
            block_devices: vec![disk],
            ..Machine::default()
        },
        extra: MachineExtra {
            description: "d".into(),
            owner_data,
            hardware_uuid: "u".into(),
            min_hwe_kernel: "k".into(),
            swap_size: Some(1),
            cpu_model: "c".into(),
            status_message: "s".into(),
            ..MachineExtra::default()
        },
    }
}

/// Identifies the renderer that wrote a template (a hash of the sample
/// machine's template); templates written by another build's renderer are
/// not used.
fn renderer_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let t = render_template(&fingerprint_sample()).unwrap_or_default();
        format!("{:016x}", fnv1a(t.as_bytes()) ^ LISTING_FORMAT)
    })
}

/// What `machines.listing` stores for a record: the renderer tag, then the
/// machine JSON in four pieces around its domain, zone and pool, joined by
/// SOH. `None` when the record cannot be templated (it is then rendered
/// from the model whenever it is listed).
pub fn listing_template(rec: &MachineRecord) -> Option<String> {
    render_template(rec).map(|t| format!("{}{SLOT}{t}", renderer_tag()))
}

/// The four pieces of a stored listing written by this build's renderer.
fn template_pieces(stored: &str) -> Option<[&str; 4]> {
    let mut it = stored.split(SLOT);
    if it.next()? != renderer_tag() {
        return None;
    }
    let pieces = [it.next()?, it.next()?, it.next()?, it.next()?];
    it.next().is_none().then_some(pieces)
}

/// Whether a listed row can be written from its stored template.
pub fn listing_usable(row: &ListingRow) -> bool {
    row.listing.as_deref().and_then(template_pieces).is_some()
}

/// The serialised domain, zone and pool objects by name, computed once per
/// list instead of once per machine.
struct SlotFill<'a> {
    l: &'a Lookups,
    done: [HashMap<String, Vec<u8>>; 3],
}

impl SlotFill<'_> {
    fn bytes(&mut self, which: usize, name: &str) -> serde_json::Result<&[u8]> {
        if !self.done[which].contains_key(name) {
            let map = match which {
                0 => &self.l.domains,
                1 => &self.l.zones,
                _ => &self.l.pools,
            };
            let b = serde_json::to_vec(&Lookups::named(map, name))?;
            self.done[which].insert(name.to_owned(), b);
        }
        Ok(self.done[which].get(name).map_or(&[][..], Vec::as_slice))
    }
}

/// Writes the JSON array of listed rows into `out`: rows with a usable
/// template are pasted together with the current domain, zone and pool;
/// the others are rendered from their model in `models` (by row id). A row
/// in neither is skipped (it was deleted between the two reads).
pub fn write_listing(
    out: &mut Vec<u8>,
    rows: &[ListingRow],
    models: &HashMap<i64, StoredMachine>,
    l: &Lookups,
) -> serde_json::Result<()> {
    let mut fill = SlotFill {
        l,
        done: Default::default(),
    };
    out.push(b'[');
    let mut first = true;
    for row in rows {
        let pieces = row.listing.as_deref().and_then(template_pieces);
        if pieces.is_none() && !models.contains_key(&row.id) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        match (pieces, models.get(&row.id)) {
            (Some([a, b, c, d]), _) => {
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(fill.bytes(0, &row.domain)?);
                out.extend_from_slice(b.as_bytes());
                out.extend_from_slice(fill.bytes(1, &row.zone)?);
                out.extend_from_slice(c.as_bytes());
                out.extend_from_slice(fill.bytes(2, &row.pool)?);
                out.extend_from_slice(d.as_bytes());
            }
            (None, Some(sm)) => serde_json::to_writer(&mut *out, &MachineOut::new(sm, l))?,
            // invariant: rows in neither were skipped above.
            (None, None) => {}
        }
    }
    out.push(b']');
    Ok(())
}

/// The tree-building renderer the typed views replaced, kept as the oracle
/// that proves the views write the same JSON.
#[cfg(test)]
mod oracle {
    use super::*;

    fn named(map: &HashMap<String, Value>, name: &str) -> Value {
        map.get(name).cloned().unwrap_or_else(
            || json!({"id": -1, "name": name, "description": "", "resource_uri": ""}),
        )
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
    pub(super) fn interface_json(m: &Machine, i: &Interface) -> Value {
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
    pub(super) fn blockdevice_json(m: &Machine, d: &BlockDevice) -> Value {
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
    pub(super) fn machine_json(sm: &StoredMachine, l: &Lookups) -> Value {
        let m = &sm.record.machine;
        let x = &sm.record.extra;
        let interfaces: Vec<Value> = m.interfaces.iter().map(|i| interface_json(m, i)).collect();
        let of_kind = |k: Option<BlockDeviceKind>| -> Vec<Value> {
            m.block_devices
                .iter()
                .filter(|d| k.is_none_or(|k| d.kind == k))
                .map(|d| blockdevice_json(m, d))
                .collect()
        };
        let disks = of_kind(None);
        let physical = of_kind(Some(BlockDeviceKind::Physical));
        let virt = of_kind(Some(BlockDeviceKind::Virtual));
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
            "domain": named(&l.domains, &m.domain),
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
            "zone": named(&l.zones, &m.zone),
            "pool": named(&l.pools, &m.pool),
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
}

#[cfg(test)]
mod tests {
    use maas_core::hardware::{InterfaceKind, Link, SubnetRef};
    use maas_core::{PowerState, SystemId};

    use super::*;
    use crate::db::machines::{MachineExtra, MachineRecord};

    fn sample(n: u64) -> StoredMachine {
        let sid = SystemId::from_number(8_000_000 + n).expect("in range");
        let eth0 = Interface {
            id: 1,
            name: "eth0".into(),
            mac: format!("52:54:00:00:00:{n:02x}").parse().expect("mac"),
            enabled: true,
            vlan: Some(VlanRef {
                id: 5001,
                vid: 0,
                name: String::new(),
                fabric: "fabric-0".into(),
                fabric_class: String::new(),
                space: String::new(),
            }),
            links: vec![
                Link {
                    id: 9,
                    mode: LinkMode::Static,
                    subnet: Some(SubnetRef {
                        id: 2,
                        name: "10.0.0.0/24".into(),
                        cidr: "10.0.0.0/24".into(),
                        space: "dmz".into(),
                        ..SubnetRef::default()
                    }),
                    ip: Some("10.0.0.7".parse().expect("ip")),
                },
                Link {
                    id: 10,
                    mode: LinkMode::LinkUp,
                    subnet: None,
                    ip: None,
                },
            ],
            tags: vec!["sriov".into()],
            link_speed: 1000,
            interface_speed: 10000,
            ..Interface::default()
        };
        let vlan10 = Interface {
            id: 2,
            name: "eth0.10".into(),
            kind: InterfaceKind::Vlan,
            mac: eth0.mac,
            parents: vec!["eth0".into()],
            mtu: 9000,
            ..Interface::default()
        };
        let machine = Machine {
            system_id: sid,
            hostname: format!("node{n}"),
            status: NodeStatus::Deploying,
            owner: Some("alice".into()),
            locked: true,
            power_type: "ipmi".into(),
            power_state: PowerState::On,
            architecture: "amd64/generic".into(),
            cpu_count: 6,
            memory_mib: 16384,
            tags: vec!["gpu".into(), "rack1".into()],
            zone: "default".into(),
            pool: "gone".into(),
            domain: "maas".into(),
            osystem: "ubuntu".into(),
            distro_series: "jammy".into(),
            hwe_kernel: Some("ga-22.04".into()),
            block_devices: vec![
                BlockDevice {
                    id: 1,
                    name: "sda".into(),
                    size: 500_000_000_000,
                    block_size: 512,
                    model: "QEMU HARDDISK".into(),
                    serial: "S1".into(),
                    id_path: "/dev/disk/by-id/s1".into(),
                    tags: vec!["ssd".into()],
                    ..BlockDevice::default()
                },
                BlockDevice {
                    id: 2,
                    name: "md0".into(),
                    kind: BlockDeviceKind::Virtual,
                    size: 1_000_000,
                    block_size: 4096,
                    ..BlockDevice::default()
                },
            ],
            interfaces: vec![eth0, vlan10],
            ..Machine::default()
        };
        let mut owner_data = serde_json::Map::new();
        owner_data.insert("juju".into(), json!("yes"));
        StoredMachine {
            id: n as i64,
            version: 3,
            created: 0,
            updated: 0,
            record: MachineRecord {
                machine,
                extra: MachineExtra {
                    description: "a test machine".into(),
                    owner_data,
                    hardware_uuid: "f0e1".into(),
                    status_message: "Deploying".into(),
                    swap_size: Some(1 << 30),
                    cpu_speed: 2400,
                    enable_hw_sync: true,
                    ..MachineExtra::default()
                },
            },
        }
    }

    fn lookups() -> Lookups {
        let mut l = Lookups::default();
        l.zones.insert(
            "default".into(),
            json!({"id": 1, "name": "default", "description": "", "resource_uri": "/MAAS/api/2.0/zones/default/"}),
        );
        l.domains.insert(
            "maas".into(),
            json!({"id": 0, "name": "maas", "ttl": null, "authoritative": true, "is_default": true,
                   "resource_record_count": 0, "resource_uri": "/MAAS/api/2.0/domains/0/"}),
        );
        l
    }

    #[test]
    fn typed_views_write_what_the_tree_renderer_wrote() {
        let l = lookups();
        let sm = sample(7);
        assert_eq!(machine_json(&sm, &l), oracle::machine_json(&sm, &l));
        let m = &sm.record.machine;
        for i in &m.interfaces {
            assert_eq!(interface_json(m, i), oracle::interface_json(m, i));
        }
        for d in &m.block_devices {
            assert_eq!(blockdevice_json(m, d), oracle::blockdevice_json(m, d));
        }
    }

    #[test]
    fn machine_json_has_maas_types() {
        let v = machine_json(&sample(1), &lookups());
        assert_eq!(v["status"], json!(NodeStatus::Deploying.as_int()));
        assert_eq!(
            v["pool"]["id"],
            json!(-1),
            "a deleted pool is a placeholder"
        );
        assert_eq!(v["pool"]["name"], json!("gone"));
        assert_eq!(v["numanode_set"][0]["cores"], json!([0, 1, 2, 3, 4, 5]));
        assert_eq!(v["interface_set"][0]["children"], json!(["eth0.10"]));
        assert_eq!(v["interface_set"][1]["effective_mtu"], json!(9000));
        assert_eq!(v["workload_annotations"], json!({}));
        assert_eq!(v["testing_status_name"], json!("Unknown"));
        assert_eq!(v["ip_addresses"], json!(["10.0.0.7"]));
    }

    fn listing_row(sm: &StoredMachine) -> ListingRow {
        let m = &sm.record.machine;
        ListingRow {
            id: sm.id,
            domain: m.domain.clone(),
            zone: m.zone.clone(),
            pool: m.pool.clone(),
            listing: listing_template(&sm.record),
        }
    }

    #[test]
    fn pasted_templates_are_byte_for_byte_the_rendered_list() {
        let l = lookups();
        let ms: Vec<StoredMachine> = (1..=3).map(sample).collect();
        let rows: Vec<ListingRow> = ms.iter().map(listing_row).collect();
        assert!(rows.iter().all(listing_usable));
        let mut pasted = Vec::new();
        write_listing(&mut pasted, &rows, &HashMap::new(), &l).expect("writes");
        let mut rendered = Vec::new();
        write_machine_list(&mut rendered, &ms, &l).expect("writes");
        assert_eq!(
            String::from_utf8(pasted).expect("utf-8"),
            String::from_utf8(rendered).expect("utf-8")
        );
    }

    #[test]
    fn rows_without_a_usable_template_are_rendered_from_the_model() {
        let l = lookups();
        let ms: Vec<StoredMachine> = (1..=4).map(sample).collect();
        let mut rows: Vec<ListingRow> = ms.iter().map(listing_row).collect();
        rows[0].listing = None;
        rows[1].listing = Some("garbage".into());
        rows[2].listing = rows[2]
            .listing
            .as_ref()
            .map(|t| t.replacen(renderer_tag(), "0000000000000000", 1));
        assert!(!listing_usable(&rows[0]) && !listing_usable(&rows[1]));
        assert!(!listing_usable(&rows[2]) && listing_usable(&rows[3]));
        let models: HashMap<i64, StoredMachine> =
            ms[..3].iter().map(|m| (m.id, m.clone())).collect();
        let mut out = Vec::new();
        write_listing(&mut out, &rows, &models, &l).expect("writes");
        let mut rendered = Vec::new();
        write_machine_list(&mut rendered, &ms, &l).expect("writes");
        assert_eq!(out, rendered);
        // A stale row whose model vanished (deleted meanwhile) is left out.
        let mut out = Vec::new();
        write_listing(&mut out, &rows, &HashMap::new(), &l).expect("writes");
        let parsed: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed, json!([machine_json(&ms[3], &l)]));
    }

    #[test]
    fn a_user_string_equal_to_the_slot_mark_refuses_the_template() {
        let mut sm = sample(1);
        sm.record
            .extra
            .owner_data
            .insert("k".into(), json!(SLOT_MARK));
        assert_eq!(listing_template(&sm.record), None);
        sm.record
            .extra
            .owner_data
            .insert("k".into(), json!("\u{1}"));
        let t = listing_template(&sm.record).expect("templated");
        assert_eq!(t.matches(SLOT).count(), 4, "tag + three slots");
    }

    proptest::proptest! {
        #[test]
        fn stored_listing_parser_never_panics(s in "\\PC{0,64}", n in 0usize..6) {
            let stored = format!("{}{}", renderer_tag(), "\u{1}".repeat(n)) + &s;
            let _ = template_pieces(&stored);
            let _ = template_pieces(&s);
        }

        #[test]
        fn pasting_equals_rendering_for_any_user_text(
            desc in "\\PC{0,24}",
            key in "[a-z\u{1}]{1,6}",
            val in "\\PC{0,24}",
        ) {
            let l = lookups();
            let mut sm = sample(2);
            sm.record.extra.description = desc;
            sm.record.extra.owner_data.insert(key, json!(val));
            let rows = vec![listing_row(&sm)];
            let models: HashMap<i64, StoredMachine> = [(sm.id, sm.clone())].into();
            let mut pasted = Vec::new();
            write_listing(&mut pasted, &rows, &models, &l).expect("writes");
            let mut rendered = Vec::new();
            write_machine_list(&mut rendered, [&sm], &l).expect("writes");
            proptest::prop_assert_eq!(pasted, rendered);
        }
    }

    #[test]
    fn the_renderer_tag_is_stable_within_a_build() {
        assert_eq!(renderer_tag().len(), 16);
        assert_eq!(renderer_tag(), renderer_tag());
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }

    #[test]
    fn the_streamed_list_is_the_array_of_single_renders() {
        let l = lookups();
        let ms: Vec<StoredMachine> = (1..=3).map(sample).collect();
        let mut out = Vec::new();
        write_machine_list(&mut out, &ms, &l).expect("serialises");
        let parsed: Value = serde_json::from_slice(&out).expect("valid JSON");
        let expected: Vec<Value> = ms.iter().map(|m| machine_json(m, &l)).collect();
        assert_eq!(parsed, Value::Array(expected));
        let mut empty = Vec::new();
        write_machine_list(&mut empty, &[], &l).expect("serialises");
        assert_eq!(empty, b"[]");
    }
}
