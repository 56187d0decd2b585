//! Allocation constraints: MAAS's `op=allocate` language, parsed into a typed
//! filter and matched against machines.
//!
//! [`Constraints::parse`] takes the request's key/value pairs (repeated keys
//! allowed) and answers MAAS's 400 errors (`{"<key>": ["No such
//! constraint."]}`); [`Constraints::matches`] checks one machine and returns
//! which block devices and interfaces satisfied the labelled `storage` and
//! `interfaces` constraints (`constraints_by_type`); [`allocate`] picks the
//! cheapest Ready, unowned match (`cpu_count + memory/1024`, then input order).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::hardware::{BlockDevice, Interface, InterfaceKind, LinkMode, SubnetRef};
use crate::machine::Machine;
use crate::status::NodeStatus;

/// Field → messages, as MAAS's 400 body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
pub struct ConstraintError {
    /// Messages per request field.
    pub errors: BTreeMap<String, Vec<String>>,
}

impl ConstraintError {
    fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_default()
            .push(msg.into());
    }
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.join(" ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Keys the allocate form accepts but that do not constrain the choice.
pub const NON_CONSTRAINT_KEYS: [&str; 9] = [
    "comment",
    "bridge_all",
    "bridge_type",
    "bridge_stp",
    "bridge_fd",
    "dry_run",
    "verbose",
    "op",
    "agent_name",
];

/// One `storage` entry: `[label:]size[(tag,…)]`, size in GB (10^9 bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageSpec {
    /// The label (the entry's index when none was given).
    pub label: String,
    /// Minimum size in bytes.
    pub min_bytes: u64,
    /// Tags the device must have.
    pub tags: Vec<String>,
}

/// A subnet specifier: `<id>`, `name:`, `cidr:`, `ip:`, `fabric:`, `space:`,
/// `vid:`, `vlan:`, or a bare name or CIDR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum SubnetSpec {
    /// Database id.
    Id(u64),
    /// Subnet name.
    Name(String),
    /// Exact CIDR.
    Cidr(String),
    /// The subnet containing this address.
    Ip(IpAddr),
    /// Any subnet on this fabric.
    Fabric(String),
    /// Any subnet in this space.
    Space(String),
    /// Any subnet on a VLAN with this VID.
    Vid(u16),
    /// Any subnet on a VLAN with this name.
    Vlan(String),
    /// A bare word: a subnet name or CIDR.
    NameOrCidr(String),
}

/// One labelled `interfaces` entry: `label:key=value,key=value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    /// The label.
    pub label: String,
    /// key → allowed values (OR within a key, AND across keys). Keys may
    /// carry a `not_` prefix.
    pub conditions: BTreeMap<String, Vec<String>>,
}

/// Keys an `interfaces` entry may use (each also as `not_<key>`).
pub const INTERFACE_KEYS: [&str; 15] = [
    "id",
    "fabric",
    "fabric_class",
    "ip",
    "mode",
    "name",
    "hostname",
    "subnet",
    "space",
    "subnet_cidr",
    "type",
    "vlan",
    "vid",
    "tag",
    "link_speed",
];

/// One `devices` entry: `key=value,…` over PCI/USB device fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// key → value (all must match).
    pub conditions: BTreeMap<String, String>,
}

const DEVICE_KEYS: [&str; 5] = [
    "vendor_id",
    "product_id",
    "vendor_name",
    "product_name",
    "commissioning_driver",
];

/// A parsed allocation request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Hostname or FQDN.
    pub name: Option<String>,
    /// Exact system id.
    pub system_id: Option<String>,
    /// Architectures (any of); `amd64` matches every `amd64/…`.
    pub arch: Vec<String>,
    /// Minimum CPU count.
    pub cpu_count: Option<f64>,
    /// Minimum memory in MiB.
    pub mem: Option<f64>,
    /// Tags the machine must all have.
    pub tags: Vec<String>,
    /// Tags it must not have.
    pub not_tags: Vec<String>,
    /// Zone it must be in.
    pub zone: Option<String>,
    /// Zones it must not be in.
    pub not_in_zone: Vec<String>,
    /// Pool it must be in.
    pub pool: Option<String>,
    /// Pools it must not be in.
    pub not_in_pool: Vec<String>,
    /// Subnets it must be linked to (all).
    pub subnets: Vec<SubnetSpec>,
    /// Subnets it must not be linked to.
    pub not_subnets: Vec<SubnetSpec>,
    /// Fabrics (any of).
    pub fabrics: Vec<String>,
    /// Fabrics it must not be on.
    pub not_fabrics: Vec<String>,
    /// Fabric classes (any of).
    pub fabric_classes: Vec<String>,
    /// Fabric classes it must not be on.
    pub not_fabric_classes: Vec<String>,
    /// Labelled storage requirements; the first is the boot disk.
    pub storage: Vec<StorageSpec>,
    /// Labelled interface requirements.
    pub interfaces: Vec<InterfaceSpec>,
    /// PCI/USB device requirements.
    pub devices: Vec<DeviceSpec>,
}

