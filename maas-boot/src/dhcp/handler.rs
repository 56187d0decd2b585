//! The pure DHCPv4 protocol handler: a request and the current time in, an
//! [`Action`] out. No sockets, no clock, no files: reservations and boot
//! answers come from a [`DhcpBackend`], lease changes go to a
//! [`LeaseStore`] (which the server loop syncs before replying).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcproto::v4::{
    self, DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder, Name};
use maas_core::{MacAddress, Timestamp};

use super::config::{DhcpConfig, Mode, Reservation, Subnet};
use super::leases::{Lease, LeaseState, LeaseTable};
use super::netboot::{BootAnswer, BootClient, NetbootMethod, user_class_is_ipxe};
use super::store::LeaseStore;
use crate::Result;

/// DHCP option 210, PXELINUX path prefix (RFC 5071).
const OPT_PATH_PREFIX: u8 = 210;
/// Smallest BOOTP reply some PXE ROMs accept.
const MIN_REPLY: usize = 300;

/// Where a reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent at `giaddr`, server port 67.
    Relay(Ipv4Addr),
    /// To a client that has an address, port 68.
    Unicast(Ipv4Addr),
    /// To 255.255.255.255:68 on the served interface (clients without an
    /// address; we do not inject ARP entries, so we never unicast to them).
    Broadcast,
}

impl Destination {
    /// The socket address to send to.
    pub fn socket_addr(self) -> SocketAddrV4 {
        match self {
            Self::Relay(a) => SocketAddrV4::new(a, v4::SERVER_PORT),
            Self::Unicast(a) => SocketAddrV4::new(a, v4::CLIENT_PORT),
            Self::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, v4::CLIENT_PORT),
        }
    }
}

/// A reply and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply.
    pub message: Message,
    /// Where to send it.
    pub dest: Destination,
    /// Whether it promises a lease, so must wait until the lease store has
    /// made the lease durable.
    pub durable: bool,
}

impl Reply {
    /// The reply on the wire, padded to the 300 bytes BOOTP clients expect.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(MIN_REPLY + 64);
        self.message
            .encode(&mut Encoder::new(&mut buf))
            .map_err(|e| crate::Error::Invalid(format!("encoding DHCP reply: {e}")))?;
        if buf.len() < MIN_REPLY {
            buf.resize(MIN_REPLY, 0);
        }
        Ok(buf)
    }
}

/// Why a request got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not a well-formed DHCP packet.
    Malformed(String),
    /// A BOOTREPLY or other non-request.
    NotRequest,
    /// Not Ethernet with a 6-byte address.
    UnsupportedHardware,
    /// Plain BOOTP (no option 53): not served.
    Bootp,
    /// A message type a server does not handle (e.g. OFFER).
    UnsupportedType(u8),
    /// No subnet we serve matches the relay or client address.
    NoSubnet(Ipv4Addr),
    /// The client chose another server.
    OtherServer(Ipv4Addr),
    /// Every address in the subnet's ranges is in use.
    PoolExhausted,
    /// proxyDHCP mode and not a PXE client.
    NotPxe,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed packet: {why}"),
            Self::NotRequest => f.write_str("not a BOOTREQUEST"),
            Self::UnsupportedHardware => f.write_str("hardware type is not Ethernet"),
            Self::Bootp => f.write_str("BOOTP without DHCP message type"),
            Self::UnsupportedType(t) => write!(f, "message type {t} is not for a server"),
            Self::NoSubnet(a) => write!(f, "no served subnet for {a}"),
            Self::OtherServer(a) => write!(f, "client chose server {a}"),
            Self::PoolExhausted => f.write_str("no free address in the dynamic ranges"),
            Self::NotPxe => f.write_str("proxyDHCP ignores non-PXE clients"),
        }
    }
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this.
    Reply(Reply),
    /// Handled, nothing to send (RELEASE, DECLINE).
    Silent,
    /// Ignored, for this reason (worth a log line).
    Drop(DropReason),
}

