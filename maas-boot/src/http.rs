//! HTTP boot: an axum [`Router`] that maasd merges on the rack port 5248.
//!
//! `/images/<path>` comes from the image store tree, every other path from the
//! boot tree (generated `ipxe.cfg*`, GRUB and pxelinux configs, UEFI HTTP-boot
//! loaders). Files answer GET and HEAD with `Content-Length`, `ETag` and
//! `Last-Modified`, honour `If-None-Match`/`If-Modified-Since` and single
//! `Range`s. [`serve`] sends files with `sendfile(2)`; behind any other server
//! the router streams them with positioned reads in large chunks on the
//! blocking pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::Error;
use crate::tree::{BootFile, BootPath, BootTree, Client};

/// Serves `app` on `listener` until `cancel` fires, the way boot firmware needs.
///
/// Boot HTTP is GET/HEAD of files, so the connection loop is a small HTTP/1.1
/// server of our own (request heads parsed by `httparse`, the same parser hyper
/// uses) rather than hyper's, for two reasons:
/// - header names go out Title-Case: GRUB's HTTP client matches
///   `Content-Length:` case-sensitively; with lowercase names it sees no length
///   and refuses to verify the kernel ("big file signature isn't implemented
///   yet"), so `axum::serve` is not enough for UEFI machines;
/// - files the router answers with go out with `sendfile(2)`, page cache to
///   socket with no copy through user space (hyper has no sendfile path), as
///   nginx does.
///
/// Keep-alive and pipelining as HTTP/1.1 says; a connection idle for
/// [`IDLE_TIMEOUT`] or sending a head larger than [`MAX_HEAD`] is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cancel: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                // Running out of descriptors and the like passes; keep serving.
                Err(e) => { tracing::warn!(error = %e, "http boot: accept"); continue; }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            // The address this connection came to: the rack address to put
            // in generated configs when the router was given a wildcard.
            let here = stream.local_addr().ok().map(LocalAddr);
            tokio::select! {
                r = conn::run(stream, peer, here, app) => {
                    if let Err(e) = r { tracing::debug!(%peer, error = %e, "http boot: connection"); }
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// Longest a kept-alive connection may wait for its next request head.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Largest request head accepted (firmware sends a few hundred bytes).
pub const MAX_HEAD: usize = 16 * 1024;

/// A file response body that [`serve`] sends with `sendfile(2)`. The response
/// also carries an ordinary streaming body, so the router works behind any
/// server (e.g. `axum::serve`); [`serve`] drops that body and uses this.
#[derive(Clone)]
struct SendFile {
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
}

mod conn {
    //! One HTTP/1.1 connection of [`super::serve`].

    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::AsFd;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
    use bytes::{Buf, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
    use tokio::net::TcpStream;
    use tower::ServiceExt;

    use super::{IDLE_TIMEOUT, LocalAddr, MAX_HEAD, SendFile};

    /// A parsed request head.
    struct Head {
        req: Request<Body>,
        /// Bytes of request body that follow the head (discarded).
        body_len: u64,
        keep_alive: bool,
    }

    enum Parsed {
        Partial,
        Done(Box<Head>, usize),
        Bad(StatusCode),
    }

    fn parse(buf: &[u8], peer: SocketAddr, here: Option<LocalAddr>) -> Parsed {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut headers);
        let n = match r.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(httparse::Error::TooManyHeaders) => {
                return Parsed::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            Err(_) => return Parsed::Bad(StatusCode::BAD_REQUEST),
        };
        let (Some(method), Some(path), Some(minor)) = (r.method, r.path, r.version) else {
            return Parsed::Bad(StatusCode::BAD_REQUEST);
        };
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return Parsed::Bad(StatusCode::BAD_REQUEST);
        };
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let mut builder = Request::builder().method(method).uri(path).version(version);
        let mut body_len = 0u64;
        // HTTP/1.1 keeps the connection by default, 1.0 closes it (RFC 9112 9.3).
        let mut keep_alive = minor != 0;
        for h in r.headers.iter() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) else {
                return Parsed::Bad(StatusCode::BAD_REQUEST);
            };
            if name == axum::http::header::CONTENT_LENGTH {
                match value.to_str().ok().and_then(|v| v.trim().parse().ok()) {
                    Some(l) => body_len = l,
                    None => return Parsed::Bad(StatusCode::BAD_REQUEST),
                }
            } else if name == axum::http::header::TRANSFER_ENCODING {
                // Boot clients never send bodies; a chunked one is not worth decoding.
                return Parsed::Bad(StatusCode::LENGTH_REQUIRED);
            } else if name == axum::http::header::CONNECTION {
                let v = value.to_str().unwrap_or("").to_ascii_lowercase();
                if v.split(',').any(|t| t.trim() == "close") {
                    keep_alive = false;
                } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                    keep_alive = true;
                }
            }
            builder = builder.header(name, value);
        }
        builder = builder.extension(ConnectInfo(peer));
        if let Some(here) = here {
            builder = builder.extension(here);
        }
        match builder.body(Body::empty()) {
            Ok(req) => Parsed::Done(
                Box::new(Head {
                    req,
                    body_len,
                    keep_alive,
                }),
                n,
            ),
            Err(_) => Parsed::Bad(StatusCode::BAD_REQUEST),
        }
    }

    pub(super) async fn run(
        mut stream: TcpStream,
        peer: SocketAddr,
        here: Option<LocalAddr>,
        app: Router,
    ) -> io::Result<()> {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            // Read until one whole request head is buffered (pipelined requests
            // may already be there).
            let head = loop {
                match parse(&buf, peer, here) {
                    Parsed::Done(head, n) => {
                        buf.advance(n);
                        break head;
                    }
                    Parsed::Bad(status) => return reply_error(&mut stream, status).await,
                    Parsed::Partial if buf.len() >= MAX_HEAD => {
                        return reply_error(
                            &mut stream,
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        )
                        .await;
                    }
                    Parsed::Partial => {
                        let n = tokio::time::timeout(IDLE_TIMEOUT, stream.read_buf(&mut buf))
                            .await
                            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle"))??;
                        if n == 0 {
                            return Ok(());
                        }
                    }
                }
            };
            discard_body(&mut stream, &mut buf, head.body_len).await?;
            let is_head = head.req.method() == Method::HEAD;
            let keep_alive = head.keep_alive;
            let resp = match app.clone().oneshot(head.req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            write_response(&mut stream, resp, is_head, keep_alive).await?;
            if !keep_alive {
                return Ok(());
            }
        }
    }

    async fn discard_body(
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        mut len: u64,
    ) -> io::Result<()> {
        loop {
            let have = (buf.len() as u64).min(len);
            buf.advance(have as usize);
            len -= have;
            if len == 0 {
                return Ok(());
            }
            let n = tokio::time::timeout(IDLE_TIMEOUT, stream.read_buf(buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "body"))??;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn reply_error(stream: &mut TcpStream, status: StatusCode) -> io::Result<()> {
        let mut resp = Response::new(Body::from(status.canonical_reason().unwrap_or("")));
        *resp.status_mut() = status;
        write_response(stream, resp, false, false).await?;
        // Lingering close: closing with unread request bytes in the receive
        // buffer makes the kernel send RST, and the client may lose the error
        // reply. Send FIN, then read what is left for a moment (as nginx does).
        stream.shutdown().await?;
        let mut sink = [0u8; 16 * 1024];
        let drain = async {
            for _ in 0..64 {
                if matches!(stream.read(&mut sink).await, Ok(0) | Err(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        Ok(())
    }

    /// `content-length` → `Content-Length`.
    fn title_case(name: &str, out: &mut Vec<u8>) {
        let mut up = true;
        for b in name.bytes() {
            out.push(if up { b.to_ascii_uppercase() } else { b });
            up = b == b'-';
        }
    }

    async fn write_response(
        stream: &mut TcpStream,
        resp: Response<Body>,
        is_head: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let (mut parts, body) = resp.into_parts();
        let sendfile = parts.extensions.remove::<SendFile>();
        let no_body = is_head
            || parts.status == StatusCode::NOT_MODIFIED
            || parts.status == StatusCode::NO_CONTENT
            || parts.status.is_informational();
        // Small generated bodies (configs, errors) are collected; files go by sendfile.
        let bytes = if sendfile.is_some() || no_body {
            bytes::Bytes::new()
        } else {
            axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(io::Error::other)?
        };
        let len = match &sendfile {
            Some(f) => Some(f.end - f.start),
            None if no_body => None,
            None => Some(bytes.len() as u64),
        };
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(parts.status.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
        head.extend_from_slice(b"\r\n");
        let mut put = |name: &str, value: &[u8]| {
            title_case(name, &mut head);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        };
        put(
            "date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
        if let Some(l) = len {
            put("content-length", l.to_string().as_bytes());
        }
        if !keep_alive {
            put("connection", b"close");
        }
        for (name, value) in &parts.headers {
            let n = name.as_str();
            if n == "date" || n == "connection" || (len.is_some() && n == "content-length") {
                continue;
            }
            put(n, value.as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        if let (Some(f), false) = (&sendfile, no_body)
            && f.end - f.start <= SMALL_FILE
        {
            // Small files (configs, 1 KiB probes) go out with the head in one
            // write: a positioned read of a page-cached file costs less than
            // a second syscall and a second packet.
            let start = head.len();
            head.resize(start + (f.end - f.start) as usize, 0);
            read_exact_at(&f.file, &mut head[start..], f.start)?;
            return stream.write_all(&head).await;
        }
        if !bytes.is_empty() && bytes.len() <= 64 * 1024 {
            // One write for head and small body.
            head.extend_from_slice(&bytes);
            return stream.write_all(&head).await;
        }
        stream.write_all(&head).await?;
        match sendfile {
            Some(f) if !no_body => send_file(stream, &f).await,
            _ => stream.write_all(&bytes).await,
        }
    }

    /// Files up to this size are read and written with the response head.
    const SMALL_FILE: u64 = 16 * 1024;

    fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), "file shrank while being sent")
            } else {
                e
            }
        })
    }

    async fn send_file(stream: &TcpStream, f: &SendFile) -> io::Result<()> {
        let mut offset = f.start;
        while offset < f.end {
            // sendfile moves at most ~2 GiB per call.
            let want = usize::try_from(f.end - offset)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(stream.as_fd(), f.file.as_fd(), Some(&mut offset), want)
                    .map_err(io::Error::from)
            }) {
                // The file is shorter than when it was opened: the length we
                // promised cannot be kept, so the connection must end.
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being sent",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Bytes read per chunk when streaming a file.
const CHUNK: usize = 512 * 1024;

/// The local address of a connection, set by [`serve`].
#[derive(Clone, Copy, Debug)]
struct LocalAddr(SocketAddr);

#[derive(Clone)]
struct Trees {
    images: Arc<dyn BootTree>,
    boot: Arc<dyn BootTree>,
    local: SocketAddr,
}

/// The HTTP boot router.
///
/// `local` is the rack address clients reach this router on; generated configs
/// put it in their URLs. If it is a wildcard (`0.0.0.0`, `::`), [`serve`]
/// uses each connection's own local address instead. The router needs `ConnectInfo<SocketAddr>`: serve it
/// with [`serve`] (which firmware needs anyway), or axum's
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(images: Arc<dyn BootTree>, boot: Arc<dyn BootTree>, local: SocketAddr) -> Router {
    Router::new().fallback(serve_path).with_state(Trees {
        images,
        boot,
        local,
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

async fn serve_path(
    State(trees): State<Trees>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(raw) = percent_decode(req.uri().path()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = match BootPath::parse(&raw) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let local = match req.extensions().get::<LocalAddr>() {
        Some(LocalAddr(here)) if trees.local.ip().is_unspecified() => *here,
        _ => trees.local,
    };
    let client = Client { peer, local };
    let opened = match path.strip_first("images") {
        Some(rest) => trees.images.open(&rest, &client).await,
        None => trees.boot.open(&path, &client).await,
    };
    match opened {
        Ok(file) => file_response(file, req.headers(), req.method() == Method::HEAD),
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::AccessDenied(_) => StatusCode::FORBIDDEN,
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::warn!(error = %e, "http boot: serving a file failed");
    }
    // The status says enough; server-side details stay in the log.
    (status, status.canonical_reason().unwrap_or("")).into_response()
}

/// nginx-style validators: `"<mtime-hex>-<len-hex>"`.
fn etag(len: u64, modified: Option<SystemTime>) -> Option<String> {
    let m = modified?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!("\"{:x}-{:x}\"", m.as_secs(), len))
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn file_response(file: BootFile, headers: &HeaderMap, head: bool) -> Response {
    let len = file.len();
    let (etag, modified) = match &file {
        BootFile::File { modified, .. } => (etag(len, *modified), *modified),
        BootFile::Bytes(_) => (None, None),
    };
    let mut builder = Response::builder().header(header::ACCEPT_RANGES, "bytes");
    if let Some(t) = &etag {
        builder = builder.header(header::ETAG, t);
    }
    if let Some(m) = modified {
        builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(m));
    } else {
        // Generated configs change with the machine's state; never cache them.
        builder = builder.header(header::CACHE_CONTROL, "no-store");
    }

    // Conditional GET: If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    let not_modified = match (header_str(headers, header::IF_NONE_MATCH), &etag) {
        (Some(inm), Some(t)) => inm.split(',').any(|c| c.trim() == t || c.trim() == "*"),
        (Some(_), None) => false,
        (None, _) => match (header_str(headers, header::IF_MODIFIED_SINCE), modified) {
            (Some(ims), Some(m)) => httpdate::parse_http_date(ims)
                .ok()
                .is_some_and(|since| httpdate::HttpDate::from(m) <= since.into()),
            _ => false,
        },
    };
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }

    // Range applies only if If-Range (when sent) still matches.
    let if_range_ok = match header_str(headers, header::IF_RANGE) {
        None => true,
        Some(v) => etag.as_deref() == Some(v),
    };
    let mut start = 0u64;
    let mut end = len; // exclusive
    let mut status = StatusCode::OK;
    if let (Some(r), true) = (header_str(headers, header::RANGE), if_range_ok) {
        match http_range_header::parse_range_header(r).map(|p| p.validate(len)) {
            Ok(Ok(ranges)) if ranges.len() == 1 => {
                start = *ranges[0].start();
                end = *ranges[0].end() + 1;
                status = StatusCode::PARTIAL_CONTENT;
                builder = builder.header(
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{}/{len}", end - 1),
                );
            }
            Ok(Err(_)) => {
                return builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            // Several ranges, or a syntax this server does not parse: RFC 9110
            // lets a server ignore Range and send the whole file.
            _ => {}
        }
    }
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, HeaderValue::from(end - start))
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let body = if head {
        Body::empty()
    } else {
        match file {
            BootFile::Bytes(b) => Body::from(b.slice(start as usize..end as usize)),
            BootFile::File { file, .. } => {
                let file = Arc::new(file);
                builder = builder.extension(SendFile {
                    file: file.clone(),
                    start,
                    end,
                });
                Body::from_stream(file_stream(file, start, end))
            }
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn file_stream(
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::try_unfold(start, move |offset| {
        let file = file.clone();
        async move {
            if offset >= end {
                return Ok(None);
            }
            let want = (end - offset).min(CHUNK as u64) as usize;
            let chunk = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                let mut done = 0;
                while done < want {
                    let n = file.read_at(&mut buf[done..], offset + done as u64)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "file shrank while being sent",
                        ));
                    }
                    done += n;
                }
                Ok::<_, std::io::Error>(Bytes::from(buf))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((chunk, offset + want as u64)))
        }
    })
}
