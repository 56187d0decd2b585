//! OAuth `Authorization` header parsing (`maas_server::oauth::parse_header`)
//! on arbitrary text: it must never panic, and whatever it accepts must
//! survive a round trip through an oauthlib-style header (quoted,
//! percent-encoded values) unchanged. The freshness and signature checks run
//! on every accepted header too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maas_server::oauth::{NonceStore, OAuthParams, check_fresh, parse_header, signature_matches};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

fn render(p: &OAuthParams) -> String {
    let e = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
    format!(
        "OAuth realm=\"OAuth\", oauth_nonce=\"{}\", oauth_timestamp=\"{}\", \
         oauth_version=\"1.0\", oauth_signature_method=\"{}\", \
         oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"{}\"",
        e(&p.nonce),
        e(&p.timestamp),
        e(&p.signature_method),
        e(&p.consumer_key),
        e(&p.token),
        e(&p.signature),
    )
}

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser as text (`HeaderValue::to_str`).
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = parse_header(s) else {
        return;
    };
    let again = parse_header(&render(&p)).expect("a rendered header parses");
    assert_eq!(again, p, "round trip changed the parameters");
    let nonces = NonceStore::default();
    let fresh = check_fresh(&p, 1_700_000_000, &nonces);
    if fresh.is_ok() {
        // The same nonce inside the window is a replay.
        assert!(check_fresh(&p, 1_700_000_000, &nonces).is_err());
    }
    let _ = signature_matches(&p, &p.consumer_key, "secret");
});