/// What the handler reports as it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpEvent {
    /// An address was acknowledged to a client (new lease or renewal).
    Leased {
        /// The client.
        mac: MacAddress,
        /// Its address.
        addr: Ipv4Addr,
        /// When the lease ends.
        expires: Timestamp,
        /// Host name from the reservation or the client's option 12.
        hostname: Option<String>,
        /// The boot method, for netbooting firmware.
        boot: Option<NetbootMethod>,
    },
    /// The client gave its address back.
    Released {
        /// The client.
        mac: MacAddress,
        /// The address.
        addr: Ipv4Addr,
    },
    /// The client found the address in use by someone else.
    Declined {
        /// The client.
        mac: MacAddress,
        /// The address, now held back.
        addr: Ipv4Addr,
    },
    /// A lapsed lease was given to another client.
    Expired {
        /// The former holder.
        mac: MacAddress,
        /// The address.
        addr: Ipv4Addr,
    },
    /// A DISCOVER from a MAC with no reservation: a machine the region may
    /// not know yet (MAAS enlists these).
    UnknownMac {
        /// The client.
        mac: MacAddress,
        /// Option 93, if sent.
        arch: Option<u16>,
        /// Option 60, if sent.
        vendor_class: Option<String>,
    },
}

/// What the handler asks of the outside world. The region implements it from
/// its database; [`StaticBackend`] from memory.
pub trait DhcpBackend: Send + Sync {
    /// The static address of a known machine's interface, if it has one.
    fn reservation(&self, mac: MacAddress) -> Option<Reservation>;

    /// Whether `addr` is reserved for a machine other than `mac` (so it must
    /// never be handed out dynamically to `mac`).
    fn reserved_for_other(&self, addr: Ipv4Addr, mac: MacAddress) -> bool;

    /// The netboot answer for a netbooting client; by default MAAS's choice
    /// from option 93 and the user class.
    fn boot(&self, client: &BootClient, config: &DhcpConfig) -> Option<BootAnswer> {
        Some(NetbootMethod::for_client(client).answer(config.boot_server, config.http_port))
    }

    /// A lease changed or an unknown MAC showed up. Called outside the
    /// handler's locks; must not block for long.
    fn event(&self, event: DhcpEvent);
}

/// A backend with reservations fixed at start-up that keeps the events it
/// is told about (optionally).
#[derive(Debug, Default)]
pub struct StaticBackend {
    by_mac: HashMap<MacAddress, Reservation>,
    by_addr: HashMap<Ipv4Addr, MacAddress>,
    events: Option<Mutex<Vec<DhcpEvent>>>,
}

impl StaticBackend {
    /// Reservations that also records events (see [`take_events`](Self::take_events)).
    pub fn new(reservations: Vec<Reservation>) -> Self {
        let mut b = Self::default();
        for r in reservations {
            b.by_addr.insert(r.addr, r.mac);
            b.by_mac.insert(r.mac, r);
        }
        b.events = Some(Mutex::new(Vec::new()));
        b
    }

    /// The same, but events are dropped (benchmarks, long-running racks with
    /// no region attached).
    pub fn without_events(reservations: Vec<Reservation>) -> Self {
        Self {
            events: None,
            ..Self::new(reservations)
        }
    }

    /// Events so far, taking them.
    pub fn take_events(&self) -> Vec<DhcpEvent> {
        self.events
            .as_ref()
            .map(|m| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }
}

impl DhcpBackend for StaticBackend {
    fn reservation(&self, mac: MacAddress) -> Option<Reservation> {
        self.by_mac.get(&mac).cloned()
    }

    fn reserved_for_other(&self, addr: Ipv4Addr, mac: MacAddress) -> bool {
        self.by_addr.get(&addr).is_some_and(|m| *m != mac)
    }