/// Which devices satisfied the labelled constraints (`constraints_by_type`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintsByType {
    /// Storage label → block device ids.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, Vec<u64>>,
    /// Interface label → interface ids.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, Vec<u64>>,
}

fn list_values(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_number(field: &str, values: &[&str], errs: &mut ConstraintError) -> Option<f64> {
    let v = values.last()?.trim();
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Some(n),
        _ => {
            errs.add(
                field,
                format!("Invalid value for {field}: '{v}' is not a non-negative number."),
            );
            None
        }
    }
}

/// Parses the `storage` constraint.
pub fn parse_storage(s: &str) -> Result<Vec<StorageSpec>, String> {
    let bad = |why: &str| format!("Malformed storage constraint '{s}': {why}.");
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // One entry: up to a comma outside parentheses.
        let start = i;
        let mut depth = 0i32;
        while i < bytes.len() && !(bytes[i] == b',' && depth == 0) {
            match bytes[i] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return Err(bad("unbalanced parentheses"));
            }
            i += 1;
        }
        if depth != 0 {
            return Err(bad("unbalanced parentheses"));
        }
        let entry = s[start..i].trim();
        i += 1;
        if entry.is_empty() {
            return Err(bad("empty entry"));
        }
        let (label, rest) = match entry.split_once(':') {
            Some((l, r)) => {
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(bad("labels are letters and digits"));
                }
                (Some(l.to_owned()), r)
            }
            None => (None, entry),
        };
        let (size, tags) = match rest.split_once('(') {
            Some((sz, t)) => {
                let t = t
                    .strip_suffix(')')
                    .ok_or_else(|| bad("tags must end with ')'"))?;
                let tags: Vec<String> = t.split(',').map(|x| x.trim().to_owned()).collect();
                if tags.iter().any(|t| t.is_empty()) {
                    return Err(bad("empty tag"));
                }
                (sz, tags)
            }
            None => (rest, Vec::new()),
        };
        let gb: f64 = size
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0 && !size.contains(['e', 'E', '+', '-']))
            .ok_or_else(|| bad("sizes are numbers of GB"))?;
        let label = label.unwrap_or_else(|| out.len().to_string());
        if out.iter().any(|o: &StorageSpec| o.label == label) {
            return Err(bad(&format!("label '{label}' used twice")));
        }
        out.push(StorageSpec {
            label,
            min_bytes: (gb * 1e9).ceil() as u64,
            tags,
        });
    }
    if out.is_empty() {
        return Err(bad("no entries"));
    }
    Ok(out)
}

/// Parses the `interfaces` constraint.
pub fn parse_interfaces(s: &str) -> Result<Vec<InterfaceSpec>, String> {
    let bad = |why: String| format!("Malformed interfaces constraint '{s}': {why}.");
    let mut out: Vec<InterfaceSpec> = Vec::new();
    for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (label, body) = entry
            .split_once(':')
            .ok_or_else(|| bad(format!("'{entry}' has no label")))?;
        let label = label.trim();
        if label.is_empty()
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(format!("'{label}' is not a valid label")));
        }
        if out.iter().any(|o| o.label == label) {
            return Err(bad(format!("label '{label}' used twice")));
        }
        let mut conditions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for kv in body.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("'{kv}' is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            let base = k.strip_prefix("not_").unwrap_or(k);
            if !INTERFACE_KEYS.contains(&base) {
                return Err(bad(format!("unknown key '{k}'")));
            }
            if v.is_empty() {
                return Err(bad(format!("'{k}' has no value")));
            }
            if matches!(base, "id" | "vid" | "link_speed") && v.parse::<u64>().is_err() {
                return Err(bad(format!("'{k}' must be a number")));
            }
            if base == "ip" && v.parse::<IpAddr>().is_err() {
                return Err(bad(format!("'{v}' is not an IP address")));
            }
            conditions
                .entry(k.to_owned())
                .or_default()
                .push(v.to_owned());
        }
        if conditions.is_empty() {
            return Err(bad(format!("'{label}' has no conditions")));
        }
        out.push(InterfaceSpec {
            label: label.to_owned(),
            conditions,
        });
    }
    if out.is_empty() {
        return Err(bad("no entries".into()));
    }
    Ok(out)
}

