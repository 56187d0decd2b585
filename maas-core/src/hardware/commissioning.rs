//! Commissioning output → the hardware model.
//!
//! The ephemeral environment runs the builtin commissioning scripts and
//! uploads each one's output through the metadata API's `op=signal`. This
//! module owns what those scripts are ([`BUILTIN_SCRIPTS`]: plain Linux tools
//! whose output is stable and machine-readable — `/proc/cpuinfo`,
//! `/proc/meminfo`, `lsblk -J`, `ip -j -d addr`, `lspci -nnmm`, `lsusb` —
//! plus MAAS's own `lshw -xml`, read by [`super::lshw`]), the
//! parsers for each output, and [`apply`], which merges a
//! [`HardwareReport`] into a [`Machine`]: CPU count, memory, disks, NICs and
//! PCI/USB devices, keeping the ids (and so the configuration hanging off
//! them) of disks and NICs that are still there.
//!
//! Everything here is pure; every parser refuses malformed input with
//! [`Error::Commissioning`] instead of panicking.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lshw::{LshwReport, parse_lshw};
use super::{BlockDevice, BlockDeviceKind, Device, Interface, InterfaceKind, VlanRef};
use crate::error::{Error, Result};
use crate::ids::MacAddress;
use crate::machine::Machine;

/// One builtin commissioning script: its name (as results are keyed) and
/// the shell command the ephemeral environment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinScript {
    /// Script name, as the result file is named when uploaded.
    pub name: &'static str,
    /// Shell command whose standard output is the result.
    pub command: &'static str,
    /// What the output feeds.
    pub kind: OutputKind,
}

/// Which parser reads a script's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// `/proc/cpuinfo`.
    CpuInfo,
    /// `/proc/meminfo`.
    MemInfo,
    /// `lsblk -J -b -d -o NAME,SIZE,MODEL,SERIAL,TYPE,RO,ROTA,LOG-SEC`.
    Lsblk,
    /// `ip -j -d addr`.
    IpAddr,
    /// `lspci -nnmm` (empty without a PCI bus or pciutils).
    Lspci,
    /// `lsusb` (empty without a USB bus or usbutils).
    Lsusb,
    /// `lshw -xml` (MAAS's `00-maas-01-lshw`; empty without lshw).
    Lshw,
}

/// The builtin commissioning scripts, in run order.
pub const BUILTIN_SCRIPTS: &[BuiltinScript] = &[
    BuiltinScript {
        name: "00-maas-01-cpuinfo",
        command: "cat /proc/cpuinfo",
        kind: OutputKind::CpuInfo,
    },
    BuiltinScript {
        name: "00-maas-01-lshw",
        command: "lshw -xml 2>/dev/null || true",
        kind: OutputKind::Lshw,
    },
    BuiltinScript {
        name: "00-maas-02-meminfo",
        command: "cat /proc/meminfo",
        kind: OutputKind::MemInfo,
    },
    BuiltinScript {
        name: "00-maas-07-block-devices",
        command: "lsblk -J -b -d -o NAME,SIZE,MODEL,SERIAL,TYPE,RO,ROTA,LOG-SEC",
        kind: OutputKind::Lsblk,
    },
    BuiltinScript {
        name: "00-maas-08-ip-addr",
        command: "ip -j -d addr",
        kind: OutputKind::IpAddr,
    },
    BuiltinScript {
        name: "00-maas-09-pci-devices",
        command: "lspci -nnmm 2>/dev/null || true",
        kind: OutputKind::Lspci,
    },
    BuiltinScript {
        name: "00-maas-10-usb-devices",
        command: "lsusb 2>/dev/null || true",
        kind: OutputKind::Lsusb,
    },
];

/// The parser for an uploaded result named `name` (`.out`/`.err`/`.yaml`
/// suffixes MAAS's runner adds are ignored), if it is a builtin script.
pub fn output_kind(name: &str) -> Option<OutputKind> {
    let base = name
        .strip_suffix(".out")
        .or_else(|| name.strip_suffix(".err"))
        .unwrap_or(name);
    BUILTIN_SCRIPTS
        .iter()
        .find(|s| s.name == base)
        .map(|s| s.kind)
}

