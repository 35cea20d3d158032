//! Object storage for Haechi's reports and raw data: a local folder or an S3 bucket (AWS, MinIO,
//! moto, ...) behind one small API built on `object_store`.
//!
//! Keys are portable on purpose: the same key must name the same object on a developer's folder
//! and on S3, and come back unchanged from [`Objects::list`]. So they are restricted to ASCII
//! letters, digits, `.`, `_`, `-` and `=` in `/`-separated segments (see [`validate_key`]);
//! anything else would be percent-encoded differently by the two backends.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

#[cfg(feature = "testkit")]
pub mod testkit;

/// Region used when the config leaves `s3_region` empty.
pub const DEFAULT_REGION: &str = "us-east-1";

/// S3's own limit on key length; local keys are held to it too so both backends agree.
const MAX_KEY_LEN: usize = 1024;

/// Where objects live. Deserialises with every field optional (`#[serde(default)]`).
#[derive(Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct ObjectStoreConfig {
    /// `file:///abs/dir`, a plain folder path (created if missing), `s3://bucket` or
    /// `s3://bucket/prefix`.
    pub url: String,
    /// Custom S3 endpoint such as `http://127.0.0.1:9000` (MinIO, moto); `None` means AWS.
    pub s3_endpoint: Option<String>,
    /// AWS region; empty means [`DEFAULT_REGION`].
    pub s3_region: String,
    /// With `s3_secret_key`; both `None` means the usual AWS credential chain
    /// (`AWS_*` environment, web identity, ECS, instance metadata).
    pub s3_access_key: Option<String>,
    /// Never logged: `Debug` prints it redacted and [`Objects::describe`] leaves it out.
    pub s3_secret_key: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which MinIO and moto need; virtual-hosted
    /// style (`bucket.endpoint/key`) when false.
    pub s3_path_style: bool,
    /// Allow a plain `http://` endpoint (local test servers only).
    pub s3_allow_http: bool,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            url: String::new(),
            s3_endpoint: None,
            s3_region: DEFAULT_REGION.to_owned(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_path_style: false,
            s3_allow_http: false,
        }
    }
}

// Hand-written so that the secret key can never reach a log line through `{:?}`.
impl fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreConfig")
            .field("url", &self.url)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key", &self.s3_access_key)
            .field("s3_secret_key", &self.s3_secret_key.as_ref().map(|_| "<redacted>"))
            .field("s3_path_style", &self.s3_path_style)
            .field("s3_allow_http", &self.s3_allow_http)
            .finish()
    }
}

/// One stored object, as [`Objects::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the configured prefix, exactly as it was passed to [`Objects::put`].
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectsError {
    #[error("object store config: `{field}` {reason}")]
    Config { field: &'static str, reason: String },
    #[error(
        "invalid object key {0:?}: use '/'-separated segments of ASCII letters, digits, '.', '_', '-' or '=' \
         (no leading or trailing '/', no empty, '.' or '..' segments, at most 1024 bytes)"
    )]
    InvalidKey(String),
    #[error("object {0:?} not found")]
    NotFound(String),
    #[error("object store {store}: {op} {key:?} failed: {source}")]
    Backend {
        /// [`Objects::describe`] of the store, so the message says which bucket or folder failed.
        store: String,
        op: &'static str,
        key: String,
        // Boxed: object_store::Error is large and would bloat every Result in the happy path.
        #[source]
        source: Box<object_store::Error>,
    },
}

fn config_err(field: &'static str, reason: impl Into<String>) -> ObjectsError {
    ObjectsError::Config { field, reason: reason.into() }
}

