//! OAuth 1.0 PLAINTEXT as MAAS accepts it: parsing the `Authorization`
//! header leniently (oauthlib's quoted, percent-encoded values and curtin's
//! unquoted raw ones), checking the signature against the token secret, the
//! timestamp window and nonce reuse.

use std::collections::HashMap;
use std::sync::Mutex;

use percent_encoding::percent_decode_str;

/// How far in the past a timestamp may lie (piston's window).
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

/// The OAuth parameters of one request.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthParams {
    /// `oauth_consumer_key`.
    pub consumer_key: String,
    /// `oauth_token`.
    pub token: String,
    /// `oauth_signature` (decoded): `<consumer secret>&<token secret>`.
    pub signature: String,
    /// `oauth_signature_method`.
    pub signature_method: String,
    /// `oauth_timestamp` as sent.
    pub timestamp: String,
    /// `oauth_nonce`.
    pub nonce: String,
}

impl std::fmt::Debug for OAuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthParams")
            .field("consumer_key", &self.consumer_key)
            .field("token", &self.token)
            .field("signature", &"<redacted>")
            .field("signature_method", &self.signature_method)
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// Why a request's OAuth credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthRejection {
    /// Not an OAuth header, or a required parameter is missing (401).
    Missing(&'static str),
    /// `oauth_timestamp` is not an integer (400, as MAAS).
    BadTimestamp,
    /// Timestamp outside the window, reused nonce, wrong method or
    /// signature, unknown token (401).
    Invalid(&'static str),
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// Parses an `Authorization: OAuth …` header value.
pub fn parse_header(value: &str) -> Result<OAuthParams, OAuthRejection> {
    let v = value.trim_start();
    let rest = match (v.get(..5), v.get(5..)) {
        (Some(scheme), Some(rest)) if scheme.eq_ignore_ascii_case("oauth") => rest,
        _ => return Err(OAuthRejection::Missing("not an OAuth authorization header")),
    };
    let mut map: HashMap<String, String> = HashMap::new();
    for part in rest.split(',') {
        let Some((k, val)) = part.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let decoded = percent_decode_str(unquote(val))
            .decode_utf8_lossy()
            .into_owned();
        map.insert(k.to_owned(), decoded);
    }
    let mut take = |k: &'static str| map.remove(k).ok_or(OAuthRejection::Missing(k));
    Ok(OAuthParams {
        consumer_key: take("oauth_consumer_key")?,
        token: take("oauth_token")?,
        signature: take("oauth_signature")?,
        signature_method: take("oauth_signature_method")?,
        timestamp: take("oauth_timestamp")?,
        nonce: take("oauth_nonce")?,
    })
}

/// Remembers nonces inside the timestamp window so a replayed request is
/// refused.
#[derive(Debug, Default)]
pub struct NonceStore {
    seen: Mutex<HashMap<(String, String, String), i64>>,
}

impl NonceStore {
    /// Records the nonce; false when it was already used inside the window.
    pub fn check_and_record(&self, p: &OAuthParams, ts: i64, now: i64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() > 100_000 {
            seen.retain(|_, t| *t >= now - TIMESTAMP_WINDOW_SECS);
        }
        let key = (p.consumer_key.clone(), p.token.clone(), p.nonce.clone());
        match seen.get(&key) {
            Some(t) if *t >= now - TIMESTAMP_WINDOW_SECS => false,
            _ => {
                seen.insert(key, ts);
                true
            }
        }
    }
}

/// Checks everything but the token lookup: method, timestamp window and
/// nonce. `now` is Unix seconds.
pub fn check_fresh(p: &OAuthParams, now: i64, nonces: &NonceStore) -> Result<(), OAuthRejection> {
    if !p.signature_method.eq_ignore_ascii_case("PLAINTEXT") {
        return Err(OAuthRejection::Invalid("unsupported signature method"));
    }
    let ts: i64 = p
        .timestamp
        .trim()
        .parse()
        .map_err(|_| OAuthRejection::BadTimestamp)?;
    if ts < now - TIMESTAMP_WINDOW_SECS {
        return Err(OAuthRejection::Invalid("expired timestamp"));
    }
    if !nonces.check_and_record(p, ts, now) {
        return Err(OAuthRejection::Invalid("nonce already used"));
    }
    Ok(())
}

/// Checks the PLAINTEXT signature: the consumer secret is always empty, so
/// it must be `&<token secret>`. Compared in constant time.
pub fn signature_matches(p: &OAuthParams, consumer_key: &str, token_secret: &str) -> bool {
    let want = format!("&{token_secret}");
    p.consumer_key == consumer_key
        && p.signature.len() == want.len()
        && p.signature
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_oauthlib_quoted_percent_encoded_header() {
        let h = r#"OAuth realm="OAuth", oauth_nonce="123", oauth_timestamp="1700000000", oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="ck", oauth_token="tk", oauth_signature="%26sec""#;
        let p = parse_header(h).unwrap();
        assert_eq!(p.consumer_key, "ck");
        assert_eq!(p.token, "tk");
        assert_eq!(p.signature, "&sec");
        assert!(signature_matches(&p, "ck", "sec"));
        assert!(!signature_matches(&p, "ck", "sed"));
        assert!(!signature_matches(&p, "other", "sec"));
    }

    #[test]
    fn parses_curtins_unquoted_raw_header() {
        let h = "OAuth oauth_version=1.0, oauth_signature_method=PLAINTEXT, oauth_consumer_key=K, oauth_token=T, oauth_signature=&S, oauth_nonce=n1, oauth_timestamp=5";
        let p = parse_header(h).unwrap();
        assert_eq!(p.signature, "&S");
        assert_eq!(p.timestamp, "5");
    }

    #[test]
    fn missing_parameter_and_other_schemes_are_refused() {
        assert_eq!(
            parse_header("Basic dXNlcjpwYXNz"),
            Err(OAuthRejection::Missing("not an OAuth authorization header"))
        );
        let h = "OAuth oauth_consumer_key=K, oauth_token=T, oauth_signature=&S, oauth_signature_method=PLAINTEXT, oauth_timestamp=5";
        assert_eq!(parse_header(h), Err(OAuthRejection::Missing("oauth_nonce")));
    }

    #[test]
    fn timestamp_window_nonce_and_method_are_checked() {
        let store = NonceStore::default();
        let mut p = parse_header("OAuth oauth_consumer_key=K, oauth_token=T, oauth_signature=&S, oauth_signature_method=PLAINTEXT, oauth_timestamp=1000, oauth_nonce=a").unwrap();
        assert_eq!(check_fresh(&p, 1000, &store), Ok(()));
        assert_eq!(
            check_fresh(&p, 1000, &store),
            Err(OAuthRejection::Invalid("nonce already used"))
        );
        p.nonce = "b".into();
        assert_eq!(
            check_fresh(&p, 1000 + TIMESTAMP_WINDOW_SECS + 1, &store),
            Err(OAuthRejection::Invalid("expired timestamp"))
        );
        p.timestamp = "soon".into();
        assert_eq!(
            check_fresh(&p, 1000, &store),
            Err(OAuthRejection::BadTimestamp)
        );
        p.timestamp = "1000".into();
        p.signature_method = "HMAC-SHA1".into();
        assert!(matches!(
            check_fresh(&p, 1000, &store),
            Err(OAuthRejection::Invalid(_))
        ));
    }

    #[test]
    fn debug_hides_the_signature() {
        let p = parse_header("OAuth oauth_consumer_key=K, oauth_token=T, oauth_signature=&VERYSECRET, oauth_signature_method=PLAINTEXT, oauth_timestamp=5, oauth_nonce=n").unwrap();
        assert!(!format!("{p:?}").contains("VERYSECRET"));
    }

    proptest! {
        #[test]
        fn any_header_parses_without_panic(s in ".{0,300}") {
            let _ = parse_header(&s);
        }

        #[test]
        fn quoted_and_raw_forms_agree(
            ck in "[A-Za-z0-9]{1,18}",
            tk in "[A-Za-z0-9]{1,18}",
            sec in "[A-Za-z0-9]{1,32}",
            nonce in "[0-9]{1,12}",
            ts in 0i64..4_000_000_000,
        ) {
            let quoted = format!(
                "OAuth realm=\"OAuth\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{ts}\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{ck}\", oauth_token=\"{tk}\", oauth_signature=\"%26{sec}\"");
            let raw = format!(
                "OAuth oauth_version=1.0, oauth_signature_method=PLAINTEXT, oauth_consumer_key={ck}, oauth_token={tk}, oauth_signature=&{sec}, oauth_nonce={nonce}, oauth_timestamp={ts}");
            let a = parse_header(&quoted).unwrap();
            let b = parse_header(&raw).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert!(signature_matches(&a, &ck, &sec));
        }
    }
}
