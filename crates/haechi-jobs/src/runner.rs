//! Executes one simulation run for the queue: claim the run, build (or reuse) the market
//! store, run the engine off the async threads while reporting progress and watching for a
//! cancel, write the report to object storage, then finish the run with its summary.
//!
//! Exactly-once completion does not depend on the queue: every write that ends a run is a
//! compare-and-set on the attempt's lease, and reports go to fixed keys, so an attempt that
//! lost its lease (its worker was presumed dead) can neither finish the run nor leave a
//! second report behind.

use crate::market::{MarketCache, MarketError};
use crate::metrics_names::{RUN_DURATION_SECONDS, RUN_WAIT_SECONDS, RUNS_TOTAL};
use bytes::Bytes;
use haechi_db::{Claim, Db, Heartbeat, Run, RunSummary, state};
use haechi_objects::Objects;
use haechi_queue::{AttemptInfo, HandlerError, Job, JobContext, JobHandler};
use haechi_sim::engine::{self, EngineError};
use haechi_sim::html;
use haechi_sim::report::{self, ReportContext};
use haechi_sim::scenario::{Format, Scenario};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tracing::Instrument as _;

/// A ticket to execute one queued simulation run: the `run` kind on the `runs` queue. Each
/// start pushes one, named after the run it created, but a worker executes whichever queued
/// run is fairest when it is free ([`Db::claim_next_run`]), so users share the workers instead
/// of queueing behind each other's backlog.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunJob {
    pub run_id: i64,
}

impl Job for RunJob {
    const KIND: &'static str = "run";
    const QUEUE: &'static str = crate::queues::RUNS;
}

/// A run changed state or progress (sent in-process, so live streams wake at once; other
/// processes see the change in the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunNotice {
    pub owner_id: i64,
    pub run_id: i64,
}

pub type RunEvents = broadcast::Sender<RunNotice>;

#[must_use]
pub fn run_events() -> RunEvents {
    broadcast::channel(1024).0
}

/// Object-store key of a run's report files.
#[must_use]
pub fn report_prefix(owner_id: i64, run_id: i64) -> String {
    format!("reports/{owner_id}/{run_id}/")
}

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// How often progress is written and a cancel looked for.
    pub progress_interval: Duration,
    /// Extra time spent per simulated session: 0 in production; demos and tests set it to
    /// watch progress, cancel a running run, or kill a worker in the middle of one.
    pub session_delay: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions { progress_interval: Duration::from_millis(250), session_delay: Duration::ZERO }
    }
}

#[derive(Debug, Clone)]
pub struct Runner {
    db: Db,
    objects: Objects,
    market: MarketCache,
    events: RunEvents,
    opts: RunnerOptions,
}

/// Sets a flag when dropped, so a blocking engine thread stops when its attempt is abandoned
/// (timeout, shutdown).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

enum Outcome {
    Done,
    Retry(String),
    Fail(String),
}

impl Runner {
    #[must_use]
    pub fn new(db: Db, objects: Objects, market: MarketCache, events: RunEvents, opts: RunnerOptions) -> Runner {
        Runner { db, objects, market, events, opts }
    }

    fn notify(&self, run: &Run) {
        // No receiver is fine: nobody is watching live.
        let _ = self.events.send(RunNotice { owner_id: run.owner_id, run_id: run.id });
    }

    /// Runs one attempt for the job `ticket`: of the run it already holds, or of the fairest
    /// queued run.
    ///
    /// # Errors
    /// [`HandlerError::Retryable`] for infrastructure failures (database, object store) on
    /// all but the last attempt; the run itself records permanent failures.
    pub async fn execute(&self, ticket: i64, attempt: AttemptInfo) -> Result<(), HandlerError> {
        let lease = uuid::Uuid::new_v4().simple().to_string();
        let run = match self.db.claim_next_run(ticket, &lease).await {
            Ok(Claim::Claimed(r)) => *r,
            Ok(Claim::Finished) => return Ok(()),
            Err(e) => return Err(HandlerError::Retryable(format!("claiming a run (job {ticket}): {e}"))),
        };
        tracing::Span::current().record("run_id", run.id);
        self.notify(&run);
        if run.attempts == 1 {
            let waited = (haechi_db::now_ms() - run.queued_at).max(0) as f64 / 1000.0;
            metrics::histogram!(RUN_WAIT_SECONDS).record(waited);
        }
        let started = Instant::now();
        let outcome = self.attempt(&run, &lease).await;
        metrics::histogram!(RUN_DURATION_SECONDS).record(started.elapsed().as_secs_f64());
        let last = attempt.attempt >= attempt.max_attempts;
        let result = match outcome {
            Outcome::Done => Ok(()),
            Outcome::Fail(reason) => {
                self.end(&run, &lease, state::FAILED, &reason).await;
                Ok(())
            }
            Outcome::Retry(reason) if last => {
                let reason = format!("gave up after {} attempts: {reason}", attempt.attempt);
                self.end(&run, &lease, state::FAILED, &reason).await;
                Ok(())
            }
            Outcome::Retry(reason) => {
                // The queue logs the failed attempt (once) with the job's span.
                metrics::counter!(RUNS_TOTAL, "outcome" => "retried").increment(1);
                Err(HandlerError::Retryable(reason))
            }
        };
        if let Ok(Some(r)) = self.db.run_by_id(run.id).await {
            self.notify(&r);
        }
        result
    }