/// Parses one subnet specifier.
pub fn parse_subnet_spec(s: &str) -> Result<SubnetSpec, String> {
    let s = s.trim();
    let bad = || format!("Invalid subnet specifier: '{s}'.");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(id) = s.parse::<u64>() {
        return Ok(SubnetSpec::Id(id));
    }
    let Some((k, v)) = s.split_once(':').filter(|(k, _)| {
        matches!(
            *k,
            "id" | "name" | "cidr" | "ip" | "fabric" | "space" | "vid" | "vlan"
        )
    }) else {
        // Bare words (IPv6 CIDRs contain ':' too).
        return Ok(SubnetSpec::NameOrCidr(s.to_owned()));
    };
    if v.is_empty() {
        return Err(bad());
    }
    Ok(match k {
        "id" => SubnetSpec::Id(v.parse().map_err(|_| bad())?),
        "name" => SubnetSpec::Name(v.to_owned()),
        "cidr" => {
            parse_cidr(v).ok_or_else(bad)?;
            SubnetSpec::Cidr(v.to_owned())
        }
        "ip" => SubnetSpec::Ip(v.parse().map_err(|_| bad())?),
        "fabric" => SubnetSpec::Fabric(v.to_owned()),
        "space" => SubnetSpec::Space(v.to_owned()),
        "vid" => SubnetSpec::Vid(v.parse().ok().filter(|n| *n <= 4094).ok_or_else(bad)?),
        _ => SubnetSpec::Vlan(v.to_owned()),
    })
}

