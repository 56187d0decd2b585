//! The metadata API in-process: node-token authentication, refusals and the
//! status effects of signals, webhook events and the user-data read.

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use super::Fixture;

fn node_auth(ck: &str, tk: &str, ts: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nonce: u64 = rand::random();
    format!(
        "OAuth oauth_version=1.0, oauth_signature_method=PLAINTEXT, oauth_consumer_key={ck}, oauth_token={tk}, oauth_signature=&{ts}, oauth_nonce={nonce}, oauth_timestamp={now}"
    )
}

struct Node {
    sid: String,
    ck: String,
    tk: String,
    ts: String,
}

impl Node {
    fn auth(&self) -> String {
        node_auth(&self.ck, &self.tk, &self.ts)
    }
}

async fn new_node(f: &Fixture) -> Node {
    let (st, body) = f
        .post(
            "/MAAS/api/2.0/machines/",
            "architecture=amd64/generic&mac_addresses=52:54:00:aa:00:01&hostname=meta1&power_type=manual",
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["status_name"], "Commissioning");
    let sid = m["system_id"].as_str().unwrap().to_owned();
    let (st, body) = f
        .get(&format!("/MAAS/api/2.0/machines/{sid}/?op=get_token"))
        .await;
    assert_eq!(st, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    Node {
        sid,
        ck: t["consumer_key"].as_str().unwrap().into(),
        tk: t["token_key"].as_str().unwrap().into(),
        ts: t["token_secret"].as_str().unwrap().into(),
    }
}

/// A new node whose commissioning ended well (the `OK` signal): Ready.
async fn ready_node(f: &Fixture) -> Node {
    let n = new_node(f).await;
    let form = "application/x-www-form-urlencoded";
    let st = node_post(
        f,
        Some(&n.auth()),
        "/MAAS/metadata/latest/",
        form,
        "op=signal&status=OK",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(status_of(f, &n.sid).await, "Ready");
    n
}

async fn send_raw(f: &Fixture, req: Request<Body>) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    let res = maas_server::app(f.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let st = res.status().as_u16();
    let b = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap();
    (st, b.to_vec())
}

async fn node_get(f: &Fixture, auth: &str, uri: &str) -> (u16, Vec<u8>) {
    let req = Request::get(uri)
        .header("Authorization", auth)
        .body(Body::empty())
        .unwrap();
    send_raw(f, req).await
}

async fn node_post(f: &Fixture, auth: Option<&str>, uri: &str, ctype: &str, body: &str) -> u16 {
    let mut req = Request::post(uri).header("Content-Type", ctype);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let req = req.body(Body::from(body.to_owned())).unwrap();
    send_raw(f, req).await.0
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn status_of(f: &Fixture, sid: &str) -> String {
    let (_, body) = f.get(&format!("/MAAS/api/2.0/machines/{sid}/")).await;
    let m: Value = serde_json::from_str(&body).unwrap();
    m["status_name"].as_str().unwrap().to_owned()
}

/// Deleting a machine through the API deletes its script sets and
/// results too (MAAS cascades them); nothing is left for its system id.
#[tokio::test]
async fn deleting_a_machine_deletes_its_script_results() {
    let f = Fixture::new();
    let n = new_node(&f).await;
    let uri = "/MAAS/metadata/latest/";
    let form = "application/x-www-form-urlencoded";
    let body = format!(
        "op=signal&status=WORKING&exit_status=0&00-maas-02-meminfo={}",
        url_encode("MemTotal: 8388608 kB\n")
    );
    assert_eq!(node_post(&f, Some(&n.auth()), uri, form, &body).await, 200);
    let mut conn = f.state.pool.get().unwrap();
    let sets = maas_server::metadata::results::sets_of(&mut conn, &n.sid, None).unwrap();
    assert!(!sets.is_empty(), "the run has a set");
    let set_id = sets[0].id;
    assert!(
        !maas_server::metadata::results::results_of(&mut conn, set_id)
            .unwrap()
            .is_empty()
    );
    drop(conn);
    let req = axum::http::Request::builder()
        .method("DELETE")
        .uri(format!("/MAAS/api/2.0/machines/{}/", n.sid))
        .header("Authorization", f.auth())
        .body(axum::body::Body::empty())
        .unwrap();
    let (resp, body) = f.send(req).await;
    assert_eq!(resp.status().as_u16(), 204, "{body}");
    let mut conn = f.state.pool.get().unwrap();
    assert!(
        maas_server::metadata::results::sets_of(&mut conn, &n.sid, None)
            .unwrap()
            .is_empty()
    );
    assert!(
        maas_server::metadata::results::results_of(&mut conn, set_id)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn node_token_reads_its_own_metadata_and_others_are_refused() {
    let f = Fixture::new();
    let n = new_node(&f).await;
    let (st, body) = node_get(&f, &n.auth(), "/MAAS/metadata/latest/meta-data/instance-id").await;
    assert_eq!((st, String::from_utf8(body).unwrap()), (200, n.sid.clone()));
    let (st, body) = node_get(
        &f,
        &n.auth(),
        "/MAAS/metadata/2012-03-01/meta-data/local-hostname",
    )
    .await;
    assert_eq!(
        (st, String::from_utf8(body).unwrap()),
        (200, "meta1.maas".to_owned())
    );
    // A user's token is not a node token; a wrong secret is refused.
    let (st, _) = node_get(&f, &f.auth(), "/MAAS/metadata/latest/meta-data/instance-id").await;
    assert_eq!(st, 401);
    let bad = node_auth(&n.ck, &n.tk, "wrong");
    let (st, _) = node_get(&f, &bad, "/MAAS/metadata/latest/meta-data/instance-id").await;
    assert_eq!(st, 401);
    // The scripts tarball carries its index.
    let (st, tar) = node_get(&f, &n.auth(), "/MAAS/metadata/latest/maas-scripts").await;
    assert_eq!(st, 200);
    assert!(tar.windows(10).any(|w| w == b"index.json"));
    // Commissioning: user-data is the runner.
    let (st, ud) = node_get(&f, &n.auth(), "/MAAS/metadata/latest/user-data").await;
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&ud).contains("maas-run-scripts"));
}

#[tokio::test]
async fn signals_and_webhook_events_move_the_machine() {
    let f = Fixture::new();
    let n = new_node(&f).await;
    let form = "application/x-www-form-urlencoded";
    let uri = "/MAAS/metadata/latest/";
    assert_eq!(
        node_post(&f, Some(&n.auth()), uri, form, "op=signal&status=BOGUS").await,
        400
    );
    assert_eq!(
        node_post(&f, Some(&n.auth()), uri, form, "op=signal&status=WORKING").await,
        200
    );
    assert_eq!(status_of(&f, &n.sid).await, "Commissioning");
    // Commissioning output arrives as form parts named after the script.
    let lsblk = r#"{"blockdevices":[{"name":"sda","size":107374182400,"type":"disk","ro":false,"rota":false,"log-sec":512}]}"#;
    let body = format!(
        "op=signal&status=WORKING&exit_status=0&00-maas-07-block-devices={}&00-maas-02-meminfo={}",
        url_encode(lsblk),
        url_encode("MemTotal: 8388608 kB\n")
    );
    assert_eq!(node_post(&f, Some(&n.auth()), uri, form, &body).await, 200);
    assert_eq!(
        node_post(&f, Some(&n.auth()), uri, form, "op=signal&status=OK").await,
        200
    );
    assert_eq!(status_of(&f, &n.sid).await, "Ready");
    // Hardware and the default (flat) layout on the boot disk are stored.
    let sid: maas_core::SystemId = n.sid.parse().unwrap();
    let mut conn = f.state.pool.get().unwrap();
    let sm = maas_server::db::machines::get(&mut conn, &sid)
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(sm.record.machine.memory_mib, 8192);
    assert_eq!(sm.record.machine.block_devices[0].name, "sda");
    assert_eq!(sm.record.extra.storage_layout, "flat");
    assert!(sm.record.machine.storage.mounted_at("/").is_some());
    let (st, body) = f
        .get(&format!("/MAAS/api/2.0/nodes/{}/results/", n.sid))
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("00-maas-07-block-devices"), "{body}");
    // One set for this run, in the script results tables; output only on
    // request, base64 as MAAS.
    let sets: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sets.as_array().unwrap().len(), 1, "{sets}");
    assert_eq!(sets[0]["type_name"], "Commissioning");
    assert_eq!(sets[0]["status_name"], "Passed");
    assert!(sets[0]["results"][0].get("output").is_none(), "{sets}");
    let base = format!("/MAAS/api/2.0/nodes/{}/results", n.sid);
    let (st, body) = f
        .get(&format!(
            "{base}/current-commissioning/?include_output=1&filters=00-maas-02-meminfo"
        ))
        .await;
    assert_eq!(st, 200, "{body}");
    let set: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(set["id"], sets[0]["id"]);
    let rs = set["results"].as_array().unwrap();
    assert_eq!(rs.len(), 1, "{set}");
    assert_eq!(rs[0]["name"], "00-maas-02-meminfo");
    assert_eq!(
        (rs[0]["status_name"].as_str(), rs[0]["exit_status"].as_i64()),
        (Some("Passed"), Some(0))
    );
    use base64::Engine;
    let out = base64::engine::general_purpose::STANDARD
        .decode(rs[0]["output"].as_str().unwrap())
        .unwrap();
    assert_eq!(out, b"MemTotal: 8388608 kB\n");
    assert_eq!(f.get(&format!("{base}/current-bogus/")).await.0, 400);
    assert_eq!(f.get(&format!("{base}/999999/")).await.0, 404);
    assert_eq!(f.get(&format!("{base}/current-testing/")).await.0, 404);

    // The webhook: 401 without a token, 400 on a bad body, 204 otherwise.
    let hook = format!("/MAAS/metadata/status/{}", n.sid);
    let json = "application/json";
    assert_eq!(node_post(&f, None, &hook, json, "{}").await, 401);
    assert_eq!(node_post(&f, Some(&n.auth()), &hook, json, "{").await, 400);
    let ev = r#"{"event_type":"start","origin":"curtin","name":"cmd-install","description":"x"}"#;
    assert_eq!(node_post(&f, Some(&n.auth()), &hook, json, ev).await, 204);

    // Deploy, fail through the webhook.
    let (st, body) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{}/", n.sid),
            "op=deploy&distro_series=noble",
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let fail = r#"{"event_type":"finish","origin":"curtin","name":"cmd-install","description":"boom","result":"FAIL"}"#;
    assert_eq!(node_post(&f, Some(&n.auth()), &hook, json, fail).await, 204);
    assert_eq!(status_of(&f, &n.sid).await, "Failed deployment");
    // Signals in a status that takes none are refused with 409.
    let (st, _) = f
        .post(&format!("/MAAS/api/2.0/machines/{}/", n.sid), "op=release")
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        node_post(&f, Some(&n.auth()), uri, form, "op=signal&status=OK").await,
        200,
        "Ready is signalable (ignored)"
    );
}

