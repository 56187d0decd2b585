//! IPMI 1.5 `LAN` sessions (MAAS's `power_driver` = `LAN`): Get Session
//! Challenge, Activate Session with MD5 or straight-password authentication,
//! per-message auth codes and sequence numbers, Close Session.
//!
//! IPMI 1.5 has no confidentiality and weak authentication; it is here for
//! old BMCs only. MD5 is preferred when the BMC offers it.

use std::net::SocketAddr;
use std::time::Duration;

use md5::{Digest, Md5};
use rand::Rng;
use tokio::net::UdpSocket;

use crate::error::{Error, Result};
use crate::ipmi::client::{NETFN_APP, SessionConfig, completion_error};
use crate::ipmi::packet::{Message, RMCP_HEADER};

/// Session authentication types.
const AUTH_NONE: u8 = 0;
const AUTH_MD5: u8 = 2;
const AUTH_STRAIGHT: u8 = 4;

/// An active IPMI 1.5 session.
#[derive(Debug)]
pub struct Session15 {
    sock: UdpSocket,
    auth_type: u8,
    password: [u8; 16],
    session_id: u32,
    seq: u32,
    rq_seq: u8,
    timeout: Duration,
    attempts: u32,
}

/// The 16-byte auth code of one message.
fn auth_code(auth: u8, password: &[u8; 16], sid: u32, msg: &[u8], seq: u32) -> [u8; 16] {
    match auth {
        AUTH_MD5 => {
            let mut h = Md5::new();
            h.update(password);
            h.update(sid.to_le_bytes());
            h.update(msg);
            h.update(seq.to_le_bytes());
            h.update(password);
            h.finalize().into()
        }
        AUTH_STRAIGHT => *password,
        _ => [0; 16],
    }
}

/// Frames a 1.5 packet with an auth code unless the auth type is none.
fn frame(auth: u8, password: &[u8; 16], sid: u32, seq: u32, msg: &[u8]) -> Result<Vec<u8>> {
    let len = u8::try_from(msg.len()).map_err(|_| Error::Invalid("message too long".into()))?;
    let mut out = RMCP_HEADER.to_vec();
    out.push(auth);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sid.to_le_bytes());
    if auth != AUTH_NONE {
        out.extend_from_slice(&auth_code(auth, password, sid, msg, seq));
    }
    out.push(len);
    out.extend_from_slice(msg);
    Ok(out)
}

/// (auth type, session id, message) of a 1.5 reply.
fn parse(packet: &[u8]) -> Option<(u8, u32, Message)> {
    let s = packet.get(4..)?;
    let auth = *s.first()?;
    let sid = u32::from_le_bytes(s.get(5..9)?.try_into().ok()?);
    let hdr = if auth == AUTH_NONE { 9 } else { 25 };
    let len = usize::from(*s.get(hdr)?);
    let msg = Message::decode(s.get(hdr + 1..hdr + 1 + len)?).ok()?;
    Some((auth, sid, msg))
}

