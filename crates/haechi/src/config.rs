//! Boot-time configuration: every setting `haechi` reads, where each may come from, and the checks
//! that must pass before anything starts listening.
//!
//! Sources, from lowest to highest precedence:
//!
//! 1. built-in defaults, chosen so `haechi demo` runs with no configuration at all;
//! 2. a TOML file whose keys are the field names of [`Settings`];
//! 3. `HAECHI_<KEY>` environment variables (`HAECHI_SESSION_IDLE_MINUTES`, …);
//! 4. `HAECHI_<KEY>_FILE` for the secret-bearing keys (`secret_key`, and `database_url` because it
//!    may carry a password): the path of a file holding the value, as Docker and Kubernetes secrets
//!    are mounted. The file must be `0600` or stricter.
//!
//! Loading has two phases, as in ripgrep's low/high args: raw values are gathered with their
//! [`Origin`], then each is validated into a typed field. Validation never stops at the first
//! mistake, so one failed boot lists every problem. The environment is an argument rather than read
//! here, which keeps tests free of process-global state; [`Sources::process_env`] is the one place
//! that reads it. A `.env` file is not this module's business.
//!
//! ```toml
//! # haechi.toml
//! database_url = "mysql://haechi@db.internal:3306/haechi"   # password from HAECHI_DATABASE_URL_FILE instead
//! addr = "0.0.0.0:8080"
//! cookie_secure = true
//! session_idle_minutes = 20
//! log_format = "json"
//! ```
//!
//! ```ignore
//! let env = config::Sources::process_env()?;
//! let settings = config::load(&config::Sources { file: Some(Path::new("haechi.toml")), env: &env })?;
//! print!("{}", settings.render()); // `haechi config check`
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

const ENV_PREFIX: &str = "HAECHI_";
const SECRET_FILE_SUFFIX: &str = "_FILE";
const REDACTED: &str = "[redacted]";
/// Enough for any key or URL; small enough that a `_FILE` pointed at `/dev/zero` or a log fails fast.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;
/// 256 bits: the key signs sessions and CSRF tokens, so anything shorter is guessable offline.
const MIN_SECRET_KEY_BYTES: usize = 32;
const SUPPORTED_SCHEMES: &str = "sqlite:, mysql: or mariadb:";

const DEFAULT_DATABASE_URL: &str = "sqlite://./haechi-data/haechi.db";
const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_DATA_DIR: &str = "./haechi-data";
const DEFAULT_SESSION_IDLE_MINUTES: u32 = 30;
const DEFAULT_SESSION_ABSOLUTE_HOURS: u32 = 12;
const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
const DEFAULT_LOGIN_MAX_FAILURES: u32 = 5;
const DEFAULT_LOGIN_LOCK_MINUTES: u32 = 15;
const DEFAULT_S3_REGION: &str = "us-east-1";
const DEFAULT_JOB_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_JOB_TIMEOUT_SECS: u32 = 1800;
const DEFAULT_QUEUE_NAME: &str = "haechi";
const DEFAULT_JOB_ORPHAN_SECS: u32 = 30;

/// Key names, shared by the file, the environment, errors and `render` so they cannot drift apart.
mod key {
    pub const DATABASE_URL: &str = "database_url";
    pub const ADDR: &str = "addr";
    pub const DATA_DIR: &str = "data_dir";
    pub const SECRET_KEY: &str = "secret_key";
    pub const COOKIE_SECURE: &str = "cookie_secure";
    pub const SESSION_IDLE_MINUTES: &str = "session_idle_minutes";
    pub const SESSION_ABSOLUTE_HOURS: &str = "session_absolute_hours";
    pub const BODY_LIMIT_BYTES: &str = "body_limit_bytes";
    pub const LOGIN_MAX_FAILURES: &str = "login_max_failures";
    pub const LOGIN_LOCK_MINUTES: &str = "login_lock_minutes";
    pub const TRUSTED_PROXY: &str = "trusted_proxy";
    pub const LOG_FORMAT: &str = "log_format";
    pub const REDIS_URL: &str = "redis_url";
    pub const OBJECT_STORE: &str = "object_store";
    pub const S3_ENDPOINT: &str = "s3_endpoint";
    pub const S3_REGION: &str = "s3_region";
    pub const S3_ACCESS_KEY: &str = "s3_access_key";
    pub const S3_SECRET_KEY: &str = "s3_secret_key";
    pub const S3_PATH_STYLE: &str = "s3_path_style";
    pub const S3_ALLOW_HTTP: &str = "s3_allow_http";
    pub const WORKERS: &str = "workers";
    pub const JOB_MAX_ATTEMPTS: &str = "job_max_attempts";
    pub const JOB_TIMEOUT_SECS: &str = "job_timeout_secs";
    pub const RUN_SESSION_DELAY_US: &str = "run_session_delay_us";
    pub const QUEUE_NAME: &str = "queue_name";
    pub const JOB_ORPHAN_SECS: &str = "job_orphan_secs";
}

struct KeySpec {
    name: &'static str,
    /// May also come from `HAECHI_<KEY>_FILE`; its value never appears in a message.
    secret: bool,
}

const KEYS: [KeySpec; 26] = [
    KeySpec { name: key::DATABASE_URL, secret: true },
    KeySpec { name: key::ADDR, secret: false },
    KeySpec { name: key::DATA_DIR, secret: false },
    KeySpec { name: key::SECRET_KEY, secret: true },
    KeySpec { name: key::COOKIE_SECURE, secret: false },
    KeySpec { name: key::SESSION_IDLE_MINUTES, secret: false },
    KeySpec { name: key::SESSION_ABSOLUTE_HOURS, secret: false },
    KeySpec { name: key::BODY_LIMIT_BYTES, secret: false },
    KeySpec { name: key::LOGIN_MAX_FAILURES, secret: false },
    KeySpec { name: key::LOGIN_LOCK_MINUTES, secret: false },
    KeySpec { name: key::TRUSTED_PROXY, secret: false },
    KeySpec { name: key::LOG_FORMAT, secret: false },
    KeySpec { name: key::REDIS_URL, secret: true },
    KeySpec { name: key::OBJECT_STORE, secret: false },
    KeySpec { name: key::S3_ENDPOINT, secret: false },
    KeySpec { name: key::S3_REGION, secret: false },
    KeySpec { name: key::S3_ACCESS_KEY, secret: true },
    KeySpec { name: key::S3_SECRET_KEY, secret: true },
    KeySpec { name: key::S3_PATH_STYLE, secret: false },
    KeySpec { name: key::S3_ALLOW_HTTP, secret: false },
    KeySpec { name: key::WORKERS, secret: false },
    KeySpec { name: key::JOB_MAX_ATTEMPTS, secret: false },
    KeySpec { name: key::JOB_TIMEOUT_SECS, secret: false },
    KeySpec { name: key::RUN_SESSION_DELAY_US, secret: false },
    KeySpec { name: key::QUEUE_NAME, secret: false },
    KeySpec { name: key::JOB_ORPHAN_SECS, secret: false },
];

fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

fn file_var(key: &str) -> String {
    format!("{}{SECRET_FILE_SUFFIX}", env_var(key))
}

