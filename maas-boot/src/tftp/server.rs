//! The TFTP server loop: a bound socket and a cancellation token in, one tokio
//! task per transfer on its own ephemeral port out. Deciding what to do with a
//! request ([`accept`]) and running a transfer ([`Transfer`]) are pure; this
//! module only moves datagrams and file bytes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::options::{Limits, Negotiated, negotiate};
use super::packet::{ErrorCode, MAX_PACKET, Packet, Request};
use super::transfer::{Action, Transfer};
use super::workers::Workers;
use crate::tree::{BootFile, BootPath, BootTree, Client};
use crate::{Error, Result};

/// Server settings.
#[derive(Clone, Debug)]
pub struct TftpConfig {
    /// Negotiation limits.
    pub limits: Limits,
    /// Retransmissions of one window before a transfer is abandoned.
    pub max_retries: u32,
    /// Transfers running at once; requests beyond it get ERROR 0 "server busy".
    pub max_transfers: usize,
    /// Transfers running at once for one client address; beyond it, ERROR 0.
    /// A netbooting machine runs one at a time; this keeps one address from
    /// taking every slot (and every ephemeral port).
    pub max_per_client: usize,
    /// Largest file sent in netascii mode (it is converted in memory).
    pub max_netascii: u64,
    /// Threads that run transfers, each with its own single-threaded runtime
    /// (see `workers.rs` for why); 0 runs them as tasks on the caller's runtime.
    pub workers: usize,
    /// How long a windowed transfer that has its worker thread to itself polls its
    /// socket for the client's ACK before going to sleep (0 turns it off; it
    /// only applies with `workers` > 0). A sleeping thread costs a wake-up per
    /// window: on a virtual machine an inter-processor interrupt and a halted
    /// CPU's exit, tens of µs against a window's ~50 µs of client work. A
    /// transfer whose client does not answer within this time stops polling
    /// for 32, then 64, … up to 4,096 rounds, so slow clients cost next to
    /// nothing.
    pub busy_poll: std::time::Duration,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_retries: 5,
            max_transfers: 2048,
            max_per_client: 64,
            max_netascii: 16 << 20,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8),
            busy_poll: std::time::Duration::from_micros(100),
        }
    }
}

/// What the server does with a datagram that arrived on its listening port.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start a read transfer of this path.
    Read {
        /// The validated path.
        path: BootPath,
        /// Whether the content must be converted to netascii.
        netascii: bool,
        /// The client's options, for negotiation once the size is known.
        options: Vec<(String, String)>,
    },
    /// Answer with this ERROR and forget the client.
    Refuse(ErrorCode, String),
    /// Say nothing (garbage, or a packet that only makes sense mid-transfer).
    Drop,
}

/// Decides what to do with a datagram sent to the listening port. Pure.
pub fn accept(datagram: &[u8]) -> Decision {
    match Packet::parse(datagram) {
        Ok(Packet::Rrq(Request {
            filename,
            mode,
            options,
        })) => {
            let netascii = match mode.as_str() {
                "octet" => false,
                "netascii" => true,
                other => {
                    return Decision::Refuse(
                        ErrorCode::IllegalOperation,
                        format!("unsupported mode {other:?}"),
                    );
                }
            };
            match BootPath::parse(&filename) {
                Ok(path) => Decision::Read {
                    path,
                    netascii,
                    options,
                },
                Err(e) => Decision::Refuse(ErrorCode::AccessViolation, e.to_string()),
            }
        }
        Ok(Packet::Wrq(_)) => Decision::Refuse(
            ErrorCode::AccessViolation,
            "write requests are not accepted".into(),
        ),
        // A stray ERROR/ACK/DATA on the listening port belongs to no transfer.
        Ok(_) => Decision::Drop,
        // Malformed requests get an answer so a real client stops retrying;
        // anything that is not even a request is dropped to avoid reflection.
        Err(e) if matches!(datagram.get(..2), Some([0, 1]) | Some([0, 2])) => {
            Decision::Refuse(ErrorCode::IllegalOperation, e.to_string())
        }
        Err(_) => Decision::Drop,
    }
}

/// The TFTP error code for a tree error.
pub fn error_code(e: &Error) -> ErrorCode {
    match e {
        Error::NotFound(_) => ErrorCode::FileNotFound,
        Error::AccessDenied(_) => ErrorCode::AccessViolation,
        _ => ErrorCode::Undefined,
    }
}

/// Transfers running per client address.
#[derive(Debug, Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `ip` if it has fewer than `max` transfers running.
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut c = self.counts();
        let n = c.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One running transfer of a client; gives its slot back when dropped.
