//! Builders for client messages, for tests, examples and fuzzing seeds.
//! They produce what a plain client would send; callers add options.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};

fn base(mac: [u8; 6], t: MessageType) -> Message {
    let mut m = Message::new_with_id(
        0x1234_5678,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(t));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::DomainName,
    ]));
    m
}

/// A DISCOVER from `mac`.
pub fn discover(mac: [u8; 6]) -> Message {
    base(mac, MessageType::Discover)
}

/// A REQUEST in SELECTING state: `addr` offered by `server`.
pub fn request_selecting(mac: [u8; 6], addr: Ipv4Addr, server: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Request);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m
}

/// A REQUEST in INIT-REBOOT state (option 50, no server id).
pub fn request_init_reboot(mac: [u8; 6], addr: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Request);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    m
}

/// A REQUEST in RENEWING state (unicast, `ciaddr` set, no broadcast flag).
pub fn request_renew(mac: [u8; 6], addr: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Request);
    m.set_ciaddr(addr).set_flags(Flags::default());
    m
}

/// A RELEASE of `addr` given by `server`.
pub fn release(mac: [u8; 6], addr: Ipv4Addr, server: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Release);
    m.set_ciaddr(addr).set_flags(Flags::default());
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m
}

/// A DECLINE of `addr` given by `server`.
pub fn decline(mac: [u8; 6], addr: Ipv4Addr, server: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Decline);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m
}

/// An INFORM from a client configured with `addr`.
pub fn inform(mac: [u8; 6], addr: Ipv4Addr) -> Message {
    let mut m = base(mac, MessageType::Inform);
    m.set_ciaddr(addr).set_flags(Flags::default());
    m
}

/// Marks a message as PXE firmware of architecture `arch` (options 60, 93).
pub fn as_pxe(mut m: Message, arch: u16) -> Message {
    let vc = if arch == 0x10 || arch == 0x13 {
        format!("HTTPClient:Arch:{arch:05}:UNDI:003000")
    } else {
        format!("PXEClient:Arch:{arch:05}:UNDI:002001")
    };
    m.opts_mut()
        .insert(DhcpOption::ClassIdentifier(vc.into_bytes()));
    m.opts_mut().insert(DhcpOption::ClientSystemArchitecture(
        dhcproto::v4::Architecture(arch),
    ));
    m
}