    fn event(&self, event: DhcpEvent) {
        if let Some(m) = &self.events {
            m.lock().unwrap_or_else(|e| e.into_inner()).push(event);
        }
    }
}

/// The DHCPv4 server's logic.
pub struct Handler {
    // Swapped whole by `reconfigure`; each request works on one snapshot.
    config: std::sync::RwLock<Arc<DhcpConfig>>,
    table: Mutex<LeaseTable>,
    store: Arc<dyn LeaseStore>,
    backend: Arc<dyn DhcpBackend>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.config();
        f.debug_struct("Handler")
            .field("server_ip", &c.server_ip)
            .field("mode", &c.mode)
            .field("subnets", &c.subnets.len())
            .finish_non_exhaustive()
    }
}

/// Checks the parts of a raw packet `dhcproto` trusts blindly (and would
/// panic or misread on): fixed header length, `hlen`, the magic cookie,
/// option lengths, and classless-route prefixes (option 121).
///
/// Lengths are checked per run: `dhcproto` concatenates consecutive options
/// with the same code (RFC 3396 long options) and decodes the joined value,
/// so two 4-byte copies of a 4-byte option make one 8-byte option to it.
pub fn precheck(buf: &[u8]) -> std::result::Result<(), String> {
    if buf.len() < 240 {
        return Err(format!(
            "{} bytes, shorter than the 240-byte header",
            buf.len()
        ));
    }
    if buf[2] > 16 {
        return Err(format!("hardware address length {} > 16", buf[2]));
    }
    if buf[236..240] != v4::MAGIC {
        return Err("no DHCP magic cookie".into());
    }
    let mut i = 240;
    // The run being read: (code, total length of its copies).
    let mut run: Option<(u8, usize)> = None;
    while i < buf.len() {
        let code = buf[i];
        if code == 0 || code == 255 {
            // PAD and END end a run.
            if let Some((c, total)) = run.take() {
                check_run_length(c, total)?;
            }
            if code == 255 {
                return Ok(());
            }
            i += 1;
            continue;
        }
        let Some(&len) = buf.get(i + 1) else {
            return Err(format!("option {code} has no length"));
        };
        let body = buf
            .get(i + 2..i + 2 + usize::from(len))
            .ok_or_else(|| format!("option {code} length {len} runs past the packet"))?;
        run = match run {
            Some((c, total)) if c == code => Some((c, total + usize::from(len))),
            other => {
                if let Some((c, total)) = other {
                    check_run_length(c, total)?;
                }
                Some((code, usize::from(len)))
            }
        };
        if code == 121 {
            let mut r = body;
            while let Some((&prefix, rest)) = r.split_first() {
                if prefix > 32 {
                    return Err(format!("option 121 prefix /{prefix}"));
                }
                let need = usize::from(prefix).div_ceil(8) + 4;
                r = rest.get(need..).ok_or("option 121 route truncated")?;
            }
        }
        i += 2 + usize::from(len);
    }
    Err("options not terminated by END".into())
}

/// The options `dhcproto` decodes with a length assertion or a length
/// subtraction (a panic in debug builds, a misread otherwise): RFC 4039
/// rapid commit, RFC 4578 client NDI, RFC 6926 bulk-leasequery status and
/// times, RFC 4702 client FQDN.
fn check_run_length(code: u8, total: usize) -> std::result::Result<(), String> {
    let ok = match code {
        80 => total == 0,
        94 => total == 3,
        152..=155 => total == 4,
        81 => total >= 3,
        151 => total >= 1,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("option {code} has length {total}"))
    }
}

/// Decodes a datagram, never panicking: [`precheck`] first, and a panic in
/// the decoder (a bug in it) becomes a decode error.
pub fn decode(buf: &[u8]) -> std::result::Result<Message, String> {
    precheck(buf)?;
    match std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(buf))) {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("decoder panicked".into()),
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

struct Request<'a> {
    cfg: &'a DhcpConfig,
    msg: &'a Message,
    mac: MacAddress,
    client: BootClient,
}

