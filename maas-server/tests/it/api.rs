//! Describe, OAuth, op dispatch and MAAS's error shapes.

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use crate::Fixture;

#[tokio::test]
async fn describe_is_anonymous_exact_json_and_matches_the_table() {
    let f = Fixture::new();
    let (res, body) = f
        .send(
            Request::get("/MAAS/api/2.0/describe/")
                .header("Host", "maas.example:5240")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        res.headers()["x-maas-api-hash"],
        v["hash"].as_str().unwrap()
    );
    let resources = v["resources"].as_array().unwrap();
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "resources sorted by name");
    for want in [
        "MachinesHandler",
        "MachineHandler",
        "VersionHandler",
        "UsersHandler",
        "AccountHandler",
        "SSHKeysHandler",
        "BootSourcesHandler",
        "BootSourceSelectionsHandler",
        "ZonesHandler",
        "ResourcePoolsHandler",
        "TagsHandler",
        "MaasHandler",
        "EventsHandler",
    ] {
        assert!(names.contains(&want), "{want} missing");
    }
    let machines = resources
        .iter()
        .find(|r| r["name"] == "MachinesHandler")
        .unwrap();
    assert_eq!(machines["anon"]["name"], "AnonMachinesHandler");
    let auth = &machines["auth"];
    assert_eq!(auth["path"], "/MAAS/api/2.0/machines/");
    assert_eq!(
        auth["uri"],
        "http://maas.example:5240/MAAS/api/2.0/machines/"
    );
    let actions = auth["actions"].as_array().unwrap();
    let allocate = actions.iter().find(|a| a["name"] == "allocate").unwrap();
    assert_eq!(allocate["method"], "POST");
    assert_eq!(allocate["op"], "allocate");
    assert_eq!(allocate["restful"], false);
    let read = actions.iter().find(|a| a["name"] == "read").unwrap();
    assert_eq!(read["op"], Value::Null);
    assert_eq!(read["restful"], true);
    let machine = resources
        .iter()
        .find(|r| r["name"] == "MachineHandler")
        .unwrap();
    assert_eq!(machine["auth"]["params"], serde_json::json!(["system_id"]));
    let version = resources
        .iter()
        .find(|r| r["name"] == "VersionHandler")
        .unwrap();
    assert!(version["auth"].is_null() && version["anon"].is_object());
    // Legacy `handlers`: anon handlers first, then auth.
    assert!(v["handlers"].as_array().unwrap().len() > resources.len());
}

#[tokio::test]
async fn oauth_rejections_carry_date_and_the_right_status() {
    let f = Fixture::new();
    // No credentials on an auth-only resource.
    let (res, _) = f
        .send(
            Request::get("/MAAS/api/2.0/users/?op=whoami")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("date"));
    // Wrong secret.
    let bad = f.auth().replace(&f.key.2, "wrongsecret");
    let (res, _) = f
        .send(
            Request::get("/MAAS/api/2.0/users/?op=whoami")
                .header("Authorization", bad)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("date"));
    // Non-integer timestamp is a 400, as MAAS.
    let h = format!(
        "OAuth oauth_consumer_key={}, oauth_token={}, oauth_signature=&{}, oauth_signature_method=PLAINTEXT, oauth_timestamp=soon, oauth_nonce=1",
        f.key.0, f.key.1, f.key.2
    );
    let (res, _) = f
        .send(
            Request::get("/MAAS/api/2.0/users/?op=whoami")
                .header("Authorization", h)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 400);
    // curtin's unquoted raw form is accepted.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let raw = format!(
        "OAuth oauth_version=1.0, oauth_signature_method=PLAINTEXT, oauth_consumer_key={}, oauth_token={}, oauth_signature=&{}, oauth_nonce=raw1, oauth_timestamp={now}",
        f.key.0, f.key.1, f.key.2
    );
    let (res, body) = f
        .send(
            Request::get("/MAAS/api/2.0/users/?op=whoami")
                .header("Authorization", raw)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200, "{body}");
    assert!(res.headers().contains_key("x-maas-api-hash"));
}

