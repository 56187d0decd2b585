//! `package-repositories/`: MAAS's two default Ubuntu archives, additional
//! repositories, and the form's checks.

use serde_json::Value;

use crate::Fixture;

fn json(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))
}

#[tokio::test]
async fn package_repositories_as_maas_keeps_them() {
    let f = Fixture::new();
    let base = "/MAAS/api/2.0/package-repositories/";
    let (st, b) = f.get(base).await;
    assert_eq!(st, 200);
    let list = json(&b);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main_archive", "ports_archive"]);
    assert_eq!(list[0]["url"], "http://archive.ubuntu.com/ubuntu");
    assert_eq!(list[0]["arches"], serde_json::json!(["amd64", "i386"]));
    assert_eq!(list[1]["url"], "http://ports.ubuntu.com/ubuntu-ports");
    assert_eq!(list[0]["enabled"], true);
    assert_eq!(list[0]["disable_sources"], true);
    let main_id = list[0]["id"].as_i64().unwrap();

    // A custom repository: lists split on commas, arches defaulted.
    let (st, b) = f
        .post(
            base,
            "name=extra&url=http://repo.example/x&distributions=stable,testing",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let r = json(&b);
    assert_eq!(r["distributions"], serde_json::json!(["stable", "testing"]));
    assert_eq!(r["arches"], serde_json::json!(["amd64", "i386"]));
    assert_eq!(r["enabled"], true);
    let id = r["id"].as_i64().unwrap();
    assert_eq!(r["resource_uri"], format!("{base}{id}/"));

    // The form's refusals.
    for (form, field, msg) in [
        ("name=extra&url=http://a.example/", "name", "already exists"),
        ("name=bad&url=not a url", "url", "valid repository URL"),
        (
            "name=bad&url=http://a.example/&arches=sparc",
            "arches",
            "not a valid architecture",
        ),
        ("url=http://a.example/", "name", "required"),
        (
            "name=bad&url=http://a.example/&disabled_components=universe",
            "disabled_components",
            "custom repository",
        ),
    ] {
        let (st, b) = f.post(base, form).await;
        assert_eq!(st, 400, "{form}: {b}");
        let e = json(&b);
        assert!(e[field][0].as_str().unwrap().contains(msg), "{form}: {b}");
    }
    let main = format!("{base}{main_id}/");
    for (form, field) in [
        ("components=extra", "components"),
        ("disabled_pockets=proposed", "disabled_pockets"),
        ("enabled=false", "__all__"),
    ] {
        let (st, b) = f.put(&main, form).await;
        assert_eq!(st, 400, "{form}: {b}");
        assert!(json(&b)[field].is_array(), "{form}: {b}");
    }

    // Updates are partial; the archive's pockets and components change.
    let (st, b) = f
        .put(
            &main,
            "disabled_pockets=updates,backports&disabled_components=multiverse",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let r = json(&b);
    assert_eq!(r["url"], "http://archive.ubuntu.com/ubuntu");
    assert_eq!(
        r["disabled_pockets"],
        serde_json::json!(["updates", "backports"])
    );
    let (st, b) = f.put(&main, "disabled_pockets=").await;
    assert_eq!(
        (st, json(&b)["disabled_pockets"].clone()),
        (200, serde_json::json!([]))
    );

    // The defaults stay; others go.
    let (st, b) = f.delete_req(&main).await;
    assert_eq!(
        (st, b.as_str()),
        (400, "Cannot delete default Ubuntu archives.")
    );
    assert_eq!(f.delete_req(&format!("{base}{id}/")).await.0, 204);
    assert_eq!(f.get(&format!("{base}{id}/")).await.0, 404);
}

#[tokio::test]
async fn the_archive_settings_are_the_default_repositories() {
    let f = Fixture::new();
    let (st, b) = f
        .get("/MAAS/api/2.0/maas/?op=get_config&name=main_archive")
        .await;
    assert_eq!(
        (st, b.as_str()),
        (200, "\"http://archive.ubuntu.com/ubuntu\"")
    );
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=ports_archive&value=http://mirror.example/ports",
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = f
        .get("/MAAS/api/2.0/package-repositories/ports_archive/")
        .await;
    assert_eq!(json(&b)["url"], "http://mirror.example/ports");
    let (st, b) = f
        .post(
            "/MAAS/api/2.0/maas/",
            "op=set_config&name=main_archive&value=not-a-url",
        )
        .await;
    assert_eq!(st, 400, "{b}");
    let (_, b) = f
        .get("/MAAS/api/2.0/maas/?op=get_config&name=main_archive")
        .await;
    assert_eq!(b, "\"http://archive.ubuntu.com/ubuntu\"");
    for name in [
        "curtin_verbose",
        "default_dns_ttl",
        "windows_kms_host",
        "enable_http_proxy",
    ] {
        let (st, b) = f
            .get(&format!("/MAAS/api/2.0/maas/?op=get_config&name={name}"))
            .await;
        assert_eq!(st, 200, "{name}: {b}");
    }
}
