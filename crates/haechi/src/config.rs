//! Boot-time configuration: every setting `haechi` reads, where each may come from, and the checks
//! that must pass before anything starts listening.
//!
//! Sources, from lowest to highest precedence:
//!
//! 1. built-in defaults, chosen so `haechi demo` runs with no configuration at all;
//! 2. a TOML file: top-level keys (`addr = …`) and sections (`[kis]` with `app_key = …`);
//! 3. `HAECHI_<KEY>` environment variables, the key's TOML path in capitals with `.` as `_`
//!    (`HAECHI_SESSION_IDLE_MINUTES`, `HAECHI_KIS_APP_KEY`);
//! 4. `HAECHI_<KEY>_FILE` for the secret keys (`secret_key`, `kis.app_secret`, and URLs that may
//!    carry a password): the path of a file holding the value, as Docker and Kubernetes secrets
//!    are mounted. The file must be `0600` or stricter.
//!
//! Each key is declared once, in [`KEYS`]: its name, default, parser (which validates), whether it
//! is secret, how it shows and a one-line description. The loader, [`Settings::render`], `Debug`
//! and the table in `docs/configuration.md` are all derived from that list. A new section (`llm`,
//! `news`, …) is a typed struct, a field of [`Settings`] holding it, and its declarations.
//!
//! Loading has two phases, as in ripgrep's low/high args: raw values are gathered with their
//! [`Origin`], then each is parsed into its typed field. Validation never stops at the first
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
//!
//! [kis]
//! env = "real"
//! daily_at = "16:45"   # app_key and app_secret from HAECHI_KIS_APP_KEY_FILE / HAECHI_KIS_APP_SECRET_FILE
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

use chrono::NaiveTime;
use haechi_kis::{Account, Credentials, KisConfig, KisEnv};
use toml::de::{DeTable, DeValue};

const ENV_PREFIX: &str = "HAECHI_";
const SECRET_FILE_SUFFIX: &str = "_FILE";
const REDACTED: &str = "[redacted]";
/// Enough for any key or URL; small enough that a `_FILE` pointed at `/dev/zero` or a log fails fast.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;
/// 256 bits: the key signs sessions and CSRF tokens, so anything shorter is guessable offline.
const MIN_SECRET_KEY_BYTES: usize = 32;
const SUPPORTED_SCHEMES: &str = "sqlite:, mysql: or mariadb:";
/// KIS answers at most 20 requests per second per app key; anything far above is a typo.
const MAX_KIS_RATE_PER_SEC: f64 = 1000.0;

const DEFAULT_DATABASE_URL: &str = "sqlite://./haechi-data/haechi.db";
const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_DATA_DIR: &str = "./haechi-data";

/// One setting, declared once. Everything else about a key (its environment variable, where it
/// shows in `render`, `Debug` and the docs table, whether `_FILE` is allowed) is derived from this.
struct Key<T> {
    /// The TOML path: `addr` at the top level, `kis.app_key` for `app_key` in `[kis]`.
    name: &'static str,
    /// One line for the docs table; the why of a default goes here too.
    about: &'static str,
    /// Never shown (`show` must redact it), and may also come from `HAECHI_<KEY>_FILE`.
    secret: bool,
    default: fn() -> T,
    /// Parses and validates a raw value.
    parse: fn(RawValue) -> Result<T, Problem>,
    /// The value as TOML, secrets redacted; `None` for an unset optional value.
    show: fn(&T) -> Option<String>,
    /// The field of [`Settings`] holding the value.
    get: fn(&Settings) -> &T,
    get_mut: fn(&mut Settings) -> &mut T,
}

impl<T> Key<T> {
    fn default(&self) -> T {
        (self.default)()
    }
}

/// Lets `origin` and tests name a key by its declaration.
impl<T> AsRef<str> for Key<T> {
    fn as_ref(&self) -> &str {
        self.name
    }
}

/// A [`Key`] of any value type, so that all of them fit in [`KEYS`].
trait AnyKey: Sync {
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    fn secret(&self) -> bool;
    /// Parses `raw` into the key's field of `settings`.
    fn apply(&self, raw: RawValue, settings: &mut Settings) -> Result<(), Problem>;
    fn show(&self, settings: &Settings) -> Option<String>;
    fn show_default(&self) -> Option<String>;
}

impl<T> AnyKey for Key<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
    fn secret(&self) -> bool {
        self.secret
    }
    fn apply(&self, raw: RawValue, settings: &mut Settings) -> Result<(), Problem> {
        *(self.get_mut)(settings) = (self.parse)(raw)?;
        Ok(())
    }
    fn show(&self, settings: &Settings) -> Option<String> {
        (self.show)((self.get)(settings))
    }
    fn show_default(&self) -> Option<String> {
        (self.show)(&self.default())
    }
}

/// Every key, in the order of `render` and the docs table; a section's keys stay together.
const KEYS: &[&dyn AnyKey] = &[
    &key::DATABASE_URL,
    &key::ADDR,
    &key::DATA_DIR,
    &key::SECRET_KEY,
    &key::COOKIE_SECURE,
    &key::SESSION_IDLE_MINUTES,
    &key::SESSION_ABSOLUTE_HOURS,
    &key::BODY_LIMIT_BYTES,
    &key::LOGIN_MAX_FAILURES,
    &key::LOGIN_LOCK_MINUTES,
    &key::REGISTRATIONS_PER_HOUR,
    &key::MAX_ACTIVE_RUNS,
    &key::MAX_SCENARIOS,
    &key::MAX_STORED_MIB,
    &key::TRUSTED_PROXY,
    &key::METRICS_TOKEN,
    &key::LOG_FORMAT,
    &key::REDIS_URL,
    &key::OBJECT_STORE,
    &key::S3_ENDPOINT,
    &key::S3_REGION,
    &key::S3_ACCESS_KEY,
    &key::S3_SECRET_KEY,
    &key::S3_PATH_STYLE,
    &key::S3_ALLOW_HTTP,
    &key::WORKERS,
    &key::JOB_MAX_ATTEMPTS,
    &key::JOB_TIMEOUT_SECS,
    &key::RUN_SESSION_DELAY_US,
    &key::PAPER_REPLAY_SECS,
    &key::QUEUE_NAME,
    &key::JOB_ORPHAN_SECS,
    &kis::APP_KEY,
    &kis::APP_SECRET,
    &kis::FEED_KEYS,
    &kis::ENV,
    &kis::ACCOUNT,
    &kis::BASE_URL,
    &kis::WS_URL,
    &kis::RATE_PER_SEC,
    &kis::ALLOW_REAL_ORDERS,
    &kis::MAX_ORDER_VALUE,
    &kis::DAILY_AT,
];

/// The top-level keys.
mod key {
    use super::*;

