//! `lshw -xml` → hardware facts.
//!
//! MAAS's builtin commissioning script `00-maas-01-lshw` uploads lshw's XML
//! tree. This module owns reading it: the system's vendor, product, version
//! and serial; the logical CPU count (enabled processors, each counting its
//! `threads`, else `cores`, else one), model and clock; the system memory;
//! disks that lshw could size; and NICs with an Ethernet address. lshw
//! nests `node` elements; both its bare `<node>` root and the `<list>`
//! wrapper newer versions print are accepted.
//!
//! Pure and total: malformed XML or impossible numbers are an
//! [`Error::Commissioning`], never a panic.

use roxmltree::{Document, Node};
use serde::{Deserialize, Serialize};

use super::commissioning::{CpuInfo, NicReport};
use super::{BlockDevice, BlockDeviceKind};
use crate::error::{Error, Result};
use crate::ids::MacAddress;

/// What one lshw tree says.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LshwReport {
    /// The system's vendor (empty when lshw gives none, as in most VMs).
    pub vendor: String,
    /// The system's product name.
    pub product: String,
    /// The system's version.
    pub version: String,
    /// The system's serial number.
    pub serial: String,
    /// Processors, when lshw saw any.
    pub cpu: Option<CpuInfo>,
    /// System memory in MiB, when lshw sized it.
    pub memory_mib: Option<u64>,
    /// Disks with a `/dev` name and a size (ids 0).
    pub disks: Vec<BlockDevice>,
    /// NICs with an Ethernet address.
    pub nics: Vec<NicReport>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Commissioning {
        script: "lshw".into(),
        reason: reason.into(),
    }
}

fn is_node(n: &Node<'_, '_>) -> bool {
    n.is_element() && n.has_tag_name("node")
}

/// The text of `n`'s direct child element `tag`, trimmed.
fn child_text(n: Node<'_, '_>, tag: &str) -> Option<String> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name(tag))
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// A direct child's number (`<size units="bytes">123</size>`).
fn child_number(n: Node<'_, '_>, tag: &str) -> Result<Option<u64>> {
    match child_text(n, tag) {
        None => Ok(None),
        Some(t) => t
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad(format!("<{tag}> is not a whole number: {t:?}"))),
    }
}

/// A `<configuration><setting id=… value=…/>` value.
fn setting(n: Node<'_, '_>, id: &str) -> Option<String> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name("configuration"))?
        .children()
        .find(|s| s.is_element() && s.has_tag_name("setting") && s.attribute("id") == Some(id))
        .and_then(|s| s.attribute("value"))
        .map(|v| v.trim().to_owned())
}

fn class_is(n: &Node<'_, '_>, class: &str) -> bool {
    n.attribute("class") == Some(class)
}

fn disabled(n: &Node<'_, '_>) -> bool {
    n.attribute("disabled") == Some("true")
}