fn bad(script: &str, reason: impl Into<String>) -> Error {
    Error::Commissioning {
        script: script.to_owned(),
        reason: reason.into(),
    }
}

/// What `/proc/cpuinfo` says.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CpuInfo {
    /// Logical CPUs (`processor` entries).
    pub count: u32,
    /// Model name of the first CPU (`Unknown` when the kernel gives none).
    pub model: String,
    /// Clock of the first CPU in MHz, 0 when unknown.
    pub speed_mhz: u64,
}

/// Parses `/proc/cpuinfo` (x86 `model name`/`cpu MHz`; other
/// architectures give at least `processor` lines).
pub fn parse_cpuinfo(text: &str) -> Result<CpuInfo> {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => info.count += 1,
            "model name" | "Model Name" if info.model.is_empty() => info.model = v.to_owned(),
            "cpu MHz" if info.speed_mhz == 0 => {
                info.speed_mhz = v.parse::<f64>().map(|f| f.round() as u64).unwrap_or(0);
            }
            _ => {}
        }
    }
    if info.count == 0 {
        return Err(bad("cpuinfo", "no `processor` entries"));
    }
    if info.model.is_empty() {
        info.model = "Unknown".into();
    }
    Ok(info)
}

/// Parses `/proc/meminfo`; returns `MemTotal` in MiB.
pub fn parse_meminfo(text: &str) -> Result<u64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("MemTotal:") {
            let mut it = rest.split_whitespace();
            let n: u64 = it
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad("meminfo", "MemTotal is not a number"))?;
            let kib = match it.next() {
                None | Some("kB") => n,
                Some(u) => return Err(bad("meminfo", format!("unknown unit {u:?}"))),
            };
            return Ok(kib / 1024);
        }
    }
    Err(bad("meminfo", "no MemTotal line"))
}

/// lsblk prints numbers as JSON numbers (util-linux ≥ 2.33 with `-b`) or
/// strings (older), and booleans as bools, `"0"`/`"1"` or 0/1.
fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").trim().to_owned()
}

/// Parses `lsblk -J -b -d -o NAME,SIZE,MODEL,SERIAL,TYPE,RO,ROTA,LOG-SEC`:
/// writable whole disks become block devices (tagged `rotary` or `ssd` as
/// MAAS does), ids left 0 for [`apply`] to assign.
pub fn parse_lsblk(json: &str) -> Result<Vec<BlockDevice>> {
    let v: Value = serde_json::from_str(json).map_err(|e| bad("lsblk", e.to_string()))?;
    let devs = v
        .get("blockdevices")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("lsblk", "no `blockdevices` array"))?;
    let mut out = Vec::new();
    for d in devs {
        let name = text(d.get("name"));
        if name.is_empty() || name.contains('/') {
            return Err(bad("lsblk", "a device without a valid name"));
        }
        // MAAS ignores CD-ROMs, loop and RAM devices (zram too), read-only
        // media and empty devices.
        if text(d.get("type")) != "disk"
            || d.get("ro").and_then(num) == Some(1)
            || name.starts_with("zram")
        {
            continue;
        }
        let size = d
            .get("size")
            .and_then(num)
            .ok_or_else(|| bad("lsblk", format!("{name}: size is not a number of bytes")))?;
        if size == 0 {
            continue;
        }
        let rotary = d.get("rota").and_then(num) == Some(1);
        out.push(BlockDevice {
            id: 0,
            name: name.clone(),
            kind: BlockDeviceKind::Physical,
            size,
            block_size: d.get("log-sec").and_then(num).unwrap_or(512),
            model: text(d.get("model")),
            serial: text(d.get("serial")),
            id_path: format!("/dev/{name}"),
            tags: vec![if rotary { "rotary" } else { "ssd" }.to_owned()],
        });
    }
    Ok(out)
}

/// One network interface as `ip -j addr` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicReport {
    /// Kernel name (`eth0`, `enp1s0`).
    pub name: String,
    /// Hardware address.
    pub mac: MacAddress,
    /// MTU.
    pub mtu: u32,
    /// Addresses with prefix length.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// Parses `ip -j -d addr`: physical Ethernet interfaces with their MAC,
