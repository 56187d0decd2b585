//! HTTP boot: an axum [`Router`] that maasd merges on the rack port 5248.
//!
//! `/images/<path>` comes from the image store tree, every other path from the
//! boot tree (generated `ipxe.cfg*`, GRUB and pxelinux configs, UEFI HTTP-boot
//! loaders). Files answer GET and HEAD with `Content-Length`, `ETag` and
//! `Last-Modified`, honour `If-None-Match`/`If-Modified-Since` and single
//! `Range`s, and stream from disk with positioned reads in large chunks on the
//! blocking pool (hyper cannot `sendfile`, so this is the "close to zero-copy"
//! path: one copy, no per-chunk allocation beyond the chunk itself).

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

/// Serves `app` on `listener` until `cancel` fires, the way boot firmware needs:
/// HTTP/1.1 with Title-Case header names. GRUB's HTTP client matches
/// `Content-Length:` case-sensitively; with hyper's default lowercase names it
/// sees no length and refuses to verify the kernel ("big file signature isn't
/// implemented yet"), so `axum::serve` is not enough for UEFI machines.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cancel: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    use tower::ServiceExt;
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
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(here) = here {
                        req.extensions_mut().insert(here);
                    }
                    app.clone().oneshot(req.map(Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r { tracing::debug!(%peer, error = %e, "http boot: connection"); }
                }
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
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
                Body::from_stream(file_stream(Arc::new(file), start, end))
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
