//! DHCP datagrams from the network through the whole handler (decode,
//! subnet choice, allocation, reply building and encoding) in both
//! authoritative and proxyDHCP mode, with the lease timer running now and
//! then: never a panic, and every reply encodes.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use maas_boot::dhcp::{Action, DhcpConfig, Handler, MemoryStore, Mode, StaticBackend, Subnet};
use maas_core::Timestamp;

fn handlers() -> &'static [Handler; 2] {
    static H: OnceLock<[Handler; 2]> = OnceLock::new();
    H.get_or_init(|| {
        let server = Ipv4Addr::new(192, 0, 2, 1);
        let mut s = Subnet::new("192.0.2.0/24".parse().unwrap());
        s.add_range([192, 0, 2, 100].into(), [192, 0, 2, 110].into()).unwrap();
        s.domain_search = vec!["maas".into()];
        let mut relayed = Subnet::new("198.51.100.0/24".parse().unwrap());
        relayed.add_range([198, 51, 100, 10].into(), [198, 51, 100, 20].into()).unwrap();
        let auth = DhcpConfig::new(server, vec![s, relayed]);
        let mut proxy = DhcpConfig::new(server, vec![]);
        proxy.mode = Mode::Proxy;
        let mk = |c| Handler::new(c, Arc::new(MemoryStore::default()), Arc::new(StaticBackend::without_events(vec![]))).unwrap();
        [mk(auth), mk(proxy)]
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte moves the clock so expiry paths are reached too.
    let (t, data) = data.split_first().map_or((0, data), |(t, d)| (*t, d));
    let now = Timestamp::from_secs(1_700_000_000 + i64::from(t) * 60);
    for h in handlers() {
        if let Action::Reply(r) = h.handle_bytes(data, now) {
            r.encode().expect("every reply encodes");
        }
        // Now and then the lease timer runs, so leases lapse between packets.
        if t % 8 == 0 {
            h.reclaim(now);
        }
    }
});