/// MTU and addresses. Loopback and tunnels (no Ethernet address) and
/// virtual links (`linkinfo.info_kind`: bridges, bonds, VLANs, veth, ifb …,
/// which MAAS models itself or ignores) are skipped.
pub fn parse_ip_addr(json: &str) -> Result<Vec<NicReport>> {
    let v: Value = serde_json::from_str(json).map_err(|e| bad("ip addr", e.to_string()))?;
    let links = v
        .as_array()
        .ok_or_else(|| bad("ip addr", "expected a JSON array of links"))?;
    let mut out = Vec::new();
    for l in links {
        let virtual_kind = l
            .get("linkinfo")
            .and_then(|li| li.get("info_kind"))
            .is_some_and(|k| k.as_str().is_some_and(|k| !k.is_empty()));
        if text(l.get("link_type")) != "ether" || virtual_kind {
            continue;
        }
        let name = text(l.get("ifname"));
        let mac: MacAddress = text(l.get("address"))
            .parse()
            .map_err(|_| bad("ip addr", format!("{name}: bad hardware address")))?;
        let mut addresses = Vec::new();
        for a in l
            .get("addr_info")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let (Ok(ip), Some(p)) = (
                text(a.get("local")).parse::<IpAddr>(),
                a.get("prefixlen").and_then(num),
            ) {
                addresses.push((ip, u8::try_from(p).unwrap_or(0)));
            }
        }
        out.push(NicReport {
            name,
            mac,
            mtu: l
                .get("mtu")
                .and_then(num)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1500),
            addresses,
        });
    }
    Ok(out)
}

/// Splits `Name [abcd]` into (`Name`, `abcd`).
fn name_and_id(field: &str) -> (String, String) {
    let f = field.trim();
    if let Some(open) = f.rfind(" [")
        && f.ends_with(']')
    {
        let id = &f[open + 2..f.len() - 1];
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return (f[..open].trim().to_owned(), id.to_ascii_lowercase());
        }
    }
    (f.to_owned(), String::new())
}

/// The quoted fields of one `lspci -mm` line.
fn quoted_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    for ch in line.chars() {
        match (ch, inside) {
            ('"', false) => inside = true,
            ('"', true) => {
                out.push(std::mem::take(&mut cur));
                inside = false;
            }
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// Parses `lspci -nnmm`: `slot "class [cc]" "vendor [vvvv]" "device
/// [dddd]" …`. Lines that are not in that shape are skipped.
pub fn parse_lspci(text: &str) -> Vec<Device> {
    text.lines()
        .filter_map(|line| {
            let f = quoted_fields(line);
            if f.len() < 3 {
                return None;
            }
            let (vendor_name, vendor_id) = name_and_id(&f[1]);
            let (product_name, product_id) = name_and_id(&f[2]);
            (!vendor_id.is_empty() && !product_id.is_empty()).then_some(Device {
                vendor_id,
                product_id,
                vendor_name,
                product_name,
                commissioning_driver: String::new(),
            })
        })
        .collect()
}

/// Parses `lsusb`: `Bus 001 Device 002: ID 1d6b:0002 Linux Foundation 2.0
/// root hub`.
pub fn parse_lsusb(text: &str) -> Vec<Device> {
    text.lines()
        .filter_map(|line| {
            let rest = line.split_once(" ID ")?.1;
            let (ids, name) = rest.split_once(' ').unwrap_or((rest, ""));
            let (v, p) = ids.split_once(':')?;
            let hex4 = |s: &str| s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit());
            if !hex4(v) || !hex4(p) {
                return None;
            }
            Some(Device {
                vendor_id: v.to_ascii_lowercase(),
                product_id: p.to_ascii_lowercase(),
                vendor_name: String::new(),
                product_name: name.trim().to_owned(),
                commissioning_driver: String::new(),
            })
        })
        .collect()
}

/// Everything the commissioning outputs of one run told us; `None` where
/// the corresponding script did not report.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardwareReport {
    /// From `/proc/cpuinfo`.
    pub cpu: Option<CpuInfo>,
    /// From `/proc/meminfo`, MiB.
    pub memory_mib: Option<u64>,
    /// From `lsblk`.
    pub disks: Option<Vec<BlockDevice>>,
    /// From `ip addr`.
    pub nics: Option<Vec<NicReport>>,
    /// From `lspci`.
    pub pci: Option<Vec<Device>>,
    /// From `lsusb`.
    pub usb: Option<Vec<Device>>,
    /// From `lshw -xml`: fills whatever the dedicated outputs above did
    /// not report (see [`HardwareReport::effective`]).
    #[serde(default)]
    pub lshw: Option<LshwReport>,
}

