//! Server configuration: the subnets we serve, their dynamic ranges and the
//! options we hand out, plus global lease times (MAAS defaults).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use maas_core::MacAddress;

use crate::{Error, Result};

/// Whether we hand out addresses or only the netboot part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A normal, authoritative DHCP server (MAAS's "managed" subnets).
    #[default]
    Authoritative,
    /// proxyDHCP (PXE spec §2.2.5): another server hands out addresses; we
    /// answer PXE clients' DISCOVERs with an OFFER carrying no address, only
    /// the boot server and file. We never NAK and never allocate.
    Proxy,
}

/// An inclusive range of addresses handed out dynamically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    start: Ipv4Addr,
    end: Ipv4Addr,
}

impl AddrRange {
    /// `start..=end`; refuses an empty range.
    pub fn new(start: Ipv4Addr, end: Ipv4Addr) -> Result<Self> {
        if u32::from(start) > u32::from(end) {
            return Err(Error::DhcpConfig(format!(
                "range {start}-{end} is empty (start after end)"
            )));
        }
        Ok(Self { start, end })
    }

    /// First address.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }

    /// Last address.
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }

    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (u32::from(self.start)..=u32::from(self.end)).contains(&u32::from(addr))
    }

    /// Number of addresses.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.end) - u32::from(self.start)) + 1
    }

    /// Never true (ranges are not empty); here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A static address for a known machine (MAAS `host` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The machine's interface.
    pub mac: MacAddress,
    /// The address it always gets.
    pub addr: Ipv4Addr,
    /// Option 12, if set.
    pub hostname: Option<String>,
}

/// One subnet we serve, with what clients on it are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// The network, e.g. 192.0.2.0/24 (gives option 1 and option 28).
    pub network: Ipv4Net,
    /// Dynamic ranges (MAAS "dynamic" IP ranges).
    pub ranges: Vec<AddrRange>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 119.
    pub domain_search: Vec<String>,
    /// Option 42.
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 26, sent only when not 1500 (as MAAS does).
    pub mtu: u16,
    /// Lease time override for this subnet, seconds.
    pub lease_time: Option<u32>,
}

impl Subnet {
    /// A subnet with no ranges and no options.
    pub fn new(network: Ipv4Net) -> Self {
        Self {
            network: network.trunc(),
            ranges: Vec::new(),
            routers: Vec::new(),
            dns_servers: Vec::new(),
            domain_name: None,
            domain_search: Vec::new(),
            ntp_servers: Vec::new(),
            mtu: 1500,
            lease_time: None,
        }
    }

    /// Adds a dynamic range; it must lie inside the network and not cover
    /// the network or broadcast address.
    pub fn add_range(&mut self, start: Ipv4Addr, end: Ipv4Addr) -> Result<&mut Self> {
        let r = AddrRange::new(start, end)?;
        let net = self.network;
        if !net.contains(&start) || !net.contains(&end) {
            return Err(Error::DhcpConfig(format!(
                "range {start}-{end} is not inside {net}"
            )));
        }
        if net.prefix_len() < 31 && (r.contains(net.network()) || r.contains(net.broadcast())) {
            return Err(Error::DhcpConfig(format!(
                "range {start}-{end} covers the network or broadcast address of {net}"
            )));
        }
        if let Some(o) = self
            .ranges
            .iter()
            .find(|o| o.contains(start) || o.contains(end) || r.contains(o.start))
        {
            return Err(Error::DhcpConfig(format!(
                "range {start}-{end} overlaps {}-{}",
                o.start, o.end
            )));
        }
        self.ranges.push(r);
        Ok(self)
    }

    /// Whether `addr` is in one of the dynamic ranges.
    pub fn in_ranges(&self, addr: Ipv4Addr) -> bool {
        self.ranges.iter().any(|r| r.contains(addr))
    }
}

