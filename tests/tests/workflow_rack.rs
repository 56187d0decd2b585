//! The rack inside `maasd`, answering real clients from database state in
//! network namespaces this test creates: a subnet made managed through the
//! API (`dhcp_on` on its VLAN, a dynamic range) is served by DHCP to
//! busybox `udhcpc`, the lease and the unknown MAC land in the database,
//! and `curl` fetches the per-MAC pxelinux config over TFTP and HTTP —
//! enlistment for the unknown MAC, commissioning once the machine exists
//! and commissions. On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use maas_e2e::{Maasd, Postgres, api_call as api, maasd_binary, wait_for};
use serde_json::json;

fn need(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("{bin} not found: install the Debian package `{package}` (scripts/deps/flow.apt)");
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    srv_ns: String,
    cli_ns: String,
    srv_if: String,
    cli_if: String,
}

impl Lab {
    fn new() -> Lab {
        need("ip", "iproute2");
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            srv_ns: format!("mrsflow-{id}-s"),
            cli_ns: format!("mrsflow-{id}-c"),
            srv_if: format!("mf{id}s"),
            cli_if: format!("mf{id}c"),
        };
        sh(&["ip", "netns", "add", &lab.srv_ns]);
        sh(&["ip", "netns", "add", &lab.cli_ns]);
        sh(&[
            "ip",
            "link",
            "add",
            &lab.srv_if,
            "type",
            "veth",
            "peer",
            "name",
            &lab.cli_if,
        ]);
        sh(&["ip", "link", "set", &lab.srv_if, "netns", &lab.srv_ns]);
        sh(&["ip", "link", "set", &lab.cli_if, "netns", &lab.cli_ns]);
        sh(&[
            "ip",
            "-n",
            &lab.srv_ns,
            "addr",
            "add",
            "10.213.0.1/16",
            "dev",
            &lab.srv_if,
        ]);
        for (ns, dev) in [(&lab.srv_ns, &lab.srv_if), (&lab.cli_ns, &lab.cli_if)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn cli_mac(&self) -> String {
        sh(&[
            "ip",
            "-n",
            &self.cli_ns,
            "-br",
            "link",
            "show",
            &self.cli_if,
        ])
        .split_whitespace()
        .nth(2)
        .expect("mac")
        .to_ascii_lowercase()
    }

    fn in_cli(&self, prog: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.cli_ns]).arg(prog);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.srv_ns, &self.cli_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap();
}

fn rack_answers_real_clients(postgres: bool) {
    let lab = Lab::new();
    // maasd, PostgreSQL and every API and database call live in the server
    // namespace: this thread enters it, and processes it starts inherit it.
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(&lab.srv_ns);
            let pg = postgres.then(|| Postgres::start().unwrap());
            scenario(&lab, pg.as_ref().map(Postgres::url));
        })
        .join()
        .unwrap();
    });
}

