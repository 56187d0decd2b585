//! Boot-image import through `maasd`, as MAAS does it: python-libmaas
//! configures a boot source (keyring bytes) and a selection on a
//! simplestreams mirror built by python-simplestreams' `json2streams`,
//! signed by GnuPG and served by Python's `http.server` on loopback; it
//! starts the import and waits for `is_importing` to fall. Then
//! `boot-resources/` lists what the store holds, and the in-process rack
//! serves the imported kernel and initrd (config over TFTP with curl,
//! files over HTTP boot). A tampered mirror fails the import with a clear
//! event and lists nothing. On SQLite and PostgreSQL.
//!
//! The image life-cycle around the import: a mirror served slowly from the
//! test's own loopback server shows its sets incomplete with a growing
//! `progress` until they are complete; selections are validated against
//! what the source offers; DELETE of a resource removes its files from
//! the store unless another resource shares them, and the rack stops
//! serving it; the automatic import runs at start and periodically and
//! picks up a new version; a fresh database has MAAS's default source,
//! which no test contacts.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use maas_e2e::mirror::{
    Gpg, HttpServer, SlowServer, Streams, content, free_port, free_udp_port, multipart_post,
    publish_signed_streams, sha256_hex, tool,
};
use maas_e2e::{Maasd, Postgres, api_call as api, maasd_binary, venv_bin, wait_for};
use serde_json::{Value, json};

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
        publish_signed_streams(dir.path(), &items, gpg);
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

// ------------------------------------------------------------ life cycle

fn start_maasd_env(database_url: Option<&str>, env: &[(&str, &str)]) -> Rig {
    let (tftp_port, http_port) = (free_udp_port(), free_port());
    let config = format!(
        "[rack]\naddress = \"127.0.0.1\"\ndhcp_port = 0\ntftp_port = {tftp_port}\nhttp_port = {http_port}\n"
    );
    let maasd =
        Maasd::start_env(&maasd_binary().unwrap(), database_url, Some(&config), env).unwrap();
    let key = maasd.admin_key("admin", "pw").unwrap();
    Rig {
        maasd,
        key,
        tftp_port,
        http_port,
    }
}

impl Rig {
    fn call(&self, method: &str, path: &str, form: &str) -> (u16, Value) {
        api(&self.maasd.addr, &self.key, method, path, form)
    }

    fn get(&self, path: &str) -> Value {
        let (st, v) = self.call("GET", path, "");
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }

    /// The boot source at `url` (keyring as the file MAAS takes) with one
    /// selection (`selection` as form fields); returns the source id.
    fn configure_source(&self, url: &str, keyring: &Path, selection: &str) -> i64 {
        let (st, v) = multipart_post(
            &self.maasd.addr,
            &self.key,
            "/MAAS/api/2.0/boot-sources/",
            &[
                ("url", url.as_bytes()),
                ("keyring_data", &std::fs::read(keyring).unwrap()),
            ],
        );
        assert_eq!(st, 201, "{v}");
        let sid = v["id"].as_i64().unwrap();
        let (st, v) = self.call(
            "POST",
            &format!("/MAAS/api/2.0/boot-sources/{sid}/selections/"),
            selection,
        );
        assert_eq!(st, 201, "{v}");
        sid
    }