/// Checks a key (or, with `allow_empty`, a list prefix) against the portable key rules.
///
/// # Errors
/// [`ObjectsError::InvalidKey`] naming the key.
pub fn validate_key(key: &str) -> Result<(), ObjectsError> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'='))
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.split('/').all(segment_ok) {
        return Err(ObjectsError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

/// Prefixes for `list`/`delete_prefix`: empty means "everything", and a trailing `/` is
/// accepted because callers naturally write `"reports/"`.
fn validate_prefix(prefix: &str) -> Result<&str, ObjectsError> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() && prefix.is_empty() {
        return Ok("");
    }
    validate_key(trimmed).map_err(|_| ObjectsError::InvalidKey(prefix.to_owned()))?;
    Ok(trimmed)
}

/// A handle on the configured store. Cloning is cheap (shared `Arc`s).
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket (`s3://bucket/prefix`), without a trailing `/`.
    prefix: Option<Arc<str>>,
    /// Set for local stores: `check` must notice the folder vanishing, which a listing of a
    /// missing folder would not (it just comes back empty).
    local_root: Option<Arc<std::path::Path>>,
    description: Arc<str>,
}

// The backend's own Debug output includes its whole client config; keep it to the description.
impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects").field("store", &self.description).finish_non_exhaustive()
    }
}

impl Objects {
    /// Opens the store named by `cfg.url`. Nothing is contacted yet: use [`Objects::check`]
    /// for a readiness probe. A local folder is created if missing.
    ///
    /// # Errors
    /// [`ObjectsError::Config`] naming the offending field.
    pub fn open(cfg: &ObjectStoreConfig) -> Result<Objects, ObjectsError> {
        let url = cfg.url.trim();
        if url.is_empty() {
            return Err(config_err(
                "url",
                "is empty: expected file:///abs/dir, a folder path, s3://bucket or s3://bucket/prefix",
            ));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            return open_s3(cfg, rest);
        }
        let dir = if url.starts_with("file:") {
            let parsed =
                url::Url::parse(url).map_err(|e| config_err("url", format!("{url:?} is not a valid file URL: {e}")))?;
            parsed.to_file_path().map_err(|()| {
                config_err("url", format!("{url:?} must be file:///absolute/path (no host other than localhost)"))
            })?
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(config_err("url", format!("has unsupported scheme {scheme:?}: expected file:// or s3://")));
        } else {
            PathBuf::from(url)
        };
        open_local(dir)
    }

    /// Stores `bytes` under `key`, replacing any previous object as a whole: readers see the old
    /// or the new content, never a mix (S3 PUT; a temp file renamed into place locally).
    /// Overwriting is allowed so that a retried job writing the same deterministic key is a no-op.
    ///
    /// # Errors
    /// [`ObjectsError::InvalidKey`], or [`ObjectsError::Backend`].
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ObjectsError> {
        let path = self.object_path(key)?;
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(|e| self.backend_err("put", key, e))?;
        Ok(())
    }

    /// # Errors
    /// [`ObjectsError::NotFound`] if there is no such object, [`ObjectsError::InvalidKey`], or
    /// [`ObjectsError::Backend`].
    pub async fn get(&self, key: &str) -> Result<Bytes, ObjectsError> {
        let path = self.object_path(key)?;
        let result = self.store.get(&path).await.map_err(|e| self.backend_err("get", key, e))?;
        // The body is streamed separately; the object can vanish between the head and the body.
        result.bytes().await.map_err(|e| self.backend_err("get", key, e))
    }

