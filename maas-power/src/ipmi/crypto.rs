//! RMCP+ cipher suites 3 and 17: RAKP authentication codes, session key
//! derivation (SIK, K1, K2), integrity codes and AES-CBC-128 payloads.
//!
//! Suite 3 = RAKP-HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128; suite 17 =
//! RAKP-HMAC-SHA256 / HMAC-SHA256-128 / AES-CBC-128 (IPMI 2.0 §13.28,
//! errata for SHA-256). Both sides of a session (our client and the
//! in-process simulator) use this module.

use aes::Aes128;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::error::{Error, Result};

/// The two cipher suites we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128 (MAAS's default).
    Suite3,
    /// HMAC-SHA256 / HMAC-SHA256-128 / AES-CBC-128.
    Suite17,
}

/// Authentication algorithm numbers in the Open Session payloads.
pub const AUTH_HMAC_SHA1: u8 = 0x01;
/// RAKP-HMAC-SHA256.
pub const AUTH_HMAC_SHA256: u8 = 0x03;
/// HMAC-SHA1-96 integrity.
pub const INTEGRITY_HMAC_SHA1_96: u8 = 0x01;
/// HMAC-SHA256-128 integrity.
pub const INTEGRITY_HMAC_SHA256_128: u8 = 0x04;
/// AES-CBC-128 confidentiality.
pub const CONF_AES_CBC_128: u8 = 0x01;

impl CipherSuite {
    /// Reads MAAS's `cipher_suite_id` (`""` means 3, MAAS's default).
    pub fn from_param(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("3") {
            "3" => Ok(CipherSuite::Suite3),
            "17" => Ok(CipherSuite::Suite17),
            other => Err(Error::Unsupported(format!(
                "cipher_suite_id {other}: only 3 and 17 are implemented"
            ))),
        }
    }

    /// The suite number.
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// (authentication, integrity, confidentiality) algorithm numbers.
    pub fn algorithms(self) -> (u8, u8, u8) {
        match self {
            CipherSuite::Suite3 => (AUTH_HMAC_SHA1, INTEGRITY_HMAC_SHA1_96, CONF_AES_CBC_128),
            CipherSuite::Suite17 => (
                AUTH_HMAC_SHA256,
                INTEGRITY_HMAC_SHA256_128,
                CONF_AES_CBC_128,
            ),
        }
    }

    /// The suite with these algorithms, if we speak it.
    pub fn from_algorithms(auth: u8, integrity: u8, conf: u8) -> Option<Self> {
        [CipherSuite::Suite3, CipherSuite::Suite17]
            .into_iter()
            .find(|s| s.algorithms() == (auth, integrity, conf))
    }

    /// HMAC with the suite's hash over the concatenated parts.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // invariant: HMAC accepts keys of any length
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("invariant: HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            CipherSuite::Suite3 => run::<Hmac<Sha1>>(key, parts),
            CipherSuite::Suite17 => run::<Hmac<Sha256>>(key, parts),
        }
    }

    /// Length of the RAKP 4 integrity check value.
    pub fn rakp4_icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// Length of the AuthCode on session packets.
    pub fn auth_code_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }
}

/// The keys of an active session.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    k1: Vec<u8>,
    aes_key: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives K1 (integrity) and K2 (its first 16 bytes are the AES key)
    /// from the session integrity key.
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> Self {
        let k1 = suite.hmac(sik, &[&[0x01; 20]]);
        let k2 = suite.hmac(sik, &[&[0x02; 20]]);
        let mut aes_key = [0u8; 16];
        aes_key.copy_from_slice(&k2[..16]);
        Self { suite, k1, aes_key }
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The AuthCode for `data` (session header through next-header byte).
    pub fn auth_code(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.suite.hmac(&self.k1, &[data]);
        mac.truncate(self.suite.auth_code_len());
        mac
    }

    /// Encrypts a payload: IV, then AES-CBC of payload + pad 1,2,3… + pad length.
    pub fn encrypt(&self, payload: &[u8], iv: [u8; 16]) -> Vec<u8> {
        let pad = (16 - (payload.len() + 1) % 16) % 16;
        let mut plain = Vec::with_capacity(payload.len() + pad + 1);
        plain.extend_from_slice(payload);
        plain.extend((1..=pad).map(|i| i as u8));
        plain.push(pad as u8);
        let enc = cbc::Encryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        let mut out = iv.to_vec();
        out.extend_from_slice(&enc);
        out
    }

    /// Reverses [`SessionKeys::encrypt`].
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() < 32 || !data.len().is_multiple_of(16) {
            return Err(Error::Invalid(format!(
                "encrypted payload of {} bytes",
                data.len()
            )));
        }
        let (iv, body) = data.split_at(16);
        let iv: [u8; 16] = iv.try_into().map_err(|_| Error::Invalid("IV".into()))?;
        let mut plain = cbc::Decryptor::<Aes128>::new(&self.aes_key.into(), &iv.into())
            .decrypt_padded_vec_mut::<NoPadding>(body)
            .map_err(|_| Error::Invalid("AES-CBC block error".into()))?;
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if pad + 1 > plain.len() {
            return Err(Error::Invalid("bad confidentiality pad".into()));
        }
        plain.truncate(plain.len() - pad - 1);
        Ok(plain)
    }
}