    /// The synced resource `name` `architecture` with its sets, if listed.
    fn resource(&self, name: &str, architecture: &str) -> Option<Value> {
        let list = self.get("/MAAS/api/2.0/boot-resources/");
        let r = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name && r["architecture"] == architecture)?
            .clone();
        let (st, full) = self.call("GET", r["resource_uri"].as_str().unwrap(), "");
        // Deleted between the two requests: not listed.
        (st == 200).then_some(full)
    }

    fn stored(&self, data: &[u8]) -> bool {
        let sha = sha256_hex(data);
        self.maasd
            .data_dir
            .path()
            .join("images/images")
            .join(&sha[..2])
            .join(&sha)
            .is_file()
    }

    /// HTTP status of the rack's HTTP boot for the store file of `data`.
    fn rack_status(&self, data: &[u8]) -> u16 {
        let sha = sha256_hex(data);
        let out = Command::new(tool("curl", "the Debian package curl"))
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .arg(format!(
                "http://127.0.0.1:{}/images/{}/{sha}",
                self.http_port,
                &sha[..2]
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn pxe_config(&self) -> String {
        String::from_utf8(curl(&format!(
            "http://127.0.0.1:{}/pxelinux.cfg/01-52-54-00-12-34-58",
            self.http_port
        )))
        .unwrap()
    }
}

/// python-libmaas reads resource argv[1]'s set argv[2] as a BootResourceSet
/// (its type-checked fields; libmaas does not model `progress`, which it
/// keeps in the object's data).
const LIBMAAS_READ_SET: &str = r#"
import json, os, sys
from maas.client import connect
c = connect(os.environ["MAAS_URL"], apikey=os.environ["MAAS_KEY"])
s = c.boot_resources.get(int(sys.argv[1])).sets[sys.argv[2]]
files = {n: [f.complete, f.size, f.sha256] for n, f in s.files.items()}
print(json.dumps({"complete": s.complete, "size": s.size, "label": s.label,
                  "progress": s._data["progress"], "files": files}))
"#;

fn progress_validation_and_delete(database_url: Option<&str>) {
    let gpg = Gpg::new();
    let mut mirror = Streams::new(&gpg);
    // 3 MiB kernels and initrds, an 8 MiB squashfs, sent at 1.5 MiB/s:
    // about six seconds of import, a progress event every 2 MiB of a file
    // (over a second apart: several readings even on a loaded machine).
    let files = mirror.add("noble", "24.04", SERIAL, 7, 3 << 20, 8 << 20, true);
    mirror.publish(&gpg);
    let server = SlowServer::start(mirror.dir.path().to_owned(), 3 << 19);
    let rig = start_maasd(database_url);
    let sid = rig.configure_source(
        &server.url(),
        &mirror.keyring,
        "os=ubuntu&release=noble&arches=amd64",
    );
    // The rack boots noble for enlistment (checked while importing).
    let (st, v) = rig.call(
        "POST",
        "/MAAS/api/2.0/maas/?op=set_config",
        "name=commissioning_distro_series&value=noble",
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = rig.call("POST", "/MAAS/api/2.0/boot-resources/?op=import", "");
    assert_eq!(st, 200, "{v}");

    // Watch: the ga resource's set while importing, and our own counters.
    let mut sets: Vec<(bool, f64)> = Vec::new();
    let mut counters: Vec<(u64, u64)> = Vec::new();
    let mut libmaas: Option<Child> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let importing = rig.get("/MAAS/api/2.0/boot-resources/?op=is_importing") == json!(true);
        // Read before the set: what the rack booted then was complete then,
        // so shows complete now.
        let cfg = rig.pxe_config();
        if let Some(r) = rig.resource("ubuntu/noble", "amd64/ga-24.04") {
            let set = &r["sets"][SERIAL];
            let progress = set["progress"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&progress), "{set}");
            for (name, f) in set["files"].as_object().unwrap() {
                let p = f["progress"].as_f64().unwrap();
                assert!((0.0..=100.0).contains(&p), "{name}: {f}");
            }
            let complete = set["complete"].as_bool().unwrap();
            if !complete && libmaas.is_none() {
                // python-libmaas reads the set being imported.
                libmaas = Some(
                    Command::new(venv_bin().unwrap().join("python"))
                        .args(["-c", LIBMAAS_READ_SET])
                        .arg(r["id"].to_string())
                        .arg(SERIAL)
                        .env("MAAS_URL", rig.maasd.url())
                        .env("MAAS_KEY", &rig.key)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap(),
                );
            }
            if !complete {
                // The rack boots only complete sets.
                for f in files.values() {
                    assert!(
                        !cfg.contains(&sha256_hex(f)),
                        "incomplete set booted: {cfg}"
                    );
                }
            }
            sets.push((complete, progress));
        }
        let p = rig.get("/MAAS/api/2.0/boot-resources/?op=import_progress");
        if p["importing"] == true && p["phase"] == "downloading" {
            counters.push((
                p["bytes_done"].as_u64().unwrap(),
                p["bytes_total"].as_u64().unwrap(),
            ));
        }
        if !importing {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import still running after 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = libmaas
        .expect("an incomplete set was seen")
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "libmaas: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("python-libmaas read the importing set as {seen}");
    let p = seen["progress"].as_f64().unwrap();
    if seen["complete"] == false {
        assert!((0.0..100.0).contains(&p), "{seen}");
    } else {
        assert_eq!(p, 100.0, "{seen}");
    }
    let incomplete: Vec<f64> = sets.iter().filter(|s| !s.0).map(|s| s.1).collect();
    eprintln!("progress of the incomplete ga set, one read per poll: {incomplete:?}");
    assert!(
        incomplete.windows(2).all(|w| w[0] <= w[1]),
        "progress never falls: {sets:?}"
    );
    let mut distinct = incomplete.clone();
    distinct.dedup();
    assert!(
        distinct.iter().filter(|p| **p > 0.0 && **p < 100.0).count() >= 2,
        "the incomplete set's progress grows below 100: {sets:?}"
    );
    let ga = rig
        .resource("ubuntu/noble", "amd64/ga-24.04")
        .expect("ga listed");
    let set = &ga["sets"][SERIAL];
    assert_eq!(
        (&set["complete"], &set["progress"]),
        (&json!(true), &json!(100.0)),
        "{ga}"
    );
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    assert!(
        counters
            .iter()
            .any(|(done, t)| *t == total && *done > 0 && *done < total),
        "bytes done/total seen mid-import: {counters:?}"
    );
    let p = rig.get("/MAAS/api/2.0/boot-resources/?op=import_progress");
    assert_eq!(p["importing"], false, "{p}");
    assert_eq!(
        (&p["bytes_done"], &p["bytes_total"]),
        (&json!(total), &json!(total)),
        "{p}"
    );
    assert_eq!(
        (&p["files_done"], &p["files_total"]),
        (&json!(5), &json!(5)),
        "{p}"
    );
    assert_eq!(p["last_import"]["ok"], true, "{p}");

    // Selections are checked against what the source offers (MAAS's
    // BootSourceSelectionForm), duplicates refused.
    let selections = format!("/MAAS/api/2.0/boot-sources/{sid}/selections/");
    for (form, field, message) in [
        (
            "os=ubuntu&release=bogus",
            "os",
            "OS ubuntu with release bogus has no available images for download",
        ),
        (
            "os=centos&release=noble",
            "os",
            "OS centos with release noble has no available images for download",
        ),
        (
            "os=ubuntu&release=noble&arches=s390x",
            "arches",
            "No available images to download for ['s390x']",
        ),
        (
            "os=ubuntu&release=noble&arches=amd64&subarches=ga-99.04",
            "subarches",
            "No available images to download for ['ga-99.04']",
        ),
        (
            "os=ubuntu&release=noble&labels=daily",
            "labels",
            "No available images to download for ['daily']",
        ),
        (
            "os=ubuntu&release=noble&arches=amd64",
            "__all__",
            "Boot source selection with this Boot source, Os and Release already exists.",
        ),
    ] {
        let (st, v) = rig.call("POST", &selections, form);
        assert_eq!(st, 400, "{form}: {v}");
        assert_eq!(v, json!({ field: [message] }), "{form}");
    }
    let current = rig.get(&selections);
    assert_eq!(current.as_array().unwrap().len(), 1, "{current}");
    let (st, v) = rig.call(
        "PUT",
        current[0]["resource_uri"].as_str().unwrap(),
        "arches=arm64",
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v,
        json!({"arches": ["No available images to download for ['arm64']"]})
    );
    let (st, v) = rig.call(
        "PUT",
        current[0]["resource_uri"].as_str().unwrap(),
        "subarches=hwe-24.04&subarches=ga-24.04",
    );
    assert_eq!(st, 200, "offered subarches are accepted: {v}");

    // The rack serves both kernels; DELETE hwe: its kernel and initrd leave
    // the store and the rack, the squashfs ga shares stays.
    for f in files.values() {
        assert!(rig.stored(f));
        assert_eq!(rig.rack_status(f), 200);
    }
    let hwe = rig
        .resource("ubuntu/noble", "amd64/hwe-24.04")
        .expect("hwe listed");
    let (st, v) = rig.call("DELETE", hwe["resource_uri"].as_str().unwrap(), "");
    assert_eq!(st, 204, "{v}");
    let (st, _) = rig.call("GET", hwe["resource_uri"].as_str().unwrap(), "");
    assert_eq!(st, 404);
    assert!(rig.resource("ubuntu/noble", "amd64/hwe-24.04").is_none());
    for item in ["hwe/boot-kernel", "hwe/boot-initrd"] {
        assert!(!rig.stored(&files[item]), "{item} removed from the store");
        assert_eq!(
            rig.rack_status(&files[item]),
            404,
            "{item} no longer served"
        );
    }
    for item in ["ga/boot-kernel", "ga/boot-initrd", "squashfs"] {
        assert!(rig.stored(&files[item]), "{item} stays: ga uses it");
        assert_eq!(rig.rack_status(&files[item]), 200, "{item}");
    }
    let cfg = rig.pxe_config();
    assert!(
        cfg.contains(&sha256_hex(&files["ga/boot-kernel"])),
        "ga still boots: {cfg}"
    );
    // DELETE ga: nothing of the import is left to serve.
    let (st, v) = rig.call("DELETE", ga["resource_uri"].as_str().unwrap(), "");
    assert_eq!(st, 204, "{v}");
    for (item, f) in &files {
        assert!(!rig.stored(f), "{item} removed");
        assert_eq!(rig.rack_status(f), 404, "{item}");
    }
    let cfg = rig.pxe_config();
    for f in files.values() {
        assert!(!cfg.contains(&sha256_hex(f)), "{cfg}");
    }
    let list = rig.get("/MAAS/api/2.0/boot-resources/");
    assert_eq!(list, json!([]));
}

#[test]
fn import_progress_selection_validation_and_delete_on_sqlite() {
    progress_validation_and_delete(None);
}

#[test]
fn import_progress_selection_validation_and_delete_on_postgres() {
    let pg = Postgres::start().unwrap();
    progress_validation_and_delete(Some(&pg.url()));
}

/// With `boot_images_auto_import` on (MAAS's default) and a short
/// interval, maasd imports a newly configured source without `op=import`,
/// then picks up a version added to the mirror on a later round.
#[test]
fn periodic_import_picks_up_a_new_version() {
    let gpg = Gpg::new();
    let mut mirror = Streams::new(&gpg);
    mirror.add("noble", "24.04", SERIAL, 3, 64 << 10, 128 << 10, false);
    mirror.publish(&gpg);
    let server = HttpServer::start(mirror.dir.path());
    let rig = start_maasd_env(
        None,
        &[
            ("MAAS_IMAGES_AUTO_IMPORT", "true"),
            ("MAAS_IMAGES_IMPORT_INTERVAL", "1"),
        ],
    );
    rig.configure_source(&server.url(), &mirror.keyring, "os=ubuntu&release=noble");
    let complete = |serial: &str| {
        rig.resource("ubuntu/noble", "amd64/ga-24.04")
            .filter(|r| r["sets"][serial]["complete"] == true)
    };
    wait_for("the automatic import of the new source", 30, || {
        complete(SERIAL)
    });
    const NEXT: &str = "20251201";
    let next = mirror.add("noble", "24.04", NEXT, 4, 64 << 10, 128 << 10, false);
    mirror.publish(&gpg);
    let r = wait_for(
        "a later automatic import to find the new version",
        30,
        || complete(NEXT),
    );
    let set = &r["sets"][NEXT];
    assert_eq!(
        set["files"]["boot-kernel"]["sha256"],
        sha256_hex(&next["ga/boot-kernel"])
    );
    assert_eq!(
        r["sets"][SERIAL]["complete"], true,
        "older version kept: {r}"
    );
    let evs = rig.get("/MAAS/api/2.0/events/?op=query&level=INFO");
    let imports = evs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Imported boot resources"))
        })
        .count();
    assert!(imports >= 2, "at least two automatic imports: {evs}");
}

/// A fresh database gets MAAS's default boot source (images.maas.io,
/// Ubuntu's keyring, priority 1) and selection (the commissioning release,
/// amd64, all subarches and labels); with automatic imports off nothing
/// contacts it. With them on and the default URL pointed (as MAAS's
/// `MAAS_DEFAULT_IMAGES_URL` does) at the test's mirror, the import runs at
/// start without any API call.
#[test]
fn default_source_on_a_fresh_database_and_the_import_at_start() {
    let rig = start_maasd_env(None, &[("MAAS_IMAGES_DEFAULT_SOURCE", "true")]);
    let sources = rig.get("/MAAS/api/2.0/boot-sources/");
    let list = sources.as_array().unwrap();
    assert_eq!(list.len(), 1, "{sources}");
    let s = &list[0];
    assert_eq!(s["url"], "http://images.maas.io/ephemeral-v3/stable/");
    assert_eq!(
        s["keyring_filename"],
        "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg"
    );
    assert_eq!(
        (
            &s["priority"],
            &s["enabled"],
            &s["skip_keyring_verification"],
            &s["keyring_data"]
        ),
        (&json!(1), &json!(true), &json!(false), &json!(""))
    );
    let release = rig.get("/MAAS/api/2.0/maas/?op=get_config&name=commissioning_distro_series");
    let release = release.as_str().unwrap().to_owned();
    let sels = rig.get(&format!(
        "/MAAS/api/2.0/boot-sources/{}/selections/",
        s["id"]
    ));
    let sel = &sels[0];
    assert_eq!(sels.as_array().unwrap().len(), 1, "{sels}");
    assert_eq!(
        (
            &sel["os"],
            &sel["release"],
            &sel["arches"],
            &sel["subarches"],
            &sel["labels"]
        ),
        (
            &json!("ubuntu"),
            &json!(release),
            &json!(["amd64"]),
            &json!(["*"]),
            &json!(["*"])
        )
    );
    // Never contacted: no import ran or runs.
    assert_eq!(
        rig.get("/MAAS/api/2.0/boot-resources/?op=is_importing"),
        false
    );
    let p = rig.get("/MAAS/api/2.0/boot-resources/?op=import_progress");
    assert_eq!(p["last_import"], Value::Null, "{p}");
    // A restart keeps the one source (created only when there is none).
    let mut maasd = rig.maasd;
    maasd.restart().unwrap();
    let (_, again) = api(
        &maasd.addr,
        &rig.key,
        "GET",
        "/MAAS/api/2.0/boot-sources/",
        "",
    );
    assert_eq!(again, sources);
    drop(maasd);

    // The default source at the test's mirror, automatic import on.
    let gpg = Gpg::new();
    let mut mirror = Streams::new(&gpg);
    let version = match release.as_str() {
        "jammy" => "22.04",
        "noble" => "24.04",
        _ => "99.04",
    };
    let files = mirror.add(&release, version, SERIAL, 5, 64 << 10, 128 << 10, false);
    mirror.publish(&gpg);
    let server = HttpServer::start(mirror.dir.path());
    let keyring = mirror.keyring.display().to_string();
    let url = server.url();
    let rig = start_maasd_env(
        None,
        &[
            ("MAAS_IMAGES_DEFAULT_SOURCE", "true"),
            ("MAAS_IMAGES_AUTO_IMPORT", "true"),
            ("MAAS_DEFAULT_IMAGES_URL", url.as_str()),
            ("MAAS_IMAGES_KEYRING_FILEPATH", keyring.as_str()),
        ],
    );
    let arch = format!("amd64/ga-{version}");
    let r = wait_for("the import at start", 30, || {
        rig.resource(&format!("ubuntu/{release}"), &arch)
            .filter(|r| r["sets"][SERIAL]["complete"] == true)
    });
    assert_eq!(
        r["sets"][SERIAL]["files"]["boot-kernel"]["sha256"],
        sha256_hex(&files["ga/boot-kernel"])
    );
    assert!(rig.stored(&files["squashfs"]));
}

/// An OAuth-signed PUT of raw bytes (python-libmaas's upload chunks).
fn put_raw(addr: &str, key: &str, path: &str, body: &[u8]) -> u16 {
    maas_e2e::api_request(addr, key, "PUT", path, "application/octet-stream", body).0
}

/// An upload in chunks shows the share received as its progress until the
/// last chunk completes it (MAAS shows upload progress the same way).
#[test]
fn an_upload_shows_its_progress() {
    let rig = start_maasd(None);
    let data = content(9, 1000);
    let (st, r) = rig.call(
        "POST",
        "/MAAS/api/2.0/boot-resources/",
        &format!(
            "name=custom/half&architecture=amd64/generic&filetype=tgz&sha256={}&size=1000",
            sha256_hex(&data)
        ),
    );
    assert_eq!(st, 201, "{r}");
    let uri = r["resource_uri"].as_str().unwrap().to_owned();
    let set_of = |r: &Value| {
        r["sets"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    };
    let set = set_of(&r);
    assert_eq!(
        (&set["complete"], &set["progress"]),
        (&json!(false), &json!(0.0))
    );
    let upload = set["files"]["root-tgz"]["upload_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        put_raw(&rig.maasd.addr, &rig.key, &upload, &data[..250]),
        200
    );
    let set = set_of(&rig.get(&uri));
    assert_eq!(
        (&set["complete"], &set["progress"]),
        (&json!(false), &json!(25.0)),
        "{set}"
    );
    assert_eq!(set["files"]["root-tgz"]["progress"], 25.0);
    assert_eq!(
        put_raw(&rig.maasd.addr, &rig.key, &upload, &data[250..]),
        200
    );
    let set = set_of(&rig.get(&uri));
    assert_eq!(
        (&set["complete"], &set["progress"]),
        (&json!(true), &json!(100.0)),
        "{set}"
    );
}
