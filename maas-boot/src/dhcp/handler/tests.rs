//! Protocol behaviour of the handler, one exchange at a time.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dhcproto::v4::relay::{RelayAgentInformation, RelayInfo};
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Encodable, Encoder};
use maas_core::{MacAddress, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::dhcp::config::{DhcpConfig, Mode, Reservation, Subnet};
use crate::dhcp::store::MemoryStore;
use crate::dhcp::testing::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const T0: Timestamp = Timestamp(1_700_000_000_000);
const M1: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
const M2: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

fn subnet() -> Subnet {
    let mut s = Subnet::new("192.0.2.0/24".parse().unwrap());
    s.add_range([192, 0, 2, 100].into(), [192, 0, 2, 102].into())
        .unwrap();
    s.routers = vec![SERVER];
    s.dns_servers = vec![SERVER];
    s.domain_name = Some("maas".into());
    s.domain_search = vec!["maas".into(), "example.com".into()];
    s.ntp_servers = vec![SERVER];
    s
}

fn relayed_subnet() -> Subnet {
    let mut s = Subnet::new("198.51.100.0/24".parse().unwrap());
    s.add_range([198, 51, 100, 10].into(), [198, 51, 100, 20].into())
        .unwrap();
    s
}

fn setup(reservations: Vec<Reservation>) -> (Handler, Arc<StaticBackend>, Arc<MemoryStore>) {
    let cfg = DhcpConfig::new(SERVER, vec![subnet(), relayed_subnet()]);
    let backend = Arc::new(StaticBackend::new(reservations));
    let store = Arc::new(MemoryStore::default());
    let h = Handler::new(cfg, store.clone(), backend.clone()).unwrap();
    (h, backend, store)
}

fn reply(a: Action) -> Reply {
    match a {
        Action::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn mtype(m: &Message) -> MessageType {
    m.opts().msg_type().unwrap()
}

fn opt(m: &Message, c: OptionCode) -> Option<&DhcpOption> {
    m.opts().get(c)
}

fn lease_time(m: &Message) -> Option<u32> {
    match opt(m, OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
        _ => None,
    }
}

/// A full DORA for `mac`, returning the ACK.
fn dora(h: &Handler, mac: [u8; 6], now: Timestamp) -> Message {
    let offer = reply(h.handle(&discover(mac), now)).message;
    assert_eq!(mtype(&offer), MessageType::Offer);
    let ack = reply(h.handle(&request_selecting(mac, offer.yiaddr(), SERVER), now)).message;
    assert_eq!(mtype(&ack), MessageType::Ack);
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    ack
}

#[test]
fn dora_gives_address_and_options() {
    let (h, backend, store) = setup(vec![]);
    let r = reply(h.handle(&discover(M1), T0));
    assert_eq!(r.dest, Destination::Broadcast);
    assert!(!r.durable, "an OFFER promises nothing");
    let o = &r.message;
    assert_eq!(o.opcode(), Opcode::BootReply);
    assert_eq!(o.xid(), 0x1234_5678);
    assert_eq!(o.yiaddr(), Ipv4Addr::new(192, 0, 2, 100));
    assert_eq!(o.chaddr(), &M1);
    assert_eq!(
        opt(o, OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        opt(o, OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask([255, 255, 255, 0].into()))
    );
    assert_eq!(
        opt(o, OptionCode::Router),
        Some(&DhcpOption::Router(vec![SERVER]))
    );
    assert_eq!(
        opt(o, OptionCode::DomainName),
        Some(&DhcpOption::DomainName("maas".into()))
    );
    assert!(
        matches!(opt(o, OptionCode::DomainSearch), Some(DhcpOption::DomainSearch(v)) if v.len() == 2)
    );
    assert_eq!(
        opt(o, OptionCode::NtpServers),
        Some(&DhcpOption::NtpServers(vec![SERVER]))
    );
    assert!(
        opt(o, OptionCode::InterfaceMtu).is_none(),
        "MTU 1500 is not sent"
    );
    assert_eq!(lease_time(o), Some(600));
    assert_eq!(opt(o, OptionCode::Renewal), Some(&DhcpOption::Renewal(300)));
    assert_eq!(
        opt(o, OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(525))
    );
    assert!(o.fname().is_none(), "not a netboot client: no boot file");
    assert!(store.records().is_empty(), "offers are not persisted");

    let ack = reply(h.handle(&request_selecting(M1, o.yiaddr(), SERVER), T0));
    assert!(ack.durable, "an ACK waits for the lease store");
    assert_eq!(ack.message.yiaddr(), Ipv4Addr::new(192, 0, 2, 100));
    let recs = store.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].state, LeaseState::Bound);
    assert_eq!(recs[0].expires, T0 + Duration::from_secs(600));
    let ev = backend.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, DhcpEvent::UnknownMac { mac, .. } if mac.0 == M1))
    );
    assert!(ev.iter().any(
        |e| matches!(e, DhcpEvent::Leased { addr, .. } if *addr == Ipv4Addr::new(192, 0, 2, 100))
    ));
}