impl Handler {
    /// A handler over `config`, with leases loaded from `store`.
    pub fn new(
        config: DhcpConfig,
        store: Arc<dyn LeaseStore>,
        backend: Arc<dyn DhcpBackend>,
    ) -> Result<Self> {
        config.validate()?;
        let mut table = LeaseTable::new();
        for lease in store.load()? {
            table.insert(lease);
        }
        Ok(Self {
            config: std::sync::RwLock::new(Arc::new(config)),
            table: Mutex::new(table),
            store,
            backend,
        })
    }

    /// The configuration.
    pub fn config(&self) -> Arc<DhcpConfig> {
        // A poisoned lock still holds a whole, validated config.
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the configuration (subnets, ranges, options, lease times)
    /// without dropping leases; requests already being handled finish on
    /// the old one. The region calls this when its subnets change.
    pub fn reconfigure(&self, config: DhcpConfig) -> Result<()> {
        config.validate()?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// The lease store (the server loop syncs it).
    pub fn store(&self) -> &Arc<dyn LeaseStore> {
        &self.store
    }

    /// A copy of the lease record for `addr`.
    pub fn lease(&self, addr: Ipv4Addr) -> Option<Lease> {
        self.lock().get(addr).cloned()
    }

    /// A copy of the lease record for `mac`.
    pub fn lease_for(&self, mac: MacAddress) -> Option<Lease> {
        self.lock().for_mac(mac).cloned()
    }

    /// Number of addresses with a record.
    pub fn lease_count(&self) -> usize {
        self.lock().len()
    }

    /// Reclaims leases whose time is up at `now` (the server loop calls it
    /// on a timer): bound leases lapse to free-but-remembered, each reported
    /// as [`DhcpEvent::Expired`] and recorded in the lease store; stale offers
    /// are forgotten. Returns how many leases lapsed.
    pub fn reclaim(&self, now: Timestamp) -> usize {
        let lapsed = self.lock().expire(now);
        for l in &lapsed {
            self.store.record(l);
            self.backend.event(DhcpEvent::Expired {
                mac: l.mac,
                addr: l.addr,
            });
        }
        lapsed.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseTable> {
        // The table is consistent between statements; a panic elsewhere
        // while holding the lock does not corrupt it.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decodes and handles a datagram.
    pub fn handle_bytes(&self, buf: &[u8], now: Timestamp) -> Action {
        match decode(buf) {
            Ok(m) => self.handle(&m, now),
            Err(why) => Action::Drop(DropReason::Malformed(why)),
        }
    }

    /// Handles a decoded request.
    pub fn handle(&self, msg: &Message, now: Timestamp) -> Action {
        if msg.opcode() != Opcode::BootRequest {
            return Action::Drop(DropReason::NotRequest);
        }
        if msg.htype() != HType::Eth || msg.hlen() != 6 {
            return Action::Drop(DropReason::UnsupportedHardware);
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&msg.chaddr()[..6]);
        let mac = MacAddress(mac);
        let Some(mtype) = msg.opts().msg_type() else {
            return Action::Drop(DropReason::Bootp);
        };
        let opts = msg.opts();
        let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(a.0),
            _ => None,
        };
        let vendor_class = match opts.get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        };
        let ipxe = matches!(opts.get(OptionCode::UserClass), Some(DhcpOption::UserClass(u)) if user_class_is_ipxe(u));
        let cfg = self.config();
        let cfg = &*cfg;
        let req = Request {
            cfg,
            msg,
            mac,
            client: BootClient {
                mac,
                arch,
                vendor_class,
                ipxe,
            },
        };

        if cfg.mode == Mode::Proxy {
            return self.proxy(&req, mtype);
        }
        // Relayed requests are placed by the relay's address; local ones by
        // the client's address when it has one, else by our own interface.
        let anchor = if !msg.giaddr().is_unspecified() {
            msg.giaddr()
        } else if !msg.ciaddr().is_unspecified() && cfg.subnet_for(msg.ciaddr()).is_some() {
            msg.ciaddr()
        } else {
            cfg.server_ip
        };
        let Some((_, subnet)) = cfg.subnet_for(anchor) else {
            return Action::Drop(DropReason::NoSubnet(anchor));
        };
        match mtype {
            MessageType::Discover => self.discover(&req, subnet, now),
            MessageType::Request => self.request(&req, subnet, now),
            MessageType::Release => self.release(&req, now),
            MessageType::Decline => self.decline(&req, now),
            MessageType::Inform => self.inform(&req, subnet),
            other => Action::Drop(DropReason::UnsupportedType(u8::from(other))),
        }
    }

    fn reservation_in(&self, mac: MacAddress, subnet: &Subnet) -> Option<Reservation> {
        self.backend
            .reservation(mac)
            .filter(|r| subnet.network.contains(&r.addr))
    }

    fn lease_secs(&self, req: &Request<'_>, subnet: &Subnet) -> u32 {
        if req.client.is_pxe_firmware() {
            req.cfg.pxe_lease
        } else {
            subnet.lease_time.unwrap_or(req.cfg.default_lease)
        }
    }

    fn boot_for(&self, req: &Request<'_>) -> Option<BootAnswer> {
        if req.client.is_netboot() {
            self.backend.boot(&req.client, req.cfg)
        } else {
            None
        }
    }

    fn discover(&self, req: &Request<'_>, subnet: &Subnet, now: Timestamp) -> Action {
        let reservation = self.reservation_in(req.mac, subnet);
        if reservation.is_none() {
            self.backend.event(DhcpEvent::UnknownMac {
                mac: req.mac,
                arch: req.client.arch,
                vendor_class: req.client.vendor_class.clone(),
            });
        }
        let requested = match req.msg.opts().get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(a)) => Some(*a),
            _ => None,
        };
        let (addr, expired) = {
            let mut table = self.lock();
            let addr = match &reservation {
                Some(r) => Some(r.addr),
                None => table.allocate(subnet, req.mac, requested, now, &|a| {
                    self.backend.reserved_for_other(a, req.mac)
                }),
            };
            let Some(addr) = addr else {
                return Action::Drop(DropReason::PoolExhausted);
            };
            let expired = table
                .get(addr)
                .filter(|l| l.mac != req.mac && l.state == LeaseState::Bound)
                .map(|l| l.mac);
            // Hold the address for the client unless it already owns it.
            let owned = table.get(addr).is_some_and(|l| {
                l.mac == req.mac && l.state == LeaseState::Bound && l.expires > now
            });
            if !owned {
                table.insert(Lease {
                    addr,
                    mac: req.mac,
                    state: LeaseState::Offered,
                    expires: now + secs(req.cfg.offer_hold),
                    hostname: None,
                });
            }
            (addr, expired)
        };
        if let Some(old) = expired {
            self.backend.event(DhcpEvent::Expired { mac: old, addr });
        }
        let boot = self.boot_for(req);
        let lease = self.lease_secs(req, subnet);
        let hostname = reservation.and_then(|r| r.hostname);
        let msg = self.reply(
            req,
            MessageType::Offer,
            subnet,
            addr,
            Some(lease),
            boot.as_ref(),
            hostname,
        );
        Action::Reply(Reply {
            dest: dest_for(req.msg, false),
            message: msg,
            durable: false,
        })
    }

