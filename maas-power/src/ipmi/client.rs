//! An IPMI 2.0 RMCP+ (lanplus) client session over UDP: Get Channel
//! Authentication Capabilities, Open Session, RAKP 1–4, Set Session
//! Privilege Level, authenticated and encrypted commands with sequence
//! numbers, and Close Session.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;

use crate::error::{Error, Result};
use crate::ipmi::crypto::{CipherSuite, RakpData, SessionKeys, codes_match};
use crate::ipmi::packet::{self, Message, payload};
use crate::params::Secret;

/// Network function: chassis.
pub const NETFN_CHASSIS: u8 = 0x00;
/// Network function: application.
pub const NETFN_APP: u8 = 0x06;

/// Session privilege levels (MAAS's `privilege_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// USER (2).
    User = 2,
    /// OPERATOR (3), MAAS's default: enough for chassis control.
    Operator = 3,
    /// ADMINISTRATOR (4).
    Admin = 4,
}

impl Privilege {
    /// Reads MAAS's `privilege_level` (`USER`, `OPERATOR`, `ADMIN`).
    pub fn from_param(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("OPERATOR") {
            "USER" => Ok(Privilege::User),
            "OPERATOR" => Ok(Privilege::Operator),
            "ADMIN" => Ok(Privilege::Admin),
            other => Err(Error::Settings(format!(
                "privilege_level {other:?} is not USER, OPERATOR or ADMIN"
            ))),
        }
    }
}

/// How to reach and log in to one BMC.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// BMC address (port 623 unless told otherwise).
    pub addr: SocketAddr,
    /// User name (may be empty: anonymous).
    pub user: String,
    /// Password (Kuid).
    pub password: Secret,
    /// BMC key K_g; the password is used when absent.
    pub kg: Option<Secret>,
    /// Cipher suite.
    pub suite: CipherSuite,
    /// Privilege to request.
    pub privilege: Privilege,
    /// Wait for one reply before sending again.
    pub timeout: Duration,
    /// Sends per request before giving up.
    pub attempts: u32,
    /// Speak IPMI 1.5 (`power_driver` = `LAN`) instead of RMCP+.
    pub lan15: bool,
}

/// An active RMCP+ session. Close it with [`Session::close`]; dropping it
/// leaves the BMC to time the session out.
#[derive(Debug)]
pub struct Session {
    sock: UdpSocket,
    keys: SessionKeys,
    bmc_sid: u32,
    console_sid: u32,
    seq: u32,
    rq_seq: u8,
    timeout: Duration,
    attempts: u32,
}

/// RAKP status codes that mean "wrong credentials / not allowed".
fn rakp_status(code: u8, step: &str) -> Error {
    let what = match code {
        0x01 => "insufficient resources for session",
        0x02 => "invalid session id",
        0x04 | 0x05 | 0x06 | 0x11 => "cipher suite not supported by the BMC",
        0x09 => "requested role not allowed",
        0x0D => "unauthorized user name",
        0x0F => "invalid integrity check value",
        0x12 => "unauthorized name",
        _ => "rejected",
    };
    let msg = format!("{step}: status 0x{code:02x} ({what})");
    match code {
        0x04 | 0x05 | 0x06 | 0x11 => Error::Unsupported(msg),
        0x01 | 0x02 => Error::Bmc(msg),
        _ => Error::Auth(msg),
    }
}

/// Decodes `k_g`: `0x…` hex, else the literal characters (FreeIPMI's rules).
pub fn parse_kg(value: &str) -> Result<Vec<u8>> {
    let bytes = if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Settings("k_g: not hexadecimal".into()));
        }
        if !hex.len().is_multiple_of(2) {
            return Err(Error::Settings("k_g: odd number of hex digits".into()));
        }
        // ASCII only from here on, so byte offsets are char boundaries.
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| Error::Settings("k_g: not hexadecimal".into()))?
    } else {
        value.as_bytes().to_vec()
    };
    if bytes.len() > 20 {
        return Err(Error::Settings("k_g: longer than 20 bytes".into()));
    }
    Ok(bytes)
}

