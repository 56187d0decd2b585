//! TFTP datagrams from the network: parsing, the listening-port decision and
//! re-encoding must never panic, and whatever parses must re-encode to a
//! datagram that parses to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maas_boot::tftp::Packet;
use maas_boot::tftp::server::accept;

fuzz_target!(|data: &[u8]| {
    let _ = accept(data);
    if let Ok(p) = Packet::parse(data) {
        let wire = p.encode();
        let again = Packet::parse(&wire).expect("re-encoded packet parses");
        assert_eq!(again, p);
    }
});
