//! Fresh, empty stores for tests: a temporary folder by default, or a unique prefix in the
//! bucket named by `HAECHI_TEST_S3_URL` (deleted afterwards). A test whose variable is set but
//! whose server is unreachable fails rather than quietly falling back to a folder, so a CI run
//! meant to cover S3 can never pass without touching it.
//!
//! ```no_run
//! # async fn t() {
//! let (objects, _guard) = haechi_objects::testkit::TestObjects::new().await;
//! objects.put("a/b.txt", bytes::Bytes::from_static(b"hi")).await.ok();
//! # }
//! ```

use crate::{ObjectStoreConfig, Objects};

/// S3 server and bucket for tests, e.g. `http://127.0.0.1:9000/haechi-test` (see `.ci/s3.sh`).
/// More path segments after the bucket become a base prefix.
pub const S3_URL_ENV: &str = "HAECHI_TEST_S3_URL";
/// Access key for [`S3_URL_ENV`]; defaults to `test` (moto accepts anything).
pub const S3_ACCESS_KEY_ENV: &str = "HAECHI_TEST_S3_ACCESS_KEY";
/// Secret key for [`S3_URL_ENV`]; defaults to `test`.
pub const S3_SECRET_KEY_ENV: &str = "HAECHI_TEST_S3_SECRET_KEY";

/// Constructors for test stores; see the module docs.
#[derive(Debug)]
pub struct TestObjects;

/// Removes the test store when dropped: the temp folder, or every object under the unique S3
/// prefix. Keep it alive for as long as the [`Objects`] is used.
#[derive(Debug)]
pub struct TestObjectsGuard {
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    S3(ObjectStoreConfig),
}

impl TestObjects {
    /// S3 when `HAECHI_TEST_S3_URL` is set (and non-empty), else a temp folder.
    ///
    /// # Panics
    /// When the variable is set but malformed or the server/bucket does not answer.
    // `TestObjects` is only a namespace; the name mirrors haechi-db's `TestDb::new()`.
    #[allow(clippy::new_ret_no_self)]
    pub async fn new() -> (Objects, TestObjectsGuard) {
        match s3_url_from_env() {
            Some(url) => Self::s3(&url).await,
            None => Self::local(),
        }
    }

    /// The S3 test store if `HAECHI_TEST_S3_URL` is set, for tests that cover both backends.
    ///
    /// # Panics
    /// As [`TestObjects::new`].
    pub async fn s3_from_env() -> Option<(Objects, TestObjectsGuard)> {
        match s3_url_from_env() {
            Some(url) => Some(Self::s3(&url).await),
            None => None,
        }
    }

    /// A store in a fresh temporary folder.
    ///
    /// # Panics
    /// If no temporary folder can be made.
    // A test helper: failing loudly is the point, and there is no caller to hand an error to.
    #[allow(clippy::panic)]
    pub fn local() -> (Objects, TestObjectsGuard) {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("testkit: cannot create a temp dir: {e}"),
        };
        let cfg = ObjectStoreConfig { url: dir.path().display().to_string(), ..ObjectStoreConfig::default() };
        match Objects::open(&cfg) {
            Ok(objects) => (objects, TestObjectsGuard { cleanup: Cleanup::Dir(dir) }),
            Err(e) => panic!("testkit: cannot open temp dir store: {e}"),
        }
    }

    /// A unique, empty prefix in the bucket named by `server_url`
    /// (`http://host:port/bucket[/base/prefix]`), with keys from the environment.
    ///
    /// # Panics
    /// If the URL is malformed or the bucket cannot be listed.
    #[allow(clippy::panic)]
    pub async fn s3(server_url: &str) -> (Objects, TestObjectsGuard) {
        let cfg = match s3_config(server_url) {
            Ok(cfg) => cfg,
            Err(e) => panic!("testkit: {S3_URL_ENV}={server_url:?}: {e}"),
        };
        let objects = match Objects::open(&cfg) {
            Ok(o) => o,
            Err(e) => panic!("testkit: {S3_URL_ENV}={server_url:?}: {e}"),
        };
        if let Err(e) = objects.check().await {
            panic!(
                "testkit: {S3_URL_ENV}={server_url:?} is set but the S3 server does not answer ({e}). \
                 Start it with `source .ci/s3.sh`, or unset {S3_URL_ENV} to test on a local folder."
            );
        }
        (objects, TestObjectsGuard { cleanup: Cleanup::S3(cfg) })
    }
}

