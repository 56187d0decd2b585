//! CPU cost of the DHCP handler alone (decode, allocate, reply, encode; no
//! sockets) as the lease table grows to 65 000 leases, for the in-memory
//! store and the durable log (one fdatasync per 64 ACKs, as the server loop
//! batches them). Used by `bench/dhcp/run.sh`; prints one line per 5 000
//! DORAs with the cost per DORA at that table size.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use dhcproto::{Encodable, Encoder};
use maas_boot::dhcp::{
    self, Action, DhcpConfig, FileStore, Handler, LeaseStore, MemoryStore, StaticBackend, Subnet,
};
use maas_core::Timestamp;

fn encode(m: &dhcproto::v4::Message) -> Vec<u8> {
    let mut b = Vec::new();
    let _ = m.encode(&mut Encoder::new(&mut b));
    b
}

fn run(name: &str, store: Arc<dyn LeaseStore>) -> Result<()> {
    let server = Ipv4Addr::new(10, 77, 0, 1);
    let mut s = Subnet::new("10.77.0.0/16".parse()?);
    s.add_range(Ipv4Addr::new(10, 77, 1, 0), Ipv4Addr::new(10, 77, 255, 254))?;
    let h = Handler::new(
        DhcpConfig::new(server, vec![s]),
        store.clone(),
        Arc::new(StaticBackend::without_events(vec![])),
    )?;
    let now = Timestamp::from_secs(1_700_000_000);
    let mut t = Instant::now();
    for i in 0u32..65_000 {
        let b = i.to_be_bytes();
        let mac = [0x52, 0x54, b[0], b[1], b[2], b[3]];
        let Action::Reply(offer) = h.handle_bytes(&encode(&dhcp::testing::discover(mac)), now)
        else {
            bail!("no offer for client {i}");
        };
        let _ = offer.encode()?;
        let req = dhcp::testing::request_selecting(mac, offer.message.yiaddr(), server);
        let Action::Reply(ack) = h.handle_bytes(&encode(&req), now) else {
            bail!("no ack for client {i}");
        };
        let _ = ack.encode()?;
        if i % 64 == 63 {
            store.sync()?;
        }
        if i % 5000 == 4999 {
            let per = t.elapsed().as_nanos() as f64 / 5000.0 / 1000.0;
            println!("{name},{},{per:.2}", i + 1);
            t = Instant::now();
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    println!("store,leases_held,us_per_dora");
    run("memory", Arc::new(MemoryStore::default()))?;
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
    let path = std::path::Path::new(&dir).join(format!(
        "maas-rs-dhcp-handler-bench.{}.log",
        std::process::id()
    ));
    let r = run("durable", Arc::new(FileStore::open(&path)?));
    let _ = std::fs::remove_file(&path);
    r
}