#[test]
fn encoded_reply_is_padded_and_decodes() {
    let (h, ..) = setup(vec![]);
    let r = reply(h.handle(&discover(M1), T0));
    let bytes = r.encode().unwrap();
    assert!(bytes.len() >= 300);
    let back = decode(&bytes).unwrap();
    assert_eq!(back.yiaddr(), r.message.yiaddr());
}

#[test]
fn mtu_is_sent_when_not_1500() {
    let mut s = subnet();
    s.mtu = 9000;
    let h = Handler::new(
        DhcpConfig::new(SERVER, vec![s]),
        Arc::new(MemoryStore::default()),
        Arc::new(StaticBackend::default()),
    )
    .unwrap();
    let o = reply(h.handle(&discover(M1), T0)).message;
    assert_eq!(
        opt(&o, OptionCode::InterfaceMtu),
        Some(&DhcpOption::InterfaceMtu(9000))
    );
}

#[test]
fn second_client_gets_next_address_and_pool_runs_out() {
    let (h, ..) = setup(vec![]);
    let a: Vec<Ipv4Addr> = [1u8, 2, 3]
        .iter()
        .map(|n| dora(&h, [2, 0, 0, 0, 0, *n], T0).yiaddr())
        .collect();
    assert_eq!(
        a,
        vec![
            Ipv4Addr::new(192, 0, 2, 100),
            Ipv4Addr::new(192, 0, 2, 101),
            Ipv4Addr::new(192, 0, 2, 102)
        ]
    );
    assert_eq!(
        h.handle(&discover([2, 0, 0, 0, 0, 9]), T0),
        Action::Drop(DropReason::PoolExhausted)
    );
    // the same client asking again keeps its address
    assert_eq!(
        dora(&h, [2, 0, 0, 0, 0, 2], T0).yiaddr(),
        Ipv4Addr::new(192, 0, 2, 101)
    );
}

#[test]
fn request_for_another_server_drops_our_offer() {
    let (h, ..) = setup(vec![]);
    let o = reply(h.handle(&discover(M1), T0)).message;
    let r = h.handle(
        &request_selecting(M1, o.yiaddr(), Ipv4Addr::new(192, 0, 2, 254)),
        T0,
    );
    assert_eq!(
        r,
        Action::Drop(DropReason::OtherServer(Ipv4Addr::new(192, 0, 2, 254)))
    );
    assert!(h.lease(o.yiaddr()).is_none(), "offer withdrawn");
}