    fn request(&self, req: &Request<'_>, subnet: &Subnet, now: Timestamp) -> Action {
        let opts = req.msg.opts();
        let server_id = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
            _ => None,
        };
        let requested = match opts.get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(a)) => Some(*a),
            _ => None,
        };
        if let Some(sid) = server_id
            && sid != req.cfg.server_ip
        {
            self.lock().drop_offer(req.mac);
            return Action::Drop(DropReason::OtherServer(sid));
        }
        let ciaddr = req.msg.ciaddr();
        let addr = match (requested, ciaddr.is_unspecified()) {
            (Some(r), _) => r,
            (None, false) => ciaddr,
            (None, true) => return self.nak(req, "no address requested"),
        };
        if !subnet.network.contains(&addr) {
            return self.nak(req, "address not on this network");
        }
        let reservation = self.reservation_in(req.mac, subnet);
        let hostname = match &reservation {
            Some(r) if r.addr != addr => return self.nak(req, "address is not this machine's"),
            Some(r) => r.hostname.clone(),
            None => match opts.get(OptionCode::Hostname) {
                Some(DhcpOption::Hostname(h)) => Some(h.clone()),
                _ => None,
            },
        };
        let lease_secs = self.lease_secs(req, subnet);
        let expires = now + secs(lease_secs);
        let lease = Lease {
            addr,
            mac: req.mac,
            state: LeaseState::Bound,
            expires,
            hostname: hostname.clone(),
        };
        let expired_holder = {
            let mut table = self.lock();
            if reservation.is_none()
                && (!subnet.in_ranges(addr)
                    || !table.is_available(addr, req.mac, now)
                    || self.backend.reserved_for_other(addr, req.mac))
            {
                drop(table);
                return self.nak(req, "address not available");
            }
            let prev = table
                .get(addr)
                .filter(|l| l.mac != req.mac && l.state == LeaseState::Bound)
                .map(|l| l.mac);
            table.insert(lease.clone());
            prev
        };
        self.store.record(&lease);
        if let Some(old) = expired_holder {
            self.backend.event(DhcpEvent::Expired { mac: old, addr });
        }
        let boot = self.boot_for(req);
        self.backend.event(DhcpEvent::Leased {
            mac: req.mac,
            addr,
            expires,
            hostname: hostname.clone(),
            boot: boot.as_ref().map(|b| b.method),
        });
        let msg = self.reply(
            req,
            MessageType::Ack,
            subnet,
            addr,
            Some(lease_secs),
            boot.as_ref(),
            hostname,
        );
        Action::Reply(Reply {
            dest: dest_for(req.msg, false),
            message: msg,
            durable: true,
        })
    }

    fn release(&self, req: &Request<'_>, now: Timestamp) -> Action {
        if let Some(DhcpOption::ServerIdentifier(sid)) =
            req.msg.opts().get(OptionCode::ServerIdentifier)
            && *sid != req.cfg.server_ip
        {
            return Action::Drop(DropReason::OtherServer(*sid));
        }
        let addr = req.msg.ciaddr();
        let released = {
            let mut table = self.lock();
            match table.get(addr) {
                Some(l) if l.mac == req.mac && l.state == LeaseState::Bound => {
                    let l = Lease {
                        state: LeaseState::Released,
                        expires: now,
                        ..l.clone()
                    };
                    table.insert(l.clone());
                    Some(l)
                }
                _ => None,
            }
        };
        if let Some(l) = released {
            self.store.record(&l);
            self.backend
                .event(DhcpEvent::Released { mac: req.mac, addr });
        }
        Action::Silent
    }

    fn decline(&self, req: &Request<'_>, now: Timestamp) -> Action {
        let opts = req.msg.opts();
        if let Some(DhcpOption::ServerIdentifier(sid)) = opts.get(OptionCode::ServerIdentifier)
            && *sid != req.cfg.server_ip
        {
            return Action::Drop(DropReason::OtherServer(*sid));
        }
        let Some(DhcpOption::RequestedIpAddress(addr)) = opts.get(OptionCode::RequestedIpAddress)
        else {
            return Action::Drop(DropReason::Malformed("DECLINE without option 50".into()));
        };
        let addr = *addr;
        let declined = {
            let mut table = self.lock();
            match table.get(addr) {
                Some(l) if l.mac == req.mac && l.state != LeaseState::Declined => {
                    let l = Lease {
                        addr,
                        mac: MacAddress::default(),
                        state: LeaseState::Declined,
                        expires: now + secs(req.cfg.decline_hold),
                        hostname: None,
                    };
                    table.insert(l.clone());
                    Some(l)
                }
                _ => None,
            }
        };
        if let Some(l) = declined {
            tracing::warn!(%addr, mac = %req.mac, "address declined: another host uses it");
            self.store.record(&l);
            self.backend
                .event(DhcpEvent::Declined { mac: req.mac, addr });
        }
        Action::Silent
    }

    fn inform(&self, req: &Request<'_>, subnet: &Subnet) -> Action {
        let boot = self.boot_for(req);
        let msg = self.reply(
            req,
            MessageType::Ack,
            subnet,
            Ipv4Addr::UNSPECIFIED,
            None,
            boot.as_ref(),
            None,
        );
        Action::Reply(Reply {
            dest: dest_for(req.msg, false),
            message: msg,
            durable: false,
        })
    }

    fn nak(&self, req: &Request<'_>, why: &str) -> Action {
        let mut m = base_reply(req.msg, MessageType::Nak, req.cfg.server_ip);
        m.set_ciaddr(Ipv4Addr::UNSPECIFIED);
        m.opts_mut().insert(DhcpOption::Message(why.to_owned()));
        if !req.msg.giaddr().is_unspecified() {
            // RFC 2131 4.3.2: the relay must broadcast the NAK.
            m.set_flags(Flags::default().set_broadcast());
        }
        Action::Reply(Reply {
            dest: dest_for(req.msg, true),
            message: m,
            durable: false,
        })
    }

    /// proxyDHCP: answer PXE firmware with the boot part only.
    fn proxy(&self, req: &Request<'_>, mtype: MessageType) -> Action {
        if !matches!(mtype, MessageType::Discover | MessageType::Request) {
            return Action::Drop(DropReason::UnsupportedType(u8::from(mtype)));
        }
        if !req
            .client
            .vendor_class
            .as_deref()
            .is_some_and(|v| v.starts_with("PXEClient"))
        {
            return Action::Drop(DropReason::NotPxe);
        }
        // The client's REQUEST to the site's DHCP server is broadcast too, and
        // reaches us on port 67; only one naming us (PXE sends it to port 4011)
        // is ours to answer.
        if mtype == MessageType::Request
            && let Some(DhcpOption::ServerIdentifier(sid)) =
                req.msg.opts().get(OptionCode::ServerIdentifier)
            && *sid != req.cfg.server_ip
        {
            return Action::Drop(DropReason::OtherServer(*sid));
        }
        let Some(boot) = self.backend.boot(&req.client, req.cfg) else {
            return Action::Drop(DropReason::NotPxe);
        };
        let t = if mtype == MessageType::Discover {
            MessageType::Offer
        } else {
            MessageType::Ack
        };
        let mut m = base_reply(req.msg, t, req.cfg.server_ip);
        m.set_ciaddr(req.msg.ciaddr());
        add_boot(&mut m, req.msg, &boot);
        let opts = m.opts_mut();
        opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
        // PXE discovery control (sub-option 6) = 8: skip boot-server
        // discovery and use the file name we give.
        opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
        let dest = if req.msg.ciaddr().is_unspecified() {
            dest_for(req.msg, false)
        } else {
            Destination::Unicast(req.msg.ciaddr())
        };
        Action::Reply(Reply {
            dest,
            message: m,
            durable: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        req: &Request<'_>,
        mtype: MessageType,
        subnet: &Subnet,
        yiaddr: Ipv4Addr,
        lease: Option<u32>,
        boot: Option<&BootAnswer>,
        hostname: Option<String>,
    ) -> Message {
        let mut m = base_reply(req.msg, mtype, req.cfg.server_ip);
        m.set_yiaddr(yiaddr);
        if matches!(mtype, MessageType::Ack) {
            m.set_ciaddr(req.msg.ciaddr());
        }
        let opts = m.opts_mut();
        if let Some(l) = lease {
            opts.insert(DhcpOption::AddressLeaseTime(l));
            opts.insert(DhcpOption::Renewal(l / 2));
            opts.insert(DhcpOption::Rebinding((u64::from(l) * 7 / 8) as u32));
        }
        opts.insert(DhcpOption::SubnetMask(subnet.network.netmask()));
        opts.insert(DhcpOption::BroadcastAddr(subnet.network.broadcast()));
        if !subnet.routers.is_empty() {
            opts.insert(DhcpOption::Router(subnet.routers.clone()));
        }
        if !subnet.dns_servers.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(subnet.dns_servers.clone()));
        }
        if let Some(d) = &subnet.domain_name {
            opts.insert(DhcpOption::DomainName(d.clone()));
        }
        if !subnet.domain_search.is_empty() {
            let names: Vec<Name> = subnet
                .domain_search
                .iter()
                .filter_map(|d| Name::from_utf8(d).ok())
                .collect();
            if !names.is_empty() {
                opts.insert(DhcpOption::DomainSearch(names));
            }
        }
        if !subnet.ntp_servers.is_empty() {
            opts.insert(DhcpOption::NtpServers(subnet.ntp_servers.clone()));
        }
        if subnet.mtu != 1500 {
            opts.insert(DhcpOption::InterfaceMtu(subnet.mtu));
        }
        if let Some(h) = hostname.filter(|h| !h.is_empty()) {
            opts.insert(DhcpOption::Hostname(h));
        }
        if let Some(b) = boot {
            add_boot(&mut m, req.msg, b);
        }
        m
    }
}

