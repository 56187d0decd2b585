//! The lease table: who holds which address until when, and address
//! allocation from a subnet's dynamic ranges.
//!
//! Lookups are hash maps by MAC and by address, and each range keeps a
//! cursor to the next address never tried, so a new allocation costs O(1)
//! on average however many leases are held (dnsmasq's cost grows with the
//! table). Only when every address has been used once does allocation scan
//! for expired or released leases.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use maas_core::{MacAddress, Timestamp};

use super::config::Subnet;

/// Where a lease stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Offered, not yet requested: held for the client for a short while.
    Offered,
    /// Acknowledged: the client owns the address until `expires`.
    Bound,
    /// Released by the client: free, but remembered for the same client.
    Released,
    /// Declined (someone else uses it): out of use until `expires`.
    Declined,
}

impl LeaseState {
    /// One-letter tag used in the lease log.
    pub fn tag(self) -> char {
        match self {
            Self::Offered => 'O',
            Self::Bound => 'B',
            Self::Released => 'R',
            Self::Declined => 'D',
        }
    }

    /// The state for a log tag.
    pub fn from_tag(c: char) -> Option<Self> {
        Some(match c {
            'O' => Self::Offered,
            'B' => Self::Bound,
            'R' => Self::Released,
            'D' => Self::Declined,
            _ => return None,
        })
    }
}

/// One address's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub addr: Ipv4Addr,
    /// Who holds (or last held) it; all-zero for a declined address.
    pub mac: MacAddress,
    /// Where it stands.
    pub state: LeaseState,
    /// When the state lapses.
    pub expires: Timestamp,
    /// The client's or reservation's host name, if any.
    pub hostname: Option<String>,
}

impl Lease {
    /// Whether the address may be given to `mac` at `now`.
    fn usable_by(&self, mac: MacAddress, now: Timestamp) -> bool {
        match self.state {
            LeaseState::Released => true,
            LeaseState::Declined => self.expires <= now,
            LeaseState::Offered | LeaseState::Bound => self.mac == mac || self.expires <= now,
        }
    }
}

/// The in-memory table of leases.
#[derive(Debug, Default)]
pub struct LeaseTable {
    by_addr: HashMap<Ipv4Addr, Lease>,
    by_mac: HashMap<MacAddress, Ipv4Addr>,
    /// Next never-tried offset per range, keyed by the range's first address.
    cursors: HashMap<Ipv4Addr, u32>,
}