/// Parses `lshw -xml` output.
pub fn parse_lshw(xml: &str) -> Result<LshwReport> {
    let doc = Document::parse(xml).map_err(|e| bad(e.to_string()))?;
    let root = doc.root_element();
    if !(root.has_tag_name("node") || root.has_tag_name("list")) {
        return Err(bad(format!(
            "the root element is <{}>, not lshw's <node> or <list>",
            root.tag_name().name()
        )));
    }
    let nodes: Vec<Node<'_, '_>> = root.descendants().filter(is_node).collect();
    if nodes.is_empty() {
        return Err(bad("no <node> elements"));
    }
    let mut r = LshwReport::default();
    if let Some(sys) = nodes.iter().find(|n| class_is(n, "system")) {
        r.vendor = child_text(*sys, "vendor").unwrap_or_default();
        r.product = child_text(*sys, "product").unwrap_or_default();
        r.version = child_text(*sys, "version").unwrap_or_default();
        r.serial = child_text(*sys, "serial").unwrap_or_default();
    }

    let cpus: Vec<_> = nodes
        .iter()
        .filter(|n| class_is(n, "processor") && !disabled(n))
        .collect();
    if let Some(first) = cpus.first() {
        let mut count: u32 = 0;
        for c in &cpus {
            let n = match setting(**c, "threads").or_else(|| setting(**c, "cores")) {
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| bad(format!("processor threads/cores {v:?}")))?,
                None => 1,
            };
            count = count.saturating_add(n.max(1));
        }
        let hz = match child_number(**first, "size")? {
            Some(h) => Some(h),
            None => child_number(**first, "capacity")?,
        };
        r.cpu = Some(CpuInfo {
            count,
            model: child_text(**first, "product").unwrap_or_else(|| "Unknown".into()),
            speed_mhz: hz.map_or(0, |h| h / 1_000_000),
        });
    }

    // System memory: `memory` nodes (not caches, which are class memory
    // too, nor banks below them).
    let mut mem_bytes: Option<u64> = None;
    for n in nodes.iter().filter(|n| {
        class_is(n, "memory") && n.attribute("id").is_some_and(|i| i.starts_with("memory"))
    }) {
        if let Some(b) = child_number(*n, "size")? {
            mem_bytes = Some(mem_bytes.unwrap_or(0).saturating_add(b));
        }
    }
    r.memory_mib = mem_bytes.map(|b| b / (1024 * 1024));

    for n in nodes.iter().filter(|n| class_is(n, "disk")) {
        let Some(dev) = n
            .children()
            .filter(|c| c.is_element() && c.has_tag_name("logicalname"))
            .filter_map(|c| c.text())
            .find_map(|t| t.trim().strip_prefix("/dev/").map(str::to_owned))
        else {
            continue;
        };
        // CD-ROMs and unsized devices (lshw cannot size every virtio
        // disk) are left to lsblk.
        let size = child_number(*n, "size")?.unwrap_or(0);
        if size == 0 || dev.is_empty() || dev.contains('/') || dev.starts_with("sr") {
            continue;
        }
        let block_size = match setting(*n, "logicalsectorsize") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad(format!("{dev}: logical sector size {v:?}")))?,
            None => 512,
        };
        r.disks.push(BlockDevice {
            id: 0,
            name: dev.clone(),
            kind: BlockDeviceKind::Physical,
            size,
            block_size,
            model: child_text(*n, "product").unwrap_or_default(),
            serial: child_text(*n, "serial").unwrap_or_default(),
            id_path: format!("/dev/{dev}"),
            tags: Vec::new(),
        });
    }

    for n in nodes
        .iter()
        .filter(|n| class_is(n, "network") && !disabled(n))
    {
        let (Some(name), Some(serial)) = (child_text(*n, "logicalname"), child_text(*n, "serial"))
        else {
            continue;
        };
        // InfiniBand GUIDs and the like are not Ethernet addresses.
        let Ok(mac) = serial.parse::<MacAddress>() else {
            continue;
        };
        if r.nics.iter().any(|o| o.mac == mac) {
            continue;
        }
        r.nics.push(NicReport {
            name,
            mac,
            mtu: 1500,
            addresses: Vec::new(),
        });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `lshw -xml` as Debian 12's lshw printed it on this project's build VM.
    const VM: &str = include_str!("../../tests/fixtures/lshw/debian12-vm.xml");

    #[test]
    fn reads_a_real_vm_tree() {
        let r = parse_lshw(VM).unwrap();
        let cpu = r.cpu.clone().unwrap();
        assert_eq!(cpu.count, 1);
        assert_eq!(cpu.model, "Intel(R) Xeon(R) Processor");
        assert_eq!(r.memory_mib, Some(24 * 1024));
        // The virtio disk has no size in lshw: left to lsblk.
        assert!(r.disks.is_empty(), "{:?}", r.disks);
        assert_eq!(r.nics.len(), 1);
        assert_eq!(r.nics[0].name, "eth0");
        assert_eq!(r.nics[0].mac.to_string(), "02:fc:00:00:00:01");
    }

    #[test]
    fn a_server_tree_gives_threads_memory_disks_and_nics() {
        let xml = r#"<?xml version="1.0" standalone="yes" ?>
<list>
<node id="srv" claimed="true" class="system">
 <product>PowerEdge R640</product><vendor>Dell Inc.</vendor><serial>ABC123</serial>
 <node id="core" class="bus">
  <node id="cpu:0" class="processor"><product>Xeon Gold 6130</product>
   <size units="Hz">2100000000</size>
   <configuration><setting id="cores" value="16" /><setting id="threads" value="32" /></configuration>
  </node>
  <node id="cpu:1" class="processor"><product>Xeon Gold 6130</product>
   <configuration><setting id="cores" value="16" /></configuration>
  </node>
  <node id="cpu:2" class="processor" disabled="true"><product>spare</product></node>
  <node id="cache:0" class="memory"><size units="bytes">1048576</size></node>
  <node id="memory" class="memory"><size units="bytes">68719476736</size>
   <node id="bank:0" class="memory"><size units="bytes">34359738368</size></node>
  </node>
  <node id="disk" class="disk"><product>SSD 860</product><serial>S1</serial>
   <logicalname>/dev/sda</logicalname><size units="bytes">500107862016</size>
   <configuration><setting id="logicalsectorsize" value="4096" /></configuration>
  </node>
  <node id="cdrom" class="disk"><logicalname>/dev/sr0</logicalname></node>
  <node id="network:0" class="network"><logicalname>eno1</logicalname><serial>AA:BB:CC:00:11:22</serial></node>
  <node id="network:1" class="network"><logicalname>ib0</logicalname><serial>80:00:02:08:fe:80:00:00:00:00</serial></node>
 </node>
</node>
</list>"#;
        let r = parse_lshw(xml).unwrap();
        assert_eq!(
            (r.vendor.as_str(), r.product.as_str()),
            ("Dell Inc.", "PowerEdge R640")
        );
        assert_eq!(r.serial, "ABC123");
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.count, cpu.speed_mhz), (48, 2100));
        assert_eq!(r.memory_mib, Some(64 * 1024));
        assert_eq!(r.disks.len(), 1);
        assert_eq!(
            (
                r.disks[0].name.as_str(),
                r.disks[0].size,
                r.disks[0].block_size
            ),
            ("sda", 500_107_862_016, 4096)
        );
        assert_eq!(r.nics.len(), 1);
        assert_eq!(r.nics[0].mac.to_string(), "aa:bb:cc:00:11:22");
    }

    #[test]
    fn malformed_trees_are_errors() {
        for bad_xml in [
            "",
            "not xml",
            "<html/>",
            "<node",
            "<list></list>",
            r#"<node class="system"><node class="memory" id="memory"><size>lots</size></node></node>"#,
            r#"<node class="system"><node class="processor"><configuration><setting id="threads" value="-1"/></configuration></node></node>"#,
        ] {
            assert!(parse_lshw(bad_xml).is_err(), "{bad_xml}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse_lshw(&s);
            let _ = parse_lshw(&format!("<node class=\"system\">{s}</node>"));
        }

        #[test]
        fn round_trips_generated_trees(
            threads in proptest::collection::vec(1u32..256, 1..4),
            mem_mib in 1u64..(1 << 24),
            disks in proptest::collection::vec(1u64..(1 << 50), 0..4),
            macs in proptest::collection::btree_set(any::<[u8; 6]>(), 0..4),
        ) {
            let mut xml = String::from("<node id=\"s\" class=\"system\"><product>P</product>");
            for t in &threads {
                xml += &format!("<node id=\"cpu\" class=\"processor\"><configuration><setting id=\"threads\" value=\"{t}\"/></configuration></node>");
            }
            xml += &format!("<node id=\"memory\" class=\"memory\"><size units=\"bytes\">{}</size></node>", mem_mib * 1024 * 1024);
            for (i, d) in disks.iter().enumerate() {
                xml += &format!("<node id=\"disk\" class=\"disk\"><logicalname>/dev/sd{}</logicalname><size units=\"bytes\">{d}</size></node>", (b'a' + i as u8) as char);
            }
            for (i, m) in macs.iter().enumerate() {
                let mac: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
                xml += &format!("<node id=\"network\" class=\"network\"><logicalname>eth{i}</logicalname><serial>{}</serial></node>", mac.join(":"));
            }
            xml += "</node>";
            let r = parse_lshw(&xml).unwrap();
            prop_assert_eq!(r.cpu.unwrap().count, threads.iter().sum::<u32>());
            prop_assert_eq!(r.memory_mib, Some(mem_mib));
            prop_assert_eq!(r.disks.iter().map(|d| d.size).collect::<Vec<_>>(), disks);
            prop_assert_eq!(r.nics.len(), macs.len());
        }
    }
}