/// The fields every reply copies from its request (RFC 2131 table 3), plus
/// message type, server identifier and an echoed option 82.
fn base_reply(req: &Message, mtype: MessageType, server: Ipv4Addr) -> Message {
    let mut m = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        req.giaddr(),
        req.chaddr(),
    );
    m.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_flags(req.flags());
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(mtype));
    opts.insert(DhcpOption::ServerIdentifier(server));
    if let Some(o82 @ DhcpOption::RelayAgentInformation(_)) =
        req.opts().get(OptionCode::RelayAgentInformation)
    {
        opts.insert(o82.clone());
    }
    m
}

fn add_boot(m: &mut Message, req: &Message, b: &BootAnswer) {
    m.set_siaddr(b.next_server);
    // The BOOTP file field holds 128 bytes; longer names (URLs) go in 67 only.
    if b.filename.len() < 128 {
        m.set_fname_str(&b.filename);
    }
    let asked = |c: OptionCode| match req.opts().get(OptionCode::ParameterRequestList) {
        Some(DhcpOption::ParameterRequestList(l)) => l.contains(&c),
        _ => false,
    };
    let opts = m.opts_mut();
    if asked(OptionCode::TFTPServerName) {
        opts.insert(DhcpOption::TFTPServerName(
            b.next_server.to_string().into_bytes(),
        ));
    }
    if asked(OptionCode::BootfileName) || b.filename.len() >= 128 {
        opts.insert(DhcpOption::BootfileName(b.filename.clone().into_bytes()));
    }
    if let Some(p) = &b.path_prefix {
        // MAAS forces 210 whether or not the client lists it.
        opts.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(OPT_PATH_PREFIX),
            p.clone().into_bytes(),
        )));
    }
    if b.http_client {
        opts.insert(DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()));
    }
}

/// RFC 2131 §4.1 delivery: relay first, then (not for NAK) a client that has
/// an address, else broadcast.
fn dest_for(req: &Message, nak: bool) -> Destination {
    if !req.giaddr().is_unspecified() {
        Destination::Relay(req.giaddr())
    } else if !nak && !req.ciaddr().is_unspecified() {
        Destination::Unicast(req.ciaddr())
    } else {
        Destination::Broadcast
    }
}

#[cfg(test)]
mod tests;
