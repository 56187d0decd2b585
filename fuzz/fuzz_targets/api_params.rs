//! The API's request-parameter parser (`maas_server::api::read_params`):
//! query string plus a `multipart/form-data` or urlencoded body, as every
//! handler reads them. Input layout: the first line is the Content-Type,
//! the second the query string, the rest the body. It must never panic,
//! and a refusal must be a 4xx with a message, never a 5xx.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use maas_server::api::{ErrorBody, read_params};

fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (ctype, rest) = line(data);
    let (query, body) = line(rest);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(ctype) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let query = std::str::from_utf8(query).ok();
    let body = bytes::Bytes::copy_from_slice(body);
    match futures::executor::block_on(read_params(query, &headers, &body)) {
        Ok(p) => {
            // Every accessor a handler may call on what was parsed.
            for k in p.keys() {
                let _ = (p.get(k), p.get_list(k), p.bool(k), p.int(k), p.bytes(k));
            }
            let _ = p.power_parameters();
            let _ = p.pairs();
        }
        Err(e) => {
            assert!((400..500).contains(&e.status), "status {}", e.status);
            let has_message = match &e.body {
                ErrorBody::Text(t) => !t.is_empty(),
                ErrorBody::Fields(v) => !v.is_null(),
            };
            assert!(has_message, "an error without a message");
        }
    }
});
