//! DHCP for the in-process rack: the served subnets and reservations come
//! from the database, and what the server sees (leases, MACs no machine
//! has) goes back into it. maas-boot's handler and loop do the protocol.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::prelude::*;
use ipnet::Ipv4Net;
use maas_boot::dhcp::{DhcpBackend, DhcpConfig, DhcpEvent, Reservation, Subnet};
use maas_core::MacAddress;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::RackConfig;
use crate::AppState;
use crate::api::json::kinds;
use crate::db::{DbConn, machines, objects};
use crate::error::{Error, Result};

/// The rack's tables (migration `2026-11-21-190000_flow`).
#[allow(missing_docs)]
mod tables {
    diesel::table! {
        rack_leases (id) {
            id -> BigInt,
            mac -> Text,
            ip -> Text,
            hostname -> Text,
            state -> Text,
            expires -> BigInt,
            updated -> BigInt,
        }
    }

    diesel::table! {
        rack_unknown_macs (id) {
            id -> BigInt,
            mac -> Text,
            arch -> Text,
            vendor_class -> Text,
            first_seen -> BigInt,
            last_seen -> BigInt,
        }
    }
}
use tables::{rack_leases, rack_unknown_macs};

/// A lease as recorded in `rack_leases`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rack_leases)]
pub struct LeaseRow {
    /// Row id.
    pub id: i64,
    /// Client MAC, colon form.
    pub mac: String,
    /// Address.
    pub ip: String,
    /// Host name, empty when none.
    pub hostname: String,
    /// `bound`, `released`, `declined` or `expired`.
    pub state: String,
    /// Lease end, ms since the epoch.
    pub expires: i64,
    /// Last change, ms since the epoch.
    pub updated: i64,
}

/// A MAC the DHCP server saw that no machine has.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rack_unknown_macs)]
pub struct UnknownMac {
    /// Row id.
    pub id: i64,
    /// The MAC, colon form.
    pub mac: String,
    /// Option 93 as a number, empty when not sent.
    pub arch: String,
    /// Option 60, empty when not sent.
    pub vendor_class: String,
    /// First seen, ms since the epoch.
    pub first_seen: i64,
    /// Last seen, ms since the epoch.
    pub last_seen: i64,
}

/// Every recorded lease.
pub fn leases(conn: &mut DbConn) -> Result<Vec<LeaseRow>> {
    Ok(rack_leases::table
        .order(rack_leases::id.asc())
        .select(LeaseRow::as_select())
        .load(conn)?)
}

/// Every MAC seen that no machine has.
pub fn unknown_macs(conn: &mut DbConn) -> Result<Vec<UnknownMac>> {
    Ok(rack_unknown_macs::table
        .order(rack_unknown_macs::id.asc())
        .select(UnknownMac::as_select())
        .load(conn)?)
}

fn str_of<'a>(o: &'a objects::Object, k: &str) -> Option<&'a str> {
    o.data.get(k).and_then(Value::as_str)
}

fn ipv4s(v: Option<&Value>) -> Vec<Ipv4Addr> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| s.parse().ok())
            .collect(),
        Some(Value::String(s)) => s
            .split([',', ' '])
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        _ => vec![],
    }
}

/// The DHCP configuration: every IPv4 subnet whose VLAN has `dhcp_on`, with
/// its dynamic ranges, gateway and DNS servers; the rack is the server and
/// the boot server.
pub fn load_config(
    conn: &mut DbConn,
    server: Ipv4Addr,
    http_port: u16,
) -> Result<Option<DhcpConfig>> {
    let managed: Vec<i64> = objects::list(conn, kinds::VLAN)?
        .into_iter()
        .filter(|v| v.data.get("dhcp_on").and_then(Value::as_bool) == Some(true))
        .map(|v| v.id)
        .collect();
    let ranges = objects::list(conn, kinds::IPRANGE)?;
    let mut subnets = Vec::new();
    for s in objects::list(conn, kinds::SUBNET)? {
        let vlan = s.data.get("vlan_id").and_then(Value::as_i64).unwrap_or(0);
        if !managed.contains(&vlan) {
            continue;
        }
        let Some(net) = str_of(&s, "cidr").and_then(|c| c.parse::<Ipv4Net>().ok()) else {
            continue;
        };
        let mut sub = Subnet::new(net);
        for r in ranges.iter().filter(|r| {
            r.data.get("subnet_id").and_then(Value::as_i64) == Some(s.id)
                && str_of(r, "type") == Some("dynamic")
        }) {
            let (Some(a), Some(b)) = (
                str_of(r, "start_ip").and_then(|x| x.parse().ok()),
                str_of(r, "end_ip").and_then(|x| x.parse().ok()),
            ) else {
                continue;
            };
            if let Err(e) = sub.add_range(a, b) {
                tracing::warn!(subnet = %net, error = %e, "rack: dynamic range skipped");
            }
        }
        if sub.ranges.is_empty() {
            tracing::warn!(subnet = %net, "rack: managed subnet without a dynamic range");
        }
        sub.routers = str_of(&s, "gateway_ip")
            .and_then(|g| g.parse().ok())
            .into_iter()
            .collect();
        sub.dns_servers = ipv4s(s.data.get("dns_servers"));
        if sub.dns_servers.is_empty() {
            sub.dns_servers = vec![server];
        }
        sub.domain_name = Some("maas".into());
        subnets.push(sub);
    }
    if subnets.is_empty() {
        return Ok(None);
    }
    let mut cfg = DhcpConfig::new(server, subnets);
    cfg.http_port = http_port;
    Ok(Some(cfg))
}

