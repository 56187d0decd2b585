//! HTTP boot: kernels, initrds and squashfs images from the store under
//! `/images/<path>`, every other path from the boot tree (generated
//! `ipxe.cfg*`, GRUB and pxelinux configs, UEFI HTTP-boot loaders), on the rack
//! port 5248.
//!
//! Files answer GET and HEAD with `Content-Length`, `ETag` and
//! `Last-Modified`, honour `If-None-Match`/`If-Modified-Since` and single
//! `Range`s. What to answer is decided by a pure function (`answer`); [`serve`]
//! writes answers with its own HTTP/1.1 loop and `sendfile(2)`, and
//! [`BootHttp::router`] exposes the same answers as an axum [`Router`] (files
//! streamed with positioned reads) for use behind any other server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::tree::BootTree;

mod answer;
mod conn;

use answer::{Answer, Ask, ContentRange, Method, Payload};

/// Longest a kept-alive connection may wait for its next request head.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Largest request head accepted (firmware sends a few hundred bytes).
pub const MAX_HEAD: usize = 16 * 1024;

/// The trees HTTP boot serves from, and the rack address for generated URLs.
#[derive(Clone)]
struct Trees {
    images: Arc<dyn BootTree>,
    boot: Arc<dyn BootTree>,
    local: SocketAddr,
}

/// The HTTP boot service: `/images/…` from one tree, the rest from another.
///
/// `local` is the rack address clients reach it on; generated configs put it
/// in their URLs. If it is a wildcard (`0.0.0.0`, `::`), each connection's own
/// local address is used instead. Serve it with [`serve`] (which firmware
/// needs: see there), or as an axum [`Router`] with [`BootHttp::router`].
#[derive(Clone)]
pub struct BootHttp {
    trees: Trees,
}

impl std::fmt::Debug for BootHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootHttp")
            .field("local", &self.trees.local)
            .finish_non_exhaustive()
    }
}

impl BootHttp {
    /// The service over `images` (for `/images/…`) and `boot` (everything else).
    pub fn new(images: Arc<dyn BootTree>, boot: Arc<dyn BootTree>, local: SocketAddr) -> Self {
        Self {
            trees: Trees {
                images,
                boot,
                local,
            },
        }
    }

    /// The same answers as an axum router, to merge into another server. It
    /// needs `ConnectInfo<SocketAddr>`: serve it with [`serve`] or axum's
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(router_handler)
            .with_state(self.trees.clone())
    }
}

/// The HTTP boot router: [`BootHttp::new`] then [`BootHttp::router`].
pub fn router(images: Arc<dyn BootTree>, boot: Arc<dyn BootTree>, local: SocketAddr) -> Router {
    BootHttp::new(images, boot, local).router()
}

/// What [`serve`] serves.
#[derive(Debug)]
pub enum App {
    /// Any axum router (each request goes through it).
    Router(Router),
    /// The boot service, answered directly (no per-request router call).
    Boot(BootHttp),
}

impl From<Router> for App {
    fn from(r: Router) -> Self {
        App::Router(r)
    }
}

impl From<BootHttp> for App {
    fn from(b: BootHttp) -> Self {
        App::Boot(b)
    }
}

/// Serves `app` on `listener` until `cancel` fires (or this future is
/// dropped), the way boot firmware needs, on one worker thread per CPU (at
/// most 8): see [`serve_workers`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: impl Into<App>,
    cancel: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    serve_workers(listener, app, cancel, workers).await
}

