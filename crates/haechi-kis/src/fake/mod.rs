//! A KIS look-alike for tests and the demo: the same paths, headers, bodies and error envelopes
//! as KIS (`shared/kis/KIS_API.md`), answered from a synthetic market.
//!
//! It enforces what real KIS enforces and wrappers get wrong: one token issuance a minute per
//! app key (HTTP 403 `EGW00133`), the same token within six hours, token expiry (`EGW00123`), the
//! per-second request limit (HTTP 500 `EGW00201`), 100-bar chart pages, cursor paging with
//! `tr_cont`, real-only TRs refused on the mock personality (`EGW02006`), and over WebSocket the
//! 41-registration cap and one session per app key. Codes KIS does not document for a case
//! (missing header, wrong TR for a path) are the fake's own and say so in `msg1`.

mod rest;
pub mod ws;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use haechi_core::MarketStore;
use haechi_data::synth::{self, SynthConfig};
use tokio::time::Instant;

use crate::KisEnv;
pub use ws::{SessionReplay, WsHub, WsHubConfig};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeKisConfig {
    /// Mock refuses real-only TRs (`EGW02006`) and `T…` order ids; real refuses `V…` ids.
    pub env: KisEnv,
    pub market: SynthConfig,
    /// Requests per second per app key; KIS's own limit for `env` by default.
    pub rate_limit: u32,
    pub min_issue_interval: Duration,
    pub token_ttl: Duration,
    /// A token asked for again within this window is the same token.
    pub same_token_window: Duration,
    pub chart_page_rows: usize,
    pub balance_page_rows: usize,
    pub fills_page_rows: usize,
    /// Added to every REST answer, to model the network.
    pub latency: Duration,
    pub ws: WsHubConfig,
    /// Starting cash of every mock account, in won.
    pub starting_cash: i64,
}

impl FakeKisConfig {
    #[must_use]
    pub fn new(env: KisEnv, market: SynthConfig) -> FakeKisConfig {
        FakeKisConfig {
            env,
            market,
            rate_limit: env.kis_rate_limit(),
            min_issue_interval: Duration::from_secs(60),
            token_ttl: Duration::from_secs(86_400),
            same_token_window: Duration::from_secs(6 * 3_600),
            chart_page_rows: 100,
            balance_page_rows: if env == KisEnv::Mock { 20 } else { 50 },
            fills_page_rows: if env == KisEnv::Mock { 15 } else { 100 },
            latency: Duration::ZERO,
            ws: WsHubConfig::default(),
            starting_cash: 100_000_000,
        }
    }
}

/// Arrivals a long-running fake keeps before dropping the oldest half.
pub const ARRIVALS_KEPT: usize = 200_000;

/// A failure the next requests will get, for retry tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 `EGW00201`.
    RateLimit,
    /// HTTP 500 `EGW00123`.
    ExpiredToken,
    /// HTTP 503 with an HTML body (maintenance).
    Unavailable,
}

/// One REST request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    pub path: String,
    pub tr_id: String,
    pub app_key: String,
    /// The `msg_cd` or `error_code` answered.
    pub code: String,
}

#[derive(Debug)]
struct TokenRec {
    token: String,
    app_key: String,
    issued_at: Instant,
    expires_at: Instant,
    expired: bool,
}

#[derive(Debug, Clone)]
struct FakeOrder {
    day: NaiveDate,
    order_no: u64,
    original: u64,
    ticker: String,
    buy: bool,
    quantity: i64,
    price: i64,
    filled: i64,
    fill_price: i64,
    cancelled: i64,
    time: String,
}

#[derive(Debug, Default)]
struct AccountBook {
    cash: i64,
    /// ticker → (quantity, purchase amount)
    holdings: std::collections::BTreeMap<String, (i64, i64)>,
    orders: Vec<FakeOrder>,
}