    /// # Errors
    /// [`ObjectsError::InvalidKey`], or [`ObjectsError::Backend`] (a missing object is `Ok(false)`).
    pub async fn exists(&self, key: &str) -> Result<bool, ObjectsError> {
        let path = self.object_path(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.backend_err("head", key, e)),
        }
    }

    /// All objects under `prefix` (recursively), sorted by key. `prefix` matches whole segments:
    /// `"a/b"` lists `a/b/x` but not `a/bc`. `""` lists everything under the configured prefix.
    ///
    /// # Errors
    /// [`ObjectsError::InvalidKey`] for a bad prefix, or [`ObjectsError::Backend`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectsError> {
        let metas = self.list_meta(prefix).await?;
        let mut out = Vec::with_capacity(metas.len());
        for meta in metas {
            let key = self.relative_key(&meta.location);
            out.push(ObjectInfo { key, size: meta.size });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Deletes every object under `prefix` (same matching as [`Objects::list`]) and returns how
    /// many were deleted. `""` empties the whole configured prefix or folder.
    ///
    /// # Errors
    /// [`ObjectsError::InvalidKey`] for a bad prefix, or [`ObjectsError::Backend`] for the first
    /// failed deletion (earlier ones stay deleted; calling again finishes the job).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, ObjectsError> {
        let metas = self.list_meta(prefix).await?;
        if metas.is_empty() {
            return Ok(0);
        }
        let paths = stream::iter(metas.into_iter().map(|m| Ok(m.location))).boxed();
        // S3 batches these into DeleteObjects requests of up to 1000 keys.
        let mut results = self.store.delete_stream(paths);
        let mut deleted = 0;
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                // Someone else deleted it between our listing and now: the goal is reached.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.backend_err("delete", prefix, e)),
            }
        }
        Ok(deleted)
    }

    /// Readiness probe: one cheap listing request that proves the bucket (or folder) is
    /// reachable and readable with these credentials.
    ///
    /// # Errors
    /// [`ObjectsError::Backend`] describing what failed.
    pub async fn check(&self) -> Result<(), ObjectsError> {
        if let Some(root) = &self.local_root {
            match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(self.local_err(root, std::io::Error::other("not a directory"))),
                Err(e) => return Err(self.local_err(root, e)),
            }
        }
        let prefix = self.prefix.as_deref().map(Path::from);
        self.store.list_with_delimiter(prefix.as_ref()).await.map_err(|e| self.backend_err("check", "", e))?;
        Ok(())
    }

    /// `file:///…` or `s3://bucket/prefix @ endpoint`, for logs and `/readyz`: never a secret.
    pub fn describe(&self) -> String {
        self.description.to_string()
    }

    fn object_path(&self, key: &str) -> Result<Path, ObjectsError> {
        validate_key(key)?;
        self.join(key).ok_or_else(|| ObjectsError::InvalidKey(key.to_owned()))
    }

    /// `None` only if `key` is empty and there is no configured prefix ("the whole store").
    fn join(&self, key: &str) -> Option<Path> {
        let full = match (self.prefix.as_deref(), key) {
            (None, "") => return None,
            (None, k) => k.to_owned(),
            (Some(p), "") => p.to_owned(),
            (Some(p), k) => format!("{p}/{k}"),
        };
        // Cannot fail for validated input; treated as an invalid key rather than unwrapped.
        Path::parse(full).ok()
    }

    async fn list_meta(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, ObjectsError> {
        let trimmed = validate_prefix(prefix)?;
        let path = match self.join(trimmed) {
            Some(p) => Some(p),
            None if trimmed.is_empty() => None,
            None => return Err(ObjectsError::InvalidKey(prefix.to_owned())),
        };
        self.store.list(path.as_ref()).try_collect().await.map_err(|e| self.backend_err("list", prefix, e))
    }

    fn relative_key(&self, location: &Path) -> String {
        let full: &str = location.as_ref();
        match self.prefix.as_deref() {
            Some(p) => full.strip_prefix(p).and_then(|rest| rest.strip_prefix('/')).unwrap_or(full).to_owned(),
            None => full.to_owned(),
        }
    }

    fn backend_err(&self, op: &'static str, key: &str, source: object_store::Error) -> ObjectsError {
        if matches!(source, object_store::Error::NotFound { .. }) && matches!(op, "get" | "head") {
            return ObjectsError::NotFound(key.to_owned());
        }
        ObjectsError::Backend { store: self.describe(), op, key: key.to_owned(), source: Box::new(source) }
    }

    fn local_err(&self, root: &std::path::Path, e: std::io::Error) -> ObjectsError {
        let source = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::new(e.kind(), format!("{}: {e}", root.display()))),
        };
        ObjectsError::Backend { store: self.describe(), op: "check", key: String::new(), source: Box::new(source) }
    }
}

