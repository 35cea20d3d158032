//! Paper trading matched on a live trade feed: KIS's `H0STCNT0` stream, or the fake KIS's
//! replayed sessions (`haechi kis-fake`), through [`TradeFeed`].
//!
//! The matcher keeps the feed registered for the tickers with open orders or holdings, plus one
//! pilot (the most traded name of the market data), and sends every trade through the same
//! matching as the replayed market
//! ([`paper::apply_print`]). The session and its phase come from the trades' own business date
//! and time, so a fake session played in ten minutes and a real one of six and a half hours
//! run the same code:
//! - a ticker's first trade of a session at or before 09:00:59 is the opening auction's print,
//!   and every trade from 15:20 on is the closing call's; orders they reach fill at the print;
//! - a session ends (open orders expire, equity is recorded) when a trade of a later day
//!   arrives, or [`FeedOptions::close_grace`] after its closing print with no trade since;
//! - trades after 15:30 (after-hours single-price trading) and from a closed session are not
//!   matched.
//!
//! The pilot keeps the market state current while no account watches anything: the first
//! order placed is then for the feed's session (the fake's replayed day, say), not the wall
//! clock's. It costs one of the 41 registrations of a session.
//!
//! Crash-safe like the replay: the market state row records the session, and each print's key
//! (`session:ticker:accumulated volume`) is unique, so a print applied twice fills nothing twice.

use crate::error::AppResult;
use crate::{App, AppError, paper};
use chrono::{NaiveDate, NaiveTime, Timelike as _};
use haechi_core::{Price, Ticker};
use haechi_db::QuoteRow;
use haechi_jobs::market::{day_from_number, day_number};
use haechi_paper::session::Phase;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One trade from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedTrade {
    pub ticker: Ticker,
    /// The business date the trade belongs to.
    pub session: NaiveDate,
    /// KST.
    pub time: NaiveTime,
    pub price: Price,
    /// This trade's quantity.
    pub volume: u64,
    /// The day's accumulated volume including this trade: unique per trade of a ticker's day.
    pub acc_volume: i64,
    /// The previous session's close (the day's reference price).
    pub prev_close: i64,
}

/// A boxed future, for the object-safe [`TradeFeed`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Registrations on a trade feed. Trades arrive on the channel given to [`run`].
pub trait TradeFeed: Send + Sync + 'static {
    /// Registers `ticker`; an error says why it could not be (all sessions full, say).
    fn subscribe<'a>(&'a self, ticker: &'a str) -> BoxFuture<'a, Result<(), String>>;
    fn unsubscribe<'a>(&'a self, ticker: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// How the matcher runs.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// How often the registrations follow the tickers with open orders or holdings.
    pub resync: Duration,
    /// A session whose closing print was seen ends this long after its last trade.
    pub close_grace: Duration,
}

impl Default for FeedOptions {
    fn default() -> FeedOptions {
        FeedOptions { resync: Duration::from_secs(2), close_grace: Duration::from_secs(60) }
    }
}

const OPEN: u32 = 9 * 3600;
const CLOSING_CALL: u32 = 15 * 3600 + 20 * 60;
const CLOSE: u32 = 15 * 3600 + 30 * 60;
/// Last second a trade can belong to the regular session (the closing print may be stamped a
/// few seconds after 15:30).
const LAST_REGULAR: u32 = CLOSE + 59;

/// What a trade's time says about the session.
fn phase_at(time: NaiveTime) -> Option<Phase> {
    match time.num_seconds_from_midnight() {
        s if s > LAST_REGULAR => None,
        s if s >= CLOSING_CALL => Some(Phase::ClosingCall),
        _ => Some(Phase::Continuous),
    }
}

struct Matcher {
    app: App,
    opts: FeedOptions,
    /// The session being matched, and whether it was closed.
    session: Option<(NaiveDate, bool)>,
    /// Tickers that have printed in the session (the next print is not the opening auction).
    opened: BTreeSet<Ticker>,
    /// When the closing call's first print was seen, and the last trade since.
    closing: Option<Instant>,
    last_trade: Instant,
    phase: Phase,
    state_written: Option<(Instant, Phase, u32)>,
    quotes: HashMap<Ticker, QuoteRow>,
    subscribed: BTreeSet<String>,
    refused: BTreeSet<String>,
    pilot: Option<String>,
}

/// The name whose trades keep the market state current: the most traded of the market data's
/// last session.
async fn pilot(app: &App) -> Option<String> {
    let m = app.market().recent(app.db()).await.ok()?;
    let last = m.store.n_days().checked_sub(1)?;
    (0..m.store.n_instruments())
        .filter_map(|slot| Some((m.store.raw(slot, last)?.volume, slot)))
        .max()
        .map(|(_, slot)| m.store.instrument(slot).ticker.as_str().to_owned())
}