#[tokio::test]
async fn deploying_machine_is_deployed_when_its_os_reads_user_data() {
    let f = Fixture::new();
    let n = ready_node(&f).await;
    // base64 of "#!/bin/sh\necho hi\n"
    let (st, body) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{}/", n.sid),
            "op=deploy&distro_series=noble&user_data=IyEvYmluL3NoCmVjaG8gaGkK",
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // The installer's own datasource (curtin) does not end the deployment.
    let (st, _) = node_get(&f, &n.auth(), "/MAAS/metadata/curtin/latest/user-data").await;
    assert_eq!(st, 200);
    assert_eq!(status_of(&f, &n.sid).await, "Deploying");
    let (st, ud) = node_get(&f, &n.auth(), "/MAAS/metadata/latest/user-data").await;
    assert_eq!(
        (st, ud.as_slice()),
        (200, b"#!/bin/sh\necho hi\n".as_slice())
    );
    assert_eq!(status_of(&f, &n.sid).await, "Deployed");
}

#[tokio::test]
async fn deployments_get_the_package_repositories_and_the_proxy() {
    let f = Fixture::new();
    let n = ready_node(&f).await;
    for (uri, form) in [
        (
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=http_proxy&value=http://proxy.example:3128/",
        ),
        (
            "/MAAS/api/2.0/package-repositories/",
            "name=Tools&url=http://repo.example/tools&components=main,extra&key=TOOLSKEY",
        ),
        (
            "/MAAS/api/2.0/package-repositories/",
            "name=armonly&url=http://arm.example/x&arches=arm64",
        ),
    ] {
        let (st, body) = f.post(uri, form).await;
        assert_eq!(st, 200, "{uri} {form}: {body}");
    }
    let (st, body) = f
        .put(
            "/MAAS/api/2.0/package-repositories/main_archive/",
            "url=http://mirror.example/ubuntu&disabled_pockets=backports",
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{}/", n.sid),
            "op=deploy&distro_series=jammy",
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, ud) = node_get(&f, &n.auth(), "/MAAS/metadata/curtin/latest/user-data").await;
    assert_eq!(st, 200);
    let ud = String::from_utf8(ud).unwrap();
    for want in [
        "http://mirror.example/ubuntu",
        "http://ports.ubuntu.com/ubuntu-ports",
        "deb $PRIMARY $RELEASE-updates",
        "deb http://repo.example/tools $RELEASE main extra",
        "TOOLSKEY",
        "tools_",
        "http://proxy.example:3128/",
    ] {
        assert!(
            ud.contains(want),
            "{want} missing from curtin user-data:\n{ud}"
        );
    }
    assert!(!ud.contains("$RELEASE-backports"), "{ud}");
    assert!(
        !ud.contains("arm.example"),
        "an arm64-only repository on amd64:\n{ud}"
    );
    // The API's view of the same configuration.
    let (st, cfg) = f
        .get(&format!(
            "/MAAS/api/2.0/machines/{}/?op=get_curtin_config",
            n.sid
        ))
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert!(cfg.contains("http://mirror.example/ubuntu"), "{cfg}");
    // Vendor data carries the proxy; turning the proxy off removes it.
    let (_, vd) = node_get(&f, &n.auth(), "/MAAS/metadata/latest/meta-data/vendor-data").await;
    assert!(String::from_utf8_lossy(&vd).contains("http://proxy.example:3128/"));
    let (st, _) = f
        .post(
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=enable_http_proxy&value=false",
        )
        .await;
    assert_eq!(st, 200);
    let (_, ud) = node_get(&f, &n.auth(), "/MAAS/metadata/curtin/latest/user-data").await;
    assert!(!String::from_utf8_lossy(&ud).contains("proxy.example"));
    // curtin_verbose (on by default) sets curtin's verbosity.
    assert!(String::from_utf8_lossy(&ud).contains("verbosity: 3"));
    let (st, _) = f
        .post(
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=curtin_verbose&value=false",
        )
        .await;
    assert_eq!(st, 200);
    let (_, ud) = node_get(&f, &n.auth(), "/MAAS/metadata/curtin/latest/user-data").await;
    assert!(!String::from_utf8_lossy(&ud).contains("verbosity"));
    // Other systems keep their image's sources.
    let mut c = f.state.pool.get().unwrap();
    let apt = maas_server::api::repos::apt_for(&mut c, "debian", "amd64").unwrap();
    assert!(apt.archive.is_empty() && apt.sources.is_empty(), "{apt:?}");
    // On arm64: only the arm64 repository, and the ports archive's own
    // (untouched) pockets.
    let apt = maas_server::api::repos::apt_for(&mut c, "ubuntu", "arm64").unwrap();
    let names: Vec<&str> = apt.sources.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.len() == 1 && names[0].starts_with("armonly_"),
        "{apt:?}"
    );
    assert!(apt.disabled_pockets.is_empty(), "{apt:?}");
}