impl HardwareReport {
    /// Reads one uploaded output. Returns whether `name` is a builtin
    /// hardware script (others are stored but not parsed).
    pub fn add_output(&mut self, name: &str, data: &[u8]) -> Result<bool> {
        let Some(kind) = output_kind(name) else {
            return Ok(false);
        };
        if name.ends_with(".err") {
            return Ok(true);
        }
        let s = std::str::from_utf8(data).map_err(|_| bad(name, "output is not UTF-8"))?;
        match kind {
            OutputKind::CpuInfo => self.cpu = Some(parse_cpuinfo(s)?),
            OutputKind::MemInfo => self.memory_mib = Some(parse_meminfo(s)?),
            OutputKind::Lsblk => self.disks = Some(parse_lsblk(s)?),
            OutputKind::IpAddr => self.nics = Some(parse_ip_addr(s)?),
            OutputKind::Lspci => self.pci = Some(parse_lspci(s)),
            OutputKind::Lsusb => self.usb = Some(parse_lsusb(s)),
            // No lshw on the machine: nothing to say.
            OutputKind::Lshw if s.trim().is_empty() => {}
            OutputKind::Lshw => self.lshw = Some(parse_lshw(s)?),
        }
        Ok(true)
    }

    /// Drops lshw's facts that a dedicated output already reported in the
    /// same run (`reported(kind)`): outputs arrive one signal at a time, and
    /// the precise ones must win whatever the upload order.
    pub fn yield_to(&mut self, reported: &dyn Fn(OutputKind) -> bool) {
        if let Some(l) = &mut self.lshw {
            if reported(OutputKind::CpuInfo) {
                l.cpu = None;
            }
            if reported(OutputKind::MemInfo) {
                l.memory_mib = None;
            }
            if reported(OutputKind::Lsblk) {
                l.disks.clear();
            }
            if reported(OutputKind::IpAddr) {
                l.nics.clear();
            }
        }
    }

    /// The report with lshw's facts filling what the dedicated outputs
    /// (cpuinfo, meminfo, lsblk, ip addr) did not report: those are more
    /// precise (lshw cannot size every disk nor see MTUs), lshw is what
    /// MAAS's own ephemeral environment uploads.
    pub fn effective(&self) -> HardwareReport {
        let mut r = self.clone();
        if let Some(l) = &self.lshw {
            if r.cpu.is_none() {
                r.cpu = l.cpu.clone();
            }
            if r.memory_mib.is_none() {
                r.memory_mib = l.memory_mib;
            }
            if r.disks.is_none() && !l.disks.is_empty() {
                r.disks = Some(l.disks.clone());
            }
            if r.nics.is_none() && !l.nics.is_empty() {
                r.nics = Some(l.nics.clone());
            }
        }
        r
    }

    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        *self == HardwareReport::default()
    }
}

/// Which id space a new object's id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// Block devices.
    BlockDevice,
    /// Interfaces.
    Interface,
}

/// MACs that [`apply`] added to or removed from the machine (the caller
/// keeps its MAC registry in step).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MacChanges {
    /// Newly seen.
    pub added: Vec<MacAddress>,
    /// No longer present.
    pub removed: Vec<MacAddress>,
}