fn open_local(dir: PathBuf) -> Result<Objects, ObjectsError> {
    let dir = std::path::absolute(&dir).map_err(|e| config_err("url", format!("folder {}: {e}", dir.display())))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| config_err("url", format!("folder {} cannot be created: {e}", dir.display())))?;
    let root = std::fs::canonicalize(&dir).map_err(|e| config_err("url", format!("folder {}: {e}", dir.display())))?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|e| config_err("url", format!("folder {}: {e}", root.display())))?
        // Deleting a prefix should not leave a tree of empty folders behind.
        .with_automatic_cleanup(true)
        // A report we said was stored must survive a crash, as it would on S3.
        .with_fsync(true);
    let description = url::Url::from_directory_path(&root)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| format!("file://{}", root.display()));
    Ok(Objects {
        store: Arc::new(store),
        prefix: None,
        local_root: Some(Arc::from(root.as_path())),
        description: description.into(),
    })
}

fn open_s3(cfg: &ObjectStoreConfig, rest: &str) -> Result<Objects, ObjectsError> {
    let (bucket, prefix) = match rest.split_once('/') {
        Some((b, p)) => (b, p.strip_suffix('/').unwrap_or(p)),
        None => (rest, ""),
    };
    validate_bucket(bucket)?;
    if !prefix.is_empty() {
        validate_key(prefix).map_err(|_| {
            config_err(
                "url",
                format!("prefix {prefix:?} in s3://{bucket}/{prefix} breaks the key rules ({})", key_rules()),
            )
        })?;
    }
    let region = match cfg.s3_region.trim() {
        "" => DEFAULT_REGION,
        r => r,
    };

    let access = cfg.s3_access_key.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let secret = cfg.s3_secret_key.as_deref().filter(|s| !s.trim().is_empty());
    let mut builder = match (access, secret) {
        (Some(a), Some(s)) => AmazonS3Builder::new().with_access_key_id(a).with_secret_access_key(s),
        // Without explicit keys AWS deployments expect the standard chain (env, IRSA, ECS, IMDS),
        // which object_store only reads through from_env.
        (None, None) => AmazonS3Builder::from_env(),
        (Some(_), None) => return Err(config_err("s3_secret_key", "is missing while s3_access_key is set")),
        (None, Some(_)) => return Err(config_err("s3_access_key", "is missing while s3_secret_key is set")),
    };

    let endpoint = cfg.s3_endpoint.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(endpoint) = endpoint {
        let request_endpoint = s3_endpoint_for(endpoint, bucket, cfg)?;
        builder = builder.with_endpoint(request_endpoint);
    }
    builder = builder
        .with_bucket_name(bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(!cfg.s3_path_style)
        .with_allow_http(cfg.s3_allow_http)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(cfg.s3_allow_http)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60)),
        )
        // object_store's default retries for up to 3 minutes, which would turn a readiness probe
        // against a dead endpoint into a hang; a few quick retries still ride out blips.
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
        });

    // Describe what requests will actually use: from_env may have supplied AWS_ENDPOINT.
    let effective_endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let store = builder.build().map_err(|e| config_err("url", format!("S3 store for bucket {bucket:?}: {e}")))?;

    let location = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
    let description = match (endpoint, effective_endpoint) {
        (Some(e), _) => format!("{location} @ {}", e.trim_end_matches('/')),
        (None, Some(e)) => format!("{location} @ {} (AWS_ENDPOINT)", strip_userinfo(&e)),
        (None, None) => format!("{location} @ AWS {region}"),
    };
    Ok(Objects {
        store: Arc::new(store),
        prefix: if prefix.is_empty() { None } else { Some(Arc::from(prefix)) },
        local_root: None,
        description: description.into(),
    })
}

fn key_rules() -> &'static str {
    "'/'-separated segments of ASCII letters, digits, '.', '_', '-' or '='"
}

/// Lower-case letters, digits, `.` and `-`, 3–63 long, starting and ending alphanumeric: the
/// S3 rules, checked here so a typo fails at startup rather than on the first request.
fn validate_bucket(bucket: &str) -> Result<(), ObjectsError> {
    let b = bucket.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(config_err(
            "url",
            format!(
                "bucket {bucket:?} is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-'; s3://bucket[/prefix])"
            ),
        ))
    }
}

