//! MAAS's controller API against a real `maasd` (a region and rack
//! controller in one process), on SQLite and PostgreSQL: the rack and region
//! controller handlers list and read the one controller with MAAS's fields
//! and a service_set that reflects the rack's configuration; its system id
//! survives a restart; `nodes/` lists it beside the machines; the admin-only
//! ops refuse other users; python-libmaas binds `rack_controllers` and
//! `region_controllers` and its `maas` CLI lists them; `list_boot_images`
//! says `syncing` while an import from a signed loopback mirror runs and
//! `synced` with the imported image after.

use std::process::Command;
use std::time::{Duration, Instant};

use maas_e2e::mirror::{Gpg, SlowServer, Streams, free_port, free_udp_port, multipart_post};
use maas_e2e::{Maasd, Postgres, api_call, maas_cli, maasd_binary, venv_bin, wait_for};
use serde_json::{Value, json};

const PASSWORD: &str = "admin-secret";
const API: &str = "/MAAS/api/2.0";

struct Rig {
    maasd: Maasd,
    key: String,
    tftp_port: u16,
}

impl Rig {
    /// `maasd` with the rack on loopback: TFTP and HTTP boot on, DHCP off.
    fn start(database_url: Option<&str>) -> Rig {
        let (tftp_port, http_port) = (free_udp_port(), free_port());
        let config = format!(
            "[rack]\naddress = \"127.0.0.1\"\ndhcp_port = 0\ntftp_port = {tftp_port}\nhttp_port = {http_port}\n"
        );
        let maasd =
            Maasd::start_configured(&maasd_binary().unwrap(), database_url, Some(&config)).unwrap();
        let key = maasd.admin_key("admin", PASSWORD).unwrap();
        Rig {
            maasd,
            key,
            tftp_port,
        }
    }

    fn call_as(&self, key: &str, method: &str, path: &str, form: &str) -> (u16, Value) {
        api_call(&self.maasd.addr, key, method, path, form)
    }

    fn call(&self, method: &str, path: &str, form: &str) -> (u16, Value) {
        self.call_as(&self.key, method, path, form)
    }

    fn get(&self, path: &str) -> Value {
        let (st, v) = self.call("GET", path, "");
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }
}

fn service<'a>(ctl: &'a Value, name: &str) -> &'a Value {
    ctl["service_set"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {ctl}"))
}

/// python-libmaas reads the controllers as its objects.
const LIBMAAS_CONTROLLERS: &str = r#"
import json, os
from maas.client import connect
c = connect(os.environ["MAAS_URL"], apikey=os.environ["MAAS_KEY"])
racks = c.rack_controllers.list()
regions = c.region_controllers.list()
r = c.rack_controllers.get(racks[0].system_id)
g = c.region_controllers.get(regions[0].system_id)
# The client has no `nodes`; its CLI reads them through the origin.
nodes = c._origin.Nodes.read()
ctl = [n for n in nodes if n.system_id == r.system_id][0]
print(json.dumps({
    "racks": [x.system_id for x in racks],
    "regions": [x.system_id for x in regions],
    "hostname": r.hostname, "fqdn": r.fqdn, "architecture": r.architecture,
    "cpus": r.cpus, "memory": r.memory, "node_type": int(r.node_type),
    "node_type_name": r.node_type.name, "power_state": r.power_state.value,
    "osystem": r.osystem, "distro_series": r.distro_series,
    "ip_addresses": list(r.ip_addresses), "domain": r.domain.name,
    "zone": r.zone.name, "interfaces": [i.name for i in r.interfaces],
    "region_hostname": g.hostname,
    "as_rack": ctl.as_rack_controller().system_id,
    "as_region": ctl.as_region_controller().system_id,
}))
"#;