#[test]
fn request_for_someone_elses_address_is_naked() {
    let (h, ..) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    let r = reply(h.handle(&request_init_reboot(M2, a), T0));
    assert_eq!(mtype(&r.message), MessageType::Nak);
    assert_eq!(r.dest, Destination::Broadcast);
    assert_eq!(r.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
    // off-network address
    let r = reply(h.handle(&request_init_reboot(M2, [10, 9, 9, 9].into()), T0));
    assert_eq!(mtype(&r.message), MessageType::Nak);
}

#[test]
fn init_reboot_and_renew_extend_the_lease() {
    let (h, _, store) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    let later = T0 + Duration::from_secs(300);
    let r = reply(h.handle(&request_renew(M1, a), later));
    assert_eq!(mtype(&r.message), MessageType::Ack);
    assert_eq!(r.dest, Destination::Unicast(a));
    assert_eq!(r.message.ciaddr(), a);
    assert_eq!(
        h.lease(a).unwrap().expires,
        later + Duration::from_secs(600)
    );
    let r = reply(h.handle(&request_init_reboot(M1, a), later));
    assert_eq!(mtype(&r.message), MessageType::Ack);
    assert_eq!(store.records().len(), 3, "every ACK is recorded");
}

#[test]
fn release_frees_and_client_gets_it_back() {
    let (h, backend, store) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    backend.take_events();
    assert_eq!(h.handle(&release(M1, a, SERVER), T0), Action::Silent);
    assert_eq!(h.lease(a).unwrap().state, LeaseState::Released);
    assert_eq!(store.records().last().unwrap().state, LeaseState::Released);
    assert_eq!(
        backend.take_events(),
        vec![DhcpEvent::Released {
            mac: MacAddress(M1),
            addr: a
        }]
    );
    // a release from the wrong MAC changes nothing
    let a1 = dora(&h, M1, T0).yiaddr();
    assert_eq!(a1, a, "released address goes back to its last holder");
    assert_eq!(h.handle(&release(M2, a1, SERVER), T0), Action::Silent);
    assert_eq!(h.lease(a1).unwrap().state, LeaseState::Bound);
}

#[test]
fn decline_holds_the_address_back() {
    let (h, backend, _) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    assert_eq!(h.handle(&decline(M1, a, SERVER), T0), Action::Silent);
    assert_eq!(h.lease(a).unwrap().state, LeaseState::Declined);
    assert!(backend.take_events().contains(&DhcpEvent::Declined {
        mac: MacAddress(M1),
        addr: a
    }));
    let next = dora(&h, M1, T0).yiaddr();
    assert_ne!(next, a, "declined address not offered again");
    // after the hold (3600 s) it may be used again
    let much_later = T0 + Duration::from_secs(3601);
    for n in 3..=5u8 {
        dora(&h, [2, 0, 0, 0, 0, n], much_later);
    }
    assert_eq!(h.lease(a).unwrap().state, LeaseState::Bound);
}

#[test]
fn expired_lease_goes_to_a_new_client() {
    let (h, backend, _) = setup(vec![]);
    for n in 1..=3u8 {
        dora(&h, [2, 0, 0, 0, 0, n], T0);
    }
    backend.take_events();
    let later = T0 + Duration::from_secs(601);
    let ack = dora(&h, M2, later);
    assert!(
        backend
            .take_events()
            .iter()
            .any(|e| matches!(e, DhcpEvent::Expired { addr, .. } if *addr == ack.yiaddr()))
    );
}

#[test]
fn inform_answers_options_without_lease() {
    let (h, ..) = setup(vec![]);
    let r = reply(h.handle(&inform(M1, [192, 0, 2, 50].into()), T0));
    assert_eq!(mtype(&r.message), MessageType::Ack);
    assert_eq!(r.dest, Destination::Unicast([192, 0, 2, 50].into()));
    assert_eq!(r.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(lease_time(&r.message).is_none());
    assert!(opt(&r.message, OptionCode::Router).is_some());
}

#[test]
fn reservations_win_and_are_kept_from_others() {
    let res = Reservation {
        mac: MacAddress(M1),
        addr: [192, 0, 2, 100].into(),
        hostname: Some("node1".into()),
    };
    let (h, backend, _) = setup(vec![res]);
    // someone else first: must not get the reserved address
    let other = dora(&h, M2, T0).yiaddr();
    assert_ne!(other, Ipv4Addr::new(192, 0, 2, 100));
    let ack = dora(&h, M1, T0);
    assert_eq!(ack.yiaddr(), Ipv4Addr::new(192, 0, 2, 100));
    assert_eq!(
        opt(&ack, OptionCode::Hostname),
        Some(&DhcpOption::Hostname("node1".into()))
    );
    let ev = backend.take_events();
    assert!(
        !ev.iter()
            .any(|e| matches!(e, DhcpEvent::UnknownMac { mac, .. } if mac.0 == M1)),
        "known MAC not reported"
    );
    // the machine may not take another address
    let r = reply(h.handle(&request_init_reboot(M1, [192, 0, 2, 101].into()), T0));
    assert_eq!(mtype(&r.message), MessageType::Nak);
}

#[test]
fn relayed_requests_use_giaddr_subnet_and_echo_option_82() {
    let (h, ..) = setup(vec![]);
    let mut d = discover(M1);
    d.set_giaddr(Ipv4Addr::new(198, 51, 100, 1));
    let mut info = RelayAgentInformation::default();
    info.insert(RelayInfo::AgentCircuitId(b"port7".to_vec()));
    d.opts_mut()
        .insert(DhcpOption::RelayAgentInformation(info.clone()));
    let r = reply(h.handle(&d, T0));
    assert_eq!(r.dest, Destination::Relay([198, 51, 100, 1].into()));
    assert_eq!(r.message.yiaddr(), Ipv4Addr::new(198, 51, 100, 10));
    assert_eq!(r.message.giaddr(), Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(
        opt(&r.message, OptionCode::RelayAgentInformation),
        Some(&DhcpOption::RelayAgentInformation(info))
    );
    // relayed NAK: to the relay, broadcast bit set
    let mut bad = request_init_reboot(M2, [192, 0, 2, 5].into());
    bad.set_giaddr(Ipv4Addr::new(198, 51, 100, 1));
    let r = reply(h.handle(&bad, T0));
    assert_eq!(mtype(&r.message), MessageType::Nak);
    assert_eq!(r.dest, Destination::Relay([198, 51, 100, 1].into()));
    assert!(r.message.flags().broadcast());
    // unknown relay
    let mut d = discover(M1);
    d.set_giaddr(Ipv4Addr::new(203, 0, 113, 1));
    assert_eq!(
        h.handle(&d, T0),
        Action::Drop(DropReason::NoSubnet([203, 0, 113, 1].into()))
    );
}

#[test]
fn broadcast_flag_is_copied() {
    let (h, ..) = setup(vec![]);
    let mut d = discover(M1);
    d.set_flags(dhcproto::v4::Flags::default());
    assert!(!reply(h.handle(&d, T0)).message.flags().broadcast());
    assert!(
        reply(h.handle(&discover(M1), T0))
            .message
            .flags()
            .broadcast()
    );
}

#[test]
fn pxe_bios_client_gets_lpxelinux_path_prefix_and_short_lease() {
    let (h, backend, _) = setup(vec![]);
    let o = reply(h.handle(&as_pxe(discover(M1), 0), T0)).message;
    assert_eq!(o.siaddr(), SERVER);
    assert_eq!(o.fname_str().unwrap().unwrap(), "lpxelinux.0");
    assert_eq!(lease_time(&o), Some(30));
    match opt(&o, OptionCode::Unknown(210)) {
        Some(DhcpOption::Unknown(u)) => assert_eq!(u.data(), b"http://192.0.2.1:5248/"),
        other => panic!("option 210 missing: {other:?}"),
    }
    assert!(
        opt(&o, OptionCode::BootfileName).is_none(),
        "67 only when asked"
    );
    let mut req = as_pxe(request_selecting(M1, o.yiaddr(), SERVER), 0);
    req.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::TFTPServerName,
        OptionCode::BootfileName,
    ]));
    let ack = reply(h.handle(&req, T0)).message;
    assert_eq!(
        opt(&ack, OptionCode::BootfileName),
        Some(&DhcpOption::BootfileName(b"lpxelinux.0".to_vec()))
    );
    assert_eq!(
        opt(&ack, OptionCode::TFTPServerName),
        Some(&DhcpOption::TFTPServerName(b"192.0.2.1".to_vec()))
    );
    assert!(backend.take_events().iter().any(|e| matches!(
        e,
        DhcpEvent::Leased {
            boot: Some(NetbootMethod::Pxe),
            ..
        }
    )));
}