/// Validates `s3_endpoint` and returns the endpoint object_store should send requests to.
fn s3_endpoint_for(endpoint: &str, bucket: &str, cfg: &ObjectStoreConfig) -> Result<String, ObjectsError> {
    let mut url =
        url::Url::parse(endpoint).map_err(|e| config_err("s3_endpoint", format!("{endpoint:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if cfg.s3_allow_http => {}
        "http" => {
            return Err(config_err("s3_allow_http", format!("must be true to use the http:// endpoint {endpoint}")));
        }
        other => return Err(config_err("s3_endpoint", format!("has scheme {other:?}: expected http:// or https://"))),
    }
    // Credentials belong in s3_access_key/s3_secret_key, where they are kept out of logs.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_err("s3_endpoint", "must not contain user:password@ (use s3_access_key/s3_secret_key)"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(config_err("s3_endpoint", format!("{endpoint:?} must be scheme://host[:port] without a path")));
    }
    if cfg.s3_path_style {
        return Ok(url.as_str().trim_end_matches('/').to_owned());
    }
    // object_store expects a virtual-hosted endpoint to already contain the bucket; without it
    // requests would silently go to the endpoint's root. Add it, as AWS SDKs do.
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(config_err(
                "s3_path_style",
                format!("must be true for the IP-address endpoint {endpoint} (virtual-hosted style needs a DNS name)"),
            ));
        }
        None => return Err(config_err("s3_endpoint", format!("{endpoint:?} has no host"))),
    };
    if !host.starts_with(&format!("{bucket}.")) {
        url.set_host(Some(&format!("{bucket}.{host}")))
            .map_err(|e| config_err("s3_endpoint", format!("cannot prefix the bucket to {host:?}: {e}")))?;
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn strip_userinfo(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(mut u) => {
            // Both setters only fail for URLs that cannot have credentials at all.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "<unparseable endpoint>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(url: &str) -> ObjectStoreConfig {
        ObjectStoreConfig {
            url: url.into(),
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            s3_access_key: Some("AKIDEXAMPLE".into()),
            s3_secret_key: Some("very-secret-value".into()),
            s3_path_style: true,
            s3_allow_http: true,
            ..ObjectStoreConfig::default()
        }
    }

    fn field_of(err: ObjectsError) -> &'static str {
        match err {
            ObjectsError::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn key_rules() {
        for ok in ["a", "reports/2026/run-1/report.html", "date=2026-01-02/x.csv", "..a", "a.b_c-d"] {
            assert!(validate_key(ok).is_ok(), "{ok:?} should be valid");
        }
        let long = "a".repeat(1025);
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            ".",
            "a/./b",
            "a b",
            "a\\b",
            "a#1",
            "a\nb",
            "é",
            "a%20",
            long.as_str(),
        ] {
            assert!(
                matches!(validate_key(bad), Err(ObjectsError::InvalidKey(k)) if k == bad),
                "{bad:?} should be invalid"
            );
        }
        assert_eq!(validate_prefix("").ok(), Some(""));
        assert_eq!(validate_prefix("a/b/").ok(), Some("a/b"));
        assert!(validate_prefix("/").is_err());
        assert!(validate_prefix("a//").is_err());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let cfg = s3("s3://bucket");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("very-secret-value"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
        let objects = Objects::open(&cfg).unwrap();
        assert!(!format!("{objects:?}").contains("very-secret-value"));
        assert!(!objects.describe().contains("very-secret-value"));
    }

    #[test]
    fn deserialises_with_defaults() {
        let cfg: ObjectStoreConfig = serde_json::from_str(r#"{"url":"s3://b-1/p"}"#).unwrap();
        assert_eq!(cfg.s3_region, "us-east-1");
        assert!(!cfg.s3_path_style && !cfg.s3_allow_http && cfg.s3_endpoint.is_none());
    }

    #[test]
    fn describes_without_secrets() {
        assert_eq!(
            Objects::open(&s3("s3://haechi-test")).unwrap().describe(),
            "s3://haechi-test @ http://127.0.0.1:9000"
        );
        assert_eq!(
            Objects::open(&s3("s3://haechi-test/runs/a/")).unwrap().describe(),
            "s3://haechi-test/runs/a @ http://127.0.0.1:9000"
        );
        let aws = ObjectStoreConfig {
            url: "s3://haechi-reports/prod".into(),
            s3_region: "ap-northeast-2".into(),
            s3_access_key: Some("AKID".into()),
            s3_secret_key: Some("s".into()),
            ..ObjectStoreConfig::default()
        };
        // AWS_ENDPOINT would change this; CI does not set it.
        if std::env::var_os("AWS_ENDPOINT").is_none() {
            assert_eq!(Objects::open(&aws).unwrap().describe(), "s3://haechi-reports/prod @ AWS ap-northeast-2");
        }
        let dir = tempfile::tempdir().unwrap();
        let local = Objects::open(&ObjectStoreConfig { url: dir.path().display().to_string(), ..Default::default() });
        let d = local.unwrap().describe();
        assert!(d.starts_with("file:///") && d.ends_with('/'), "{d}");
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = |cfg: ObjectStoreConfig| field_of(Objects::open(&cfg).unwrap_err());
        assert_eq!(e(ObjectStoreConfig::default()), "url");
        assert_eq!(e(s3("gs://bucket")), "url");
        assert_eq!(e(s3("s3://")), "url");
        assert_eq!(e(s3("s3://Bad_Bucket")), "url");
        assert_eq!(e(s3("s3://bucket/../x")), "url");
        assert_eq!(e(s3("file://server/share")), "url");
        assert_eq!(e(ObjectStoreConfig { s3_secret_key: None, ..s3("s3://bucket") }), "s3_secret_key");
        assert_eq!(e(ObjectStoreConfig { s3_access_key: Some(" ".into()), ..s3("s3://bucket") }), "s3_access_key");
        assert_eq!(e(ObjectStoreConfig { s3_allow_http: false, ..s3("s3://bucket") }), "s3_allow_http");
        assert_eq!(e(ObjectStoreConfig { s3_path_style: false, ..s3("s3://bucket") }), "s3_path_style");
        assert_eq!(e(ObjectStoreConfig { s3_endpoint: Some("ftp://x".into()), ..s3("s3://bucket") }), "s3_endpoint");
        assert_eq!(
            e(ObjectStoreConfig { s3_endpoint: Some("http://u:p@x".into()), ..s3("s3://bucket") }),
            "s3_endpoint"
        );
        assert_eq!(
            e(ObjectStoreConfig { s3_endpoint: Some("http://x/path".into()), ..s3("s3://bucket") }),
            "s3_endpoint"
        );
        // A folder that cannot be created: its parent is a file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let under_file = format!("{}/sub", file.display());
        assert_eq!(e(ObjectStoreConfig { url: under_file, ..Default::default() }), "url");
    }

    #[test]
    fn virtual_hosted_endpoint_gets_the_bucket() {
        let cfg = ObjectStoreConfig {
            s3_endpoint: Some("https://s3.example.com".into()),
            s3_path_style: false,
            ..s3("s3://reports")
        };
        assert_eq!(
            s3_endpoint_for("https://s3.example.com", "reports", &cfg).unwrap(),
            "https://reports.s3.example.com"
        );
        assert_eq!(
            s3_endpoint_for("https://reports.s3.example.com/", "reports", &cfg).unwrap(),
            "https://reports.s3.example.com"
        );
        let path_style = ObjectStoreConfig { s3_path_style: true, ..cfg };
        assert_eq!(
            s3_endpoint_for("https://s3.example.com/", "reports", &path_style).unwrap(),
            "https://s3.example.com"
        );
    }

    #[test]
    fn local_paths_and_file_urls_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a/b");
        Objects::open(&ObjectStoreConfig { url: plain.display().to_string(), ..Default::default() }).unwrap();
        assert!(plain.is_dir());
        let via_url = dir.path().join("c");
        let url = url::Url::from_directory_path(&via_url).unwrap().to_string();
        Objects::open(&ObjectStoreConfig { url, ..Default::default() }).unwrap();
        assert!(via_url.is_dir());
    }
}
