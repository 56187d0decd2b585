//! Users, the caller's account (API tokens) and SSH keys.

use serde_json::{Value, json};

use super::json::kinds;
use super::{ApiError, Call, Reply};
use crate::db::users::{self as dbu, User};
use crate::db::{objects, users as db_users};

/// User JSON.
pub fn user_json(u: &User) -> Value {
    json!({
        "username": u.username,
        "email": u.email,
        "is_local": true,
        "is_superuser": u.is_superuser,
        "resource_uri": format!("/MAAS/api/2.0/users/{}/", u.username),
    })
}

/// `GET users/`.
pub fn list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let users = db_users::list(c.conn)?;
    Ok(Reply::Json(users.iter().map(user_json).collect()))
}

/// `POST users/` (admin).
pub fn create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let username = c
        .params
        .get_nonempty("username")
        .ok_or_else(|| ApiError::field("username", "This field is required."))?;
    // MAAS makes email, password and is_superuser mandatory; an empty
    // password is refused too, since it would be a working login.
    let required = |k: &str| {
        c.params
            .get(k)
            .ok_or_else(|| ApiError::field(k, "This field is required."))
    };
    let email = required("email")?;
    let password = required("password")?;
    if password.is_empty() {
        return Err(ApiError::field("password", "This field cannot be blank."));
    }
    required("is_superuser")?;
    let is_superuser = c.params.bool_or("is_superuser", false)?;
    if db_users::by_name(c.conn, &username)?.is_some() {
        return Err(ApiError::field(
            "username",
            "A user with that username already exists.",
        ));
    }
    let u = db_users::create(c.conn, &username, &email, &password, is_superuser, c.now_ms)?;
    Ok(Reply::Json(user_json(&u)))
}

/// `GET users/?op=whoami`.
pub fn whoami(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(user_json(c.user()?)))
}

/// `GET users/{username}/`.
pub fn read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let name = c.path_param(0).to_owned();
    let u = db_users::by_name(c.conn, &name)?
        .ok_or_else(|| ApiError::not_found("No User matches the given query."))?;
    Ok(Reply::Json(user_json(&u)))
}

/// `DELETE users/{username}/` (admin): 204 also when there is no user of
/// that (valid) name, as MAAS's `UserHandler.delete`; a name no user can
/// have (Django's username characters: letters, digits, `@.+-_`) is a 404.
pub fn delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let me = c.admin()?.username.clone();
    let name = c.path_param(0).to_owned();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_alphanumeric() || "@.+-_".contains(ch));
    if !valid {
        return Err(ApiError::not_found("No User matches the given query."));
    }
    if name == me {
        return Err(ApiError::bad_request("You cannot delete your own account."));
    }
    // (A missing user is no error: MAAS answers 204 for nothing.)
    // As MAAS's cascade: the account's SSH keys and stored files go with it
    // (a new account of the same name must not inherit them).
    for k in objects::list(c.conn, kinds::SSHKEY)? {
        if k.name == name {
            objects::delete(c.conn, kinds::SSHKEY, k.id)?;
        }
    }
    super::files::delete_owned_by(c.conn, &name)?;
    db_users::delete(c.conn, &name)?;
    Ok(Reply::NoContent)
}

fn token_reply(t: &dbu::Token) -> Value {
    json!({
        "consumer_key": t.consumer_key,
        "token_key": t.token_key,
        "token_secret": t.token_secret,
        "name": t.name,
    })
}

/// `POST account/?op=create_authorisation_token`.
pub fn create_token(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let name = c
        .params
        .get_nonempty("name")
        .unwrap_or_else(|| "API token".into());
    let t = db_users::create_token(c.conn, &user, &name, c.now_ms)?;
    Ok(Reply::Json(token_reply(&t)))
}

/// `POST account/?op=delete_authorisation_token`.
pub fn delete_token(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let key = c
        .params
        .get_nonempty("token_key")
        .ok_or_else(|| ApiError::field("token_key", "This field is required."))?;
    if !db_users::delete_token(c.conn, &user, &key)? {
        return Err(ApiError::not_found("No token matches the given query."));
    }
    Ok(Reply::NoContent)
}

/// `GET account/?op=list_authorisation_tokens`.
pub fn list_tokens(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let ts = db_users::tokens_of(c.conn, &user)?;
    Ok(Reply::Json(
        ts.iter()
            .map(|t| json!({"name": t.name, "token": t.api_key()}))
            .collect(),
    ))
}

