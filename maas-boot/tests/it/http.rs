//! The HTTP boot router: GET/HEAD, Range, validators, and refusals, with
//! reqwest and curl as clients.

use std::net::SocketAddr;
use std::sync::Arc;

use maas_boot::tree::BootTree;
use reqwest::StatusCode;
use reqwest::header;
use tokio_util::sync::CancellationToken;

use crate::common::{Files, data, peer, run};

/// How the server under test answers: `serve`'s direct boot loop, or the
/// same answers through the axum router (what other servers embed).
#[derive(Clone, Copy, Debug)]
pub enum Via {
    Direct,
    Router,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    cancel: CancellationToken,
}

impl HttpServer {
    /// The boot service answered directly by `serve`'s own loop.
    pub async fn start(images: Arc<dyn BootTree>, boot: Arc<dyn BootTree>) -> Self {
        Self::start_via(Via::Direct, images, boot).await
    }

    pub async fn start_via(via: Via, images: Arc<dyn BootTree>, boot: Arc<dyn BootTree>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let boot_http = maas_boot::http::BootHttp::new(images, boot, addr);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        match via {
            Via::Direct => {
                tokio::spawn(maas_boot::http::serve(listener, boot_http, c));
            }
            Via::Router => {
                tokio::spawn(maas_boot::http::serve(listener, boot_http.router(), c));
            }
        }
        Self { addr, cancel }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test]
async fn serves_images_with_head_range_and_validators() {
    serves_images_via(Via::Direct).await;
}

#[tokio::test]
async fn router_serves_images_with_head_range_and_validators() {
    serves_images_via(Via::Router).await;
}

async fn serves_images_via(via: Via) {
    let kernel = data(5 * 1024 * 1024 + 11, 7);
    let images = Files::new(&[("ubuntu/amd64/boot-kernel", &kernel)]);
    let boot = Files::new(&[("bootx64.efi", b"EFI loader")]);
    let srv = HttpServer::start_via(via, images.tree(), boot.tree()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/images/ubuntu/amd64/boot-kernel", srv.addr);

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
    let modified = r.headers()[header::LAST_MODIFIED]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.headers()[header::ACCEPT_RANGES], "bytes");
    assert!(r.bytes().await.unwrap() == kernel);

    // HEAD: the length, no body (OVMF's HTTP boot sends HEAD before GET).
    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CONTENT_LENGTH],
        kernel.len().to_string().as_str()
    );
    assert!(r.bytes().await.unwrap().is_empty());

    // A single range.
    let r = http
        .get(&url)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()[header::CONTENT_RANGE],
        format!("bytes 100-199/{}", kernel.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), kernel[100..200]);
    // A suffix range.
    let r = http
        .get(&url)
        .header(header::RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), kernel[kernel.len() - 10..]);
    // Unsatisfiable.
    let r = http
        .get(&url)
        .header(header::RANGE, "bytes=99999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        r.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", kernel.len()).as_str()
    );

    // Conditional requests.
    let r = http
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = http
        .get(&url)
        .header(header::IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = http
        .get(&url)
        .header(header::IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Loader files outside /images/, and refusals.
    let r = http
        .get(format!("http://{}/bootx64.efi", srv.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"EFI loader");
    for (path, status) in [
        ("/images/missing", StatusCode::NOT_FOUND),
        ("/images/a%5cb", StatusCode::FORBIDDEN),
        ("/images/a//b", StatusCode::FORBIDDEN),
        ("/images/%zz", StatusCode::BAD_REQUEST),
    ] {
        let r = http
            .get(format!("http://{}{path}", srv.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    // reqwest and curl resolve dot segments before sending; a raw request does not.
    for raw in [
        "/images/%2e%2e/secret",
        "/images/../secret",
        "/../etc/passwd",
    ] {
        assert_eq!(raw_status(srv.addr, raw).await, 403, "{raw}");
    }
    // GRUB's HTTP client matches header names case-sensitively.
    let (status, text) = raw_get(srv.addr, "/bootx64.efi").await;
    assert_eq!(status, 200);
    assert!(text.contains("\r\nContent-Length: 10\r\n"), "{text}");
    let r = http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn curl_downloads_and_resumes() {
    let curl = peer("curl", "curl");
    let kernel = data(3 * 1024 * 1024, 8);
    let images = Files::new(&[("k", &kernel)]);
    let srv = HttpServer::start(images.tree(), images.tree()).await;
    let out = tempfile::tempdir().unwrap();
    let url = format!("http://{}/images/k", srv.addr);
    // A partial file resumed with `-C -` (a Range request) ends up whole.
    std::fs::write(out.path().join("k"), &kernel[..1_000_000]).unwrap();
    let (ok, log) = run(
        &curl,
        &["-sS", "-f", "-C", "-", "-o", "k", &url],
        out.path(),
    )
    .await;
    assert!(ok, "{log}");
    assert!(std::fs::read(out.path().join("k")).unwrap() == kernel);
}

async fn raw_status(addr: SocketAddr, path: &str) -> u16 {
    raw_get(addr, path).await.0
}

/// (status, raw response text) of a hand-written request.
async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Sends `raw` on one connection and reads until the server closes it.
async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("server closed the connection")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn connection_loop_keeps_alive_pipelines_and_title_cases() {
    keeps_alive_via(Via::Direct).await;
}

#[tokio::test]
async fn router_connection_loop_keeps_alive_pipelines_and_title_cases() {
    keeps_alive_via(Via::Router).await;
}

async fn keeps_alive_via(via: Via) {
    let images = Files::new(&[("a", b"first file"), ("b", b"second")]);
    let boot = Files::new(&[]);
    let srv = HttpServer::start_via(via, images.tree(), boot.tree()).await;

    // Two pipelined requests in one write, the second asking to close: both
    // answered in order on the one connection, then it closes.
    let text = raw_exchange(
        srv.addr,
        b"GET /images/a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /images/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let responses: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(responses.len(), 2, "{text}");
    assert!(responses[0].starts_with("200 OK\r\n"), "{text}");
    assert!(
        responses[0].contains("\r\nContent-Length: 10\r\n"),
        "{text}"
    );
    assert!(
        responses[0].contains("\r\nAccept-Ranges: bytes\r\n"),
        "{text}"
    );
    assert!(responses[0].ends_with("\r\n\r\nfirst file"), "{text}");
    // HEAD: the length of the file, no body, and the close we asked for.
    assert!(responses[1].contains("\r\nContent-Length: 6\r\n"), "{text}");
    assert!(responses[1].contains("\r\nConnection: close\r\n"), "{text}");
    assert!(responses[1].ends_with("\r\n\r\n"), "{text}");
    // No lowercase header names anywhere (GRUB needs `Content-Length:`).
    for line in text.lines().filter(|l| l.contains(": ")) {
        let name = line.split(": ").next().unwrap();
        for part in name.split('-') {
            assert!(part.starts_with(|c: char| c.is_ascii_uppercase()), "{line}");
        }
    }

    // HTTP/1.0 closes after one response without being asked.
    let text = raw_exchange(srv.addr, b"GET /images/b HTTP/1.0\r\n\r\n").await;
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("second"),
        "{text}"
    );

    // A request body is read past, and the next request still works.
    let text = raw_exchange(
        srv.addr,
        b"GET /images/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /images/b HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        text.contains("first file") && text.ends_with("second"),
        "{text}"
    );
}

#[tokio::test]
async fn connection_loop_refuses_bad_heads() {
    let images = Files::new(&[("a", b"x")]);
    let srv = HttpServer::start(images.tree(), Files::new(&[]).tree()).await;
    let cases: &[(&[u8], &str)] = &[
        (b"GARBAGE\r\n\r\n", "400"),
        (
            b"GET /images/a HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            "400",
        ),
        (
            b"GET /images/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "411",
        ),
        (
            b"POST /images/a HTTP/1.1\r\nConnection: close\r\n\r\n",
            "405",
        ),
    ];
    for (raw, want) in cases {
        let text = raw_exchange(srv.addr, raw).await;
        assert!(
            text.starts_with(&format!("HTTP/1.1 {want} ")),
            "{:?} -> {text}",
            String::from_utf8_lossy(raw)
        );
    }
    // A head that never ends is cut off at the size limit with 431.
    let mut huge = b"GET /images/a HTTP/1.1\r\n".to_vec();
    while huge.len() <= maas_boot::http::MAX_HEAD {
        huge.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let text = raw_exchange(srv.addr, &huge).await;
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    // The server is still healthy.
    assert_eq!(raw_status(srv.addr, "/images/a").await, 200);
}