/// Static addresses of machines' interfaces (MAAS `host` entries).
pub fn load_reservations(conn: &mut DbConn) -> Result<Vec<Reservation>> {
    let mut out = Vec::new();
    for sm in machines::list(conn)? {
        let m = &sm.record.machine;
        for i in &m.interfaces {
            if let Some(IpAddr::V4(addr)) = i.links.iter().find_map(|l| l.ip) {
                out.push(Reservation {
                    mac: i.mac,
                    addr,
                    hostname: Some(m.hostname.clone()),
                });
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Snapshot {
    by_mac: HashMap<MacAddress, Reservation>,
    by_addr: HashMap<Ipv4Addr, MacAddress>,
}

/// The handler's view of the database: reservations refreshed by the rack
/// loop, events handed to a writer task (the handler must not block).
#[derive(Debug)]
pub struct DbBackend {
    snapshot: RwLock<Snapshot>,
    events: mpsc::UnboundedSender<DhcpEvent>,
}

impl DbBackend {
    /// A backend whose events go to `events`.
    pub fn new(events: mpsc::UnboundedSender<DhcpEvent>) -> Self {
        Self {
            snapshot: RwLock::new(Snapshot::default()),
            events,
        }
    }

    /// Replaces the reservations.
    pub fn set_reservations(&self, rs: Vec<Reservation>) {
        let mut s = Snapshot::default();
        for r in rs {
            s.by_addr.insert(r.addr, r.mac);
            s.by_mac.insert(r.mac, r);
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

impl DhcpBackend for DbBackend {
    fn reservation(&self, mac: MacAddress) -> Option<Reservation> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_mac
            .get(&mac)
            .cloned()
    }

    fn reserved_for_other(&self, addr: Ipv4Addr, mac: MacAddress) -> bool {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_addr
            .get(&addr)
            .is_some_and(|m| *m != mac)
    }

    fn event(&self, event: DhcpEvent) {
        // The writer task outlives the handler; a send error means shutdown.
        let _ = self.events.send(event);
    }
}

fn upsert_lease(
    conn: &mut DbConn,
    mac: MacAddress,
    ip: Ipv4Addr,
    hostname: &str,
    state: &str,
    expires: i64,
    now: i64,
) -> Result<()> {
    let key = mac.colon();
    let n = diesel::update(rack_leases::table.filter(rack_leases::mac.eq(&key)))
        .set((
            rack_leases::ip.eq(ip.to_string()),
            rack_leases::hostname.eq(hostname),
            rack_leases::state.eq(state),
            rack_leases::expires.eq(expires),
            rack_leases::updated.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(rack_leases::table)
            .values((
                rack_leases::mac.eq(&key),
                rack_leases::ip.eq(ip.to_string()),
                rack_leases::hostname.eq(hostname),
                rack_leases::state.eq(state),
                rack_leases::expires.eq(expires),
                rack_leases::updated.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Writes one DHCP event to the database.
pub fn record_event(conn: &mut DbConn, ev: &DhcpEvent, now: i64) -> Result<()> {
    match ev {
        DhcpEvent::Leased {
            mac,
            addr,
            expires,
            hostname,
            ..
        } => upsert_lease(
            conn,
            *mac,
            *addr,
            hostname.as_deref().unwrap_or_default(),
            "bound",
            expires.as_millis(),
            now,
        ),
        DhcpEvent::Released { mac, addr } => {
            upsert_lease(conn, *mac, *addr, "", "released", now, now)
        }
        DhcpEvent::Declined { mac, addr } => {
            upsert_lease(conn, *mac, *addr, "", "declined", now, now)
        }
        DhcpEvent::Expired { mac, addr } => {
            upsert_lease(conn, *mac, *addr, "", "expired", now, now)
        }
        DhcpEvent::UnknownMac {
            mac,
            arch,
            vendor_class,
        } => {
            // The handler calls every MAC without a reservation unknown;
            // only those no machine has are discoveries.
            if super::source::machine_by_mac(conn, *mac)?.is_some() {
                return Ok(());
            }
            let key = mac.colon();
            let n =
                diesel::update(rack_unknown_macs::table.filter(rack_unknown_macs::mac.eq(&key)))
                    .set(rack_unknown_macs::last_seen.eq(now))
                    .execute(conn)?;
            if n == 0 {
                diesel::insert_into(rack_unknown_macs::table)
                    .values((
                        rack_unknown_macs::mac.eq(&key),
                        rack_unknown_macs::arch.eq(arch.map(|a| a.to_string()).unwrap_or_default()),
                        rack_unknown_macs::vendor_class
                            .eq(vendor_class.clone().unwrap_or_default()),
                        rack_unknown_macs::first_seen.eq(now),
                        rack_unknown_macs::last_seen.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        }
    }
}

/// Binds the DHCP socket and starts the handler loop, the refresher (subnets
/// and reservations from the database) and the event writer.
pub fn start(
    state: Arc<AppState>,
    cfg: &RackConfig,
    data_dir: &Path,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let backend = Arc::new(DbBackend::new(tx));
    let (server, http_port) = (cfg.address, cfg.http_port);
    // The handler needs a configuration to start with; until a subnet is
    // managed it serves a /32 with no range (answers nobody).
    let initial = {
        let mut conn = state.pool.get()?;
        backend.set_reservations(load_reservations(&mut conn)?);
        load_config(&mut conn, server, http_port)?
            .unwrap_or_else(|| DhcpConfig::new(server, vec![Subnet::new(Ipv4Net::from(server))]))
    };
    std::fs::create_dir_all(data_dir).map_err(Error::Io)?;
    let store = maas_boot::dhcp::FileStore::open(data_dir.join("dhcp-leases.log"))
        .map_err(|e| Error::Config(format!("DHCP lease file: {e}")))?;
    let handler = Arc::new(
        maas_boot::dhcp::Handler::new(initial, Arc::new(store), backend.clone())
            .map_err(|e| Error::Config(format!("DHCP: {e}")))?,
    );
    let sock = maas_boot::dhcp::bind_socket(
        cfg.interface.as_deref(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.dhcp_port),
    )
    .map_err(|e| Error::Config(format!("DHCP socket: {e}")))?;
    tracing::info!(port = cfg.dhcp_port, interface = ?cfg.interface, "rack: DHCP listening");
    let mut tasks = Vec::new();
    let options = maas_boot::dhcp::ServeOptions {
        clock: state.clock.clone(),
        ..Default::default()
    };
    let (h, stop, st) = (handler.clone(), shutdown.clone(), state.clone());
    state.controller.services.set(
        "dhcpd",
        crate::controller::ServiceStatus::Running,
        format!("listening on port {}", cfg.dhcp_port),
    );
    tasks.push(tokio::spawn(async move {
        let serving = maas_boot::dhcp::serve(sock, h, stop, options);
        crate::controller::watch(&st.controller.services, "dhcpd", serving).await;
    }));
    let (st, stop, every) = (
        state.clone(),
        shutdown.clone(),
        Duration::from_millis(cfg.refresh_ms),
    );
    tasks.push(tokio::spawn(async move {
        let mut current = handler.config();
        while super::every(every, &stop).await {
            let r = st
                .pool
                .run(move |c| Ok((load_config(c, server, http_port)?, load_reservations(c)?)))
                .await;
            match r {
                Ok((cfg, rs)) => {
                    backend.set_reservations(rs);
                    if let Some(cfg) = cfg
                        && *current != cfg
                    {
                        match handler.reconfigure(cfg) {
                            Ok(()) => {
                                current = handler.config();
                                tracing::info!("rack: DHCP configuration reloaded");
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "rack: DHCP configuration refused")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "rack: reading the DHCP state"),
            }
        }
    }));
    let st = state;
    tasks.push(tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let now = st.clock.now().as_millis();
            let r = st
                .pool
                .run(move |c| c.write_tx(|c| record_event(c, &ev, now)))
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "rack: recording a DHCP event");
            }
        }
    }));
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_servers_parse_from_lists_and_strings() {
        assert_eq!(
            ipv4s(Some(&serde_json::json!(["10.0.0.1", "bad", "10.0.0.2"]))),
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(
            ipv4s(Some(&serde_json::json!("10.0.0.3, 10.0.0.4"))),
            vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)]
        );
        assert!(ipv4s(None).is_empty());
    }

    #[test]
    fn backend_reservations_and_others() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let b = DbBackend::new(tx);
        let mac: MacAddress = "52:54:00:00:00:01".parse().unwrap();
        let other: MacAddress = "52:54:00:00:00:02".parse().unwrap();
        let addr = Ipv4Addr::new(10, 0, 0, 5);
        b.set_reservations(vec![Reservation {
            mac,
            addr,
            hostname: Some("n1".into()),
        }]);
        assert_eq!(b.reservation(mac).unwrap().addr, addr);
        assert!(b.reserved_for_other(addr, other));
        assert!(!b.reserved_for_other(addr, mac));
        b.event(DhcpEvent::Released { mac, addr });
        assert!(matches!(rx.try_recv(), Ok(DhcpEvent::Released { .. })));
    }
}
