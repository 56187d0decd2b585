//! Wire formats: the RMCP header, IPMI 1.5 and 2.0 (RMCP+) session
//! wrappers, and IPMI LAN messages with their checksums. Pure functions on
//! byte slices; nothing here does I/O.

use crate::error::{Error, Result};
use crate::ipmi::crypto::SessionKeys;

/// RMCP version 1.0, reserved, sequence 0xFF (no ACK), class IPMI.
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];
/// Session auth type that marks an RMCP+ (IPMI 2.0) packet.
pub const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;

/// RMCP+ payload types we use.
pub mod payload {
    /// An IPMI message.
    pub const IPMI: u8 = 0x00;
    /// RMCP+ Open Session Request.
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    /// RMCP+ Open Session Response.
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    /// RAKP Message 1.
    pub const RAKP1: u8 = 0x12;
    /// RAKP Message 2.
    pub const RAKP2: u8 = 0x13;
    /// RAKP Message 3.
    pub const RAKP3: u8 = 0x14;
    /// RAKP Message 4.
    pub const RAKP4: u8 = 0x15;
}

const ENCRYPTED: u8 = 0x80;
const AUTHENTICATED: u8 = 0x40;

/// A decoded session-layer packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// IPMI 2.0 payload type (0 for IPMI 1.5 packets).
    pub payload_type: u8,
    /// Session id from the header.
    pub session_id: u32,
    /// Session sequence number.
    pub seq: u32,
    /// The payload, decrypted.
    pub payload: Vec<u8>,
    /// Whether the packet was IPMI 1.5 framed.
    pub v15: bool,
}

/// Frames an unauthenticated IPMI 1.5 packet (used before a session exists).
pub fn encode_v15(message: &[u8]) -> Result<Vec<u8>> {
    let len = u8::try_from(message.len())
        .map_err(|_| Error::Invalid("IPMI 1.5 message too long".into()))?;
    let mut out = RMCP_HEADER.to_vec();
    out.push(0x00); // auth type none
    out.extend_from_slice(&[0; 4]); // sequence
    out.extend_from_slice(&[0; 4]); // session id
    out.push(len);
    out.extend_from_slice(message);
    Ok(out)
}

/// Frames an RMCP+ packet; `keys` given → encrypted and authenticated.
pub fn encode_v2(
    payload_type: u8,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    keys: Option<&SessionKeys>,
    iv: [u8; 16],
) -> Result<Vec<u8>> {
    let (ptype, body) = match keys {
        Some(k) => (
            payload_type | ENCRYPTED | AUTHENTICATED,
            k.encrypt(payload, iv),
        ),
        None => (payload_type, payload.to_vec()),
    };
    let len = u16::try_from(body.len()).map_err(|_| Error::Invalid("payload too long".into()))?;
    let mut out = RMCP_HEADER.to_vec();
    out.push(AUTH_TYPE_RMCP_PLUS);
    out.push(ptype);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    if let Some(k) = keys {
        // Pad so that session header .. next header is a multiple of 4.
        let covered = out.len() - RMCP_HEADER.len() + 2;
        let pad = (4 - covered % 4) % 4;
        out.extend(std::iter::repeat_n(0xFF, pad));
        out.push(pad as u8);
        out.push(0x07); // next header
        let code = k.auth_code(&out[RMCP_HEADER.len()..]);
        out.extend_from_slice(&code);
    }
    Ok(out)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes a packet. `keys` are needed for authenticated/encrypted RMCP+
/// packets; their AuthCode is checked. Malformed input is an error, never a
/// panic.
pub fn decode(packet: &[u8], keys: Option<&SessionKeys>) -> Result<Packet> {
    let bad = |what: &str| Error::Invalid(format!("IPMI packet: {what}"));
    if packet.len() < 5 || packet[0] != 0x06 || packet[3] != 0x07 {
        return Err(bad("not an RMCP IPMI packet"));
    }
    let s = &packet[4..];
    if s[0] != AUTH_TYPE_RMCP_PLUS {
        // IPMI 1.5: auth type, seq(4), session id(4), [auth code(16)], len, message
        let code_len = if s[0] == 0 { 0 } else { 16 };
        let hdr = 1 + 4 + 4 + code_len;
        if s.len() < hdr + 1 {
            return Err(bad("short IPMI 1.5 header"));
        }
        let len = usize::from(s[hdr]);
        let msg = s
            .get(hdr + 1..hdr + 1 + len)
            .ok_or_else(|| bad("IPMI 1.5 length beyond packet"))?;
        return Ok(Packet {
            payload_type: payload::IPMI,
            session_id: le32(&s[5..9]),
            seq: le32(&s[1..5]),
            payload: msg.to_vec(),
            v15: true,
        });
    }
    if s.len() < 12 {
        return Err(bad("short RMCP+ header"));
    }
    let ptype = s[1];
    let session_id = le32(&s[2..6]);
    let seq = le32(&s[6..10]);
    let len = usize::from(u16::from_le_bytes([s[10], s[11]]));
    let body = s
        .get(12..12 + len)
        .ok_or_else(|| bad("payload length beyond packet"))?;
    let authenticated = ptype & AUTHENTICATED != 0;
    let encrypted = ptype & ENCRYPTED != 0;
    if (authenticated || encrypted) && keys.is_none() {
        return Err(bad("protected packet outside a session"));
    }
    if authenticated {
        // invariant: checked just above
        let k = keys.ok_or_else(|| bad("no keys"))?;
        let code_len = k.suite().auth_code_len();
        if s.len() < 12 + len + 2 + code_len {
            return Err(bad("short integrity trailer"));
        }
        let (covered, code) = s.split_at(s.len() - code_len);
        if !crate::ipmi::crypto::codes_match(&k.auth_code(covered), code) {
            return Err(bad("integrity check failed"));
        }
    }
    let payload = match (encrypted, keys) {
        (true, Some(k)) => k.decrypt(body)?,
        _ => body.to_vec(),
    };
    Ok(Packet {
        payload_type: ptype & 0x3F,
        session_id,
        seq,
        payload,
        v15: false,
    })
}

/// An IPMI LAN message. Requests and responses share the layout:
/// `[addr1, netfn<<2|lun, chk1, addr2, seq<<2|lun, cmd, body…, chk2]`; for a
/// response the body starts with the completion code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Responder address for requests, requester for responses.
    pub addr1: u8,
    /// Network function (request netfn, or netfn|1 for responses).
    pub netfn: u8,
    /// The other address.
    pub addr2: u8,
    /// 6-bit sequence number matching a response to its request.
    pub rq_seq: u8,
    /// Command number.
    pub cmd: u8,
    /// Data (for responses, completion code first).
    pub body: Vec<u8>,
}