struct State {
    cfg: FakeKisConfig,
    market: Arc<MarketStore>,
    /// Latest session's index, the fake's "today".
    today: usize,
    tokens: Mutex<Vec<TokenRec>>,
    last_issue: Mutex<HashMap<String, Instant>>,
    issuances: AtomicU64,
    requests: AtomicU64,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    arrivals: Mutex<Vec<Arrival>>,
    faults: Mutex<VecDeque<Fault>>,
    rate_limited: AtomicU64,
    accounts: Mutex<HashMap<String, AccountBook>>,
    next_order: AtomicU64,
    ws: Arc<WsHub>,
}

/// A running fake KIS server. Dropping it stops the server.
pub struct FakeKis {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeKis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKis").field("addr", &self.addr).field("env", &self.state.cfg.env).finish_non_exhaustive()
    }
}

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("synthetic market: {0}")]
    Market(#[from] synth::SynthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl FakeKis {
    /// Generates the market and listens on `addr` (port 0 for any free port).
    ///
    /// # Errors
    /// The market configuration is invalid or the address is taken.
    pub async fn start(cfg: FakeKisConfig, addr: SocketAddr) -> Result<FakeKis, FakeError> {
        let market_cfg = cfg.market;
        let market = tokio::task::spawn_blocking(move || synth::generate(&market_cfg))
            .await
            .map_err(|e| FakeError::Bind { addr, source: std::io::Error::other(e) })??;
        let market = Arc::new(market);
        let today = market.n_days().saturating_sub(1);
        let ws = WsHub::replaying(cfg.ws.clone(), market.clone());
        let state = Arc::new(State {
            cfg,
            market,
            today,
            tokens: Mutex::new(Vec::new()),
            last_issue: Mutex::new(HashMap::new()),
            issuances: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            windows: Mutex::new(HashMap::new()),
            arrivals: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            rate_limited: AtomicU64::new(0),
            accounts: Mutex::new(HashMap::new()),
            next_order: AtomicU64::new(1),
            ws,
        });
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| FakeError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| FakeError::Bind { addr, source })?;
        let app = rest::router(state.clone()).merge(state.ws.router());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeKis { addr: local, state, stop: Some(tx) })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The REST base to put in `HAECHI_KIS_BASE_URL`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The WebSocket URL to put in `HAECHI_KIS_WS_URL`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}/tryitout", self.addr)
    }

    #[must_use]
    pub fn ws(&self) -> &Arc<WsHub> {
        &self.state.ws
    }

    /// The synthetic market served.
    #[must_use]
    pub fn market(&self) -> &MarketStore {
        &self.state.market
    }

    /// Every ticker served.
    #[must_use]
    pub fn tickers(&self) -> Vec<String> {
        self.state.market.instruments().iter().map(|i| i.ticker.as_str().to_owned()).collect()
    }

    /// Tokens issued so far (the same token handed out again does not count).
    #[must_use]
    pub fn issuances(&self) -> u64 {
        self.state.issuances.load(Ordering::Relaxed)
    }

    /// REST requests served, OAuth excluded.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Requests answered with `EGW00201` because the limit was exceeded (injected faults excluded).
    #[must_use]
    pub fn rate_limited(&self) -> u64 {
        self.state.rate_limited.load(Ordering::Relaxed)
    }

    /// REST requests except the OAuth ones, in arrival order: every one in a test; the most
    /// recent [`ARRIVALS_KEPT`] to [`ARRIVALS_KEPT`] × 2 in a long-running fake.
    #[must_use]
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The next `n` API requests fail with `fault`.
    pub fn inject(&self, fault: Fault, n: usize) {
        if let Ok(mut f) = self.state.faults.lock() {
            f.extend(std::iter::repeat_n(fault, n));
        }
    }

    /// Every token issued so far expires now (as at the end of its 24 hours).
    pub fn expire_tokens(&self) {
        if let Ok(mut t) = self.state.tokens.lock() {
            for rec in t.iter_mut() {
                rec.expired = true;
            }
        }
    }

    /// Stops the server.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for FakeKis {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The largest count of arrivals in any window of `window` (half-open), for rate measurements.
#[must_use]
pub fn max_in_window(arrivals: &[Arrival], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..arrivals.len() {
        while arrivals[hi].at.duration_since(arrivals[lo].at) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
