//! Users and their API tokens (OAuth consumer key, token key and secret).
//!
//! Passwords are stored as Django stores them
//! (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`), so a MAAS database
//! dump's hashes would verify here too.

use base64::Engine;
use diesel::prelude::*;
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::Sha256;

use super::DbConn;
use super::schema::{tokens, users};
use crate::error::{Error, Result};

const PBKDF2_ITERATIONS: u32 = 100_000;

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Password hash (never shown).
    #[diesel(column_name = password)]
    pub password_hash: String,
    /// Administrator.
    pub is_superuser: bool,
    /// Creation time, ms since the epoch.
    pub created: i64,
}

/// An API token: the three parts of an API key and a name.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = tokens)]
pub struct Token {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub username: String,
    /// The consumer's name (`<user>@<host>` for password logins).
    pub name: String,
    /// OAuth consumer key.
    pub consumer_key: String,
    /// OAuth token key.
    pub token_key: String,
    /// OAuth token secret.
    pub token_secret: String,
    /// Creation time, ms since the epoch.
    pub created: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("username", &self.username)
            .field("name", &self.name)
            .field("consumer_key", &self.consumer_key)
            .field("token_key", &self.token_key)
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

impl Token {
    /// `consumer_key:token_key:token_secret`, the API key MAAS prints.
    pub fn api_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.consumer_key, self.token_key, self.token_secret
        )
    }
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Hashes a password the way Django's `PBKDF2PasswordHasher` does.
pub fn hash_password(password: &str) -> String {
    let salt = random_string(22);
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        PBKDF2_ITERATIONS,
        &mut out,
    );
    format!(
        "pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
}

/// Checks a password against a stored hash (constant time on the digest).
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2_sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Ok(iter) = iter.parse::<u32>() else {
        return false;
    };
    let Ok(want) = base64::engine::general_purpose::STANDARD.decode(hash) else {
        return false;
    };
    if iter == 0 || iter > 10_000_000 || want.is_empty() || want.len() > 64 {
        return false;
    }
    let mut got = vec![0u8; want.len()];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), iter, &mut got);
    got.iter().zip(&want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Creates a user; refuses a taken username.
pub fn create(
    conn: &mut DbConn,
    username: &str,
    email: &str,
    password: &str,
    is_superuser: bool,
    now_ms: i64,
) -> Result<User> {
    if username.is_empty() {
        return Err(Error::Refused("username must not be empty".into()));
    }
    if by_name(conn, username)?.is_some() {
        return Err(Error::Refused(format!(
            "A user with username {username} already exists."
        )));
    }
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::email.eq(email),
            users::password.eq(hash_password(password)),
            users::is_superuser.eq(is_superuser),
            users::created.eq(now_ms),
        ))
        .execute(conn)?;
    by_name(conn, username)?.ok_or_else(|| Error::Refused("user vanished".into()))
}

/// The user called `username`.
pub fn by_name(conn: &mut DbConn, username: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Every user, by username.
pub fn list(conn: &mut DbConn) -> Result<Vec<User>> {
    Ok(users::table
        .order(users::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

/// Deletes a user and its tokens; returns whether it existed.
pub fn delete(conn: &mut DbConn, username: &str) -> Result<bool> {
    diesel::delete(tokens::table.filter(tokens::username.eq(username))).execute(conn)?;
    Ok(diesel::delete(users::table.filter(users::username.eq(username))).execute(conn)? > 0)
}

/// Creates a new token for `username` named `name`.
pub fn create_token(conn: &mut DbConn, username: &str, name: &str, now_ms: i64) -> Result<Token> {
    let token_key = random_string(18);
    diesel::insert_into(tokens::table)
        .values((
            tokens::username.eq(username),
            tokens::name.eq(name),
            tokens::consumer_key.eq(random_string(18)),
            tokens::token_key.eq(&token_key),
            tokens::token_secret.eq(random_string(32)),
            tokens::created.eq(now_ms),
        ))
        .execute(conn)?;
    token_by_key(conn, &token_key)?.ok_or_else(|| Error::Refused("token vanished".into()))
}

/// The token with this token key.
pub fn token_by_key(conn: &mut DbConn, token_key: &str) -> Result<Option<Token>> {
    Ok(tokens::table
        .filter(tokens::token_key.eq(token_key))
        .select(Token::as_select())
        .first(conn)
        .optional()?)
}

/// The user's tokens, oldest first.
pub fn tokens_of(conn: &mut DbConn, username: &str) -> Result<Vec<Token>> {
    Ok(tokens::table
        .filter(tokens::username.eq(username))
        .order(tokens::id.asc())
        .select(Token::as_select())
        .load(conn)?)
}

/// Deletes one of the user's tokens; returns whether it existed.
pub fn delete_token(conn: &mut DbConn, username: &str, token_key: &str) -> Result<bool> {
    Ok(diesel::delete(
        tokens::table
            .filter(tokens::username.eq(username))
            .filter(tokens::token_key.eq(token_key)),
    )
    .execute(conn)?
        > 0)
}

/// Renames one of the user's tokens; returns whether it existed.
pub fn rename_token(
    conn: &mut DbConn,
    username: &str,
    token_key: &str,
    name: &str,
) -> Result<bool> {
    Ok(diesel::update(
        tokens::table
            .filter(tokens::username.eq(username))
            .filter(tokens::token_key.eq(token_key)),
    )
    .set(tokens::name.eq(name))
    .execute(conn)?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("pbkdf2_sha256$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3creT", &h));
        assert!(!verify_password("s3cret", "garbage"));
        assert!(!verify_password("s3cret", "pbkdf2_sha256$0$x$AAAA"));
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = Token {
            id: 1,
            username: "u".into(),
            name: "n".into(),
            consumer_key: "ck".into(),
            token_key: "tk".into(),
            token_secret: "topsecretvalue".into(),
            created: 0,
        };
        assert!(!format!("{t:?}").contains("topsecretvalue"));
        assert_eq!(t.api_key(), "ck:tk:topsecretvalue");
    }
}
