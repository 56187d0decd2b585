//! The TFTP wire format: RFC 1350 packets plus the option extension of RFC 2347
//! (OACK and option lists on requests). Parsing never panics: anything that does
//! not follow the format is an [`Error::Invalid`].

use crate::{Error, Result};

/// The largest packet this codec reads: a DATA packet with the largest block
/// size RFC 2348 allows (65464) plus its 4-byte header.
pub const MAX_PACKET: usize = 65_468;

/// A TFTP opcode (RFC 1350 §5, RFC 2347).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Opcode {
    /// Read request.
    Rrq = 1,
    /// Write request.
    Wrq = 2,
    /// A block of file data.
    Data = 3,
    /// Acknowledgement of a block.
    Ack = 4,
    /// Error, ends the transfer.
    Error = 5,
    /// Option acknowledgement (RFC 2347).
    Oack = 6,
}

/// The error codes of RFC 1350 and RFC 2347.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    Undefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused (RFC 2347).
    OptionRefused,
    /// Any other value a peer sent.
    Other(u16),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::Undefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Other(n) => n,
        }
    }

    /// The code for a number read from the wire.
    pub fn from_code(n: u16) -> Self {
        match n {
            0 => ErrorCode::Undefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            n => ErrorCode::Other(n),
        }
    }
}

/// One TFTP packet, borrowing its payload from the datagram it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// RRQ: read `filename` in `mode` with the options the client proposes.
    Rrq(Request),
    /// WRQ: write `filename` (always refused by this server).
    Wrq(Request),
    /// DATA `block`.
    Data {
        /// Block number (wraps at 65535).
        block: u16,
        /// Up to block-size bytes.
        data: &'a [u8],
    },
    /// ACK `block`.
    Ack {
        /// The block acknowledged (0 acknowledges an OACK).
        block: u16,
    },
    /// ERROR.
    Error {
        /// Error code.
        code: ErrorCode,
        /// Human-readable message.
        message: String,
    },
    /// OACK with the options the server accepted.
    Oack {
        /// (name, value) pairs in order.
        options: Vec<(String, String)>,
    },
}

/// A read or write request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The requested file name, exactly as sent (validated later by the tree).
    pub filename: Vec<u8>,
    /// `octet`, `netascii` or `mail`, lowercased.
    pub mode: String,
    /// Option (name, value) pairs in the order sent; names as sent.
    pub options: Vec<(String, String)>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("tftp packet: {}", msg.into()))
}

/// Splits NUL-terminated fields; the datagram must end with a NUL.
fn fields(mut rest: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| invalid("field without NUL terminator"))?;
        out.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    Ok(out)
}

fn text(field: &[u8], what: &str) -> Result<String> {
    // Option names, values and modes are ASCII by RFC; refusing anything else keeps
    // lowercasing and comparisons simple and honest.
    if !field.is_ascii() {
        return Err(invalid(format!("{what} is not ASCII")));
    }
    Ok(String::from_utf8_lossy(field).into_owned())
}

fn options(pairs: &[&[u8]]) -> Result<Vec<(String, String)>> {
    if !pairs.len().is_multiple_of(2) {
        return Err(invalid("option without a value"));
    }
    pairs
        .chunks_exact(2)
        .map(|kv| Ok((text(kv[0], "option name")?, text(kv[1], "option value")?)))
        .collect()
}

fn request(body: &[u8]) -> Result<Request> {
    let f = fields(body)?;
    let (filename, mode, rest) = match f.as_slice() {
        [filename, mode, rest @ ..] => (filename, mode, rest),
        _ => return Err(invalid("request without filename and mode")),
    };
    if filename.is_empty() {
        return Err(invalid("empty filename"));
    }
    Ok(Request {
        filename: filename.to_vec(),
        mode: text(mode, "mode")?.to_ascii_lowercase(),
        options: options(rest)?,
    })
}

