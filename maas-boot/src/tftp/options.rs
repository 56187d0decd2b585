//! Option negotiation for read requests: blksize (RFC 2348), timeout and tsize
//! (RFC 2349) and windowsize (RFC 7440). Pure: a request's options and the
//! server's limits in, the accepted values and the OACK list out.

use std::time::Duration;

/// The server's limits and defaults for negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest block size granted. 1468 fills a 1500-byte Ethernet frame
    /// (1500 - 20 IPv4 - 8 UDP - 4 TFTP), so larger requests would only fragment.
    pub max_blksize: u16,
    /// Largest window granted.
    pub max_windowsize: u16,
    /// Retransmission timeout when the client proposes none.
    pub default_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_blksize: 1468,
            max_windowsize: 64,
            default_timeout: Duration::from_secs(1),
        }
    }
}

/// What a transfer runs with after negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per DATA packet.
    pub blksize: u16,
    /// DATA packets sent before waiting for an ACK.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Options to acknowledge in an OACK; empty means "send no OACK, start with DATA 1".
    pub oack: Vec<(String, String)>,
}

/// Negotiates the options of a read request for a file of `size` bytes.
///
/// Unknown options and malformed values are ignored (RFC 2347: the server
/// simply leaves them out of the OACK), so a client always gets a transfer.
pub fn negotiate(options: &[(String, String)], size: u64, limits: &Limits) -> Negotiated {
    let mut n = Negotiated {
        blksize: 512,
        windowsize: 1,
        timeout: limits.default_timeout,
        oack: Vec::new(),
    };
    for (name, value) in options {
        let lname = name.to_ascii_lowercase();
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        match lname.as_str() {
            "blksize" if v >= 8 => {
                let b = v.min(65_464).min(u64::from(limits.max_blksize.max(8))) as u16;
                n.blksize = b;
                n.oack.push((name.clone(), b.to_string()));
            }
            "windowsize" if v >= 1 => {
                let w = v.min(u64::from(limits.max_windowsize.max(1))) as u16;
                n.windowsize = w;
                n.oack.push((name.clone(), w.to_string()));
            }
            "timeout" if (1..=255).contains(&v) => {
                n.timeout = Duration::from_secs(v);
                n.oack.push((name.clone(), v.to_string()));
            }
            // A read request's tsize is 0; the server answers with the real size.
            "tsize" => n.oack.push((name.clone(), size.to_string())),
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn grants_and_caps() {
        let n = negotiate(
            &opts(&[
                ("BLKSIZE", "65464"),
                ("tsize", "0"),
                ("windowsize", "16"),
                ("timeout", "3"),
                ("foo", "1"),
            ]),
            1234,
            &Limits::default(),
        );
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.windowsize, 16);
        assert_eq!(n.timeout, Duration::from_secs(3));
        assert_eq!(
            n.oack,
            opts(&[
                ("BLKSIZE", "1468"),
                ("tsize", "1234"),
                ("windowsize", "16"),
                ("timeout", "3")
            ])
        );
    }

    #[test]
    fn ignores_bad_values() {
        let n = negotiate(
            &opts(&[
                ("blksize", "7"),
                ("timeout", "0"),
                ("windowsize", "x"),
                ("timeout", "256"),
            ]),
            0,
            &Limits::default(),
        );
        assert_eq!((n.blksize, n.windowsize), (512, 1));
        assert!(n.oack.is_empty());
    }

    proptest! {
        #[test]
        fn stays_in_range(name in "(blksize|windowsize|timeout|tsize)", value in "[0-9]{0,25}") {
            let limits = Limits::default();
            let n = negotiate(&[(name, value)], 10, &limits);
            prop_assert!((8..=limits.max_blksize).contains(&n.blksize));
            prop_assert!((1..=limits.max_windowsize).contains(&n.windowsize));
            prop_assert!(n.timeout >= Duration::from_secs(1) && n.timeout <= Duration::from_secs(255));
        }
    }
}
