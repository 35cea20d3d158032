//! Market data collection from KIS into SQL, with every raw answer archived in object storage.
//!
//! Resumability comes from two places. `bar_coverage` records, per ticker, the contiguous range
//! of days already fetched and stored, and each page of bars is stored together with its
//! coverage in one transaction; so a rerun (or a crashed run taken over) fetches only what is
//! missing, never re-fetching more than one page per ticker. `etl_runs` records the run itself,
//! its parameters, the tickers finished and a heartbeat; a run whose owner died is resumed by the
//! next start with the same parameters.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{NaiveDate, Timelike};
use haechi_db::{BarRow, Db, DbError, EtlStart, etl_state};
use haechi_kis::model::FinancePeriod;
use haechi_kis::token::{StoredToken, TokenSlot, TokenStore};
use haechi_kis::{BoxFuture, KisClient, KisError, RawArchive, RawResponse};
use haechi_objects::Objects;

use crate::market::{day_from_number, day_number};
use crate::metrics_names;
use crate::quality::{self, QualityReport};

/// Why an ETL run failed as a whole (single tickers failing are listed in the summary instead).
#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Kis(#[from] KisError),
    #[error("object storage: {0}")]
    Objects(String),
    #[error("{0}")]
    Input(String),
    #[error("another process took this run over")]
    LostOwnership,
}

/// The shared KIS token in the application database.
#[derive(Debug, Clone)]
pub struct DbTokenStore {
    db: Db,
}

impl DbTokenStore {
    #[must_use]
    pub fn new(db: Db) -> Arc<DbTokenStore> {
        Arc::new(DbTokenStore { db })
    }
}

impl TokenStore for DbTokenStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<TokenSlot, String>> {
        Box::pin(async move {
            let row = self.db.kis_token(key).await.map_err(|e| e.to_string())?;
            Ok(row.map_or_else(TokenSlot::default, |r| TokenSlot {
                token: match (r.access_token, r.expires_at) {
                    (Some(t), Some(e)) => Some(StoredToken { access_token: t, expires_at_ms: e }),
                    _ => None,
                },
                last_issue_ms: r.last_issue_at,
            }))
        })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(
            async move { self.db.kis_token_try_lease(key, holder, now_ms, until_ms).await.map_err(|e| e.to_string()) },
        )
    }

    fn finish<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        token: Option<&'a StoredToken>,
        issued_at_ms: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.db
                .kis_token_finish(key, holder, token.map(|t| (t.access_token.as_str(), t.expires_at_ms)), issued_at_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.db.kis_token_release(key, holder).await.map_err(|e| e.to_string()) })
    }
}

/// Keeps every raw KIS answer under `raw/kis/{endpoint}/{yyyy-mm-dd}/` (KST date of receipt).
#[derive(Debug, Clone)]
pub struct ObjectArchive {
    objects: Objects,
    seq: Arc<AtomicU64>,
}

impl ObjectArchive {
    #[must_use]
    pub fn new(objects: Objects) -> Arc<ObjectArchive> {
        Arc::new(ObjectArchive { objects, seq: Arc::new(AtomicU64::new(0)) })
    }
}

/// The object key of a raw answer: sortable by time, unique across processes.
#[must_use]
pub fn raw_key(raw: &RawResponse, unique: &str) -> String {
    let kst =
        chrono::DateTime::from_timestamp_millis(raw.received_at_ms).unwrap_or_default() + chrono::Duration::hours(9);
    let label: String = raw
        .label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    format!(
        "raw/kis/{}/{}/{}_{}_{}_{}.json",
        raw.endpoint,
        kst.format("%Y-%m-%d"),
        kst.format("%H%M%S%3f"),
        if label.is_empty() { "-".into() } else { label },
        raw.status,
        unique
    )
}

impl RawArchive for ObjectArchive {
    fn store(&self, raw: RawResponse) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let n = self.seq.fetch_add(1, Ordering::Relaxed);
            let unique = format!("{}-{n}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let key = raw_key(&raw, &unique);
            self.objects.put(&key, raw.body).await.map_err(|e| e.to_string())
        })
    }
}

/// Progress for the CLI's bar: totals first, then one tick per finished ticker.
pub trait EtlProgress: Send + Sync {
    fn start(&self, total: u64, already_done: u64);
    fn ticker_done(&self, ticker: &str, rows: u64);
    fn finish(&self);
}