struct ClientSlot {
    table: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut c = self.table.counts();
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

/// Serves read requests on `socket` from `tree` until `cancel` fires.
///
/// Each transfer runs in its own task on a fresh socket bound to the listening
/// address with port 0 (RFC 1350's transfer identifier) and connected to the
/// client, so the kernel filters out strangers.
pub async fn serve(
    socket: UdpSocket,
    tree: Arc<dyn BootTree>,
    config: TftpConfig,
    cancel: CancellationToken,
) -> Result<()> {
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("reading the TFTP socket address", e))?;
    if local.ip().is_unspecified() {
        pktinfo::enable(&socket, local.is_ipv6())
            .map_err(|e| Error::io("enabling packet info on the TFTP socket", e))?;
    }
    let slots = Arc::new(Semaphore::new(config.max_transfers));
    let workers = Workers::start(config.workers, "tftp-transfer")
        .map_err(|e| Error::io("starting TFTP transfer threads", e))?;
    let per_client = Arc::new(PerClient::default());
    let config = Arc::new(config);
    let mut buf = vec![0u8; MAX_PACKET + 1];
    tracing::info!(%local, "tftp: serving");
    loop {
        let (n, peer, to) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = recv_request(&socket, &mut buf, local) => match r {
                Ok((n, peer, to)) => (n, peer, to),
                // ICMP errors from earlier sends surface here on Linux; they say
                // nothing about the next request.
                Err(e) => { tracing::debug!(error = %e, "tftp: recv"); continue; }
            },
        };
        match accept(&buf[..n]) {
            Decision::Drop => tracing::debug!(%peer, "tftp: dropped a stray packet"),
            Decision::Refuse(code, msg) => {
                tracing::info!(%peer, code = code.code(), %msg, "tftp: refused");
                send_error(&socket, peer, code, &msg).await;
            }
            Decision::Read {
                path,
                netascii,
                options,
            } => {
                let Some(client_slot) = per_client.acquire(peer.ip(), config.max_per_client) else {
                    tracing::info!(%peer, "tftp: refused, too many transfers from this address");
                    send_error(
                        &socket,
                        peer,
                        ErrorCode::Undefined,
                        "too many transfers from your address",
                    )
                    .await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    send_error(&socket, peer, ErrorCode::Undefined, "server busy").await;
                    continue;
                };
                let tree = tree.clone();
                let config = config.clone();
                let cancel = cancel.child_token();
                workers.spawn(async move {
                    let _permit = permit;
                    let _client_slot = client_slot;
                    // The transfer answers from the address the request came
                    // to, and configs name that address as the rack.
                    let client = Client {
                        peer,
                        local: SocketAddr::new(to, local.port()),
                    };
                    if let Err(e) = run(
                        tree,
                        config,
                        client,
                        path.clone(),
                        netascii,
                        options,
                        cancel,
                    )
                    .await
                    {
                        tracing::info!(%peer, %path, error = %e, "tftp: transfer failed");
                    }
                });
            }
        }
    }
    tracing::info!(%local, "tftp: stopped");
    Ok(())
}

/// Receives a datagram on the listening socket: its length, sender and the
/// local address it was sent to. On a socket bound to a wildcard address the
/// latter comes from `IP_PKTINFO` / `IPV6_RECVPKTINFO` (enabled by
/// [`serve`]), so a multi-homed rack answers each client from the address the
/// client used; otherwise it is the bound address.
async fn recv_request(
    socket: &UdpSocket,
    buf: &mut [u8],
    local: SocketAddr,
) -> std::io::Result<(usize, SocketAddr, IpAddr)> {
    if !local.ip().is_unspecified() {
        let (n, peer) = socket.recv_from(buf).await?;
        return Ok((n, peer, local.ip()));
    }
    loop {
        socket.readable().await?;
        match socket.try_io(tokio::io::Interest::READABLE, || {
            pktinfo::recv(socket.as_raw_fd(), buf)
        }) {
            Ok((n, peer, to)) => return Ok((n, peer, to.unwrap_or(local.ip()))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `recvmsg` with the packet-info control message, through `nix` (the
/// workspace forbids `unsafe`).
mod pktinfo {
    use std::io::IoSliceMut;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::fd::{AsFd, RawFd};

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
    };

    /// Asks the kernel to report each datagram's destination address.
    pub(super) fn enable(socket: &impl AsFd, v6: bool) -> std::io::Result<()> {
        if v6 {
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        } else {
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
        }
        Ok(())
    }

    /// One datagram: length, sender, and the local address it came to.
    pub(super) fn recv(
        fd: RawFd,
        buf: &mut [u8],
    ) -> std::io::Result<(usize, SocketAddr, Option<IpAddr>)> {
        let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
        let peer = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                    })
            })
            .ok_or_else(|| std::io::Error::other("datagram without a sender address"))?;
        let mut to = None;
        for c in msg.cmsgs()? {
            match c {
                // ipi_spec_dst: the local address the datagram was for.
                ControlMessageOwned::Ipv4PacketInfo(i) => {
                    to = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        i.ipi_spec_dst.s_addr,
                    ))));
                }
                ControlMessageOwned::Ipv6PacketInfo(i) => {
                    to = Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        Ok((msg.bytes, peer, to))
    }
}

