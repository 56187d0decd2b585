//! Boot-image import through `maasd`, as MAAS does it: python-libmaas
//! configures a boot source (keyring bytes) and a selection on a
//! simplestreams mirror built by python-simplestreams' `json2streams`,
//! signed by GnuPG and served by Python's `http.server` on loopback; it
//! starts the import and waits for `is_importing` to fall. Then
//! `boot-resources/` lists what the store holds, and the in-process rack
//! serves the imported kernel and initrd (config over TFTP with curl,
//! files over HTTP boot). A tampered mirror fails the import with a clear
//! event and lists nothing. On SQLite and PostgreSQL.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use maas_e2e::{Maasd, Postgres, api_call as api, maasd_binary, venv_bin, wait_for};
use serde_json::{Value, json};

/// A program from the test virtualenv or PATH; missing → fail naming the package.
fn tool(name: &str, package: &str) -> PathBuf {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GNUPGHOME with one signing key; its agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
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

    fn run(&self, args: &[&str]) -> Vec<u8> {
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
fn content(seed: u64, len: usize) -> Vec<u8> {
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

fn sha256_hex(data: &[u8]) -> String {
    maas_images::Sha256::of(data).to_hex()
}

const SERIAL: &str = "20251120";

/// A clearsigned MAAS v3 mirror: noble amd64 ga-24.04 (kernel, initrd,
/// squashfs) and noble arm64, which the selection leaves out.
struct Mirror {
    dir: tempfile::TempDir,
    keyring: PathBuf,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    squashfs: Vec<u8>,
}

impl Mirror {
    fn build(gpg: &Gpg) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let (kernel, initrd, squashfs) = (
            content(1, 64 << 10),
            content(2, 96 << 10),
            content(3, 256 << 10),
        );
        let arm = content(4, 1000);
        let base = format!("noble/amd64/{SERIAL}");
        let files: Vec<(String, &[u8])> = vec![
            (format!("{base}/ga-24.04/generic/boot-kernel"), &kernel),
            (format!("{base}/ga-24.04/generic/boot-initrd"), &initrd),
            (format!("{base}/squashfs"), &squashfs),
            (
                format!("noble/arm64/{SERIAL}/ga-24.04/generic/boot-kernel"),
                &arm,
            ),
            (
                format!("noble/arm64/{SERIAL}/ga-24.04/generic/boot-initrd"),
                &arm,
            ),
            (format!("noble/arm64/{SERIAL}/squashfs"), &arm),
        ];
        for (p, data) in &files {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let item = |i: usize, arch: &str, name: &str| {
            let (path, data) = &files[i];
            json!({
                "content_id": "com.ubuntu.maas:stable:v3:download",
                "product_name": format!("com.ubuntu.maas.stable:v3:boot:24.04:{arch}:ga-24.04"),
                "version_name": SERIAL, "item_name": name, "ftype": name,
                "path": path, "sha256": sha256_hex(data), "size": data.len(),
                "os": "ubuntu", "release": "noble", "release_codename": "Noble Numbat",
                "release_title": "24.04 LTS", "version": "24.04", "arch": arch,
                "subarch": "ga-24.04", "kflavor": "generic",
                "subarches": "generic,ga-24.04", "label": "stable",
            })
        };
        let items = json!([
            item(0, "amd64", "boot-kernel"),
            item(1, "amd64", "boot-initrd"),
            item(2, "amd64", "squashfs"),
            item(3, "arm64", "boot-kernel"),
            item(4, "arm64", "boot-initrd"),
            item(5, "arm64", "squashfs"),
        ]);
        let items_path = dir.path().join("items.json");
        std::fs::write(&items_path, items.to_string()).unwrap();
        let out = Command::new(tool(
            "json2streams",
            "the PyPI package python-simplestreams",
        ))
        .arg(&items_path)
        .arg(dir.path())
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "json2streams: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&items_path).unwrap();
        // Clearsign every document; the index points at the signed ones.
        let streams = dir.path().join("streams/v1");
        for e in std::fs::read_dir(&streams).unwrap() {
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
        let keyring = dir.path().join("keyring.gpg");
        std::fs::write(&keyring, gpg.run(&["--export"])).unwrap();
        Mirror {
            dir,
            keyring,
            kernel,
            initrd,
            squashfs,
        }
    }

    /// Changes a signed products document without re-signing it: the
    /// kernel's digest points at other bytes.
    fn tamper(&self) {
        let streams = self.dir.path().join("streams/v1");
        let doc = std::fs::read_dir(&streams)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "sjson") && !p.ends_with("index.sjson"))
            .expect("a products document");
        let text = std::fs::read_to_string(&doc).unwrap();
        let real = sha256_hex(&self.kernel);
        assert!(text.contains(&real));
        std::fs::write(&doc, text.replace(&real, &sha256_hex(b"evil kernel"))).unwrap();
    }
}

/// Python's `http.server` serving a directory on loopback; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(root: &Path) -> HttpServer {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raw bytes of `url` (HTTP or TFTP) with curl.
fn curl(url: &str) -> Vec<u8> {
    let out = Command::new(tool("curl", "the Debian package curl"))
        .args(["-sS", "--fail", "--max-time", "20", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

struct Rig {
    maasd: Maasd,
    key: String,
    tftp_port: u16,
    http_port: u16,
}

fn start_maasd(database_url: Option<&str>) -> Rig {
    let (tftp_port, http_port) = (free_udp_port(), free_port());
    let config = format!(
        "[rack]\naddress = \"127.0.0.1\"\ndhcp_port = 0\ntftp_port = {tftp_port}\nhttp_port = {http_port}\n"
    );
    let maasd =
        Maasd::start_configured(&maasd_binary().unwrap(), database_url, Some(&config)).unwrap();
    let key = maasd.admin_key("admin", "pw").unwrap();
    Rig {
        maasd,
        key,
        tftp_port,
        http_port,
    }
}

/// The libmaas session; returns the boot resources it printed.
fn libmaas_import(rig: &Rig, mirror: &Mirror, server: &HttpServer) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/boot_import.py");
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(script)
        .env("MAAS_URL", rig.maasd.url())
        .env("MAAS_KEY", &rig.key)
        .env("MIRROR_URL", server.url())
        .env("KEYRING", &mirror.keyring)
        .env("RELEASE", "noble")
        .env("ARCH", "amd64")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "libmaas import session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

fn import_and_serve(database_url: Option<&str>) {
    let gpg = Gpg::new();
    let mirror = Mirror::build(&gpg);
    let server = HttpServer::start(mirror.dir.path());
    let rig = start_maasd(database_url);

    let resources = libmaas_import(&rig, &mirror, &server);
    let list = resources.as_array().unwrap();
    // The import's one product (amd64 only, as selected), then the upload.
    assert_eq!(
        list.len(),
        2,
        "only the selected amd64 product: {resources}"
    );
    let up = &list[1];
    assert_eq!(
        (&up["type"], &up["name"], &up["architecture"]),
        (
            &json!("Uploaded"),
            &json!("custom/lab-image"),
            &json!("amd64/generic")
        )
    );
    let sha = up["sha256"].as_str().unwrap();
    let stored = rig
        .maasd
        .data_dir
        .path()
        .join("images/images")
        .join(&sha[..2])
        .join(sha);
    assert!(stored.is_file(), "upload promoted into the store");
    let r = &list[0];
    assert_eq!(r["type"], "Synced");
    assert_eq!(r["name"], "ubuntu/noble");
    assert_eq!(r["architecture"], "amd64/ga-24.04");
    assert_eq!(r["subarches"], "generic,ga-24.04");
    let set = &r["sets"][SERIAL];
    assert_eq!(set["complete"], true, "{r}");
    assert_eq!(set["label"], "stable");
    let total = mirror.kernel.len() + mirror.initrd.len() + mirror.squashfs.len();
    assert_eq!(set["size"], total);
    for (name, data) in [
        ("boot-kernel", &mirror.kernel),
        ("boot-initrd", &mirror.initrd),
        ("squashfs", &mirror.squashfs),
    ] {
        let f = &set["files"][name];
        assert_eq!(f["sha256"], sha256_hex(data), "{name}: {r}");
        assert_eq!(f["size"], data.len(), "{name}");
        assert_eq!(f["complete"], true, "{name}");
    }

    // An INFO event records the import.
    let (st, evs) = api(
        &rig.maasd.addr,
        &rig.key,
        "GET",
        "/MAAS/api/2.0/events/?op=query&level=INFO",
        "",
    );
    assert_eq!(st, 200, "{evs}");
    assert!(
        evs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Imported boot resources"))),
        "{evs}"
    );

    // The rack boots the commissioning release for enlistment: point it at
    // the imported one, as an operator does after importing (MAAS's default
    // setting names a release this mirror does not carry).
    let (st, body) = api(
        &rig.maasd.addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/maas/?op=set_config",
        "name=commissioning_distro_series&value=noble",
    );
    assert_eq!(st, 200, "{body}");

    // The rack serves it: the enlistment config of an unknown MAC (noble,
    // ga-24.04) names the imported kernel and initrd, over TFTP and HTTP.
    let cfg_path = "pxelinux.cfg/01-52-54-00-12-34-56";
    let cfg = String::from_utf8(curl(&format!(
        "tftp://127.0.0.1:{}/{cfg_path}",
        rig.tftp_port
    )))
    .unwrap();
    let http_cfg = curl(&format!("http://127.0.0.1:{}/{cfg_path}", rig.http_port));
    assert_eq!(http_cfg, cfg.as_bytes());
    let amd64 = cfg
        .split("LABEL ")
        .find(|l| l.starts_with("amd64"))
        .unwrap_or_else(|| panic!("no amd64 label: {cfg}"));
    let path_of = |keyword: &str| -> String {
        let line = amd64
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(keyword))
            .unwrap_or_else(|| panic!("no {keyword} in {amd64}"));
        let at = line.find("/images/").expect("an /images/ URL");
        line[at..].trim().to_owned()
    };
    for (keyword, data) in [("KERNEL ", &mirror.kernel), ("INITRD ", &mirror.initrd)] {
        let path = path_of(keyword);
        assert!(path.contains(&sha256_hex(data)), "{keyword}{path}");
        let got = curl(&format!("http://127.0.0.1:{}{path}", rig.http_port));
        assert!(
            got == **data,
            "{keyword} over HTTP boot differs from the mirror's"
        );
    }
    assert!(
        amd64.contains(&sha256_hex(&mirror.squashfs)),
        "root=squash: names the imported squashfs: {amd64}"
    );

    // A second import finds everything in place: same resource, same id.
    let (st, v) = api(
        &rig.maasd.addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/boot-resources/?op=import",
        "",
    );
    assert_eq!(st, 200, "{v}");
    wait_idle(&rig);
    let (st, again) = api(
        &rig.maasd.addr,
        &rig.key,
        "GET",
        "/MAAS/api/2.0/boot-resources/",
        "",
    );
    assert_eq!(st, 200);
    let synced: Vec<&Value> = again
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["type"] == "Synced")
        .collect();
    assert_eq!(synced.len(), 1, "{again}");
    assert_eq!(synced[0]["id"], r["id"]);
}

fn wait_idle(rig: &Rig) {
    wait_for("is_importing to fall", 60, || {
        let (st, v) = api(
            &rig.maasd.addr,
            &rig.key,
            "GET",
            "/MAAS/api/2.0/boot-resources/?op=is_importing",
            "",
        );
        assert_eq!(st, 200, "{v}");
        (v == json!(false)).then_some(())
    });
}

#[test]
fn libmaas_imports_a_signed_mirror_and_the_rack_serves_it_on_sqlite() {
    import_and_serve(None);
}

#[test]
fn libmaas_imports_a_signed_mirror_and_the_rack_serves_it_on_postgres() {
    let pg = Postgres::start().unwrap();
    import_and_serve(Some(&pg.url()));
}

/// A products document changed after signing: the import fails with an
/// ERROR event naming the signature, and nothing is listed or stored.
#[test]
fn tampered_mirror_fails_the_import_and_lists_nothing() {
    let gpg = Gpg::new();
    let mirror = Mirror::build(&gpg);
    mirror.tamper();
    let server = HttpServer::start(mirror.dir.path());
    let rig = start_maasd(None);
    let addr = rig.maasd.addr.clone();
    let keyring = std::fs::read(&mirror.keyring).unwrap();
    // The keyring as an armoured-free base64 form field would be text;
    // MAAS takes the file itself, so send it as multipart.
    let (st, v) = multipart_post(
        &addr,
        &rig.key,
        "/MAAS/api/2.0/boot-sources/",
        &[("url", server.url().as_bytes()), ("keyring_data", &keyring)],
    );
    assert_eq!(st, 201, "{v}");
    let sid = v["id"].as_i64().unwrap();
    let (st, v) = api(
        &addr,
        &rig.key,
        "POST",
        &format!("/MAAS/api/2.0/boot-sources/{sid}/selections/"),
        "os=ubuntu&release=noble&arches=amd64",
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = api(
        &addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/boot-resources/?op=import",
        "",
    );
    assert_eq!(
        (st, v.as_str()),
        (200, Some("Import of boot resources started"))
    );
    wait_idle(&rig);

    let (_, list) = api(&addr, &rig.key, "GET", "/MAAS/api/2.0/boot-resources/", "");
    assert_eq!(list, json!([]), "nothing listed after a failed import");
    let (_, evs) = api(
        &addr,
        &rig.key,
        "GET",
        "/MAAS/api/2.0/events/?op=query&level=ERROR",
        "",
    );
    let failure = evs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["description"].as_str())
        .find(|d| d.starts_with("Importing boot resources failed"))
        .unwrap_or_else(|| panic!("no failure event: {evs}"))
        .to_owned();
    assert!(failure.contains("signature"), "{failure}");
    // Nothing reached the store: no content file, no catalog entry.
    let images = rig.maasd.data_dir.path().join("images/images");
    let stored = std::fs::read_dir(&images).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "files under {}", images.display());
    // The rack has nothing imported to serve for noble.
    let cfg = String::from_utf8(curl(&format!(
        "http://127.0.0.1:{}/pxelinux.cfg/01-52-54-00-12-34-57",
        rig.http_port
    )))
    .unwrap();
    assert!(!cfg.contains(&sha256_hex(&mirror.kernel)), "{cfg}");
}

/// A multipart/form-data POST (files as MAAS's forms take them).
fn multipart_post(addr: &str, key: &str, path: &str, fields: &[(&str, &[u8])]) -> (u16, Value) {
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
    let p: Vec<&str> = key.split(':').collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let auth = format!(
        "OAuth oauth_nonce=\"m{}\", oauth_timestamp=\"{}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
        now.as_nanos(),
        now.as_secs(),
        p[0],
        p[1],
        p[2]
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| json!(body)),
    )
}

/// A mirror that accepts connections and never answers keeps the import
/// running; `op=stop_import` cancels it, `is_importing` falls, an ERROR
/// event says it was stopped and nothing is listed.
#[test]
fn stop_import_cancels_a_running_import() {
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Held open, never answered, until the test process exits.
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            held.push(s);
        }
    });
    let rig = start_maasd(None);
    let addr = rig.maasd.addr.clone();
    let (st, v) = api(
        &addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/boot-sources/",
        &format!("url=http://127.0.0.1:{port}/&skip_keyring_verification=true"),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["skip_keyring_verification"], true);
    let sid = v["id"].as_i64().unwrap();
    let (st, v) = api(
        &addr,
        &rig.key,
        "POST",
        &format!("/MAAS/api/2.0/boot-sources/{sid}/selections/"),
        "os=ubuntu&release=noble",
    );
    assert_eq!(st, 201, "{v}");
    let is_importing = || {
        api(
            &addr,
            &rig.key,
            "GET",
            "/MAAS/api/2.0/boot-resources/?op=is_importing",
            "",
        )
        .1
    };
    assert_eq!(is_importing(), json!(false));
    let (st, _) = api(
        &addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/boot-resources/?op=import",
        "",
    );
    assert_eq!(st, 200);
    assert_eq!(is_importing(), json!(true));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(is_importing(), json!(true), "still waiting on the mirror");
    let (st, v) = api(
        &addr,
        &rig.key,
        "POST",
        "/MAAS/api/2.0/boot-resources/?op=stop_import",
        "",
    );
    assert_eq!(st, 200, "{v}");
    wait_idle(&rig);
    let (_, evs) = api(
        &addr,
        &rig.key,
        "GET",
        "/MAAS/api/2.0/events/?op=query&level=ERROR",
        "",
    );
    assert!(
        evs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["description"] == "Importing boot resources failed: import stopped"),
        "{evs}"
    );
    let (_, list) = api(&addr, &rig.key, "GET", "/MAAS/api/2.0/boot-resources/", "");
    assert_eq!(list, json!([]));
}
