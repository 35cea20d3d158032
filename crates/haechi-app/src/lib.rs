//! Haechi's use cases: one home for what the API, the portal, the CLI, the demo and (later)
//! the MCP server and the workers do, so validation, authorisation, audit and metrics exist
//! once. No HTTP here: functions take an [`App`], a [`Principal`] and a [`RequestMeta`], and
//! return domain types or one [`AppError`] that each edge words in its own way.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod error;
pub mod guard;
pub mod identify;
pub mod market_feed;
pub mod market_replay;
pub mod metrics_names;
pub mod mfa;
pub mod paging;
pub mod paper;
pub mod principal;
pub mod rbac;
pub mod runs;
pub mod scenarios;
pub mod sessions;
pub mod spec;
pub mod sweeps;
pub mod tokens;

pub use audit::RequestMeta;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, AppResult, AuthFailure, FieldProblem};
pub use haechi_core::platform::{Role, RunId, RunState, ScenarioId, Scope, TokenId, UserId};
pub use principal::{Account, AuthVia, Principal};

use cache::AuthCache;
use haechi_db::Db;
use haechi_jobs::{MarketCache, Queue, RunEvents, RunNotice};
use haechi_objects::Objects;
use std::sync::Arc;
use std::time::Duration;

/// The use cases' settings, validated by the binary's configuration loader.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute: Duration,
    /// Failed sign-ins (per account) before a temporary lock.
    pub login_max_failures: u32,
    pub login_lock: Duration,
    /// Accounts one client address may register in an hour.
    pub registrations_per_hour: u32,
    /// Runs one user may have queued or running at once.
    pub max_active_runs: u32,
    /// Live scenarios one user may own.
    pub max_scenarios: u32,
    /// Bytes one user may keep stored (scenario versions and run reports).
    pub max_stored_bytes: u64,
    /// Open mock accounts one user may have.
    pub max_paper_accounts: u32,
    /// A KIS mock account (모의투자) is configured, with workers for the `paper` queue: an
    /// account may mirror its orders there.
    pub kis_mirror: bool,
}

impl Default for AppSettings {
    fn default() -> AppSettings {
        AppSettings {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            login_max_failures: 5,
            login_lock: Duration::from_secs(15 * 60),
            registrations_per_hour: 30,
            max_active_runs: 4,
            max_scenarios: 500,
            max_stored_bytes: 256 * 1024 * 1024,
            max_paper_accounts: 10,
            kis_mirror: false,
        }
    }
}

/// What the use cases talk to.
#[derive(Debug, Clone)]
pub struct Services {
    pub db: Db,
    /// Reports and other artefacts.
    pub objects: Objects,
    /// The job queue runs are pushed onto.
    pub queue: Queue,
    /// This process's run notices, which wake live streams.
    pub events: RunEvents,
    /// The market data, shared with this process's runners.
    pub market: MarketCache,
}

/// A mock account changed (an order, a fill, a halt): wakes that account's live streams in
/// this process. Streams also poll, so changes made by another process arrive too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperNotice {
    pub owner_id: i64,
    pub account_id: i64,
}

/// The application: cheap to clone, shared by every edge in a process.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    services: Services,
    settings: AppSettings,
    cache: AuthCache,
    clock: Arc<dyn Clock>,
    paper: tokio::sync::broadcast::Sender<PaperNotice>,
    paper_state: paper::PaperState,
    /// Accounts with a security scan queued in this process (see `guard::after_failed_sign_in`).
    guard_pending: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl App {
    #[must_use]
    pub fn new(services: Services, settings: AppSettings) -> App {
        App::with_clock(services, settings, Arc::new(SystemClock))
    }

    /// An application reading time from `clock` (tests move a [`ManualClock`]).
    #[must_use]
    pub fn with_clock(services: Services, settings: AppSettings, clock: Arc<dyn Clock>) -> App {
        let (paper, _) = tokio::sync::broadcast::channel(1024);
        App {
            inner: Arc::new(Inner {
                services,
                settings,
                cache: AuthCache::default(),
                clock,
                paper,
                paper_state: paper::PaperState::default(),
                guard_pending: std::sync::Mutex::default(),
            }),
        }
    }

    #[must_use]
    pub fn db(&self) -> &Db {
        &self.inner.services.db
    }
    #[must_use]
    pub fn objects(&self) -> &Objects {
        &self.inner.services.objects
    }
    #[must_use]
    pub fn queue(&self) -> &Queue {
        &self.inner.services.queue
    }
    #[must_use]
    pub fn events(&self) -> &RunEvents {
        &self.inner.services.events
    }
    #[must_use]
    pub fn market(&self) -> &MarketCache {
        &self.inner.services.market
    }
    /// Notices of mock-account changes in this process.
    #[must_use]
    pub fn paper_notices(&self) -> tokio::sync::broadcast::Receiver<PaperNotice> {
        self.inner.paper.subscribe()
    }
    pub(crate) fn guard_pending(&self) -> &std::sync::Mutex<std::collections::HashSet<i64>> {
        &self.inner.guard_pending
    }

    pub(crate) fn paper_state(&self) -> &paper::PaperState {
        &self.inner.paper_state
    }
    /// Wakes the account's live streams in this process.
    pub fn notify_paper(&self, owner_id: i64, account_id: i64) {
        let _ = self.inner.paper.send(PaperNotice { owner_id, account_id });
    }
    #[must_use]
    pub fn settings(&self) -> &AppSettings {
        &self.inner.settings
    }
    #[must_use]
    pub fn cache(&self) -> &AuthCache {
        &self.inner.cache
    }
    /// Unix milliseconds, from the injected clock.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }
    /// Wakes this process's live streams for the owner's run.
    pub fn notify_run(&self, owner: UserId, run: RunId) {
        let _ = self.inner.services.events.send(RunNotice { owner_id: owner.get(), run_id: run.get() });
    }
}