fn parse_device_spec(s: &str) -> Result<DeviceSpec, String> {
    let mut conditions = BTreeMap::new();
    for kv in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("Malformed device constraint '{s}'."))?;
        if !DEVICE_KEYS.contains(&k.trim()) {
            return Err(format!("Unknown device key '{k}' in '{s}'."));
        }
        conditions.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if conditions.is_empty() {
        return Err(format!("Malformed device constraint '{s}'."));
    }
    Ok(DeviceSpec { conditions })
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: IpAddr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, prefix)) = parse_cidr(cidr) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl Constraints {
    /// Parses allocate parameters. Keys may repeat; list-valued keys also
    /// accept comma-separated values.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> Result<Self, ConstraintError> {
        let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in params {
            by_key.entry(k.as_ref()).or_default().push(v.as_ref());
        }
        let mut c = Constraints::default();
        let mut errs = ConstraintError::default();
        for (key, values) in &by_key {
            let last = values
                .last()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty());
            match *key {
                k if NON_CONSTRAINT_KEYS.contains(&k) => {}
                "name" => c.name = last,
                "system_id" => c.system_id = last,
                "arch" => c.arch = list_values(values),
                "cpu_count" => c.cpu_count = parse_number(key, values, &mut errs),
                "mem" => c.mem = parse_number(key, values, &mut errs),
                "tags" => c.tags = list_values(values),
                "not_tags" => c.not_tags = list_values(values),
                "zone" => c.zone = last,
                "not_in_zone" => c.not_in_zone = list_values(values),
                "pool" => c.pool = last,
                "not_in_pool" => c.not_in_pool = list_values(values),
                "fabrics" => c.fabrics = list_values(values),
                "not_fabrics" => c.not_fabrics = list_values(values),
                "fabric_classes" => c.fabric_classes = list_values(values),
                "not_fabric_classes" => c.not_fabric_classes = list_values(values),
                "subnets" | "not_subnets" => {
                    let mut specs = Vec::new();
                    for v in list_values(values) {
                        match parse_subnet_spec(&v) {
                            Ok(s) => specs.push(s),
                            Err(e) => errs.add(key, e),
                        }
                    }
                    if *key == "subnets" {
                        c.subnets = specs
                    } else {
                        c.not_subnets = specs
                    }
                }
                "storage" => {
                    if let Some(v) = last {
                        match parse_storage(&v) {
                            Ok(s) => c.storage = s,
                            Err(e) => errs.add(key, e),
                        }
                    }
                }
                "interfaces" => {
                    if let Some(v) = last {
                        match parse_interfaces(&v) {
                            Ok(s) => c.interfaces = s,
                            Err(e) => errs.add(key, e),
                        }
                    }
                }
                "devices" => {
                    for v in values.iter().filter(|v| !v.trim().is_empty()) {
                        match parse_device_spec(v) {
                            Ok(d) => c.devices.push(d),
                            Err(e) => errs.add(key, e),
                        }
                    }
                }
                other => errs.add(other, "No such constraint."),
            }
        }
        if errs.errors.is_empty() {
            Ok(c)
        } else {
            Err(errs)
        }
    }

    /// Checks that named tags, zones and pools exist, as MAAS does before
    /// matching (`No such tag(s)`, `No such zone`, `No such pool`).
    pub fn validate_names(
        &self,
        tags: &[&str],
        zones: &[&str],
        pools: &[&str],
    ) -> Result<(), ConstraintError> {
        let mut errs = ConstraintError::default();
        let missing: Vec<&str> = self
            .tags
            .iter()
            .chain(&self.not_tags)
            .map(String::as_str)
            .filter(|t| !tags.contains(t))
            .collect();
        if !missing.is_empty() {
            let quoted: Vec<String> = missing.iter().map(|t| format!("'{t}'")).collect();
            errs.add("tags", format!("No such tag(s): {}.", quoted.join(", ")));
        }
        for (field, z) in self
            .zone
            .iter()
            .map(|z| ("zone", z))
            .chain(self.not_in_zone.iter().map(|z| ("not_in_zone", z)))
        {
            if !zones.contains(&z.as_str()) {
                errs.add(field, format!("No such zone: '{z}'."));
            }
        }
        for (field, p) in self
            .pool
            .iter()
            .map(|p| ("pool", p))
            .chain(self.not_in_pool.iter().map(|p| ("not_in_pool", p)))
        {
            if !pools.contains(&p.as_str()) {
                errs.add(field, format!("No such pool: '{p}'."));
            }
        }
        if errs.errors.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// Whether `m` satisfies every constraint (status and owner are not
    /// checked here; see [`allocate`]), with the matched labelled devices.
    pub fn matches(&self, m: &Machine) -> Option<ConstraintsByType> {
        if let Some(n) = &self.name {
            let ok = match n.split_once('.') {
                Some((host, domain)) => m.hostname == host && m.domain == domain,
                None => m.hostname == *n,
            };
            if !ok {
                return None;
            }
        }
        if self
            .system_id
            .as_ref()
            .is_some_and(|s| s != m.system_id.as_str())
        {
            return None;
        }
        if !self.arch.is_empty() && !self.arch.iter().any(|a| arch_matches(a, &m.architecture)) {
            return None;
        }
        if self.cpu_count.is_some_and(|c| (m.cpu_count as f64) < c) {
            return None;
        }
        if self.mem.is_some_and(|mem| (m.memory_mib as f64) < mem) {
            return None;
        }
        if !self.tags.iter().all(|t| m.tags.contains(t))
            || self.not_tags.iter().any(|t| m.tags.contains(t))
        {
            return None;
        }
        if self.zone.as_ref().is_some_and(|z| *z != m.zone) || self.not_in_zone.contains(&m.zone) {
            return None;
        }
        if self.pool.as_ref().is_some_and(|p| *p != m.pool) || self.not_in_pool.contains(&m.pool) {
            return None;
        }
        let fabrics: Vec<&str> = m
            .interfaces
            .iter()
            .filter_map(|i| i.vlan.as_ref())
            .map(|v| v.fabric.as_str())
            .collect();
        let classes: Vec<&str> = m
            .interfaces
            .iter()
            .filter_map(|i| i.vlan.as_ref())
            .map(|v| v.fabric_class.as_str())
            .collect();
        if !self.fabrics.is_empty() && !self.fabrics.iter().any(|f| fabrics.contains(&f.as_str())) {
            return None;
        }
        if self
            .not_fabrics
            .iter()
            .any(|f| fabrics.contains(&f.as_str()))
        {
            return None;
        }
        if !self.fabric_classes.is_empty()
            && !self
                .fabric_classes
                .iter()
                .any(|f| classes.contains(&f.as_str()))
        {
            return None;
        }
        if self
            .not_fabric_classes
            .iter()
            .any(|f| classes.contains(&f.as_str()))
        {
            return None;
        }
        if !self
            .subnets
            .iter()
            .all(|s| m.interfaces.iter().any(|i| iface_on_subnet(i, s)))
        {
            return None;
        }
        if self
            .not_subnets
            .iter()
            .any(|s| m.interfaces.iter().any(|i| iface_on_subnet(i, s)))
        {
            return None;
        }
        if !self.devices.iter().all(|d| {
            m.devices.iter().any(|dev| {
                d.conditions.iter().all(|(k, v)| {
                    let have = match k.as_str() {
                        "vendor_id" => &dev.vendor_id,
                        "product_id" => &dev.product_id,
                        "vendor_name" => &dev.vendor_name,
                        "product_name" => &dev.product_name,
                        _ => &dev.commissioning_driver,
                    };
                    have.eq_ignore_ascii_case(v)
                })
            })
        }) {
            return None;
        }
        let mut by_type = ConstraintsByType::default();
        if !self.storage.is_empty() {
            by_type.storage = match_storage(&self.storage, m)?;
        }
        if !self.interfaces.is_empty() {
            by_type.interfaces = match_interfaces(&self.interfaces, m)?;
        }
        Some(by_type)
    }
}

