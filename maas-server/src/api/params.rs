//! Request parameters as MAAS reads them: query string plus a
//! `multipart/form-data` or urlencoded body, repeated keys kept as lists,
//! MAAS's booleans and `power_parameters_<k>` flattening.

use super::ApiError;

/// Ordered request parameters; a key may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    items: Vec<(String, Vec<u8>)>,
}

/// Parses a MAAS boolean (formencode `StringBool` and Django's forms):
/// true/false, yes/no, on/off, 1/0, t/f, case-insensitive.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "t" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "f" | "n" | "" => Some(false),
        _ => None,
    }
}

/// An integer as Django's `IntegerField` reads one: digits with an optional
/// sign and an optional `.000` tail. Fractions, exponents, `NaN`, `inf` and
/// out-of-range values are refused rather than rounded or saturated.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = match s.rfind('.') {
        Some(dot) if s[dot + 1..].bytes().all(|b| b == b'0') => &s[..dot],
        _ => s,
    };
    s.parse::<i64>().ok()
}

/// Parameters that carry file contents (keyrings, uploads, scripts),
/// where a NUL byte is data rather than a malformed text.
pub const BINARY_PARAMS: &[&str] = &["keyring_data", "content", "file", "script"];

impl Params {
    /// Adds one value.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.items.push((key.into(), value.into()));
    }

    /// Adds every pair of an urlencoded string.
    pub fn extend_urlencoded(&mut self, s: &[u8]) {
        for (k, v) in url::form_urlencoded::parse(s) {
            self.push(k.into_owned(), v.into_owned());
        }
    }

    /// Parses a `multipart/form-data` body.
    pub async fn extend_multipart(
        &mut self,
        boundary: &str,
        body: bytes::Bytes,
    ) -> Result<(), ApiError> {
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut mp = multer::Multipart::new(stream, boundary);
        loop {
            let field = mp
                .next_field()
                .await
                .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}")))?;
            let Some(field) = field else { break };
            let name = field.name().unwrap_or_default().to_owned();
            // python-libmaas builds its parts with Python's email package,
            // which base64-encodes each one (Django decodes it likewise).
            let b64 = field
                .headers()
                .get("content-transfer-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("base64"));
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}")))?;
            if b64 {
                use base64::Engine;
                let compact: Vec<u8> = data
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(&compact)
                    .map_err(|_| ApiError::field(&name, "Malformed base64 in a multipart part."))?;
                self.push(name, decoded);
            } else {
                self.push(name, data.to_vec());
            }
        }
        Ok(())
    }

    /// The first value of `key` as text.
    pub fn get(&self, key: &str) -> Option<String> {
        self.items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value of `key` as text, trimmed, `None` when empty.
    pub fn get_nonempty(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// The first value of `key` as bytes.
    pub fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.items
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Every value of `key`, each also split on commas (MAAS accepts both
    /// `tags=a&tags=b` and `tags=a,b`).
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.get_all(key)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Every (key, value) pair as text, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.items
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    /// The first text parameter holding a NUL character, if any. Parameters
    /// that carry files (`BINARY_PARAMS`) may hold any byte.
    pub fn nul_in_text(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|(k, v)| {
                k.contains('\0') || (!BINARY_PARAMS.contains(&k.as_str()) && v.contains(&0))
            })
            .map(|(k, _)| k.as_str())
    }

    /// Whether `key` was sent.
    pub fn has(&self, key: &str) -> bool {
        self.items.iter().any(|(k, _)| k == key)
    }

    /// The distinct keys, in first-seen order.
    pub fn keys(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in &self.items {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// A MAAS boolean; 400 with a field error when it is not one.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| ApiError::field(key, "Must be a valid boolean.")),
        }
    }

    /// A MAAS boolean with a default.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// An integer; 400 with a field error when it is not one.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get_nonempty(key) {
            None => Ok(None),
            Some(v) => parse_int(&v)
                .map(Some)
                .ok_or_else(|| ApiError::field(key, "Enter a whole number.")),
        }
    }

    /// Power parameters from `power_parameters` (a JSON object) and every
    /// `power_parameters_<k>` key, the flattened form libmaas sends.
    pub fn power_parameters(
        &self,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
        let mut out = serde_json::Map::new();
        let mut any = false;
        if let Some(raw) = self.get("power_parameters") {
            any = true;
            if !raw.trim().is_empty() {
                match serde_json::from_str::<serde_json::Value>(&raw) {
                    Ok(serde_json::Value::Object(m)) => out.extend(m),
                    _ => {
                        return Err(ApiError::field(
                            "power_parameters",
                            "Must be a JSON object.",
                        ));
                    }
                }
            }
        }
        for (k, v) in &self.items {
            if let Some(name) = k.strip_prefix("power_parameters_") {
                if name == "skip_check" {
                    continue;
                }
                any = true;
                out.insert(
                    name.to_owned(),
                    serde_json::Value::String(String::from_utf8_lossy(v).into_owned()),
                );
            }
        }
        Ok(any.then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_keys_and_comma_lists() {
        let mut p = Params::default();
        p.extend_urlencoded(b"tags=a&tags=b,c&op=allocate&empty=");
        assert_eq!(p.get_all("tags"), vec!["a", "b,c"]);
        assert_eq!(p.get_list("tags"), vec!["a", "b", "c"]);
        assert_eq!(p.get("op").as_deref(), Some("allocate"));
        assert_eq!(p.get_nonempty("empty"), None);
        assert_eq!(p.keys(), vec!["tags", "op", "empty"]);
    }

    #[test]
    fn integers_as_django_reads_them() {
        for (s, v) in [
            ("42", 42),
            (" -7 ", -7),
            ("+3", 3),
            ("2.0", 2),
            ("5.", 5),
            ("8.000", 8),
        ] {
            assert_eq!(parse_int(s), Some(v), "{s}");
        }
        for s in [
            "1.5",
            "1e3",
            "NaN",
            "inf",
            "-inf",
            "0x10",
            "",
            ".",
            "1 2",
            "99999999999999999999",
        ] {
            assert_eq!(parse_int(s), None, "{s}");
        }
        let mut p = Params::default();
        p.push("n", "NaN");
        assert_eq!(p.int("n").unwrap_err().status, 400);
    }

    proptest! {
        #[test]
        fn parse_int_never_panics_and_round_trips(s in "\\PC{0,24}", n in any::<i64>()) {
            let _ = parse_int(&s);
            prop_assert_eq!(parse_int(&n.to_string()), Some(n));
        }
    }

    #[test]
    fn maas_booleans() {
        for t in ["true", "True", "1", "yes", "on"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "0", "no", "off", "F"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        let mut p = Params::default();
        p.push("x", "maybe");
        assert_eq!(p.bool("x").unwrap_err().status, 400);
    }

    #[test]
    fn power_parameters_json_and_flattened_merge() {
        let mut p = Params::default();
        p.push("power_parameters", r#"{"power_address": "10.0.0.1"}"#);
        p.push("power_parameters_power_user", "admin");
        p.push("power_parameters_skip_check", "true");
        let pp = p.power_parameters().unwrap().unwrap();
        assert_eq!(pp["power_address"], "10.0.0.1");
        assert_eq!(pp["power_user"], "admin");
        assert!(!pp.contains_key("skip_check"));
        let mut bad = Params::default();
        bad.push("power_parameters", "[1]");
        assert!(bad.power_parameters().is_err());
        assert_eq!(Params::default().power_parameters().unwrap(), None);
    }

    #[tokio::test]
    async fn multipart_body_parses_like_libmaas_sends_it() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"hostname\"\r\n\r\nnode1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"mac_addresses\"\r\n\r\n52:54:00:00:00:01\r\n--XyZ\r\nContent-Disposition: form-data; name=\"mac_addresses\"\r\n\r\n52:54:00:00:00:02\r\n--XyZ--\r\n";
        let mut p = Params::default();
        p.extend_multipart("XyZ", bytes::Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(p.get("hostname").as_deref(), Some("node1"));
        assert_eq!(p.get_all("mac_addresses").len(), 2);
        let mut bad = Params::default();
        assert!(
            bad.extend_multipart("XyZ", bytes::Bytes::from("garbage"))
                .await
                .is_err()
        );
        // python-libmaas's shape: base64 transfer encoding, quoted boundary.
        let lib = "--===b==\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"name\"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nem9uZTE=\r\n\r\n--===b==--";
        let mut p = Params::default();
        p.extend_multipart("===b==", bytes::Bytes::from(lib))
            .await
            .unwrap();
        assert_eq!(p.get("name").as_deref(), Some("zone1"));
    }

    proptest! {
        #[test]
        fn urlencoded_roundtrip(pairs in proptest::collection::vec(("[a-z_]{1,8}", ".{0,20}"), 0..8)) {
            let enc: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .finish();
            let mut p = Params::default();
            p.extend_urlencoded(enc.as_bytes());
            for (k, _) in &pairs {
                let want: Vec<String> = pairs.iter().filter(|(k2, _)| k2 == k).map(|(_, v)| v.clone()).collect();
                prop_assert_eq!(p.get_all(k), want);
            }
        }

        #[test]
        fn parse_bool_never_panics(s in ".{0,10}") {
            let _ = parse_bool(&s);
        }
    }
}