    pub(super) const DATABASE_URL: Key<String> = Key {
        name: "database_url",
        about: "Database, picked by scheme: `sqlite:` or `mysql:` (`mariadb:` is accepted as `mysql:`); unset: `haechi.db` in `data_dir`.",
        // It may carry a password.
        secret: true,
        default: || DEFAULT_DATABASE_URL.to_owned(),
        parse: |raw| database_url(text(raw)?),
        show: |v| Some(quoted(&redact_url(v))),
        get: |s| &s.database_url,
        get_mut: |s| &mut s.database_url,
    };
    pub(super) const ADDR: Key<SocketAddr> = Key {
        name: "addr",
        about: "Address the HTTP server binds; the default exposes nothing by accident.",
        secret: false,
        default: || DEFAULT_ADDR,
        parse: |raw| {
            let text = text(raw)?;
            text.trim().parse().map_err(|_| Problem::Unparsable {
                value: text,
                expected: "an IP address and port such as 127.0.0.1:8080",
            })
        },
        show: show_quoted,
        get: |s| &s.addr,
        get_mut: |s| &mut s.addr,
    };
    pub(super) const DATA_DIR: Key<PathBuf> = Key {
        name: "data_dir",
        about: "Folder for the SQLite database, the embedded queue, objects and generated secrets.",
        secret: false,
        default: || PathBuf::from(DEFAULT_DATA_DIR),
        parse: |raw| {
            let text = text(raw)?;
            if text.trim().is_empty() { Err(Problem::Empty) } else { Ok(PathBuf::from(text)) }
        },
        show: |v| Some(quoted(&v.to_string_lossy())),
        get: |s| &s.data_dir,
        get_mut: |s| &mut s.data_dir,
    };
    pub(super) const SECRET_KEY: Key<Option<Secret>> = Key {
        name: "secret_key",
        about: "Key for signing sessions and CSRF tokens, at least 32 bytes.",
        secret: true,
        default: || None,
        parse: |raw| {
            let text = text(raw)?;
            if text.len() < MIN_SECRET_KEY_BYTES {
                return Err(Problem::TooShort { len: text.len(), min: MIN_SECRET_KEY_BYTES });
            }
            Ok(Some(Secret(text)))
        },
        show: show_redacted,
        get: |s| &s.secret_key,
        get_mut: |s| &mut s.secret_key,
    };
    pub(super) const COOKIE_SECURE: Key<bool> = Key {
        name: "cookie_secure",
        about: "Mark cookies `Secure`: turn on whenever users reach the server over HTTPS (off because the default address is plain-HTTP loopback).",
        secret: false,
        default: || false,
        parse: boolean,
        show: show_plain,
        get: |s| &s.cookie_secure,
        get_mut: |s| &mut s.cookie_secure,
    };
    pub(super) const SESSION_IDLE_MINUTES: Key<u32> = Key {
        name: "session_idle_minutes",
        about: "Minutes of inactivity that end a session, 5..=1440.",
        secret: false,
        default: || 30,
        parse: |raw| integer(raw, 5..=1440),
        show: show_plain,
        get: |s| &s.session_idle_minutes,
        get_mut: |s| &mut s.session_idle_minutes,
    };
    pub(super) const SESSION_ABSOLUTE_HOURS: Key<u32> = Key {
        name: "session_absolute_hours",
        about: "Hours after sign-in that end a session regardless of activity, 1..=720, and longer than `session_idle_minutes`.",
        secret: false,
        default: || 12,
        parse: |raw| integer(raw, 1..=720),
        show: show_plain,
        get: |s| &s.session_absolute_hours,
        get_mut: |s| &mut s.session_absolute_hours,
    };
    pub(super) const BODY_LIMIT_BYTES: Key<usize> = Key {
        name: "body_limit_bytes",
        about: "Largest request body accepted, 1 KiB..=64 MiB.",
        secret: false,
        default: || 1024 * 1024,
        parse: |raw| integer(raw, 1024..=64 * 1024 * 1024),
        show: show_plain,
        get: |s| &s.body_limit_bytes,
        get_mut: |s| &mut s.body_limit_bytes,
    };
    pub(super) const LOGIN_MAX_FAILURES: Key<u32> = Key {
        name: "login_max_failures",
        about: "Failed sign-ins in a row before the account is locked for a while, 1..=100.",
        secret: false,
        default: || 5,
        parse: |raw| integer(raw, 1..=100),
        show: show_plain,
        get: |s| &s.login_max_failures,
        get_mut: |s| &mut s.login_max_failures,
    };
    pub(super) const REGISTRATIONS_PER_HOUR: Key<u32> = Key {
        name: "registrations_per_hour",
        about: "Accounts one client address may register in an hour, 1..=10000 (a school behind one address needs more than one).",
        secret: false,
        default: || 30,
        parse: |raw| integer(raw, 1..=10_000),
        show: show_plain,
        get: |s| &s.registrations_per_hour,
        get_mut: |s| &mut s.registrations_per_hour,
    };
    pub(super) const MAX_ACTIVE_RUNS: Key<u32> = Key {
        name: "max_active_runs",
        about: "Runs one user may have queued or running at once, 1..=1000; more answer 429 (bounds what one user piles onto the queue; users share the workers fairly either way).",
        secret: false,
        default: || 4,
        parse: |raw| integer(raw, 1..=1000),
        show: show_plain,
        get: |s| &s.max_active_runs,
        get_mut: |s| &mut s.max_active_runs,
    };
    pub(super) const MAX_SCENARIOS: Key<u32> = Key {
        name: "max_scenarios",
        about: "Live scenarios one user may own, 1..=100000; more answer 429.",
        secret: false,
        default: || 500,
        parse: |raw| integer(raw, 1..=100_000),
        show: show_plain,
        get: |s| &s.max_scenarios,
        get_mut: |s| &mut s.max_scenarios,
    };
    pub(super) const MAX_STORED_MIB: Key<u32> = Key {
        name: "max_stored_mib",
        about: "MiB one user may keep stored (scenario versions, the bin included, and run reports), 1..=1000000; more answer 429 until finished runs or binned scenarios are deleted for good.",
        secret: false,
        default: || 256,
        parse: |raw| integer(raw, 1..=1_000_000),
        show: show_plain,
        get: |s| &s.max_stored_mib,
        get_mut: |s| &mut s.max_stored_mib,
    };
    pub(super) const LOGIN_LOCK_MINUTES: Key<u32> = Key {
        name: "login_lock_minutes",
        about: "Minutes a locked account stays locked, 1..=1440 (zero would turn the lockout off while looking configured).",
        secret: false,
        default: || 15,
        parse: |raw| integer(raw, 1..=1440),
        show: show_plain,
        get: |s| &s.login_lock_minutes,
        get_mut: |s| &mut s.login_lock_minutes,
    };
    pub(super) const TRUSTED_PROXY: Key<bool> = Key {
        name: "trusted_proxy",
        about: "Take the client IP from `X-Forwarded-For`'s last entry (the one your proxy adds); only safe behind exactly one proxy, as rate limits, lockouts and the security detectors are keyed on it.",
        secret: false,
        default: || false,
        parse: boolean,
        show: show_plain,
        get: |s| &s.trusted_proxy,
        get_mut: |s| &mut s.trusted_proxy,
    };
    pub(super) const LOG_FORMAT: Key<LogFormat> = Key {
        name: "log_format",
        about: "Log lines as `text` for a terminal or `json` for a log shipper.",
        secret: false,
        default: LogFormat::default,
        parse: |raw| {
            let text = text(raw)?;
            match text.trim().to_ascii_lowercase().as_str() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(Problem::Unparsable { value: text, expected: "\"text\" or \"json\"" }),
            }
        },
        show: |v| Some(quoted(v.as_str())),
        get: |s| &s.log_format,
        get_mut: |s| &mut s.log_format,
    };
    pub(super) const REDIS_URL: Key<Option<Secret>> = Key {
        name: "redis_url",
        about: "Redis for the job queue (`redis://…`); unset: the embedded SQLite queue in `data_dir`, for processes on this machine only.",
        secret: true,
        default: || None,
        parse: |raw| {
            let t = text(raw)?;
            if t.starts_with("redis://") || t.starts_with("rediss://") {
                Ok(Some(Secret(t)))
            } else {
                Err(Problem::Unparsable { value: redact_url(&t), expected: "a redis:// or rediss:// URL" })
            }
        },
        show: |v| v.as_ref().map(|u| quoted(&redact_url(u.expose()))),
        get: |s| &s.redis_url,
        get_mut: |s| &mut s.redis_url,
    };
    pub(super) const OBJECT_STORE: Key<Option<String>> = Key {
        name: "object_store",
        about: "Reports and raw data: a folder (`file:///srv/haechi` or a path) or `s3://bucket[/prefix]`; unset: `data_dir/objects`.",
        secret: false,
        default: || None,
        parse: nonempty,
        show: show_opt_text,
        get: |s| &s.object_store,
        get_mut: |s| &mut s.object_store,
    };
    pub(super) const S3_ENDPOINT: Key<Option<String>> = Key {
        name: "s3_endpoint",
        about: "S3-compatible endpoint (MinIO: `http://minio:9000`); unset: AWS.",
        secret: false,
        default: || None,
        parse: nonempty,
        show: show_opt_text,
        get: |s| &s.s3_endpoint,
        get_mut: |s| &mut s.s3_endpoint,
    };
    pub(super) const S3_REGION: Key<String> = Key {
        name: "s3_region",
        about: "S3 region.",
        secret: false,
        default: || "us-east-1".to_owned(),
        parse: |raw| nonempty(raw).map(Option::unwrap_or_default),
        show: |v| Some(quoted(v)),
        get: |s| &s.s3_region,
        get_mut: |s| &mut s.s3_region,
    };
    pub(super) const S3_ACCESS_KEY: Key<Option<Secret>> = Key {
        name: "s3_access_key",
        about: "S3 access key id; unset: the usual AWS credential chain.",
        secret: true,
        default: || None,
        parse: |raw| Ok(Some(Secret(text(raw)?))),
        show: show_redacted,
        get: |s| &s.s3_access_key,
        get_mut: |s| &mut s.s3_access_key,
    };
    pub(super) const METRICS_TOKEN: Key<Option<Secret>> = Key {
        name: "metrics_token",
        about: "Bearer token Prometheus sends to read `/metrics`; unset: `/metrics` answers 404 on the public address.",
        secret: true,
        default: || None,
        parse: |raw| {
            let text = text(raw)?;
            if text.len() < 16 {
                return Err(Problem::TooShort { len: text.len(), min: 16 });
            }
            Ok(Some(Secret(text)))
        },
        show: show_redacted,
        get: |s| &s.metrics_token,
        get_mut: |s| &mut s.metrics_token,
    };
    pub(super) const S3_SECRET_KEY: Key<Option<Secret>> = Key {
        name: "s3_secret_key",
        about: "S3 secret access key.",
        secret: true,
        default: || None,
        parse: |raw| Ok(Some(Secret(text(raw)?))),
        show: show_redacted,
        get: |s| &s.s3_secret_key,
        get_mut: |s| &mut s.s3_secret_key,
    };
    pub(super) const S3_PATH_STYLE: Key<bool> = Key {
        name: "s3_path_style",
        about: "Path-style bucket addressing, which MinIO needs (AWS uses virtual-hosted).",
        secret: false,
        default: || false,
        parse: boolean,
        show: show_plain,
        get: |s| &s.s3_path_style,
        get_mut: |s| &mut s.s3_path_style,
    };
    pub(super) const S3_ALLOW_HTTP: Key<bool> = Key {
        name: "s3_allow_http",
        about: "Allow a plain-HTTP S3 endpoint.",
        secret: false,
        default: || false,
        parse: boolean,
        show: show_plain,
        get: |s| &s.s3_allow_http,
        get_mut: |s| &mut s.s3_allow_http,
    };
    pub(super) const WORKERS: Key<Option<u32>> = Key {
        name: "workers",
        about: "Runs `serve` and `demo` execute in-process, 0..=64; unset: 2 with the embedded queue, 0 with Redis (`haechi worker` processes do the work).",
        secret: false,
        default: || None,
        parse: |raw| integer(raw, 0..=64).map(Some),
        show: |v| v.map(|w| w.to_string()),
        get: |s| &s.workers,
        get_mut: |s| &mut s.workers,
    };
    pub(super) const JOB_MAX_ATTEMPTS: Key<u32> = Key {
        name: "job_max_attempts",
        about: "Attempts per job before a run is marked failed, 1..=20.",
        secret: false,
        default: || 3,
        parse: |raw| integer(raw, 1..=20),
        show: show_plain,
        get: |s| &s.job_max_attempts,
        get_mut: |s| &mut s.job_max_attempts,
    };
    pub(super) const JOB_TIMEOUT_SECS: Key<u32> = Key {
        name: "job_timeout_secs",
        about: "Longest a run attempt may take, 1..=86400 seconds.",
        secret: false,
        default: || 1800,
        parse: |raw| integer(raw, 1..=86_400),
        show: show_plain,
        get: |s| &s.job_timeout_secs,
        get_mut: |s| &mut s.job_timeout_secs,
    };
    pub(super) const RUN_SESSION_DELAY_US: Key<u32> = Key {
        name: "run_session_delay_us",
        about: "Artificial delay per simulated session in microseconds, 0..=100000, for demos and tests that watch progress.",
        secret: false,
        default: || 0,
        parse: |raw| integer(raw, 0..=100_000),
        show: show_plain,
        get: |s| &s.run_session_delay_us,
        get_mut: |s| &mut s.run_session_delay_us,
    };
    pub(super) const PAPER_REPLAY_SECS: Key<u32> = Key {
        name: "paper_replay_secs",
        about: "Paper trading without KIS: replay one session of the loaded daily data every this many seconds (up to 86400; the demo uses 600), in `serve` (or `haechi market`). 0: off.",
        secret: false,
        default: || 0,
        parse: |raw| integer(raw, 0..=86_400),
        show: show_plain,
        get: |s| &s.paper_replay_secs,
        get_mut: |s| &mut s.paper_replay_secs,
    };
    pub(super) const QUEUE_NAME: Key<String> = Key {
        name: "queue_name",
        about: "Namespace of the Redis queue, so several installations can share one Redis.",
        secret: false,
        default: || "haechi".to_owned(),
        parse: |raw| {
            let t = text(raw)?;
            if !t.is_empty()
                && t.len() <= 64
                && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                Ok(t)
            } else {
                Err(Problem::Unparsable { value: t, expected: "1 to 64 letters, digits, '-', '_' or '.'" })
            }
        },
        show: |v| Some(quoted(v)),
        get: |s| &s.queue_name,
        get_mut: |s| &mut s.queue_name,
    };
    pub(super) const JOB_ORPHAN_SECS: Key<u32> = Key {
        name: "job_orphan_secs",
        about: "Seconds without a heartbeat after which a worker counts as dead and its runs go to another, 2..=3600.",
        secret: false,
        default: || 30,
        parse: |raw| integer(raw, 2..=3600),
        show: show_plain,
        get: |s| &s.job_orphan_secs,
        get_mut: |s| &mut s.job_orphan_secs,
    };
}

