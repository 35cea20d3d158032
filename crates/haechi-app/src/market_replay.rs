//! A replayed market for paper trading without KIS keys (the demo, classes, tests): each
//! session of the loaded daily data plays again as a synthetic intraday path
//! ([`haechi_paper::replay`]) on a virtual clock, one session every `session` of wall time.
//! Prints go through the same matching as live KIS prints ([`paper::apply_print`]).
//!
//! Crash-safe: the market state row records the last step played; a restarted replay plays
//! that step again, and its prints (keyed `session:ticker:step`) fill nothing twice.

use crate::error::AppResult;
use crate::{App, paper};
use chrono::NaiveDate;
use haechi_core::Ticker;
use haechi_db::QuoteRow;
use haechi_jobs::market::{day_from_number, day_number};
use haechi_paper::replay::{Tick, session_path};
use haechi_paper::session::Phase;
use std::collections::HashMap;
use std::time::Duration;

/// How a replay runs.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// Wall time one session takes.
    pub session: Duration,
    /// Prints per ticker per session (the last is the closing call).
    pub steps: u32,
    /// A fresh replay starts this many sessions before the data's end (and wraps to there).
    pub sessions_back: usize,
}

impl Default for ReplayOptions {
    fn default() -> ReplayOptions {
        ReplayOptions { session: Duration::from_secs(600), steps: 78, sessions_back: 250 }
    }
}

/// Where a replay starts: where the last one stopped, else `sessions_back` before the end.
///
/// # Errors
/// Without market data; the database's error.
pub async fn starting_point(app: &App, opts: &ReplayOptions) -> AppResult<(NaiveDate, u32)> {
    let m = app.market().recent(app.db()).await.map_err(|e| crate::AppError::internal("loading market data", e))?;
    let dates = m.store.dates();
    if let Some(row) = app.db().market_state().await.map_err(|e| crate::AppError::internal("reading market", e))?
        && row.mode == "replay"
        && let Some(d) = day_from_number(row.session)
        && dates.binary_search(&d).is_ok()
    {
        return Ok((d, u32::try_from(row.step).unwrap_or(0)));
    }
    let i = dates.len().saturating_sub(opts.sessions_back.max(1));
    let d = dates.get(i).copied().ok_or_else(|| crate::AppError::Conflict("no market data is loaded".into()))?;
    Ok((d, 0))
}

/// Marks the replay's market as about to open a session, so orders placed now are for it.
///
/// # Errors
/// The database's error.
pub async fn prime(app: &App, opts: &ReplayOptions) -> AppResult<NaiveDate> {
    let (session, step) = starting_point(app, opts).await?;
    let phase = if step == 0 { Phase::BeforeOpen } else { Phase::Continuous };
    paper::set_replay_state(app, session, phase, step, opts.steps).await?;
    Ok(session)
}

/// Plays sessions until `stop` turns true.
///
/// # Errors
/// Without market data; the database's error.
pub async fn run(app: App, opts: ReplayOptions, mut stop: tokio::sync::watch::Receiver<bool>) -> AppResult<()> {
    let steps = opts.steps.max(haechi_paper::replay::MIN_STEPS);
    let pause = opts.session / steps;
    let (mut session, mut step) = starting_point(&app, &opts).await?;
    tracing::info!(%session, step, steps, session_secs = opts.session.as_secs(), "paper market replay started");
    let mut paths: HashMap<Ticker, Vec<Tick>> = HashMap::new();
    let mut volume: HashMap<Ticker, u64> = HashMap::new();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let m = app.market().recent(app.db()).await.map_err(|e| crate::AppError::internal("loading market data", e))?;
        let store = m.store.clone();
        let idx = store.session_at_or_after(session);
        let phase = if step + 1 >= steps { Phase::ClosingCall } else { Phase::Continuous };
        paper::set_replay_state(&app, session, phase, step, steps).await?;
        let watched = app
            .db()
            .watched_tickers(day_number(session))
            .await
            .map_err(|e| crate::AppError::internal("watching", e))?;
        let mut quotes = Vec::with_capacity(watched.len());
        for t in watched {
            let Ok(ticker) = Ticker::parse(&t) else { continue };
            let Some(slot) = store.slot_of(ticker) else { continue };
            let path = paths.entry(ticker).or_insert_with(|| match store.raw(slot, idx) {
                Some(bar) => session_path(
                    session,
                    store.instrument(slot).market,
                    bar,
                    steps,
                    u64::from(day_number(session).unsigned_abs()) ^ slot as u64,
                ),
                None => Vec::new(),
            });
            let Some(tick) = path.get(step as usize).copied() else { continue };
            let cum = volume.entry(ticker).or_default();
            *cum += tick.volume;
            let print = paper::PrintIn {
                ticker,
                session,
                price: tick.price,
                volume: tick.volume,
                auction: step == 0 || step + 1 == steps,
                key: format!("{}:{}:{}", day_number(session), ticker, step),
            };
            paper::apply_print(&app, &print).await?;
            let prev_close = if idx == 0 { None } else { store.last_close(slot, idx - 1) };
            quotes.push(QuoteRow {
                ticker: t,
                session: day_number(session),
                prev_close: prev_close.map_or(tick.price.get(), |p| p.get()),
                last: tick.price.get(),
                volume: i64::try_from(*cum).unwrap_or(i64::MAX),
                updated_at: app.now_ms(),
            });
        }
        app.db().upsert_quotes(&quotes).await.map_err(|e| crate::AppError::internal("recording quotes", e))?;
        step += 1;
        if step >= steps {
            paper::close_session(&app, session).await?;
            let next = store.dates().get(idx + 1).copied().unwrap_or_else(|| {
                let back = store.n_days().saturating_sub(opts.sessions_back.max(1));
                store.dates().get(back).copied().unwrap_or(session)
            });
            tracing::info!(%session, %next, "paper market replay: session closed");
            session = next;
            step = 0;
            paths.clear();
            volume.clear();
            paper::set_replay_state(&app, session, Phase::BeforeOpen, 0, steps).await?;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}