fn arch_matches(want: &str, have: &str) -> bool {
    match want.split_once('/') {
        Some(_) => want == have,
        None => have.split('/').next() == Some(want),
    }
}

fn subnet_matches(s: &SubnetRef, iface: &Interface, spec: &SubnetSpec) -> bool {
    let vlan = iface.vlan.as_ref();
    match spec {
        SubnetSpec::Id(id) => s.id == *id,
        SubnetSpec::Name(n) => s.name == *n,
        SubnetSpec::Cidr(c) => s.cidr == *c,
        SubnetSpec::Ip(ip) => cidr_contains(&s.cidr, *ip),
        SubnetSpec::Fabric(f) => vlan.is_some_and(|v| v.fabric == *f),
        SubnetSpec::Space(sp) => s.space == *sp,
        SubnetSpec::Vid(vid) => vlan.is_some_and(|v| v.vid == *vid),
        SubnetSpec::Vlan(name) => vlan.is_some_and(|v| v.name == *name),
        SubnetSpec::NameOrCidr(x) => s.name == *x || s.cidr == *x,
    }
}

fn iface_on_subnet(i: &Interface, spec: &SubnetSpec) -> bool {
    i.links
        .iter()
        .filter_map(|l| l.subnet.as_ref())
        .any(|s| subnet_matches(s, i, spec))
}

fn disk_fits(d: &BlockDevice, s: &StorageSpec) -> bool {
    d.size >= s.min_bytes && s.tags.iter().all(|t| d.tags.contains(t))
}

/// Assigns each spec a distinct device (backtracking; specs and devices are few).
fn assign<T>(
    specs: usize,
    cands: &[T],
    fits: &dyn Fn(usize, &T) -> bool,
    used: &mut Vec<usize>,
) -> bool {
    let k = used.len();
    if k == specs {
        return true;
    }
    for (j, c) in cands.iter().enumerate() {
        if !used.contains(&j) && fits(k, c) {
            used.push(j);
            if assign(specs, cands, fits, used) {
                return true;
            }
            used.pop();
        }
    }
    false
}

fn match_storage(specs: &[StorageSpec], m: &Machine) -> Option<BTreeMap<String, Vec<u64>>> {
    // The first entry is the boot disk; the others distinct other disks,
    // smallest suitable first so large disks stay free for larger asks.
    let boot = m.boot_disk()?;
    if !disk_fits(boot, &specs[0]) {
        return None;
    }
    let mut others: Vec<&BlockDevice> = m
        .physical_disks()
        .into_iter()
        .filter(|d| d.id != boot.id)
        .collect();
    others.sort_by_key(|d| (d.size, d.id));
    let rest = &specs[1..];
    let mut used = Vec::new();
    if !assign(
        rest.len(),
        &others,
        &|k, d: &&BlockDevice| disk_fits(d, &rest[k]),
        &mut used,
    ) {
        return None;
    }
    let mut out = BTreeMap::new();
    out.insert(specs[0].label.clone(), vec![boot.id]);
    for (k, j) in used.iter().enumerate() {
        out.insert(rest[k].label.clone(), vec![others[*j].id]);
    }
    Some(out)
}