impl Session {
    /// Opens a session: channel capabilities, Open Session, RAKP 1–4, then
    /// raises the privilege to the one configured.
    pub async fn open(cfg: &SessionConfig) -> Result<Self> {
        if cfg.user.len() > 16 {
            return Err(Error::Settings("power_user: longer than 16 bytes".into()));
        }
        if cfg.password.expose().len() > 20 {
            return Err(Error::Settings("power_pass: longer than 20 bytes".into()));
        }
        let bind: SocketAddr = if cfg.addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| Error::Connection(format!("bind: {e}")))?;
        sock.connect(cfg.addr)
            .await
            .map_err(|e| Error::Connection(format!("{}: {e}", cfg.addr)))?;
        // Draw every random number before the first await: ThreadRng is not Send.
        let (console_sid, tag, console_rand) = {
            let mut rng = rand::rng();
            let sid: u32 = rng.random_range(1..=u32::MAX);
            (sid, rng.random::<u8>(), rng.random::<[u8; 16]>())
        };
        let mut raw = Raw {
            sock: &sock,
            timeout: cfg.timeout,
            attempts: cfg.attempts.max(1),
        };

        // 1. Get Channel Authentication Capabilities (IPMI 1.5 framing).
        let req = Message::request(NETFN_APP, 0x38, 0, &[0x8E, cfg.privilege as u8]).encode();
        let caps = raw
            .exchange(&packet::encode_v15(&req)?, |p| {
                let m = Message::decode(&p.payload).ok()?;
                (m.cmd == 0x38 && m.netfn == NETFN_APP | 1).then_some(m)
            })
            .await?;
        match caps.body.first() {
            Some(0) => {}
            Some(cc) => {
                return Err(Error::Bmc(format!(
                    "Get Channel Authentication Capabilities: completion code 0x{cc:02x}"
                )));
            }
            None => return Err(Error::Bmc("empty capabilities reply".into())),
        }
        if caps.body.len() >= 5 && caps.body[4] & 0x02 == 0 {
            return Err(Error::Unsupported(
                "the BMC does not speak IPMI 2.0 (lanplus)".into(),
            ));
        }

        // 2. Open Session.
        let (auth, integ, conf) = cfg.suite.algorithms();
        let mut open = vec![tag, cfg.privilege as u8, 0, 0];
        open.extend_from_slice(&console_sid.to_le_bytes());
        open.extend_from_slice(&[0x00, 0, 0, 8, auth, 0, 0, 0]);
        open.extend_from_slice(&[0x01, 0, 0, 8, integ, 0, 0, 0]);
        open.extend_from_slice(&[0x02, 0, 0, 8, conf, 0, 0, 0]);
        let resp = raw
            .exchange(
                &packet::encode_v2(payload::OPEN_SESSION_REQUEST, 0, 0, &open, None, [0; 16])?,
                |p| {
                    (p.payload_type == payload::OPEN_SESSION_RESPONSE
                        && p.payload.first() == Some(&tag))
                    .then(|| p.payload.clone())
                },
            )
            .await?;
        if resp.len() < 2 {
            return Err(Error::Bmc("short Open Session response".into()));
        }
        if resp[1] != 0 {
            return Err(rakp_status(resp[1], "Open Session"));
        }
        if resp.len() < 36 {
            return Err(Error::Bmc("short Open Session response".into()));
        }
        if u32::from_le_bytes([resp[4], resp[5], resp[6], resp[7]]) != console_sid {
            return Err(Error::Bmc(
                "Open Session response for another session".into(),
            ));
        }
        let bmc_sid = u32::from_le_bytes([resp[8], resp[9], resp[10], resp[11]]);
        if CipherSuite::from_algorithms(resp[16], resp[24], resp[32]) != Some(cfg.suite) {
            return Err(Error::Unsupported(format!(
                "the BMC answered cipher suite {} with other algorithms",
                cfg.suite.id()
            )));
        }

