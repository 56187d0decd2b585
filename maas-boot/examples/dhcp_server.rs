//! A stand-alone DHCPv4 server on maas-boot's handler, for trying it out and
//! for the benchmark in `bench/dhcp/`.
//!
//! ```text
//! dhcp_server --iface eth1 --server-ip 10.77.0.1 --subnet 10.77.0.0/16 \
//!             --range 10.77.1.0-10.77.255.254 [--lease 43200] \
//!             [--store memory|PATH] [--proxy]
//! ```
//! Runs until SIGINT/SIGTERM, then prints the loop's counters.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use maas_boot::dhcp::{
    self, DhcpConfig, FileStore, Handler, LeaseStore, MemoryStore, Mode, StaticBackend, Subnet,
};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Args {
    iface: Option<String>,
    server_ip: Option<Ipv4Addr>,
    subnet: Option<String>,
    ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    lease: Option<u32>,
    store: Option<String>,
    proxy: bool,
}

fn parse() -> Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--iface" => a.iface = Some(v()?),
            "--server-ip" => a.server_ip = Some(v()?.parse()?),
            "--subnet" => a.subnet = Some(v()?),
            "--range" => {
                let r = v()?;
                let (lo, hi) = r.split_once('-').context("--range LO-HI")?;
                a.ranges.push((lo.parse()?, hi.parse()?));
            }
            "--lease" => a.lease = Some(v()?.parse()?),
            "--store" => a.store = Some(v()?),
            "--proxy" => a.proxy = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let a = parse()?;
    let server_ip = a.server_ip.context("--server-ip is required")?;
    let mut subnets = Vec::new();
    if let Some(net) = &a.subnet {
        let mut s = Subnet::new(net.parse().context("--subnet")?);
        for (lo, hi) in &a.ranges {
            s.add_range(*lo, *hi)?;
        }
        s.routers = vec![server_ip];
        s.lease_time = a.lease;
        subnets.push(s);
    }
    let mut cfg = DhcpConfig::new(server_ip, subnets);
    if let Some(l) = a.lease {
        cfg.default_lease = l;
    }
    if a.proxy {
        cfg.mode = Mode::Proxy;
    }
    let store: Arc<dyn LeaseStore> = match a.store.as_deref() {
        None | Some("memory") => Arc::new(MemoryStore::default()),
        Some(path) => Arc::new(FileStore::open(path)?),
    };
    let handler = Arc::new(Handler::new(
        cfg,
        store,
        Arc::new(StaticBackend::without_events(vec![])),
    )?);
    let sock = dhcp::bind_socket(
        a.iface.as_deref(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67),
    )?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        stop.cancel();
    });
    let stats = dhcp::serve(sock, handler.clone(), cancel, dhcp::ServeOptions::default()).await?;
    handler.store().sync()?;
    println!("{stats:?} leases={}", handler.lease_count());
    Ok(())
}