/// Serves `app` on `listener` with `workers` threads, each running its own
/// single-threaded tokio runtime that accepts from the shared listening socket
/// and keeps its connections (nginx's worker layout: no task ever moves
/// between threads, so a request costs no cross-thread wake-up).
///
/// Boot HTTP is GET/HEAD of files, so the connection loop is a small HTTP/1.1
/// server of our own (request heads parsed by `httparse`, the same parser hyper
/// uses) rather than hyper's, for two reasons:
/// - header names go out Title-Case: GRUB's HTTP client matches
///   `Content-Length:` case-sensitively; with lowercase names it sees no length
///   and refuses to verify the kernel ("big file signature isn't implemented
///   yet"), so `axum::serve` is not enough for UEFI machines;
/// - files go out with `sendfile(2)`, page cache to socket with no copy
///   through user space (hyper has no sendfile path), as nginx does.
///
/// Keep-alive and pipelining as HTTP/1.1 says; a connection idle for
/// [`IDLE_TIMEOUT`] or sending a head larger than [`MAX_HEAD`] is closed.
pub async fn serve_workers(
    listener: tokio::net::TcpListener,
    app: impl Into<App>,
    cancel: tokio_util::sync::CancellationToken,
    workers: usize,
) -> crate::Result<()> {
    let app = Arc::new(app.into());
    let io = |context| move |e| crate::Error::io(context, e);
    let std_listener = listener
        .into_std()
        .map_err(io("taking over the HTTP boot listener"))?;
    // Dropping this future stops the workers too.
    let stop = cancel.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let mut done = Vec::new();
    for i in 0..workers.max(1) {
        let l = std_listener
            .try_clone()
            .map_err(io("sharing the HTTP boot listener"))?;
        let (app, stop) = (app.clone(), stop.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("http-boot-{i}"))
            .spawn(move || {
                let r = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| rt.block_on(worker(l, app, stop)));
                let _ = tx.send(r);
            })
            .map_err(io("starting an HTTP boot worker"))?;
        done.push(rx);
    }
    let mut first_err = None;
    for rx in done {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                stop.cancel();
                first_err.get_or_insert(crate::Error::io("HTTP boot worker", e));
            }
            Err(_) => {
                stop.cancel();
                first_err.get_or_insert(crate::Error::Invalid("HTTP boot worker panicked".into()));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// One worker: accepts and serves connections on the current thread.
async fn worker(
    listener: std::net::TcpListener,
    app: Arc<App>,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
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
        let (app, cancel) = (app.clone(), cancel.clone());
        tokio::spawn(async move {
            // The address this connection came to: the rack address to put
            // in generated configs when the service was given a wildcard.
            let here = stream.local_addr().ok();
            let r = tokio::select! {
                r = async {
                    match &*app {
                        App::Boot(b) => conn::run_boot(stream, peer, here, &b.trees).await,
                        App::Router(r) => conn::run_router(stream, peer, here, r.clone()).await,
                    }
                } => r,
                _ = cancel.cancelled() => Ok(()),
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http boot: connection");
            }
        });
    }
}

/// A file response body that [`serve`] sends with `sendfile(2)`. The response
/// also carries an ordinary streaming body, so the router works behind any
/// server (e.g. `axum::serve`); [`serve`] drops that body and uses this.
#[derive(Clone)]
struct SendFile {
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
}

/// The local address of a connection, set by [`serve`] for the router.
#[derive(Clone, Copy, Debug)]
struct LocalAddr(SocketAddr);

/// Bytes read per chunk when streaming a file.
const CHUNK: usize = 512 * 1024;

async fn router_handler(
    State(trees): State<Trees>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let h = req.headers();
    let get = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    let method = Method::from_bytes(req.method().as_str().as_bytes());
    let ask = Ask {
        method,
        path: req.uri().path(),
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        if_none_match: get(header::IF_NONE_MATCH),
        if_modified_since: get(header::IF_MODIFIED_SINCE),
    };
    let here = req.extensions().get::<LocalAddr>().map(|l| l.0);
    let a = answer::answer(&trees, &ask, peer, here).await;
    to_response(a)
}

/// An [`Answer`] as an axum response.
fn to_response(a: Answer) -> Response {
    let mut b = Response::builder().status(a.status);
    if let Some(m) = &a.file {
        b = b.header(header::ACCEPT_RANGES, "bytes");
        if let Some(e) = &m.etag {
            b = b.header(header::ETAG, e.as_str());
        }
        match m.modified {
            Some(t) => b = b.header(header::LAST_MODIFIED, httpdate::fmt_http_date(t)),
            None => b = b.header(header::CACHE_CONTROL, "no-store"),
        }
    }
    match a.content_range {
        Some(ContentRange::Part { start, last, len }) => {
            b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{last}/{len}"));
        }
        Some(ContentRange::Unsatisfiable { len }) => {
            b = b.header(header::CONTENT_RANGE, format!("bytes */{len}"));
        }
        None => {}
    }
    if let Some(l) = a.length {
        b = b.header(header::CONTENT_LENGTH, HeaderValue::from(l));
    }
    if let Some(t) = a.content_type() {
        b = b.header(header::CONTENT_TYPE, t);
    }
    if a.allow {
        b = b.header(header::ALLOW, "GET, HEAD");
    }
    let body = match a.payload {
        Payload::Empty => Body::empty(),
        Payload::Reason => Body::from(a.status.canonical_reason().unwrap_or("")),
        Payload::Bytes(bytes) => Body::from(bytes),
        Payload::File { file, start, end } => {
            let file = Arc::new(file);
            b = b.extension(SendFile {
                file: file.clone(),
                start,
                end,
            });
            Body::from_stream(file_stream(file, start, end))
        }
    };
    b.body(body)
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