#[tokio::test]
async fn interfaces_link_to_subnets_with_free_or_given_addresses() {
    let f = Fixture::new();
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/subnets/",
            "cidr=10.9.0.0/24&gateway_ip=10.9.0.1",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let subnet: Value = serde_json::from_str(&b).unwrap();
    let sid = subnet["id"].as_i64().unwrap();
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/ipranges/",
            &format!("type=reserved&start_ip=10.9.0.2&end_ip=10.9.0.10&subnet={sid}"),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let n = ready_node(&f).await;
    let (_, b) = f
        .get(&format!("/MAAS/api/2.0/nodes/{}/interfaces/", n.sid))
        .await;
    let ifaces: Value = serde_json::from_str(&b).unwrap();
    let iid = ifaces[0]["id"].as_i64().unwrap();
    let uri = format!("/MAAS/api/2.0/nodes/{}/interfaces/{iid}/", n.sid);
    let link = |form: String| {
        let (f, uri) = (&f, uri.clone());
        async move { f.post(&uri, &format!("op=link_subnet&{form}")).await }
    };
    // STATIC without an address: the first one past the gateway and the
    // reserved range.
    let (st, b) = link("mode=STATIC&subnet=10.9.0.0/24".into()).await;
    assert_eq!(st, 200, "{b}");
    let i: Value = serde_json::from_str(&b).unwrap();
    let links = i["links"].as_array().unwrap();
    let first = links.iter().find(|l| l["mode"] == "static").unwrap();
    assert_eq!(first["ip_address"], "10.9.0.11", "{i}");
    let first_id = first["id"].as_i64().unwrap();
    // The refusals.
    for (form, field) in [
        (
            format!("mode=STATIC&subnet={sid}&ip_address=10.9.0.11"),
            "ip_address",
        ),
        (
            format!("mode=STATIC&subnet={sid}&ip_address=10.9.0.5"),
            "ip_address",
        ),
        (
            format!("mode=STATIC&subnet={sid}&ip_address=10.9.1.5"),
            "ip_address",
        ),
        (
            format!("mode=DHCP&subnet={sid}&ip_address=10.9.0.60"),
            "ip_address",
        ),
        ("mode=AUTO".to_owned(), "subnet"),
        ("mode=BOGUS&subnet=10.9.0.0/24".to_owned(), "mode"),
        ("mode=STATIC&subnet=192.0.2.0/24".to_owned(), "subnet"),
    ] {
        let (st, b) = link(form.clone()).await;
        assert_eq!(st, 400, "{form}: {b}");
        let e: Value = serde_json::from_str(&b).unwrap();
        assert!(e[field].is_array(), "{form}: {b}");
    }
    let (st, b) = link(format!("mode=STATIC&subnet={sid}&ip_address=10.9.0.50")).await;
    assert_eq!(st, 200, "{b}");
    // Unlinking frees the address for the next link.
    let i: Value = serde_json::from_str(&b).unwrap();
    let fifty = i["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ip_address"] == "10.9.0.50")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, b) = f.post(&uri, &format!("op=unlink_subnet&id={fifty}")).await;
    assert_eq!(st, 200, "{b}");
    assert!(!b.contains("10.9.0.50"), "{b}");
    let (st, b) = link(format!("mode=STATIC&subnet={sid}&ip_address=10.9.0.50")).await;
    assert_eq!(st, 200, "{b}");
    // A second subnet whose gateway becomes the default route.
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/subnets/",
            "cidr=10.8.0.0/24&gateway_ip=10.8.0.1",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = link("mode=DHCP&default_gateway=true".into()).await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = link("mode=STATIC&subnet=10.8.0.0/24".into()).await;
    assert_eq!(st, 200, "{b}");
    let i: Value = serde_json::from_str(&b).unwrap();
    let eight = i["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subnet"]["cidr"] == "10.8.0.0/24")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, b) = f.post(&uri, "op=set_default_gateway&link_id=99999").await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = f
        .post(&uri, &format!("op=set_default_gateway&link_id={eight}"))
        .await;
    assert_eq!(st, 200, "{b}");
    // The deployed system's network configuration carries both addresses.
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/machines/",
            &format!("op=allocate&system_id={}", n.sid),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{}/", n.sid),
            "op=deploy&distro_series=jammy",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, cfg) = f
        .get(&format!(
            "/MAAS/api/2.0/machines/{}/?op=get_curtin_config",
            n.sid
        ))
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert!(
        cfg.contains("10.9.0.11") && cfg.contains("10.9.0.50"),
        "{cfg}"
    );
    // The default route is the chosen link's gateway, not the first subnet's.
    assert!(cfg.contains("via: \"10.8.0.1\""), "{cfg}");
    assert!(!cfg.contains("via: \"10.9.0.1\""), "{cfg}");
    // Not while deploying.
    let (st, b) = f
        .post(&uri, &format!("op=unlink_subnet&id={first_id}"))
        .await;
    assert_eq!(st, 409, "{b}");
}
