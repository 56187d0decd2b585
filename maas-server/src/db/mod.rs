//! Persistence: one diesel connection type over SQLite and PostgreSQL, the
//! pool, embedded migrations per backend and the query modules.
//!
//! The backend is chosen by the URL: `postgres://` or `postgresql://` is
//! PostgreSQL, anything else (a path, or `sqlite://path`) is SQLite in WAL
//! mode. Sync diesel runs on tokio's blocking pool through [`Pool::run`].

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Error, Result};

pub use conn::DbConn;

pub mod boot;
mod conn;
pub mod events;
pub mod machines;
pub mod objects;
pub mod schema;
pub mod settings;
pub mod users;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

impl std::fmt::Debug for DbConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbConn::Sqlite(_) => "DbConn::Sqlite",
            DbConn::Pg(_) => "DbConn::Pg",
        })
    }
}

impl DbConn {
    /// Whether this is the SQLite backend.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, DbConn::Sqlite(_))
    }

    /// Runs `f` in a write transaction; an `Err` rolls it back. SQLite
    /// takes the write lock up front (`BEGIN IMMEDIATE`) so concurrent
    /// read-modify-write transactions queue on `busy_timeout` instead of
    /// failing to upgrade a read lock.
    pub fn write_tx<T, E, F>(&mut self, f: F) -> std::result::Result<T, E>
    where
        E: From<diesel::result::Error>,
        F: FnOnce(&mut DbConn) -> std::result::Result<T, E>,
    {
        match self {
            DbConn::Sqlite(_) => {
                self.batch_execute("BEGIN IMMEDIATE")?;
                match f(self) {
                    Ok(v) => match self.batch_execute("COMMIT") {
                        Ok(()) => Ok(v),
                        Err(e) => {
                            let _ = self.batch_execute("ROLLBACK");
                            Err(e.into())
                        }
                    },
                    Err(e) => {
                        let _ = self.batch_execute("ROLLBACK");
                        Err(e)
                    }
                }
            }
            DbConn::Pg(_) => diesel::Connection::transaction(self, f),
        }
    }
}

/// Sets per-connection SQLite pragmas.
#[derive(Debug, Clone, Copy)]
struct Pragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> std::result::Result<(), diesel::r2d2::Error> {
        if conn.is_sqlite() {
            // busy_timeout: writers queue instead of failing with SQLITE_BUSY.
            conn.batch_execute(
                "PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The connection pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: diesel::r2d2::Pool<ConnectionManager<DbConn>>,
    backend: Backend,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("Pool")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Turns a configured URL into what diesel's connection takes.
fn connection_url(url: &str) -> String {
    match Backend::of_url(url) {
        Backend::Postgres => url.to_owned(),
        Backend::Sqlite => url.strip_prefix("sqlite://").unwrap_or(url).to_owned(),
    }
}

impl Pool {
    /// Opens the database at `url`, runs pending migrations and builds a
    /// pool of `size` connections.
    pub fn open(url: &str, size: u32) -> Result<Pool> {
        let backend = Backend::of_url(url);
        let conn_url = connection_url(url);
        {
            let mut conn = <DbConn as diesel::Connection>::establish(&conn_url)?;
            migrate(&mut conn)?;
        }
        let manager = ConnectionManager::<DbConn>::new(conn_url);
        let inner = diesel::r2d2::Pool::builder()
            .max_size(size.max(1))
            .connection_timeout(Duration::from_secs(60))
            .connection_customizer(Box::new(Pragmas))
            .build(manager)
            .map_err(|e| Error::Pool(e.to_string()))?;
        Ok(Pool { inner, backend })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks out a connection on the current (blocking) thread.
    pub fn get(&self) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<DbConn>>> {
        self.inner.get().map_err(|e| Error::Pool(e.to_string()))
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }
}

/// Runs the pending migrations of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> Result<()> {
    match conn {
        DbConn::Sqlite(c) => {
            // WAL persists in the file: readers never block the writer.
            c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 30000;")?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| Error::Migration(e.to_string()))?;
        }
        DbConn::Pg(c) => {
            c.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map_err(|e| Error::Migration(e.to_string()))?;
        }
    }
    Ok(())
}

/// Reverts, newest first, every applied migration whose version is `version`
/// (`2026-11-21-190000`, dashes optional) or later. Tests use it to write rows
/// in an older schema and then migrate them forward.
pub fn revert_from(conn: &mut DbConn, version: &str) -> Result<()> {
    fn go<C, S>(c: &mut C, source: impl Fn() -> S, version: &str) -> Result<()>
    where
        C: MigrationHarness<C::Backend> + diesel::Connection,
        S: diesel::migration::MigrationSource<C::Backend>,
    {
        let target: String = version.chars().filter(|ch| *ch != '-').collect();
        loop {
            let applied = c
                .applied_migrations()
                .map_err(|e| Error::Migration(e.to_string()))?;
            let newest = applied.iter().map(|v| v.to_string()).max();
            match newest {
                Some(v) if v.replace('-', "") >= target => {
                    c.revert_last_migration(source())
                        .map_err(|e| Error::Migration(e.to_string()))?;
                }
                _ => return Ok(()),
            }
        }
    }
    match conn {
        DbConn::Sqlite(c) => go(c, || SQLITE_MIGRATIONS, version),
        DbConn::Pg(c) => go(c, || POSTGRES_MIGRATIONS, version),
    }
}

/// Reverts every migration of the connection's backend (tests: up→down→up).
pub fn revert_all(conn: &mut DbConn) -> Result<()> {
    match conn {
        DbConn::Sqlite(c) => c
            .revert_all_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| Error::Migration(e.to_string())),
        DbConn::Pg(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| Error::Migration(e.to_string())),
    }
}