impl LeaseTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of addresses with a record (any state).
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// The record for an address.
    pub fn get(&self, addr: Ipv4Addr) -> Option<&Lease> {
        self.by_addr.get(&addr)
    }

    /// The address last associated with a MAC, and its record.
    pub fn for_mac(&self, mac: MacAddress) -> Option<&Lease> {
        self.by_mac
            .get(&mac)
            .and_then(|a| self.by_addr.get(a))
            .filter(|l| l.mac == mac)
    }

    /// Every record.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_addr.values()
    }

    /// Puts a record in place (replacing whatever the address had).
    pub fn insert(&mut self, lease: Lease) {
        if let Some(old) = self.by_addr.get(&lease.addr)
            && old.mac != lease.mac
            && self.by_mac.get(&old.mac) == Some(&lease.addr)
        {
            self.by_mac.remove(&old.mac);
        }
        if lease.state != LeaseState::Declined {
            if let Some(prev) = self.by_mac.insert(lease.mac, lease.addr)
                && prev != lease.addr
                && self
                    .by_addr
                    .get(&prev)
                    .is_some_and(|l| l.mac == lease.mac && matches!(l.state, LeaseState::Offered))
            {
                // A client moving on from an address it was only offered
                // frees it at once.
                self.by_addr.remove(&prev);
            }
        } else if self.by_mac.get(&lease.mac) == Some(&lease.addr) {
            self.by_mac.remove(&lease.mac);
        }
        self.by_addr.insert(lease.addr, lease);
    }

    /// Lapses everything whose time is up at `now`: a bound lease becomes
    /// [`LeaseState::Released`] (free, still remembered for its holder, so it
    /// gets the same address back), a lapsed offer is forgotten. Returns the
    /// leases that lapsed, in their new state. Declined addresses need no
    /// change: they are usable again once their hold ends.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Lease> {
        let mut lapsed = Vec::new();
        let mut stale_offers = Vec::new();
        for l in self.by_addr.values_mut() {
            if l.expires > now {
                continue;
            }
            match l.state {
                LeaseState::Bound => {
                    l.state = LeaseState::Released;
                    lapsed.push(l.clone());
                }
                LeaseState::Offered => stale_offers.push((l.addr, l.mac)),
                LeaseState::Released | LeaseState::Declined => {}
            }
        }
        for (addr, mac) in stale_offers {
            self.by_addr.remove(&addr);
            if self.by_mac.get(&mac) == Some(&addr) {
                self.by_mac.remove(&mac);
            }
        }
        lapsed
    }

    /// Forgets an offer (the client chose another server).
    pub fn drop_offer(&mut self, mac: MacAddress) {
        if let Some(&addr) = self.by_mac.get(&mac)
            && self
                .by_addr
                .get(&addr)
                .is_some_and(|l| l.state == LeaseState::Offered && l.mac == mac)
        {
            self.by_addr.remove(&addr);
            self.by_mac.remove(&mac);
        }
    }

    /// Whether `addr` may be given to `mac` at `now` (no record, or a record
    /// that is this client's, released or lapsed).
    pub fn is_available(&self, addr: Ipv4Addr, mac: MacAddress, now: Timestamp) -> bool {
        self.by_addr
            .get(&addr)
            .is_none_or(|l| l.usable_by(mac, now))
    }

    /// Picks an address in `subnet`'s dynamic ranges for `mac`: its current
    /// or last address, else `requested`, else the next never-used address,
    /// else any released or lapsed one. `taken` vetoes addresses (static
    /// reservations of other machines).
    pub fn allocate(
        &mut self,
        subnet: &Subnet,
        mac: MacAddress,
        requested: Option<Ipv4Addr>,
        now: Timestamp,
        taken: &dyn Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let ok =
            |t: &Self, a: Ipv4Addr| subnet.in_ranges(a) && t.is_available(a, mac, now) && !taken(a);
        if let Some(l) = self.for_mac(mac)
            && l.state != LeaseState::Declined
            && ok(self, l.addr)
        {
            return Some(l.addr);
        }
        if let Some(r) = requested
            && ok(self, r)
        {
            return Some(r);
        }
        // Fresh addresses first: cheap, and it keeps released addresses
        // for their last owner as long as possible.
        for range in &subnet.ranges {
            let base = u32::from(range.start());
            let span = (range.len()) as u32; // invariant: a range is inside one IPv4 subnet, < 2^32
            let cursor = self.cursors.entry(range.start()).or_insert(0);
            while *cursor < span {
                let a = Ipv4Addr::from(base + *cursor);
                *cursor += 1;
                if !self.by_addr.contains_key(&a) && !taken(a) {
                    return Some(a);
                }
            }
        }
        // Pool used up once: reuse lapsed offers and leases, released ones
        // last-used first is not tracked, so take the first we find.
        let mut best: Option<(u8, Ipv4Addr)> = None;
        for range in &subnet.ranges {
            let base = u32::from(range.start());
            for off in 0..range.len() as u32 {
                let a = Ipv4Addr::from(base + off);
                if taken(a) {
                    continue;
                }
                let rank = match self.by_addr.get(&a) {
                    None => 0,
                    Some(l) if !l.usable_by(mac, now) => continue,
                    Some(l) if l.state == LeaseState::Offered => 1,
                    Some(l) if l.state == LeaseState::Declined => 4,
                    Some(l) if l.state == LeaseState::Released => 3,
                    Some(_) => 2,
                };
                if rank == 0 {
                    return Some(a);
                }
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, a));
                }
            }
        }
        best.map(|(_, a)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000);

    fn subnet() -> Subnet {
        let mut s = Subnet::new("10.0.0.0/24".parse().unwrap());
        s.add_range([10, 0, 0, 10].into(), [10, 0, 0, 12].into())
            .unwrap();
        s
    }

    fn mac(n: u8) -> MacAddress {
        MacAddress([2, 0, 0, 0, 0, n])
    }

    fn bind(t: &mut LeaseTable, a: Ipv4Addr, m: MacAddress, expires: Timestamp) {
        t.insert(Lease {
            addr: a,
            mac: m,
            state: LeaseState::Bound,
            expires,
            hostname: None,
        });
    }

    #[test]
    fn allocates_in_order_and_keeps_clients_sticky() {
        let s = subnet();
        let mut t = LeaseTable::new();
        let no = |_| false;
        let later = Timestamp(T0.0 + 60_000);
        for n in 0..3u8 {
            let a = t.allocate(&s, mac(n), None, T0, &no).unwrap();
            assert_eq!(a, Ipv4Addr::new(10, 0, 0, 10 + n));
            bind(&mut t, a, mac(n), later);
        }
        assert_eq!(t.allocate(&s, mac(9), None, T0, &no), None, "pool full");
        assert_eq!(
            t.allocate(&s, mac(1), None, T0, &no),
            Some([10, 0, 0, 11].into())
        );
        // after expiry someone else may take it
        let after = Timestamp(later.0 + 1);
        assert!(t.allocate(&s, mac(9), None, after, &no).is_some());
    }

    #[test]
    fn requested_and_vetoed_addresses() {
        let s = subnet();
        let mut t = LeaseTable::new();
        let a = t.allocate(&s, mac(1), Some([10, 0, 0, 12].into()), T0, &|_| false);
        assert_eq!(a, Some([10, 0, 0, 12].into()));
        let veto = |a: Ipv4Addr| a == Ipv4Addr::new(10, 0, 0, 10);
        assert_eq!(
            t.allocate(&s, mac(2), None, T0, &veto),
            Some([10, 0, 0, 11].into())
        );
        // a request outside the ranges is ignored
        assert_eq!(
            t.allocate(&s, mac(3), Some([10, 0, 0, 99].into()), T0, &|_| false),
            Some([10, 0, 0, 12].into())
        );
    }

    #[test]
    fn declined_addresses_stay_out_until_hold_ends() {
        let s = subnet();
        let mut t = LeaseTable::new();
        let until = Timestamp(T0.0 + 1000);
        for n in 10..=12u8 {
            t.insert(Lease {
                addr: [10, 0, 0, n].into(),
                mac: MacAddress::default(),
                state: LeaseState::Declined,
                expires: until,
                hostname: None,
            });
        }
        assert_eq!(t.allocate(&s, mac(1), None, T0, &|_| false), None);
        assert!(t.allocate(&s, mac(1), None, until, &|_| false).is_some());
    }

    #[test]
    fn expiry_frees_bound_leases_and_forgets_offers() {
        let s = subnet();
        let mut t = LeaseTable::new();
        let end = Timestamp(T0.0 + 600_000);
        bind(&mut t, [10, 0, 0, 10].into(), mac(1), end);
        t.insert(Lease {
            addr: [10, 0, 0, 11].into(),
            mac: mac(2),
            state: LeaseState::Offered,
            expires: Timestamp(T0.0 + 60_000),
            hostname: None,
        });
        assert!(t.expire(Timestamp(T0.0 + 59_999)).is_empty());
        assert!(
            t.expire(Timestamp(T0.0 + 60_000)).is_empty(),
            "offers lapse silently"
        );
        assert!(t.get([10, 0, 0, 11].into()).is_none() && t.for_mac(mac(2)).is_none());
        assert!(t.expire(Timestamp(end.0 - 1)).is_empty());
        let lapsed = t.expire(end);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].state, LeaseState::Released);
        assert_eq!(
            t.get([10, 0, 0, 10].into()).unwrap().state,
            LeaseState::Released
        );
        assert!(t.expire(Timestamp(end.0 + 1)).is_empty(), "lapses once");
        // The former holder is still remembered and gets its address back.
        assert_eq!(
            t.allocate(&s, mac(1), None, end, &|_| false),
            Some([10, 0, 0, 10].into())
        );
    }

    #[test]
    fn moving_off_an_offer_frees_it() {
        let mut t = LeaseTable::new();
        let off = Lease {
            addr: [10, 0, 0, 10].into(),
            mac: mac(1),
            state: LeaseState::Offered,
            expires: Timestamp(T0.0 + 1000),
            hostname: None,
        };
        t.insert(off);
        bind(
            &mut t,
            [10, 0, 0, 11].into(),
            mac(1),
            Timestamp(T0.0 + 1000),
        );
        assert!(t.get([10, 0, 0, 10].into()).is_none());
        assert_eq!(t.for_mac(mac(1)).unwrap().addr, Ipv4Addr::new(10, 0, 0, 11));
        t.drop_offer(mac(1));
        assert!(t.for_mac(mac(1)).is_some(), "bound leases are not offers");
    }
}