/// The `[kis]` section: Korea Investment & Securities Open API.
mod kis {
    use super::*;

    pub(super) const APP_KEY: Key<Option<Secret>> = Key {
        name: "kis.app_key",
        about: "KIS app key; unset turns KIS collection off. `config check` shows only its fingerprint.",
        secret: true,
        default: || None,
        parse: trimmed_secret,
        show: show_redacted,
        get: |s| &s.kis.app_key,
        get_mut: |s| &mut s.kis.app_key,
    };
    pub(super) const APP_SECRET: Key<Option<Secret>> = Key {
        name: "kis.app_secret",
        about: "KIS app secret, required with `kis.app_key`; whitespace copied with it is trimmed.",
        secret: true,
        default: || None,
        parse: trimmed_secret,
        show: show_redacted,
        get: |s| &s.kis.app_secret,
        get_mut: |s| &mut s.kis.app_secret,
    };
    pub(super) const FEED_KEYS: Key<Option<Secret>> = Key {
        name: "kis.feed_keys",
        about: "More app keys for the `H0STCNT0` trade feed of `haechi market`, `KEY:SECRET` pairs separated by commas: KIS allows 41 registrations per app key, so each pair adds 41 names the matcher can watch.",
        secret: true,
        default: || None,
        // The value is not echoed in the message: it is secret.
        parse: |raw| {
            let s = trimmed_secret(raw)?;
            let pairs = s.as_ref().map_or("", |s| s.expose());
            if pairs
                .split(',')
                .all(|p| p.split_once(':').is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty()))
            {
                Ok(s)
            } else {
                Err(Problem::Malformed { expected: "KEY:SECRET pairs separated by commas" })
            }
        },
        show: show_redacted,
        get: |s| &s.kis.feed_keys,
        get_mut: |s| &mut s.kis.feed_keys,
    };
    pub(super) const ENV: Key<KisEnv> = Key {
        name: "kis.env",
        about: "`mock` (모의투자) or `real` (실전); keys only work on their own environment, stock info and financials are real-only.",
        secret: false,
        default: || KisEnv::Mock,
        parse: |raw| {
            let t = text(raw)?;
            t.parse().map_err(|_| Problem::Unparsable { value: t, expected: "\"mock\" or \"real\"" })
        },
        show: show_quoted,
        get: |s| &s.kis.env,
        get_mut: |s| &mut s.kis.env,
    };
    pub(super) const ACCOUNT: Key<Option<Account>> = Key {
        name: "kis.account",
        about: "Account for orders and balances, 8 + 2 digits such as `50012345-01`.",
        secret: true,
        default: || None,
        // The value is not echoed in the message: it is secret.
        parse: |raw| {
            text(raw)?
                .parse()
                .map(Some)
                .map_err(|_| Problem::Malformed { expected: "8 + 2 digits such as 50012345-01" })
        },
        show: show_redacted,
        get: |s| &s.kis.account,
        get_mut: |s| &mut s.kis.account,
    };
    pub(super) const BASE_URL: Key<Option<String>> = Key {
        name: "kis.base_url",
        about: "REST base URL of another host, such as `haechi kis-fake`; unset: KIS's host for `kis.env`.",
        secret: false,
        default: || None,
        parse: |raw| url(raw, &["http", "https"], "an http:// or https:// URL").map(Some),
        show: show_opt_text,
        get: |s| &s.kis.base_url,
        get_mut: |s| &mut s.kis.base_url,
    };
    pub(super) const WS_URL: Key<Option<String>> = Key {
        name: "kis.ws_url",
        about: "WebSocket URL of another host; unset: KIS's for `kis.env`.",
        secret: false,
        default: || None,
        parse: |raw| url(raw, &["ws", "wss"], "a ws:// or wss:// URL").map(Some),
        show: show_opt_text,
        get: |s| &s.kis.ws_url,
        get_mut: |s| &mut s.kis.ws_url,
    };
    pub(super) const RATE_PER_SEC: Key<Option<f64>> = Key {
        name: "kis.rate_per_sec",
        about: "Requests per second for this app key, shared by every process; unset: 19 real, 2 mock (one under KIS's 20/s).",
        secret: false,
        default: || None,
        parse: |raw| rate(raw).map(Some),
        show: |v| v.map(|r| toml::Value::Float(r).to_string()),
        get: |s| &s.kis.rate_per_sec,
        get_mut: |s| &mut s.kis.rate_per_sec,
    };
    pub(super) const ALLOW_REAL_ORDERS: Key<bool> = Key {
        name: "kis.allow_real_orders",
        about: "Allow real-money orders; they are still refused without `kis.max_order_value`.",
        secret: false,
        default: || false,
        parse: boolean,
        show: show_plain,
        get: |s| &s.kis.allow_real_orders,
        get_mut: |s| &mut s.kis.allow_real_orders,
    };
    pub(super) const MAX_ORDER_VALUE: Key<Option<i64>> = Key {
        name: "kis.max_order_value",
        about: "Largest real-money order in won (quantity × price); `_` separators allowed.",
        secret: false,
        default: || None,
        parse: |raw| {
            let raw = match raw {
                RawValue::Text(t) => RawValue::Text(t.replace('_', "")),
                other => other,
            };
            integer(raw, 1..=i128::from(i64::MAX)).map(Some)
        },
        show: |v| v.map(|w| w.to_string()),
        get: |s| &s.kis.max_order_value,
        get_mut: |s| &mut s.kis.max_order_value,
    };
    pub(super) const DAILY_AT: Key<NaiveTime> = Key {
        name: "kis.daily_at",
        about: "Time of day (KST, HH:MM) after which each trading day's bars are collected; KRX closes at 15:30.",
        secret: false,
        default: || NaiveTime::from_hms_opt(16, 30, 0).unwrap_or_default(),
        parse: |raw| {
            let t = text(raw)?;
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| Problem::Unparsable { value: t, expected: "a time of day as HH:MM" })
        },
        show: |v| Some(quoted(&v.format("%H:%M").to_string())),
        get: |s| &s.kis.daily_at,
        get_mut: |s| &mut s.kis.daily_at,
    };
}

fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

fn file_var(key: &str) -> String {
    format!("{}{SECRET_FILE_SUFFIX}", env_var(key))
}

/// The section a key belongs to (`kis` for `kis.app_key`), if any.
fn section_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(section, _)| section)
}

fn is_section(name: &str) -> bool {
    KEYS.iter().any(|k| section_of(k.name()) == Some(name))
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
/// Each field is described, defaulted and validated by its declaration in [`KEYS`] (the field
/// `kis.app_key` by the key `kis.app_key`); `Debug` shows what `render` shows, secrets redacted.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Unset: the caller generates one.
    pub secret_key: Option<Secret>,
    pub cookie_secure: bool,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    pub body_limit_bytes: usize,
    pub login_max_failures: u32,
    pub login_lock_minutes: u32,
    pub registrations_per_hour: u32,
    pub max_active_runs: u32,
    pub max_scenarios: u32,
    pub max_stored_mib: u32,
    pub trusted_proxy: bool,
    /// Unset: `/metrics` is not served on the public address.
    pub metrics_token: Option<Secret>,
    pub log_format: LogFormat,
    pub redis_url: Option<Secret>,
    pub object_store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key: Option<Secret>,
    pub s3_secret_key: Option<Secret>,
    pub s3_path_style: bool,
    pub s3_allow_http: bool,
    pub workers: Option<u32>,
    pub job_max_attempts: u32,
    pub job_timeout_secs: u32,
    pub run_session_delay_us: u32,
    pub paper_replay_secs: u32,
    pub queue_name: String,
    pub job_orphan_secs: u32,
    pub kis: KisSettings,
    /// Where each value came from; absent keys kept their default.
    origins: BTreeMap<&'static str, Origin>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: key::DATABASE_URL.default(),
            addr: key::ADDR.default(),
            data_dir: key::DATA_DIR.default(),
            secret_key: key::SECRET_KEY.default(),
            cookie_secure: key::COOKIE_SECURE.default(),
            session_idle_minutes: key::SESSION_IDLE_MINUTES.default(),
            session_absolute_hours: key::SESSION_ABSOLUTE_HOURS.default(),
            body_limit_bytes: key::BODY_LIMIT_BYTES.default(),
            login_max_failures: key::LOGIN_MAX_FAILURES.default(),
            login_lock_minutes: key::LOGIN_LOCK_MINUTES.default(),
            registrations_per_hour: key::REGISTRATIONS_PER_HOUR.default(),
            max_active_runs: key::MAX_ACTIVE_RUNS.default(),
            max_scenarios: key::MAX_SCENARIOS.default(),
            max_stored_mib: key::MAX_STORED_MIB.default(),
            trusted_proxy: key::TRUSTED_PROXY.default(),
            metrics_token: key::METRICS_TOKEN.default(),
            log_format: key::LOG_FORMAT.default(),
            redis_url: key::REDIS_URL.default(),
            object_store: key::OBJECT_STORE.default(),
            s3_endpoint: key::S3_ENDPOINT.default(),
            s3_region: key::S3_REGION.default(),
            s3_access_key: key::S3_ACCESS_KEY.default(),
            s3_secret_key: key::S3_SECRET_KEY.default(),
            s3_path_style: key::S3_PATH_STYLE.default(),
            s3_allow_http: key::S3_ALLOW_HTTP.default(),
            workers: key::WORKERS.default(),
            job_max_attempts: key::JOB_MAX_ATTEMPTS.default(),
            job_timeout_secs: key::JOB_TIMEOUT_SECS.default(),
            run_session_delay_us: key::RUN_SESSION_DELAY_US.default(),
            paper_replay_secs: key::PAPER_REPLAY_SECS.default(),
            queue_name: key::QUEUE_NAME.default(),
            job_orphan_secs: key::JOB_ORPHAN_SECS.default(),
            kis: KisSettings::default(),
            origins: BTreeMap::new(),
        }
    }
}

