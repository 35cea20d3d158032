//! Fresh databases for tests: a temporary SQLite file by default, or a uniquely named
//! MariaDB/MySQL database when `HAECHI_TEST_MYSQL_URL` is set (dropped afterwards). A test
//! whose variable is set but whose server is unreachable fails rather than skipping.

use crate::{Db, DbError};
use sea_orm::{ConnectionTrait, Database};
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming a MySQL server for tests, e.g. `mysql://root@127.0.0.1:3306/`.
pub const MYSQL_ENV: &str = "HAECHI_TEST_MYSQL_URL";

/// A migrated, empty database that removes itself when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub db: Db,
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    MySql { server: String, name: String },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// # Errors
    /// Connection or migration failure, including an unreachable `HAECHI_TEST_MYSQL_URL`.
    pub async fn new() -> Result<TestDb, DbError> {
        match std::env::var(MYSQL_ENV) {
            Ok(server) if !server.trim().is_empty() => {
                Self::mysql(server.trim().trim_end_matches('/').to_owned()).await
            }
            _ => Self::sqlite().await,
        }
    }

    async fn sqlite() -> Result<TestDb, DbError> {
        let dir = tempfile::tempdir().map_err(|source| DbError::Directory { path: "tempdir".into(), source })?;
        let url = format!("sqlite://{}/haechi.db", dir.path().display());
        let db = Db::connect(&url).await?;
        db.migrate().await?;
        Ok(TestDb { db, url, cleanup: Cleanup::Dir(dir) })
    }

    async fn mysql(server: String) -> Result<TestDb, DbError> {
        // Names are built from digits only, so the unparameterisable identifier is safe.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("haechi_test_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos);
        let admin = Database::connect(format!("{server}/")).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            .await?;
        admin.close().await?;
        let url = format!("{server}/{name}");
        let db = Db::connect(&url).await?;
        db.migrate().await?;
        Ok(TestDb { db, url, cleanup: Cleanup::MySql { server, name } })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::MySql { server, name } = &self.cleanup {
            let (server, name) = (server.clone(), name.clone());
            // Drop runs outside async context; a short-lived runtime on its own thread does
            // the network round trip without blocking the test's runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Database::connect(format!("{server}/")).await {
                            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`")).await;
                            let _ = admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}
