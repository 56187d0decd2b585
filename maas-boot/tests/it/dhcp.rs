//! The DHCP server through its public API: the tokio loop on loopback, then
//! real clients (busybox udhcpc, perfdhcp from Kea, iPXE in QEMU) in network
//! namespaces joined by a veth pair or a tap. Needs root (the test command
//! runs as root); a missing peer fails the test naming its Debian package.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dhcproto::v4::{Message, MessageType};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use maas_boot::dhcp::{
    self, Action, DhcpConfig, DhcpEvent, FileStore, Handler, LeaseState, MemoryStore,
    NetbootMethod, ServeOptions, StaticBackend, Subnet,
};
use maas_core::{MacAddress, Timestamp};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- helpers

fn encode(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut Encoder::new(&mut b)).expect("encode");
    b
}

/// A server config for `net` with a dynamic range `lo..=hi`.
fn config(server: Ipv4Addr, net: &str, lo: Ipv4Addr, hi: Ipv4Addr) -> DhcpConfig {
    let mut s = Subnet::new(net.parse().expect("net"));
    s.add_range(lo, hi).expect("range");
    s.routers = vec![server];
    s.dns_servers = vec![server];
    s.domain_name = Some("maas".into());
    DhcpConfig::new(server, vec![s])
}

/// A running server loop; cancelled and joined on drop.
struct Running {
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<maas_boot::Result<dhcp::ServeStats>>>,
}

impl Running {
    fn start(sock: std::net::UdpSocket, handler: Arc<Handler>, options: ServeOptions) -> Self {
        let sock = tokio::net::UdpSocket::from_std(sock).expect("register socket");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(dhcp::serve(sock, handler, cancel.clone(), options));
        Self {
            cancel,
            task: Some(task),
        }
    }

    async fn stop(mut self) -> dhcp::ServeStats {
        self.cancel.cancel();
        let t = self.task.take().expect("task");
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("loop stops on cancel")
            .expect("join")
            .expect("serve")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

// ---------------------------------------------------------------- loopback

/// The loop on loopback, acting as a relay (giaddr 127.0.0.1): DORA through
/// real sockets, leases durable in a file across a restart, cancel stops it.
#[tokio::test]
async fn loop_serves_relayed_dora_and_leases_survive_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("leases.log");
    let relay = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let relay_port = relay.local_addr()?.port();
    let mac = [0x52, 0x54, 0, 0, 0, 0x42];

    let run = |path: PathBuf| -> Result<(Running, SocketAddrV4, Arc<StaticBackend>)> {
        let backend = Arc::new(StaticBackend::new(vec![]));
        let cfg = config(
            Ipv4Addr::LOCALHOST,
            "127.0.0.0/8",
            Ipv4Addr::new(127, 0, 0, 100),
            Ipv4Addr::new(127, 0, 0, 200),
        );
        let handler = Arc::new(Handler::new(
            cfg,
            Arc::new(FileStore::open(path)?),
            backend.clone(),
        )?);
        let sock = dhcp::bind_std_socket(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let addr = match sock.local_addr()? {
            std::net::SocketAddr::V4(a) => a,
            _ => bail!("v6?"),
        };
        let opts = ServeOptions {
            server_port: relay_port,
            client_port: relay_port,
            ..Default::default()
        };
        Ok((Running::start(sock, handler, opts), addr, backend))
    };

    async fn exchange(
        relay: &tokio::net::UdpSocket,
        to: SocketAddrV4,
        m: &Message,
    ) -> Result<Message> {
        relay.send_to(&encode(m), to).await?;
        let mut buf = [0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), relay.recv_from(&mut buf))
            .await
            .context("no reply within 5 s")??;
        ensure!(n >= 300, "reply shorter than 300 bytes: {n}");
        Ok(Message::decode(&mut Decoder::new(&buf[..n]))?)
    }

    let relayed = |mut m: Message| {
        m.set_giaddr(Ipv4Addr::LOCALHOST);
        m
    };

    let (srv, to, backend) = run(log.clone())?;
    let offer = exchange(&relay, to, &relayed(dhcp::testing::discover(mac))).await?;
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    let leased = offer.yiaddr();
    assert_eq!(leased, Ipv4Addr::new(127, 0, 0, 100));
    let ack = exchange(
        &relay,
        to,
        &relayed(dhcp::testing::request_selecting(
            mac,
            leased,
            Ipv4Addr::LOCALHOST,
        )),
    )
    .await?;
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), leased);
    // garbage is dropped and the loop keeps serving
    relay.send_to(b"\x01\x01\x06garbage", to).await?;
    let renew = exchange(
        &relay,
        to,
        &relayed(dhcp::testing::request_renew(mac, leased)),
    )
    .await?;
    assert_eq!(renew.opts().msg_type(), Some(MessageType::Ack));
    let stats = srv.stop().await;
    assert_eq!(stats.received, 4);
    assert_eq!(stats.replied, 3);
    assert_eq!(stats.dropped, 1);
    assert!(stats.syncs >= 1, "the ACK was group-committed");
    assert!(
        backend
            .take_events()
            .iter()
            .any(|e| matches!(e, DhcpEvent::Leased { addr, .. } if *addr == leased))
    );

    // restart on the same log: another client must not get the address
    let (srv, to, _) = run(log.clone())?;
    let other = exchange(
        &relay,
        to,
        &relayed(dhcp::testing::discover([0x52, 0x54, 0, 0, 0, 0x43])),
    )
    .await?;
    assert_ne!(other.yiaddr(), leased);
    let again = exchange(&relay, to, &relayed(dhcp::testing::discover(mac))).await?;
    assert_eq!(
        again.yiaddr(),
        leased,
        "holder keeps its address across restart"
    );
    srv.stop().await;
    Ok(())
}

