//! Helpers for the hardening tests (`tests/tests/harden_*.rs`): a raw
//! HTTP/1.1 client that can send malformed requests, OAuth 1.0 PLAINTEXT
//! signing as python-libmaas does it, a small thread pool to run requests
//! concurrently, and `maasd` started with extra flags and its log captured.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::Maasd;

/// How to start `maasd` for a hardening test.
#[derive(Debug, Default, Clone)]
pub struct StartOpts {
    /// `--database-url` (PostgreSQL); SQLite in the data dir when `None`.
    pub database_url: Option<String>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
    /// `RUST_LOG` (default `warn`).
    pub log_filter: Option<String>,
    /// Where stderr (the log) goes; inherited when `None`.
    pub log_file: Option<PathBuf>,
}

impl Maasd {
    /// Starts `binary serve` with `opts` and waits (at most 30 s) until it
    /// accepts connections.
    pub fn start_opts(binary: &Path, opts: &StartOpts) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", &addr, "--data-dir"])
            .arg(data_dir.path())
            .args(&opts.args)
            .envs(crate::OFFLINE_IMAGES_ENV)
            .env("RUST_LOG", opts.log_filter.as_deref().unwrap_or("warn"))
            .stdout(Stdio::null());
        match &opts.log_file {
            Some(f) => {
                cmd.stderr(std::fs::File::create(f)?);
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        if let Some(u) = &opts.database_url {
            cmd.args(["--database-url", u]);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut m = Self {
            child,
            addr,
            binary: binary.to_owned(),
            data_dir,
            database_url: opts.database_url.clone(),
            config: None,
            env: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(&m.addr).is_ok() {
                return Ok(m);
            }
            if !m.is_alive() {
                bail!("maasd exited before listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("maasd did not listen on {} within 30 s", m.addr)
    }

    /// The server's process id (for a `kill -9` from another thread while
    /// requests are in flight).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Loads machines from a JSON inventory (`maasd load-machines`) and
    /// returns their system ids in order.
    pub fn load_machines(&self, specs: &serde_json::Value) -> anyhow::Result<Vec<String>> {
        let f = self.data_dir.path().join(format!(
            "inventory-{}.json",
            NONCE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&f, specs.to_string())?;
        let f = f.to_str().context("temp path is not UTF-8")?;
        Ok(self
            .manage(&["load-machines", f])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Creates a user through the API (as `admin`) and returns its key.
    pub fn create_user(
        &self,
        admin: &ApiKey,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> anyhow::Result<ApiKey> {
        let c = Client::new(&self.addr, Some(admin.clone()));
        let email = format!("{username}@example.com");
        let r = c.post(
            "/MAAS/api/2.0/users/",
            &[
                ("username", username),
                ("email", email.as_str()),
                ("password", password),
                ("is_superuser", if is_admin { "1" } else { "0" }),
            ],
        )?;
        if !(200..300).contains(&r.status) {
            bail!("creating user {username}: {} {}", r.status, r.text());
        }
        ApiKey::parse(self.manage(&["apikey", "--username", username])?.trim())
    }
}

/// An API key `consumer_key:token_key:token_secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Consumer key.
    pub consumer: String,
    /// Token key.
    pub token: String,
    /// Token secret.
    pub secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Parses `ck:tk:ts`.
    pub fn parse(s: &str) -> anyhow::Result<ApiKey> {
        let mut it = s.trim().split(':');
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(c), Some(t), Some(s), None) => Ok(ApiKey {
                consumer: c.into(),
                token: t.into(),
                secret: s.into(),
            }),
            _ => bail!("not an API key: {s:?}"),
        }
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A nonce never used before by this process.
pub fn nonce() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{}-{t}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The `Authorization` header python-libmaas (oauthlib) sends for `key`.
pub fn oauth_header(key: &ApiKey) -> String {
    format!(
        "OAuth realm=\"OAuth\", oauth_nonce=\"{}\", oauth_timestamp=\"{}\", \
         oauth_consumer_key=\"{}\", oauth_signature_method=\"PLAINTEXT\", \
         oauth_version=\"1.0\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
        nonce(),
        now_secs(),
        pct(&key.consumer),
        pct(&key.token),
        pct(&key.secret)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    pct_bytes(s.as_bytes())
}

/// [`pct`] for raw bytes (which need not be UTF-8).
pub fn pct_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON ({}): {}", self.status, self.text()))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is on a new connection and reads the response (the
/// request should carry `Connection: close`). Fails when the server closes
/// the connection without an answer.
pub fn raw(addr: &str, request: &[u8]) -> anyhow::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut buf = Vec::new();
    let read = std::thread::scope(|scope| {
        // Write while reading: the server may answer (413) and close before
        // it has read a huge body, and the answer must not be lost to the
        // reset that follows.
        scope.spawn(move || {
            let _ = w.write_all(request);
            let _ = w.flush();
        });
        s.read_to_end(&mut buf)
    });
    if buf.is_empty() {
        read?;
        bail!("connection closed without a response");
    }
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> anyhow::Result<Resp> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&buf[..end]).context("non-UTF-8 response head")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_str = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

/// Builds a request: `method target`, the given headers, `Host`,
/// `Connection: close` and `Content-Length` for the body.
pub fn build(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: maas.test\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// An API client for one user (or anonymous).
#[derive(Debug, Clone)]
pub struct Client {
    addr: String,
    key: Option<ApiKey>,
}

impl Client {
    /// A client of the server at `addr` signing with `key` (anonymous when
    /// `None`).
    pub fn new(addr: &str, key: Option<ApiKey>) -> Client {
        Client {
            addr: addr.to_owned(),
            key,
        }
    }

    /// Sends `method target` with an optional form body.
    pub fn call(&self, method: &str, target: &str, body: Option<&str>) -> anyhow::Result<Resp> {
        let auth = self.key.as_ref().map(oauth_header);
        let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let req = build(
            method,
            target,
            &headers,
            body.map(str::as_bytes).unwrap_or_default(),
        );
        raw(&self.addr, &req).with_context(|| format!("{method} {target}"))
    }

    /// GET.
    pub fn get(&self, target: &str) -> anyhow::Result<Resp> {
        self.call("GET", target, None)
    }

    /// POST a form.
    pub fn post(&self, target: &str, pairs: &[(&str, &str)]) -> anyhow::Result<Resp> {
        self.call("POST", target, Some(&form(pairs)))
    }

    /// PUT a form.
    pub fn put(&self, target: &str, pairs: &[(&str, &str)]) -> anyhow::Result<Resp> {
        self.call("PUT", target, Some(&form(pairs)))
    }

    /// DELETE.
    pub fn delete(&self, target: &str) -> anyhow::Result<Resp> {
        self.call("DELETE", target, None)
    }
}

/// Runs `f` over `items` on `threads` threads; results in input order.
pub fn par_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate().collect::<Vec<_>>());
    let out: Arc<Mutex<Vec<Option<R>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).ok().flatten();
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    if let Ok(mut o) = out.lock() {
                        o[i] = Some(r);
                    }
                }
            });
        }
    });
    let mut guard = out
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default();
    guard.drain(..).flatten().collect()
}

/// A machine spec for `load-machines` with unique MACs derived from `n`.
pub fn machine_spec(n: usize, hostname: &str) -> serde_json::Value {
    serde_json::json!({
        "hostname": hostname,
        "cpu_count": 2,
        "memory_mib": 4096,
        "disks": [{"name": "sda", "size": 100_000_000_000u64}],
        "nics": [{"name": "eth0", "mac": format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}",
            (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)}],
    })
}