#[test]
fn uefi_and_http_boot_clients() {
    let (h, ..) = setup(vec![]);
    let o = reply(h.handle(&as_pxe(discover(M1), 7), T0)).message;
    assert_eq!(o.fname_str().unwrap().unwrap(), "bootx64.efi");
    assert!(opt(&o, OptionCode::Unknown(210)).is_none());
    let o = reply(h.handle(&as_pxe(discover(M2), 0x10), T0)).message;
    assert_eq!(
        o.fname_str().unwrap().unwrap(),
        "http://192.0.2.1:5248/images/bootx64.efi"
    );
    assert_eq!(
        opt(&o, OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"HTTPClient".to_vec()))
    );
    assert_eq!(lease_time(&o), Some(600), "HTTPClient is not the PXE class");
}

#[test]
fn ipxe_user_class_gets_ipxe_cfg() {
    let (h, ..) = setup(vec![]);
    let mut d = as_pxe(discover(M1), 0);
    d.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    let o = reply(h.handle(&d, T0)).message;
    assert_eq!(
        o.fname_str().unwrap().unwrap(),
        "http://192.0.2.1:5248/ipxe.cfg"
    );
}

#[test]
fn proxy_mode_answers_only_pxe_without_address() {
    let mut cfg = DhcpConfig::new(SERVER, vec![]);
    cfg.mode = Mode::Proxy;
    let h = Handler::new(
        cfg,
        Arc::new(MemoryStore::default()),
        Arc::new(StaticBackend::default()),
    )
    .unwrap();
    assert_eq!(
        h.handle(&discover(M1), T0),
        Action::Drop(DropReason::NotPxe)
    );
    let r = reply(h.handle(&as_pxe(discover(M1), 7), T0));
    let o = &r.message;
    assert_eq!(mtype(o), MessageType::Offer);
    assert_eq!(o.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(o.siaddr(), SERVER);
    assert_eq!(o.fname_str().unwrap().unwrap(), "bootx64.efi");
    assert_eq!(
        opt(o, OptionCode::ClassIdentifier),
        Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
    );
    assert!(lease_time(o).is_none());
    let ack = reply(h.handle(&as_pxe(request_renew(M1, [192, 0, 2, 77].into()), 7), T0));
    assert_eq!(mtype(&ack.message), MessageType::Ack);
    assert_eq!(ack.dest, Destination::Unicast([192, 0, 2, 77].into()));
    assert_eq!(h.lease_count(), 0, "proxy never allocates");
    // The client's REQUEST to the site's server is not ours to answer.
    let site: Ipv4Addr = [192, 0, 2, 2].into();
    assert_eq!(
        h.handle(
            &as_pxe(request_selecting(M1, [192, 0, 2, 77].into(), site), 0),
            T0
        ),
        Action::Drop(DropReason::OtherServer(site))
    );
    // The PXE REQUEST naming us (port 4011) is.
    let to_us = reply(h.handle(
        &as_pxe(request_selecting(M1, [192, 0, 2, 77].into(), SERVER), 0),
        T0,
    ));
    assert_eq!(mtype(&to_us.message), MessageType::Ack);
    assert!(matches!(
        h.handle(&release(M1, [192, 0, 2, 77].into(), SERVER), T0),
        Action::Drop(_)
    ));
}

#[test]
fn restart_from_store_keeps_leases() {
    let (h, _, store) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    let cfg = DhcpConfig::new(SERVER, vec![subnet()]);
    let h2 = Handler::new(
        cfg,
        Arc::new(MemoryStore::with_leases(store.records())),
        Arc::new(StaticBackend::default()),
    )
    .unwrap();
    assert_ne!(
        dora(&h2, M2, T0).yiaddr(),
        a,
        "nobody else gets the leased address"
    );
    assert_eq!(dora(&h2, M1, T0).yiaddr(), a, "the holder keeps it");
}

#[test]
fn non_requests_and_odd_hardware_are_dropped() {
    let (h, ..) = setup(vec![]);
    let mut m = discover(M1);
    m.set_opcode(Opcode::BootReply);
    assert_eq!(h.handle(&m, T0), Action::Drop(DropReason::NotRequest));
    let mut m = discover(M1);
    m.set_chaddr(&[1, 2, 3, 4]);
    assert_eq!(
        h.handle(&m, T0),
        Action::Drop(DropReason::UnsupportedHardware)
    );
    let mut m = discover(M1);
    m.opts_mut().remove(OptionCode::MessageType);
    assert_eq!(h.handle(&m, T0), Action::Drop(DropReason::Bootp));
    let mut m = discover(M1);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Offer));
    assert_eq!(
        h.handle(&m, T0),
        Action::Drop(DropReason::UnsupportedType(2))
    );
}