/// The loop reclaims lapsed leases on its timer, judging the lapse by the
/// injected clock: nothing happens while the clock stands still, the lease
/// lapses (event, durable record) once the clock passes its end.
#[tokio::test]
async fn loop_reclaims_leases_when_the_injected_clock_passes_their_end() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("leases.log");
    let relay = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let relay_port = relay.local_addr()?.port();
    let clock = Arc::new(maas_core::ManualClock::new(Timestamp::from_secs(
        1_700_000_000,
    )));
    let backend = Arc::new(StaticBackend::new(vec![]));
    let handler = Arc::new(Handler::new(
        config(
            Ipv4Addr::LOCALHOST,
            "127.0.0.0/8",
            Ipv4Addr::new(127, 0, 0, 100),
            Ipv4Addr::new(127, 0, 0, 200),
        ),
        Arc::new(FileStore::open(&log)?),
        backend.clone(),
    )?);
    let sock = dhcp::bind_std_socket(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let to = sock.local_addr()?;
    let srv = Running::start(
        sock,
        handler.clone(),
        ServeOptions {
            clock: clock.clone(),
            server_port: relay_port,
            client_port: relay_port,
            reclaim_every: Duration::from_millis(20),
        },
    );
    let mac = [0x52, 0x54, 0, 0, 0, 0x77];
    let mut buf = [0u8; 1500];
    let ask = |m: Message| {
        let mut m = m;
        m.set_giaddr(Ipv4Addr::LOCALHOST);
        encode(&m)
    };
    relay
        .send_to(&ask(dhcp::testing::discover(mac)), to)
        .await?;
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), relay.recv_from(&mut buf)).await??;
    let addr = Message::decode(&mut Decoder::new(&buf[..n]))?.yiaddr();
    relay
        .send_to(
            &ask(dhcp::testing::request_selecting(
                mac,
                addr,
                Ipv4Addr::LOCALHOST,
            )),
            to,
        )
        .await?;
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), relay.recv_from(&mut buf)).await??;
    let ack = Message::decode(&mut Decoder::new(&buf[..n]))?;
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    backend.take_events();
    // Many reclaim ticks pass in real time; the injected clock has not moved.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        handler.lease(addr).map(|l| l.state),
        Some(LeaseState::Bound)
    );
    // 600 s lease (MAAS default): move the clock past its end.
    clock.advance(Duration::from_secs(601));
    wait_for("the lease to lapse", Duration::from_secs(5), || {
        handler.lease(addr).map(|l| l.state) == Some(LeaseState::Released)
    })
    .await?;
    let evs = backend.take_events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, DhcpEvent::Expired { addr: a, .. } if *a == addr)),
        "{evs:?}"
    );
    srv.stop().await;
    // The lapse is in the log: a restart sees the address free, not bound.
    let store = FileStore::open(&log)?;
    let rec = dhcp::LeaseStore::load(&store)?
        .into_iter()
        .find(|l| l.addr == addr)
        .context("lease in the log")?;
    assert_eq!(rec.state, LeaseState::Released);
    Ok(())
}

