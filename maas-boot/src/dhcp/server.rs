//! The thin tokio loop around [`Handler`]: receive a burst of datagrams,
//! handle each, make the burst's lease changes durable with one
//! [`LeaseStore::sync`](super::LeaseStore::sync) (group commit), then send
//! the burst's replies. On a timer it asks the handler to reclaim lapsed
//! leases. It owns no policy; it is given an already-bound socket
//! ([`bind_socket`] makes one) and stops when the token is cancelled.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use maas_core::{Clock, SystemClock};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::handler::{Action, Destination, DropReason, Handler, Reply};
use crate::{Error, Result};

/// Most datagrams handled before the loop looks at its lease-store sync again.
const BURST: usize = 256;

/// Floor of [`ServeOptions::reclaim_every`]: a scan of the table is O(leases).
const MIN_RECLAIM: std::time::Duration = std::time::Duration::from_millis(10);

/// Binds the DHCP server socket: `addr` (normally 0.0.0.0:67), broadcast
/// allowed, and, when `device` is given, tied to that interface
/// (`SO_BINDTODEVICE`) so broadcasts go out of it and only its traffic comes
/// in. Needs a tokio runtime; needs root (or `CAP_NET_RAW`) for `device`.
pub fn bind_socket(device: Option<&str>, addr: SocketAddrV4) -> Result<UdpSocket> {
    UdpSocket::from_std(bind_std_socket(device, addr)?).map_err(Error::DhcpSocket)
}

/// [`bind_socket`] without tokio: a non-blocking std socket, for callers
/// that bind in another thread (e.g. one that entered a network namespace)
/// and hand the socket to the runtime later.
pub fn bind_std_socket(device: Option<&str>, addr: SocketAddrV4) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(Error::DhcpSocket)?;
    s.set_reuse_address(true).map_err(Error::DhcpSocket)?;
    s.set_broadcast(true).map_err(Error::DhcpSocket)?;
    // A herd of PXE ROMs arrives at once; a deep queue turns their burst
    // into latency instead of loss. The kernel caps it at rmem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    if let Some(dev) = device {
        s.bind_device(Some(dev.as_bytes()))
            .map_err(Error::DhcpSocket)?;
    }
    s.set_nonblocking(true).map_err(Error::DhcpSocket)?;
    s.bind(&SocketAddr::V4(addr).into())
        .map_err(Error::DhcpSocket)?;
    Ok(s.into())
}

/// Knobs of the loop.
#[derive(Clone)]
pub struct ServeOptions {
    /// The time source handed to the handler.
    pub clock: Arc<dyn Clock>,
    /// Port replies to relays go to (67; tests move it).
    pub server_port: u16,
    /// Port replies to clients go to (68; tests move it).
    pub client_port: u16,
    /// How often the loop reclaims lapsed leases ([`Handler::reclaim`]),
    /// measured in real time; the lapse itself is judged by `clock`.
    pub reclaim_every: std::time::Duration,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("server_port", &self.server_port)
            .field("client_port", &self.client_port)
            .field("reclaim_every", &self.reclaim_every)
            .finish_non_exhaustive()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            server_port: 67,
            client_port: 68,
            reclaim_every: std::time::Duration::from_secs(10),
        }
    }
}

/// Counters the loop returns when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Datagrams received.
    pub received: u64,
    /// Replies sent.
    pub replied: u64,
    /// Requests handled without a reply (RELEASE, DECLINE).
    pub silent: u64,
    /// Requests dropped (malformed or not for us).
    pub dropped: u64,
    /// Lease-store syncs (group commits).
    pub syncs: u64,
}