fn encode(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut Encoder::new(&mut b)).unwrap();
    b
}

#[test]
fn malformed_datagrams_are_dropped() {
    let (h, ..) = setup(vec![]);
    let good = encode(&discover(M1));
    assert!(matches!(h.handle_bytes(&good, T0), Action::Reply(_)));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated header", good[..100].to_vec()),
        ("no cookie", {
            let mut b = good.clone();
            b[236] = 0;
            b
        }),
        ("hlen 200", {
            let mut b = good.clone();
            b[2] = 200;
            b
        }),
        ("huge option length", {
            let mut b = good[..240].to_vec();
            b.extend([53, 1, 1, 12, 255, b'x']);
            b
        }),
        ("no end", {
            let mut b = good[..240].to_vec();
            b.extend([53, 1, 1]);
            b
        }),
        ("route /40", {
            let mut b = good[..240].to_vec();
            b.extend([53, 1, 1, 121, 5, 40, 1, 2, 3, 4, 255]);
            b
        }),
    ];
    for (what, bytes) in cases {
        assert!(
            matches!(
                h.handle_bytes(&bytes, T0),
                Action::Drop(DropReason::Malformed(_))
            ),
            "{what}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let (h, ..) = setup(vec![]);
        let _ = h.handle_bytes(&bytes, T0);
    }

    #[test]
    fn mutated_requests_never_panic(
        which in 0usize..6,
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..12),
        cut in 0usize..400,
    ) {
        let (h, ..) = setup(vec![]);
        let a: Ipv4Addr = [192, 0, 2, 100].into();
        let base = match which {
            0 => discover(M1),
            1 => as_pxe(discover(M1), 7),
            2 => request_selecting(M1, a, SERVER),
            3 => request_renew(M1, a),
            4 => release(M1, a, SERVER),
            _ => decline(M1, a, SERVER),
        };
        let mut b = encode(&base);
        for (i, v) in flips {
            if let Some(x) = b.get_mut(i) { *x = v; }
        }
        b.truncate(cut.max(1));
        let _ = h.handle_bytes(&b, T0);
        // and the full-length mutation too
        let _ = h.handle_bytes(&encode(&base), T0);
    }

    #[test]
    fn option_soup_never_panics(opts in proptest::collection::vec((1u8..255, proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
        let (h, ..) = setup(vec![]);
        let mut b = encode(&discover(M1))[..240].to_vec();
        b.extend([53, 1, 1]);
        for (code, body) in opts {
            b.push(code);
            b.push(body.len() as u8);
            b.extend(body);
        }
        b.push(255);
        let _ = h.handle_bytes(&b, T0);
    }
}

#[test]
fn reconfigure_swaps_subnets_and_keeps_leases() {
    let (h, ..) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    let mut s = subnet();
    s.mtu = 9000;
    s.lease_time = Some(120);
    h.reconfigure(DhcpConfig::new(SERVER, vec![s])).unwrap();
    let ack = dora(&h, M1, T0);
    assert_eq!(ack.yiaddr(), a, "lease kept across reconfiguration");
    assert_eq!(lease_time(&ack), Some(120));
    assert_eq!(
        opt(&ack, OptionCode::InterfaceMtu),
        Some(&DhcpOption::InterfaceMtu(9000))
    );
    assert!(
        h.reconfigure(DhcpConfig::new(SERVER, vec![])).is_err(),
        "invalid config refused"
    );
    assert_eq!(
        h.config().subnets[0].mtu,
        9000,
        "old config kept on refusal"
    );
    let mut d = discover(M2);
    d.set_giaddr(Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(
        h.handle(&d, T0),
        Action::Drop(DropReason::NoSubnet([198, 51, 100, 1].into()))
    );
}

#[test]
fn reclaim_lapses_leases_at_their_expiry_only() {
    let (h, backend, store) = setup(vec![]);
    let a = dora(&h, M1, T0).yiaddr();
    backend.take_events();
    let before = store.records().len();
    // MAAS's default lease is 600 s; the clock is injected as timestamps.
    assert_eq!(h.reclaim(T0 + Duration::from_secs(599)), 0);
    assert_eq!(h.lease(a).unwrap().state, LeaseState::Bound);
    assert!(backend.take_events().is_empty());
    assert_eq!(h.reclaim(T0 + Duration::from_secs(600)), 1);
    assert_eq!(h.lease(a).unwrap().state, LeaseState::Released);
    assert_eq!(
        backend.take_events(),
        vec![DhcpEvent::Expired {
            mac: MacAddress(M1),
            addr: a
        }]
    );
    let recs = store.records();
    assert_eq!(recs.len(), before + 1, "the lapse is recorded");
    assert_eq!(recs.last().unwrap().state, LeaseState::Released);
    assert_eq!(h.reclaim(T0 + Duration::from_secs(601)), 0, "once");
    // The lapsed holder comes back to the same address; a stranger would not
    // have displaced it while others are free.
    assert_eq!(dora(&h, M1, T0 + Duration::from_secs(700)).yiaddr(), a);
}

/// cargo-fuzz found (dhcp_handler): options dhcproto decodes with a length
/// assertion. They are refused up front, whatever their length claims.
#[test]
fn fuzz_regression_fixed_length_options() {
    let crash = include_bytes!("fuzz-regressions/dhcproto-fixed-length-option.bin");
    // The fuzz target's first byte moves the clock; the rest is the datagram.
    let (h, ..) = setup(vec![]);
    assert!(matches!(
        h.handle_bytes(&crash[1..], T0),
        Action::Drop(DropReason::Malformed(_))
    ));
    let mut base = Vec::new();
    discover(M1).encode(&mut Encoder::new(&mut base)).unwrap();
    assert_eq!(base.pop(), Some(255), "ends in END");
    for (code, good, bad) in [
        (80u8, 0usize, 1usize),
        (94, 3, 2),
        (152, 4, 3),
        (153, 4, 5),
        (154, 4, 0),
        (155, 4, 8),
        (81, 3, 2),
    ] {
        for (len, ok) in [(good, true), (bad, false)] {
            let mut pkt = base.clone();
            pkt.push(code);
            pkt.push(len as u8);
            pkt.extend(std::iter::repeat_n(0u8, len));
            pkt.push(255);
            assert_eq!(precheck(&pkt).is_ok(), ok, "option {code} length {len}");
            if !ok {
                assert!(matches!(
                    h.handle_bytes(&pkt, T0),
                    Action::Drop(DropReason::Malformed(_))
                ));
            }
        }
    }
}

/// cargo-fuzz found (dhcp_handler, session 3): `dhcproto` joins consecutive
/// options with the same code (RFC 3396 long options) before its length
/// assertions, so two well-formed copies of a 4-byte option made one 8-byte
/// option and a panic. Lengths are now checked per run of copies.
#[test]
fn fuzz_regression_repeated_fixed_length_option() {
    let crash = include_bytes!("fuzz-regressions/dhcproto-repeated-option.bin");
    let (h, ..) = setup(vec![]);
    assert!(matches!(
        h.handle_bytes(&crash[1..], T0),
        Action::Drop(DropReason::Malformed(_))
    ));
    let mut base = Vec::new();
    discover(M1).encode(&mut Encoder::new(&mut base)).unwrap();
    assert_eq!(base.pop(), Some(255), "ends in END");
    // (options appended before END, accepted by precheck)
    let cases: [(&[u8], bool); 9] = [
        (&[152, 4, 0, 0, 0, 1], true),
        (&[152, 4, 0, 0, 0, 1, 152, 4, 0, 0, 0, 2], false),
        // PAD ends a run: two separate options, not one joined.
        (&[152, 4, 0, 0, 0, 1, 0, 152, 4, 0, 0, 0, 2], true),
        // A 4-byte value split in two halves is fine.
        (&[152, 2, 0, 0, 152, 2, 0, 1], true),
        (&[151, 0], false),
        (&[151, 0, 151, 1, 0], true),
        (&[81, 1, 0, 81, 2, 0, 0], true),
        (&[94, 3, 1, 2, 0, 94, 3, 1, 2, 0], false),
        (&[80, 0, 80, 0], true),
    ];
    for (opts, ok) in cases {
        let mut pkt = base.clone();
        pkt.extend_from_slice(opts);
        pkt.push(255);
        assert_eq!(precheck(&pkt).is_ok(), ok, "{opts:?}");
        if ok {
            // What precheck lets through, dhcproto decodes without a panic
            // (its assertions are live in this debug build).
            let raw = std::panic::catch_unwind(|| {
                <Message as dhcproto::Decodable>::decode(&mut dhcproto::Decoder::new(&pkt))
                    .map(drop)
            });
            assert!(raw.is_ok(), "dhcproto panicked on {opts:?}");
        } else {
            assert!(matches!(
                h.handle_bytes(&pkt, T0),
                Action::Drop(DropReason::Malformed(_))
            ));
        }
    }
}