/// Merges `report` into `m`. Disks are matched by name and NICs by MAC so
/// their ids survive re-commissioning; new ones get ids from `next_id` and
/// new NICs sit on `default_vlan`. A vanished disk invalidates the storage
/// configuration, which is cleared (the default layout is applied next).
pub fn apply(
    report: &HardwareReport,
    m: &mut Machine,
    default_vlan: Option<&VlanRef>,
    next_id: &mut dyn FnMut(IdKind) -> Result<u64>,
) -> Result<MacChanges> {
    let report = &report.effective();
    if let Some(cpu) = &report.cpu {
        m.cpu_count = cpu.count;
    }
    if let Some(mem) = report.memory_mib {
        m.memory_mib = mem;
    }
    if let Some(disks) = &report.disks {
        let mut new = Vec::with_capacity(disks.len());
        for d in disks {
            let mut d = d.clone();
            match m.block_devices.iter().find(|o| o.name == d.name) {
                Some(old) => {
                    d.id = old.id;
                    // User tags stay; the rotary/ssd tag comes from the report.
                    for t in &old.tags {
                        if !d.tags.contains(t) && t != "rotary" && t != "ssd" {
                            d.tags.push(t.clone());
                        }
                    }
                }
                None => d.id = next_id(IdKind::BlockDevice)?,
            }
            new.push(d);
        }
        let gone = m
            .block_devices
            .iter()
            .any(|o| !new.iter().any(|n| n.id == o.id));
        if gone {
            m.storage = Default::default();
        }
        if m.boot_disk_id
            .is_some_and(|id| !new.iter().any(|n| n.id == id))
        {
            m.boot_disk_id = None;
        }
        m.block_devices = new;
    }
    let mut changes = MacChanges::default();
    // A report without any physical NIC is not believed: the machine
    // reached us over one.
    if let Some(nics) = report.nics.as_ref().filter(|n| !n.is_empty()) {
        let mut new: Vec<Interface> = Vec::new();
        for n in nics {
            if new.iter().any(|i| i.mac == n.mac) {
                continue;
            }
            match m
                .interfaces
                .iter()
                .find(|i| i.kind == InterfaceKind::Physical && i.mac == n.mac)
            {
                Some(old) => {
                    let mut i = old.clone();
                    i.name = n.name.clone();
                    i.mtu = n.mtu;
                    new.push(i);
                }
                None => {
                    changes.added.push(n.mac);
                    new.push(Interface {
                        id: next_id(IdKind::Interface)?,
                        name: n.name.clone(),
                        kind: InterfaceKind::Physical,
                        mac: n.mac,
                        enabled: true,
                        vlan: default_vlan.cloned(),
                        mtu: n.mtu,
                        ..Default::default()
                    });
                }
            }
        }
        // Bonds, bridges and VLANs the user built stay; physical NICs that
        // were not reported are gone.
        for old in &m.interfaces {
            if old.kind != InterfaceKind::Physical {
                new.push(old.clone());
            } else if !new.iter().any(|i| i.mac == old.mac) {
                changes.removed.push(old.mac);
            }
        }
        m.interfaces = new;
    }
    if report.pci.is_some() || report.usb.is_some() {
        m.devices = report
            .pci
            .iter()
            .chain(report.usb.iter())
            .flatten()
            .cloned()
            .collect();
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\ncpu MHz\t\t: 2399.998\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\ncpu MHz\t\t: 2400.100\n";

    #[test]
    fn cpuinfo_counts_processors_and_reads_the_first_model() {
        let c = parse_cpuinfo(CPUINFO).unwrap();
        assert_eq!(c.count, 2);
        assert_eq!(c.model, "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz");
        assert_eq!(c.speed_mhz, 2400);
        let arm = parse_cpuinfo("processor : 0\nBogoMIPS : 50.00\nprocessor : 1\n").unwrap();
        assert_eq!((arm.count, arm.model.as_str()), (2, "Unknown"));
        assert!(parse_cpuinfo("garbage").is_err());
    }

    #[test]
    fn meminfo_gives_mib() {
        assert_eq!(
            parse_meminfo("MemTotal:        8148024 kB\nMemFree: 1 kB\n").unwrap(),
            7957
        );
        assert!(parse_meminfo("MemFree: 1 kB").is_err());
        assert!(parse_meminfo("MemTotal: lots kB").is_err());
    }

    #[test]
    fn lsblk_keeps_writable_disks_with_numbers_or_strings() {
        let j = r#"{"blockdevices":[
          {"name":"sda","size":107374182400,"model":"QEMU HARDDISK ","serial":"QM0001","type":"disk","ro":false,"rota":true,"log-sec":512},
          {"name":"nvme0n1","size":"512110190592","model":"Samsung SSD","serial":"S1","type":"disk","ro":"0","rota":"0","log-sec":"4096"},
          {"name":"zram0","size":0,"type":"disk","ro":false,"rota":false},
          {"name":"sr0","size":1073741312,"type":"rom","ro":false,"rota":true},
          {"name":"loop0","size":1000,"type":"loop","ro":true,"rota":false}
        ]}"#;
        let d = parse_lsblk(j).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "sda");
        assert_eq!(d[0].size, 107_374_182_400);
        assert_eq!(d[0].model, "QEMU HARDDISK");
        assert_eq!(d[0].tags, vec!["rotary"]);
        assert_eq!(d[1].block_size, 4096);
        assert_eq!(d[1].tags, vec!["ssd"]);
        assert!(parse_lsblk(r#"{"blockdevices":[{"name":"sda","type":"disk"}]}"#).is_err());
        assert!(parse_lsblk("[]").is_err());
    }

    #[test]
    fn ip_addr_keeps_ethernet_links() {
        let j = r#"[{"ifindex":1,"ifname":"lo","mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
          {"ifindex":3,"ifname":"ifb0","mtu":1500,"link_type":"ether","address":"06:e6:b9:eb:69:42","linkinfo":{"info_kind":"ifb"}},
          {"ifindex":2,"ifname":"enp1s0","mtu":1500,"link_type":"ether","address":"52:54:00:12:34:56","addr_info":[{"family":"inet","local":"10.0.0.5","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let n = parse_ip_addr(j).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].name, "enp1s0");
        assert_eq!(n[0].mac.colon(), "52:54:00:12:34:56");
        assert_eq!(n[0].addresses.len(), 2);
        assert_eq!(n[0].addresses[0], ("10.0.0.5".parse().unwrap(), 24));
    }

    #[test]
    fn lspci_and_lsusb_give_ids_and_names() {
        let pci = parse_lspci(
            "00:00.0 \"Host bridge [0600]\" \"Intel Corporation [8086]\" \"440FX - 82441FX PMC [Natoma] [1237]\" -r02 \"Red Hat, Inc. [1af4]\" \"Qemu virtual machine [1100]\"\nnonsense\n",
        );
        assert_eq!(pci.len(), 1);
        assert_eq!(pci[0].vendor_id, "8086");
        assert_eq!(pci[0].product_id, "1237");
        assert_eq!(pci[0].product_name, "440FX - 82441FX PMC [Natoma]");
        let usb = parse_lsusb("Bus 001 Device 001: ID 1d6b:0002 Linux Foundation 2.0 root hub\n");
        assert_eq!(usb[0].vendor_id, "1d6b");
        assert_eq!(usb[0].product_name, "Linux Foundation 2.0 root hub");
    }

    #[test]
    fn apply_keeps_ids_of_known_disks_and_nics() {
        let mac: MacAddress = "52:54:00:12:34:56".parse().unwrap();
        let mut m = Machine {
            block_devices: vec![BlockDevice {
                id: 7,
                name: "sda".into(),
                tags: vec!["fast".into()],
                ..Default::default()
            }],
            boot_disk_id: Some(7),
            interfaces: vec![Interface {
                id: 3,
                name: "eth0".into(),
                mac,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut r = HardwareReport::default();
        assert!(
            r.add_output("00-maas-01-cpuinfo", CPUINFO.as_bytes())
                .unwrap()
        );
        assert!(
            r.add_output(
                "00-maas-07-block-devices",
                br#"{"blockdevices":[{"name":"sda","size":1000,"type":"disk","rota":"1"},{"name":"sdb","size":2000,"type":"disk","rota":"0"}]}"#
            )
            .unwrap()
        );
        assert!(
            r.add_output(
                "00-maas-08-ip-addr",
                br#"[{"ifname":"enp1s0","mtu":9000,"link_type":"ether","address":"52:54:00:12:34:56"},{"ifname":"enp2s0","link_type":"ether","address":"52:54:00:00:00:02"}]"#
            )
            .unwrap()
        );
        assert!(!r.add_output("my-script", b"anything").unwrap());
        let mut n = 100;
        let changes = apply(&r, &mut m, None, &mut |_| {
            n += 1;
            Ok(n)
        })
        .unwrap();
        assert_eq!(m.cpu_count, 2);
        assert_eq!(m.block_devices[0].id, 7);
        assert_eq!(m.block_devices[0].tags, vec!["rotary", "fast"]);
        assert_eq!(m.block_devices[1].id, 101);
        assert_eq!(m.boot_disk_id, Some(7));
        assert_eq!(m.interfaces[0].id, 3);
        assert_eq!(m.interfaces[0].name, "enp1s0");
        assert_eq!(m.interfaces[0].mtu, 9000);
        assert_eq!(m.interfaces[1].id, 102);
        assert_eq!(changes.added.len(), 1);
        assert!(changes.removed.is_empty());
    }

    #[test]
    fn lshw_fills_what_the_dedicated_outputs_did_not_report() {
        let lshw = include_bytes!("../../tests/fixtures/lshw/debian12-vm.xml");
        let mut r = HardwareReport::default();
        assert!(r.add_output("00-maas-01-lshw", lshw).unwrap());
        // Empty output (no lshw on the machine) is no report, not an error.
        let mut none = HardwareReport::default();
        assert!(none.add_output("00-maas-01-lshw", b"\n").unwrap());
        assert!(none.is_empty());

        let mut m = Machine::default();
        let mut next = 0;
        let mut next_id = |_k: IdKind| -> Result<u64> {
            next += 1;
            Ok(next)
        };
        let changes = apply(&r, &mut m, None, &mut next_id).unwrap();
        assert_eq!((m.cpu_count, m.memory_mib), (1, 24 * 1024));
        assert_eq!(m.interfaces.len(), 1);
        assert_eq!(m.interfaces[0].name, "eth0");
        assert_eq!(changes.added.len(), 1);

        // cpuinfo and meminfo are more precise and win whatever the order.
        r.add_output("00-maas-01-cpuinfo", CPUINFO.as_bytes())
            .unwrap();
        r.add_output("00-maas-02-meminfo", b"MemTotal: 2048000 kB\n")
            .unwrap();
        apply(&r, &mut m, None, &mut next_id).unwrap();
        assert_eq!((m.cpu_count, m.memory_mib), (2, 2000));
        assert!(r.add_output("00-maas-01-lshw", b"<node").is_err());

        // lshw uploaded alone after cpuinfo and meminfo in the same run
        // leaves their facts alone but still gives what they do not cover.
        let mut late = HardwareReport::default();
        late.add_output("00-maas-01-lshw", lshw).unwrap();
        late.yield_to(&|k| matches!(k, OutputKind::CpuInfo | OutputKind::MemInfo));
        let e = late.effective();
        assert_eq!((e.cpu, e.memory_mib), (None, None));
        assert_eq!(e.nics.map(|n| n.len()), Some(1));
        apply(&late, &mut m, None, &mut next_id).unwrap();
        assert_eq!((m.cpu_count, m.memory_mib), (2, 2000));
    }

    #[test]
    fn bad_output_is_an_error_not_a_panic() {
        let mut r = HardwareReport::default();
        assert!(r.add_output("00-maas-02-meminfo", &[0xff, 0xfe]).is_err());
        assert!(r.add_output("00-maas-08-ip-addr", b"{").is_err());
        // stderr of a known script is accepted and ignored.
        assert!(r.add_output("00-maas-08-ip-addr.err", b"{").unwrap());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,400}") {
            let _ = parse_cpuinfo(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_lsblk(&s);
            let _ = parse_ip_addr(&s);
            let _ = parse_lspci(&s);
            let _ = parse_lsusb(&s);
        }

        #[test]
        fn lsblk_round_trips_sizes(size in 1u64..u64::MAX / 2, rota in any::<bool>(), name in "sd[a-z]{1,3}") {
            let j = serde_json::json!({"blockdevices":[{"name": name, "size": size, "type": "disk", "ro": false, "rota": rota}]});
            let d = parse_lsblk(&j.to_string()).unwrap();
            prop_assert_eq!(d.len(), 1);
            prop_assert_eq!(d[0].size, size);
            prop_assert_eq!(&d[0].tags[0], if rota { "rotary" } else { "ssd" });
        }

        #[test]
        fn meminfo_round_trips(kib in 0u64..(1u64 << 50)) {
            prop_assert_eq!(parse_meminfo(&format!("MemTotal: {kib} kB\n")).unwrap(), kib / 1024);
        }
    }
}