/// Matches until `stop` turns true or the trade channel closes.
///
/// # Errors
/// Reading the market state at the start; later database errors are logged, counted
/// (`haechi_paper_feed_errors_total`) and matching goes on.
pub async fn run(
    app: App,
    feed: Arc<dyn TradeFeed>,
    mut trades: mpsc::Receiver<FeedTrade>,
    opts: FeedOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> AppResult<()> {
    let row = app.db().market_state().await.map_err(|e| AppError::internal("reading the market state", e))?;
    let session = row
        .filter(|r| r.mode == "feed")
        .and_then(|r| day_from_number(r.session).map(|d| (d, Phase::parse(&r.phase) == Some(Phase::AfterClose))));
    let mut m = Matcher {
        app,
        opts,
        session,
        opened: BTreeSet::new(),
        closing: None,
        last_trade: Instant::now(),
        phase: Phase::BeforeOpen,
        state_written: None,
        quotes: HashMap::new(),
        subscribed: BTreeSet::new(),
        refused: BTreeSet::new(),
        pilot: None,
    };
    m.pilot = pilot(&m.app).await;
    tracing::info!(session = ?m.session.map(|s| s.0), pilot = ?m.pilot, "paper matching on the live trade feed started");
    let mut tick = tokio::time::interval(opts.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            t = trades.recv() => match t {
                Some(t) => m.on_trade(t).await,
                None => break,
            },
            _ = tick.tick() => {
                m.resync(feed.as_ref()).await;
                m.maybe_close().await;
                m.flush_quotes().await;
            }
            _ = stop.changed() => {}
        }
    }
    m.flush_quotes().await;
    Ok(())
}

fn log_error(what: &'static str, e: &AppError) {
    metrics::counter!("haechi_paper_feed_errors_total").increment(1);
    tracing::error!(error = %e, "paper feed: {what}");
}

impl Matcher {
    async fn on_trade(&mut self, t: FeedTrade) {
        let Some(phase) = phase_at(t.time) else { return };
        match self.session {
            Some((s, _)) if t.session < s => return,
            Some((s, closed)) if t.session > s => {
                if !closed {
                    self.close(s).await;
                }
                self.start(t.session);
            }
            Some((_, true)) => return,
            Some(_) => {}
            None => self.start(t.session),
        }
        self.last_trade = Instant::now();
        let secs = t.time.num_seconds_from_midnight();
        let opening = self.opened.insert(t.ticker) && secs < OPEN + 60;
        if phase == Phase::ClosingCall && secs >= CLOSE && self.closing.is_none() {
            self.closing = Some(Instant::now());
        }
        self.write_state(t.session, phase, secs.saturating_sub(OPEN)).await;
        let print = paper::PrintIn {
            ticker: t.ticker,
            session: t.session,
            price: t.price,
            volume: t.volume,
            auction: opening || phase == Phase::ClosingCall,
            key: format!("{}:{}:{}", day_number(t.session), t.ticker, t.acc_volume),
        };
        if let Err(e) = paper::apply_print(&self.app, &print).await {
            log_error("matching a trade", &e);
        }
        metrics::counter!("haechi_paper_feed_trades_total").increment(1);
        self.quotes.insert(
            t.ticker,
            QuoteRow {
                ticker: t.ticker.as_str().to_owned(),
                session: day_number(t.session),
                prev_close: t.prev_close,
                last: t.price.get(),
                volume: t.acc_volume,
                updated_at: self.app.now_ms(),
            },
        );
    }

    fn start(&mut self, session: NaiveDate) {
        self.session = Some((session, false));
        self.opened.clear();
        self.closing = None;
        self.state_written = None;
        tracing::info!(%session, "paper feed: session opened");
    }

