//! An in-process IPMI 2.0 BMC: enough of RMCP+ (suites 3 and 17) and the
//! chassis commands to stand in for thousands of BMCs in benchmarks and to
//! let `ipmitool` check our cipher-suite-17 crypto (neither `ipmi_sim` nor
//! pyghmi's BMC implements suite 17).
//!
//! [`SimBmc::handle`] is a pure handler (datagram in, datagram out);
//! [`serve`] is the thin loop around an already-bound socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::ipmi::client::{NETFN_APP, NETFN_CHASSIS};
use crate::ipmi::crypto::{CipherSuite, RakpData, SessionKeys, codes_match};
use crate::ipmi::packet::{self, Message, payload};

/// Users, key and identity of a simulated BMC.
#[derive(Clone)]
pub struct SimConfig {
    /// user → password.
    pub users: HashMap<String, String>,
    /// BMC key; `None` means the password is used (no two-key login).
    pub kg: Option<Vec<u8>>,
    /// The BMC's GUID.
    pub guid: [u8; 16],
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// One user with a password.
    pub fn single_user(user: &str, password: &str) -> Self {
        Self {
            users: HashMap::from([(user.to_owned(), password.to_owned())]),
            kg: None,
            guid: *b"maas-rs-sim-bmc!",
        }
    }
}

#[derive(Debug)]
struct Pending {
    suite: CipherSuite,
    console_sid: u32,
    rakp: Option<(RakpData, String)>,
}

#[derive(Debug)]
struct Active {
    keys: SessionKeys,
    console_sid: u32,
    max_privilege: u8,
    privilege: u8,
    seq: u32,
}

#[derive(Debug, Default)]
struct State {
    power_on: bool,
    boot_flags: [u8; 5],
    controls: Vec<u8>,
    pending: HashMap<u32, Pending>,
    active: HashMap<u32, Active>,
}

/// A simulated BMC. Share it behind an `Arc` between [`serve`] and the test.
#[derive(Debug)]
pub struct SimBmc {
    config: SimConfig,
    state: Mutex<State>,
}