/// A value that must not leak into logs, error messages or `config check` output.
///
/// No `PartialEq`: comparing secrets belongs in code that does it in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The raw value; call it only where the secret is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// Validated settings, built once at boot by [`load`] and passed to whoever needs them.
///
/// `Debug` redacts `secret_key` and the password in `database_url`.
#[derive(Clone)]
pub struct Settings {
    /// Database to use, picked by scheme: `sqlite:` or `mysql:` (`mariadb:` is accepted and
    /// rewritten to `mysql:`, the driver's name for both). Default `sqlite://./haechi-data/haechi.db`.
    pub database_url: String,
    /// Address the HTTP server binds. Default `127.0.0.1:8080`, so nothing is exposed by accident.
    pub addr: SocketAddr,
    /// Folder for the SQLite file, objects and generated secrets. Default `./haechi-data`.
    pub data_dir: PathBuf,
    /// Key for signing sessions and CSRF tokens, at least 32 bytes. Unset: the caller generates one.
    pub secret_key: Option<Secret>,
    /// Mark cookies `Secure`; turn on whenever users reach the server over HTTPS. Default false
    /// because the default address is plain-HTTP loopback, where browsers would drop them.
    pub cookie_secure: bool,
    /// Minutes of inactivity that end a session, 5..=1440. Default 30.
    pub session_idle_minutes: u32,
    /// Hours after login that end a session regardless of activity, 1..=720, and longer than the
    /// idle timeout (else the idle timeout would be meaningless). Default 12.
    pub session_absolute_hours: u32,
    /// Largest request body accepted, 1 KiB..=64 MiB. Default 1 MiB.
    pub body_limit_bytes: usize,
    /// Failed logins in a row before the account is locked for a while, 1..=100. Default 5.
    pub login_max_failures: u32,
    /// Minutes a locked account stays locked, 1..=1440. Default 15.
    pub login_lock_minutes: u32,
    /// Take the client IP from `X-Forwarded-For`. Only safe behind a proxy that overwrites the
    /// header: otherwise any client can pick the IP that rate limits and lockouts are keyed on.
    pub trusted_proxy: bool,
    /// Log line format. Default text.
    pub log_format: LogFormat,
    /// Redis for the job queue (`redis://…`). Unset: the embedded SQLite queue in `data_dir`,
    /// shared by processes on this machine only.
    pub redis_url: Option<Secret>,
    /// Object storage for reports and raw data: a folder (`file:///srv/haechi` or a path), or
    /// `s3://bucket[/prefix]` with the `s3_*` settings. Unset: `data_dir/objects`.
    pub object_store: Option<String>,
    /// S3-compatible endpoint (MinIO: `http://minio:9000`); unset means AWS.
    pub s3_endpoint: Option<String>,
    /// Default `us-east-1`.
    pub s3_region: String,
    pub s3_access_key: Option<Secret>,
    pub s3_secret_key: Option<Secret>,
    /// Path-style bucket addressing, which MinIO needs. Default false (AWS virtual-hosted).
    pub s3_path_style: bool,
    /// Allow a plain-HTTP endpoint. Default false.
    pub s3_allow_http: bool,
    /// Runs `serve` (and `demo`) execute in-process, 0..=64. Unset: 2 with the embedded queue,
    /// 0 with Redis (separate `haechi worker` processes do the work).
    pub workers: Option<u32>,
    /// Attempts per job before a run is marked failed, 1..=20. Default 3.
    pub job_max_attempts: u32,
    /// Longest a run attempt may take, 1..=86400 seconds. Default 1800.
    pub job_timeout_secs: u32,
    /// Artificial delay per simulated session in microseconds, 0..=100000; for demos and tests
    /// that watch progress or interrupt a run. Default 0.
    pub run_session_delay_us: u32,
    /// Namespace of the Redis queue, so several installations can share one Redis. Default
    /// `haechi`.
    pub queue_name: String,
    /// Seconds without a heartbeat after which a worker counts as dead and its runs are taken
    /// up by another, 2..=3600. Default 30.
    pub job_orphan_secs: u32,
    /// Where each value came from; absent keys kept their default.
    origins: BTreeMap<&'static str, Origin>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            addr: DEFAULT_ADDR,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            secret_key: None,
            cookie_secure: false,
            session_idle_minutes: DEFAULT_SESSION_IDLE_MINUTES,
            session_absolute_hours: DEFAULT_SESSION_ABSOLUTE_HOURS,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            login_max_failures: DEFAULT_LOGIN_MAX_FAILURES,
            login_lock_minutes: DEFAULT_LOGIN_LOCK_MINUTES,
            trusted_proxy: false,
            log_format: LogFormat::default(),
            redis_url: None,
            object_store: None,
            s3_endpoint: None,
            s3_region: DEFAULT_S3_REGION.to_owned(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_path_style: false,
            s3_allow_http: false,
            workers: None,
            job_max_attempts: DEFAULT_JOB_MAX_ATTEMPTS,
            job_timeout_secs: DEFAULT_JOB_TIMEOUT_SECS,
            run_session_delay_us: 0,
            queue_name: DEFAULT_QUEUE_NAME.to_owned(),
            job_orphan_secs: DEFAULT_JOB_ORPHAN_SECS,
            origins: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("secret_key", &self.secret_key)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("session_absolute_hours", &self.session_absolute_hours)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_lock_minutes", &self.login_lock_minutes)
            .field("trusted_proxy", &self.trusted_proxy)
            .field("log_format", &self.log_format)
            .field("redis_url", &self.redis_url)
            .field("object_store", &self.object_store)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key", &self.s3_access_key)
            .field("s3_secret_key", &self.s3_secret_key)
            .field("workers", &self.workers)
            .field("job_max_attempts", &self.job_max_attempts)
            .field("job_timeout_secs", &self.job_timeout_secs)
            .field("run_session_delay_us", &self.run_session_delay_us)
            .field("queue_name", &self.queue_name)
            .field("job_orphan_secs", &self.job_orphan_secs)
            .finish_non_exhaustive()
    }
}

static DEFAULT_ORIGIN: Origin = Origin::Default;

impl Settings {
    /// The object store location: `object_store`, or the `objects` folder in `data_dir`.
    pub fn object_store_url(&self) -> String {
        self.object_store.clone().unwrap_or_else(|| self.data_dir.join("objects").to_string_lossy().into_owned())
    }