async fn send_error(socket: &UdpSocket, peer: SocketAddr, code: ErrorCode, msg: &str) {
    let pkt = Packet::Error {
        code,
        message: msg.to_owned(),
    }
    .encode();
    if let Err(e) = socket.send_to(&pkt, peer).await {
        tracing::debug!(%peer, error = %e, "tftp: could not send ERROR");
    }
}

/// Converts to netascii: LF becomes CR LF, a lone CR becomes CR NUL (RFC 764).
fn to_netascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

async fn run(
    tree: Arc<dyn BootTree>,
    config: Arc<TftpConfig>,
    client: Client,
    path: BootPath,
    netascii: bool,
    options: Vec<(String, String)>,
    cancel: CancellationToken,
) -> Result<()> {
    let bind: SocketAddr = SocketAddr::new(client.local.ip(), 0);
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| Error::io("binding a TFTP transfer socket", e))?;
    sock.connect(client.peer)
        .await
        .map_err(|e| Error::io("connecting a TFTP transfer socket", e))?;

    let mut file = match tree.open(&path, &client).await {
        Ok(f) => f,
        Err(e) => {
            let code = error_code(&e);
            let pkt = Packet::Error {
                code,
                message: match code {
                    ErrorCode::FileNotFound => "file not found".into(),
                    ErrorCode::AccessViolation => "access violation".into(),
                    // Don't leak server-side paths or I/O details to the network.
                    _ => "could not read file".into(),
                },
            };
            let _ = sock.send(&pkt.encode()).await;
            return Err(e);
        }
    };
    tracing::debug!(peer = %client.peer, %path, size = file.len(), "tftp: read request");
    if netascii {
        if file.len() > config.max_netascii {
            let pkt = Packet::Error {
                code: ErrorCode::Undefined,
                message: "file too large for netascii, use octet mode".into(),
            };
            let _ = sock.send(&pkt.encode()).await;
            return Err(Error::Invalid(format!("{path}: too large for netascii")));
        }
        let mut raw = vec![0u8; file.len() as usize];
        let n = file.read_at(0, &mut raw)?;
        raw.truncate(n);
        file = BootFile::Bytes(to_netascii(&raw).into());
    }
    let size = file.len();
    let Negotiated {
        blksize,
        windowsize,
        timeout,
        oack,
    } = negotiate(&options, size, &config.limits);

    let mut transfer = Transfer::new(
        size,
        blksize,
        windowsize,
        !oack.is_empty(),
        timeout,
        config.max_retries,
        tokio::time::Instant::now().into_std(),
    );
    let oack_pkt = Packet::Oack { options: oack }.encode();
    // One window of DATA packets, laid out back to back (header and payload
    // contiguous), filled with one positioned read and sent with one system
    // call: a UDP GSO send where the kernel supports it, else sendmmsg.
    let mut window = Window::new(blksize, windowsize);
    // ACKs are 4 bytes; anything that does not fit is not an ACK anyway.
    let mut inbuf = [0u8; 1024];
    // Made once: a fresh `cancelled()` or `sleep` per packet would register
    // and unregister a waiter / timer for every ACK.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    // The timer only ever fires late, never early: when it fires the transfer
    // checks its own deadline (moved on by every ACK) and re-arms if that is
    // still ahead, so ACKs never touch the timer.
    let timer = tokio::time::sleep_until(tokio::time::Instant::from_std(transfer.deadline()));
    tokio::pin!(timer);
    // Counted only on a worker thread (a task there never moves).
    let _active = (config.workers > 0).then(Alone::enter);
    // Windows only: a lockstep client answers each block within a few µs,
    // and a server thread that sleeps lets the scheduler run that client on
    // the same CPU (no wake-up interrupt at all), which polling would prevent.
    let mut poll = BusyPoll::new(if config.workers > 0 && windowsize > 1 {
        config.busy_poll
    } else {
        std::time::Duration::ZERO
    });
    let mut action = transfer.start(tokio::time::Instant::now().into_std());
    loop {
        match action {
            Action::SendOack => send(&sock, &oack_pkt).await?,
            Action::SendBlocks { first, last } => {
                window.fill(&file, &transfer, first, last, size)?;
                window.send(&sock).await?;
            }
            Action::Wait => {}
            Action::Done => return Ok(()),
            Action::GiveUp => {
                return Err(Error::Invalid(format!(
                    "{path}: no ACK after {} retries",
                    config.max_retries
                )));
            }
        }
        if windowsize > 1 {
            // Read the next window while the client works through this one
            // (when polling, the CPU is ours until its ACK anyway), not after
            // the ACK: measured +25 % on a 64 MiB windowed transfer.
            let next = transfer.sent() + 1;
            if next <= transfer.final_block() {
                let last = (next + u64::from(windowsize) - 1).min(transfer.final_block());
                window.prefetch(&file, &transfer, next, last, size)?;
            }
        }
        // The next datagram: polled for while the client is quick, else
        // slept for (or the timer, or cancellation).
        let polled = if poll.wanted() {
            poll.poll(&sock, &mut inbuf)
        } else {
            None
        };
        let received = match polled {
            Some(r) => r,
            None => tokio::select! {
                biased;
                r = sock.recv(&mut inbuf) => r,
                () = &mut timer => {
                    action = transfer.on_timeout(tokio::time::Instant::now().into_std());
                    timer.as_mut().reset(tokio::time::Instant::from_std(transfer.deadline()));
                    continue;
                }
                () = &mut cancelled => return Ok(()),
            },
        };
        // An error is ICMP port unreachable: the client went away.
        let n = received.map_err(|e| Error::io("receiving an ACK", e))?;
        action = match on_datagram(&mut transfer, &inbuf[..n], &path) {
            Ok(a) => a,
            Err(why) => return Err(refuse(&sock, why).await),
        };
    }
}