    /// Records where the market is, at most once a second (and at once on a phase change), so
    /// orders placed now are for this session and the portal shows its progress.
    async fn write_state(&mut self, session: NaiveDate, phase: Phase, elapsed: u32) {
        if self.state_written.is_some_and(|(at, p, _)| p == phase && at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.phase = phase;
        let steps = CLOSE - OPEN;
        if let Err(e) = paper::set_market_state(&self.app, "feed", session, phase, elapsed.min(steps), steps).await {
            log_error("recording the market state", &e);
        }
        self.state_written = Some((Instant::now(), phase, elapsed));
    }

    async fn maybe_close(&mut self) {
        if let (Some((s, false)), Some(_)) = (self.session, self.closing)
            && self.last_trade.elapsed() >= self.opts.close_grace
        {
            self.close(s).await;
        }
    }

    async fn close(&mut self, session: NaiveDate) {
        self.flush_quotes().await;
        if let Err(e) = paper::close_session(&self.app, session).await {
            log_error("closing a session", &e);
            return;
        }
        self.session = Some((session, true));
        self.closing = None;
        let steps = CLOSE - OPEN;
        if let Err(e) = paper::set_market_state(&self.app, "feed", session, Phase::AfterClose, steps, steps).await {
            log_error("recording the market state", &e);
        }
        tracing::info!(%session, "paper feed: session closed");
    }

    async fn flush_quotes(&mut self) {
        if self.quotes.is_empty() {
            return;
        }
        let rows: Vec<QuoteRow> = self.quotes.drain().map(|(_, q)| q).collect();
        if let Err(e) = self.app.db().upsert_quotes(&rows).await {
            log_error("recording quotes", &AppError::internal("recording quotes", e));
        }
    }

    /// Registers the tickers with open orders (for any session: an order for the next one
    /// must not miss its opening print) or holdings, and drops the others.
    async fn resync(&mut self, feed: &dyn TradeFeed) {
        let want: BTreeSet<String> = match self.app.db().watched_tickers(i32::MAX).await {
            Ok(w) => w.into_iter().chain(self.pilot.clone()).collect(),
            Err(e) => return log_error("listing watched tickers", &AppError::internal("watching", e)),
        };
        let gone: Vec<String> = self.subscribed.difference(&want).cloned().collect();
        for t in gone {
            match feed.unsubscribe(&t).await {
                Ok(()) => {
                    self.subscribed.remove(&t);
                }
                Err(e) => tracing::warn!(ticker = %t, error = %e, "paper feed: unsubscribing failed"),
            }
        }
        self.refused.retain(|t| want.contains(t));
        let new: Vec<String> = want.difference(&self.subscribed).cloned().collect();
        for t in new {
            match feed.subscribe(&t).await {
                Ok(()) => {
                    self.refused.remove(&t);
                    self.subscribed.insert(t);
                }
                // Once per ticker: capacity is app keys × 41 registrations, and every resync
                // would otherwise say it again.
                Err(e) if self.refused.insert(t.clone()) => {
                    metrics::counter!("haechi_paper_feed_refused_total").increment(1);
                    tracing::warn!(ticker = %t, error = %e, "paper feed: a ticker with open orders is not on the feed");
                }
                Err(_) => {}
            }
        }
        metrics::gauge!("haechi_paper_feed_tickers").set(self.subscribed.len() as f64);
    }
}

/// The KIS `H0STCNT0` feed ([`haechi_kis::ws::QuoteFeed`]) as a [`TradeFeed`]. Dropping it
/// closes the feed's sessions.
pub struct KisTrades {
    feed: haechi_kis::ws::QuoteFeed,
}

impl std::fmt::Debug for KisTrades {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KisTrades").field("feed", &self.feed).finish()
    }
}

impl KisTrades {
    /// Wraps `feed`, and forwards its trades, as [`FeedTrade`]s, to the returned channel. A
    /// trade the matcher fell too far behind to receive is counted
    /// (`haechi_paper_feed_lagged_total`) and logged.
    #[must_use]
    pub fn new(feed: haechi_kis::ws::QuoteFeed) -> (Arc<KisTrades>, mpsc::Receiver<FeedTrade>) {
        let mut rx = feed.trades();
        let (tx, out) = mpsc::channel(8192);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(t) => {
                        let Some(t) = feed_trade(&t) else { continue };
                        if tx.send(t).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        metrics::counter!("haechi_paper_feed_lagged_total").increment(n);
                        tracing::warn!(missed = n, "paper feed: the matcher fell behind the trade stream");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        (Arc::new(KisTrades { feed }), out)
    }
}

/// A KIS trade as the matcher takes it; `None` for one it cannot use (a halted name's
/// record, a malformed code or price).
fn feed_trade(t: &haechi_kis::frame::Trade) -> Option<FeedTrade> {
    if t.halted || t.volume <= 0 {
        return None;
    }
    Some(FeedTrade {
        ticker: Ticker::parse(&t.ticker).ok()?,
        session: t.business_date,
        time: t.time,
        price: Price::new(t.price).filter(|p| p.get() > 0)?,
        volume: u64::try_from(t.volume).ok()?,
        acc_volume: t.acc_volume,
        prev_close: t.price - t.change,
    })
}

impl TradeFeed for KisTrades {
    fn subscribe<'a>(&'a self, ticker: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.feed.subscribe(ticker).await.map_err(|e| e.to_string()) })
    }
    fn unsubscribe<'a>(&'a self, ticker: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.feed.unsubscribe(ticker).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_times_say_the_phase() {
        let at = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap_or(NaiveTime::MIN);
        assert_eq!(phase_at(at(9, 0, 0)), Some(Phase::Continuous));
        assert_eq!(phase_at(at(15, 19, 59)), Some(Phase::Continuous));
        assert_eq!(phase_at(at(15, 20, 0)), Some(Phase::ClosingCall));
        assert_eq!(phase_at(at(15, 30, 59)), Some(Phase::ClosingCall));
        assert_eq!(phase_at(at(16, 0, 0)), None, "after-hours trades are not the regular session");
    }
}
