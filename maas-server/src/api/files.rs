//! MAAS's file storage (`files/`): small files a user uploads under a name
//! and reads back by that name, or that anyone holding the file's
//! unguessable key reads without credentials (how Juju shared its state).
//! One document per file in the generic objects table: the owner, the key
//! and the content (base64).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{ApiError, Call, Reply};
use crate::db::{DbConn, objects};

/// The objects-table kind of a stored file; the object's name is the file name.
pub const KIND: &str = "file";

/// The body type of raw file contents.
const OCTETS: &str = "application/octet-stream";

/// What a file name keeps unescaped in its URI (RFC 3986's unreserved).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A stored file.
struct Stored {
    obj: objects::Object,
    owner: String,
    key: String,
}

impl Stored {
    fn from_object(obj: objects::Object) -> Stored {
        let text = |k: &str| {
            obj.data
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (owner, key) = (text("owner"), text("key"));
        Stored { obj, owner, key }
    }

    fn filename(&self) -> &str {
        &self.obj.name
    }

    /// The content; a document that does not decode reads as empty.
    fn content(&self) -> Vec<u8> {
        let b64 = self
            .obj
            .data
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        B64.decode(b64).unwrap_or_default()
    }

    /// The fields MAAS lists a file with.
    fn json(&self) -> Value {
        json!({
            "filename": self.filename(),
            "anon_resource_uri": format!("/MAAS/api/2.0/files/?op=get_by_key&key={}", self.key),
            "resource_uri": format!(
                "/MAAS/api/2.0/files/{}/",
                percent_encoding::utf8_percent_encode(self.filename(), PATH_SEGMENT)
            ),
        })
    }
}

/// A fresh key: a random (version 4) UUID, the form MAAS's keys take.
fn new_key() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn all(conn: &mut DbConn) -> Result<Vec<Stored>, ApiError> {
    Ok(objects::list(conn, KIND)?
        .into_iter()
        .map(Stored::from_object)
        .collect())
}

/// The caller's file named `filename`.
fn owned(c: &mut Call<'_>, filename: &str) -> Result<Option<Stored>, ApiError> {
    let me = c.user()?.username.clone();
    Ok(all(c.conn)?
        .into_iter()
        .filter(|f| f.owner == me && f.filename() == filename)
        .max_by_key(|f| f.obj.id))
}

/// A mandatory query or form parameter, as MAAS's `get_mandatory_param`.
fn mandatory(c: &Call<'_>, key: &str) -> Result<String, ApiError> {
    c.params
        .get(key)
        .ok_or_else(|| ApiError::bad_request(format!("No provided {key}!")))
}

/// `GET files/`: the caller's files by name, without content; `prefix`
/// keeps the names that start with it.
pub fn list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let me = c.user()?.username.clone();
    let prefix = c.params.get("prefix").unwrap_or_default();
    let mut files: Vec<Stored> = all(c.conn)?
        .into_iter()
        .filter(|f| f.owner == me && f.filename().starts_with(&prefix))
        .collect();
    files.sort_by(|a, b| a.filename().cmp(b.filename()));
    Ok(Reply::Json(files.iter().map(Stored::json).collect()))
}

/// `POST files/`: stores `file` (a multipart part) as `filename`,
/// replacing the content of the caller's file of that name (its key stays).
pub fn add(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let me = c.user()?.username.clone();
    let filename = c
        .params
        .get_nonempty("filename")
        .ok_or_else(|| ApiError::bad_request("Filename not supplied"))?;
    let parts = c.params.get_all("file").len();
    if parts == 0 {
        return Err(ApiError::bad_request("File not supplied"));
    }
    if parts > 1 {
        return Err(ApiError::bad_request("Exactly one file must be supplied"));
    }
    let content = B64.encode(c.params.bytes("file").unwrap_or_default());
    match owned(c, &filename)? {
        Some(mut f) => {
            f.obj.data.insert("content".into(), json!(content));
            objects::update(c.conn, KIND, &f.obj)?;
        }
        None => {
            let mut d = serde_json::Map::new();
            d.insert("owner".into(), json!(me));
            d.insert("key".into(), json!(new_key()));
            d.insert("content".into(), json!(content));
            objects::insert(c.conn, KIND, &filename, &d)?;
        }
    }
    Ok(Reply::Status(201))
}

/// `GET files/?op=get&filename=`: the caller's file's content.
pub fn get(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let filename = mandatory(c, "filename")?;
    let f = owned(c, &filename)?.ok_or_else(|| ApiError::not_found("File not found"))?;
    Ok(Reply::Raw(OCTETS, f.content()))
}

/// `GET files/?op=get_by_key&key=`: anyone's file by its key; anonymous
/// callers too.
pub fn get_by_key(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let key = mandatory(c, "key")?;
    let f = all(c.conn)?
        .into_iter()
        .find(|f| !key.is_empty() && f.key == key)
        .ok_or_else(|| ApiError::not_found("No FileStorage matches the given query."))?;
    Ok(Reply::Raw(OCTETS, f.content()))
}

/// `DELETE files/?filename=`.
pub fn delete_by_param(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let filename = mandatory(c, "filename")?;
    remove(c, &filename)
}

/// `GET files/{filename}/`: the file with its content in base64.
pub fn read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let filename = c.path_param(0).to_owned();
    let f = owned(c, &filename)?.ok_or_else(|| ApiError::not_found("Not Found"))?;
    let mut v = f.json();
    v["content"] = json!(B64.encode(f.content()));
    Ok(Reply::Json(v))
}

/// `DELETE files/{filename}/`.
pub fn delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let filename = c.path_param(0).to_owned();
    remove(c, &filename)
}

fn remove(c: &mut Call<'_>, filename: &str) -> Result<Reply, ApiError> {
    let f = owned(c, filename)?
        .ok_or_else(|| ApiError::not_found("No FileStorage matches the given query."))?;
    objects::delete(c.conn, KIND, f.obj.id)?;
    Ok(Reply::NoContent)
}

/// Deletes every file `username` owns (their account is going).
pub fn delete_owned_by(conn: &mut DbConn, username: &str) -> Result<(), ApiError> {
    for f in all(conn)?.into_iter().filter(|f| f.owner == username) {
        objects::delete(conn, KIND, f.obj.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_version_4_uuids() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{a}"
        );
    }
}
