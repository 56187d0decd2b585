//! Spaces and static routes against a real `maasd`, on SQLite and on
//! PostgreSQL: MAAS's validation and messages over the raw API, the
//! `undefined` pseudo-space, a VLAN moved between spaces (and allocation
//! following it), python-libmaas 0.6.8's `spaces` and `static_routes`, the
//! `maas spaces` / `maas space` CLI, and a deployed machine's curtin
//! configuration carrying the route of the subnet it is linked to.

use std::path::Path;
use std::process::Command;

use maas_e2e::{Maasd, Postgres, api_call, maas_cli, maasd_binary, venv_bin};
use serde_json::{Value, json};

const PASSWORD: &str = "pw-spaces";

struct Api<'a> {
    addr: &'a str,
    key: &'a str,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        api_call(
            self.addr,
            self.key,
            method,
            &format!("/MAAS/api/2.0/{path}"),
            &body.join("&"),
        )
    }
    /// A call that must answer `status`; returns the body.
    fn ok(&self, status: u16, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let (s, v) = self.call(method, path, form);
        assert_eq!(s, status, "{method} {path} {form:?}: {v}");
        v
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn names(spaces: &Value) -> Vec<String> {
    spaces
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn load(m: &Maasd, specs: &Value) -> Vec<String> {
    let f = m.data_dir.path().join("spaces-machines.json");
    std::fs::write(&f, specs.to_string()).unwrap();
    m.manage(&["load-machines", f.to_str().unwrap()])
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run(m: &Maasd) {
    let key = m.admin_key("admin", PASSWORD).unwrap();
    let api = Api {
        addr: &m.addr,
        key: &key,
    };

    // --- the network: fabric-0's untagged VLAN with three subnets.
    let src = api.ok(
        200,
        "POST",
        "subnets/",
        &[("cidr", "10.20.0.0/24"), ("gateway_ip", "10.20.0.1")],
    );
    let dst = api.ok(200, "POST", "subnets/", &[("cidr", "192.168.50.0/24")]);
    api.ok(200, "POST", "subnets/", &[("cidr", "fd00:20::/64")]);
    let (src_id, dst_id) = (src["id"].as_i64().unwrap(), dst["id"].as_i64().unwrap());
    let fabrics = api.ok(200, "GET", "fabrics/", &[]);
    let fabric0 = fabrics
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fabric-0")
        .unwrap();
    let fid = fabric0["id"].as_i64().unwrap();
    let vlan_id = fabric0["vlans"][0]["id"].as_i64().unwrap();
    let vlan_path = format!("fabrics/{fid}/vlans/0/");
    assert_eq!(src["space"], "undefined", "{src}");

    // A Ready machine on that VLAN, loaded while the VLAN has no space.
    let ready = load(
        m,
        &json!([{"hostname": "sp-ready", "disks": [{"name": "sda", "size": 20_000_000_000u64}],
                 "nics": [{"name": "eth0", "mac": "52:54:00:5a:00:01"}]}]),
    );
    assert_eq!(ready.len(), 1);

    // --- the undefined pseudo-space.
    let list = api.ok(200, "GET", "spaces/", &[]);
    assert_eq!(names(&list), ["undefined"], "{list}");
    let undefined = &list[0];
    assert_eq!(undefined["id"], -1);
    assert_eq!(undefined["resource_uri"], "/MAAS/api/2.0/spaces/undefined/");
    assert!(
        undefined["vlans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == vlan_id),
        "{undefined}"
    );
    assert_eq!(undefined["subnets"].as_array().unwrap().len(), 3);
    assert_eq!(api.ok(200, "GET", "spaces/-1/", &[])["name"], "undefined");
    assert_eq!(api.ok(200, "GET", "spaces/undefined/", &[])["id"], -1);
    let e = api.ok(400, "PUT", "spaces/-1/", &[("name", "x")]);
    assert_eq!(e, "Space cannot be modified: undefined");
    let e = api.ok(400, "DELETE", "spaces/undefined/", &[]);
    assert_eq!(e, "Space cannot be deleted: undefined");

    // --- creating spaces: MAAS's name rules.
    let backbone = api.ok(
        200,
        "POST",
        "spaces/",
        &[("name", "backbone"), ("description", "core links")],
    );
    let bid = backbone["id"].as_i64().unwrap();
    assert_eq!(
        backbone["resource_uri"],
        format!("/MAAS/api/2.0/spaces/{bid}/")
    );
    assert_eq!(backbone["vlans"], json!([]));
    assert_eq!(backbone["subnets"], json!([]));
    let e = api.ok(400, "POST", "spaces/", &[("name", "backbone")]);
    assert_eq!(e, json!({"name": ["Space with this Name already exists."]}));
    let e = api.ok(400, "POST", "spaces/", &[("name", "undefined")]);
    assert_eq!(e, json!({"name": ["Reserved space name."]}));
    let e = api.ok(400, "POST", "spaces/", &[("name", "space-99999")]);
    assert_eq!(e, json!({"name": ["Reserved space name."]}));
    let e = api.ok(400, "POST", "spaces/", &[("name", "bad name")]);
    assert_eq!(e, json!({"name": ["Invalid space name: bad name."]}));
    let unnamed = api.ok(200, "POST", "spaces/", &[]);
    let uid = unnamed["id"].as_i64().unwrap();
    assert_eq!(unnamed["name"], format!("space-{uid}"));
    assert_eq!(
        api.ok(200, "GET", &format!("spaces/space-{uid}/"), &[])["id"],
        uid
    );
    api.ok(204, "DELETE", &format!("spaces/{uid}/"), &[]);
    // A purely numeric name is valid, but a number in the path is an id
    // (MAAS's specifiers): only `name:` reaches it.
    let numeric = api.ok(200, "POST", "spaces/", &[("name", "987654")]);
    assert_eq!(numeric["name"], "987654");
    api.ok(404, "GET", "spaces/987654/", &[]);
    assert_eq!(
        api.ok(200, "GET", "spaces/name:987654/", &[])["id"],
        numeric["id"]
    );
    api.ok(
        204,
        "DELETE",
        &format!("spaces/{}/", numeric["id"].as_i64().unwrap()),
        &[],
    );
    api.ok(404, "GET", "spaces/nosuch/", &[]);

    // --- a VLAN into a space.
    let e = api.ok(400, "PUT", &vlan_path, &[("space", "nosuch")]);
    assert!(
        e["space"][0]
            .as_str()
            .unwrap()
            .contains("Select a valid choice"),
        "{e}"
    );
    let v = api.ok(200, "PUT", &vlan_path, &[("space", "backbone")]);
    assert_eq!(v["space"], "backbone", "{v}");
    let list = api.ok(200, "GET", "spaces/", &[]);
    assert_eq!(names(&list), ["backbone"], "undefined is gone: {list}");
    api.ok(404, "GET", "spaces/undefined/", &[]);
    let b = api.ok(200, "GET", &format!("spaces/{bid}/"), &[]);
    assert_eq!(b["vlans"][0]["id"], vlan_id, "{b}");
    assert_eq!(b["vlans"][0]["fabric"], "fabric-0", "{b}");
    assert_eq!(b["subnets"].as_array().unwrap().len(), 3, "{b}");
    assert_eq!(
        api.ok(200, "GET", &format!("subnets/{src_id}/"), &[])["space"],
        "backbone"
    );
    // Allocation follows the VLAN's space: for a machine loaded before the
    // move and one loaded after.
    let ready2 = load(
        m,
        &json!([{"hostname": "sp-ready2", "disks": [{"name": "sda", "size": 20_000_000_000u64}],
                 "nics": [{"name": "eth0", "mac": "52:54:00:5a:00:04"}]}]),
    );
    assert_eq!(ready2.len(), 1);
    let mut got: Vec<String> = (0..2)
        .map(|_| {
            let a = api.ok(
                200,
                "POST",
                "machines/?op=allocate",
                &[("interfaces", "eth0:space=backbone")],
            );
            a["hostname"].as_str().unwrap().to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["sp-ready", "sp-ready2"]);
    api.ok(
        409,
        "POST",
        "machines/?op=allocate",
        &[("interfaces", "eth0:space=backbone")],
    );

    // Renaming carries the VLAN; a rename to a reserved name is refused.
    let r = api.ok(200, "PUT", &format!("spaces/{bid}/"), &[("name", "core")]);
    assert_eq!(r["name"], "core");
    assert_eq!(r["description"], "core links");
    assert_eq!(api.ok(200, "GET", &vlan_path, &[])["space"], "core");
    let e = api.ok(
        400,
        "PUT",
        &format!("spaces/{bid}/"),
        &[("name", "undefined")],
    );
    assert_eq!(e, json!({"name": ["Reserved space name."]}));
    api.ok(
        200,
        "PUT",
        &format!("spaces/{bid}/"),
        &[("name", "backbone")],
    );
    assert_eq!(api.ok(200, "GET", &vlan_path, &[])["space"], "backbone");

    // Deleting a space puts its VLANs back in undefined.
    let tmp = api.ok(200, "POST", "spaces/", &[("name", "tmp")]);
    let tid = tmp["id"].as_i64().unwrap().to_string();
    assert_eq!(
        api.ok(200, "PUT", &vlan_path, &[("space", &tid)])["space"],
        "tmp"
    );
    api.ok(204, "DELETE", &format!("spaces/{tid}/"), &[]);
    assert_eq!(api.ok(200, "GET", &vlan_path, &[])["space"], "undefined");
    // `undefined` is no space one can name (MAAS looks it up and finds
    // none); an empty value is what clears it.
    api.ok(400, "PUT", &vlan_path, &[("space", "undefined")]);
    api.ok(200, "PUT", &vlan_path, &[("space", "backbone")]);
    assert_eq!(
        api.ok(200, "PUT", &vlan_path, &[("space", "")])["space"],
        "undefined"
    );
    api.ok(404, "GET", &format!("spaces/{tid}/"), &[]);
    let back = format!("space-{bid}");
    assert_eq!(
        api.ok(200, "PUT", &vlan_path, &[("space", &back)])["space"],
        "backbone"
    );

    // --- static routes: MAAS's form errors.
    let e = api.ok(400, "POST", "static-routes/", &[]);
    assert_eq!(
        e,
        json!({
            "source": ["This field is required."],
            "destination": ["This field is required."],
            "gateway_ip": ["This field is required."],
        })
    );
    let e = api.ok(
        400,
        "POST",
        "static-routes/",
        &[
            ("source", "10.20.0.0/24"),
            ("destination", "fd00:20::/64"),
            ("gateway_ip", "10.20.0.254"),
        ],
    );
    assert_eq!(
        e,
        json!({"__all__": ["source and destination must be the same IP version."]})
    );
    let e = api.ok(
        400,
        "POST",
        "static-routes/",
        &[
            ("source", "10.20.0.0/24"),
            ("destination", "10.99.0.0/24"),
            ("gateway_ip", "nope"),
            ("metric", "-1"),
        ],
    );
    assert_eq!(
        e,
        json!({
            "destination": ["Select a valid choice. That choice is not one of the available choices."],
            "gateway_ip": ["Enter a valid IPv4 or IPv6 address."],
            "metric": ["Ensure this value is greater than or equal to 0."],
        })
    );
    api.ok(404, "GET", "static-routes/424242/", &[]);
    api.ok(404, "GET", "static-routes/x/", &[]);

    // --- python-libmaas.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/spaces_routes.py");
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(script)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .env("SRC_ID", src_id.to_string())
        .env("DST_ID", dst_id.to_string())
        .env("BACKBONE_ID", bid.to_string())
        .env("VLAN_ID", vlan_id.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("SPACES OK"),
        "libmaas spaces session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --- the maas CLI.
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (ok, out) = maas_cli(h, &["login", "-p", "adm", &m.url(), "admin", PASSWORD]);
    assert!(ok && out.contains("You are logged in"), "{out}");
    let (ok, out) = maas_cli(h, &["spaces"]);
    assert!(ok && out.contains("backbone"), "{out}");
    let (ok, out) = maas_cli(h, &["space", "backbone"]);
    assert!(ok && out.contains("backbone"), "{out}");
    let (ok, out) = maas_cli(h, &["space", "nosuch"]);
    assert!(!ok && out.contains("Unable to find space nosuch"), "{out}");

    // --- a deployed machine linked to the source subnet gets the route.
    let route = api.ok(
        200,
        "POST",
        "static-routes/",
        &[
            ("source", "10.20.0.0/24"),
            ("destination", &dst_id.to_string()),
            ("gateway_ip", "10.20.0.254"),
            ("metric", "5"),
        ],
    );
    assert_eq!(route["source"]["id"], src_id, "{route}");
    assert_eq!(route["destination"]["cidr"], "192.168.50.0/24", "{route}");
    assert_eq!(route["metric"], 5);
    let rid = route["id"].as_i64().unwrap();
    assert_eq!(
        route["resource_uri"],
        format!("/MAAS/api/2.0/static-routes/{rid}/")
    );
    let deployed = load(
        m,
        &json!([{"hostname": "sp-deployed", "status": "deployed", "owner": "admin",
                 "disks": [{"name": "sda", "size": 20_000_000_000u64}],
                 "nics": [{"name": "eth0", "mac": "52:54:00:5a:00:02",
                           "links": [{"mode": "static", "subnet": "10.20.0.0/24", "ip": "10.20.0.10"}]}]}]),
    );
    let curtin = |api: &Api<'_>| -> String {
        let v = api.ok(
            200,
            "GET",
            &format!("machines/{}/?op=get_curtin_config", deployed[0]),
            &[],
        );
        v.as_str().unwrap().to_owned()
    };
    let cfg = curtin(&api);
    assert!(cfg.contains("10.20.0.10/24"), "{cfg}");
    let routes_at = cfg.find("routes:").expect("a routes list");
    let tail = &cfg[routes_at..];
    assert!(tail.contains("to: default"), "{cfg}");
    assert!(tail.contains("to: \"192.168.50.0/24\""), "{cfg}");
    assert!(tail.contains("via: \"10.20.0.254\""), "{cfg}");
    assert!(tail.contains("metric: 5"), "{cfg}");

    // What the installer itself reads: the curtin user-data of a
    // deploying machine, fetched with the node's own token.
    let deploying = load(
        m,
        &json!([{"hostname": "sp-deploying", "status": "deploying", "owner": "admin",
                 "disks": [{"name": "sda", "size": 20_000_000_000u64}],
                 "nics": [{"name": "eth0", "mac": "52:54:00:5a:00:03",
                           "links": [{"mode": "static", "subnet": "10.20.0.0/24", "ip": "10.20.0.11"}]}]}]),
    );
    let t = api.ok(
        200,
        "GET",
        &format!("machines/{}/?op=get_token", deploying[0]),
        &[],
    );
    let node_key = format!(
        "{}:{}:{}",
        t["consumer_key"].as_str().unwrap(),
        t["token_key"].as_str().unwrap(),
        t["token_secret"].as_str().unwrap()
    );
    let (st, ud) = api_call(
        &m.addr,
        &node_key,
        "GET",
        "/MAAS/metadata/curtin/2012-03-01/user-data",
        "",
    );
    assert_eq!(st, 200, "{ud}");
    let ud = ud.as_str().unwrap();
    assert!(ud.contains("10.20.0.11/24"), "{ud}");
    assert!(ud.contains("to: \"192.168.50.0/24\""), "{ud}");
    assert!(ud.contains("via: \"10.20.0.254\""), "{ud}");

    // --- a non-admin reads but does not write (MAAS: `@admin_method`
    // create, `NodePermission.admin` update/delete after the 404).
    let (st, _) = api.call(
        "POST",
        "users/",
        &[
            ("username", "sam"),
            ("email", "sam@example.com"),
            ("password", "sam-pw"),
            ("is_superuser", "0"),
        ],
    );
    assert!((200..300).contains(&st), "creating sam: {st}");
    let sam_key = m
        .manage(&["apikey", "--username", "sam"])
        .unwrap()
        .trim()
        .to_owned();
    let sam = Api {
        addr: &m.addr,
        key: &sam_key,
    };
    let seen = names(&sam.ok(200, "GET", "spaces/", &[]));
    assert!(seen.iter().any(|n| n == "backbone"), "{seen:?}");
    sam.ok(200, "GET", &format!("spaces/{bid}/"), &[]);
    sam.ok(403, "POST", "spaces/", &[("name", "sams")]);
    sam.ok(403, "PUT", &format!("spaces/{bid}/"), &[("name", "sams")]);
    sam.ok(403, "DELETE", &format!("spaces/{bid}/"), &[]);
    sam.ok(404, "PUT", "spaces/424242/", &[("name", "sams")]);
    assert_eq!(
        sam.ok(200, "GET", "static-routes/", &[])[0]["id"],
        json!(rid)
    );
    sam.ok(200, "GET", &format!("static-routes/{rid}/"), &[]);
    sam.ok(
        403,
        "POST",
        "static-routes/",
        &[
            ("source", "10.20.0.0/24"),
            ("destination", "192.168.50.0/24"),
            ("gateway_ip", "10.20.0.2"),
        ],
    );
    sam.ok(
        403,
        "PUT",
        &format!("static-routes/{rid}/"),
        &[("metric", "1")],
    );
    sam.ok(403, "DELETE", &format!("static-routes/{rid}/"), &[]);
    sam.ok(404, "DELETE", "static-routes/424242/", &[]);
    assert_eq!(
        api.ok(200, "GET", &format!("spaces/{bid}/"), &[])["name"],
        "backbone"
    );
    let (st, _) = api_call(&m.addr, "x:y:z", "GET", "/MAAS/api/2.0/spaces/", "");
    assert_eq!(st, 401);

    let upd = api.ok(
        200,
        "PUT",
        &format!("static-routes/{rid}/"),
        &[("metric", "7")],
    );
    assert_eq!(upd["metric"], 7);
    assert_eq!(upd["gateway_ip"], "10.20.0.254");
    assert!(curtin(&api).contains("metric: 7"));
    let e = api.ok(
        400,
        "PUT",
        &format!("static-routes/{rid}/"),
        &[("gateway_ip", "")],
    );
    assert_eq!(e, json!({"gateway_ip": ["This field is required."]}));
    let e = api.ok(
        400,
        "PUT",
        &format!("static-routes/{rid}/"),
        &[("gateway_ip", "10.21.0.1")],
    );
    assert_eq!(
        e,
        json!({"gateway_ip": ["Enter an IP address in 10.20.0.0/24."]})
    );

    // Deleting the destination subnet deletes the route (MAAS cascades).
    api.ok(204, "DELETE", &format!("subnets/{dst_id}/"), &[]);
    api.ok(404, "GET", &format!("static-routes/{rid}/"), &[]);
    assert_eq!(api.ok(200, "GET", "static-routes/", &[]), json!([]));
    assert!(!curtin(&api).contains("192.168.50.0/24"));
}

/// The four handlers are in `describe` under MAAS's names (python-libmaas
/// binds `Spaces`, `Space`, `StaticRoutes`, `StaticRoute` by them) and in
/// the OpenAPI document.
fn described(m: &Maasd) {
    let (status, _, body) = m.get("/MAAS/api/2.0/describe/").unwrap();
    assert_eq!(status, 200);
    let describe: Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = m.get("/MAAS/api/2.0/openapi.json").unwrap();
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&body).unwrap();
    for (name, path, methods) in [
        (
            "SpacesHandler",
            "/MAAS/api/2.0/spaces/",
            &["GET", "POST"][..],
        ),
        (
            "SpaceHandler",
            "/MAAS/api/2.0/spaces/{id}/",
            &["GET", "PUT", "DELETE"][..],
        ),
        (
            "StaticRoutesHandler",
            "/MAAS/api/2.0/static-routes/",
            &["GET", "POST"][..],
        ),
        (
            "StaticRouteHandler",
            "/MAAS/api/2.0/static-routes/{id}/",
            &["GET", "PUT", "DELETE"][..],
        ),
    ] {
        let h = describe["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from describe"));
        assert_eq!(h["path"], path, "{h}");
        let mut got: Vec<&str> = h["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["method"].as_str().unwrap())
            .collect();
        got.sort_unstable();
        let mut want = methods.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{name}");
        for method in methods {
            assert!(
                openapi["paths"][path][method.to_ascii_lowercase()].is_object(),
                "{method} {path} missing from OpenAPI"
            );
        }
    }
}

#[test]
fn spaces_and_static_routes_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    described(&m);
    run(&m);
}

#[test]
fn spaces_and_static_routes_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    run(&m);
}
