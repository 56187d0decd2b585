//! A signed simplestreams mirror for the image tests: GnuPG keys,
//! python-simplestreams' `json2streams`, loopback HTTP servers (one of
//! them slow, so an import lasts long enough to watch) and the multipart
//! POST MAAS's boot-source form takes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{venv_bin, wait_for};

/// A program from the test virtualenv or PATH; missing → fail naming the package.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let mut dirs = Vec::new();
    if let Ok(bin) = venv_bin() {
        dirs.push(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(["/usr/bin", "/usr/sbin", "/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found: install {package} (scripts/deps/import.*, scripts/install-deps.sh)")
        })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GNUPGHOME with one signing key; its agent is stopped on drop.
#[derive(Debug)]
pub struct Gpg {
    /// The GNUPGHOME.
    pub home: tempfile::TempDir,
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpg {
    pub fn new() -> Gpg {
        // Short path: gpg-agent's socket path has a length limit.
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let g = Gpg { home };
        g.run(&[
            "--quick-gen-key",
            "Import test <import@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        g
    }

    pub fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(tool("gpg", "the Debian package gnupg"))
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
            .expect("running gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
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

/// Deterministic bytes.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    maas_images::Sha256::of(data).to_hex()
}

/// Writes `streams/v1/` for `items` under `dir` with python-simplestreams'
/// `json2streams`, then clearsigns every document with `gpg` (the index
/// pointing at the signed `.sjson` files), as a signed MAAS mirror is.
pub fn publish_signed_streams(dir: &Path, items: &Value, gpg: &Gpg) {
    let items_path = dir.join("items.json");
    std::fs::write(&items_path, items.to_string()).unwrap();
    let out = Command::new(tool(
        "json2streams",
        "the PyPI package python-simplestreams",
    ))
    .arg(&items_path)
    .arg(dir)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "json2streams: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&items_path).unwrap();
    for e in std::fs::read_dir(dir.join("streams/v1")).unwrap() {
        let doc = e.unwrap().path();
        if doc.extension().is_none_or(|x| x != "json") {
            continue;
        }
        if doc.ends_with("index.json") {
            let text = std::fs::read_to_string(&doc)
                .unwrap()
                .replace(".json\"", ".sjson\"");
            std::fs::write(&doc, text).unwrap();
        }
        let signed = doc.with_extension("sjson");
        gpg.run(&[
            "--clearsign",
            "--output",
            signed.to_str().unwrap(),
            doc.to_str().unwrap(),
        ]);
        std::fs::remove_file(&doc).unwrap();
    }
}

/// Python's `http.server` serving a directory on loopback; killed on drop.
#[derive(Debug)]
pub struct HttpServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl HttpServer {
    pub fn start(root: &Path) -> HttpServer {
        let port = free_port();
        let child = Command::new(tool("python3", "the Debian package python3"))
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(root)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let s = HttpServer { child, port };
        wait_for("the mirror's HTTP server", 20, || {
            TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
        });
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A multipart/form-data POST (files as MAAS's forms take them).
pub fn multipart_post(addr: &str, key: &str, path: &str, fields: &[(&str, &[u8])]) -> (u16, Value) {
    let boundary = "maasrsboundary7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    crate::api_request(
        addr,
        key,
        "POST",
        path,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    )
}

/// A clearsigned mirror a test adds versions to: items go through
/// python-simplestreams' `json2streams`, documents are signed with GnuPG.
#[derive(Debug)]
pub struct Streams {
    /// The mirror's root.
    pub dir: tempfile::TempDir,
    /// The signing key, exported.
    pub keyring: PathBuf,
    /// The items published so far.
    pub items: Vec<Value>,
}

/// `len` bytes, fast to make for several MiB: a 64 KiB block repeated.
pub fn big(seed: u64, len: usize) -> Vec<u8> {
    let block = content(seed, 64 << 10);
    let mut data = block.repeat(len / block.len() + 1);
    data.truncate(len);
    data
}

impl Streams {
    pub fn new(gpg: &Gpg) -> Streams {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.gpg");
        std::fs::write(&keyring, gpg.run(&["--export"])).unwrap();
        Streams {
            dir,
            keyring,
            items: Vec::new(),
        }
    }

    /// Adds build `serial` of Ubuntu `release` (`version`, e.g. 24.04) for
    /// amd64: product ga (and hwe with `hwe`), each with its own kernel and
    /// initrd of `kernel_len` bytes, and one squashfs both share (one path,
    /// one digest, as on images.maas.io). Returns the files by
    /// `<subarch>/<item>` and `squashfs`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        release: &str,
        version: &str,
        serial: &str,
        seed: u64,
        kernel_len: usize,
        squash_len: usize,
        hwe: bool,
    ) -> BTreeMap<String, Vec<u8>> {
        let base = format!("{release}/amd64/{serial}");
        let squashfs = big(seed, squash_len);
        let mut out = BTreeMap::new();
        let subarches: Vec<String> = std::iter::once(format!("ga-{version}"))
            .chain(hwe.then(|| format!("hwe-{version}")))
            .collect();
        for (n, sub) in subarches.iter().enumerate() {
            let kind = sub.split('-').next().unwrap().to_owned();
            for (m, item) in ["boot-kernel", "boot-initrd"].into_iter().enumerate() {
                let data = big(seed * 10 + (n * 2 + m) as u64 + 1, kernel_len);
                let path = format!("{base}/{sub}/generic/{item}");
                self.item(release, version, serial, sub, item, &path, &data);
                out.insert(format!("{kind}/{item}"), data);
            }
            let path = format!("{base}/squashfs");
            self.item(release, version, serial, sub, "squashfs", &path, &squashfs);
        }
        out.insert("squashfs".into(), squashfs);
        out
    }

    #[allow(clippy::too_many_arguments)]
    pub fn item(
        &mut self,
        release: &str,
        version: &str,
        serial: &str,
        subarch: &str,
        name: &str,
        path: &str,
        data: &[u8],
    ) {
        let file = self.dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, data).unwrap();
        self.items.push(json!({
            "content_id": "com.ubuntu.maas:stable:v3:download",
            "product_name": format!("com.ubuntu.maas.stable:v3:boot:{version}:amd64:{subarch}"),
            "version_name": serial, "item_name": name, "ftype": name,
            "path": path, "sha256": sha256_hex(data), "size": data.len(),
            "os": "ubuntu", "release": release, "release_codename": release,
            "release_title": version, "version": version, "arch": "amd64",
            "subarch": subarch, "kflavor": "generic",
            "subarches": format!("generic,{subarch}"), "label": "stable",
        }));
    }

    /// Writes the signed streams for every item added so far.
    pub fn publish(&self, gpg: &Gpg) {
        publish_signed_streams(self.dir.path(), &Value::Array(self.items.clone()), gpg);
    }
}

/// A loopback HTTP server that sends files over 1 MiB at `rate` bytes per
/// second per connection (documents at full speed), so an import lasts long
/// enough to watch without huge files. Threads end with the test process.
#[derive(Debug)]
pub struct SlowServer {
    /// Its loopback port.
    pub port: u16,
}

impl SlowServer {
    pub fn start(root: PathBuf, rate: u64) -> SlowServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || {
                    let _ = serve_slowly(conn, &root, rate);
                });
            }
        });
        SlowServer { port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

fn serve_slowly(mut conn: TcpStream, root: &Path, rate: u64) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let rel = path.trim_start_matches('/');
    let data = if rel.split('/').any(|p| p == "..") {
        None
    } else {
        std::fs::read(root.join(rel)).ok()
    };
    let Some(data) = data else {
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        data.len()
    )?;
    if method == "HEAD" {
        return Ok(());
    }
    if data.len() <= 1 << 20 {
        return conn.write_all(&data);
    }
    let chunk = 64 << 10;
    let pause = Duration::from_secs_f64(chunk as f64 / rate as f64);
    for part in data.chunks(chunk) {
        conn.write_all(part)?;
        std::thread::sleep(pause);
    }
    Ok(())
}