fn controllers(database_url: Option<&str>) {
    let mut rig = Rig::start(database_url);
    let racks = rig.get(&format!("{API}/rackcontrollers/"));
    let racks = racks.as_array().unwrap();
    assert_eq!(racks.len(), 1, "{racks:?}");
    let ctl = racks[0].clone();
    let sid = ctl["system_id"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 6, "{ctl}");
    let hostname = ctl["hostname"].as_str().unwrap().to_owned();
    assert!(!hostname.is_empty() && !hostname.contains('.'), "{ctl}");
    assert_eq!(ctl["node_type"], 4);
    assert_eq!(ctl["node_type_name"], "Region and rack controller");
    assert_eq!(ctl["fqdn"], json!(format!("{hostname}.maas")));
    assert_eq!(ctl["domain"]["name"], "maas");
    assert_eq!(ctl["zone"]["name"], "default");
    assert_eq!(ctl["version"], env!("CARGO_PKG_VERSION"));
    assert!(ctl["architecture"].as_str().unwrap().ends_with("/generic"));
    assert!(ctl["cpu_count"].as_u64().unwrap() >= 1, "{ctl}");
    assert!(ctl["memory"].as_u64().unwrap() > 0, "{ctl}");
    assert_eq!(
        ctl["resource_uri"],
        json!(format!("{API}/rackcontrollers/{sid}/"))
    );
    // The rack's configured boot interface, with its address.
    assert_eq!(
        ctl["interface_set"][0]["links"][0]["ip_address"], "127.0.0.1",
        "{ctl}"
    );
    // The services as configured: TFTP and HTTP boot listening, DHCP off.
    assert_eq!(service(&ctl, "regiond")["status"], "running");
    assert_eq!(service(&ctl, "rackd")["status"], "running");
    assert_eq!(service(&ctl, "tftp")["status"], "running");
    assert!(
        service(&ctl, "tftp")["status_info"]
            .as_str()
            .unwrap()
            .contains(&rig.tftp_port.to_string()),
        "{ctl}"
    );
    assert_eq!(service(&ctl, "http")["status"], "running");
    assert_eq!(service(&ctl, "dhcpd")["status"], "off");

    // Read, and the region handlers show the same node.
    let one = rig.get(&format!("{API}/rackcontrollers/{sid}/"));
    assert_eq!(one["system_id"], json!(sid));
    let regions = rig.get(&format!("{API}/regioncontrollers/"));
    assert_eq!(regions.as_array().unwrap().len(), 1);
    assert_eq!(regions[0]["system_id"], json!(sid));
    assert_eq!(
        regions[0]["resource_uri"],
        json!(format!("{API}/regioncontrollers/{sid}/"))
    );
    let region = rig.get(&format!("{API}/regioncontrollers/{sid}/"));
    assert_eq!(region["node_type"], 4);
    for path in [
        format!("{API}/rackcontrollers/xxxxxx/"),
        format!("{API}/regioncontrollers/xxxxxx/"),
    ] {
        let (st, v) = rig.call("GET", &path, "");
        assert_eq!(st, 404, "{path}: {v}");
        assert!(
            v.as_str().unwrap().contains("matches the given query"),
            "{v}"
        );
    }
    // Filters as MAAS's NodesHandler takes them.
    let count = |q: &str| {
        rig.get(&format!("{API}/rackcontrollers/?{q}"))
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&format!("hostname={hostname}")), 1);
    assert_eq!(count(&format!("hostname={hostname}.maas")), 1);
    assert_eq!(count("hostname=not-this-one"), 0);
    assert_eq!(count(&format!("id={sid}")), 1);
    assert_eq!(count("id=xxxxxx"), 0);
    assert_eq!(count("zone=default"), 1);
    assert_eq!(count("zone=elsewhere"), 0);

    // nodes/ lists every node type: the machines and the controller.
    let nodes = rig.get(&format!("{API}/nodes/"));
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["system_id"] == json!(sid) && n["node_type"] == 4),
        "{nodes}"
    );
    let n = rig.get(&format!("{API}/nodes/{sid}/"));
    assert_eq!(n["node_type_name"], "Region and rack controller");
    // A machine-only filter leaves the controller out.
    let nodes = rig.get(&format!("{API}/nodes/?status=ready"));
    assert_eq!(nodes, json!([]));

    // Admin-only ops refuse an ordinary user.
    let (st, v) = rig.call(
        "POST",
        &format!("{API}/users/"),
        "username=bob&email=bob@example.com&password=bob-secret&is_superuser=0",
    );
    assert!(st == 200 || st == 201, "{v}");
    let bob = rig
        .maasd
        .manage(&["apikey", "--username", "bob"])
        .unwrap()
        .trim()
        .to_owned();
    let (st, v) = rig.call_as(&bob, "GET", &format!("{API}/rackcontrollers/"), "");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v[0]["system_id"], json!(sid));
    for (method, path) in [
        (
            "GET",
            format!("{API}/rackcontrollers/{sid}/?op=list_boot_images"),
        ),
        (
            "POST",
            format!("{API}/rackcontrollers/{sid}/?op=import_boot_images"),
        ),
        (
            "POST",
            format!("{API}/rackcontrollers/?op=import_boot_images"),
        ),
        (
            "GET",
            format!("{API}/rackcontrollers/?op=describe_power_types"),
        ),
    ] {
        let (st, v) = rig.call_as(&bob, method, &path, "");
        assert_eq!(st, 403, "{method} {path}: {v}");
    }
    // The power drivers as MAAS describes them.
    let types = rig.get(&format!("{API}/rackcontrollers/?op=describe_power_types"));
    let ipmi = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ipmi")
        .unwrap_or_else(|| panic!("no ipmi in {types}"));
    assert_eq!(ipmi["driver_type"], "power");
    assert!(
        ipmi["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "power_address" && f["required"] == true),
        "{ipmi}"
    );
    // No source selects anything: nothing to sync, nothing held.
    let imgs = rig.get(&format!("{API}/rackcontrollers/{sid}/?op=list_boot_images"));
    assert_eq!(
        imgs,
        json!({"connected": true, "status": "synced", "images": []})
    );

    // python-libmaas binds its controller classes and reads their fields.
    let out = Command::new(venv_bin().unwrap().join("python"))
        .args(["-c", LIBMAAS_CONTROLLERS])
        .env("MAAS_URL", rig.maasd.url())
        .env("MAAS_KEY", &rig.key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "libmaas:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lm: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(lm["racks"], json!([sid]));
    assert_eq!(lm["regions"], json!([sid]));
    assert_eq!(lm["hostname"], json!(hostname));
    assert_eq!(lm["region_hostname"], json!(hostname));
    assert_eq!(lm["fqdn"], ctl["fqdn"]);
    assert_eq!(lm["node_type"], 4);
    assert_eq!(lm["node_type_name"], "REGION_AND_RACK_CONTROLLER");
    assert_eq!(lm["cpus"], ctl["cpu_count"]);
    assert_eq!(lm["memory"], ctl["memory"]);
    assert_eq!(lm["power_state"], "unknown");
    assert_eq!(lm["domain"], "maas");
    assert_eq!(lm["zone"], "default");
    assert_eq!(lm["interfaces"].as_array().unwrap().len(), 1, "{lm}");
    assert_eq!(lm["as_rack"], json!(sid));
    assert_eq!(lm["as_region"], json!(sid));

    // The `maas` CLI's controller commands.
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = rig.maasd.url();
    let (ok, out) = maas_cli(h, &["login", "-p", "adm", &url, "admin", PASSWORD]);
    assert!(ok && out.contains("You are logged in"), "{out}");
    let (ok, out) = maas_cli(h, &["controllers"]);
    assert!(ok && out.contains(&hostname), "{out}");
    let (ok, out) = maas_cli(h, &["controller", &hostname]);
    assert!(ok && out.contains(&hostname), "{out}");

    // The same system id after a restart.
    rig.maasd.restart().unwrap();
    let again = rig.get(&format!("{API}/rackcontrollers/"));
    assert_eq!(again[0]["system_id"], json!(sid), "{again}");
    let again = rig.get(&format!("{API}/regioncontrollers/{sid}/"));
    assert_eq!(again["system_id"], json!(sid));
}

#[test]
fn controllers_on_sqlite() {
    controllers(None);
}

#[test]
fn controllers_on_postgres() {
    let pg = Postgres::start().unwrap();
    controllers(Some(&pg.url()));
}

/// `list_boot_images` follows an import from a signed loopback mirror sent
/// slowly: out-of-sync before (noble amd64 is selected, nothing held),
/// syncing while `op=import_boot_images` runs, synced with the image after.
fn boot_images_sync(database_url: Option<&str>) {
    let gpg = Gpg::new();
    let mut mirror = Streams::new(&gpg);
    // A 4 MiB squashfs sent at 1 MiB/s: a few seconds of import.
    mirror.add("noble", "24.04", "20251120", 11, 256 << 10, 4 << 20, false);
    mirror.publish(&gpg);
    let server = SlowServer::start(mirror.dir.path().to_owned(), 1 << 20);
    let rig = Rig::start(database_url);
    let sid = rig.get(&format!("{API}/rackcontrollers/"))[0]["system_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = multipart_post(
        &rig.maasd.addr,
        &rig.key,
        &format!("{API}/boot-sources/"),
        &[
            ("url", server.url().as_bytes()),
            ("keyring_data", &std::fs::read(&mirror.keyring).unwrap()),
        ],
    );
    assert_eq!(st, 201, "{v}");
    let source = v["id"].as_i64().unwrap();
    let (st, v) = rig.call(
        "POST",
        &format!("{API}/boot-sources/{source}/selections/"),
        "os=ubuntu&release=noble&arches=amd64",
    );
    assert_eq!(st, 201, "{v}");
    let list_path = format!("{API}/rackcontrollers/{sid}/?op=list_boot_images");
    let before = rig.get(&list_path);
    assert_eq!(
        before,
        json!({"connected": true, "status": "out-of-sync", "images": []})
    );

    let (st, v) = rig.call(
        "POST",
        &format!("{API}/rackcontrollers/{sid}/?op=import_boot_images"),
        "",
    );
    assert_eq!((st, v), (202, json!("Accepted")));
    // While the import runs: syncing; `is_importing` agrees.
    let during = rig.get(&list_path);
    assert_eq!(during["status"], "syncing", "{during}");
    assert_eq!(
        rig.get(&format!("{API}/boot-resources/?op=is_importing")),
        json!(true)
    );
    let started = Instant::now();
    let mut statuses = vec![during["status"].as_str().unwrap().to_owned()];
    let after = wait_for("the import to finish", 90, || {
        let v = rig.get(&list_path);
        let s = v["status"].as_str().unwrap().to_owned();
        if statuses.last() != Some(&s) {
            statuses.push(s.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
        (s != "syncing").then_some(v)
    });
    assert!(
        started.elapsed() > Duration::from_millis(500),
        "the slow mirror kept the import running a while"
    );
    assert_eq!(statuses, ["syncing", "synced"], "{after}");
    assert_eq!(
        after,
        json!({
            "connected": true,
            "status": "synced",
            "images": [{"name": "ubuntu/noble", "architecture": "amd64", "subarches": ["ga-24.04"]}],
        })
    );
    // The collection's import op answers as MAAS does; nothing is missing,
    // so the import it starts leaves the rack synced.
    let (st, v) = rig.call(
        "POST",
        &format!("{API}/rackcontrollers/?op=import_boot_images"),
        "",
    );
    assert_eq!((st, v), (202, json!("Accepted")));
    wait_for("the second import to finish", 60, || {
        let v = rig.get(&list_path);
        (v["status"] == "synced").then_some(())
    });
    // Deleting the resource takes its files out of the store: the
    // selected image is missing again.
    let list = rig.get(&format!("{API}/boot-resources/"));
    let res = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ubuntu/noble" && r["architecture"] == "amd64/ga-24.04")
        .unwrap_or_else(|| panic!("no noble resource in {list}"));
    let (st, v) = rig.call("DELETE", res["resource_uri"].as_str().unwrap(), "");
    assert_eq!(st, 204, "{v}");
    assert_eq!(
        rig.get(&list_path),
        json!({"connected": true, "status": "out-of-sync", "images": []})
    );
}

#[test]
fn list_boot_images_follows_an_import_on_sqlite() {
    boot_images_sync(None);
}

#[test]
fn list_boot_images_follows_an_import_on_postgres() {
    let pg = Postgres::start().unwrap();
    boot_images_sync(Some(&pg.url()));
}

/// Without a `[rack]` section the rack's services are off, with the reason,
/// and the controller has no boot interface; the region still runs.
#[test]
fn without_a_rack_the_rack_services_are_off() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let key = m.admin_key("admin", PASSWORD).unwrap();
    let (st, v) = api_call(&m.addr, &key, "GET", &format!("{API}/rackcontrollers/"), "");
    assert_eq!(st, 200, "{v}");
    let ctl = &v[0];
    assert_eq!(service(ctl, "regiond")["status"], "running");
    for name in ["rackd", "tftp", "http", "dhcpd"] {
        let s = service(ctl, name);
        assert_eq!(s["status"], "off", "{ctl}");
        assert!(s["status_info"].as_str().unwrap().contains("[rack]"), "{s}");
    }
    assert_eq!(ctl["interface_set"], json!([]));
    // The API listens on loopback only: no address to list.
    assert_eq!(ctl["ip_addresses"], json!([]));
}
