//! The fast receive path for plain `http://` mirrors: a minimal HTTP/1.1
//! GET client whose body goes socket → pipe → staged file with `splice(2)`.
//!
//! The general client (reqwest/hyper) copies every byte from the socket into
//! user space and back into the page cache; on a 2-CPU machine those copies
//! and the async machinery around them cost as much as the sha256 itself.
//! Here the kernel moves the socket's pages into a pipe and copies them once
//! into the staged file; a second thread hashes what has been written,
//! reading it back from the page cache.
//!
//! Only the plain case is handled: a `200` with `Content-Length`, or a `206`
//! whose `Content-Range` starts where we asked. Anything else a server may
//! legitimately answer (redirects, chunked or encoded bodies, proxies,
//! credentials in the URL, `https`) is reported as [`Opened::Unusual`] and
//! the caller uses the general client instead. Server errors (4xx/5xx) are
//! errors here as there.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::pipe::{SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::digest::{Hasher, Sha256};
use crate::error::{Error, Result};

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may stay silent (as the general client's read timeout).
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a blocked read wakes up to look at the cancellation token.
const POLL: Duration = Duration::from_millis(250);
/// Largest response head accepted.
const HEAD_LIMIT: usize = 64 << 10;
/// Pipe capacity asked for: fewer, larger splices (the kernel may refuse
/// and keep its 64 KiB default, which still works).
const PIPE_BYTES: usize = 1 << 20;
/// Progress and the hashing thread are told about new bytes in steps of
/// this size (fewer wake-ups), and at the end.
const REPORT_BYTES: u64 = 2 << 20;
/// The hashing thread's read buffer.
const HASH_BUF: usize = 1 << 20;

fn download_error(url: &Url, reason: impl std::fmt::Display) -> Error {
    Error::Download {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// What the server's response head says, as far as we care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// `Content-Length`, when present and valid.
    pub content_length: Option<u64>,
    /// First byte of `Content-Range: bytes S-E/T`, when present and valid.
    pub range_start: Option<u64>,
    /// A `Transfer-Encoding` or non-identity `Content-Encoding` header.
    pub encoded: bool,
    /// More than one `Content-Length`, or one that is not a number.
    pub bad_length: bool,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while
/// incomplete, else the head and its length in bytes.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Invalid(format!("bad HTTP response head: {e}"))),
    };
    let mut head = Head {
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or("").to_owned(),
        content_length: None,
        range_start: None,
        encoded: false,
        bad_length: false,
    };
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match (head.content_length, value.parse::<u64>()) {
                (None, Ok(n)) => head.content_length = Some(n),
                _ => head.bad_length = true,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.encoded = true;
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            head.encoded |= !value.eq_ignore_ascii_case("identity");
        } else if h.name.eq_ignore_ascii_case("content-range") {
            head.range_start = value
                .strip_prefix("bytes ")
                .and_then(|r| r.split_once('-'))
                .and_then(|(s, _)| s.trim().parse().ok());
        }
    }
    Ok(Some((head, used)))
}

/// How to receive a response, decided from its head alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Splice `length` body bytes that start at `offset` in the file.
    Body {
        /// Where the body starts in the file.
        offset: u64,
        /// Body length.
        length: u64,
    },
    /// Not the plain case: use the general client.
    Unusual(String),
}

/// Decides what to do with `head`, the answer to a request from `offset`.
pub(crate) fn plan(head: &Head, offset: u64) -> std::result::Result<Plan, String> {
    let unusual = |why: &str| Ok(Plan::Unusual(why.to_owned()));
    if head.status >= 400 {
        return Err(format!("HTTP {} {}", head.status, head.reason));
    }
    if head.encoded {
        return unusual("encoded body");
    }
    if head.bad_length {
        return unusual("invalid Content-Length");
    }
    let Some(length) = head.content_length else {
        return unusual("no Content-Length");
    };
    match head.status {
        200 => Ok(Plan::Body { offset: 0, length }),
        206 if offset > 0 && head.range_start == Some(offset) => Ok(Plan::Body { offset, length }),
        206 => unusual("unexpected Content-Range"),
        s if (300..400).contains(&s) => unusual("redirect"),
        _ => unusual("unexpected status"),
    }
}

/// A response whose body is about to be spliced.
pub(crate) struct Response {
    sock: TcpStream,
    /// Where the body starts in the file.
    pub offset: u64,
    /// Body length announced.
    pub length: u64,
    /// Body bytes read together with the head.
    early: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("offset", &self.offset)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`open`].
#[derive(Debug)]
pub(crate) enum Opened {
    /// The plain case: splice it.
    Body(Response),
    /// Use the general client, for this reason.
    Unusual(String),
}