fn iface_condition(i: &Interface, m: &Machine, key: &str, value: &str) -> bool {
    let vlan = i.vlan.as_ref();
    let subnets = || i.links.iter().filter_map(|l| l.subnet.as_ref());
    match key {
        "id" => value.parse::<u64>().is_ok_and(|id| i.id == id),
        "name" => i.name == value,
        "hostname" => m.hostname == value,
        "fabric" => vlan.is_some_and(|v| v.fabric == value),
        "fabric_class" => vlan.is_some_and(|v| v.fabric_class == value),
        "ip" => value
            .parse::<IpAddr>()
            .is_ok_and(|ip| i.links.iter().any(|l| l.ip == Some(ip))),
        "mode" => match value {
            "unconfigured" => i.links.iter().all(|l| l.mode == LinkMode::LinkUp),
            other => i.links.iter().any(|l| {
                matches!(
                    (other, l.mode),
                    ("auto", LinkMode::Auto)
                        | ("dhcp", LinkMode::Dhcp)
                        | ("static", LinkMode::Static)
                        | ("link_up", LinkMode::LinkUp)
                )
            }),
        },
        "subnet" => parse_subnet_spec(value).is_ok_and(|spec| iface_on_subnet(i, &spec)),
        "subnet_cidr" => subnets().any(|s| s.cidr == value),
        "space" => vlan.is_some_and(|v| v.space == value) || subnets().any(|s| s.space == value),
        "type" => {
            i.kind.as_str() == value || (value == "physical" && i.kind == InterfaceKind::Physical)
        }
        "vlan" => vlan.is_some_and(|v| {
            v.name == value
                || value
                    .strip_prefix("vid:")
                    .is_some_and(|x| x == v.vid.to_string())
        }),
        "vid" => vlan.is_some_and(|v| value.parse::<u16>().is_ok_and(|n| n == v.vid)),
        "tag" => i.tags.iter().any(|t| t == value),
        "link_speed" => value.parse::<u64>().is_ok_and(|s| i.link_speed >= s),
        _ => false,
    }
}

fn iface_fits(i: &Interface, m: &Machine, spec: &InterfaceSpec) -> bool {
    spec.conditions
        .iter()
        .all(|(k, values)| match k.strip_prefix("not_") {
            Some(base) => !values.iter().any(|v| iface_condition(i, m, base, v)),
            None => values.iter().any(|v| iface_condition(i, m, k, v)),
        })
}

fn match_interfaces(specs: &[InterfaceSpec], m: &Machine) -> Option<BTreeMap<String, Vec<u64>>> {
    let ifaces: Vec<&Interface> = m
        .interfaces
        .iter()
        .filter(|i| i.enabled || i.kind != InterfaceKind::Physical)
        .collect();
    let mut used = Vec::new();
    if !assign(
        specs.len(),
        &ifaces,
        &|k, i: &&Interface| iface_fits(i, m, &specs[k]),
        &mut used,
    ) {
        return None;
    }
    Some(
        used.iter()
            .enumerate()
            .map(|(k, j)| (specs[k].label.clone(), vec![ifaces[*j].id]))
            .collect(),
    )
}

/// MAAS's allocation cost: cheaper machines are handed out first.
pub fn cost(m: &Machine) -> f64 {
    m.cpu_count as f64 + m.memory_mib as f64 / 1024.0
}

/// Picks the cheapest Ready, unowned machine matching `c`, with its
/// `constraints_by_type`; `None` means MAAS's 409.
pub fn allocate<'a>(
    c: &Constraints,
    machines: impl IntoIterator<Item = &'a Machine>,
) -> Option<(&'a Machine, ConstraintsByType)> {
    let mut best: Option<(&Machine, ConstraintsByType)> = None;
    for m in machines {
        if m.status != NodeStatus::Ready || m.owner.is_some() || m.locked {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| cost(m) >= cost(b)) {
            continue;
        }
        if let Some(by_type) = c.matches(m) {
            best = Some((m, by_type));
        }
    }
    best
}

#[cfg(test)]
mod tests;