/// The `[kis]` section; see the `kis.*` keys.
#[derive(Clone)]
pub struct KisSettings {
    pub app_key: Option<Secret>,
    pub app_secret: Option<Secret>,
    /// More app keys for the trade feed, `KEY:SECRET,KEY:SECRET`.
    pub feed_keys: Option<Secret>,
    pub env: KisEnv,
    pub account: Option<Account>,
    pub base_url: Option<String>,
    pub ws_url: Option<String>,
    pub rate_per_sec: Option<f64>,
    pub allow_real_orders: bool,
    pub max_order_value: Option<i64>,
    /// KST.
    pub daily_at: NaiveTime,
}

impl Default for KisSettings {
    fn default() -> Self {
        Self {
            app_key: kis::APP_KEY.default(),
            app_secret: kis::APP_SECRET.default(),
            feed_keys: kis::FEED_KEYS.default(),
            env: kis::ENV.default(),
            account: kis::ACCOUNT.default(),
            base_url: kis::BASE_URL.default(),
            ws_url: kis::WS_URL.default(),
            rate_per_sec: kis::RATE_PER_SEC.default(),
            allow_real_orders: kis::ALLOW_REAL_ORDERS.default(),
            max_order_value: kis::MAX_ORDER_VALUE.default(),
            daily_at: kis::DAILY_AT.default(),
        }
    }
}

impl KisSettings {
    /// The trade feed's clients' settings: the main app key's, then one per
    /// `kis.feed_keys` pair (each a WebSocket session of 41 registrations).
    pub fn feed_configs(&self) -> Vec<KisConfig> {
        let Some(main) = self.client_config() else { return Vec::new() };
        let extra = self.feed_keys.as_ref().map_or("", |s| s.expose());
        let more = extra.split(',').filter_map(|pair| {
            let (key, secret) = pair.split_once(':')?;
            let mut cfg = main.clone();
            cfg.credentials = Credentials::new(key.trim(), secret.trim()).ok()?;
            Some(cfg)
        });
        std::iter::once(main.clone()).chain(more).collect()
    }

    /// The KIS client's settings; `None` when no app key is configured, which turns KIS
    /// collection off. [`load`] has refused a key without its secret.
    pub fn client_config(&self) -> Option<KisConfig> {
        let credentials = Credentials::new(self.app_key.as_ref()?.expose(), self.app_secret.as_ref()?.expose()).ok()?;
        let mut cfg = KisConfig::new(self.env, credentials);
        cfg.account.clone_from(&self.account);
        cfg.allow_real_orders = self.allow_real_orders;
        cfg.max_order_value = self.max_order_value;
        if let Some(rate) = self.rate_per_sec {
            cfg.rate_per_sec = rate;
        }
        if let Some(url) = &self.base_url {
            cfg.base_url.clone_from(url);
        }
        if let Some(url) = &self.ws_url {
            cfg.ws_url.clone_from(url);
        }
        Some(cfg)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Settings");
        for k in KEYS {
            match k.show(self) {
                Some(shown) => d.field(k.name(), &format_args!("{shown}")),
                None => d.field(k.name(), &format_args!("None")),
            };
        }
        d.finish_non_exhaustive()
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
        if !self.origins.contains_key(key::DATABASE_URL.name) {
            self.database_url = embedded_database_url(&dir);
        }
        self.data_dir = dir;
    }

    /// In-process workers for `serve`: as configured, else 2 with the embedded queue and 0
    /// with Redis.
    pub fn serve_workers(&self) -> u32 {
        self.workers.unwrap_or(if self.redis_url.is_some() { 0 } else { 2 })
    }

    /// Where the value of `key` (a TOML path such as `kis.env`) came from.
    pub fn origin(&self, key: impl AsRef<str>) -> &Origin {
        self.origins.get(key.as_ref()).unwrap_or(&DEFAULT_ORIGIN)
    }

    /// The effective settings as `key = value  # origin` lines, secrets shown as `[redacted]`:
    /// what `haechi config check` prints. Unset keys are commented out and sections get their
    /// `[table]` header, so the output stays valid TOML that means the same thing.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut section = None;
        for k in KEYS {
            let name = k.name();
            if section_of(name) != section {
                section = section_of(name);
                if let Some(s) = section {
                    out.push_str(&format!("\n[{s}]\n"));
                }
            }
            let leaf = name.rsplit('.').next().unwrap_or(name);
            match k.show(self) {
                Some(value) => out.push_str(&format!("{leaf} = {value}  # {}\n", self.origin(name))),
                None => out.push_str(&format!("# {leaf} is not set  # {}\n", self.origin(name))),
            }
        }
        out
    }
}

/// The Markdown table of every key for `docs/configuration.md`.
pub(crate) fn docs_table() -> String {
    let mut out =
        String::from("| key | environment variable | default | secret | description |\n|---|---|---|---|---|\n");
    for k in KEYS {
        let name = k.name();
        let vars = if k.secret() {
            format!("`{}`, `{}`", env_var(name), file_var(name))
        } else {
            format!("`{}`", env_var(name))
        };
        let default = k.show_default().map_or_else(|| "not set".to_owned(), |v| format!("`{v}`"));
        let secret = if k.secret() { "yes" } else { "" };
        out.push_str(&format!("| `{name}` | {vars} | {default} | {secret} | {} |\n", k.about()));
    }
    out
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn show_plain<T: fmt::Display>(v: &T) -> Option<String> {
    Some(v.to_string())
}

fn show_quoted<T: fmt::Display>(v: &T) -> Option<String> {
    Some(quoted(&v.to_string()))
}

fn show_opt_text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(quoted)
}