        // 3. RAKP 1 → 2.
        // Name-only lookup (0x10), as ipmitool does.
        let role = 0x10 | cfg.privilege as u8;
        let user = cfg.user.as_bytes().to_vec();
        let mut r1 = vec![tag, 0, 0, 0];
        r1.extend_from_slice(&bmc_sid.to_le_bytes());
        r1.extend_from_slice(&console_rand);
        r1.extend_from_slice(&[role, 0, 0, user.len() as u8]);
        r1.extend_from_slice(&user);
        let r2 = raw
            .exchange(
                &packet::encode_v2(payload::RAKP1, 0, 0, &r1, None, [0; 16])?,
                |p| {
                    (p.payload_type == payload::RAKP2 && p.payload.first() == Some(&tag))
                        .then(|| p.payload.clone())
                },
            )
            .await?;
        if r2.len() < 2 {
            return Err(Error::Bmc("short RAKP 2".into()));
        }
        if r2[1] != 0 {
            return Err(rakp_status(r2[1], "RAKP 2"));
        }
        if r2.len() < 40 {
            return Err(Error::Bmc("short RAKP 2".into()));
        }
        let mut rakp = RakpData {
            suite: cfg.suite,
            console_sid,
            bmc_sid,
            console_rand,
            bmc_rand: [0; 16],
            bmc_guid: [0; 16],
            role,
            user,
        };
        rakp.bmc_rand.copy_from_slice(&r2[8..24]);
        rakp.bmc_guid.copy_from_slice(&r2[24..40]);
        let kuid = cfg.password.expose().as_bytes();
        if !codes_match(&rakp.rakp2_code(kuid), &r2[40..]) {
            return Err(Error::Auth(
                "RAKP 2 check failed: wrong user name or password".into(),
            ));
        }

        // 4. RAKP 3 → 4.
        let mut r3 = vec![tag, 0, 0, 0];
        r3.extend_from_slice(&bmc_sid.to_le_bytes());
        r3.extend_from_slice(&rakp.rakp3_code(kuid));
        let kg = match &cfg.kg {
            Some(k) if !k.is_empty() => parse_kg(k.expose())?,
            _ => kuid.to_vec(),
        };
        let sik = rakp.sik(&kg);
        let r4 = raw
            .exchange(
                &packet::encode_v2(payload::RAKP3, 0, 0, &r3, None, [0; 16])?,
                |p| {
                    (p.payload_type == payload::RAKP4 && p.payload.first() == Some(&tag))
                        .then(|| p.payload.clone())
                },
            )
            .await?;
        if r4.len() < 2 {
            return Err(Error::Bmc("short RAKP 4".into()));
        }
        if r4[1] != 0 {
            return Err(rakp_status(r4[1], "RAKP 4"));
        }
        if r4.len() < 8 || !codes_match(&rakp.rakp4_icv(&sik), &r4[8..]) {
            return Err(Error::Auth("RAKP 4 check failed: wrong k_g".into()));
        }