/// `POST account/?op=update_token_name`.
pub fn rename_token(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let token = c
        .params
        .get_nonempty("token")
        .ok_or_else(|| ApiError::field("token", "This field is required."))?;
    let name = c
        .params
        .get_nonempty("name")
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    // The token may be given as its key or as the full API key.
    let key = token.split(':').nth(1).unwrap_or(&token).to_owned();
    if !db_users::rename_token(c.conn, &user, &key, &name)? {
        return Err(ApiError::not_found("No token matches the given query."));
    }
    Ok(Reply::Json(json!("Token name updated")))
}

fn sshkey_json(o: &objects::Object) -> Value {
    json!({
        "id": o.id,
        "key": o.data.get("key").cloned().unwrap_or(json!("")),
        "keysource": o.data.get("keysource").cloned().unwrap_or(Value::Null),
        "resource_uri": format!("/MAAS/api/2.0/account/prefs/sshkeys/{}/", o.id),
    })
}

/// Whether `key` looks like an OpenSSH public key line.
pub fn valid_ssh_key(key: &str) -> bool {
    let mut parts = key.split_whitespace();
    let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
        return false;
    };
    let known =
        kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-") || kind.starts_with("sk-");
    use base64::Engine;
    known
        && base64::engine::general_purpose::STANDARD
            .decode(body)
            .is_ok()
}

/// `GET account/prefs/sshkeys/`.
pub fn sshkeys_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.user()?.username.clone();
    let keys = objects::list(c.conn, kinds::SSHKEY)?;
    Ok(Reply::Json(
        keys.iter()
            .filter(|o| o.name == user)
            .map(sshkey_json)
            .collect(),
    ))
}

/// `POST account/prefs/sshkeys/`: the caller's key, or (admins only, as
/// MAAS's `SSHKeysHandler.create`) the key of the user named by `user`.
pub fn sshkeys_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let caller = c.user()?;
    let mut user = caller.username.clone();
    if let Some(named) = c.params.get("user") {
        if !caller.is_superuser {
            return Err(ApiError::bad_request(
                "Only administrators can specify a user when creating an SSH key.",
            ));
        }
        if db_users::by_name(c.conn, &named)?.is_none() {
            return Err(ApiError::bad_request(
                "Supplied username does not match any current users.",
            ));
        }
        user = named;
    }
    let key = c.params.get("key").unwrap_or_default().trim().to_owned();
    if !valid_ssh_key(&key) {
        return Err(ApiError::field(
            "key",
            "Invalid SSH public key: it must be an OpenSSH public key line.",
        ));
    }
    let dup = objects::list(c.conn, kinds::SSHKEY)?
        .into_iter()
        .any(|o| o.name == user && o.data.get("key").and_then(Value::as_str) == Some(&key));
    if dup {
        return Err(ApiError::field(
            "key",
            "This key has already been added for this user.",
        ));
    }
    let mut d = serde_json::Map::new();
    d.insert("key".into(), json!(key));
    d.insert("keysource".into(), Value::Null);
    let o = objects::insert(c.conn, kinds::SSHKEY, &user, &d)?;
    Ok(Reply::JsonStatus(201, sshkey_json(&o)))
}

/// `POST account/prefs/sshkeys/?op=import`: needs Launchpad or GitHub,
/// which this server does not reach.
pub fn sshkeys_import(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let src = c.params.get("keysource").unwrap_or_default();
    if !(src.starts_with("lp:") || src.starts_with("gh:")) {
        return Err(ApiError::field(
            "keysource",
            "Invalid key source; use lp:<user> or gh:<user>.",
        ));
    }
    Err(ApiError::bad_request(format!(
        "Unable to import SSH keys from {src}: key servers are not reachable from this MAAS."
    )))
}

fn key_by_id(c: &mut Call<'_>) -> Result<objects::Object, ApiError> {
    c.user()?;
    let id = c.path_id(0)?;
    objects::get(c.conn, kinds::SSHKEY, id)?
        .ok_or_else(|| ApiError::not_found("No SSHKey matches the given query."))
}

/// `GET account/prefs/sshkeys/{id}/`: any user may read any (public) key
/// by id, as in MAAS's `SSHKeyHandler.read`.
pub fn sshkey_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let o = key_by_id(c)?;
    Ok(Reply::Json(sshkey_json(&o)))
}

/// `DELETE account/prefs/sshkeys/{id}/`: only the key's owner, not even an
/// admin (MAAS's `SSHKeyHandler.delete`: 403).
pub fn sshkey_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let o = key_by_id(c)?;
    if o.name != c.user()?.username {
        return Err(ApiError::forbidden("Can't delete a key you don't own."));
    }
    objects::delete(c.conn, kinds::SSHKEY, o.id)?;
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_key_validation() {
        assert!(valid_ssh_key(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDx7 user@host"
        ));
        assert!(!valid_ssh_key("not a key"));
        assert!(!valid_ssh_key("ssh-rsa !!!notbase64"));
        assert!(!valid_ssh_key(""));
    }
}