    /// Moves the data folder, and the embedded database with it unless one was configured.
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        if !self.origins.contains_key(key::DATABASE_URL) {
            self.database_url = embedded_database_url(&dir);
        }
        self.data_dir = dir;
    }

    /// In-process workers for `serve`: as configured, else 2 with the embedded queue and 0
    /// with Redis.
    pub fn serve_workers(&self) -> u32 {
        self.workers.unwrap_or(if self.redis_url.is_some() { 0 } else { 2 })
    }

    /// Where the value of `key` (a TOML key name) came from.
    pub fn origin(&self, key: &str) -> &Origin {
        self.origins.get(key).unwrap_or(&DEFAULT_ORIGIN)
    }

    /// The effective settings as `key = value  # origin` lines, secrets shown as `[redacted]`:
    /// what `haechi config check` prints.
    pub fn render(&self) -> String {
        let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let values: [(&str, Option<String>); 26] = [
            (key::DATABASE_URL, Some(quoted(&redact_url(&self.database_url)))),
            (key::ADDR, Some(quoted(&self.addr.to_string()))),
            (key::DATA_DIR, Some(quoted(&self.data_dir.to_string_lossy()))),
            (key::SECRET_KEY, self.secret_key.as_ref().map(|_| quoted(REDACTED))),
            (key::COOKIE_SECURE, Some(self.cookie_secure.to_string())),
            (key::SESSION_IDLE_MINUTES, Some(self.session_idle_minutes.to_string())),
            (key::SESSION_ABSOLUTE_HOURS, Some(self.session_absolute_hours.to_string())),
            (key::BODY_LIMIT_BYTES, Some(self.body_limit_bytes.to_string())),
            (key::LOGIN_MAX_FAILURES, Some(self.login_max_failures.to_string())),
            (key::LOGIN_LOCK_MINUTES, Some(self.login_lock_minutes.to_string())),
            (key::TRUSTED_PROXY, Some(self.trusted_proxy.to_string())),
            (key::LOG_FORMAT, Some(quoted(self.log_format.as_str()))),
            (key::REDIS_URL, self.redis_url.as_ref().map(|u| quoted(&redact_url(u.expose())))),
            (key::OBJECT_STORE, self.object_store.as_deref().map(quoted)),
            (key::S3_ENDPOINT, self.s3_endpoint.as_deref().map(quoted)),
            (key::S3_REGION, Some(quoted(&self.s3_region))),
            (key::S3_ACCESS_KEY, self.s3_access_key.as_ref().map(|_| quoted(REDACTED))),
            (key::S3_SECRET_KEY, self.s3_secret_key.as_ref().map(|_| quoted(REDACTED))),
            (key::S3_PATH_STYLE, Some(self.s3_path_style.to_string())),
            (key::S3_ALLOW_HTTP, Some(self.s3_allow_http.to_string())),
            (key::WORKERS, self.workers.map(|w| w.to_string())),
            (key::JOB_MAX_ATTEMPTS, Some(self.job_max_attempts.to_string())),
            (key::JOB_TIMEOUT_SECS, Some(self.job_timeout_secs.to_string())),
            (key::RUN_SESSION_DELAY_US, Some(self.run_session_delay_us.to_string())),
            (key::QUEUE_NAME, Some(quoted(&self.queue_name))),
            (key::JOB_ORPHAN_SECS, Some(self.job_orphan_secs.to_string())),
        ];
        values
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key} = {value}  # {}\n", self.origin(key)),
                // Commented out, so the output stays valid TOML that means the same thing.
                None => format!("# {key} is not set  # {}\n", self.origin(key)),
            })
            .collect()
    }
}

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// The TOML file; `line` is missing only for problems with the file as a whole.
    File {
        path: PathBuf,
        line: Option<usize>,
    },
    Env {
        var: String,
    },
    /// A secret read from the file named by `var`.
    EnvFile {
        var: String,
        path: PathBuf,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, line: Some(line) } => write!(f, "file {}:{line}", path.display()),
            Self::File { path, line: None } => write!(f, "file {}", path.display()),
            Self::Env { var } => write!(f, "env {var}"),
            Self::EnvFile { var, .. } => write!(f, "file {var}"),
        }
    }
}

/// Where [`load`] reads from. The environment is passed in rather than read, so tests and
/// `config check` see exactly what they were given.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The TOML file, if any. A path given but missing is an error, not a silent fallback.
    pub file: Option<&'a Path>,
    /// Environment variables; only the `HAECHI_*` names of known keys are looked at.
    pub env: &'a BTreeMap<String, String>,
}

impl Sources<'_> {
    /// The process's `HAECHI_*` variables, for building [`Sources`] in `main`.
    ///
    /// # Errors
    ///
    /// A variable that [`load`] would read whose value is not UTF-8, rather than have it mangled.
    pub fn process_env() -> Result<BTreeMap<String, String>, ConfigErrors> {
        let mut env = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, value) in std::env::vars_os() {
            // A name that is not UTF-8 cannot be one of ours.
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.insert(name.to_owned(), value);
                }
                Err(_) => {
                    let read_by =
                        KEYS.iter().find(|k| env_var(k.name) == name || (k.secret && file_var(k.name) == name));
                    if let Some(k) = read_by {
                        errors.push(ConfigError {
                            key: Some(k.name.to_owned()),
                            origin: Origin::Env { var: name.to_owned() },
                            problem: Problem::EnvNotUtf8,
                        });
                    }
                }
            }
        }
        if errors.is_empty() { Ok(env) } else { Err(ConfigErrors(errors)) }
    }
}

/// What is wrong with one value. Messages never include a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: io::Error },
    #[error("not valid TOML: {message}")]
    Syntax { message: String },
    #[error("unknown key{}", did_you_mean(suggestion))]
    UnknownKey { suggestion: Option<&'static str> },
    #[error("expected {expected}, found {found}")]
    WrongType { expected: &'static str, found: &'static str },
    #[error("{value:?} is not {expected}")]
    Unparsable { value: String, expected: &'static str },
    #[error("{value} is outside {}..={}", range.start(), range.end())]
    OutOfRange { value: i128, range: RangeInclusive<i128> },
    #[error("must not be empty")]
    Empty,
    #[error("scheme {scheme:?} is not supported: expected {SUPPORTED_SCHEMES} (the backend is never guessed)")]
    UnsupportedScheme { scheme: String },
    #[error("does not start with a supported scheme: expected {SUPPORTED_SCHEMES}")]
    MissingScheme,
    #[error("is {len} bytes; at least {min} are required")]
    TooShort { len: usize, min: usize },
    #[error(
        "{} has mode {mode:04o}; a secret file must not be accessible by group or others (chmod 600)",
        path.display()
    )]
    InsecureMode { path: PathBuf, mode: u32 },
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{} is not UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error("the value is not UTF-8")]
    EnvNotUtf8,
    #[error("{hours} hours must be longer than session_idle_minutes ({idle} minutes, from {idle_origin})")]
    AbsoluteNotAboveIdle { hours: u32, idle: u32, idle_origin: Origin },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// One problem, with the key it concerns (absent for problems with the file as a whole).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub key: Option<String>,
    pub origin: Origin,
    pub problem: Problem,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {} (from {})", self.problem, self.origin),
            // That problem already names the file.
            None if matches!(self.problem, Problem::Unreadable { .. }) => write!(f, "{}", self.problem),
            None => write!(f, "{}: {}", self.origin, self.problem),
        }
    }
}

/// Every problem found, one per line when displayed.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads and validates the settings.
///
/// # Errors
///
/// [`ConfigErrors`] listing every problem found: an unreadable or malformed file, unknown keys,
/// values of the wrong type or out of range, unsafe or unreadable secret files, an unsupported
/// database scheme.
pub fn load(sources: &Sources<'_>) -> Result<Settings, ConfigErrors> {
    let mut raw = BTreeMap::new();
    let mut errors = Vec::new();
    if let Some(path) = sources.file {
        read_toml(path, &mut raw, &mut errors);
    }
    read_env(sources.env, &mut raw, &mut errors);
    validate(Validator { raw, origins: BTreeMap::new(), errors })
}