/// Everything both sides know after RAKP 1 and 2, feeding every code.
#[derive(Clone)]
pub struct RakpData {
    /// The suite negotiated.
    pub suite: CipherSuite,
    /// Remote console session id (SIDm).
    pub console_sid: u32,
    /// Managed system (BMC) session id (SIDc).
    pub bmc_sid: u32,
    /// Remote console random number (Rm).
    pub console_rand: [u8; 16],
    /// BMC random number (Rc).
    pub bmc_rand: [u8; 16],
    /// BMC GUID.
    pub bmc_guid: [u8; 16],
    /// Requested role byte, exactly as sent in RAKP 1.
    pub role: u8,
    /// User name.
    pub user: Vec<u8>,
}

impl std::fmt::Debug for RakpData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RakpData")
            .field("suite", &self.suite)
            .field("console_sid", &self.console_sid)
            .field("bmc_sid", &self.bmc_sid)
            .finish_non_exhaustive()
    }
}

impl RakpData {
    /// RAKP 2 key exchange code: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENm, UNAMEm).
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.console_rand,
                &self.bmc_rand,
                &self.bmc_guid,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// RAKP 3 key exchange code: HMAC_Kuid(Rc, SIDm, ROLEm, ULENm, UNAMEm).
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.bmc_rand,
                &self.console_sid.to_le_bytes(),
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// Session integrity key: HMAC_Kg(Rm, Rc, ROLEm, ULENm, UNAMEm).
    pub fn sik(&self, kg: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kg,
            &[
                &self.console_rand,
                &self.bmc_rand,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// RAKP 4 integrity check value: HMAC_SIK(Rm, SIDc, GUIDc), truncated.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut v = self.suite.hmac(
            sik,
            &[
                &self.console_rand,
                &self.bmc_sid.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        v.truncate(self.suite.rakp4_icv_len());
        v
    }
}

/// Constant-time comparison of authentication codes.
pub fn codes_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hmac_sha1_known_answer() {
        // RFC 2202 test case 2
        let mac = CipherSuite::Suite3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac,
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
        assert_eq!(CipherSuite::Suite17.hmac(b"k", &[b"x"]).len(), 32);
    }

    #[test]
    fn suites_from_params_and_algorithms() {
        assert_eq!(CipherSuite::from_param(None).unwrap(), CipherSuite::Suite3);
        assert_eq!(
            CipherSuite::from_param(Some("17")).unwrap(),
            CipherSuite::Suite17
        );
        assert!(CipherSuite::from_param(Some("8")).unwrap_err().is_fatal());
        assert_eq!(
            CipherSuite::from_algorithms(3, 4, 1),
            Some(CipherSuite::Suite17)
        );
        assert_eq!(CipherSuite::from_algorithms(1, 1, 0), None);
    }

    proptest! {
        #[test]
        fn encrypt_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..200), iv in any::<[u8; 16]>(), sik in any::<[u8; 20]>()) {
            for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
                let k = SessionKeys::derive(suite, &sik);
                let enc = k.encrypt(&payload, iv);
                prop_assert_eq!(enc.len() % 16, 0);
                prop_assert_eq!(k.decrypt(&enc).unwrap(), payload.clone());
            }
        }

        #[test]
        fn decrypt_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let k = SessionKeys::derive(CipherSuite::Suite3, b"sik");
            let _ = k.decrypt(&data);
        }
    }
}
