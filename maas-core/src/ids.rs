//! Identifiers: MAAS system ids and MAC addresses.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The alphabet MAAS renders system ids in: 24 characters, no vowels that
/// could spell words and no look-alike digits (`0`, `1`, `2`, `5`, `9`).
pub const SYSTEM_ID_ALPHABET: &[u8; 24] = b"34678abcdefghkmnpqrstwxy";

/// Smallest number a new system id encodes: 24^5, so that every generated id
/// has exactly six characters.
pub const SYSTEM_ID_MIN: u64 = 24u64.pow(5);
/// One past the largest number a new system id encodes: 24^6.
pub const SYSTEM_ID_MAX: u64 = 24u64.pow(6);

/// A node's system id, such as `4y3h7n`.
///
/// New ids are six characters of [`SYSTEM_ID_ALPHABET`], the base-24 rendering
/// of a random number in `[24^5, 24^6)`, exactly as MAAS generates them.
/// Parsing is more lenient (older MAAS releases used other shapes): any
/// non-empty string of at most 41 lowercase letters, digits and `-`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SystemId(String);

impl SystemId {
    /// Generates a new random system id.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let n = rng.random_range(SYSTEM_ID_MIN..SYSTEM_ID_MAX);
        Self::from_number(n).expect("invariant: n is in range")
    }

    /// Renders `n` in base 24 with MAAS's alphabet. Returns `None` unless
    /// `n` is in `[24^5, 24^6)`, the range MAAS draws from.
    pub fn from_number(n: u64) -> Option<Self> {
        if !(SYSTEM_ID_MIN..SYSTEM_ID_MAX).contains(&n) {
            return None;
        }
        let mut digits = [0u8; 6];
        let mut rest = n;
        for d in digits.iter_mut().rev() {
            *d = SYSTEM_ID_ALPHABET[(rest % 24) as usize];
            rest /= 24;
        }
        Some(Self(
            String::from_utf8(digits.to_vec()).expect("invariant: ascii"),
        ))
    }

    /// The number a six-character id encodes, if it is one MAAS could have generated.
    pub fn to_number(&self) -> Option<u64> {
        if self.0.len() != 6 {
            return None;
        }
        let mut n = 0u64;
        for b in self.0.bytes() {
            let d = SYSTEM_ID_ALPHABET.iter().position(|&a| a == b)?;
            n = n * 24 + d as u64;
        }
        (SYSTEM_ID_MIN..SYSTEM_ID_MAX).contains(&n).then_some(n)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SystemId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 41
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidSystemId(s.to_owned()))
        }
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemId({})", self.0)
    }
}

impl Serialize for SystemId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SystemId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ethernet MAC address.
///
/// Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` and
/// `aabbccddeeff` in either case; displays lowercase with colons, as MAAS does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// `aa-bb-cc-dd-ee-ff`, the form pxelinux and GRUB config names use.
    pub fn dashed(&self) -> String {
        self.join('-')
    }

    /// `aa:bb:cc:dd:ee:ff`.
    pub fn colon(&self) -> String {
        self.join(':')
    }

    fn join(&self, sep: char) -> String {
        let mut out = String::with_capacity(17);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl From<[u8; 6]> for MacAddress {
    fn from(o: [u8; 6]) -> Self {
        Self(o)
    }
}

impl FromStr for MacAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidMacAddress(s.to_owned());
        let t = s.trim();
        let hex: String = match t.len() {
            17 => {
                let sep = t.as_bytes()[2];
                if sep != b':' && sep != b'-' {
                    return Err(bad());
                }
                let parts: Vec<&str> = t.split(sep as char).collect();
                if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                    return Err(bad());
                }
                parts.concat()
            }
            14 => {
                let parts: Vec<&str> = t.split('.').collect();
                if parts.len() != 3 || parts.iter().any(|p| p.len() != 4) {
                    return Err(bad());
                }
                parts.concat()
            }
            12 => t.to_owned(),
            _ => return Err(bad()),
        };
        // from_str_radix would accept a leading '+'; only hex digits are allowed.
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut octets = [0u8; 6];
        for (i, o) in octets.iter_mut().enumerate() {
            *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Self(octets))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.colon())
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.colon())
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn system_id_bounds_are_six_chars() {
        assert_eq!(
            SystemId::from_number(SYSTEM_ID_MIN).unwrap().as_str(),
            "433333"
        );
        assert_eq!(
            SystemId::from_number(SYSTEM_ID_MAX - 1).unwrap().as_str(),
            "yyyyyy"
        );
        assert!(SystemId::from_number(SYSTEM_ID_MIN - 1).is_none());
        assert!(SystemId::from_number(SYSTEM_ID_MAX).is_none());
    }

    #[test]
    fn system_id_parse_rejects_bad_input() {
        assert!("".parse::<SystemId>().is_err());
        assert!("ABC".parse::<SystemId>().is_err());
        assert!("a/b".parse::<SystemId>().is_err());
        assert!("x".repeat(42).parse::<SystemId>().is_err());
        assert_eq!("4y3h7n".parse::<SystemId>().unwrap().as_str(), "4y3h7n");
    }

    #[test]
    fn mac_forms() {
        let want = MacAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        for s in [
            "52:54:00:ab:cd:ef",
            "52-54-00-AB-CD-EF",
            "5254.00ab.cdef",
            "525400abcdef",
        ] {
            assert_eq!(s.parse::<MacAddress>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(want.dashed(), "52-54-00-ab-cd-ef");
        for s in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:eg",
            "52:54-00:ab:cd:ef",
            "+2:54:00:ab:cd:ef",
        ] {
            assert!(s.parse::<MacAddress>().is_err(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn system_id_round_trips(n in SYSTEM_ID_MIN..SYSTEM_ID_MAX) {
            let id = SystemId::from_number(n).unwrap();
            prop_assert_eq!(id.as_str().len(), 6);
            prop_assert!(id.as_str().bytes().all(|b| SYSTEM_ID_ALPHABET.contains(&b)));
            prop_assert_eq!(id.to_number(), Some(n));
            prop_assert_eq!(id.as_str().parse::<SystemId>().unwrap(), id);
        }

        #[test]
        fn mac_round_trips(o in any::<[u8; 6]>()) {
            let m = MacAddress(o);
            prop_assert_eq!(m.to_string().parse::<MacAddress>().unwrap(), m);
            prop_assert_eq!(m.dashed().parse::<MacAddress>().unwrap(), m);
        }

        #[test]
        fn mac_parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<MacAddress>();
        }
    }
}
