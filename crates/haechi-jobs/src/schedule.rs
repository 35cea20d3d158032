//! Daily jobs that exactly one process runs, however many workers are up: each trading day the
//! first process to insert the `(schedule, day)` claim row runs the job; the others see the row
//! and skip. A claimant that dies stops heartbeating and the next check takes the day over.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Timelike};
use haechi_db::Db;

use crate::market::day_number;

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
                    metrics::counter!("haechi_schedule_runs_total", "schedule" => sched.name.clone(), "outcome" => state).increment(1);
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