/// No progress display (workers, tests).
#[derive(Debug, Clone, Copy)]
pub struct NoProgress;

impl EtlProgress for NoProgress {
    fn start(&self, _: u64, _: u64) {}
    fn ticker_done(&self, _: &str, _: u64) {}
    fn finish(&self) {}
}

/// What `etl bars` was asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BarsParams {
    pub tickers: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EtlSummary {
    pub run_id: i64,
    pub resumed: bool,
    pub tickers: usize,
    /// Tickers finished by an earlier, interrupted attempt of this run.
    pub skipped_done: usize,
    /// Requests made by this attempt (a resumed run also counts earlier attempts in `etl_runs`).
    pub requests: i64,
    /// Seconds spent fetching and storing, before the quality report.
    pub fetch_secs: f64,
    pub rows_upserted: i64,
    pub failed: Vec<(String, String)>,
    pub findings: usize,
    pub report_key: Option<String>,
    pub elapsed_secs: f64,
}

/// Settings for a collection run.
#[derive(Debug, Clone)]
pub struct EtlOptions {
    /// Tickers fetched at once; the rate limiter decides the pace, this only hides latency.
    pub concurrency: usize,
    /// A run whose owner has not heartbeat this long is taken over.
    pub stale_after: Duration,
    pub heartbeat: Duration,
}

impl Default for EtlOptions {
    fn default() -> Self {
        EtlOptions { concurrency: 8, stale_after: Duration::from_secs(60), heartbeat: Duration::from_secs(2) }
    }
}

/// The collector: a KIS client, the database and object storage.
#[derive(Clone)]
pub struct Etl {
    pub db: Db,
    pub objects: Objects,
    pub client: KisClient,
    pub options: EtlOptions,
    /// `host:pid:random`, so a restart on the same host can tell a dead owner at once.
    owner: String,
}

impl std::fmt::Debug for Etl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etl").field("owner", &self.owner).field("client", &self.client).finish_non_exhaustive()
    }
}