/// A value as found, before validation.
#[derive(Debug)]
enum RawValue {
    String(String),
    Integer(i128),
    Boolean(bool),
    /// Any other TOML type; only its name is kept, for the message.
    Other(&'static str),
    /// From the environment or a secret file: text each key parses its own way.
    Text(String),
}

impl RawValue {
    fn from_toml(value: &DeValue<'_>) -> Self {
        match value {
            DeValue::String(s) => Self::String(s.to_string()),
            DeValue::Integer(i) => Self::Integer(i128::from_str_radix(i.as_str(), i.radix()).unwrap_or_else(|_| {
                // The parser has already checked the digits, so failure means overflow; saturating
                // turns it into the same out-of-range message as any other too-large number.
                if i.as_str().starts_with('-') { i128::MIN } else { i128::MAX }
            })),
            DeValue::Boolean(b) => Self::Boolean(*b),
            DeValue::Float(_) => Self::Other("a float"),
            DeValue::Datetime(_) => Self::Other("a datetime"),
            DeValue::Array(_) => Self::Other("an array"),
            DeValue::Table(_) => Self::Other("a table"),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) | Self::Text(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Boolean(_) => "a boolean",
            Self::Other(name) => name,
        }
    }
}

#[derive(Debug)]
struct Raw {
    value: RawValue,
    origin: Origin,
}

fn read_toml(path: &Path, raw: &mut BTreeMap<&'static str, Raw>, errors: &mut Vec<ConfigError>) {
    let file_origin = |line| Origin::File { path: path.to_owned(), line };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            let problem = Problem::Unreadable { path: path.to_owned(), error };
            errors.push(ConfigError { key: None, origin: file_origin(None), problem });
            return;
        }
    };
    let (table, syntax) = DeTable::parse_recoverable(&text);
    if !syntax.is_empty() {
        for e in syntax {
            // `message()` rather than `Display`, which quotes the offending line: it may hold a secret.
            let line = e.span().map(|span| line_of(&text, span.start));
            let problem = Problem::Syntax { message: e.message().to_owned() };
            errors.push(ConfigError { key: None, origin: file_origin(line), problem });
        }
        // What the parser recovered is a guess; validating it would only add noise.
        return;
    }
    let mut unknown = Vec::new();
    for (name, value) in table.get_ref() {
        let origin = file_origin(Some(line_of(&text, name.span().start)));
        match KEYS.iter().find(|k| k.name == name.get_ref().as_ref()) {
            Some(k) => {
                raw.insert(k.name, Raw { value: RawValue::from_toml(value.get_ref()), origin });
            }
            None => {
                let problem = Problem::UnknownKey { suggestion: nearest_key(name.get_ref()) };
                unknown.push(ConfigError { key: Some(name.get_ref().to_string()), origin, problem });
            }
        }
    }
    // The table iterates in key order; file order reads better next to the file.
    unknown.sort_by_key(|e| match &e.origin {
        Origin::File { line, .. } => *line,
        _ => None,
    });
    errors.append(&mut unknown);
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The known key a typo most likely meant, if any is close.
fn nearest_key(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(name, k.name), k.name))
        .filter(|&(d, _)| d <= 3)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

fn read_env(env: &BTreeMap<String, String>, raw: &mut BTreeMap<&'static str, Raw>, errors: &mut Vec<ConfigError>) {
    // Empty counts as unset: compose files write `HAECHI_X: ${HAECHI_X:-}` to pass a variable through.
    let lookup = |var: &str| env.get(var).filter(|value| !value.is_empty());
    for k in &KEYS {
        let var = env_var(k.name);
        if let Some(value) = lookup(&var) {
            raw.insert(k.name, Raw { value: RawValue::Text(value.clone()), origin: Origin::Env { var } });
        }
        if !k.secret {
            continue;
        }
        let var = file_var(k.name);
        if let Some(path) = lookup(&var) {
            let path = PathBuf::from(path);
            match read_secret_file(&path) {
                Ok(value) => {
                    raw.insert(k.name, Raw { value: RawValue::Text(value), origin: Origin::EnvFile { var, path } });
                }
                Err(problem) => {
                    // The value this file was meant to override would only add unrelated errors.
                    raw.remove(k.name);
                    let origin = Origin::EnvFile { var, path };
                    errors.push(ConfigError { key: Some(k.name.to_owned()), origin, problem });
                }
            }
        }
    }
}

/// Reads a secret file, refusing one that other users could read or replace.
/// Reads a secret from a file held to the same rules as `HAECHI_<KEY>_FILE` (mode 0600 or
/// stricter, one trailing newline dropped), for secrets read outside [`Settings`].
pub(crate) fn read_secret(path: &Path) -> Result<String, String> {
    read_secret_file(path).map_err(|p| p.to_string())
}

