//! Integration tests of maas-server's public API: the HTTP app driven
//! without sockets (tower `oneshot`), on a fresh SQLite database each.

mod api;
mod boot_migration;
mod files;
mod images;
mod listing;
mod listing_migration;
mod metadata;
mod migrations;
mod objects_migration;
mod remainder;
mod repos;
mod spaces;
mod workflow;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};
use maas_server::AppState;
use tower::ServiceExt;

/// A fresh server state with an admin and its API key.
#[derive(Debug)]
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    pub key: (String, String, String),
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("maas.db").display().to_string();
        let state = AppState::open(&url, 2).unwrap();
        let mut conn = state.pool.get().unwrap();
        maas_server::db::users::create(&mut conn, "admin", "a@x", "pw", true, 0).unwrap();
        let t = maas_server::db::users::create_token(&mut conn, "admin", "t", 0).unwrap();
        Fixture {
            _dir: dir,
            state: state.clone(),
            key: (t.consumer_key, t.token_key, t.token_secret),
        }
    }

    /// An `Authorization` header the way oauthlib writes it.
    pub fn auth(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let nonce: u64 = rand::random();
        format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{now}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
            self.key.0, self.key.1, self.key.2
        )
    }

    pub async fn send(&self, req: Request<Body>) -> (Response<Body>, String) {
        let res = maas_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 26).await.unwrap();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    pub async fn get(&self, uri: &str) -> (u16, String) {
        let req = Request::get(uri)
            .header("Authorization", self.auth())
            .body(Body::empty())
            .unwrap();
        let (r, b) = self.send(req).await;
        (r.status().as_u16(), b)
    }

    pub async fn post(&self, uri: &str, form: &str) -> (u16, String) {
        let req = Request::post(uri)
            .header("Authorization", self.auth())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        let (r, b) = self.send(req).await;
        (r.status().as_u16(), b)
    }

    pub async fn delete_req(&self, uri: &str) -> (u16, String) {
        let req = Request::delete(uri)
            .header("Authorization", self.auth())
            .body(Body::empty())
            .unwrap();
        let (r, b) = self.send(req).await;
        (r.status().as_u16(), b)
    }

    pub async fn put(&self, uri: &str, form: &str) -> (u16, String) {
        let req = Request::put(uri)
            .header("Authorization", self.auth())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        let (r, b) = self.send(req).await;
        (r.status().as_u16(), b)
    }
}
