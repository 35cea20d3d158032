//! Persistence for Haechi: one SeaORM code path over SQLite (the embedded default) and
//! MySQL/MariaDB, picked by the URL's scheme. Migrations are embedded ([`Db::migrate`]).
//! Every query goes through SeaORM's builders, so values are always bound parameters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), haechi_db::DbError> {
//! let db = haechi_db::Db::connect("sqlite://./haechi-data/haechi.db").await?;
//! db.migrate().await?;
//! db.ping().await?;
//! # Ok(()) }
//! ```

mod collection;
pub mod entity;
mod guard;
mod market;
mod migration;
mod paper;
mod repo;
mod runs;
mod scenarios;
mod sweeps;
pub mod testkit;

pub use collection::*;
pub use guard::*;
pub use market::*;
pub use migration::Migrator;
pub use paper::*;
pub use repo::*;
pub use runs::*;
pub use scenarios::*;
/// Re-exported so callers can fill `ActiveModel`s without depending on SeaORM directly.
pub use sea_orm::ActiveValue;
pub use sweeps::*;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite://, mysql:// or mariadb://")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// A pooled connection to the application database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    /// One in-process gate per mock account (see [`Db::paper_begin`]).
    gates: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
    /// SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
    /// growing steps (up to 100 ms) before it looks again. The hot writers (order entry, the
    /// matcher, the access log) queue here instead, in this process, and get the lock as soon
    /// as it is free. Unused on MySQL, whose row locks need no help.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// Connects to `url`: `sqlite://path` (file created if missing; WAL, busy timeout and
    /// foreign keys on) or `mysql://…` / `mariadb://…`.
    ///
    /// # Errors
    /// [`DbError::UnsupportedUrl`] for any other scheme (never guessed), or the driver's error.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            (Backend::Sqlite, format!("sqlite:{rest}"))
        } else if url.starts_with("mysql://") {
            (Backend::MySql, url.to_owned())
        } else if let Some(rest) = url.strip_prefix("mariadb://") {
            (Backend::MySql, format!("mysql://{rest}"))
        } else {
            return Err(DbError::UnsupportedUrl(redact_url(url)));
        };
        let mut opts = ConnectOptions::new(url.clone());
        opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            if let Some(dir) = sqlite_parent_dir(&url) {
                std::fs::create_dir_all(&dir).map_err(|source| DbError::Directory { path: dir.clone(), source })?;
            }
            // WAL lets readers proceed while one writer commits; the busy timeout makes
            // writers queue instead of failing with SQLITE_BUSY under load.
            opts.max_connections(16).min_connections(1).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .create_if_missing(true)
            });
        } else {
            opts.max_connections(32).min_connections(1);
        }
        let conn = Database::connect(opts).await?;
        Ok(Db { conn, backend, gates: Default::default(), write_gate: Default::default() })
    }

    /// Applies every pending migration.
    ///
    /// # Errors
    /// The database's error if a migration fails; applied migrations stay applied.
    pub async fn migrate(&self) -> Result<(), DbError> {
        Migrator::up(&self.conn, None).await?;
        Ok(())
    }

    /// Copies the SQLite write-ahead log back into the database without waiting for writers
    /// (a passive checkpoint); a no-op on MySQL. `serve` runs it a few times a second so a
    /// commit seldom reaches the log's size limit and pays for the checkpoint (and its fsync)
    /// itself: that wait was the order-entry benchmark's slowest percent.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.backend == Backend::Sqlite {
            self.conn.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await?;
        }
        Ok(())
    }

    /// Round-trips a trivial query, for readiness checks.
    ///
    /// # Errors
    /// The driver's error when the database cannot be reached.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.conn.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// On SQLite, this process's turn to write (see `write_gate`); `None` on MySQL.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.clone().lock_owned().await),
            Backend::MySql => None,
        }
    }

    /// The gate of an account's writers in this process.
    pub(crate) fn account_gate(&self, account_id: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Gates nobody holds are dropped now and then, so closed accounts do not pile up.
        if gates.len() > 10_000 {
            gates.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
        }
        gates.entry(account_id).or_default().clone()
    }

    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Closes the pool, waiting for connections to be returned.
    ///
    /// # Errors
    /// The driver's error on close.
    pub async fn close(self) -> Result<(), DbError> {
        self.conn.close().await?;
        Ok(())
    }
}

fn sqlite_parent_dir(url: &str) -> Option<String> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    let parent = std::path::Path::new(path).parent()?;
    (!parent.as_os_str().is_empty()).then(|| parent.to_string_lossy().into_owned())
}

/// Hides the password of a URL like `mysql://user:secret@host/db` for messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:[redacted]{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
#[must_use]
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("mysql://root:hunter2@127.0.0.1/db"), "mysql://root:[redacted]@127.0.0.1/db");
        assert_eq!(redact_url("mysql://root@127.0.0.1/db"), "mysql://root@127.0.0.1/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn sqlite_directory_is_found() {
        assert_eq!(sqlite_parent_dir("sqlite://./haechi-data/haechi.db?mode=rwc").as_deref(), Some("./haechi-data"));
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://x.db"), None);
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        assert!(matches!(Db::connect("postgres://x").await, Err(DbError::UnsupportedUrl(_))));
    }
}