fn read_secret_file(path: &Path) -> Result<String, Problem> {
    let unreadable = |error| Problem::Unreadable { path: path.to_owned(), error };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // Checked on the open handle, so the file cannot be swapped between the check and the read.
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(Problem::NotAFile { path: path.to_owned() });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(Problem::InsecureMode { path: path.to_owned(), mode });
        }
    }
    let mut bytes = Vec::new();
    file.take(SECRET_FILE_LIMIT + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > SECRET_FILE_LIMIT {
        return Err(Problem::TooLarge { path: path.to_owned(), limit: SECRET_FILE_LIMIT });
    }
    let mut text = String::from_utf8(bytes).map_err(|_| Problem::FileNotUtf8 { path: path.to_owned() })?;
    // Editors and `echo` end files with a newline that is not part of the secret; anything
    // further is kept, since it might be.
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

struct Validator {
    raw: BTreeMap<&'static str, Raw>,
    origins: BTreeMap<&'static str, Origin>,
    errors: Vec<ConfigError>,
}

impl Validator {
    /// The value of `key`: its default when not set, `None` (with the problem recorded) when invalid.
    fn field<T>(
        &mut self,
        key: &'static str,
        default: T,
        parse: impl FnOnce(RawValue) -> Result<T, Problem>,
    ) -> Option<T> {
        let Some(Raw { value, origin }) = self.raw.remove(key) else { return Some(default) };
        match parse(value) {
            Ok(value) => {
                self.origins.insert(key, origin);
                Some(value)
            }
            Err(problem) => {
                self.errors.push(ConfigError { key: Some(key.to_owned()), origin, problem });
                None
            }
        }
    }

    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

fn validate(mut v: Validator) -> Result<Settings, ConfigErrors> {
    let database_url = v.field(key::DATABASE_URL, DEFAULT_DATABASE_URL.to_owned(), |raw| database_url(text(raw)?));
    let addr = v.field(key::ADDR, DEFAULT_ADDR, |raw| {
        let text = text(raw)?;
        text.trim()
            .parse()
            .map_err(|_| Problem::Unparsable { value: text, expected: "an IP address and port such as 127.0.0.1:8080" })
    });
    let data_dir = v.field(key::DATA_DIR, PathBuf::from(DEFAULT_DATA_DIR), |raw| {
        let text = text(raw)?;
        if text.trim().is_empty() { Err(Problem::Empty) } else { Ok(PathBuf::from(text)) }
    });
    let secret_key = v.field(key::SECRET_KEY, None, |raw| {
        let text = text(raw)?;
        if text.len() < MIN_SECRET_KEY_BYTES {
            return Err(Problem::TooShort { len: text.len(), min: MIN_SECRET_KEY_BYTES });
        }
        Ok(Some(Secret(text)))
    });
    let cookie_secure = v.field(key::COOKIE_SECURE, false, boolean);
    let session_idle_minutes =
        v.field(key::SESSION_IDLE_MINUTES, DEFAULT_SESSION_IDLE_MINUTES, |raw| integer(raw, 5..=1440));
    let session_absolute_hours =
        v.field(key::SESSION_ABSOLUTE_HOURS, DEFAULT_SESSION_ABSOLUTE_HOURS, |raw| integer(raw, 1..=720));
    let body_limit_bytes =
        v.field(key::BODY_LIMIT_BYTES, DEFAULT_BODY_LIMIT_BYTES, |raw| integer(raw, 1024..=64 * 1024 * 1024));
    let login_max_failures = v.field(key::LOGIN_MAX_FAILURES, DEFAULT_LOGIN_MAX_FAILURES, |raw| integer(raw, 1..=100));
    // Zero would turn the lockout off while looking configured.
    let login_lock_minutes = v.field(key::LOGIN_LOCK_MINUTES, DEFAULT_LOGIN_LOCK_MINUTES, |raw| integer(raw, 1..=1440));
    let trusted_proxy = v.field(key::TRUSTED_PROXY, false, boolean);
    let log_format = v.field(key::LOG_FORMAT, LogFormat::default(), |raw| {
        let text = text(raw)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(Problem::Unparsable { value: text, expected: "\"text\" or \"json\"" }),
        }
    });

    let nonempty = |raw: RawValue| {
        let t = text(raw)?;
        if t.trim().is_empty() { Err(Problem::Empty) } else { Ok(Some(t.trim().to_owned())) }
    };
    let redis_url = v.field(key::REDIS_URL, None, |raw| {
        let t = text(raw)?;
        if t.starts_with("redis://") || t.starts_with("rediss://") {
            Ok(Some(Secret(t)))
        } else {
            Err(Problem::Unparsable { value: redact_url(&t), expected: "a redis:// or rediss:// URL" })
        }
    });
    let object_store = v.field(key::OBJECT_STORE, None, nonempty);
    let s3_endpoint = v.field(key::S3_ENDPOINT, None, nonempty);
    let s3_region =
        v.field(key::S3_REGION, DEFAULT_S3_REGION.to_owned(), |raw| nonempty(raw).map(Option::unwrap_or_default));
    let s3_access_key = v.field(key::S3_ACCESS_KEY, None, |raw| Ok(Some(Secret(text(raw)?))));
    let s3_secret_key = v.field(key::S3_SECRET_KEY, None, |raw| Ok(Some(Secret(text(raw)?))));
    let s3_path_style = v.field(key::S3_PATH_STYLE, false, boolean);
    let s3_allow_http = v.field(key::S3_ALLOW_HTTP, false, boolean);
    let workers = v.field(key::WORKERS, None, |raw| integer(raw, 0..=64).map(Some));
    let job_max_attempts = v.field(key::JOB_MAX_ATTEMPTS, DEFAULT_JOB_MAX_ATTEMPTS, |raw| integer(raw, 1..=20));
    let job_timeout_secs = v.field(key::JOB_TIMEOUT_SECS, DEFAULT_JOB_TIMEOUT_SECS, |raw| integer(raw, 1..=86_400));
    let run_session_delay_us = v.field(key::RUN_SESSION_DELAY_US, 0, |raw| integer(raw, 0..=100_000));
    let job_orphan_secs = v.field(key::JOB_ORPHAN_SECS, DEFAULT_JOB_ORPHAN_SECS, |raw| integer(raw, 2..=3600));
    let queue_name = v.field(key::QUEUE_NAME, DEFAULT_QUEUE_NAME.to_owned(), |raw| {
        let t = text(raw)?;
        if !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Ok(t)
        } else {
            Err(Problem::Unparsable { value: t, expected: "1 to 64 letters, digits, '-', '_' or '.'" })
        }
    });

    if let (Some(idle), Some(hours)) = (session_idle_minutes, session_absolute_hours)
        && u64::from(hours) * 60 <= u64::from(idle)
    {
        let problem = Problem::AbsoluteNotAboveIdle { hours, idle, idle_origin: v.origin(key::SESSION_IDLE_MINUTES) };
        let origin = v.origin(key::SESSION_ABSOLUTE_HOURS);
        v.errors.push(ConfigError { key: Some(key::SESSION_ABSOLUTE_HOURS.to_owned()), origin, problem });
    }

    // Every `None` above recorded its problem, so this `else` never drops one silently.
    let (
        Some(database_url),
        Some(addr),
        Some(data_dir),
        Some(secret_key),
        Some(cookie_secure),
        Some(session_idle_minutes),
        Some(session_absolute_hours),
        Some(body_limit_bytes),
        Some(login_max_failures),
        Some(login_lock_minutes),
        Some(trusted_proxy),
        Some(log_format),
    ) = (
        database_url,
        addr,
        data_dir,
        secret_key,
        cookie_secure,
        session_idle_minutes,
        session_absolute_hours,
        body_limit_bytes,
        login_max_failures,
        login_lock_minutes,
        trusted_proxy,
        log_format,
    )
    else {
        return Err(ConfigErrors(v.errors));
    };
    if !v.errors.is_empty() {
        return Err(ConfigErrors(v.errors));
    }
    // The embedded database lives in the data folder unless placed elsewhere explicitly.
    let database_url =
        if v.origins.contains_key(key::DATABASE_URL) { database_url } else { embedded_database_url(&data_dir) };
    Ok(Settings {
        database_url,
        addr,
        data_dir,
        secret_key,
        cookie_secure,
        session_idle_minutes,
        session_absolute_hours,
        body_limit_bytes,
        login_max_failures,
        login_lock_minutes,
        trusted_proxy,
        log_format,
        // Each `None` here recorded an error, and errors returned above.
        redis_url: redis_url.unwrap_or_default(),
        object_store: object_store.unwrap_or_default(),
        s3_endpoint: s3_endpoint.unwrap_or_default(),
        s3_region: s3_region.unwrap_or_default(),
        s3_access_key: s3_access_key.unwrap_or_default(),
        s3_secret_key: s3_secret_key.unwrap_or_default(),
        s3_path_style: s3_path_style.unwrap_or_default(),
        s3_allow_http: s3_allow_http.unwrap_or_default(),
        workers: workers.unwrap_or_default(),
        job_max_attempts: job_max_attempts.unwrap_or(DEFAULT_JOB_MAX_ATTEMPTS),
        job_timeout_secs: job_timeout_secs.unwrap_or(DEFAULT_JOB_TIMEOUT_SECS),
        run_session_delay_us: run_session_delay_us.unwrap_or_default(),
        queue_name: queue_name.unwrap_or_else(|| DEFAULT_QUEUE_NAME.to_owned()),
        job_orphan_secs: job_orphan_secs.unwrap_or(DEFAULT_JOB_ORPHAN_SECS),
        origins: v.origins,
    })
}

/// The SQLite database inside a data folder.
fn embedded_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}/haechi.db", data_dir.display())
}

fn wrong_type(expected: &'static str, found: &RawValue) -> Problem {
    Problem::WrongType { expected, found: found.type_name() }
}