impl SimBmc {
    /// A BMC that is powered off.
    pub fn new(config: SimConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-written in a way that
        // matters to a simulator; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the simulated machine is on.
    pub fn is_on(&self) -> bool {
        self.lock().power_on
    }

    /// Sets the power state directly.
    pub fn set_on(&self, on: bool) {
        self.lock().power_on = on;
    }

    /// Boot flags (parameter 5, data bytes 1–5) last set.
    pub fn boot_flags(&self) -> [u8; 5] {
        self.lock().boot_flags
    }

    /// Every Chassis Control value received, in order.
    pub fn chassis_controls(&self) -> Vec<u8> {
        self.lock().controls.clone()
    }

    /// Sessions currently open.
    pub fn open_sessions(&self) -> usize {
        self.lock().active.len()
    }

    /// Handles one datagram; returns the reply, if any.
    pub fn handle(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let protected = datagram.len() > 9
            && datagram[4] == packet::AUTH_TYPE_RMCP_PLUS
            && datagram[5] & 0xC0 != 0;
        if protected {
            let sid = u32::from_le_bytes([datagram[6], datagram[7], datagram[8], datagram[9]]);
            return self.in_session(sid, datagram);
        }
        let p = packet::decode(datagram, None).ok()?;
        match p.payload_type {
            payload::IPMI => self.presession_command(&p),
            payload::OPEN_SESSION_REQUEST => self.open_session(&p.payload),
            payload::RAKP1 => self.rakp1(&p.payload),
            payload::RAKP3 => self.rakp3(&p.payload),
            _ => None,
        }
    }

    fn presession_command(&self, p: &packet::Packet) -> Option<Vec<u8>> {
        let m = Message::decode(&p.payload).ok()?;
        let reply = if m.netfn == NETFN_APP && m.cmd == 0x38 {
            // channel 1; IPMI 2.0 extended data, auth type none; non-null
            // user names; IPMI 1.5 and 2.0 supported; no OEM.
            m.response(0, &[0x01, 0x81, 0x04, 0x03, 0, 0, 0, 0])
        } else {
            m.response(0xD4, &[])
        };
        let bytes = reply.encode();
        if p.v15 {
            packet::encode_v15(&bytes).ok()
        } else {
            packet::encode_v2(payload::IPMI, 0, 0, &bytes, None, [0; 16]).ok()
        }
    }

    fn open_session(&self, req: &[u8]) -> Option<Vec<u8>> {
        if req.len() < 32 {
            return None;
        }
        let tag = req[0];
        let console_sid = &req[4..8];
        let suite = CipherSuite::from_algorithms(req[12], req[20], req[28]);
        let Some(suite) = suite else {
            let mut r = vec![tag, 0x11, 0, 0];
            r.extend_from_slice(console_sid);
            return packet::encode_v2(payload::OPEN_SESSION_RESPONSE, 0, 0, &r, None, [0; 16]).ok();
        };
        let bmc_sid: u32 = rand::rng().random_range(1..=u32::MAX);
        let max_priv = if req[1] & 0x0F == 0 { 4 } else { req[1] & 0x0F };
        self.lock().pending.insert(
            bmc_sid,
            Pending {
                suite,
                console_sid: u32::from_le_bytes([req[4], req[5], req[6], req[7]]),
                rakp: None,
            },
        );
        let (a, i, c) = suite.algorithms();
        let mut r = vec![tag, 0, max_priv, 0];
        r.extend_from_slice(console_sid);
        r.extend_from_slice(&bmc_sid.to_le_bytes());
        r.extend_from_slice(&[0x00, 0, 0, 8, a, 0, 0, 0]);
        r.extend_from_slice(&[0x01, 0, 0, 8, i, 0, 0, 0]);
        r.extend_from_slice(&[0x02, 0, 0, 8, c, 0, 0, 0]);
        packet::encode_v2(payload::OPEN_SESSION_RESPONSE, 0, 0, &r, None, [0; 16]).ok()
    }

    fn rakp1(&self, req: &[u8]) -> Option<Vec<u8>> {
        if req.len() < 28 {
            return None;
        }
        let tag = req[0];
        let bmc_sid = u32::from_le_bytes([req[4], req[5], req[6], req[7]]);
        let ulen = usize::from(req[27]);
        let user = req.get(28..28 + ulen)?.to_vec();
        let mut st = self.lock();
        let pending = st.pending.get_mut(&bmc_sid)?;
        let mut reply = vec![tag, 0, 0, 0];
        reply.extend_from_slice(&pending.console_sid.to_le_bytes());
        let password = String::from_utf8(user.clone())
            .ok()
            .and_then(|u| self.config.users.get(&u).cloned());
        let Some(password) = password else {
            reply[1] = 0x0D; // unauthorized name
            return packet::encode_v2(payload::RAKP2, 0, 0, &reply, None, [0; 16]).ok();
        };
        let mut rakp = RakpData {
            suite: pending.suite,
            console_sid: pending.console_sid,
            bmc_sid,
            console_rand: [0; 16],
            bmc_rand: rand::rng().random(),
            bmc_guid: self.config.guid,
            role: req[24],
            user,
        };
        rakp.console_rand.copy_from_slice(&req[8..24]);
        reply.extend_from_slice(&rakp.bmc_rand);
        reply.extend_from_slice(&rakp.bmc_guid);
        reply.extend_from_slice(&rakp.rakp2_code(password.as_bytes()));
        pending.rakp = Some((rakp, password));
        packet::encode_v2(payload::RAKP2, 0, 0, &reply, None, [0; 16]).ok()
    }

    fn rakp3(&self, req: &[u8]) -> Option<Vec<u8>> {
        if req.len() < 8 {
            return None;
        }
        let tag = req[0];
        let bmc_sid = u32::from_le_bytes([req[4], req[5], req[6], req[7]]);
        let mut st = self.lock();
        let pending = st.pending.remove(&bmc_sid)?;
        let (rakp, password) = pending.rakp?;
        let mut reply = vec![tag, 0, 0, 0];
        reply.extend_from_slice(&rakp.console_sid.to_le_bytes());
        if req[1] != 0 || !codes_match(&rakp.rakp3_code(password.as_bytes()), &req[8..]) {
            reply[1] = 0x0F; // invalid integrity check value
            return packet::encode_v2(payload::RAKP4, 0, 0, &reply, None, [0; 16]).ok();
        }
        let kg = self
            .config
            .kg
            .clone()
            .unwrap_or_else(|| password.as_bytes().to_vec());
        let sik = rakp.sik(&kg);
        reply.extend_from_slice(&rakp.rakp4_icv(&sik));
        st.active.insert(
            bmc_sid,
            Active {
                keys: SessionKeys::derive(rakp.suite, &sik),
                console_sid: rakp.console_sid,
                max_privilege: rakp.role & 0x0F,
                privilege: 2,
                seq: 0,
            },
        );
        packet::encode_v2(payload::RAKP4, 0, 0, &reply, None, [0; 16]).ok()
    }

    fn in_session(&self, bmc_sid: u32, datagram: &[u8]) -> Option<Vec<u8>> {
        let mut st = self.lock();
        let st = &mut *st;
        let session = st.active.get_mut(&bmc_sid)?;
        let p = packet::decode(datagram, Some(&session.keys)).ok()?;
        if p.payload_type != payload::IPMI {
            return None;
        }
        let m = Message::decode(&p.payload).ok()?;
        let operator = session.privilege >= 3;
        let mut close = false;
        let reply = match (m.netfn, m.cmd) {
            (NETFN_APP, 0x3B) => match m.body.first().map(|b| b & 0x0F) {
                Some(0) => m.response(0, &[session.privilege]),
                Some(p) if p <= session.max_privilege && p <= 4 => {
                    session.privilege = p;
                    m.response(0, &[p])
                }
                _ => m.response(0x81, &[]),
            },
            (NETFN_APP, 0x3C) => {
                close = true;
                m.response(0, &[])
            }
            (NETFN_APP, 0x01) => m.response(
                0,
                &[
                    0x20, 0x81, 0x01, 0x00, 0x02, 0x80, 0x57, 0x01, 0x00, 0x01, 0x00,
                ],
            ),
            (NETFN_CHASSIS, 0x01) => m.response(0, &[u8::from(st.power_on), 0, 0x40, 0]),
            (NETFN_CHASSIS, 0x02) if !operator => m.response(0xD4, &[]),
            (NETFN_CHASSIS, 0x02) => match m.body.first() {
                Some(&op @ (0 | 5)) => {
                    st.controls.push(op);
                    st.power_on = false;
                    m.response(0, &[])
                }
                Some(&op @ (1..=3)) => {
                    st.controls.push(op);
                    st.power_on = true;
                    m.response(0, &[])
                }
                _ => m.response(0xCC, &[]),
            },
            (NETFN_CHASSIS, 0x08) if !operator => m.response(0xD4, &[]),
            (NETFN_CHASSIS, 0x08) => match m.body.first().map(|b| b & 0x7F) {
                Some(5) if m.body.len() >= 6 => {
                    st.boot_flags.copy_from_slice(&m.body[1..6]);
                    m.response(0, &[])
                }
                Some(0 | 3 | 4) => m.response(0, &[]),
                _ => m.response(0x80, &[]),
            },
            (NETFN_CHASSIS, 0x09) => match m.body.first().map(|b| b & 0x7F) {
                Some(5) => {
                    let mut d = vec![0x01, 0x05];
                    d.extend_from_slice(&st.boot_flags);
                    m.response(0, &d)
                }
                _ => m.response(0x80, &[]),
            },
            _ => m.response(0xC1, &[]),
        };
        session.seq = session.seq.wrapping_add(1).max(1);
        let iv: [u8; 16] = rand::rng().random();
        let out = packet::encode_v2(
            payload::IPMI,
            session.console_sid,
            session.seq,
            &reply.encode(),
            Some(&session.keys),
            iv,
        )
        .ok();
        if close {
            st.active.remove(&bmc_sid);
        }
        out
    }
}

/// Serves `bmc` on `socket` until `cancel` fires.
pub async fn serve(socket: UdpSocket, bmc: Arc<SimBmc>, cancel: CancellationToken) {
    let mut buf = [0u8; 1024];
    loop {
        let (n, peer) = tokio::select! {
            () = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // ICMP errors from earlier replies; keep serving.
                Err(_) => continue,
            },
        };
        if let Some(reply) = bmc.handle(&buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn handler_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let bmc = SimBmc::new(SimConfig::single_user("admin", "password"));
            let mut framed = packet::RMCP_HEADER.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = bmc.handle(&bytes);
            let _ = bmc.handle(&framed);
        }
    }
}