/// Whether the environment names a proxy (the general client honours it).
fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Connects, sends `GET` (with `Range` from `offset` when > 0) and reads the
/// response head. Blocking: run it on a blocking thread.
pub(crate) fn open(url: &Url, offset: u64, cancel: &CancellationToken) -> Result<Opened> {
    if url.scheme() != "http" {
        return Ok(Opened::Unusual(format!("{} URL", url.scheme())));
    }
    if proxy_configured() {
        return Ok(Opened::Unusual("proxy configured".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Ok(Opened::Unusual("credentials in URL".into()));
    }
    let Some(host) = url.host_str() else {
        return Err(download_error(url, "no host"));
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|e| download_error(url, format!("cannot resolve {host}: {e}")))?;
    let mut last = None;
    let mut sock = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut sock) = sock else {
        let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        return Err(download_error(url, format!("cannot connect: {why}")));
    };
    let io = |e: std::io::Error| download_error(url, e);
    sock.set_read_timeout(Some(POLL)).map_err(io)?;
    sock.set_write_timeout(Some(READ_TIMEOUT)).map_err(io)?;
    sock.set_nodelay(true).map_err(io)?;

    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: maas-rs-images/{}\r\n\
         Accept: */*\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if offset > 0 {
        req.push_str(&format!("Range: bytes={offset}-\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).map_err(io)?;

    let mut buf = vec![0u8; 16 << 10];
    let mut filled = 0;
    let mut idle = Idle::new();
    loop {
        if filled == buf.len() {
            if buf.len() >= HEAD_LIMIT {
                return Err(download_error(url, "response head too large"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        match sock.read(&mut buf[filled..]) {
            Ok(0) => return Err(download_error(url, "connection closed before a response")),
            Ok(n) => {
                filled += n;
                idle.reset();
            }
            Err(e) if timed_out(&e) => idle.check(url, cancel)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
        let parsed = parse_head(&buf[..filled]).map_err(|e| download_error(url, e))?;
        if let Some((head, used)) = parsed {
            return match plan(&head, offset).map_err(|e| download_error(url, e))? {
                Plan::Unusual(why) => Ok(Opened::Unusual(why)),
                Plan::Body { offset, length } => {
                    buf.truncate(filled);
                    buf.drain(..used);
                    Ok(Opened::Body(Response {
                        sock,
                        offset,
                        length,
                        early: buf,
                    }))
                }
            };
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Time since the server last sent something.
struct Idle(Instant);

impl Idle {
    fn new() -> Self {
        Self(Instant::now())
    }

    fn reset(&mut self) {
        self.0 = Instant::now();
    }

    /// Called when a read timed out: cancelled, or silent for too long?
    fn check(&self, url: &Url, cancel: &CancellationToken) -> Result<()> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.0.elapsed() >= READ_TIMEOUT {
            return Err(download_error(
                url,
                format!("no data for {} s", READ_TIMEOUT.as_secs()),
            ));
        }
        Ok(())
    }
}

/// What [`receive`] did.
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes now in the staged file (the kept prefix plus the body).
    pub end: u64,
    /// How it ended: `Ok` when the body was complete as announced.
    pub outcome: Result<()>,
}

/// Moves the body of `what` into `staged` from `resp.offset` (the file is cut there
/// first), accepting at most `size` bytes in the file. `progress` is told
/// the staged end in [`REPORT_BYTES`] steps and at the end; the caller's
/// hashing thread follows it. Blocking: run it on a blocking thread.
pub(crate) fn receive(
    url: &Url,
    what: &str,
    resp: Response,
    staged: &Path,
    size: u64,
    cancel: &CancellationToken,
    mut progress: impl FnMut(u64),
) -> Result<Received> {
    let ioerr = |e: std::io::Error| Error::io(staged, e);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(staged)
        .map_err(ioerr)?;
    file.set_len(resp.offset).map_err(ioerr)?;
    let (rd, wr) =
        pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::io(staged, e.into()))?;
    let cap = fcntl_setpipe_size(&wr, PIPE_BYTES).unwrap_or(64 << 10);

    let mut pos = resp.offset;
    let body_end = resp.offset.saturating_add(resp.length);
    let mut reported = pos;
    progress(pos);
    let too_big = |actual| Error::SizeMismatch {
        what: what.to_owned(),
        expected: size,
        actual,
    };
    let outcome = (|| -> Result<()> {
        // Accept one byte past the expected size so an over-long body is
        // seen as such without storing much of it.
        let limit = body_end.min(size.saturating_add(1));
        let early = &resp.early[..resp.early.len().min((limit - pos) as usize)];
        file.write_all_at(early, pos).map_err(ioerr)?;
        pos += early.len() as u64;
        let mut idle = Idle::new();
        while pos < limit {
            if pos > size {
                break;
            }
            let want = cap.min((limit - pos) as usize);
            let n = match splice(&resp.sock, None, &wr, None, want, SpliceFlags::MOVE) {
                Ok(0) => {
                    return Err(download_error(
                        url,
                        format!(
                            "connection closed after {} of {} body bytes",
                            pos - resp.offset,
                            resp.length
                        ),
                    ));
                }
                Ok(n) => n,
                Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => {
                    idle.check(url, cancel)?;
                    continue;
                }
                Err(e) => return Err(download_error(url, std::io::Error::from(e))),
            };
            idle.reset();
            let mut left = n;
            while left > 0 {
                let mut off = pos;
                let m = splice(&rd, None, &file, Some(&mut off), left, SpliceFlags::MOVE)
                    .map_err(|e| Error::io(staged, e.into()))?;
                if m == 0 {
                    return Err(Error::io(
                        staged,
                        std::io::Error::other("splice into the file wrote nothing"),
                    ));
                }
                left -= m;
                pos += m as u64;
            }
            if pos - reported >= REPORT_BYTES {
                progress(pos);
                reported = pos;
            }
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
        }
        if pos > size {
            return Err(too_big(pos));
        }
        file.sync_data().map_err(ioerr)
    })();
    if pos != reported {
        progress(pos);
    }
    Ok(Received { end: pos, outcome })
}

/// Hashes `staged` from its start while another thread writes it: each
/// value received is how far the file is written; stops when the sender is
/// gone and returns the digest of everything up to the last value.
pub(crate) fn hash_following(staged: &Path, rx: mpsc::Receiver<u64>) -> Result<(Sha256, u64)> {
    let mut hasher = Hasher::new();
    let mut done = 0u64;
    let mut file: Option<File> = None;
    let mut buf = vec![0u8; HASH_BUF];
    while let Ok(mut upto) = rx.recv() {
        // Catch up with whatever else has been reported meanwhile.
        while let Ok(u) = rx.try_recv() {
            upto = u;
        }
        if upto < done {
            // The file was cut (a server that ignored Range): start over.
            hasher = Hasher::new();
            done = 0;
        }
        while done < upto {
            let f = match &file {
                Some(f) => f,
                None => file.insert(File::open(staged).map_err(|e| Error::io(staged, e))?),
            };
            let want = buf.len().min((upto - done) as usize);
            let n = f
                .read_at(&mut buf[..want], done)
                .map_err(|e| Error::io(staged, e))?;
            if n == 0 {
                return Err(Error::io(
                    staged,
                    std::io::Error::other("staged file shorter than written"),
                ));
            }
            hasher.update(&buf[..n]);
            done += n as u64;
        }
    }
    Ok((hasher.finish(), done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn plain_200_is_spliced() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\nbody");
        assert_eq!(h.content_length, Some(42));
        assert_eq!(
            plan(&h, 0),
            Ok(Plan::Body {
                offset: 0,
                length: 42
            })
        );
        // A server that ignores Range sends the whole file from 0.
        assert_eq!(
            plan(&h, 10),
            Ok(Plan::Body {
                offset: 0,
                length: 42
            })
        );
    }

    #[test]
    fn head_length_excludes_the_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
        let (_, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(&raw[used..], b"body");
    }

    #[test]
    fn partial_content_must_start_where_asked() {
        let h = head(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-199/200\r\nContent-Length: 100\r\n\r\n",
        );
        assert_eq!(
            plan(&h, 100),
            Ok(Plan::Body {
                offset: 100,
                length: 100
            })
        );
        assert!(matches!(plan(&h, 50), Ok(Plan::Unusual(_))));
        assert!(matches!(plan(&h, 0), Ok(Plan::Unusual(_))));
    }

    #[test]
    fn unusual_answers_fall_back() {
        for raw in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n",
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(matches!(plan(&head(raw), 0), Ok(Plan::Unusual(_))), "{raw}");
        }
    }

    #[test]
    fn server_errors_are_errors() {
        let h = head("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(plan(&h, 0), Err("HTTP 500 Internal Server Error".into()));
        let h = head("HTTP/1.1 404 Not Found\r\n\r\n");
        assert!(plan(&h, 0).unwrap_err().contains("404"));
    }

    #[test]
    fn incomplete_and_garbage_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"\x00\x01 not http\r\n\r\n").is_err());
    }

    #[test]
    fn hashing_follows_a_growing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (tx, rx) = mpsc::channel();
        for upto in [0, 10, 1_500_000, 3_000_000] {
            tx.send(upto).unwrap();
        }
        drop(tx);
        let (digest, n) = hash_following(&path, rx).unwrap();
        assert_eq!((digest, n), (Sha256::of(&data), 3_000_000));
    }

    #[test]
    fn hashing_restarts_when_the_file_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (tx, rx) = mpsc::channel();
        tx.send(3).unwrap();
        let t = std::thread::spawn(move || hash_following(&path, rx));
        // Give the thread the first value on its own before the cut.
        std::thread::yield_now();
        tx.send(2).unwrap();
        drop(tx);
        let (digest, n) = t.join().unwrap().unwrap();
        // Whether or not it saw 3 first, the answer covers exactly 2 bytes.
        assert_eq!((digest, n), (Sha256::of(b"ab"), 2));
    }

    proptest! {
        #[test]
        fn head_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Some((h, used))) = parse_head(&bytes) {
                prop_assert!(used <= bytes.len());
                let _ = plan(&h, 7);
            }
        }

        #[test]
        fn head_parser_reads_any_content_length(n in any::<u64>(), status in 100u16..600) {
            let raw = format!("HTTP/1.1 {status} X\r\ncontent-length: {n}\r\n\r\n");
            let (h, used) = parse_head(raw.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(used, raw.len());
            prop_assert_eq!(h.content_length, Some(n));
            prop_assert_eq!(h.status, status);
        }
    }
}