#[test]
fn handler_is_usable_without_a_loop() {
    let h = Handler::new(
        config(
            Ipv4Addr::new(10, 0, 0, 1),
            "10.0.0.0/24",
            Ipv4Addr::new(10, 0, 0, 10),
            Ipv4Addr::new(10, 0, 0, 20),
        ),
        Arc::new(MemoryStore::default()),
        Arc::new(StaticBackend::default()),
    )
    .expect("handler");
    let t = Timestamp::from_secs(1_700_000_000);
    let bytes = encode(&dhcp::testing::as_pxe(
        dhcp::testing::discover([2, 0, 0, 0, 0, 1]),
        0x0b,
    ));
    match h.handle_bytes(&bytes, t) {
        Action::Reply(r) => {
            assert_eq!(
                r.message.fname_str().and_then(|r| r.ok()),
                Some("bootaa64.efi")
            );
            assert_eq!(r.message.siaddr(), Ipv4Addr::new(10, 0, 0, 1));
        }
        other => panic!("no reply: {other:?}"),
    }
}

// ---------------------------------------------------------------- netns lab

fn need(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{bin} not found: install the Debian package `{package}` (scripts/deps/dhcp.apt; scripts/install-deps.sh)"
    );
}

fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    ensure!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Two network namespaces joined by a veth pair (server side 10.200.0.1/16),
/// or one namespace with a tap for QEMU. Names are unique per process and
/// test; everything is deleted on drop.
struct Lab {
    srv_ns: String,
    cli_ns: Option<String>,
    srv_if: String,
    cli_if: String,
}

impl Lab {
    fn names() -> (String, String, String, String) {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        (
            format!("mrsdhcp-{id}-s"),
            format!("mrsdhcp-{id}-c"),
            format!("md{id}s"),
            format!("md{id}c"),
        )
    }

    fn veth() -> Result<Self> {
        need("ip", "iproute2");
        let (s, c, si, ci) = Self::names();
        let lab = Self {
            srv_ns: s.clone(),
            cli_ns: Some(c.clone()),
            srv_if: si.clone(),
            cli_if: ci.clone(),
        };
        sh(&["ip", "netns", "add", &s])?;
        sh(&["ip", "netns", "add", &c])?;
        sh(&[
            "ip", "link", "add", &si, "type", "veth", "peer", "name", &ci,
        ])?;
        sh(&["ip", "link", "set", &si, "netns", &s])?;
        sh(&["ip", "link", "set", &ci, "netns", &c])?;
        sh(&["ip", "-n", &s, "addr", "add", "10.200.0.1/16", "dev", &si])?;
        for (ns, dev) in [(&s, &si), (&c, &ci)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(lab)
    }

    fn tap() -> Result<Self> {
        let (s, _, si, _) = Self::names();
        let lab = Self {
            srv_ns: s.clone(),
            cli_ns: None,
            srv_if: si.clone(),
            cli_if: String::new(),
        };
        sh(&["ip", "netns", "add", &s])?;
        sh(&["ip", "-n", &s, "link", "set", "lo", "up"])?;
        sh(&["ip", "-n", &s, "tuntap", "add", "dev", &si, "mode", "tap"])?;
        sh(&["ip", "-n", &s, "addr", "add", "192.0.2.1/24", "dev", &si])?;
        sh(&["ip", "-n", &s, "link", "set", &si, "up"])?;
        Ok(lab)
    }

    /// Binds the server socket (0.0.0.0:67 on the server interface) from a
    /// thread that entered the server namespace; the socket stays there.
    fn server_socket(&self) -> Result<std::net::UdpSocket> {
        let ns = self.srv_ns.clone();
        let dev = self.srv_if.clone();
        std::thread::spawn(move || -> Result<std::net::UdpSocket> {
            let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(dhcp::bind_std_socket(
                Some(&dev),
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67),
            )?)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))?
    }

