//! Daily jobs that exactly one process starts, however many processes are up: each trading day
//! the first process to insert the `(schedule, day)` claim row runs the schedule's action; the
//! others see the row and skip. A claimant that dies stops heartbeating and the next check takes
//! the day over.
//!
//! The daily KIS collection's action only enqueues a `kis.daily` job on the `etl` queue
//! ([`enqueue_daily`]); a worker serving that queue executes it ([`KisDaily`]), with the queue's
//! retries, timeouts and recovery from dead workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Timelike};
use haechi_db::Db;
use haechi_queue::{HandlerError, Job, JobContext, JobHandler, Queue};
use tracing::Instrument as _;

use crate::market::day_number;
use crate::metrics_names::SCHEDULE_RUNS_TOTAL;

/// When and how often.
#[derive(Debug, Clone)]
pub struct DailySchedule {
    pub name: String,
    /// Local (KST) time after which the day's job may start: after the close and KRX's
    /// end-of-day processing.
    pub at_kst: NaiveTime,
    pub check_every: Duration,
    pub heartbeat: Duration,
    pub stale_after: Duration,
}

impl DailySchedule {
    /// KIS daily bars at 16:30 KST, checked every minute.
    #[must_use]
    pub fn kis_daily() -> DailySchedule {
        DailySchedule {
            name: "kis-daily-bars".into(),
            at_kst: NaiveTime::from_hms_opt(16, 30, 0).unwrap_or_default(),
            check_every: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            stale_after: Duration::from_secs(120),
        }
    }
}

/// Weekdays less KRX's fixed-date holidays and the year-end closing day. Lunar-calendar holidays
/// are not known here: on those days the job runs and finds no new bars.
#[must_use]
pub fn is_trading_day(day: NaiveDate) -> bool {
    !haechi_data::synth::synth_sessions(day, day).is_empty()
}

/// Runs `job` once per trading day, in at most one process, until `shutdown` turns true.
/// Returns the days this process ran.
pub async fn run_daily<F, Fut>(
    db: Db,
    sched: DailySchedule,
    job: F,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<NaiveDate>
where
    F: Fn(NaiveDate) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let owner = format!("{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut ran = Vec::new();
    loop {
        let kst = haechi_kis::utc_now() + chrono::Duration::hours(9);
        let day = kst.date_naive();
        let due =
            is_trading_day(day) && kst.time().num_seconds_from_midnight() >= sched.at_kst.num_seconds_from_midnight();
        if due {
            match db.claim_schedule(&sched.name, day_number(day), &owner, sched.stale_after.as_millis() as i64).await {
                Ok(true) => {
                    tracing::info!(schedule = %sched.name, %day, "running the daily job");
                    let beat = {
                        let (db, name, owner, every) = (db.clone(), sched.name.clone(), owner.clone(), sched.heartbeat);
                        tokio::spawn(async move {
                            loop {
                                tokio::time::sleep(every).await;
                                if !db.schedule_heartbeat(&name, day_number(day), &owner).await.unwrap_or(true) {
                                    return;
                                }
                            }
                        })
                    };
                    let outcome = job(day).await;
                    beat.abort();
                    let state = match &outcome {
                        Ok(()) => "done",
                        Err(e) => {
                            tracing::error!(schedule = %sched.name, %day, error = %e, "daily job failed");
                            "failed"
                        }
                    };
                    metrics::counter!(SCHEDULE_RUNS_TOTAL, "schedule" => sched.name.clone(), "outcome" => state)
                        .increment(1);
                    if let Err(e) = db.finish_schedule(&sched.name, day_number(day), &owner, state).await {
                        tracing::warn!(error = %e, "recording the daily job's end failed");
                    }
                    ran.push(day);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(schedule = %sched.name, error = %e, "claiming the daily job failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(sched.check_every) => {}
            _ = shutdown.changed() => return ran,
        }
        if *shutdown.borrow() {
            return ran;
        }
    }
}

/// The daily KIS job: bars for every known instrument, from where each one's coverage ends to
/// the last closed session (ten years back for instruments never collected).
pub async fn daily_bars(etl: Arc<crate::etl::Etl>) -> Result<(), String> {
    let tickers: Vec<String> =
        etl.db.instruments(None).await.map_err(|e| e.to_string())?.into_iter().map(|i| i.ticker).collect();
    if tickers.is_empty() {
        return Ok(());
    }
    let to = crate::etl::last_closed_day(haechi_kis::utc_now());
    let from = to.checked_sub_months(chrono::Months::new(120)).unwrap_or(to);
    let params = crate::etl::BarsParams { tickers, from, to };
    let s = etl.bars(&params, Arc::new(crate::etl::NoProgress)).await.map_err(|e| e.to_string())?;
    if s.failed.is_empty() { Ok(()) } else { Err(format!("{} tickers failed", s.failed.len())) }
}

/// The daily KIS collection of one trading day: the `kis.daily` kind on the `etl` queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KisDailyJob {
    /// The (KST) day the schedule fired for; the collection runs up to the last closed session.
    pub day: NaiveDate,
}

impl Job for KisDailyJob {
    const KIND: &'static str = "kis.daily";
    const QUEUE: &'static str = crate::queues::ETL;
}

/// A collection from scratch (ten years of every instrument) takes about an hour at KIS's 20
/// requests per second; the worker's default timeout is meant for runs.
const KIS_DAILY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Executes [`KisDailyJob`]s with a KIS client.
pub struct KisDaily {
    etl: Arc<crate::etl::Etl>,
}

impl std::fmt::Debug for KisDaily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KisDaily").finish_non_exhaustive()
    }
}

impl KisDaily {
    #[must_use]
    pub fn new(etl: Arc<crate::etl::Etl>) -> Arc<KisDaily> {
        Arc::new(KisDaily { etl })
    }
}

impl JobHandler for KisDaily {
    type Job = KisDailyJob;

    async fn handle(&self, job: KisDailyJob, ctx: JobContext) -> Result<(), HandlerError> {
        let work = daily_bars(self.etl.clone()).instrument(tracing::info_span!("kis_daily", day = %job.day));
        // A collection can take long; on shutdown it goes back to the queue and the next
        // attempt resumes from the per-ticker coverage already stored.
        tokio::select! {
            res = work => res.map_err(HandlerError::Retryable),
            () = ctx.stopping() => Err(HandlerError::Retryable("interrupted by shutdown".into())),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        Some(KIS_DAILY_TIMEOUT)
    }
}

/// Runs `sched` until `shutdown`, enqueueing one [`KisDailyJob`] per trading day (from
/// whichever process claims the day). Returns the days this process enqueued.
pub async fn enqueue_daily(
    db: Db,
    queue: Queue,
    sched: DailySchedule,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<NaiveDate> {
    run_daily(
        db,
        sched,
        move |day| {
            let queue = queue.clone();
            async move {
                let id = queue.enqueue(KisDailyJob { day }).await.map_err(|e| e.to_string())?;
                tracing::info!(job_id = %id, %day, "daily KIS collection enqueued");
                Ok(())
            }
        },
        shutdown,
    )
    .await
}