    async fn end(&self, run: &Run, lease: &str, final_state: &'static str, reason: &str) {
        match self.db.end_run(run.id, Some(lease), final_state, reason).await {
            Ok(true) => {
                metrics::counter!(RUNS_TOTAL, "outcome" => final_state).increment(1);
                tracing::info!(run = run.id, state = final_state, %reason, "run ended");
            }
            Ok(false) => {}
            Err(e) => tracing::error!(run = run.id, error = %e, "could not record the end of a run"),
        }
    }

    // Stays whole: one attempt's life (claim, load, simulate, write, finish) shares the lease and
    // the cancel watch; the steps are commented where they happen.
    async fn attempt(&self, run: &Run, lease: &str) -> Outcome {
        let spec = match self.db.scenario_version(run.scenario_id, run.scenario_version).await {
            Ok(Some(v)) => v.spec,
            Ok(None) => return Outcome::Fail(format!("scenario version {} no longer exists", run.scenario_version)),
            Err(e) => return Outcome::Retry(format!("reading the scenario: {e}")),
        };
        let scenario = match Scenario::parse(&spec, Format::Json, "scenario") {
            Ok(s) => s,
            Err(e) => return Outcome::Fail(format!("the stored scenario is not valid: {e}")),
        };
        let market = match self.market.current(&self.db).await {
            Ok(m) => m,
            Err(MarketError::Db(e)) => return Outcome::Retry(format!("loading market data: {e}")),
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        let bound = match scenario.bind(&market.store) {
            Ok(b) => b,
            Err(e) => {
                let list: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
                return Outcome::Fail(format!("the scenario does not fit the market data: {}", list.join("; ")));
            }
        };
        match self.db.run_progress(run.id, lease, 0.05, "simulating").await {
            Ok(Heartbeat::Continue) => {}
            Ok(Heartbeat::CancelRequested) => return self.cancelled(run, lease).await,
            Ok(Heartbeat::LeaseLost) => return Outcome::Done,
            Err(e) => return Outcome::Retry(format!("recording progress: {e}")),
        }
        self.notify(run);

        // The engine is CPU-bound: it runs on a blocking thread and publishes progress
        // through atomics, which an async loop turns into database heartbeats.
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        let progress = Arc::new(AtomicU64::new(0));
        let store = market.store.clone();
        let delay = self.opts.session_delay;
        let (stop2, progress2) = (stop.clone(), progress.clone());
        let scenario2 = scenario.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let mut strategy = scenario2.strategy(&bound);
            let out = engine::run_observed(&store, &bound.universe, strategy.as_mut(), &bound.config, &mut |d, n| {
                progress2.store(((d as f64 / n as f64) * 1e6) as u64, Ordering::Relaxed);
                if !delay.is_zero() {
                    std::thread::sleep(delay * engine::OBSERVE_EVERY as u32);
                }
                !stop2.load(Ordering::Relaxed)
            });
            (out, bound)
        });
        let mut cancelled = false;
        let mut lost = false;
        let joined = loop {
            tokio::select! {
                j = &mut task => break j,
                () = tokio::time::sleep(self.opts.progress_interval) => {
                    let frac = progress.load(Ordering::Relaxed) as f64 / 1e6;
                    match self.db.run_progress(run.id, lease, 0.05 + 0.8 * frac, "simulating").await {
                        Ok(Heartbeat::Continue) => self.notify(run),
                        Ok(Heartbeat::CancelRequested) => { cancelled = true; stop.store(true, Ordering::Relaxed); }
                        Ok(Heartbeat::LeaseLost) => { lost = true; stop.store(true, Ordering::Relaxed); }
                        // A missed heartbeat is not fatal: the next one may get through.
                        Err(e) => tracing::warn!(run = run.id, error = %e, "progress not recorded"),
                    }
                }
            }
        };
        let (out, bound) = match joined {
            Ok(x) => x,
            Err(e) => return Outcome::Fail(format!("the engine crashed: {e}")),
        };
        if lost {
            return Outcome::Done;
        }
        let output = match out {
            Ok(o) => o,
            Err(EngineError::Stopped(_)) if cancelled => return self.cancelled(run, lease).await,
            Err(e) => return Outcome::Fail(format!("simulation failed: {e}")),
        };
        match self.db.run_progress(run.id, lease, 0.9, "reporting").await {
            Ok(Heartbeat::Continue) => self.notify(run),
            Ok(Heartbeat::CancelRequested) => return self.cancelled(run, lease).await,
            Ok(Heartbeat::LeaseLost) => return Outcome::Done,
            Err(e) => return Outcome::Retry(format!("recording progress: {e}")),
        }
        let store = market.store.clone();
        let synthetic = market.synthetic;
        let rendered = tokio::task::spawn_blocking(move || {
            let ctx = ReportContext {
                store: &store,
                start: bound.config.start,
                benchmark: bound.benchmark.as_ref(),
                synthetic,
                clamped_rows: 0,
                universe_size: bound.universe.len(),
            };
            let report = report::build(&scenario, output, ctx);
            let json = serde_json::to_vec(&report).map_err(|e| e.to_string())?;
            let page = html::render(&report).map_err(|e| e.to_string())?;
            Ok::<_, String>((report, json, page))
        })
        .await;
        let (report, json, page) = match rendered {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Outcome::Fail(format!("building the report: {e}")),
            Err(e) => return Outcome::Fail(format!("building the report crashed: {e}")),
        };
        let report_bytes = i64::try_from(json.len() + page.len()).unwrap_or(i64::MAX);
        let prefix = report_prefix(run.owner_id, run.id);
        if let Err(e) = self.objects.put(&format!("{prefix}report.json"), Bytes::from(json)).await {
            return Outcome::Retry(format!("storing the report: {e}"));
        }
        if let Err(e) = self.objects.put(&format!("{prefix}report.html"), Bytes::from(page)).await {
            return Outcome::Retry(format!("storing the report: {e}"));
        }
        let s = &report.summary;
        let summary = RunSummary {
            total_return: s.returns.total_return,
            cagr: s.returns.cagr,
            volatility: s.returns.annual_volatility,
            sharpe: s.returns.sharpe,
            sortino: s.returns.sortino,
            max_drawdown: s.returns.max_drawdown,
            benchmark_return: s.benchmark_total_return,
            final_equity: s.final_equity.get(),
            trade_count: i32::try_from(report.trades.len()).unwrap_or(i32::MAX),
            report_key: prefix,
            data_version: market.version,
            report_bytes,
        };
        match self.db.finish_run(run.id, lease, summary).await {
            Ok(true) => {
                metrics::counter!(RUNS_TOTAL, "outcome" => state::SUCCEEDED).increment(1);
                Outcome::Done
            }
            // Cancelled or taken over meanwhile: the other party decides the outcome.
            Ok(false) => Outcome::Done,
            Err(e) => Outcome::Retry(format!("recording the result: {e}")),
        }
    }

    async fn cancelled(&self, run: &Run, lease: &str) -> Outcome {
        self.end(run, lease, state::CANCELLED, "cancelled by the owner").await;
        Outcome::Done
    }
}

impl JobHandler for Runner {
    type Job = RunJob;

    async fn handle(&self, job: RunJob, ctx: JobContext) -> Result<(), HandlerError> {
        let span = tracing::info_span!("run", ticket = job.run_id, run_id = tracing::field::Empty);
        self.execute(job.run_id, ctx.attempt).instrument(span).await
    }

    async fn exhausted(&self, job: RunJob, ctx: JobContext) {
        self.exhausted_run(job.run_id, ctx.attempt).instrument(tracing::info_span!("run", ticket = job.run_id)).await;
    }
}

impl Runner {
    /// Marks failed the run a job held when its attempts were all used up by workers that
    /// died mid-run.
    async fn exhausted_run(&self, ticket: i64, attempt: AttemptInfo) {
        let reason = format!("gave up after {} attempts (each one's worker stopped mid-run)", attempt.attempt);
        match self.db.end_ticket(ticket, state::FAILED, &reason).await {
            Ok(Some(run_id)) => {
                metrics::counter!(RUNS_TOTAL, "outcome" => state::FAILED).increment(1);
                if let Ok(Some(r)) = self.db.run_by_id(run_id).await {
                    self.notify(&r);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not record an exhausted run"),
        }
    }
}