/// What a datagram from the client means for the transfer: the next action,
/// or why the transfer ends (`true`: answer with ERROR 4 "expected an ACK").
fn on_datagram(
    transfer: &mut Transfer,
    data: &[u8],
    path: &BootPath,
) -> std::result::Result<Action, (bool, String)> {
    let now = tokio::time::Instant::now().into_std();
    match Packet::parse(data) {
        Ok(Packet::Ack { block }) => Ok(transfer.on_ack(block, now)),
        Ok(Packet::Error { code, message }) => Err((
            false,
            format!("{path}: client sent ERROR {}: {message}", code.code()),
        )),
        Ok(_) | Err(_) => Err((true, format!("{path}: client sent a non-ACK"))),
    }
}

/// Ends a transfer the client broke off or confused.
async fn refuse(sock: &UdpSocket, (illegal, why): (bool, String)) -> Error {
    if illegal {
        let pkt = Packet::Error {
            code: ErrorCode::IllegalOperation,
            message: "expected an ACK".into(),
        };
        let _ = sock.send(&pkt.encode()).await;
    }
    Error::Invalid(why)
}

thread_local! {
    /// Transfers running on this worker thread.
    static ACTIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a transfer on its worker thread for as long as it lives.
struct Alone;

impl Alone {
    fn enter() -> Self {
        ACTIVE.with(|a| a.set(a.get() + 1));
        Alone
    }

    /// Whether this thread runs one transfer only (polling would hold up
    /// the others).
    fn alone() -> bool {
        ACTIVE.with(|a| a.get() == 1)
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(a.get().saturating_sub(1)));
    }
}

/// Busy-polling for the next ACK (see [`TftpConfig::busy_poll`]), with a
/// back-off for clients that answer slower than the limit.
struct BusyPoll {
    limit: std::time::Duration,
    /// Rounds left without polling, and the next back-off.
    skip: u32,
    backoff: u32,
}

impl BusyPoll {
    const FIRST_BACKOFF: u32 = 32;
    const MAX_BACKOFF: u32 = 4096;

    fn new(limit: std::time::Duration) -> Self {
        Self {
            limit,
            skip: 0,
            backoff: Self::FIRST_BACKOFF,
        }
    }