fn target(dest: Destination, o: &ServeOptions) -> SocketAddr {
    let port = match dest {
        Destination::Relay(_) => o.server_port,
        _ => o.client_port,
    };
    let ip = match dest {
        Destination::Relay(a) | Destination::Unicast(a) => a,
        Destination::Broadcast => Ipv4Addr::BROADCAST,
    };
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// Serves DHCP on `socket` until `cancel` fires.
///
/// Replies that promise a lease ([`Reply::durable`]) wait for the lease
/// store: the loop keeps at most one sync in flight on the blocking pool and
/// goes on receiving and answering (OFFERs, NAKs) meanwhile; every durable
/// reply produced while a sync runs rides on the next one (group commit).
pub async fn serve(
    socket: UdpSocket,
    handler: Arc<Handler>,
    cancel: CancellationToken,
    options: ServeOptions,
) -> Result<ServeStats> {
    let mut stats = ServeStats::default();
    let mut buf = vec![0u8; 4096];
    let store = Arc::clone(handler.store());
    let mut inflight: Option<tokio::task::JoinHandle<Result<()>>> = None;
    // Durable replies covered by the sync in flight, and those waiting for the next.
    let mut waiting: Vec<Reply> = Vec::new();
    let mut pending: Vec<Reply> = Vec::new();
    let mut reclaim = tokio::time::interval(options.reclaim_every.max(MIN_RECLAIM));
    reclaim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = reclaim.tick() => {
                let n = handler.reclaim(options.clock.now());
                if n > 0 {
                    tracing::debug!(lapsed = n, "DHCP leases expired");
                }
            }
            done = async {
                match inflight.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            } => {
                inflight = None;
                stats.syncs += 1;
                let ok = match done {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => { tracing::error!(error = %e, "lease store sync failed"); false }
                    Err(e) => { tracing::error!(error = %e, "lease store sync task failed"); false }
                };
                if ok {
                    for r in waiting.drain(..) {
                        send(&socket, &r, &options, &mut stats).await;
                    }
                } else {
                    // Promising leases we could not record would hand the
                    // same address out twice after a restart: stay silent.
                    stats.dropped += waiting.len() as u64;
                    waiting.clear();
                }
            }
            r = socket.readable() => {
                r.map_err(Error::DhcpSocket)?;
                for _ in 0..BURST {
                    let (n, src) = match socket.try_recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        // ICMP errors from earlier sends surface here; not fatal.
                        Err(e) => {
                            tracing::debug!(error = %e, "DHCP receive error");
                            continue;
                        }
                    };
                    stats.received += 1;
                    match handler.handle_bytes(&buf[..n], options.clock.now()) {
                        Action::Reply(r) if r.durable => pending.push(r),
                        Action::Reply(r) => send(&socket, &r, &options, &mut stats).await,
                        Action::Silent => stats.silent += 1,
                        Action::Drop(reason) => {
                            stats.dropped += 1;
                            match reason {
                                DropReason::Malformed(_) | DropReason::PoolExhausted => {
                                    tracing::warn!(%src, %reason, "DHCP request dropped")
                                }
                                _ => tracing::debug!(%src, %reason, "DHCP request dropped"),
                            }
                        }
                    }
                }
            }
        }
        if inflight.is_none() {
            if store.dirty() {
                waiting.append(&mut pending);
                let s = Arc::clone(&store);
                inflight = Some(tokio::task::spawn_blocking(move || s.sync()));
            } else {
                // Everything recorded is already durable (or the store is
                // not durable at all).
                for r in pending.drain(..) {
                    send(&socket, &r, &options, &mut stats).await;
                }
            }
        }
    }
    if let Some(h) = inflight {
        // Let the last commit finish so the log is not left mid-write by us.
        let _ = h.await;
    }
    if store.dirty() {
        // Changes made since (a reclaim, a release) are not lost on shutdown.
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.sync()).await {
            Ok(Ok(())) => stats.syncs += 1,
            Ok(Err(e)) => tracing::error!(error = %e, "lease store sync failed"),
            Err(e) => tracing::error!(error = %e, "lease store sync task failed"),
        }
    }
    Ok(stats)
}

async fn send(socket: &UdpSocket, r: &Reply, options: &ServeOptions, stats: &mut ServeStats) {
    let bytes = match r.encode() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "DHCP reply not encodable");
            return;
        }
    };
    let to = target(r.dest, options);
    let sent = match socket.try_send_to(&bytes, to) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(&bytes, to).await,
        x => x,
    };
    match sent {
        Ok(_) => stats.replied += 1,
        Err(e) => tracing::debug!(%to, error = %e, "DHCP send failed"),
    }
}
