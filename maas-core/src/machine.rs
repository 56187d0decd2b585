//! The machine as the life-cycle sees it: plain data, no behaviour beyond
//! small accessors. Persistence and API shapes live in `maas-server`.

use serde::{Deserialize, Serialize};

use crate::boot::BootMethod;
use crate::hardware::{BlockDevice, BlockDeviceKind, Device, Interface};
use crate::ids::SystemId;
use crate::status::{NodeStatus, NodeType, PowerState};
use crate::storage::Storage;
use crate::time::Timestamp;

/// A node MAAS manages. Deserialising fills absent fields from
/// [`Machine::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Machine {
    /// The system id.
    pub system_id: SystemId,
    /// Hostname (without domain).
    pub hostname: String,
    /// Machine, device or controller.
    pub node_type: NodeType,
    /// Current life-cycle status.
    pub status: NodeStatus,
    /// The status before the current operation (testing, rescue, broken
    /// return here).
    pub previous_status: NodeStatus,
    /// Username of the owner, if allocated.
    pub owner: Option<String>,
    /// A locked machine refuses every change except unlock.
    pub locked: bool,
    /// Power driver name (`ipmi`, `redfish`, `manual`, …); empty when unset.
    pub power_type: String,
    /// Last known power state.
    pub power_state: PowerState,
    /// `arch/subarch`, such as `amd64/generic`; empty when unknown.
    pub architecture: String,
    /// Firmware boot method.
    pub boot_method: BootMethod,
    /// CPU count.
    pub cpu_count: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Tag names.
    pub tags: Vec<String>,
    /// Zone name.
    pub zone: String,
    /// Resource pool name.
    pub pool: String,
    /// DNS domain name.
    pub domain: String,
    /// Deployed (or deploying) OS, empty when none.
    pub osystem: String,
    /// Deployed (or deploying) release, empty when none.
    pub distro_series: String,
    /// HWE kernel chosen at deploy time.
    pub hwe_kernel: Option<String>,
    /// Whether the machine should netboot (false once the installer finished).
    pub netboot: bool,
    /// Deploy to memory instead of disk.
    pub ephemeral_deploy: bool,
    /// Enlisted by itself: successful commissioning returns it to NEW.
    pub enlisting: bool,
    /// Whether commissioning last finished successfully (release and test
    /// from NEW depend on it).
    pub commissioned: bool,
    /// Last failure or broken reason.
    pub error_description: String,
    /// When the current operation times out, if one is running.
    pub status_expires: Option<Timestamp>,
    /// Agent that allocated the machine (Juju sets it).
    pub agent_name: String,
    /// Block devices.
    pub block_devices: Vec<BlockDevice>,
    /// The chosen boot disk; the first physical disk by id when unset.
    pub boot_disk_id: Option<u64>,
    /// Network interfaces.
    pub interfaces: Vec<Interface>,
    /// PCI and USB devices.
    pub devices: Vec<Device>,
    /// How the block devices are used: partitions, filesystems, LVM, RAID,
    /// bcache (see [`crate::storage`]).
    pub storage: Storage,
    /// The link (by id) whose subnet gateway is the IPv4 default route; the
    /// best candidate is chosen when unset (see [`crate::network`]).
    pub gateway_link_ipv4: Option<u64>,
    /// The link (by id) whose subnet gateway is the IPv6 default route.
    pub gateway_link_ipv6: Option<u64>,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            system_id: SystemId::from_number(crate::ids::SYSTEM_ID_MIN)
                .expect("invariant: minimum is in range"),
            hostname: String::new(),
            node_type: NodeType::Machine,
            status: NodeStatus::New,
            previous_status: NodeStatus::New,
            owner: None,
            locked: false,
            power_type: String::new(),
            power_state: PowerState::Unknown,
            architecture: String::new(),
            boot_method: BootMethod::Pxe,
            cpu_count: 0,
            memory_mib: 0,
            tags: Vec::new(),
            zone: "default".into(),
            pool: "default".into(),
            domain: "maas".into(),
            osystem: String::new(),
            distro_series: String::new(),
            hwe_kernel: None,
            netboot: true,
            ephemeral_deploy: false,
            enlisting: false,
            commissioned: false,
            error_description: String::new(),
            status_expires: None,
            agent_name: String::new(),
            block_devices: Vec::new(),
            boot_disk_id: None,
            interfaces: Vec::new(),
            devices: Vec::new(),
            storage: Storage::default(),
            gateway_link_ipv4: None,
            gateway_link_ipv6: None,
        }
    }
}

impl Machine {
    /// `hostname.domain`.
    pub fn fqdn(&self) -> String {
        if self.domain.is_empty() {
            self.hostname.clone()
        } else {
            format!("{}.{}", self.hostname, self.domain)
        }
    }

    /// The architecture without its subarchitecture (`amd64` of `amd64/generic`).
    pub fn arch(&self) -> &str {
        self.architecture.split('/').next().unwrap_or_default()
    }

    /// Physical block devices, by id.
    pub fn physical_disks(&self) -> Vec<&BlockDevice> {
        let mut v: Vec<&BlockDevice> = self
            .block_devices
            .iter()
            .filter(|d| d.kind == BlockDeviceKind::Physical)
            .collect();
        v.sort_by_key(|d| d.id);
        v
    }

    /// The boot disk: the chosen one, else the first physical disk by id.
    pub fn boot_disk(&self) -> Option<&BlockDevice> {
        match self.boot_disk_id {
            Some(id) => self.block_devices.iter().find(|d| d.id == id),
            None => self.physical_disks().into_iter().next(),
        }
    }

    /// Total size of physical disks in MB (10^6 bytes), the API's `storage`.
    pub fn storage_mb(&self) -> f64 {
        self.physical_disks()
            .iter()
            .map(|d| d.size as f64)
            .sum::<f64>()
            / 1e6
    }

    /// Whether the power driver can report the power state. `manual` (and an
    /// unset type) cannot, so releases finish without waiting for "off".
    pub fn power_queryable(&self) -> bool {
        power_type_queryable(&self.power_type)
    }
}

/// Whether a power type can be queried (everything but `manual` and unset).
pub fn power_type_queryable(power_type: &str) -> bool {
    !matches!(power_type, "" | "manual")
}