    /// Whether to poll before this wait.
    fn wanted(&mut self) -> bool {
        if self.limit.is_zero() {
            return false;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        Alone::alone()
    }

    /// Polls the socket without sleeping for up to the limit; the length of
    /// the datagram that arrived, if one did.
    fn poll(&mut self, sock: &UdpSocket, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        use nix::sys::socket::{MsgFlags, recv};
        let t0 = std::time::Instant::now();
        loop {
            match recv(sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    self.backoff = Self::FIRST_BACKOFF;
                    return Some(Ok(n));
                }
                Err(nix::errno::Errno::EAGAIN) if t0.elapsed() < self.limit => {
                    std::hint::spin_loop()
                }
                Err(nix::errno::Errno::EAGAIN) => {
                    self.skip = self.backoff;
                    self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
                    return None;
                }
                Err(nix::errno::Errno::EINTR) => {}
                // ICMP port unreachable: the client went away.
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// File blocks laid out as DATA packets, back to back: cached block `i`
/// (index `base + i`) is `bytes[i * stride..]`, a 4-byte header then up to
/// `blksize` bytes. It holds a whole number of windows and at least
/// [`READ_AHEAD`] bytes, so one positioned read serves several windows (or,
/// in lockstep, a few dozen blocks) and a retransmission within what was read
/// needs no read at all.
struct Window {
    blksize: usize,
    stride: usize,
    bytes: Vec<u8>,
    /// Block index of the first cached packet (0: nothing cached).
    base: u64,
    /// Cached packets and the length of the last one's payload.
    cached: usize,
    cached_last_len: usize,
    /// The packets of the last [`Window::fill`]: from `start` (a byte offset
    /// into `bytes`), `count` packets, `len` bytes.
    start: usize,
    count: usize,
    len: usize,
    /// UDP GSO is on for the socket (segments of `stride` bytes).
    gso: bool,
}

/// Most segments one GSO send may carry (the kernel's UDP_MAX_SEGMENTS), and
/// most bytes (one UDP datagram's payload).
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65_507;
/// File bytes read at once: a lockstep transfer of 1468-byte blocks reads
/// 44 blocks per system call instead of one.
const READ_AHEAD: usize = 64 << 10;
/// Packets of a window sent one by one before the GSO send of the rest.
const LEAD_PACKETS: usize = 2;

impl Window {
    fn new(blksize: u16, windowsize: u16) -> Self {
        let blocks = usize::from(windowsize.max(1));
        let blksize = usize::from(blksize.max(1));
        let stride = blksize + 4;
        // Only windows benefit; a lockstep transfer sends one packet a time.
        // The segment size goes with each data send (a control message), not
        // on the socket, so the OACK and ERRORs are never cut into segments.
        let gso = blocks > 1 && stride <= GSO_MAX_BYTES && u16::try_from(stride).is_ok();
        let windows = (READ_AHEAD / (stride * blocks)).max(1);
        Self {
            blksize,
            stride,
            bytes: vec![0; stride * blocks * windows],
            base: 0,
            cached: 0,
            cached_last_len: 0,
            start: 0,
            count: 0,
            len: 0,
            gso,
        }
    }

    /// Makes blocks `first..=last` (at most one window) ready to send, reading
    /// them (and what follows, up to the buffer's size) from `file` unless
    /// they are cached already.
    fn fill(
        &mut self,
        file: &BootFile,
        transfer: &Transfer,
        first: u64,
        last: u64,
        size: u64,
    ) -> Result<()> {
        let last = self.prefetch(file, transfer, first, last, size)?;
        let count = (last - first + 1) as usize;
        let to = (last - self.base) as usize;
        let last_len = if to + 1 == self.cached {
            self.cached_last_len
        } else {
            self.blksize
        };
        self.start = (first - self.base) as usize * self.stride;
        self.count = count;
        self.len = (count - 1) * self.stride + 4 + last_len;
        Ok(())
    }

    /// Makes sure blocks `first..=last` are cached (as many as the buffer
    /// holds), reading from `first` on unless they are; leaves what the last
    /// [`Window::fill`] chose to send alone. Returns the last block cached
    /// of those asked for.
    fn prefetch(
        &mut self,
        file: &BootFile,
        transfer: &Transfer,
        first: u64,
        last: u64,
        size: u64,
    ) -> Result<u64> {
        let capacity = self.bytes.len() / self.stride;
        let count = usize::try_from(last.saturating_sub(first) + 1)
            .unwrap_or(usize::MAX)
            .min(capacity);
        let last = first + count as u64 - 1;
        if self.base != 0 && first >= self.base && last < self.base + self.cached as u64 {
            return Ok(last);
        }
        let n = usize::try_from(transfer.final_block().saturating_sub(first) + 1)
            .unwrap_or(usize::MAX)
            .min(capacity);
        let (offset, _) = transfer.block_range(first, size);
        let mut lens = 0;
        let mut last_len = 0;
        for i in 0..n {
            let (_, len) = transfer.block_range(first + i as u64, size);
            let block = (first + i as u64) as u16; // wraps after 65535, as the wire does
            let h = &mut self.bytes[i * self.stride..i * self.stride + 4];
            h[0..2].copy_from_slice(&3u16.to_be_bytes());
            h[2..4].copy_from_slice(&block.to_be_bytes());
            lens += len;
            last_len = len;
        }
        // Nothing is cached while the buffer is being rewritten.
        self.base = 0;
        let got = self.read(file, offset, n, lens)?;
        if got < lens {
            return Err(Error::Invalid("file shrank while being sent".into()));
        }
        self.base = first;
        self.cached = n;
        self.cached_last_len = last_len;
        Ok(last)
    }

    /// Reads `total` file bytes at `offset` into the payloads of the first
    /// `count` packets; returns how many were read.
    fn read(&mut self, file: &BootFile, offset: u64, count: usize, total: usize) -> Result<usize> {
        let (stride, blksize) = (self.stride, self.blksize);
        match file {
            BootFile::File { file, .. } => {
                use std::io::IoSliceMut;
                let mut done = 0;
                // One preadv for what is read ahead (more only for tiny
                // blocks, or on a short read).
                while done < total {
                    let first = done / blksize;
                    let skip = done % blksize;
                    let mut iovs: Vec<IoSliceMut<'_>> = self
                        .bytes
                        .chunks_mut(stride)
                        .take(count)
                        .enumerate()
                        .skip(first)
                        // The kernel takes at most IOV_MAX (1024) at once.
                        .take(1024)
                        .map(|(i, pkt)| {
                            let want = (total - i * blksize).min(blksize);
                            let from = if i == first { 4 + skip } else { 4 };
                            IoSliceMut::new(&mut pkt[from..4 + want])
                        })
                        .collect();
                    match nix::sys::uio::preadv(file, &mut iovs, (offset + done as u64) as i64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => return Err(Error::io("reading a boot file", e.into())),
                    }
                }
                Ok(done)
            }
            BootFile::Bytes(_) => {
                let mut done = 0;
                for i in 0..count {
                    let want = (total - done).min(blksize);
                    let pkt = &mut self.bytes[i * stride + 4..i * stride + 4 + want];
                    let n = file.read_at(offset + done as u64, pkt)?;
                    done += n;
                    if n < want {
                        break;
                    }
                }
                Ok(done)
            }
        }
    }

    /// Sends the packets of the last [`Window::fill`].
    async fn send(&mut self, sock: &UdpSocket) -> Result<()> {
        let io = |e| Error::io("sending TFTP data", e);
        let window = &self.bytes[self.start..self.start + self.len];
        if self.count == 1 {
            sock.send(window).await.map_err(io)?;
            return Ok(());
        }
        let mut sent = 0;
        if self.gso {
            // The first packets leave on their own: the client is woken by
            // the first while the kernel still segments the rest, instead of
            // after the whole window (measured: +5–10 % on a 64 MiB
            // windowed transfer on the bench's veth).
            while sent < LEAD_PACKETS.min(self.count - 1) {
                let end = ((sent + 1) * self.stride).min(self.len);
                sock.send(&window[sent * self.stride..end])
                    .await
                    .map_err(io)?;
                sent += 1;
            }
            // Whole packets per send, within the kernel's limits.
            let per_send = (GSO_MAX_BYTES / self.stride).clamp(1, GSO_MAX_SEGMENTS);
            while sent < self.count {
                let start = sent * self.stride;
                let end = (start + per_send.min(self.count - sent) * self.stride).min(self.len);
                match send_gso(sock, &window[start..end], self.stride as u16).await {
                    Ok(()) => sent += per_send,
                    // A kernel without UDP GSO, or segments larger than the
                    // path MTU allows (a big blksize on a small-MTU link):
                    // plain datagrams from here on, which the kernel may
                    // fragment.
                    Err(e)
                        if matches!(
                            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                            nix::errno::Errno::EINVAL
                                | nix::errno::Errno::EIO
                                | nix::errno::Errno::ENOPROTOOPT
                                | nix::errno::Errno::EOPNOTSUPP
                        ) =>
                    {
                        self.gso = false;
                        break;
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            if sent >= self.count {
                return Ok(());
            }
        }
        let fd = sock.as_raw_fd();
        while sent < self.count {
            let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
                send_mmsg(fd, window, self.stride, sent)
            });
            match r {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    sock.writable().await.map_err(io)?
                }
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }
}

/// One send of `data`, which the kernel cuts into datagrams of `segment`
/// bytes (UDP GSO: one trip down the stack for the whole window).
async fn send_gso(sock: &UdpSocket, data: &[u8], segment: u16) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::io::IoSlice;
    loop {
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            let iov = [IoSlice::new(data)];
            let cmsg = [ControlMessage::UdpGsoSegments(&segment)];
            sendmsg::<SockaddrStorage>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                .map_err(std::io::Error::from)
        });
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => sock.writable().await?,
            Err(e) => return Err(e),
        }
    }
}

/// `sendmmsg` of the packets of `window` (each `stride` bytes but the last)
/// from packet `from` on; returns how many went.
fn send_mmsg(fd: RawFd, window: &[u8], stride: usize, from: usize) -> std::io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    let iovs: Vec<[IoSlice<'_>; 1]> = window
        .chunks(stride)
        .skip(from)
        .map(|p| [IoSlice::new(p)])
        .collect();
    let addrs: Vec<Option<SockaddrStorage>> = vec![None; iovs.len()];
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    // Holds raw pointers (not Send): built per call, never held across an await.
    let mut mm = MultiHeaders::<SockaddrStorage>::preallocate(iovs.len(), None);
    let res = sendmmsg(fd, &mut mm, &iovs, addrs, no_cmsgs, MsgFlags::empty())?;
    Ok(res.count())
}

async fn send(sock: &UdpSocket, pkt: &[u8]) -> Result<()> {
    sock.send(pkt)
        .await
        .map(|_| ())
        .map_err(|e| Error::io("sending a TFTP packet", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A file of `blocks` full blocks of `blksize` plus 10 bytes, each block
    /// filled with its own index.
    fn block_file(blksize: usize, blocks: usize) -> (tempfile::NamedTempFile, BootFile, u64) {
        use std::io::Write as _;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for i in 0..blocks {
            f.write_all(&vec![(i + 1) as u8; blksize]).unwrap();
        }
        f.write_all(&[0xee; 10]).unwrap();
        let size = (blksize * blocks + 10) as u64;
        let file = BootFile::File {
            file: f.reopen().unwrap(),
            len: size,
            modified: None,
        };
        (f, file, size)
    }

    /// A transfer with a 1 s timeout and 5 retries.
    fn transfer(size: u64, blksize: u16, windowsize: u16, oack: bool) -> Transfer {
        Transfer::new(
            size,
            blksize,
            windowsize,
            oack,
            Duration::from_secs(1),
            5,
            Instant::now(),
        )
    }

    fn packet(w: &Window) -> &[u8] {
        &w.bytes[w.start..w.start + w.len]
    }

    #[test]
    fn lockstep_blocks_are_read_ahead_and_served_from_memory() {
        let (tmp, file, size) = block_file(512, 300);
        let t = transfer(size, 512, 1, false);
        let mut w = Window::new(512, 1);
        let capacity = (w.bytes.len() / w.stride) as u64;
        assert_eq!(capacity, (READ_AHEAD / 516) as u64);
        w.fill(&file, &t, 1, 1, size).unwrap();
        assert_eq!(&packet(&w)[..4], &[0, 3, 0, 1]);
        assert_eq!(packet(&w).len(), 516);
        // The file is emptied: every block already read ahead still comes
        // from memory, byte for byte, with its own header…
        tmp.as_file().set_len(0).unwrap();
        for b in 2..=capacity {
            w.fill(&file, &t, b, b, size).unwrap();
            assert_eq!(&packet(&w)[..4], &[0, 3, 0, b as u8], "block {b}");
            assert!(packet(&w)[4..].iter().all(|&x| x == b as u8), "block {b}");
        }
        // …and a retransmission of an earlier block too.
        w.fill(&file, &t, 3, 3, size).unwrap();
        assert!(packet(&w)[4..].iter().all(|&x| x == 3));
        // The first block past what was read needs the file again.
        assert!(w.fill(&file, &t, capacity + 1, capacity + 1, size).is_err());
    }

    #[test]
    fn windows_are_read_ahead_whole_and_the_short_last_block_kept() {
        let (_tmp, file, size) = block_file(1468, 40);
        let t = transfer(size, 1468, 16, true);
        let mut w = Window::new(1468, 16);
        // 64 KiB holds two windows of 16 × 1472 bytes.
        assert_eq!(w.bytes.len(), 2 * 16 * 1472);
        w.fill(&file, &t, 17, 32, size).unwrap();
        assert_eq!((w.count, w.len), (16, 16 * 1472));
        assert_eq!(&packet(&w)[..4], &[0, 3, 0, 17]);
        // That read went on to the final block (41, 10 bytes): 33..=41 is
        // served from it, the short tail included.
        assert_eq!((w.base, w.cached), (17, 25));
        w.fill(&file, &t, 33, 41, size).unwrap();
        assert_eq!(w.base, 17);
        assert_eq!((w.count, w.len), (9, 8 * 1472 + 4 + 10));
        let p = packet(&w);
        assert_eq!(&p[8 * 1472..8 * 1472 + 4], &[0, 3, 0, 41]);
        assert!(p[8 * 1472 + 4..].iter().all(|&x| x == 0xee));
        assert!(p[4..1472].iter().all(|&x| x == 33));
        // A window before what is cached is read again from its first block.
        w.fill(&file, &t, 1, 16, size).unwrap();
        assert_eq!((w.base, w.cached), (1, 32));
        // A read that stops short of the final block: full blocks only.
        w.fill(&file, &t, 34, 35, size).unwrap();
        assert_eq!((w.count, w.len), (2, 1472 + 4 + 1468));
    }

    #[test]
    fn prefetching_keeps_the_window_to_send() {
        let (tmp, file, size) = block_file(1468, 100);
        let t = transfer(size, 1468, 16, true);
        let mut w = Window::new(1468, 16);
        w.fill(&file, &t, 17, 32, size).unwrap();
        let sending = packet(&w).to_vec();
        // 33..=48 is cached already (the read at 17 took two windows)…
        w.prefetch(&file, &t, 33, 48, size).unwrap();
        assert_eq!(w.base, 17);
        // …49..=64 is not: read now, replacing the cache…
        w.prefetch(&file, &t, 49, 64, size).unwrap();
        assert_eq!((w.base, w.cached), (49, 32));
        // …while what the last fill chose to send keeps its place and length.
        assert_eq!((w.start, w.count, w.len), (0, 16, 16 * 1472));
        // The next fill is served from what was prefetched.
        tmp.as_file().set_len(0).unwrap();
        w.fill(&file, &t, 49, 64, size).unwrap();
        assert_eq!(&packet(&w)[..4], &[0, 3, 0, 49]);
        assert!(packet(&w)[4..1472].iter().all(|&x| x == 49));
        assert_ne!(packet(&w), &sending[..]);
    }

    /// Every window, in order and after random restarts (gaps, timeouts),
    /// carries the right block numbers and bytes — also with 8-byte blocks,
    /// where one read ahead is more than the kernel's 1,024 iovecs.
    #[test]
    fn windows_carry_the_right_blocks_after_any_restart() {
        use std::io::Write as _;
        let content: Vec<u8> = (0..560_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&content).unwrap();
        let size = content.len() as u64;
        for file in [
            BootFile::Bytes(content.clone().into()),
            BootFile::File {
                file: tmp.reopen().unwrap(),
                len: size,
                modified: None,
            },
        ] {
            let t = transfer(size, 8, 64, true);
            let mut w = Window::new(8, 64);
            let (mut x, mut first, mut sent) = (12_345u64, 1u64, 0u64);
            while first <= t.final_block() {
                let last = (first + 63).min(t.final_block());
                w.fill(&file, &t, first, last, size).unwrap();
                let packets: Vec<&[u8]> = packet(&w).chunks(12).collect();
                assert_eq!(packets.len() as u64, last - first + 1);
                for (i, p) in packets.iter().enumerate() {
                    let index = first + i as u64;
                    assert_eq!(u16::from_be_bytes([p[2], p[3]]), index as u16);
                    let off = ((index - 1) * 8) as usize;
                    assert_eq!(&p[4..], &content[off..(off + 8).min(content.len())]);
                }
                sent += 1;
                // Mostly the next window or a gap inside this one; now and
                // then back by up to 100 blocks.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                first = if x % 5 == 0 {
                    first.saturating_sub(x % 100).max(1)
                } else {
                    first + (x % 70).clamp(1, last - first + 1)
                };
            }
            assert!(sent > 70_001 / 64, "{sent} windows");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn busy_polling_backs_off_from_slow_clients_and_yields_to_others() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 16];
        let mut poll = BusyPoll::new(Duration::from_micros(200));
        let only = Alone::enter();
        assert!(poll.wanted());
        // Nothing comes: the poll gives up and skips the next 32 waits.
        assert!(poll.poll(&a, &mut buf).is_none());
        for _ in 0..BusyPoll::FIRST_BACKOFF {
            assert!(!poll.wanted());
        }
        assert!(poll.wanted());
        assert!(poll.poll(&a, &mut buf).is_none());
        assert_eq!(poll.skip, 2 * BusyPoll::FIRST_BACKOFF);
        // A datagram that is there (or comes within the limit) is taken and
        // resets the back-off.
        poll.skip = 0;
        b.send_to(&[0, 4, 0, 1], a.local_addr().unwrap())
            .await
            .unwrap();
        let got = poll.poll(&a, &mut buf).expect("datagram").unwrap();
        assert_eq!(&buf[..got], &[0, 4, 0, 1]);
        assert_eq!(poll.backoff, BusyPoll::FIRST_BACKOFF);
        // A second transfer on this thread: nobody polls.
        let other = Alone::enter();
        assert!(!poll.wanted());
        drop(other);
        assert!(poll.wanted());
        drop(only);
        // Turned off.
        assert!(!BusyPoll::new(Duration::ZERO).wanted());
    }

    #[test]
    fn refuses_writes_and_bad_paths() {
        assert!(matches!(
            accept(b"\x00\x02f\x00octet\x00"),
            Decision::Refuse(ErrorCode::AccessViolation, _)
        ));
        assert!(matches!(
            accept(b"\x00\x01../x\x00octet\x00"),
            Decision::Refuse(ErrorCode::AccessViolation, _)
        ));
        assert!(matches!(
            accept(b"\x00\x01x\x00mail\x00"),
            Decision::Refuse(ErrorCode::IllegalOperation, _)
        ));
        assert_eq!(accept(b"\x00\x04\x00\x01"), Decision::Drop);
        assert_eq!(accept(b"garbage"), Decision::Drop);
        assert!(matches!(
            accept(b"\x00\x01x\x00netascii\x00"),
            Decision::Read { netascii: true, .. }
        ));
    }

    #[test]
    fn per_client_slots_are_counted_and_given_back() {
        let t = Arc::new(PerClient::default());
        let a: IpAddr = [192, 0, 2, 10].into();
        let b: IpAddr = [192, 0, 2, 11].into();
        let s1 = t.acquire(a, 2).expect("first");
        let s2 = t.acquire(a, 2).expect("second");
        assert!(t.acquire(a, 2).is_none(), "third from the same address");
        let other = t.acquire(b, 2).expect("another address is not affected");
        drop(s1);
        let s3 = t.acquire(a, 2).expect("a slot came back");
        drop((s2, s3, other));
        assert!(t.counts().is_empty(), "no leftovers: {:?}", t.counts());
    }

    #[test]
    fn netascii_conversion() {
        assert_eq!(to_netascii(b"a\nb\rc"), b"a\r\nb\r\0c");
    }
}