/// BMC responder address.
pub const BMC_ADDR: u8 = 0x20;
/// Remote console software id.
pub const CONSOLE_ADDR: u8 = 0x81;

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

impl Message {
    /// A request from the console to the BMC.
    pub fn request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Self {
        Self {
            addr1: BMC_ADDR,
            netfn,
            addr2: CONSOLE_ADDR,
            rq_seq,
            cmd,
            body: data.to_vec(),
        }
    }

    /// The response to this request with `completion` and `data`.
    pub fn response(&self, completion: u8, data: &[u8]) -> Self {
        let mut body = vec![completion];
        body.extend_from_slice(data);
        Self {
            addr1: self.addr2,
            netfn: self.netfn | 1,
            addr2: self.addr1,
            rq_seq: self.rq_seq,
            cmd: self.cmd,
            body,
        }
    }

    /// Serialises with both checksums (LUNs are 0).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.addr1, self.netfn << 2];
        out.push(checksum(&out));
        out.extend_from_slice(&[self.addr2, (self.rq_seq & 0x3F) << 2, self.cmd]);
        out.extend_from_slice(&self.body);
        out.push(checksum(&out[3..]));
        out
    }

    /// Parses and checks both checksums.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 7 {
            return Err(Error::Invalid("IPMI message too short".into()));
        }
        if checksum(&bytes[..2]) != bytes[2]
            || checksum(&bytes[3..bytes.len() - 1]) != bytes[bytes.len() - 1]
        {
            return Err(Error::Invalid("IPMI message checksum".into()));
        }
        Ok(Self {
            addr1: bytes[0],
            netfn: bytes[1] >> 2,
            addr2: bytes[3],
            rq_seq: bytes[4] >> 2,
            cmd: bytes[5],
            body: bytes[6..bytes.len() - 1].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipmi::crypto::CipherSuite;
    use proptest::prelude::*;

    #[test]
    fn get_channel_auth_caps_matches_known_bytes() {
        // What ipmitool sends first: netfn App, cmd 0x38, data 8E 04.
        let m = Message::request(0x06, 0x38, 0, &[0x8E, 0x04]).encode();
        assert_eq!(m, [0x20, 0x18, 0xC8, 0x81, 0x00, 0x38, 0x8E, 0x04, 0xB5]);
        let p = encode_v15(&m).unwrap();
        assert_eq!(&p[..5], &[0x06, 0x00, 0xFF, 0x07, 0x00]);
        assert_eq!(p[13], 9);
        let d = decode(&p, None).unwrap();
        assert!(d.v15);
        assert_eq!(Message::decode(&d.payload).unwrap().cmd, 0x38);
    }

    #[test]
    fn protected_packets_round_trip_and_detect_tampering() {
        for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
            let k = SessionKeys::derive(suite, b"session integrity key");
            let p = encode_v2(0, 0x1234, 7, b"hello", Some(&k), [9; 16]).unwrap();
            assert_eq!((p.len() - 4 - suite.auth_code_len()) % 4, 0);
            let d = decode(&p, Some(&k)).unwrap();
            assert_eq!(
                (d.session_id, d.seq, d.payload.as_slice()),
                (0x1234, 7, &b"hello"[..])
            );
            let mut bad = p.clone();
            bad[20] ^= 1;
            assert!(decode(&bad, Some(&k)).is_err());
            assert!(decode(&p, None).is_err());
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let k = SessionKeys::derive(CipherSuite::Suite3, b"k");
            let _ = decode(&bytes, None);
            let _ = decode(&bytes, Some(&k));
            let _ = Message::decode(&bytes);
            let mut framed = RMCP_HEADER.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed, Some(&k));
        }

        #[test]
        fn messages_round_trip(netfn in 0u8..0x3F, cmd: u8, seq in 0u8..0x40, data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let m = Message::request(netfn, cmd, seq, &data);
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m.clone());
            let r = m.response(0, &data);
            prop_assert_eq!(Message::decode(&r.encode()).unwrap(), r);
        }
    }
}