impl Session15 {
    /// Opens a session on `sock` (already connected to the BMC).
    pub async fn open(cfg: &SessionConfig) -> Result<Self> {
        let mut s = Session15 {
            sock: connect(cfg.addr).await?,
            auth_type: AUTH_NONE,
            password: [0; 16],
            session_id: 0,
            seq: 0,
            rq_seq: 0,
            timeout: cfg.timeout,
            attempts: cfg.attempts.max(1),
        };
        let caps = s
            .exchange(AUTH_NONE, NETFN_APP, 0x38, &[0x0E, cfg.privilege as u8])
            .await?;
        let offered = *caps
            .get(1)
            .ok_or_else(|| Error::Bmc("short capabilities reply".into()))?;
        let auth_type = if offered & (1 << AUTH_MD5) != 0 {
            AUTH_MD5
        } else if offered & (1 << AUTH_STRAIGHT) != 0 {
            AUTH_STRAIGHT
        } else if offered & 1 != 0 && cfg.password.is_empty() {
            AUTH_NONE
        } else {
            return Err(Error::Unsupported(
                "the BMC offers no IPMI 1.5 authentication we speak (MD5, straight password)"
                    .into(),
            ));
        };
        let mut password = [0u8; 16];
        let pw = cfg.password.expose().as_bytes();
        if pw.len() > 16 {
            return Err(Error::Settings(
                "power_pass: longer than 16 bytes for IPMI 1.5".into(),
            ));
        }
        password[..pw.len()].copy_from_slice(pw);
        let initial_seq: u32 = rand::rng().random_range(1..0x7FFF_FFFF);
        s.auth_type = auth_type;
        s.password = password;
        // Get Session Challenge, outside any session.
        let mut user = [0u8; 16];
        let u = cfg.user.as_bytes();
        user[..u.len().min(16)].copy_from_slice(&u[..u.len().min(16)]);
        let mut data = vec![auth_type];
        data.extend_from_slice(&user);
        let challenge = s
            .exchange(AUTH_NONE, NETFN_APP, 0x39, &data)
            .await
            .map_err(|e| match e {
                Error::Bmc(m) => Error::Auth(format!("Get Session Challenge: {m}")),
                other => other,
            })?;
        if challenge.len() < 20 {
            return Err(Error::Bmc("short Get Session Challenge reply".into()));
        }
        s.session_id = u32::from_le_bytes([challenge[0], challenge[1], challenge[2], challenge[3]]);
        // Activate Session, authenticated with the temporary id.
        let mut data = vec![auth_type, cfg.privilege as u8];
        data.extend_from_slice(&challenge[4..20]);
        data.extend_from_slice(&initial_seq.to_le_bytes());
        let act = s
            .exchange(auth_type, NETFN_APP, 0x3A, &data)
            .await
            .map_err(|e| match e {
                Error::Connection(_) | Error::Bmc(_) => Error::Auth(format!(
                    "Activate Session refused: wrong user name or password ({e})"
                )),
                other => other,
            })?;
        if act.len() < 10 {
            return Err(Error::Bmc("short Activate Session reply".into()));
        }
        s.session_id = u32::from_le_bytes([act[1], act[2], act[3], act[4]]);
        // The BMC tells us which sequence number it expects next from us
        // (ours, in the request, numbers its messages to us).
        s.seq = u32::from_le_bytes([act[5], act[6], act[7], act[8]]).max(1);
        s.command(NETFN_APP, 0x3B, &[cfg.privilege as u8])
            .await
            .map_err(|e| match e {
                Error::Bmc(m) => Error::Auth(format!("Set Session Privilege Level: {m}")),
                other => other,
            })?;
        Ok(s)
    }

    async fn exchange(&mut self, auth: u8, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let rq_seq = self.rq_seq;
        let msg = Message::request(netfn, cmd, rq_seq, data).encode();
        let mut buf = [0u8; 512];
        for _ in 0..self.attempts {
            let pkt = frame(auth, &self.password, self.session_id, self.seq, &msg)?;
            if self.seq != 0 {
                self.seq = self.seq.wrapping_add(1).max(1);
            }
            self.sock
                .send(&pkt)
                .await
                .map_err(|e| Error::Connection(format!("send: {e}")))?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => return Err(Error::Connection(format!("receive: {e}"))),
                    Ok(Ok(n)) => n,
                };
                let Some((_, _, m)) = parse(&buf[..n]) else {
                    continue;
                };
                if m.rq_seq != rq_seq || m.cmd != cmd || m.netfn != netfn | 1 {
                    continue;
                }
                return match m.body.split_first() {
                    Some((0, rest)) => Ok(rest.to_vec()),
                    Some((cc, _)) => Err(completion_error(netfn, cmd, *cc)),
                    None => Err(Error::Bmc("response without completion code".into())),
                };
            }
        }
        Err(Error::Connection(format!(
            "no reply to netfn 0x{netfn:02x} cmd 0x{cmd:02x}"
        )))
    }

    /// Sends one authenticated command in the session.
    pub async fn command(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        let auth = self.auth_type;
        self.exchange(auth, netfn, cmd, data).await
    }

    /// Closes the session (best effort).
    pub async fn close(mut self) {
        self.attempts = 1;
        let sid = self.session_id.to_le_bytes();
        let _ = self.command(NETFN_APP, 0x3C, &sid).await;
    }
}

/// Connects a UDP socket to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<UdpSocket> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| Error::Connection(format!("bind: {e}")))?;
    sock.connect(addr)
        .await
        .map_err(|e| Error::Connection(format!("{addr}: {e}")))?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn md5_auth_code_covers_password_session_message_and_seq() {
        let pw = *b"password\0\0\0\0\0\0\0\0";
        let a = auth_code(AUTH_MD5, &pw, 1, b"msg", 7);
        assert_ne!(a, auth_code(AUTH_MD5, &pw, 1, b"msg", 8));
        assert_ne!(a, auth_code(AUTH_MD5, &pw, 2, b"msg", 7));
        assert_eq!(auth_code(AUTH_STRAIGHT, &pw, 1, b"m", 1), pw);
        let p = frame(
            AUTH_MD5,
            &pw,
            9,
            3,
            &Message::request(6, 1, 1, &[]).encode(),
        )
        .unwrap();
        let (auth, sid, m) = parse(&p).unwrap();
        assert_eq!((auth, sid, m.cmd), (AUTH_MD5, 9, 1));
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes);
        }
    }
}