fn scenario(lab: &Lab, database_url: Option<String>) {
    let busybox = need("busybox", "busybox-static");
    let curl = need("curl", "curl");
    let mac = lab.cli_mac();
    let config = format!(
        "[workflow]\ntick_ms = 200\npower_poll_secs = 0\n\n[rack]\naddress = \"10.213.0.1\"\ninterface = \"{}\"\nrefresh_ms = 200\n",
        lab.srv_if
    );
    let m = Maasd::start_configured(
        &maasd_binary().unwrap(),
        database_url.as_deref(),
        Some(&config),
    )
    .unwrap();
    let key = m.admin_key("admin", "pw").unwrap();
    // Managed DHCP: the subnet's VLAN gets dhcp_on, with a dynamic range.
    let (st, fabrics) = api(&m.addr, &key, "GET", "/MAAS/api/2.0/fabrics/", "");
    assert_eq!(st, 200, "{fabrics}");
    let fid = fabrics[0]["id"].as_i64().unwrap();
    let (st, v) = api(
        &m.addr,
        &key,
        "POST",
        "/MAAS/api/2.0/subnets/",
        "cidr=10.213.0.0/16&gateway_ip=10.213.0.1",
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = api(
        &m.addr,
        &key,
        "POST",
        "/MAAS/api/2.0/ipranges/",
        "type=dynamic&start_ip=10.213.1.10&end_ip=10.213.1.50",
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = api(
        &m.addr,
        &key,
        "PUT",
        &format!("/MAAS/api/2.0/fabrics/{fid}/vlans/0/"),
        "dhcp_on=true",
    );
    assert_eq!((st, &v["dhcp_on"]), (200, &json!(true)), "{v}");

    // A real DHCP client in the other namespace.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events");
    let script = dir.path().join("script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  deconfig) ip addr flush dev \"$interface\" ;;\n  bound|renew) ip addr replace \"$ip/$mask\" dev \"$interface\" ;;\nesac\necho \"$1 ip=$ip mask=$mask router=$router serverid=$serverid\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let _udhcpc = Proc(
        lab.in_cli(&busybox)
            .args(["udhcpc", "-f", "-i", &lab.cli_if, "-s"])
            .arg(&script)
            .args(["-t", "20", "-T", "1", "-A", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("udhcpc"),
    );
    let bound = wait_for("a DHCP lease from maasd", 30, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("bound "))
            .map(str::to_owned)
    });
    assert!(bound.contains("ip=10.213.1.10 "), "{bound}");
    assert!(bound.contains("mask=16"), "{bound}");
    assert!(bound.contains("router=10.213.0.1"), "{bound}");
    assert!(bound.contains("serverid=10.213.0.1"), "{bound}");

    // The lease and the unknown MAC are in the database.
    let url = m
        .database_url
        .clone()
        .unwrap_or_else(|| m.data_dir.path().join("maas.db").display().to_string());
    let pool = maas_server::db::Pool::open(&url, 1).unwrap();
    wait_for("the lease and the unknown MAC recorded", 10, || {
        let mut c = pool.get().unwrap();
        let leases = maas_server::rack::dhcp::leases(&mut c).unwrap();
        let unknown = maas_server::rack::dhcp::unknown_macs(&mut c).unwrap();
        (leases
            .iter()
            .any(|l| l.mac == mac && l.ip == "10.213.1.10" && l.state == "bound")
            && unknown.iter().any(|u| u.mac == mac))
        .then_some(())
    });

    let cfg_path = format!("pxelinux.cfg/01-{}", mac.replace(':', "-"));
    let fetch = |url: &str| -> String {
        let out = lab
            .in_cli(&curl)
            .args(["-sS", "--max-time", "10", url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Unknown MAC: the enlistment environment.
    let tftp_url = format!("tftp://10.213.0.1/{cfg_path}");
    let enlist = fetch(&tftp_url);
    assert!(enlist.contains("maas-enlist"), "{enlist}");
    // The commissioning release from the settings (seeded: jammy).
    assert!(enlist.contains("ga-22.04/jammy"), "{enlist}");

    // The machine is added with that MAC and commissioned: its own config.
    let spec = json!([{
        "hostname": "rack-node",
        "nics": [{"name": "eth0", "mac": mac}],
    }]);
    let f = m.data_dir.path().join("rack.json");
    std::fs::write(&f, spec.to_string()).unwrap();
    let sid = m
        .manage(&["load-machines", f.to_str().unwrap()])
        .unwrap()
        .trim()
        .to_owned();
    let (st, v) = api(
        &m.addr,
        &key,
        "POST",
        &format!("/MAAS/api/2.0/machines/{sid}/?op=commission"),
        "",
    );
    assert_eq!(
        (st, v["status_name"].as_str()),
        (200, Some("Commissioning")),
        "{v}"
    );
    let tftp = fetch(&tftp_url);
    assert!(tftp.contains("rack-node"), "{tftp}");
    assert!(!tftp.contains("maas-enlist"), "{tftp}");
    assert!(tftp.contains(&format!("by-id/{sid}/")), "{tftp}");
    // The same config over HTTP boot.
    let http = fetch(&format!("http://10.213.0.1:5248/{cfg_path}"));
    assert_eq!(http, tftp);
}

#[test]
fn rack_serves_dhcp_tftp_http_from_the_database_on_sqlite() {
    rack_answers_real_clients(false);
}

#[test]
fn rack_serves_dhcp_tftp_http_from_the_database_on_postgres() {
    rack_answers_real_clients(true);
}
