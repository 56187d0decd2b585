//! `files/`: MAAS's per-user file storage, with the anonymous key URL.

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use crate::Fixture;

const BOUNDARY: &str = "files-test-7f3a";

/// A `multipart/form-data` body of text fields and file parts.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (k, v) in files {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{k}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(v);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// An OAuth header for another user's token.
fn auth_for(key: &(String, String, String)) -> String {
    format!(
        "OAuth oauth_nonce=\"{}\", oauth_timestamp=\"{}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
        rand::random::<u64>(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        key.0,
        key.1,
        key.2
    )
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    auth: Option<String>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if !body.is_empty() {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        req = req.header("Content-Type", ct);
    }
    let res = maas_server::app(f.state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

#[tokio::test]
async fn files_are_per_user_readable_by_key_and_go_with_their_owner() {
    let f = Fixture::new();
    let bob = {
        let mut c = f.state.pool.get().unwrap();
        maas_server::db::users::create(&mut c, "bob", "b@x", "pw", false, 0).unwrap();
        let t = maas_server::db::users::create_token(&mut c, "bob", "t", 0).unwrap();
        (t.consumer_key, t.token_key, t.token_secret)
    };
    let admin = || Some(f.auth());
    let blob: Vec<u8> = (0..=255u8).cycle().take(5000).collect();

    // Upload: filename and exactly one file part are required.
    let up = |name: &str, data: &[u8]| multipart(&[("filename", name)], &[("file", data)]);
    assert_eq!(
        call(
            &f,
            "POST",
            "/MAAS/api/2.0/files/",
            admin(),
            up("state", &blob)
        )
        .await
        .0,
        201
    );
    let (s, b) = call(
        &f,
        "POST",
        "/MAAS/api/2.0/files/",
        admin(),
        multipart(&[], &[("file", b"x")]),
    )
    .await;
    assert_eq!(
        (s, String::from_utf8_lossy(&b).as_ref()),
        (400, "Filename not supplied")
    );
    let (s, b) = call(
        &f,
        "POST",
        "/MAAS/api/2.0/files/",
        admin(),
        multipart(&[("filename", "x")], &[]),
    )
    .await;
    assert_eq!(
        (s, String::from_utf8_lossy(&b).as_ref()),
        (400, "File not supplied")
    );
    let two = multipart(&[("filename", "x")], &[("file", b"1"), ("file", b"2")]);
    let (s, b) = call(&f, "POST", "/MAAS/api/2.0/files/", admin(), two).await;
    assert_eq!(
        (s, String::from_utf8_lossy(&b).as_ref()),
        (400, "Exactly one file must be supplied")
    );

    // The listing: the caller's files by name, without content.
    let (s, b) = call(&f, "GET", "/MAAS/api/2.0/files/", admin(), vec![]).await;
    assert_eq!(s, 200);
    let list: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["filename"], "state");
    assert!(list[0].get("content").is_none());
    let key_uri = list[0]["anon_resource_uri"].as_str().unwrap().to_owned();
    assert!(
        key_uri.starts_with("/MAAS/api/2.0/files/?op=get_by_key&key="),
        "{key_uri}"
    );

    // Content back by name (raw) and by key, anonymously.
    let (s, b) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/?op=get&filename=state",
        admin(),
        vec![],
    )
    .await;
    assert_eq!((s, b.as_slice()), (200, blob.as_slice()));
    let (s, b) = call(&f, "GET", &key_uri, None, vec![]).await;
    assert_eq!((s, b.as_slice()), (200, blob.as_slice()));
    let (s, b) = call(&f, "GET", "/MAAS/api/2.0/files/?op=get", admin(), vec![]).await;
    assert_eq!(
        (s, String::from_utf8_lossy(&b).as_ref()),
        (400, "No provided filename!")
    );

    // Another user sees none of it, but the key works for anyone.
    let (s, b) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/",
        Some(auth_for(&bob)),
        vec![],
    )
    .await;
    assert_eq!((s, b.as_slice()), (200, b"[]".as_slice()));
    let (s, _) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/?op=get&filename=state",
        Some(auth_for(&bob)),
        vec![],
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/state/",
        Some(auth_for(&bob)),
        vec![],
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(&f, "GET", &key_uri, Some(auth_for(&bob)), vec![]).await;
    assert_eq!((s, b.as_slice()), (200, blob.as_slice()));

    // Bob's file of the same name is his own; re-uploading replaces the
    // content and keeps the key.
    for content in [b"bob's".as_slice(), b"bob's 2"] {
        let (s, _) = call(
            &f,
            "POST",
            "/MAAS/api/2.0/files/",
            Some(auth_for(&bob)),
            up("state", content),
        )
        .await;
        assert_eq!(s, 201);
    }
    let (_, b) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/state/",
        Some(auth_for(&bob)),
        vec![],
    )
    .await;
    let one: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(one["content"], "Ym9iJ3MgMg==");
    assert_eq!(one["resource_uri"], "/MAAS/api/2.0/files/state/");
    let bob_key = one["anon_resource_uri"].as_str().unwrap().to_owned();
    assert_ne!(bob_key, key_uri);
    let (_, b) = call(
        &f,
        "GET",
        "/MAAS/api/2.0/files/?op=get&filename=state",
        admin(),
        vec![],
    )
    .await;
    assert_eq!(b, blob, "bob's upload touched the admin's file");

    // Deleting a user deletes their files (the key stops working) and SSH
    // keys: an account made later under the same name starts empty.
    let (s, _) = f
        .post(
            "/MAAS/api/2.0/account/prefs/sshkeys/",
            "user=bob&key=ssh-ed25519+AAAAC3NzaC1lZDI1NTE5AAAAIDx7+bob%40host",
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = call(&f, "DELETE", "/MAAS/api/2.0/users/bob/", admin(), vec![]).await;
    assert_eq!(s, 204);
    let (s, _) = call(&f, "GET", &bob_key, None, vec![]).await;
    assert_eq!(s, 404);
    let bob2 = {
        let mut c = f.state.pool.get().unwrap();
        maas_server::db::users::create(&mut c, "bob", "b@x", "pw2", false, 0).unwrap();
        let t = maas_server::db::users::create_token(&mut c, "bob", "t", 0).unwrap();
        (t.consumer_key, t.token_key, t.token_secret)
    };
    for uri in [
        "/MAAS/api/2.0/files/",
        "/MAAS/api/2.0/account/prefs/sshkeys/",
    ] {
        let (s, b) = call(&f, "GET", uri, Some(auth_for(&bob2)), vec![]).await;
        assert_eq!((s, b.as_slice()), (200, b"[]".as_slice()), "{uri}");
    }

    // Delete by parameter and by path.
    assert_eq!(
        call(
            &f,
            "DELETE",
            "/MAAS/api/2.0/files/?filename=state",
            admin(),
            vec![]
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &f,
            "DELETE",
            "/MAAS/api/2.0/files/?filename=state",
            admin(),
            vec![]
        )
        .await
        .0,
        404
    );
    assert_eq!(call(&f, "GET", &key_uri, None, vec![]).await.0, 404);
}