/// The last session whose bars are final: today after 16:00 KST, else the day before.
#[must_use]
pub fn last_closed_day(now_utc: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    let kst = now_utc + chrono::Duration::hours(9);
    let d = kst.date_naive();
    if kst.hour() >= 16 { d } else { d.pred_opt().unwrap_or(d) }
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

/// Whether `owner` names a process on this host that no longer runs. A killed process whose
/// parent died with it stays a zombie until something reaps it, so `Z` counts as dead.
fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some(h), Some(pid)) = (parts.next(), parts.next()) else { return false };
    if h != host() || pid.parse::<u32>().is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) S …`: the state follows the last parenthesis (comm may contain one).
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|c| matches!(c, 'Z' | 'X')),
    }
}

impl Etl {
    #[must_use]
    pub fn new(db: Db, objects: Objects, client: KisClient, options: EtlOptions) -> Etl {
        let owner = format!("{}:{}:{}", host(), std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Etl { db, objects, client, options, owner }
    }

    async fn start_run(&self, kind: &str, params: &str) -> Result<EtlStart, EtlError> {
        match self.db.start_etl_run(kind, params, &self.owner, self.options.stale_after.as_millis() as i64).await {
            Err(DbError::Conflict(_)) => {
                // A live-looking run whose owner was on this host and is gone: take it over now
                // instead of waiting out the heartbeat.
                let runs = self.db.etl_runs(50).await?;
                let dead = runs.iter().any(|r| {
                    r.kind == kind && r.params == params && r.state == etl_state::RUNNING && owner_is_dead(&r.owner)
                });
                if dead {
                    return Ok(self.db.start_etl_run(kind, params, &self.owner, 0).await?);
                }
                Err(EtlError::Input(format!(
                    "an {kind} run with the same parameters is already running in another process; wait for it or stop it"
                )))
            }
            other => Ok(other?),
        }
    }

    /// Fetches daily bars for `params.tickers` between `from` and `to`, only the days not yet
    /// covered; idempotent.
    ///
    /// # Errors
    /// Database or storage failures that stop the whole run. A ticker that fails is reported in
    /// [`EtlSummary::failed`] and the rest go on.
    pub async fn bars(&self, params: &BarsParams, progress: Arc<dyn EtlProgress>) -> Result<EtlSummary, EtlError> {
        let started = std::time::Instant::now();
        if params.from > params.to {
            return Err(EtlError::Input(format!("--from {} is after --to {}", params.from, params.to)));
        }
        let mut tickers: Vec<String> = params.tickers.clone();
        tickers.sort();
        tickers.dedup();
        let params_json = serde_json::to_string(&BarsParams { tickers: tickers.clone(), ..params.clone() })
            .map_err(|e| EtlError::Input(e.to_string()))?;
        let start = self.start_run("bars", &params_json).await?;
        let run = start.run().clone();
        let done: BTreeSet<String> =
            run.checkpoint.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let resumed = matches!(start, EtlStart::Resumed(_));
        if resumed {
            tracing::info!(run = run.id, done = done.len(), "resuming an interrupted ETL run");
        }
        let todo: Vec<String> = tickers.iter().filter(|t| !done.contains(*t)).cloned().collect();
        progress.start(tickers.len() as u64, done.len() as u64);
        let coverage = Arc::new(self.db.bar_coverage().await?);
        let shared = Arc::new(Shared {
            queue: Mutex::new(todo.into_iter().rev().collect()),
            done: Mutex::new(done.clone()),
            failed: Mutex::new(Vec::new()),
            base: (run.requests, run.rows_upserted),
            requests: AtomicI64::new(0),
            rows: AtomicI64::new(0),
            lost: std::sync::atomic::AtomicBool::new(false),
            earliest: Mutex::new(None),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let heart = tokio::spawn(heartbeat(
            self.db.clone(),
            run.id,
            self.owner.clone(),
            shared.clone(),
            self.options.heartbeat,
            stop_rx,
        ));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.options.concurrency.max(1) {
            let (etl, shared, coverage, progress, p) =
                (self.clone(), shared.clone(), coverage.clone(), progress.clone(), params.clone());
            workers.spawn(async move {
                loop {
                    if shared.lost.load(Ordering::Relaxed) {
                        return Ok::<(), EtlError>(());
                    }
                    let Some(ticker) = shared.queue.lock().ok().and_then(|mut q| q.pop()) else { return Ok(()) };
                    let cov = coverage.get(&ticker).copied();
                    match etl.ticker_bars(&ticker, p.from, p.to, cov, &shared).await {
                        Ok(rows) => {
                            if let Ok(mut d) = shared.done.lock() {
                                d.insert(ticker.clone());
                            }
                            progress.ticker_done(&ticker, rows);
                        }
                        Err(EtlError::Kis(e)) => {
                            tracing::warn!(ticker, error = %e, "ticker failed; continuing with the others");
                            if let Ok(mut f) = shared.failed.lock() {
                                f.push((ticker.clone(), e.to_string()));
                            }
                            progress.ticker_done(&ticker, 0);
                        }
                        Err(e) => return Err(e),
                    }
                }
            });
        }
        let mut fatal = None;
        while let Some(r) = workers.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    fatal.get_or_insert(e);
                    workers.abort_all();
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    fatal.get_or_insert(EtlError::Input(format!("collector task failed: {e}")));
                }
            }
        }
        let fetch_secs = started.elapsed().as_secs_f64();
        let _ = stop_tx.send(true);
        let _ = heart.await;
        progress.finish();
        if shared.lost.load(Ordering::Relaxed) {
            return Err(EtlError::LostOwnership);
        }
        let (requests, rows) = (shared.requests.load(Ordering::Relaxed), shared.rows.load(Ordering::Relaxed));
        let (total_requests, total_rows) = shared.totals();
        let failed = shared.failed.lock().map(|f| f.clone()).unwrap_or_default();
        if let Some(e) = fatal {
            let _ = self
                .db
                .finish_etl_run(
                    run.id,
                    &self.owner,
                    etl_state::FAILED,
                    total_requests,
                    total_rows,
                    0,
                    None,
                    Some(&e.to_string()),
                )
                .await;
            return Err(e);
        }
        self.save_checkpoint(run.id, &shared).await?;
        // The report covers the days this run (with earlier attempts) fetched, plus two weeks
        // before them so gaps and jumps at the seam show; a run that fetched nothing checks nothing.
        let earliest = shared.earliest.lock().ok().and_then(|e| *e);
        let check_from = match (resumed, earliest) {
            (true, _) => params.from,
            (false, Some(d)) => (d - chrono::Days::new(14)).max(params.from),
            (false, None) => params.to + chrono::Days::new(1),
        };
        let bars = if check_from > params.to {
            Vec::new()
        } else {
            self.db.bars_between(&tickers, day_number(check_from), day_number(params.to)).await?
        };
        let markets: HashMap<String, haechi_core::Market> = self
            .db
            .instruments(None)
            .await?
            .into_iter()
            .filter_map(|i| Some((i.ticker, i.market.parse().ok()?)))
            .collect();
        let report = quality::check(run.id, &bars, &markets, check_from.min(params.to), params.to);
        let report_key = self.write_report(run.id, &report).await?;
        let findings = report.findings.len();
        let state = if failed.is_empty() { etl_state::SUCCEEDED } else { etl_state::FAILED };
        let error = (!failed.is_empty()).then(|| {
            format!(
                "{} tickers failed: {}",
                failed.len(),
                failed.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
            )
        });
        self.db
            .finish_etl_run(
                run.id,
                &self.owner,
                state,
                requests,
                rows,
                findings as i64,
                Some(&report_key),
                error.as_deref(),
            )
            .await?;
        if rows > 0 {
            // New bars: workers rebuild their columnar store from the next data version.
            self.db.add_data_version("kis", false, &format!("KIS daily bars, ETL run {}", run.id), rows).await?;
        }
        metrics::counter!(metrics_names::ETL_RUNS_TOTAL, "kind" => "bars", "outcome" => state).increment(1);
        Ok(EtlSummary {
            run_id: run.id,
            resumed,
            tickers: tickers.len(),
            skipped_done: done.len(),
            requests,
            fetch_secs,
            rows_upserted: rows,
            failed,
            findings,
            report_key: Some(report_key),
            elapsed_secs: started.elapsed().as_secs_f64(),
        })
    }

    /// Stock information and financial statements are real-environment TRs at KIS.
    fn require_real(&self, what: &str) -> Result<(), EtlError> {
        if self.client.env() == haechi_kis::KisEnv::Mock {
            return Err(EtlError::Input(format!(
                "etl {what} needs KIS's real environment (HAECHI_KIS_ENV=real): KIS does not offer these TRs on the mock environment; read-only quotations with real keys do not trade"
            )));
        }
        Ok(())
    }

    async fn save_checkpoint(&self, id: i64, shared: &Shared) -> Result<(), EtlError> {
        let cp = shared.checkpoint();
        if !self
            .db
            .etl_checkpoint(
                id,
                &self.owner,
                &cp,
                shared.requests.load(Ordering::Relaxed),
                shared.rows.load(Ordering::Relaxed),
            )
            .await?
        {
            return Err(EtlError::LostOwnership);
        }
        Ok(())
    }

    /// One ticker: the days before its coverage, then the days after it.
    async fn ticker_bars(
        &self,
        ticker: &str,
        from: NaiveDate,
        to: NaiveDate,
        cov: Option<(i32, i32)>,
        shared: &Shared,
    ) -> Result<u64, EtlError> {
        let cov = cov.and_then(|(a, b)| Some((day_from_number(a)?, day_from_number(b)?)));
        let mut rows_total = 0u64;
        let mut known = cov;
        // Older side first: its pages extend the coverage contiguously downwards.
        let lower = match known {
            None => Some((from, to)),
            Some((first, _)) if from < first => first.pred_opt().map(|d| (from, d)),
            _ => None,
        };
        if let Some((lo, hi)) = lower {
            note_range(shared, lo);
            let top = known.map_or(hi, |(_, last)| last);
            let mut pager = self.client.history(ticker, lo, hi);
            while pager.remaining().is_some() {
                let page = pager.next_page().await;
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let Some(page) = page? else { break };
                let rows = to_rows(ticker, &page.bars, lo, hi);
                // Everything from the page's oldest bar (or `lo`, on the last page) upward is stored.
                let bottom = match pager.remaining() {
                    None => lo,
                    Some(_) => page.bars.iter().map(|b| b.date).min().unwrap_or(lo),
                };
                self.db.store_bar_page(ticker, &rows, (day_number(bottom), day_number(top))).await?;
                note_rows(shared, rows.len());
                rows_total += rows.len() as u64;
                known = Some((bottom, top));
            }
        }
        // Newer side: pages arrive newest first, so coverage moves only when the gap is closed.
        if let Some((first, last)) = known
            && to > last
            && let Some(lo) = last.succ_opt()
        {
            note_range(shared, lo);
            let mut pager = self.client.history(ticker, lo, to);
            let mut pages = Vec::new();
            while pager.remaining().is_some() {
                let page = pager.next_page().await;
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let Some(page) = page? else { break };
                pages.push(to_rows(ticker, &page.bars, lo, to));
            }
            let rows: Vec<BarRow> = pages.into_iter().flatten().collect();
            self.db.store_bar_page(ticker, &rows, (day_number(first), day_number(to))).await?;
            note_rows(shared, rows.len());
            rows_total += rows.len() as u64;
        }
        Ok(rows_total)
    }

    async fn write_report(&self, run_id: i64, report: &QualityReport) -> Result<String, EtlError> {
        let key = format!("etl/{run_id}/quality.json");
        let body = serde_json::to_vec_pretty(report).map_err(|e| EtlError::Objects(e.to_string()))?;
        self.objects.put(&key, Bytes::from(body)).await.map_err(|e| EtlError::Objects(e.to_string()))?;
        for (check, n) in &report.counts {
            metrics::counter!(metrics_names::ETL_QUALITY_FINDINGS_TOTAL, "check" => check.clone()).increment(*n as u64);
        }
        Ok(key)
    }

    /// Stock information for `tickers` into `instruments` (KIS's real environment only).
    ///
    /// # Errors
    /// Database failures; per-ticker KIS failures are listed in the summary.
    pub async fn instruments(
        &self,
        tickers: &[String],
        progress: Arc<dyn EtlProgress>,
    ) -> Result<EtlSummary, EtlError> {
        let started = std::time::Instant::now();
        self.require_real("instruments")?;
        let run = self.start_run("instruments", &serde_json::json!(tickers).to_string()).await?.run().clone();
        progress.start(tickers.len() as u64, 0);
        let mut failed = Vec::new();
        let mut rows = Vec::new();
        for t in tickers {
            match self.client.stock_info(t).await {
                Ok(info) => {
                    let market = info.market().unwrap_or("KOSPI");
                    let sector = if info.sector[0].is_empty() { info.industry.clone() } else { info.sector[0].clone() };
                    rows.push(haechi_db::InstrumentRow {
                        ticker: t.clone(),
                        name: info.name.clone(),
                        market: market.to_owned(),
                        sector,
                        updated_at: haechi_kis::now_ms(),
                    });
                }
                Err(e) => failed.push((t.clone(), e.to_string())),
            }
            progress.ticker_done(t, 1);
        }
        let n = self.db.upsert_instruments(&rows).await?;
        metrics::counter!(metrics_names::ETL_ROWS_UPSERTED_TOTAL, "table" => "instruments").increment(n);
        progress.finish();
        let state = if failed.is_empty() { etl_state::SUCCEEDED } else { etl_state::FAILED };
        self.db.finish_etl_run(run.id, &self.owner, state, tickers.len() as i64, n as i64, 0, None, None).await?;
        Ok(EtlSummary {
            run_id: run.id,
            tickers: tickers.len(),
            requests: tickers.len() as i64,
            rows_upserted: n as i64,
            failed,
            elapsed_secs: started.elapsed().as_secs_f64(),
            ..EtlSummary::default()
        })
    }

    /// Annual and quarterly statements for `tickers` into `financials` (real environment only).
    ///
    /// # Errors
    /// Database failures; per-ticker KIS failures are listed in the summary.
    pub async fn financials(&self, tickers: &[String], progress: Arc<dyn EtlProgress>) -> Result<EtlSummary, EtlError> {
        let started = std::time::Instant::now();
        self.require_real("financials")?;
        let run = self.start_run("financials", &serde_json::json!(tickers).to_string()).await?.run().clone();
        progress.start(tickers.len() as u64, 0);
        let mut failed = Vec::new();
        let mut total = 0u64;
        for t in tickers {
            let mut rows = Vec::new();
            let mut err = None;
            for (period, kind) in [(FinancePeriod::Annual, "Y"), (FinancePeriod::Quarterly, "Q")] {
                match self.client.financials(t, period).await {
                    Ok(list) => rows.extend(list.into_iter().map(|f| haechi_db::FinancialRow {
                        ticker: t.clone(),
                        period: f.period,
                        kind: kind.to_owned(),
                        revenue: f.revenue,
                        operating_profit: f.operating_profit,
                        net_income: f.net_income,
                        total_assets: f.total_assets,
                        total_liabilities: f.total_liabilities,
                        total_equity: f.total_equity,
                        revenue_growth: f.revenue_growth,
                        operating_profit_growth: f.operating_profit_growth,
                        net_income_growth: f.net_income_growth,
                        roe: f.roe,
                        eps: f.eps,
                        bps: f.bps,
                        debt_ratio: f.debt_ratio,
                        updated_at: haechi_kis::now_ms(),
                    })),
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                }
            }
            match err {
                Some(e) => failed.push((t.clone(), e)),
                None => total += self.db.upsert_financials(&rows).await?,
            }
            progress.ticker_done(t, rows.len() as u64);
        }
        metrics::counter!(metrics_names::ETL_ROWS_UPSERTED_TOTAL, "table" => "financials").increment(total);
        progress.finish();
        let state = if failed.is_empty() { etl_state::SUCCEEDED } else { etl_state::FAILED };
        self.db
            .finish_etl_run(run.id, &self.owner, state, (tickers.len() * 6) as i64, total as i64, 0, None, None)
            .await?;
        Ok(EtlSummary {
            run_id: run.id,
            tickers: tickers.len(),
            requests: (tickers.len() * 6) as i64,
            rows_upserted: total as i64,
            failed,
            elapsed_secs: started.elapsed().as_secs_f64(),
            ..EtlSummary::default()
        })
    }
}

struct Shared {
    /// Tickers still to do, popped from the end.
    queue: Mutex<Vec<String>>,
    done: Mutex<BTreeSet<String>>,
    failed: Mutex<Vec<(String, String)>>,
    /// Requests and rows of earlier attempts of a resumed run.
    base: (i64, i64),
    /// This attempt's.
    requests: AtomicI64,
    rows: AtomicI64,
    lost: std::sync::atomic::AtomicBool,
    /// The oldest day any page of this attempt asked for.
    earliest: Mutex<Option<NaiveDate>>,
}

impl Shared {
    /// Requests and rows of the whole run, every attempt.
    fn totals(&self) -> (i64, i64) {
        (self.base.0 + self.requests.load(Ordering::Relaxed), self.base.1 + self.rows.load(Ordering::Relaxed))
    }

    fn checkpoint(&self) -> String {
        self.done.lock().map(|d| serde_json::to_string(&*d).unwrap_or_default()).unwrap_or_default()
    }
}

fn note_range(shared: &Shared, lo: NaiveDate) {
    if let Ok(mut e) = shared.earliest.lock() {
        *e = Some(e.map_or(lo, |d| d.min(lo)));
    }
}

fn note_rows(shared: &Shared, n: usize) {
    shared.rows.fetch_add(n as i64, Ordering::Relaxed);
    metrics::counter!(metrics_names::ETL_ROWS_UPSERTED_TOTAL, "table" => "daily_bars").increment(n as u64);
}

fn to_rows(ticker: &str, bars: &[haechi_kis::model::PeriodBar], lo: NaiveDate, hi: NaiveDate) -> Vec<BarRow> {
    bars.iter()
        .filter(|b| b.date >= lo && b.date <= hi && !b.no_trade_yet)
        .map(|b| BarRow {
            ticker: ticker.to_owned(),
            day: day_number(b.date),
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
        })
        .collect()
}

/// Keeps the run's heartbeat and checkpoint fresh while tickers take their time.
async fn heartbeat(
    db: Db,
    id: i64,
    owner: String,
    shared: Arc<Shared>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let cp = shared.checkpoint();
        match db
            .etl_checkpoint(
                id,
                &owner,
                &cp,
                shared.requests.load(Ordering::Relaxed),
                shared.rows.load(Ordering::Relaxed),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(run = id, "another process took over this ETL run; stopping");
                shared.lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(run = id, error = %e, "ETL heartbeat failed"),
        }
    }
}