#[tokio::test]
async fn op_dispatch_and_error_shapes() {
    let f = Fixture::new();
    let (s, b) = f.get("/MAAS/api/2.0/machines/?op=nonsense").await;
    assert_eq!(
        (s, b.as_str()),
        (400, "Unrecognised signature: method=GET op=nonsense")
    );
    // op in the form body.
    let (s, b) = f
        .post("/MAAS/api/2.0/zones/", "name=z1&description=d")
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=maas_name&value=lab",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .get("/MAAS/api/2.0/maas/?op=get_config&name=maas_name")
        .await;
    assert_eq!((s, b.as_str()), (200, "\"lab\""));
    // 400 with a field dict.
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/",
            "architecture=z80&mac_addresses=52:54:00:00:00:01",
        )
        .await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert!(v["architecture"][0].as_str().unwrap().contains("z80"));
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/",
            "architecture=amd64&mac_addresses=nonsense",
        )
        .await;
    assert_eq!(s, 400, "{b}");
    // 404 text.
    let (s, _) = f.get("/MAAS/api/2.0/machines/xxxxxx/").await;
    assert_eq!(s, 404);
    // 409 when nothing can be allocated; 400 for an unknown constraint.
    let (s, _) = f.post("/MAAS/api/2.0/machines/?op=allocate", "").await;
    assert_eq!(s, 409);
    let (s, b) = f
        .post("/MAAS/api/2.0/machines/?op=allocate", "bogus=1")
        .await;
    assert_eq!(s, 400);
    assert!(b.contains("No such constraint"), "{b}");
    // The 1.0 API is gone.
    let (res, _) = f
        .send(
            Request::get("/MAAS/api/1.0/nodes/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 410);
}

#[tokio::test]
async fn machine_lifecycle_writes_events() {
    let f = Fixture::new();
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/",
            "architecture=amd64&mac_addresses=52:54:00:00:00:01&power_type=manual&hostname=n1&commission=false",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let m: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(m["status"], 0);
    assert_eq!(m["status_name"], "New");
    // MAAS's REST mark_broken wants the owner, admins included: nobody
    // owns this machine, so the admin is refused.
    let new_id = m["system_id"].as_str().unwrap().to_owned();
    let (s, b) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{new_id}/?op=mark_broken"),
            "comment=psu",
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // A machine created deployed belongs to its creator (the admin).
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/",
            "architecture=amd64&mac_addresses=52:54:00:00:00:02&power_type=manual&hostname=n1d&deployed=true",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let m: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(m["status_name"], "Deployed");
    assert_eq!(
        m["resource_uri"],
        format!(
            "/MAAS/api/2.0/machines/{}/",
            m["system_id"].as_str().unwrap()
        )
    );
    for k in [
        "hostname",
        "fqdn",
        "osystem",
        "distro_series",
        "power_type",
        "status_name",
    ] {
        assert!(m[k].is_string(), "{k} must be a string: {}", m[k]);
    }
    let id = m["system_id"].as_str().unwrap().to_owned();
    let (s, b) = f
        .post(
            &format!("/MAAS/api/2.0/machines/{id}/?op=mark_broken"),
            "comment=psu",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .get(&format!("/MAAS/api/2.0/events/?op=query&id={id}"))
        .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert!(v["count"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["events"][0]["type"], "Broken");
    // Locked machines refuse edits with 403.
    let (s, _) = f
        .post(&format!("/MAAS/api/2.0/machines/{id}/?op=mark_fixed"), "")
        .await;
    assert!(s == 200 || s == 409);
    let (s, b) = f
        .get("/MAAS/api/2.0/machines/?status=broken&hostname=n1")
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.get("/metrics").await;
    assert_eq!(s, 200);
    assert!(
        b.contains("maas_machines{status=\"new\"}")
            || b.contains("maas_machines{status=\"broken\"}"),
        "{b}"
    );
}

#[tokio::test]
async fn password_login_returns_a_working_token() {
    let f = Fixture::new();
    let (res, body) = f
        .send(
            Request::post("/MAAS/accounts/authenticate/")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(Body::from("username=admin&password=pw&consumer=me@host"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "me@host");
    for k in ["consumer_key", "token_key", "token_secret"] {
        assert!(!v[k].as_str().unwrap().is_empty());
    }
    let (res, _) = f
        .send(
            Request::post("/MAAS/accounts/authenticate/")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(Body::from("username=admin&password=nope"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 403);
    let (res, _) = f
        .send(
            Request::get("/MAAS/accounts/authenticate/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 405);
}

/// `events/?op=query` as MAAS answers it: INFO and up unless a level is
/// asked for, the level filtered before the limit, `after` pages forward
/// from the oldest newer event, `next_uri` leads to newer events and
/// `prev_uri` to older ones (carrying `op`, `id`, `level`, `limit`), and
/// `limit` over 1,000 or `after` with `before` are 400s.
#[tokio::test]
async fn events_query_levels_paging_and_limits_follow_maas() {
    use maas_server::db::events::{NewEvent, add};
    let f = Fixture::new();
    {
        let mut c = f.state.pool.get().unwrap();
        // ids 1..=12: DEBUG, INFO, DEBUG, ERROR, … (odd ids DEBUG).
        for i in 1..=12 {
            let level = match i % 4 {
                0 => "ERROR",
                2 => "INFO",
                _ => "DEBUG",
            };
            let description = format!("event {i}");
            let e = NewEvent {
                system_id: "abc123",
                hostname: "n1",
                username: "",
                level,
                type_name: "Test",
                description: &description,
            };
            add(&mut c, &e, i64::from(i) * 1000).unwrap();
        }
    }
    let ids = |v: &Value| -> Vec<i64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let get = |uri: String| {
        let f = &f;
        async move {
            let (s, b) = f.get(&uri).await;
            assert_eq!(s, 200, "{uri}: {b}");
            serde_json::from_str::<Value>(&b).unwrap()
        }
    };
    // Default INFO: the six even ids, newest first; the limit counts only those.
    let v = get("/MAAS/api/2.0/events/?op=query&id=abc123&limit=2".into()).await;
    assert_eq!(ids(&v), vec![12, 10]);
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["next_uri"],
        "/MAAS/api/2.0/events/?op=query&id=abc123&limit=2&after=12"
    );
    assert_eq!(
        v["prev_uri"],
        "/MAAS/api/2.0/events/?op=query&id=abc123&limit=2&before=10"
    );
    // Older: before the oldest shown.
    let older = get(v["prev_uri"].as_str().unwrap().to_owned()).await;
    assert_eq!(ids(&older), vec![8, 6]);
    // Forward from an old id: the events right after it, newest first.
    let v = get("/MAAS/api/2.0/events/?op=query&level=DEBUG&after=3&limit=3".into()).await;
    assert_eq!(ids(&v), vec![6, 5, 4]);
    assert_eq!(
        v["next_uri"],
        "/MAAS/api/2.0/events/?op=query&level=DEBUG&limit=3&after=6"
    );
    assert_eq!(
        v["prev_uri"],
        "/MAAS/api/2.0/events/?op=query&level=DEBUG&limit=3&before=4"
    );
    let v = get("/MAAS/api/2.0/events/?op=query&level=ERROR".into()).await;
    assert_eq!(ids(&v), vec![12, 8, 4]);
    // Nothing older than the first: no prev_uri; nothing newer yet: a
    // next_uri to poll.
    let v = get("/MAAS/api/2.0/events/?op=query&before=1".into()).await;
    assert_eq!(v["count"], 0);
    assert_eq!(v["prev_uri"], Value::Null);
    assert_eq!(v["next_uri"], "/MAAS/api/2.0/events/?op=query&after=0");
    let v = get("/MAAS/api/2.0/events/?op=query&after=12".into()).await;
    assert_eq!(v["count"], 0);
    assert_eq!(v["next_uri"], "/MAAS/api/2.0/events/?op=query&after=12");
    assert_eq!(v["prev_uri"], "/MAAS/api/2.0/events/?op=query&before=13");
    for (uri, msg) in [
        (
            "/MAAS/api/2.0/events/?op=query&limit=1001",
            "Requested number of events 1001 is greater than limit: 1000",
        ),
        (
            "/MAAS/api/2.0/events/?op=query&after=1&before=5",
            "There is undetermined behaviour when both `after` and `before` are specified.",
        ),
        (
            "/MAAS/api/2.0/events/?op=query&level=LOUD",
            "Unrecognised log level: LOUD",
        ),
    ] {
        let (s, b) = f.get(uri).await;
        assert_eq!((s, b.as_str()), (400, msg), "{uri}");
    }
}