/// Everything the handler needs to know that does not change per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Our address on the served interface: option 54 and, by default, the
    /// boot server (`siaddr`, "next-server").
    pub server_ip: Ipv4Addr,
    /// Where loaders and HTTP boot files come from (MAAS: the rack); defaults
    /// to `server_ip`.
    pub boot_server: Ipv4Addr,
    /// The rack's HTTP port (MAAS: 5248).
    pub http_port: u16,
    /// Authoritative or proxyDHCP.
    pub mode: Mode,
    /// The subnets served.
    pub subnets: Vec<Subnet>,
    /// Lease time for ordinary clients, seconds (MAAS global default: 600).
    pub default_lease: u32,
    /// Lease time for PXE firmware (vendor class `PXEClient…`), seconds (MAAS: 30).
    pub pxe_lease: u32,
    /// How long an OFFER holds an address for the client, seconds.
    pub offer_hold: u32,
    /// How long a DECLINEd address is kept out of use, seconds.
    pub decline_hold: u32,
}

impl DhcpConfig {
    /// MAAS's defaults around the given server address and subnets.
    pub fn new(server_ip: Ipv4Addr, subnets: Vec<Subnet>) -> Self {
        Self {
            server_ip,
            boot_server: server_ip,
            http_port: 5248,
            mode: Mode::Authoritative,
            subnets,
            default_lease: 600,
            pxe_lease: 30,
            offer_hold: 60,
            decline_hold: 3600,
        }
    }

    /// Checks the configuration as a whole.
    pub fn validate(&self) -> Result<()> {
        if self.mode == Mode::Authoritative && self.subnets.is_empty() {
            return Err(Error::DhcpConfig("no subnet to serve".into()));
        }
        for (i, a) in self.subnets.iter().enumerate() {
            for b in &self.subnets[i + 1..] {
                if a.network.contains(&b.network.network())
                    || b.network.contains(&a.network.network())
                {
                    return Err(Error::DhcpConfig(format!(
                        "subnets {} and {} overlap",
                        a.network, b.network
                    )));
                }
            }
        }
        if self.default_lease < 10 || self.pxe_lease < 10 {
            return Err(Error::DhcpConfig("lease times below 10 s".into()));
        }
        Ok(())
    }

    /// The subnet containing `addr`.
    pub fn subnet_for(&self, addr: Ipv4Addr) -> Option<(usize, &Subnet)> {
        self.subnets
            .iter()
            .enumerate()
            .find(|(_, s)| s.network.contains(&addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Subnet {
        Subnet::new("10.0.0.0/24".parse().unwrap())
    }

    #[test]
    fn ranges_are_checked() {
        let mut s = net();
        assert!(
            s.add_range([10, 0, 0, 10].into(), [10, 0, 0, 20].into())
                .is_ok()
        );
        assert!(
            s.add_range([10, 0, 0, 15].into(), [10, 0, 0, 30].into())
                .is_err()
        );
        assert!(
            s.add_range([10, 0, 0, 5].into(), [10, 0, 0, 40].into())
                .is_err()
        );
        assert!(
            s.add_range([10, 0, 1, 1].into(), [10, 0, 1, 5].into())
                .is_err()
        );
        assert!(
            s.add_range([10, 0, 0, 0].into(), [10, 0, 0, 5].into())
                .is_err()
        );
        assert!(
            s.add_range([10, 0, 0, 50].into(), [10, 0, 0, 40].into())
                .is_err()
        );
        assert_eq!(s.ranges.len(), 1);
        assert_eq!(s.ranges[0].len(), 11);
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let a = net();
        let b = Subnet::new("10.0.0.128/25".parse().unwrap());
        let c = DhcpConfig::new([10, 0, 0, 1].into(), vec![a, b]);
        assert!(c.validate().is_err());
        assert!(
            DhcpConfig::new([10, 0, 0, 1].into(), vec![])
                .validate()
                .is_err()
        );
        assert!(
            DhcpConfig::new([10, 0, 0, 1].into(), vec![net()])
                .validate()
                .is_ok()
        );
    }
}