fn show_redacted<T>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|_| quoted(REDACTED))
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
                        KEYS.iter().find(|k| env_var(k.name()) == name || (k.secret() && file_var(k.name()) == name));
                    if let Some(k) = read_by {
                        errors.push(ConfigError {
                            key: Some(k.name().to_owned()),
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
    /// For a secret, whose value a message must not repeat.
    #[error("is not {expected}")]
    Malformed { expected: &'static str },
    #[error("required when {other} is set")]
    RequiredWith { other: &'static str },
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
    let mut settings = Settings::default();
    for k in KEYS {
        let Some(Raw { value, origin }) = raw.remove(k.name()) else { continue };
        match k.apply(value, &mut settings) {
            Ok(()) => {
                settings.origins.insert(k.name(), origin);
            }
            Err(problem) => errors.push(ConfigError { key: Some(k.name().to_owned()), origin, problem }),
        }
    }
    check_together(&settings, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    // The embedded database lives in the data folder unless placed elsewhere explicitly.
    if !settings.origins.contains_key(key::DATABASE_URL.name) {
        settings.database_url = embedded_database_url(&settings.data_dir);
    }
    Ok(settings)
}

/// Rules that span keys, checked only between values that are valid on their own (an invalid
/// one already has its error, and its default standing in would only add a misleading one).
fn check_together(s: &Settings, errors: &mut Vec<ConfigError>) {
    let failed = |errors: &[ConfigError], name: &str| errors.iter().any(|e| e.key.as_deref() == Some(name));
    let (idle, hours) = (&key::SESSION_IDLE_MINUTES, &key::SESSION_ABSOLUTE_HOURS);
    if !failed(errors, idle.name)
        && !failed(errors, hours.name)
        && u64::from(s.session_absolute_hours) * 60 <= u64::from(s.session_idle_minutes)
    {
        let problem = Problem::AbsoluteNotAboveIdle {
            hours: s.session_absolute_hours,
            idle: s.session_idle_minutes,
            idle_origin: s.origin(idle).clone(),
        };
        errors.push(ConfigError { key: Some(hours.name.to_owned()), origin: s.origin(hours).clone(), problem });
    }
    let (app_key, app_secret) = (&kis::APP_KEY, &kis::APP_SECRET);
    if s.kis.app_key.is_some() && s.kis.app_secret.is_none() && !failed(errors, app_secret.name) {
        // Named where the key was set: that is where the secret belongs too.
        let problem = Problem::RequiredWith { other: app_key.name };
        errors.push(ConfigError { key: Some(app_secret.name.to_owned()), origin: s.origin(app_key).clone(), problem });
    }
}

/// A value as found, before validation.
#[derive(Debug)]
enum RawValue {
    String(String),
    Integer(i128),
    Float(f64),
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
            // The parser has checked the syntax; what is left is TOML's `_` and `inf`/`nan` spellings.
            DeValue::Float(f) => f.as_str().replace('_', "").parse().map_or(Self::Other("a float"), Self::Float),
            DeValue::Datetime(_) => Self::Other("a datetime"),
            DeValue::Array(_) => Self::Other("an array"),
            DeValue::Table(_) => Self::Other("a table"),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) | Self::Text(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Float(_) => "a float",
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
        let name = name.get_ref().as_ref();
        if !is_section(name) {
            take_toml(name, value.get_ref(), origin, raw, &mut unknown);
            continue;
        }
        let DeValue::Table(section) = value.get_ref() else {
            let problem =
                Problem::WrongType { expected: "a table", found: RawValue::from_toml(value.get_ref()).type_name() };
            unknown.push(ConfigError { key: Some(name.to_owned()), origin, problem });
            continue;
        };
        for (inner, value) in section {
            let origin = file_origin(Some(line_of(&text, inner.span().start)));
            take_toml(&format!("{name}.{}", inner.get_ref()), value.get_ref(), origin, raw, &mut unknown);
        }
    }
    // The table iterates in key order; file order reads better next to the file.
    unknown.sort_by_key(|e| match &e.origin {
        Origin::File { line, .. } => *line,
        _ => None,
    });
    errors.append(&mut unknown);
}

/// Keeps the value of a known key, or records an unknown one.
fn take_toml(
    name: &str,
    value: &DeValue<'_>,
    origin: Origin,
    raw: &mut BTreeMap<&'static str, Raw>,
    unknown: &mut Vec<ConfigError>,
) {
    match KEYS.iter().find(|k| k.name() == name) {
        Some(k) => {
            raw.insert(k.name(), Raw { value: RawValue::from_toml(value), origin });
        }
        None => {
            let problem = Problem::UnknownKey { suggestion: nearest_key(name) };
            unknown.push(ConfigError { key: Some(name.to_owned()), origin, problem });
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The known key a typo most likely meant, if any is close.
fn nearest_key(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(name, k.name()), k.name()))
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
    for k in KEYS {
        let var = env_var(k.name());
        if let Some(value) = lookup(&var) {
            raw.insert(k.name(), Raw { value: RawValue::Text(value.clone()), origin: Origin::Env { var } });
        }
        if !k.secret() {
            continue;
        }
        let var = file_var(k.name());
        if let Some(path) = lookup(&var) {
            let path = PathBuf::from(path);
            match read_secret_file(&path) {
                Ok(value) => {
                    raw.insert(k.name(), Raw { value: RawValue::Text(value), origin: Origin::EnvFile { var, path } });
                }
                Err(problem) => {
                    // The value this file was meant to override would only add unrelated errors.
                    raw.remove(k.name());
                    let origin = Origin::EnvFile { var, path };
                    errors.push(ConfigError { key: Some(k.name().to_owned()), origin, problem });
                }
            }
        }
    }
}

/// Reads a secret file, refusing one that other users could read or replace.
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

fn nonempty(raw: RawValue) -> Result<Option<String>, Problem> {
    let t = text(raw)?;
    if t.trim().is_empty() { Err(Problem::Empty) } else { Ok(Some(t.trim().to_owned())) }
}

/// A credential, less the whitespace a copy and paste brings along.
fn trimmed_secret(raw: RawValue) -> Result<Option<Secret>, Problem> {
    let t = text(raw)?;
    if t.trim().is_empty() { Err(Problem::Empty) } else { Ok(Some(Secret(t.trim().to_owned()))) }
}

/// An absolute URL with one of `schemes` and a host, without a trailing `/` (paths are appended).
fn url(raw: RawValue, schemes: &[&str], expected: &'static str) -> Result<String, Problem> {
    let t = text(raw)?;
    let trimmed = t.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(trimmed.to_owned()),
        _ => Err(Problem::Unparsable { value: redact_url(&t), expected }),
    }
}

fn rate(raw: RawValue) -> Result<f64, Problem> {
    const EXPECTED: &str = "a number of requests per second above 0 and at most 1000";
    let value = match raw {
        RawValue::Float(f) => f,
        // Exact for any rate that could pass the check below.
        #[allow(clippy::cast_precision_loss)]
        RawValue::Integer(i) => i as f64,
        RawValue::Text(t) => {
            t.trim().parse().map_err(|_| Problem::Unparsable { value: t.clone(), expected: EXPECTED })?
        }
        other => return Err(wrong_type("a number", &other)),
    };
    if value > 0.0 && value <= MAX_KIS_RATE_PER_SEC {
        Ok(value)
    } else {
        Err(Problem::Unparsable { value: value.to_string(), expected: EXPECTED })
    }
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
             registrations_per_hour = 30  # default\n\
             max_active_runs = 4  # default\n\
             max_scenarios = 500  # default\n\
             max_stored_mib = 256  # default\n\
             trusted_proxy = false  # default\n\
             # metrics_token is not set  # default\n\
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
             paper_replay_secs = 0  # default\n\
             queue_name = \"haechi\"  # default\n\
             job_orphan_secs = 30  # default\n\
             \n\
             [kis]\n\
             # app_key is not set  # default\n\
             # app_secret is not set  # default\n\
             # feed_keys is not set  # default\n\
             env = \"mock\"  # default\n\
             # account is not set  # default\n\
             # base_url is not set  # default\n\
             # ws_url is not set  # default\n\
             # rate_per_sec is not set  # default\n\
             allow_real_orders = false  # default\n\
             # max_order_value is not set  # default\n\
             daily_at = \"16:30\"  # default\n",
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
            vec!["redis_url", "s3_path_style", "workers", "job_max_attempts", "queue_name", "job_orphan_secs"]
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

    #[test]
    fn kis_section_comes_from_the_file_the_environment_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "haechi.toml",
            "addr = \"127.0.0.1:9000\"\n\
             [kis]\n\
             app_key = \" PSfromfile \"\n\
             env = \"real\"\n\
             daily_at = \"17:05\"\n\
             rate_per_sec = 5\n\
             max_order_value = 1_000_000\n",
            0o600,
        );
        let secret = write(dir.path(), "kis-secret", "s3cr3t-from-file\n", 0o600);
        let s = load_with(
            Some(&file),
            &[
                ("HAECHI_KIS_APP_SECRET", "from-env-loses"),
                ("HAECHI_KIS_APP_SECRET_FILE", secret.to_str().unwrap()),
                ("HAECHI_KIS_ACCOUNT", "50012345-01"),
                ("HAECHI_KIS_BASE_URL", "http://127.0.0.1:9443/"),
                ("HAECHI_KIS_ALLOW_REAL_ORDERS", "true"),
            ],
        )
        .unwrap();
        assert_eq!(s.kis.daily_at, NaiveTime::from_hms_opt(17, 5, 0).unwrap());
        assert_eq!(s.origin(&kis::DAILY_AT), &Origin::File { path: file.clone(), line: Some(5) });
        assert_eq!(s.origin(&kis::APP_KEY), &Origin::File { path: file.clone(), line: Some(3) });
        assert_eq!(
            s.origin(&kis::APP_SECRET),
            &Origin::EnvFile { var: "HAECHI_KIS_APP_SECRET_FILE".into(), path: secret.clone() }
        );
        assert_eq!(s.origin("kis.base_url"), &Origin::Env { var: "HAECHI_KIS_BASE_URL".into() });

        let cfg = s.kis.client_config().unwrap();
        assert_eq!(cfg.env, KisEnv::Real);
        assert_eq!(cfg.credentials.app_key, "PSfromfile", "whitespace copied with the key is trimmed");
        assert_eq!(cfg.credentials.app_secret.expose(), "s3cr3t-from-file");
        assert_eq!(cfg.account.unwrap().cano, "50012345");
        assert_eq!(cfg.base_url, "http://127.0.0.1:9443", "no trailing slash: paths are appended");
        assert_eq!(cfg.ws_url, KisEnv::Real.ws_base());
        assert!((cfg.rate_per_sec - 5.0).abs() < f64::EPSILON);
        assert!(cfg.allow_real_orders);
        assert_eq!(cfg.max_order_value, Some(1_000_000));

        let shown = format!("{}{s:?}", s.render());
        for leak in ["PSfromfile", "s3cr3t", "50012345"] {
            assert!(!shown.contains(leak), "{leak} leaked into\n{shown}");
        }
        assert!(shown.contains("\n[kis]\napp_key = \"[redacted]\"  # file "), "{shown}");
        assert!(shown.contains("daily_at = \"17:05\"  # file "), "{shown}");
        assert!(shown.contains("rate_per_sec = 5.0  # file "), "{shown}");
    }

    #[test]
    fn kis_is_off_without_an_app_key_and_refused_without_its_secret() {
        let s = load_with(None, &[("HAECHI_KIS_ENV", "real"), ("HAECHI_KIS_DAILY_AT", "08:00")]).unwrap();
        assert!(s.kis.client_config().is_none());
        assert_eq!(s.kis.daily_at, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(Settings::default().kis.client_config().map(|c| c.env), None);

        let errors = errors_of(load_with(None, &[("HAECHI_KIS_APP_KEY", "PSabc")]));
        assert_eq!(keys_of(&errors), ["kis.app_secret"]);
        assert_eq!(
            errors[0].to_string(),
            "kis.app_secret: required when kis.app_key is set (from env HAECHI_KIS_APP_KEY)"
        );

        // An unreadable secret file is one error, not also "required".
        let errors = errors_of(load_with(
            None,
            &[("HAECHI_KIS_APP_KEY", "PSabc"), ("HAECHI_KIS_APP_SECRET_FILE", "/nonexistent/kis-secret")],
        ));
        assert_eq!(keys_of(&errors), ["kis.app_secret"]);
        assert!(matches!(errors[0].problem, Problem::Unreadable { .. }), "{}", errors[0]);
    }

    /// More app keys widen the trade feed: one client configuration per key, the main one
    /// first; a malformed list is refused by name without echoing it.
    #[test]
    fn feed_keys_add_one_feed_session_each_and_are_not_echoed() {
        let s = load_with(
            None,
            &[
                ("HAECHI_KIS_APP_KEY", "PSmain"),
                ("HAECHI_KIS_APP_SECRET", "main-secret"),
                ("HAECHI_KIS_FEED_KEYS", "PStwo:two-secret, PSthree:three-secret"),
            ],
        )
        .unwrap();
        let keys: Vec<String> = s.kis.feed_configs().iter().map(|c| c.credentials.app_key.clone()).collect();
        assert_eq!(keys, ["PSmain", "PStwo", "PSthree"]);
        let errors = errors_of(load_with(
            None,
            &[
                ("HAECHI_KIS_APP_KEY", "PSmain"),
                ("HAECHI_KIS_APP_SECRET", "s"),
                ("HAECHI_KIS_FEED_KEYS", "PSonly-a-key"),
            ],
        ));
        assert_eq!(keys_of(&errors), ["kis.feed_keys"]);
        assert!(!errors[0].to_string().contains("PSonly-a-key"), "{}", errors[0]);
    }

    #[test]
    fn kis_values_are_validated_and_secrets_not_echoed() {
        let errors = errors_of(load_with(
            None,
            &[
                ("HAECHI_KIS_APP_KEY", "PSabc"),
                ("HAECHI_KIS_APP_SECRET", " "),
                ("HAECHI_KIS_ENV", "live"),
                ("HAECHI_KIS_ACCOUNT", "9876-5"),
                ("HAECHI_KIS_BASE_URL", "openapi.koreainvestment.com:9443"),
                ("HAECHI_KIS_WS_URL", "https://ops.koreainvestment.com:21000"),
                ("HAECHI_KIS_RATE_PER_SEC", "0"),
                ("HAECHI_KIS_ALLOW_REAL_ORDERS", "maybe"),
                ("HAECHI_KIS_MAX_ORDER_VALUE", "-5"),
                ("HAECHI_KIS_DAILY_AT", "25:00"),
            ],
        ));
        assert_eq!(
            keys_of(&errors),
            [
                "kis.app_secret",
                "kis.env",
                "kis.account",
                "kis.base_url",
                "kis.ws_url",
                "kis.rate_per_sec",
                "kis.allow_real_orders",
                "kis.max_order_value",
                "kis.daily_at",
            ]
        );
        let shown = ConfigErrors(errors).to_string();
        for expected in [
            "kis.app_secret: must not be empty (from env HAECHI_KIS_APP_SECRET)",
            "kis.env: \"live\" is not \"mock\" or \"real\" (from env HAECHI_KIS_ENV)",
            "kis.account: is not 8 + 2 digits such as 50012345-01 (from env HAECHI_KIS_ACCOUNT)",
            "kis.base_url: \"openapi.koreainvestment.com:9443\" is not an http:// or https:// URL (from env HAECHI_KIS_BASE_URL)",
            "kis.ws_url: \"https://ops.koreainvestment.com:21000\" is not a ws:// or wss:// URL (from env HAECHI_KIS_WS_URL)",
            "kis.max_order_value: -5 is outside 1..=9223372036854775807 (from env HAECHI_KIS_MAX_ORDER_VALUE)",
            "kis.daily_at: \"25:00\" is not a time of day as HH:MM (from env HAECHI_KIS_DAILY_AT)",
            "kis.rate_per_sec: \"0\" is not a number of requests per second above 0 and at most 1000 \
             (from env HAECHI_KIS_RATE_PER_SEC)",
            "kis.allow_real_orders: \"maybe\" is not a boolean (true or false) (from env HAECHI_KIS_ALLOW_REAL_ORDERS)",
        ] {
            assert!(shown.lines().any(|l| l == expected), "missing {expected:?} in\n{shown}");
        }
        assert!(!shown.contains("9876"), "the account leaked into\n{shown}");
    }

    #[test]
    fn blank_secret_from_a_file_is_an_error_not_unset() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "kis-secret", "  \n", 0o600);
        let errors = errors_of(load_with(
            None,
            &[("HAECHI_KIS_APP_KEY", "PSabc"), ("HAECHI_KIS_APP_SECRET_FILE", secret.to_str().unwrap())],
        ));
        assert_eq!(keys_of(&errors), ["kis.app_secret"]);
        assert!(matches!(errors[0].problem, Problem::Empty));
    }

    #[test]
    fn kis_section_in_the_file_is_checked_like_the_top_level() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "haechi.toml",
            "[kis]\napp_kye = \"x\"\ndaily_at = 1630\nrate_per_sec = \"fast\"\n",
            0o600,
        );
        let errors = errors_of(load_with(Some(&file), &[]));
        assert_eq!(keys_of(&errors), ["kis.app_kye", "kis.rate_per_sec", "kis.daily_at"]);
        assert!(matches!(errors[0].problem, Problem::UnknownKey { suggestion: Some("kis.app_key") }));
        assert_eq!(errors[0].origin, Origin::File { path: file.clone(), line: Some(2) });
        assert_eq!(
            errors[2].to_string(),
            format!("kis.daily_at: expected a string, found an integer (from file {}:3)", file.display())
        );

        let file = write(dir.path(), "flat.toml", "kis = \"real\"\n", 0o600);
        let errors = errors_of(load_with(Some(&file), &[]));
        assert_eq!(
            errors[0].to_string(),
            format!("kis: expected a table, found a string (from file {}:1)", file.display())
        );

        let file = write(dir.path(), "dotted.toml", "kis.env = \"real\"\nkis.rate_per_sec = 2.5\n", 0o600);
        let s = load_with(Some(&file), &[]).unwrap();
        assert_eq!(s.kis.env, KisEnv::Real);
        assert_eq!(s.kis.rate_per_sec, Some(2.5));
    }

    #[test]
    fn declarations_are_consistent() {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name()).collect();
        let vars: std::collections::BTreeSet<String> =
            KEYS.iter().flat_map(|k| [env_var(k.name()), file_var(k.name())]).collect();
        assert_eq!(vars.len(), 2 * names.len(), "two keys share an environment variable");
        let mut seen = Vec::new();
        for k in KEYS {
            // `render` writes each section's header once, so its keys must stay together.
            let section = section_of(k.name());
            if seen.last() != Some(&section) {
                assert!(!seen.contains(&section), "{} is apart from the rest of its section", k.name());
                seen.push(section);
            }
            let about = k.about();
            assert!(!about.is_empty() && !about.contains(['|', '\n']), "{}: one table cell, please", k.name());
            assert_eq!(
                k.show(&Settings::default()),
                k.show_default(),
                "{}: Settings::default() must take its declared default",
                k.name()
            );
        }
    }

    /// A value each secret key accepts, and what of it must never show.
    const SECRET_SAMPLES: &[(&str, &str, &str)] = &[
        ("database_url", "mysql://root:leak-db@db/haechi", "leak-db"),
        ("secret_key", LONG_SECRET, LONG_SECRET),
        ("metrics_token", "leak-prometheus-token", "leak-prometheus-token"),
        ("redis_url", "redis://:leak-redis@redis:6379/0", "leak-redis"),
        ("s3_access_key", "leak-access", "leak-access"),
        ("s3_secret_key", "leak-s3", "leak-s3"),
        ("kis.app_key", "PSleakkey", "PSleakkey"),
        ("kis.app_secret", "leak-kis-secret", "leak-kis-secret"),
        ("kis.feed_keys", "PSleaktwo:leak-feed-secret", "leak-feed-secret"),
        ("kis.account", "50012345-01", "50012345"),
    ];

    #[test]
    fn every_secret_key_is_redacted_and_may_come_from_a_file() {
        let secret: Vec<&str> = KEYS.iter().filter(|k| k.secret()).map(|k| k.name()).collect();
        let sampled: Vec<&str> = SECRET_SAMPLES.iter().map(|(name, ..)| *name).collect();
        assert_eq!(secret, sampled, "each secret key needs a sample here");
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![("HAECHI_KIS_APP_KEY".to_owned(), "PSother".to_owned())];
        env.push(("HAECHI_KIS_APP_SECRET".to_owned(), "other".to_owned()));
        for (name, value, leak) in SECRET_SAMPLES {
            let path = write(dir.path(), name, value, 0o600);
            let mut pairs = env.clone();
            pairs.push((file_var(name), path.to_str().unwrap().to_owned()));
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let s = load_with(None, &pairs).unwrap();
            assert!(matches!(s.origin(*name), Origin::EnvFile { .. }), "{name}");
            let shown = format!("{}{s:?}{s:#?}", s.render());
            assert!(!shown.contains(leak), "{name} leaked into\n{shown}");
        }
    }

    #[test]
    fn render_is_toml_that_loads_back_to_the_same_settings() {
        let s = load_with(
            None,
            &[
                ("HAECHI_ADDR", "0.0.0.0:9000"),
                ("HAECHI_WORKERS", "3"),
                ("HAECHI_KIS_ENV", "real"),
                ("HAECHI_KIS_RATE_PER_SEC", "7.5"),
                ("HAECHI_KIS_DAILY_AT", "18:00"),
                ("HAECHI_KIS_BASE_URL", "http://127.0.0.1:9443"),
            ],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "rendered.toml", &s.render(), 0o600);
        let again = load_with(Some(&file), &[]).unwrap();
        let strip = |r: String| r.lines().map(|l| l.split("  # ").next().unwrap_or(l).to_owned()).collect::<Vec<_>>();
        assert_eq!(strip(again.render()), strip(s.render()));
    }

    const DOCS_BEGIN: &str = "<!-- keys: generated from the declarations in crates/haechi/src/config.rs -->\n";
    const DOCS_END: &str = "<!-- end of keys -->";

    /// `UPDATE_DOCS=1 cargo test --workspace --bin haechi docs_table` rewrites the table.
    #[test]
    fn docs_table_lists_every_key_as_declared() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let doc = fs::read_to_string(&path).unwrap();
        let start = doc.find(DOCS_BEGIN).expect("the begin marker") + DOCS_BEGIN.len();
        let end = doc.find(DOCS_END).expect("the end marker");
        let table = docs_table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            fs::write(&path, format!("{}{table}{}", &doc[..start], &doc[end..])).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..end],
            table,
            "docs/configuration.md is out of date: run `UPDATE_DOCS=1 cargo test --workspace --bin haechi docs_table`"
        );
        for k in KEYS {
            assert!(doc.contains(&format!("| `{}` |", k.name())));
        }
    }
}