        let mut session = Session {
            sock,
            keys: SessionKeys::derive(cfg.suite, &sik),
            bmc_sid,
            console_sid,
            seq: 0,
            rq_seq: 0,
            timeout: cfg.timeout,
            attempts: cfg.attempts.max(1),
        };
        // 5. Sessions start at USER; raise to what we asked for.
        if cfg.privilege > Privilege::User {
            session
                .command(NETFN_APP, 0x3B, &[cfg.privilege as u8])
                .await
                .map_err(|e| match e {
                    Error::Bmc(m) => Error::Auth(format!("Set Session Privilege Level: {m}")),
                    other => other,
                })?;
        }
        Ok(session)
    }

    /// Sends one command in the session; returns the response data after a
    /// zero completion code.
    pub async fn command(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let rq_seq = self.rq_seq;
        let msg = Message::request(netfn, cmd, rq_seq, data).encode();
        for _ in 0..self.attempts {
            // A fresh session sequence number for every packet sent.
            self.seq = self.seq.wrapping_add(1).max(1);
            let iv: [u8; 16] = rand::rng().random();
            let pkt = packet::encode_v2(
                payload::IPMI,
                self.bmc_sid,
                self.seq,
                &msg,
                Some(&self.keys),
                iv,
            )?;
            self.sock
                .send(&pkt)
                .await
                .map_err(|e| Error::Connection(format!("send: {e}")))?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            let mut buf = [0u8; 1024];
            loop {
                let n = match tokio::time::timeout_at(deadline, self.sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => return Err(Error::Connection(format!("receive: {e}"))),
                    Ok(Ok(n)) => n,
                };
                let Ok(p) = packet::decode(&buf[..n], Some(&self.keys)) else {
                    continue;
                };
                if p.payload_type != payload::IPMI || p.session_id != self.console_sid {
                    continue;
                }
                let Ok(m) = Message::decode(&p.payload) else {
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

    /// Closes the session (errors are ignored: the BMC times it out anyway).
    pub async fn close(mut self) {
        let sid = self.bmc_sid.to_le_bytes();
        let attempts = self.attempts;
        self.attempts = 1;
        let _ = self.command(NETFN_APP, 0x3C, &sid).await;
        self.attempts = attempts;
    }
}

pub(crate) fn completion_error(netfn: u8, cmd: u8, cc: u8) -> Error {
    let msg = format!("netfn 0x{netfn:02x} cmd 0x{cmd:02x}: completion code 0x{cc:02x}");
    match cc {
        0xD4 | 0xD5 => Error::Auth(format!("{msg} (insufficient privilege)")),
        0xC1 => Error::Unsupported(format!("{msg} (command not supported)")),
        0x80 | 0xC9 | 0xCC if netfn == NETFN_CHASSIS && cmd == 0x08 => {
            Error::Unsupported(format!("{msg} (boot option not supported)"))
        }
        _ => Error::Bmc(msg),
    }
}

/// Pre-session request/response with retransmission.
struct Raw<'a> {
    sock: &'a UdpSocket,
    timeout: Duration,
    attempts: u32,
}

impl Raw<'_> {
    async fn exchange<T>(
        &mut self,
        pkt: &[u8],
        mut accept: impl FnMut(&packet::Packet) -> Option<T>,
    ) -> Result<T> {
        let mut buf = [0u8; 1024];
        for _ in 0..self.attempts {
            self.sock
                .send(pkt)
                .await
                .map_err(|e| Error::Connection(format!("send: {e}")))?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.sock.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP port unreachable surfaces here: nobody listens.
                    Ok(Err(e)) => return Err(Error::Connection(format!("receive: {e}"))),
                    Ok(Ok(n)) => n,
                };
                if let Ok(p) = packet::decode(&buf[..n], None)
                    && let Some(v) = accept(&p)
                {
                    return Ok(v);
                }
            }
        }
        Err(Error::Connection("the BMC did not answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kg_and_privilege_params() {
        assert_eq!(parse_kg("0x0102ff").unwrap(), vec![1, 2, 255]);
        assert_eq!(parse_kg("abc").unwrap(), b"abc".to_vec());
        assert!(parse_kg("0x123").is_err());
        assert!(parse_kg(&"x".repeat(21)).is_err());
        assert_eq!(Privilege::from_param(None).unwrap(), Privilege::Operator);
        assert!(Privilege::from_param(Some("ROOT")).unwrap_err().is_fatal());
    }

    proptest::proptest! {
        #[test]
        fn kg_parser_never_panics(s in ".*") {
            let _ = parse_kg(&s);
            let _ = parse_kg(&format!("0x{s}"));
        }
    }

    #[test]
    fn completion_codes_are_classified() {
        assert!(completion_error(0, 2, 0xD4).is_fatal());
        assert!(completion_error(0, 8, 0xCC).is_fatal());
        assert!(!completion_error(0, 2, 0xC3).is_fatal());
    }
}
