//! Test harness: a GnuPG home with a fresh signing key, mirrors built with
//! python-simplestreams' `json2streams` and signed with `gpg`, and a loopback
//! HTTP server (tower-http's ServeDir, which honours Range) that can inject
//! faults and logs every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use maas_images::{BootSource, KeyringSource, Selection};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

/// Finds a program installed by scripts/install-deps.sh: the venv named by
/// MAAS_RS_VENV, then PATH, then the default venv. Missing → the test fails
/// naming the package to install.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(v) = std::env::var_os("MAAS_RS_VENV") {
        candidates.push(PathBuf::from(v).join("bin").join(name));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/venv-path.sh");
    if let Ok(out) = Command::new(script).output() {
        let venv = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        candidates.push(PathBuf::from(venv).join("bin").join(name));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found: install {package} (scripts/deps/images.*, scripts/install-deps.sh)")
        })
}

/// A GNUPGHOME with one signing key; the agent is stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

impl Gpg {
    pub fn new(uid: &str) -> Result<Self> {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp")?;
        let g = Gpg { home };
        g.run(&["--quick-gen-key", uid, "ed25519", "sign", "never"])?;
        Ok(g)
    }

    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new(tool("gpg", "Debian package gnupg"))
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .context("running gpg")?;
        if !out.status.success() {
            bail!("gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out.stdout)
    }

    /// The public keyring, binary (`gpg --export`) or armoured.
    pub fn export(&self, armor: bool) -> Result<Vec<u8>> {
        if armor {
            self.run(&["--export", "--armor"])
        } else {
            self.run(&["--export"])
        }
    }

    pub fn clearsign(&self, input: &Path, output: &Path) -> Result<()> {
        self.run(&[
            "--clearsign",
            "--output",
            output.to_str().context("path")?,
            input.to_str().context("path")?,
        ])
        .map(drop)
    }

    pub fn detach_sign(&self, input: &Path, output: &Path) -> Result<()> {
        self.run(&[
            "--detach-sign",
            "--output",
            output.to_str().context("path")?,
            input.to_str().context("path")?,
        ])
        .map(drop)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

/// One file of a mirror.
#[derive(Clone, Debug)]
pub struct MirrorFile {
    pub path: String,
    pub data: Vec<u8>,
}

impl MirrorFile {
    pub fn sha256(&self) -> String {
        maas_images::Sha256::of(&self.data).to_hex()
    }
}

/// Deterministic, incompressible-looking content.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How the products/index documents are signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// `.sjson`, clearsigned, index pointing at `.sjson`.
    Clearsigned,
    /// `.json` plus `.json.gpg` detached signatures.
    Detached,
}

/// A MAAS v3-shaped mirror: jammy amd64 ga-22.04 and hwe-22.04 sharing one
/// squashfs, jammy arm64, and a pxelinux bootloader.
pub struct Mirror {
    pub dir: tempfile::TempDir,
    pub files: HashMap<&'static str, MirrorFile>,
}

pub const CONTENT_ID: &str = "com.ubuntu.maas:stable:v3:download";
pub const BL_CONTENT_ID: &str = "com.ubuntu.maas:stable:1:bootloader-download";

impl Mirror {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, key: &str) -> &MirrorFile {
        &self.files[key]
    }

    /// Builds the mirror with `serial` as the version of every boot product.
    pub fn build(gpg: &Gpg, serial: &str, signing: Signing, big: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let seed: u64 = serial.bytes().map(u64::from).sum();
        let f = |path: String, s: u64, len: usize| MirrorFile {
            path,
            data: content(seed * 100 + s, len),
        };
        let mut files = HashMap::new();
        files.insert(
            "ga-kernel",
            f(
                format!("jammy/amd64/{serial}/ga-22.04/generic/boot-kernel"),
                1,
                64 << 10,
            ),
        );
        files.insert(
            "ga-initrd",
            f(
                format!("jammy/amd64/{serial}/ga-22.04/generic/boot-initrd"),
                2,
                96 << 10,
            ),
        );
        files.insert(
            "hwe-kernel",
            f(
                format!("jammy/amd64/{serial}/hwe-22.04/generic/boot-kernel"),
                3,
                64 << 10,
            ),
        );
        files.insert(
            "hwe-initrd",
            f(
                format!("jammy/amd64/{serial}/hwe-22.04/generic/boot-initrd"),
                4,
                96 << 10,
            ),
        );
        files.insert(
            "squashfs",
            f(format!("jammy/amd64/{serial}/squashfs"), 5, big),
        );
        files.insert(
            "manifest",
            f(format!("jammy/amd64/{serial}/squashfs.manifest"), 6, 1000),
        );
        files.insert(
            "arm-kernel",
            f(
                format!("jammy/arm64/{serial}/ga-22.04/generic/boot-kernel"),
                7,
                1000,
            ),
        );
        files.insert(
            "arm-initrd",
            f(
                format!("jammy/arm64/{serial}/ga-22.04/generic/boot-initrd"),
                8,
                1000,
            ),
        );
        files.insert(
            "arm-squashfs",
            f(format!("jammy/arm64/{serial}/squashfs"), 9, 1000),
        );
        files.insert(
            "pxelinux",
            MirrorFile {
                path: "bootloaders/pxe/i386/20210819.0/syslinux.tar.xz".into(),
                data: content(4242, 5000),
            },
        );
        for mf in files.values() {
            let p = dir.path().join(&mf.path);
            std::fs::create_dir_all(p.parent().context("parent")?)?;
            std::fs::write(p, &mf.data)?;
        }

        let boot = |arch: &str, subarch: &str, item: &str, ftype: &str, key: &str| {
            let mf = &files[key];
            json!({
                "content_id": CONTENT_ID,
                "product_name": format!("com.ubuntu.maas.stable:v3:boot:22.04:{arch}:{subarch}"),
                "version_name": serial, "item_name": item, "ftype": ftype,
                "path": mf.path, "sha256": mf.sha256(), "size": mf.data.len(),
                "os": "ubuntu", "release": "jammy", "release_codename": "Jammy Jellyfish",
                "version": "22.04", "arch": arch, "subarch": subarch, "kflavor": "generic",
                "subarches": format!("generic,{subarch}"), "label": "stable",
                "support_eol": "2027-06-01",
            })
        };
        let items = json!([
            boot("amd64", "ga-22.04", "boot-kernel", "boot-kernel", "ga-kernel"),
            boot("amd64", "ga-22.04", "boot-initrd", "boot-initrd", "ga-initrd"),
            boot("amd64", "ga-22.04", "squashfs", "squashfs", "squashfs"),
            boot("amd64", "ga-22.04", "manifest", "squashfs.manifest", "manifest"),
            boot("amd64", "hwe-22.04", "boot-kernel", "boot-kernel", "hwe-kernel"),
            boot("amd64", "hwe-22.04", "boot-initrd", "boot-initrd", "hwe-initrd"),
            boot("amd64", "hwe-22.04", "squashfs", "squashfs", "squashfs"),
            boot("amd64", "hwe-22.04", "manifest", "squashfs.manifest", "manifest"),
            boot("arm64", "ga-22.04", "boot-kernel", "boot-kernel", "arm-kernel"),
            boot("arm64", "ga-22.04", "boot-initrd", "boot-initrd", "arm-initrd"),
            boot("arm64", "ga-22.04", "squashfs", "squashfs", "arm-squashfs"),
            {
                "content_id": BL_CONTENT_ID,
                "product_name": "com.ubuntu.maas.stable:1:pxelinux:pxe:i386",
                "version_name": "20210819.0", "item_name": "syslinux",
                "ftype": "archive.tar.xz", "path": files["pxelinux"].path,
                "sha256": files["pxelinux"].sha256(), "size": files["pxelinux"].data.len(),
                "os": "pxelinux", "arch": "i386", "arches": "i386,amd64",
                "bootloader-type": "pxe", "label": "stable",
                "src_package": "syslinux", "src_release": "bionic", "src_version": "3:6.03",
            },
        ]);
        let items_path = dir.path().join("items.json");
        std::fs::write(&items_path, serde_json::to_vec(&items)?)?;
        let out = Command::new(tool("json2streams", "PyPI package python-simplestreams"))
            .arg(&items_path)
            .arg(dir.path())
            .output()?;
        if !out.status.success() {
            bail!("json2streams: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::remove_file(&items_path)?;

        let streams = dir.path().join("streams/v1");
        let mut docs: Vec<PathBuf> = std::fs::read_dir(&streams)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        docs.sort();
        for doc in &docs {
            match signing {
                Signing::Clearsigned => {
                    if doc.ends_with("index.json") {
                        // The index must point at the signed product files.
                        let text = std::fs::read_to_string(doc)?.replace(".json\"", ".sjson\"");
                        std::fs::write(doc, text)?;
                    }
                    gpg.clearsign(doc, &doc.with_extension("sjson"))?;
                    std::fs::remove_file(doc)?;
                }
                Signing::Detached => {
                    let mut sig = doc.clone().into_os_string();
                    sig.push(".gpg");
                    gpg.detach_sign(doc, Path::new(&sig))?;
                }
            }
        }
        Ok(Mirror { dir, files })
    }

    /// The index document's path.
    pub fn index_path(&self, signing: Signing) -> PathBuf {
        self.root().join(match signing {
            Signing::Clearsigned => "streams/v1/index.sjson",
            Signing::Detached => "streams/v1/index.json",
        })
    }

    /// The boot products document's path (clearsigned mirrors).
    pub fn products_sjson(&self) -> PathBuf {
        self.root().join(format!("streams/v1/{CONTENT_ID}.sjson"))
    }
}

/// A fault the server injects for one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer 500 Internal Server Error.
    Status500,
    /// Announce the full length, send `n` bytes, then abort the connection.
    AbortAfter(usize),
    /// Send only the first `n` bytes as a complete (shorter) response.
    Truncate(usize),
    /// Flip one byte in the middle.
    Corrupt,
    /// Append bytes the stream did not announce.
    Extend(usize),
    /// Send the whole body without a length (chunked encoding).
    Chunked,
    /// Announce the full length, send `n` bytes, then send nothing more
    /// (the connection stays open).
    StallAfter(usize),
}

#[derive(Default)]
pub struct ServerState {
    pub faults: Mutex<HashMap<String, Fault>>,
    /// (path, Range header) of every request.
    pub log: Mutex<Vec<(String, Option<String>)>>,
}

/// A loopback HTTP mirror server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    cancel: CancellationToken,
}

impl Server {
    pub async fn start(root: &Path) -> Result<Self> {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .fallback_service(ServeDir::new(root))
            .layer(middleware::from_fn_with_state(state.clone(), faults))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(c.cancelled_owned())
                .await;
        });
        Ok(Server {
            addr,
            state,
            cancel,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn fault(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .insert(format!("/{path}"), fault);
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    /// Requests for `path` so far, with their Range headers.
    pub fn requests_for(&self, path: &str) -> Vec<Option<String>> {
        let want = format!("/{path}");
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == want)
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn faults(State(state): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.log.lock().unwrap().push((path.clone(), range));
    let fault = state.faults.lock().unwrap().get(&path).cloned();
    let Some(fault) = fault else {
        return next.run(req).await;
    };
    if let Fault::Status500 = fault {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // Fetch the real body (always whole: faults ignore Range), then damage it.
    let mut inner = Request::new(Body::empty());
    *inner.uri_mut() = req.uri().clone();
    let resp = next.run(inner).await;
    let data = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default()
        .to_vec();
    match fault {
        Fault::Status500 => unreachable!(),
        Fault::Truncate(n) => data[..n.min(data.len())].to_vec().into_response(),
        Fault::Corrupt => {
            let mut d = data;
            let mid = d.len() / 2;
            d[mid] ^= 0xff;
            d.into_response()
        }
        Fault::Extend(n) => {
            let mut d = data;
            d.extend(std::iter::repeat_n(0u8, n));
            d.into_response()
        }
        Fault::Chunked => {
            let body = bytes::Bytes::from(data);
            Response::new(Body::from_stream(futures::stream::iter([Ok::<
                _,
                std::io::Error,
            >(
                body
            )])))
        }
        Fault::StallAfter(n) => {
            let len = data.len();
            let head = bytes::Bytes::from(data[..n.min(len)].to_vec());
            let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(head)])
                .chain(futures::stream::pending());
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
        Fault::AbortAfter(n) => {
            let len = data.len();
            let head = bytes::Bytes::from(data[..n.min(len)].to_vec());
            // Let the head reach the client before the connection dies (hyper
            // drops unflushed data when a body fails).
            let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(head)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Err(std::io::Error::other("server died mid-file"))
                }),
            );
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
    }
}

/// A source for the mirror at `url` with the given keyring, selecting jammy amd64.
pub fn source(url: &str, keyring: Vec<u8>) -> BootSource {
    let mut s = BootSource::new(
        url.parse().expect("mirror URL"),
        KeyringSource::Data(keyring),
    );
    s.selections
        .push(Selection::new("ubuntu", "jammy", &["amd64"]));
    s
}