fn s3_url_from_env() -> Option<String> {
    std::env::var(S3_URL_ENV).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn s3_config(server_url: &str) -> Result<ObjectStoreConfig, String> {
    let url = url::Url::parse(server_url).map_err(|e| format!("not a URL: {e}"))?;
    let mut segments = url.path().split('/').filter(|s| !s.is_empty());
    let bucket = segments.next().ok_or("expected http://host:port/bucket (the bucket is missing)")?;
    let base: Vec<&str> = segments.collect();
    let endpoint = format!("{}://{}", url.scheme(), url.host_str().ok_or("the host is missing")?);
    let endpoint = match url.port() {
        Some(port) => format!("{endpoint}:{port}"),
        None => endpoint,
    };
    // Unique per test so parallel tests and reruns after a crash never see each other's objects.
    let unique = format!("haechi-test-{}", uuid::Uuid::new_v4().simple());
    let prefix = if base.is_empty() { unique } else { format!("{}/{unique}", base.join("/")) };
    let key = |var: &str| std::env::var(var).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "test".to_owned());
    Ok(ObjectStoreConfig {
        url: format!("s3://{bucket}/{prefix}"),
        s3_endpoint: Some(endpoint),
        s3_region: crate::DEFAULT_REGION.to_owned(),
        s3_access_key: Some(key(S3_ACCESS_KEY_ENV)),
        s3_secret_key: Some(key(S3_SECRET_KEY_ENV)),
        // Test servers (moto, MinIO, s3s-fs) sit on 127.0.0.1, where only path style works.
        s3_path_style: true,
        s3_allow_http: url.scheme() == "http",
    })
}

impl TestObjectsGuard {
    /// The `HAECHI_*` settings that point a `haechi` child process at the same store.
    #[must_use]
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        match &self.cleanup {
            Cleanup::Dir(dir) => vec![("HAECHI_OBJECT_STORE", dir.path().display().to_string())],
            Cleanup::S3(cfg) => {
                let mut env = vec![
                    ("HAECHI_OBJECT_STORE", cfg.url.clone()),
                    ("HAECHI_S3_REGION", cfg.s3_region.clone()),
                    ("HAECHI_S3_PATH_STYLE", cfg.s3_path_style.to_string()),
                    ("HAECHI_S3_ALLOW_HTTP", cfg.s3_allow_http.to_string()),
                ];
                for (k, v) in [
                    ("HAECHI_S3_ENDPOINT", &cfg.s3_endpoint),
                    ("HAECHI_S3_ACCESS_KEY", &cfg.s3_access_key),
                    ("HAECHI_S3_SECRET_KEY", &cfg.s3_secret_key),
                ] {
                    if let Some(v) = v {
                        env.push((k, v.clone()));
                    }
                }
                env
            }
        }
    }
}

impl Drop for TestObjectsGuard {
    fn drop(&mut self) {
        let Cleanup::S3(cfg) = &self.cleanup else { return };
        let cfg = cfg.clone();
        // Drop is synchronous and may run on the test's current-thread runtime, which a blocking
        // wait would stall (along with any pooled connection tasks the test's client owns). So a
        // fresh client on a fresh runtime on its own thread does the deletion.
        let joined = std::thread::spawn(move || -> Result<usize, String> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let objects = Objects::open(&cfg).map_err(|e| e.to_string())?;
                objects.delete_prefix("").await.map_err(|e| e.to_string())
            })
        })
        .join();
        // A leftover prefix is harmless (moto forgets everything on restart): warn, never panic
        // in Drop, which would abort a test that is already unwinding.
        match joined {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("testkit: could not delete the S3 test prefix: {e}"),
            Err(_) => eprintln!("testkit: the S3 cleanup thread panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_server_url() {
        let cfg = s3_config("http://127.0.0.1:9000/haechi-test").unwrap();
        assert!(cfg.url.starts_with("s3://haechi-test/haechi-test-"), "{}", cfg.url);
        assert_eq!(cfg.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(cfg.s3_path_style && cfg.s3_allow_http);
        let nested = s3_config("http://127.0.0.1:9000/haechi-test/ci/run-1/").unwrap();
        assert!(nested.url.starts_with("s3://haechi-test/ci/run-1/haechi-test-"), "{}", nested.url);
        assert!(s3_config("http://127.0.0.1:9000").is_err());
        assert!(s3_config("not a url").is_err());
    }
}