impl<'a> Packet<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < 4 {
            // Every packet has an opcode and at least two more bytes (ERROR's code,
            // ACK/DATA's block, a request's filename + NUL).
            return Err(invalid(format!("{} bytes is too short", buf.len())));
        }
        if buf.len() > MAX_PACKET {
            return Err(invalid(format!("{} bytes is too long", buf.len())));
        }
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let body = &buf[2..];
        let word = u16::from_be_bytes([body[0], body[1]]);
        match op {
            1 => Ok(Packet::Rrq(request(body)?)),
            2 => Ok(Packet::Wrq(request(body)?)),
            3 => Ok(Packet::Data {
                block: word,
                data: &body[2..],
            }),
            4 if body.len() == 2 => Ok(Packet::Ack { block: word }),
            4 => Err(invalid("ACK with trailing bytes")),
            5 => {
                let rest = &body[2..];
                // Some clients omit the final NUL; accept the message either way.
                let msg = match rest.iter().position(|&b| b == 0) {
                    Some(end) => &rest[..end],
                    None => rest,
                };
                Ok(Packet::Error {
                    code: ErrorCode::from_code(word),
                    message: String::from_utf8_lossy(msg).into_owned(),
                })
            }
            6 => Ok(Packet::Oack {
                options: options(&fields(body)?)?,
            }),
            n => Err(invalid(format!("unknown opcode {n}"))),
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        fn cstr(out: &mut Vec<u8>, s: &[u8]) {
            out.extend_from_slice(s);
            out.push(0);
        }
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                let op = if matches!(self, Packet::Rrq(_)) {
                    Opcode::Rrq
                } else {
                    Opcode::Wrq
                };
                out.extend_from_slice(&(op as u16).to_be_bytes());
                cstr(out, &r.filename);
                cstr(out, r.mode.as_bytes());
                for (k, v) in &r.options {
                    cstr(out, k.as_bytes());
                    cstr(out, v.as_bytes());
                }
            }
            Packet::Data { block, data } => {
                out.extend_from_slice(&(Opcode::Data as u16).to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(data);
            }
            Packet::Ack { block } => {
                out.extend_from_slice(&(Opcode::Ack as u16).to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&(Opcode::Error as u16).to_be_bytes());
                out.extend_from_slice(&code.code().to_be_bytes());
                // A NUL inside the message would cut it short on the peer's side.
                let msg: Vec<u8> = message.bytes().filter(|&b| b != 0).collect();
                cstr(out, &msg);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&(Opcode::Oack as u16).to_be_bytes());
                for (k, v) in options {
                    cstr(out, k.as_bytes());
                    cstr(out, v.as_bytes());
                }
            }
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_request_with_options() {
        let raw = b"\x00\x01pxelinux.0\x00OCTET\x00blksize\x001468\x00tsize\x000\x00";
        let Packet::Rrq(r) = Packet::parse(raw).unwrap() else {
            panic!("not an RRQ")
        };
        assert_eq!(r.filename, b"pxelinux.0");
        assert_eq!(r.mode, "octet");
        assert_eq!(
            r.options,
            vec![
                ("blksize".into(), "1468".into()),
                ("tsize".into(), "0".into())
            ]
        );
    }

    #[test]
    fn refuses_malformed() {
        for raw in [
            &b""[..],
            b"\x00",
            b"\x00\x01a\x00",                 // no mode
            b"\x00\x01a\x00octet",            // mode not terminated
            b"\x00\x01a\x00octet\x00blk\x00", // option without value
            b"\x00\x01\x00octet\x00",         // empty filename
            b"\x00\x04\x00\x01\x00",          // ACK too long
            b"\x00\x09\x00\x00",              // opcode 9
        ] {
            assert!(Packet::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn error_without_final_nul_is_read() {
        let p = Packet::parse(b"\x00\x05\x00\x01nope").unwrap();
        assert_eq!(
            p,
            Packet::Error {
                code: ErrorCode::FileNotFound,
                message: "nope".into()
            }
        );
    }

    fn ascii() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._-]{1,20}"
    }

    fn any_packet() -> impl Strategy<Value = (u8, Vec<u8>, String, Vec<(String, String)>, u16)> {
        (
            0u8..6,
            proptest::collection::vec(1u8..=255, 1..100),
            ascii(),
            proptest::collection::vec((ascii(), ascii()), 1..5),
            any::<u16>(),
        )
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Packet::parse(&raw);
        }

        #[test]
        fn round_trips((kind, bytes, text, opts, n) in any_packet()) {
            let req = Request { filename: bytes.clone(), mode: text.to_ascii_lowercase(), options: opts.clone() };
            let p = match kind {
                0 => Packet::Rrq(req),
                1 => Packet::Wrq(req),
                2 => Packet::Data { block: n, data: &bytes },
                3 => Packet::Ack { block: n },
                4 => Packet::Error { code: ErrorCode::from_code(n), message: text.clone() },
                _ => Packet::Oack { options: opts.clone() },
            };
            let wire = p.encode();
            prop_assert_eq!(Packet::parse(&wire).unwrap(), p);
        }
    }
}