    /// A command run inside the client namespace.
    fn cli(&self, prog: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            self.cli_ns.as_deref().unwrap_or(&self.srv_ns),
        ])
        .arg(prog);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the interfaces in it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.srv_ns])
            .status();
        if let Some(c) = &self.cli_ns {
            let _ = Command::new("ip").args(["netns", "del", c]).status();
        }
    }
}

/// A child process killed (by its pid) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) -> Result<()> {
    sh(&["kill", &format!("-{sig}"), &child.id().to_string()]).map(|_| ())
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out after {limit:?} waiting for {what}")
}

fn lab_handler(
    backend: Arc<StaticBackend>,
    store: Arc<dyn dhcp::LeaseStore>,
) -> Result<Arc<Handler>> {
    let cfg = config(
        Ipv4Addr::new(10, 200, 0, 1),
        "10.200.0.0/16",
        Ipv4Addr::new(10, 200, 1, 0),
        Ipv4Addr::new(10, 200, 255, 254),
    );
    Ok(Arc::new(Handler::new(cfg, store, backend)?))
}

/// busybox udhcpc: lease (broadcast DORA), renew (unicast REQUEST on
/// SIGUSR1), release (SIGUSR2), all seen by both the client and our server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udhcpc_leases_renews_and_releases() -> Result<()> {
    let busybox = need("busybox", "busybox");
    let lab = Lab::veth()?;
    let backend = Arc::new(StaticBackend::new(vec![]));
    let handler = lab_handler(backend.clone(), Arc::new(MemoryStore::default()))?;
    let srv = Running::start(
        lab.server_socket()?,
        handler.clone(),
        ServeOptions::default(),
    );

    let dir = tempfile::tempdir()?;
    let log = dir.path().join("events");
    let script = dir.path().join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
               deconfig) ip addr flush dev \"$interface\" ;;\n\
               bound|renew) ip addr replace \"$ip/$mask\" dev \"$interface\" ;;\n\
             esac\n\
             echo \"$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain lease=$lease serverid=$serverid\" >> {}\n",
            log.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let events = || std::fs::read_to_string(&log).unwrap_or_default();

    let child = lab
        .cli(&busybox)
        .args(["udhcpc", "-f", "-i", &lab.cli_if, "-s"])
        .arg(&script)
        .args(["-t", "5", "-T", "1", "-A", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting udhcpc")?;
    let child = Proc(child);
    wait_for("udhcpc bound", Duration::from_secs(20), || {
        events().contains("bound ")
    })
    .await?;
    let ev = events();
    let line = ev
        .lines()
        .find(|l| l.starts_with("bound "))
        .expect("bound line");
    assert!(
        line.contains("ip=10.200.1.0 "),
        "first address of the range: {line}"
    );
    assert!(line.contains("mask=16"), "{line}");
    assert!(line.contains("router=10.200.0.1"), "{line}");
    assert!(line.contains("domain=maas"), "{line}");
    assert!(line.contains("lease=600"), "{line}");
    assert!(line.contains("serverid=10.200.0.1"), "{line}");
    let mac: MacAddress = sh(&[
        "ip",
        "-n",
        lab.cli_ns.as_deref().unwrap_or_default(),
        "-br",
        "link",
        "show",
        &lab.cli_if,
    ])?
    .split_whitespace()
    .nth(2)
    .context("mac")?
    .parse()?;
    let first = handler.lease_for(mac).context("server has the lease")?;
    assert_eq!(first.state, LeaseState::Bound);
    assert_eq!(first.addr, Ipv4Addr::new(10, 200, 1, 0));

    signal(&child.0, "USR1")?;
    wait_for("udhcpc renew", Duration::from_secs(20), || {
        events().contains("renew ")
    })
    .await?;
    let renewed = handler.lease_for(mac).context("lease after renew")?;
    assert_eq!(renewed.addr, first.addr);
    assert!(
        renewed.expires >= first.expires,
        "renewal extends the lease"
    );

    signal(&child.0, "USR2")?;
    wait_for("server sees release", Duration::from_secs(20), || {
        handler
            .lease_for(mac)
            .is_some_and(|l| l.state == LeaseState::Released)
    })
    .await?;
    drop(child);
    let stats = srv.stop().await;
    let evs = backend.take_events();
    let leased = evs
        .iter()
        .filter(|e| matches!(e, DhcpEvent::Leased { mac: m, .. } if *m == mac))
        .count();
    assert!(leased >= 2, "initial lease and renewal reported: {evs:?}");
    assert!(evs.contains(&DhcpEvent::Released {
        mac,
        addr: first.addr
    }));
    assert!(
        evs.iter()
            .any(|e| matches!(e, DhcpEvent::UnknownMac { mac: m, .. } if *m == mac))
    );
    assert!(stats.replied >= 3, "{stats:?}");
    Ok(())
}

/// Reads perfdhcp's "***Statistics for: X***" block value for `key`.
fn perf_field(out: &str, section: &str, key: &str) -> Option<f64> {
    let mut inside = false;
    for line in out.lines() {
        if line.starts_with("***Statistics for:") {
            inside = line.contains(section);
        } else if inside && let Some(rest) = line.strip_prefix(&format!("{key}:")) {
            return rest.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// perfdhcp (Kea): 2 000 clients' DORA at 500/s plus renewals and releases,
/// with a durable lease log; every exchange answered and the log holds the
/// leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perfdhcp_dora_renew_release_without_drops() -> Result<()> {
    let perfdhcp = need("perfdhcp", "kea-admin");
    let lab = Lab::veth()?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FileStore::open(dir.path().join("leases.log"))?);
    let handler = lab_handler(Arc::new(StaticBackend::without_events(vec![])), store)?;
    let srv = Running::start(
        lab.server_socket()?,
        handler.clone(),
        ServeOptions::default(),
    );

    sh(&[
        "ip",
        "-n",
        lab.cli_ns.as_deref().unwrap_or_default(),
        "addr",
        "add",
        "10.200.0.2/16",
        "dev",
        &lab.cli_if,
    ])?;
    let out = tokio::task::spawn_blocking({
        let mut c = lab.cli(&perfdhcp);
        c.args([
            "-4",
            "-l",
            &lab.cli_if,
            "-r",
            "500",
            "-R",
            "2000",
            "-p",
            "4",
            "-f",
            "50",
            "-F",
            "50",
            "-x",
            "e",
            "10.200.0.1",
        ]);
        move || c.output()
    })
    .await??;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let stats = srv.stop().await;
    let sent = perf_field(&text, "DISCOVER-OFFER", "sent packets").context(text.clone())?;
    let offers = perf_field(&text, "DISCOVER-OFFER", "received packets").context(text.clone())?;
    let reqs = perf_field(&text, "REQUEST-ACK", "sent packets").context(text.clone())?;
    let acks = perf_field(&text, "REQUEST-ACK", "received packets").context(text.clone())?;
    assert!(sent >= 1000.0, "perfdhcp sent {sent} DISCOVERs\n{text}");
    assert!(
        offers >= sent * 0.99,
        "offers {offers} / discovers {sent}\n{text}"
    );
    assert!(acks >= reqs * 0.99, "acks {acks} / requests {reqs}\n{text}");
    let renews = perf_field(&text, "REQUEST-ACK (renewal)", "received packets").unwrap_or(0.0);
    assert!(renews > 0.0, "renewals acknowledged\n{text}");
    assert!(stats.silent > 0, "releases handled: {stats:?}");
    let released = (1..=255u8)
        .flat_map(|b| (0..=255u8).map(move |c| Ipv4Addr::new(10, 200, b, c)))
        .filter_map(|a| handler.lease(a))
        .filter(|l| l.state == LeaseState::Released)
        .count();
    assert!(released > 0, "perfdhcp's releases freed leases");
    // The durable log replays to the same bound set.
    let reopened = FileStore::open(dir.path().join("leases.log"))?;
    let bound = dhcp::LeaseStore::load(&reopened)?
        .iter()
        .filter(|l| l.state == LeaseState::Bound)
        .count();
    assert!(
        bound as f64 >= acks - renews - 10.0 - released as f64,
        "log holds {bound} leases for {acks} ACKs"
    );
    Ok(())
}

/// Real firmware: SeaBIOS + the iPXE NIC ROM in QEMU (TCG) on a tap in a
/// namespace. iPXE must get an address and, being iPXE, the rack's
/// `ipxe.cfg` URL (MAAS's iPXE boot method for BIOS iPXE ROMs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_ipxe_bios_gets_address_and_boot_file() -> Result<()> {
    let qemu = need(
        "qemu-system-x86_64",
        "qemu-system-x86 (from bookworm-backports) and ipxe-qemu",
    );
    ensure!(
        Path::new("/usr/lib/ipxe/qemu/efi-virtio.rom").exists()
            || Path::new("/usr/lib/ipxe/qemu/pxe-virtio.rom").exists(),
        "iPXE NIC ROMs missing: install the Debian package `ipxe-qemu`"
    );
    let lab = Lab::tap()?;
    let backend = Arc::new(StaticBackend::new(vec![]));
    let handler = Arc::new(Handler::new(
        config(
            Ipv4Addr::new(192, 0, 2, 1),
            "192.0.2.0/24",
            Ipv4Addr::new(192, 0, 2, 100),
            Ipv4Addr::new(192, 0, 2, 150),
        ),
        Arc::new(MemoryStore::default()),
        backend.clone(),
    )?);
    let srv = Running::start(
        lab.server_socket()?,
        handler.clone(),
        ServeOptions::default(),
    );
    let dir = tempfile::tempdir()?;
    let serial = dir.path().join("serial.log");
    let mac = "52:54:00:00:d4:01";
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.srv_ns])
        .arg(&qemu)
        .args([
            "-accel",
            "tcg",
            "-machine",
            "q35",
            "-m",
            "256",
            "-nographic",
            "-nodefaults",
            "-no-reboot",
        ])
        .args([
            "-netdev",
            &format!("tap,id=n0,ifname={},script=no,downscript=no", lab.srv_if),
        ])
        .args([
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={mac},bootindex=1"),
        ])
        .args([
            "-serial",
            &format!("file:{}", serial.display()),
            "-monitor",
            "none",
            "-display",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu")?;
    let mut child = Proc(child);
    let console = || std::fs::read_to_string(&serial).unwrap_or_default();
    let got = wait_for(
        "iPXE to print its boot file",
        Duration::from_secs(120),
        || console().contains("ipxe.cfg") || matches!(child.0.try_wait(), Ok(Some(_))),
    )
    .await;
    let text = console();
    if let Err(e) = got {
        bail!("{e}\nserial console:\n{text}");
    }
    let mac: MacAddress = mac.parse()?;
    let lease = handler
        .lease_for(mac)
        .with_context(|| format!("no lease for {mac}\n{text}"))?;
    assert_eq!(lease.state, LeaseState::Bound);
    assert_eq!(lease.addr, Ipv4Addr::new(192, 0, 2, 100));
    assert!(
        text.contains("192.0.2.100"),
        "iPXE shows its address:\n{text}"
    );
    assert!(
        text.contains("http://192.0.2.1:5248/ipxe.cfg"),
        "iPXE shows the boot file:\n{text}"
    );
    let evs = backend.take_events();
    assert!(
        evs.iter().any(|e| matches!(e, DhcpEvent::Leased { mac: m, boot: Some(NetbootMethod::Ipxe), .. } if *m == mac)),
        "lease reported with the iPXE boot method: {evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, DhcpEvent::UnknownMac { mac: m, arch: Some(0), .. } if *m == mac)),
        "{evs:?}"
    );
    drop(child);
    srv.stop().await;
    Ok(())
}

/// A lease store whose sync waits for the test to open a gate.
#[derive(Debug)]
struct GateStore {
    inner: MemoryStore,
    dirty: std::sync::atomic::AtomicBool,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl dhcp::LeaseStore for GateStore {
    fn load(&self) -> maas_boot::Result<Vec<dhcp::Lease>> {
        self.inner.load()
    }
    fn record(&self, lease: &dhcp::Lease) {
        self.inner.record(lease);
        self.dirty.store(true, Ordering::SeqCst);
    }
    fn sync(&self) -> maas_boot::Result<()> {
        self.dirty.store(false, Ordering::SeqCst);
        let _ = self
            .gate
            .lock()
            .expect("gate")
            .recv_timeout(Duration::from_secs(10));
        Ok(())
    }
    fn dirty(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }
}

/// Group commit: an ACK is not sent before the store's sync returns, while
/// OFFERs keep flowing during a slow sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_wait_for_the_lease_store_offers_do_not() -> Result<()> {
    let relay = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let port = relay.local_addr()?.port();
    let (open, gate) = std::sync::mpsc::channel();
    let store = Arc::new(GateStore {
        inner: MemoryStore::default(),
        dirty: false.into(),
        gate: std::sync::Mutex::new(gate),
    });
    let cfg = config(
        Ipv4Addr::LOCALHOST,
        "127.0.0.0/8",
        Ipv4Addr::new(127, 0, 0, 100),
        Ipv4Addr::new(127, 0, 0, 200),
    );
    let handler = Arc::new(Handler::new(
        cfg,
        store,
        Arc::new(StaticBackend::default()),
    )?);
    let sock = dhcp::bind_std_socket(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let to = sock.local_addr()?;
    let srv = Running::start(
        sock,
        handler,
        ServeOptions {
            server_port: port,
            client_port: port,
            ..Default::default()
        },
    );
    let relayed = |mut m: Message| {
        m.set_giaddr(Ipv4Addr::LOCALHOST);
        encode(&m)
    };
    let mut buf = [0u8; 1500];
    let mut recv = async |limit: u64| -> Option<Message> {
        let (n, _) = tokio::time::timeout(Duration::from_millis(limit), relay.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Message::decode(&mut Decoder::new(&buf[..n])).ok()
    };
    let a = [0x52, 0x54, 0, 0, 0, 0x51];
    let b = [0x52, 0x54, 0, 0, 0, 0x52];
    relay
        .send_to(&relayed(dhcp::testing::discover(a)), to)
        .await?;
    let offer = recv(5000).await.context("offer")?;
    relay
        .send_to(
            &relayed(dhcp::testing::request_selecting(
                a,
                offer.yiaddr(),
                Ipv4Addr::LOCALHOST,
            )),
            to,
        )
        .await?;
    assert!(
        recv(500).await.is_none(),
        "ACK sent before the lease store synced"
    );
    // the sync is stuck, yet another client is offered an address at once
    relay
        .send_to(&relayed(dhcp::testing::discover(b)), to)
        .await?;
    let offer_b = recv(5000).await.context("offer during a slow sync")?;
    assert_eq!(offer_b.opts().msg_type(), Some(MessageType::Offer));
    open.send(())?;
    let ack = recv(5000).await.context("ACK after the sync")?;
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    let _ = open.send(());
    srv.stop().await;
    Ok(())
}

/// ISC dhclient: lease, a real timer-driven renewal (12 s lease, T1 = 6 s),
/// and release with `dhclient -r`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhclient_leases_renews_on_t1_and_releases() -> Result<()> {
    let dhclient = need("dhclient", "isc-dhcp-client");
    let lab = Lab::veth()?;
    let backend = Arc::new(StaticBackend::new(vec![]));
    let mut cfg = config(
        Ipv4Addr::new(10, 200, 0, 1),
        "10.200.0.0/16",
        Ipv4Addr::new(10, 200, 7, 1),
        Ipv4Addr::new(10, 200, 7, 200),
    );
    cfg.default_lease = 12;
    let handler = Arc::new(Handler::new(
        cfg,
        Arc::new(MemoryStore::default()),
        backend.clone(),
    )?);
    let srv = Running::start(
        lab.server_socket()?,
        handler.clone(),
        ServeOptions::default(),
    );

    let dir = tempfile::tempdir()?;
    let log = dir.path().join("events");
    let script = dir.path().join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             case \"$reason\" in\n\
               BOUND|RENEW|REBIND|REBOOT) ip addr replace \"$new_ip_address/16\" dev \"$interface\" ;;\n\
               RELEASE|EXPIRE|STOP) ip addr flush dev \"$interface\" ;;\n\
             esac\n\
             echo \"$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers domain=$new_domain_name lease=$new_dhcp_lease_time\" >> {}\n",
            log.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let leases = dir.path().join("dhclient.leases");
    let pidfile = dir.path().join("dhclient.pid");
    let events = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = |c: &mut Command| {
        c.arg("-4")
            .arg("-lf")
            .arg(&leases)
            .arg("-pf")
            .arg(&pidfile)
            .arg("-sf")
            .arg(&script);
    };
    let mut c = lab.cli(&dhclient);
    base(&mut c);
    c.args(["-d", "-v", &lab.cli_if])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Proc(c.spawn().context("starting dhclient")?);
    wait_for("dhclient BOUND", Duration::from_secs(30), || {
        events().contains("BOUND ")
    })
    .await?;
    let ev = events();
    let line = ev
        .lines()
        .find(|l| l.starts_with("BOUND "))
        .expect("bound line");
    assert!(line.contains("ip=10.200.7.1 "), "{line}");
    assert!(line.contains("mask=255.255.0.0"), "{line}");
    assert!(line.contains("routers=10.200.0.1"), "{line}");
    assert!(line.contains("domain=maas"), "{line}");
    assert!(line.contains("lease=12"), "{line}");
    let addr = Ipv4Addr::new(10, 200, 7, 1);
    let first = handler.lease(addr).context("server lease")?;
    wait_for("dhclient RENEW at T1", Duration::from_secs(20), || {
        events().contains("RENEW ")
    })
    .await?;
    let renewed = handler.lease(addr).context("lease after renew")?;
    assert_eq!(renewed.mac, first.mac);
    assert!(
        renewed.expires > first.expires,
        "renewal extended the lease"
    );

    let mut r = lab.cli(&dhclient);
    base(&mut r);
    r.args(["-r", &lab.cli_if]);
    let out = tokio::task::spawn_blocking(move || r.output()).await??;
    ensure!(
        out.status.success(),
        "dhclient -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("server sees release", Duration::from_secs(10), || {
        handler
            .lease(addr)
            .is_some_and(|l| l.state == LeaseState::Released)
    })
    .await?;
    drop(child);
    srv.stop().await;
    let evs = backend.take_events();
    assert!(
        evs.contains(&DhcpEvent::Released {
            mac: first.mac,
            addr
        }),
        "{evs:?}"
    );
    Ok(())
}