fn text(raw: RawValue) -> Result<String, Problem> {
    match raw {
        RawValue::String(s) | RawValue::Text(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

fn integer<T: TryFrom<i128>>(raw: RawValue, range: RangeInclusive<i128>) -> Result<T, Problem> {
    let value = match raw {
        RawValue::Integer(i) => i,
        RawValue::Text(text) => match text.trim().parse() {
            Ok(i) => i,
            Err(_) => return Err(Problem::Unparsable { value: text, expected: "an integer" }),
        },
        other => return Err(wrong_type("an integer", &other)),
    };
    if !range.contains(&value) {
        return Err(Problem::OutOfRange { value, range });
    }
    T::try_from(value).map_err(|_| Problem::OutOfRange { value, range })
}

fn boolean(raw: RawValue) -> Result<bool, Problem> {
    match raw {
        RawValue::Boolean(b) => Ok(b),
        RawValue::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(Problem::Unparsable { value: text, expected: "a boolean (true or false)" }),
        },
        other => Err(wrong_type("a boolean", &other)),
    }
}

fn database_url(url: String) -> Result<String, Problem> {
    if url.trim().is_empty() {
        return Err(Problem::Empty);
    }
    let Some((scheme, rest)) = url.split_once(':') else { return Err(Problem::MissingScheme) };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(format!("sqlite:{rest}")),
        // sqlx speaks to MariaDB through its MySQL driver, which only knows the `mysql` scheme.
        "mysql" | "mariadb" => Ok(format!("mysql:{rest}")),
        // Named only when it is plainly a scheme: without `//` the part before `:` may be a
        // username or password from a URL missing its scheme.
        _ if rest.starts_with("//") && is_scheme(scheme) => {
            Err(Problem::UnsupportedScheme { scheme: scheme.to_owned() })
        }
        _ => Err(Problem::MissingScheme),
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL with the password in its userinfo replaced by `[redacted]`.
fn redact_url(url: &str) -> String {
    let Some(authority_start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[authority_start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    // The last `@` before the query, not the first `/`: an unescaped `/` in a password must not
    // make the password look like a path and escape redaction.
    let Some(at) = rest[..end].rfind('@') else { return url.to_owned() };
    let Some(colon) = rest[..at].find(':') else { return url.to_owned() };
    format!("{}{}:{REDACTED}{}", &url[..authority_start], &rest[..colon], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const LONG_SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn write(dir: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn load_with(file: Option<&Path>, pairs: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let env = env(pairs);
        load(&Sources { file, env: &env })
    }

    fn errors_of(result: Result<Settings, ConfigErrors>) -> Vec<ConfigError> {
        match result {
            Ok(settings) => panic!("expected errors, got {settings:?}"),
            Err(ConfigErrors(errors)) => errors,
        }
    }

    fn keys_of(errors: &[ConfigError]) -> Vec<&str> {
        errors.iter().filter_map(|e| e.key.as_deref()).collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = load_with(None, &[("PATH", "/usr/bin"), ("HAECHI_UNRELATED", "x")]).unwrap();
        assert_eq!(s.database_url, "sqlite://./haechi-data/haechi.db");
        assert_eq!(s.addr, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("./haechi-data"));
        assert!(s.secret_key.is_none());
        assert!(!s.cookie_secure);
        assert_eq!((s.session_idle_minutes, s.session_absolute_hours, s.body_limit_bytes), (30, 12, 1024 * 1024));
        assert_eq!((s.login_max_failures, s.login_lock_minutes), (5, 15));
        assert!(!s.trusted_proxy);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.origin(key::ADDR), &Origin::Default);
        assert_eq!(format!("{s:?}"), format!("{:?}", Settings::default()));
    }

    #[test]
    fn file_beats_default_env_beats_file_and_secret_file_beats_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "haechi.toml",
            "# comment\n\
             database_url = \"sqlite://file.db\"\n\
             addr = \"0.0.0.0:9000\"\n\
             session_idle_minutes = 20\n\
             secret_key = \"from-the-file-from-the-file-from-the-file\"\n",
            0o644,
        );
        let key_file = write(dir.path(), "key", &format!("{LONG_SECRET}\n"), 0o600);
        let key_file_str = key_file.to_str().unwrap();
        let s = load_with(
            Some(&file),
            &[
                ("HAECHI_ADDR", "127.0.0.2:7000"),
                ("HAECHI_DATABASE_URL", "sqlite://env.db"),
                ("HAECHI_SECRET_KEY", "from-the-env-from-the-env-from-the-env-"),
                ("HAECHI_SECRET_KEY_FILE", key_file_str),
            ],
        )
        .unwrap();

        assert_eq!(s.session_idle_minutes, 20, "file beats default");
        assert_eq!(s.origin(key::SESSION_IDLE_MINUTES), &Origin::File { path: file.clone(), line: Some(4) });
        assert_eq!(s.login_max_failures, 5);
        assert_eq!(s.origin(key::LOGIN_MAX_FAILURES), &Origin::Default);

        assert_eq!(s.addr, "127.0.0.2:7000".parse::<SocketAddr>().unwrap(), "env beats file");
        assert_eq!(s.origin(key::ADDR), &Origin::Env { var: "HAECHI_ADDR".into() });
        assert_eq!(s.database_url, "sqlite://env.db");

        assert_eq!(s.secret_key.as_ref().unwrap().expose(), LONG_SECRET, "_FILE beats env, one newline trimmed");
        assert_eq!(
            s.origin(key::SECRET_KEY),
            &Origin::EnvFile { var: "HAECHI_SECRET_KEY_FILE".into(), path: key_file.clone() }
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_key_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "haechi.toml",
            "session_idle_minutes = 2\n\
             cookie_secure = \"yes\"\n\
             sesion_absolute_hours = 3\n\
             body_limit_bytes = 1.5\n",
            0o644,
        );
        let errors = errors_of(load_with(
            Some(&file),
            &[
                ("HAECHI_ADDR", "localhost:8080"),
                ("HAECHI_LOGIN_MAX_FAILURES", "many"),
                ("HAECHI_LOGIN_LOCK_MINUTES", "0"),
                ("HAECHI_DATABASE_URL", "postgres://u:pw-7Hq2@db/haechi"),
                ("HAECHI_SECRET_KEY", "short"),
                ("HAECHI_TRUSTED_PROXY", "perhaps"),
                ("HAECHI_LOG_FORMAT", "xml"),
                ("HAECHI_SESSION_ABSOLUTE_HOURS", "721"),
                ("HAECHI_DATA_DIR", " "),
            ],
        ));
        let mut keys = keys_of(&errors);
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "addr",
                "body_limit_bytes",
                "cookie_secure",
                "data_dir",
                "database_url",
                "log_format",
                "login_lock_minutes",
                "login_max_failures",
                "secret_key",
                "sesion_absolute_hours",
                "session_absolute_hours",
                "session_idle_minutes",
                "trusted_proxy",
            ]
        );

        let shown = ConfigErrors(errors).to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 13, "{shown}");
        let path = file.display();
        for expected in [
            format!("session_idle_minutes: 2 is outside 5..=1440 (from file {path}:1)"),
            format!("cookie_secure: expected a boolean, found a string (from file {path}:2)"),
            format!("sesion_absolute_hours: unknown key (did you mean `session_absolute_hours`?) (from file {path}:3)"),
            format!("body_limit_bytes: expected an integer, found a float (from file {path}:4)"),
            "login_max_failures: \"many\" is not an integer (from env HAECHI_LOGIN_MAX_FAILURES)".to_owned(),
            "login_lock_minutes: 0 is outside 1..=1440 (from env HAECHI_LOGIN_LOCK_MINUTES)".to_owned(),
            "session_absolute_hours: 721 is outside 1..=720 (from env HAECHI_SESSION_ABSOLUTE_HOURS)".to_owned(),
            "secret_key: is 5 bytes; at least 32 are required (from env HAECHI_SECRET_KEY)".to_owned(),
            "data_dir: must not be empty (from env HAECHI_DATA_DIR)".to_owned(),
        ] {
            assert!(lines.contains(&expected.as_str()), "missing {expected:?} in\n{shown}");
        }
        assert!(shown.contains("addr: \"localhost:8080\" is not an IP address and port"), "{shown}");
        assert!(shown.contains("log_format: \"xml\" is not"), "{shown}");
        assert!(shown.contains("trusted_proxy: \"perhaps\" is not a boolean"), "{shown}");
        assert!(!shown.contains("pw-7Hq2"), "a password leaked into\n{shown}");
        assert!(!shown.contains("short"), "a secret leaked into\n{shown}");
    }

    #[test]
    fn absolute_lifetime_must_exceed_idle_timeout() {
        let errors = errors_of(load_with(
            None,
            &[("HAECHI_SESSION_IDLE_MINUTES", "120"), ("HAECHI_SESSION_ABSOLUTE_HOURS", "2")],
        ));
        assert_eq!(keys_of(&errors), ["session_absolute_hours"]);
        assert_eq!(
            errors[0].to_string(),
            "session_absolute_hours: 2 hours must be longer than session_idle_minutes \
             (120 minutes, from env HAECHI_SESSION_IDLE_MINUTES) (from env HAECHI_SESSION_ABSOLUTE_HOURS)"
        );
        let s = load_with(None, &[("HAECHI_SESSION_IDLE_MINUTES", "119"), ("HAECHI_SESSION_ABSOLUTE_HOURS", "2")]);
        assert_eq!(s.unwrap().session_absolute_hours, 2);
    }

    #[test]
    fn secrets_are_redacted_in_debug_display_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let url_file = write(dir.path(), "db", "mysql://root:hunter2-db-pass@db:3306/haechi\n", 0o600);
        let s = load_with(
            None,
            &[("HAECHI_SECRET_KEY", LONG_SECRET), ("HAECHI_DATABASE_URL_FILE", url_file.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.database_url, "mysql://root:hunter2-db-pass@db:3306/haechi");

        let debug = format!("{s:?}");
        let alternate = format!("{s:#?}");
        let rendered = s.render();
        let key = s.secret_key.as_ref().unwrap();
        for shown in [&debug, &alternate, &rendered, &format!("{key} {key:?}")] {
            assert!(!shown.contains(LONG_SECRET), "secret key leaked into\n{shown}");
            assert!(!shown.contains("hunter2"), "database password leaked into\n{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert!(debug.contains("mysql://root:[redacted]@db:3306/haechi"), "{debug}");
        assert!(
            rendered.contains(
                "database_url = \"mysql://root:[redacted]@db:3306/haechi\"  # file HAECHI_DATABASE_URL_FILE\n"
            )
        );
        assert!(rendered.contains("secret_key = \"[redacted]\"  # env HAECHI_SECRET_KEY\n"), "{rendered}");
    }

    #[test]
    fn render_shows_each_value_with_its_origin() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "haechi.toml", "\n\nlog_format = \"json\"\n", 0o600);
        let s = load_with(Some(&file), &[("HAECHI_COOKIE_SECURE", "true")]).unwrap();
        let expected = format!(
            "database_url = \"sqlite://./haechi-data/haechi.db\"  # default\n\
             addr = \"127.0.0.1:8080\"  # default\n\
             data_dir = \"./haechi-data\"  # default\n\
             # secret_key is not set  # default\n\
             cookie_secure = true  # env HAECHI_COOKIE_SECURE\n\
             session_idle_minutes = 30  # default\n\
             session_absolute_hours = 12  # default\n\
             body_limit_bytes = 1048576  # default\n\
             login_max_failures = 5  # default\n\
             login_lock_minutes = 15  # default\n\
             trusted_proxy = false  # default\n\
             log_format = \"json\"  # file {}:3\n\
             # redis_url is not set  # default\n\
             # object_store is not set  # default\n\
             # s3_endpoint is not set  # default\n\
             s3_region = \"us-east-1\"  # default\n\
             # s3_access_key is not set  # default\n\
             # s3_secret_key is not set  # default\n\
             s3_path_style = false  # default\n\
             s3_allow_http = false  # default\n\
             # workers is not set  # default\n\
             job_max_attempts = 3  # default\n\
             job_timeout_secs = 1800  # default\n\
             run_session_delay_us = 0  # default\n\
             queue_name = \"haechi\"  # default\n\
             job_orphan_secs = 30  # default\n",
            file.display()
        );
        assert_eq!(s.render(), expected);
    }

    #[test]
    fn queue_storage_and_worker_settings_are_validated_and_redacted() {
        let s = load_with(
            None,
            &[
                ("HAECHI_DATA_DIR", "/srv/haechi"),
                ("HAECHI_REDIS_URL", "redis://:hunter2@redis:6379/0"),
                ("HAECHI_OBJECT_STORE", "s3://reports/prod"),
                ("HAECHI_S3_SECRET_KEY", "s3-secret-value"),
                ("HAECHI_WORKERS", "4"),
            ],
        )
        .unwrap();
        assert_eq!(s.database_url, "sqlite:///srv/haechi/haechi.db", "the data folder holds the embedded database");
        assert_eq!((s.workers, s.serve_workers()), (Some(4), 4));
        assert_eq!(s.object_store_url(), "s3://reports/prod");
        let shown = format!("{}{s:?}", s.render());
        assert!(!shown.contains("hunter2") && !shown.contains("s3-secret-value"), "{shown}");
        assert!(shown.contains("redis_url = \"redis://:[redacted]@redis:6379/0\""), "{shown}");

        let d = load_with(None, &[("HAECHI_REDIS_URL", "redis://r:6379/")]).unwrap();
        assert_eq!(d.serve_workers(), 0, "with Redis, separate worker processes do the work");
        assert_eq!(Settings::default().serve_workers(), 2);
        assert_eq!(Settings::default().object_store_url(), "./haechi-data/objects");

        let errors = errors_of(load_with(
            None,
            &[
                ("HAECHI_REDIS_URL", "http://x"),
                ("HAECHI_WORKERS", "65"),
                ("HAECHI_JOB_MAX_ATTEMPTS", "0"),
                ("HAECHI_JOB_ORPHAN_SECS", "1"),
                ("HAECHI_QUEUE_NAME", "no spaces"),
                ("HAECHI_S3_PATH_STYLE", "maybe"),
            ],
        ));
        assert_eq!(
            keys_of(&errors),
            vec!["redis_url", "s3_path_style", "workers", "job_max_attempts", "job_orphan_secs", "queue_name"]
        );
    }

    #[test]
    fn secret_file_open_to_group_or_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644, 0o610] {
            let path = write(dir.path(), &format!("key-{mode:o}"), LONG_SECRET, mode);
            let errors = errors_of(load_with(None, &[("HAECHI_SECRET_KEY_FILE", path.to_str().unwrap())]));
            assert_eq!(keys_of(&errors), ["secret_key"]);
            assert!(matches!(&errors[0].problem, Problem::InsecureMode { mode: m, .. } if *m == mode));
            let shown = errors[0].to_string();
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            assert!(shown.contains(&format!("mode {mode:04o}")), "{shown}");
            assert!(shown.contains("HAECHI_SECRET_KEY_FILE"), "{shown}");
        }
        for mode in [0o600, 0o400] {
            let path = write(dir.path(), &format!("ok-{mode:o}"), LONG_SECRET, mode);
            let s = load_with(None, &[("HAECHI_SECRET_KEY_FILE", path.to_str().unwrap())]).unwrap();
            assert_eq!(s.secret_key.unwrap().expose(), LONG_SECRET);
        }
    }

    #[test]
    fn insecure_database_url_file_is_refused_not_skipped_for_the_plain_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "db", "mysql://root:pw@db/haechi", 0o644);
        let errors = errors_of(load_with(
            None,
            &[("HAECHI_DATABASE_URL", "sqlite://fallback.db"), ("HAECHI_DATABASE_URL_FILE", path.to_str().unwrap())],
        ));
        assert_eq!(keys_of(&errors), ["database_url"]);
        assert!(matches!(errors[0].problem, Problem::InsecureMode { mode: 0o644, .. }));
    }

    #[test]
    fn missing_secret_file_is_reported_with_its_path() {
        let errors = errors_of(load_with(None, &[("HAECHI_SECRET_KEY_FILE", "/nonexistent/haechi-key")]));
        assert_eq!(keys_of(&errors), ["secret_key"]);
        assert!(errors[0].to_string().starts_with("secret_key: cannot read /nonexistent/haechi-key: "));
    }

    #[test]
    fn secret_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        for (contents, expected) in [
            (format!("{LONG_SECRET}\r\n"), LONG_SECRET.to_owned()),
            (format!("{LONG_SECRET}\n\n"), format!("{LONG_SECRET}\n")),
            (format!(" {LONG_SECRET} "), format!(" {LONG_SECRET} ")),
        ] {
            let path = write(dir.path(), "key", &contents, 0o600);
            let s = load_with(None, &[("HAECHI_SECRET_KEY_FILE", path.to_str().unwrap())]).unwrap();
            assert_eq!(s.secret_key.unwrap().expose(), expected);
        }
    }

    #[test]
    fn mariadb_scheme_is_normalised_to_mysql() {
        for (given, expected) in [
            ("mariadb://haechi@db:3306/haechi", "mysql://haechi@db:3306/haechi"),
            ("MariaDB://db/haechi", "mysql://db/haechi"),
            ("mysql://db/haechi", "mysql://db/haechi"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            let s = load_with(None, &[("HAECHI_DATABASE_URL", given)]).unwrap();
            assert_eq!(s.database_url, expected);
        }
    }

    #[test]
    fn unknown_database_scheme_is_rejected_not_guessed() {
        for (url, problem) in [
            ("postgres://u:secretpw@db/haechi", "scheme \"postgres\" is not supported"),
            ("db.internal:3306/haechi", "does not start with a supported scheme"),
            ("root:secretpw@db/haechi", "does not start with a supported scheme"),
            ("haechi.db", "does not start with a supported scheme"),
        ] {
            let errors = errors_of(load_with(None, &[("HAECHI_DATABASE_URL", url)]));
            assert_eq!(keys_of(&errors), ["database_url"]);
            let shown = errors[0].to_string();
            assert!(shown.contains(problem), "{shown}");
            assert!(!shown.contains("secretpw"), "{shown}");
        }
    }

    #[test]
    fn unknown_toml_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "haechi.toml", "addr = \"127.0.0.1:1\"\n[server]\nport = 1\n", 0o600);
        let errors = errors_of(load_with(Some(&file), &[]));
        assert_eq!(keys_of(&errors), ["server"]);
        assert!(matches!(errors[0].problem, Problem::UnknownKey { suggestion: None }));
        assert_eq!(errors[0].origin, Origin::File { path: file, line: Some(2) });
    }

    #[test]
    fn toml_syntax_errors_name_the_line_but_not_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "haechi.toml", "addr = \"127.0.0.1:1\"\nsecret_key = \"topsecret-value\n", 0o600);
        let errors = errors_of(load_with(Some(&file), &[]));
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|e| e.key.is_none() && matches!(e.problem, Problem::Syntax { .. })));
        assert_eq!(errors[0].origin, Origin::File { path: file, line: Some(2) });
        assert!(!ConfigErrors(errors).to_string().contains("topsecret"));
    }

    #[test]
    fn wrong_type_for_a_secret_does_not_echo_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "haechi.toml", "secret_key = 987654321\n", 0o600);
        let shown = ConfigErrors(errors_of(load_with(Some(&file), &[]))).to_string();
        assert!(shown.starts_with("secret_key: expected a string, found an integer"), "{shown}");
        assert!(!shown.contains("987654321"), "{shown}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let errors = errors_of(load_with(Some(Path::new("/nonexistent/haechi.toml")), &[]));
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0].problem, Problem::Unreadable { .. }));
        assert!(errors[0].to_string().starts_with("cannot read /nonexistent/haechi.toml: "), "{}", errors[0]);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let s = load_with(None, &[("HAECHI_ADDR", ""), ("HAECHI_SECRET_KEY_FILE", ""), ("HAECHI_COOKIE_SECURE", "")])
            .unwrap();
        assert_eq!(s.addr, DEFAULT_ADDR);
        assert!(s.secret_key.is_none());
        assert_eq!(s.origin(key::ADDR), &Origin::Default);
    }

    #[test]
    fn env_booleans_and_integers_are_parsed_from_text() {
        let s = load_with(
            None,
            &[
                ("HAECHI_TRUSTED_PROXY", "Yes"),
                ("HAECHI_COOKIE_SECURE", "1"),
                ("HAECHI_BODY_LIMIT_BYTES", " 65536 "),
                ("HAECHI_LOG_FORMAT", "JSON"),
            ],
        )
        .unwrap();
        assert!(s.trusted_proxy && s.cookie_secure);
        assert_eq!(s.body_limit_bytes, 65536);
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn huge_toml_integers_are_out_of_range_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "haechi.toml", "body_limit_bytes = 9223372036854775807\n", 0o600);
        let errors = errors_of(load_with(Some(&file), &[]));
        assert!(matches!(errors[0].problem, Problem::OutOfRange { value: 9_223_372_036_854_775_807, .. }));
    }

    #[test]
    fn url_redaction_hides_only_the_password() {
        for (url, expected) in [
            ("mysql://root:pw@host/db", "mysql://root:[redacted]@host/db"),
            ("mysql://root@host/db", "mysql://root@host/db"),
            ("mysql://host:3306/db?ssl-mode=required", "mysql://host:3306/db?ssl-mode=required"),
            ("mysql://root:p/w@d@host/db", "mysql://root:[redacted]@host/db"),
            ("sqlite://./haechi-data/haechi.db", "sqlite://./haechi-data/haechi.db"),
        ] {
            assert_eq!(redact_url(url), expected);
        }
    }
}
