//! Sweep chunks on the queue: a sweep of N points is N / [`CHUNK_POINTS`] jobs, each running its
//! points in lockstep on one core and storing each point once (the key (sweep, point) makes a
//! redelivered chunk insert nothing twice). Any number of workers, on any machine, share a
//! sweep; the chunk that stores the last point computes the best point and ends the sweep.

use crate::market::{MarketCache, MarketError};
use haechi_db::{Db, SweepPoint, state};
use haechi_queue::{HandlerError, Job, JobContext, JobHandler};
use haechi_sim::scenario::{Document, Format};
use haechi_sim::sweep::{self, Moments, PointResult, SweepOptions};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

/// Points per chunk job: enough to share a pass over the market, few enough that a killed
/// worker loses little work and many workers get a share.
pub const CHUNK_POINTS: u32 = 8;

/// One chunk of a sweep: points `first..=last`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepJob {
    pub sweep_id: i64,
    pub first: u32,
    pub last: u32,
}

impl Job for SweepJob {
    const KIND: &'static str = "sweep.chunk";
    const QUEUE: &'static str = crate::queues::SWEEPS;
}

/// The chunk jobs of a sweep of `total` points.
#[must_use]
pub fn chunks(sweep_id: i64, total: u32) -> Vec<SweepJob> {
    (0..total)
        .step_by(CHUNK_POINTS as usize)
        .map(|first| SweepJob { sweep_id, first, last: (first + CHUNK_POINTS - 1).min(total - 1) })
        .collect()
}

/// The best point of a finished sweep, stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestPoint {
    pub point: i32,
    pub params: serde_json::Value,
    pub sharpe: Option<f64>,
    pub deflated_sharpe: Option<sweep::DeflatedSharpe>,
    /// Where the best in-sample point ranks out of sample (1 = best there too).
    pub in_sample_best_oos_rank: usize,
}

/// Executes sweep chunks.
#[derive(Debug, Clone)]
pub struct SweepRunner {
    db: Db,
    market: MarketCache,
    session_delay: std::time::Duration,
}

enum Outcome {
    Done,
    Retry(String),
    Fail(String),
}

impl SweepRunner {
    /// `session_delay` slows each session down (tests and demos; zero in production), like
    /// [`crate::RunnerOptions::session_delay`].
    #[must_use]
    pub fn new(db: Db, market: MarketCache, session_delay: std::time::Duration) -> SweepRunner {
        SweepRunner { db, market, session_delay }
    }

    async fn execute(&self, job: &SweepJob, ctx: &JobContext) -> Result<(), HandlerError> {
        let last = ctx.attempt.attempt >= ctx.attempt.max_attempts;
        match self.attempt(job, ctx).await {
            Outcome::Done => Ok(()),
            Outcome::Fail(why) => {
                self.fail(job.sweep_id, &why).await;
                Ok(())
            }
            Outcome::Retry(why) if last => {
                self.fail(job.sweep_id, &format!("gave up after {} attempts: {why}", ctx.attempt.attempt)).await;
                Ok(())
            }
            Outcome::Retry(why) => Err(HandlerError::Retryable(why)),
        }
    }

    async fn fail(&self, sweep_id: i64, why: &str) {
        match self.db.end_sweep(sweep_id, state::FAILED, None, Some(why.to_owned())).await {
            Ok(true) => tracing::info!(sweep = sweep_id, reason = %why, "sweep failed"),
            Ok(false) => {}
            Err(e) => tracing::error!(sweep = sweep_id, error = %e, "could not record a failed sweep"),
        }
    }

    // Stays whole: one chunk's life (read the sweep, rebuild its points, run, store, finish).
    async fn attempt(&self, job: &SweepJob, ctx: &JobContext) -> Outcome {
        let retry = |what: &str, e: &dyn std::fmt::Display| Outcome::Retry(format!("{what}: {e}"));
        let sw = match self.db.sweep_by_id(job.sweep_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Done,
            Err(e) => return retry("reading the sweep", &e),
        };
        if sw.state != state::QUEUED && sw.state != state::RUNNING {
            return Outcome::Done;
        }
        if let Err(e) = self.db.start_sweep(sw.id).await {
            return retry("starting the sweep", &e);
        }
        let (first, last) = (job.first as i32, job.last as i32);
        let stored = match self.db.stored_sweep_points(sw.id, first, last).await {
            Ok(v) => v,
            Err(e) => return retry("reading stored points", &e),
        };
        let todo: Vec<usize> =
            (job.first..=job.last).filter(|i| !stored.contains(&(*i as i32))).map(|i| i as usize).collect();
        if !todo.is_empty() {
            let spec = match self.db.scenario_version(sw.scenario_id, sw.scenario_version).await {
                Ok(Some(v)) => v.spec,
                Ok(None) => return Outcome::Fail(format!("scenario version {} no longer exists", sw.scenario_version)),
                Err(e) => return retry("reading the scenario", &e),
            };
            let doc = match Document::parse(&spec, Format::Json, "scenario") {
                Ok(d) => d,
                Err(e) => return Outcome::Fail(format!("the stored scenario is not valid: {e}")),
            };
            let specs: Vec<String> = match serde_json::from_str(&sw.grid) {
                Ok(g) => g,
                Err(e) => return Outcome::Fail(format!("the stored grid is not valid: {e}")),
            };
            let mut axes = Vec::with_capacity(specs.len());
            for g in &specs {
                match sweep::parse_axis(g) {
                    Ok(a) => axes.push(a),
                    Err(e) => return Outcome::Fail(e),
                }
            }
            let plan = match sweep::plan_points(&doc, axes, &todo) {
                Ok(p) => p,
                Err(e) => return Outcome::Fail(e.to_string()),
            };
            let market = match self.market.current(&self.db).await {
                Ok(m) => m,
                Err(MarketError::Db(e)) => return retry("loading market data", &e),
                Err(e) => return Outcome::Fail(e.to_string()),
            };
            // Points computed on different data would not be comparable.
            if market.version != sw.data_version {
                return Outcome::Fail(format!(
                    "the market data changed during the sweep (version {} to {}); start the sweep again",
                    sw.data_version, market.version
                ));
            }
            let opts = SweepOptions {
                threads: 1,
                batch: todo.len(),
                in_sample: sw.in_sample,
                synthetic: market.synthetic,
                clamped_rows: 0,
                session_delay: self.session_delay,
            };
            let store = market.store.clone();
            let results =
                match tokio::task::spawn_blocking(move || sweep::run(&store, &plan, opts).map(|r| (plan, r))).await {
                    Ok(Ok((plan, results))) => {
                        // Which delivery stored the point: a chunk taken over after a worker died
                        // shows attempt 2.
                        let by = format!("{}#{}", ctx.job_id, ctx.attempt.attempt);
                        results.into_iter().map(|r| row(sw.id, &plan, &todo, r, &by)).collect()
                    }
                    Ok(Err(e)) => return Outcome::Fail(format!("the scenario does not fit the market data: {e}")),
                    Err(e) => return Outcome::Retry(format!("the sweep thread failed: {e}")),
                };
            if let Err(e) = self.db.insert_sweep_points(sw.id, results).await {
                return retry("storing points", &e);
            }
        }
        let done = match self.db.insert_sweep_points(sw.id, Vec::new()).await {
            Ok(n) => n,
            Err(e) => return retry("counting points", &e),
        };
        if done >= u64::try_from(sw.points_total).unwrap_or(u64::MAX) {
            return self.finish(sw.id).await;
        }
        Outcome::Done
    }

    async fn finish(&self, sweep_id: i64) -> Outcome {
        let points = match self.db.all_sweep_points(sweep_id).await {
            Ok(p) => p,
            Err(e) => return Outcome::Retry(format!("reading the points: {e}")),
        };
        let best = best_point(&points).and_then(|b| serde_json::to_string(&b).ok());
        match self.db.end_sweep(sweep_id, state::SUCCEEDED, best, None).await {
            Ok(true) => {
                tracing::info!(sweep = sweep_id, points = points.len(), "sweep succeeded");
                Outcome::Done
            }
            Ok(false) => Outcome::Done,
            Err(e) => Outcome::Retry(format!("ending the sweep: {e}")),
        }
    }
}

/// The best point by Sharpe ratio, its deflated Sharpe ratio over every point tried, and where
/// the best in-sample point ranks out of sample.
#[must_use]
pub fn best_point(points: &[SweepPoint]) -> Option<BestPoint> {
    let key = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    let best = points.iter().max_by(|a, b| key(a.sharpe).total_cmp(&key(b.sharpe)).then(b.point.cmp(&a.point)))?;
    let trials: Vec<f64> = points.iter().map(|p| p.daily_sharpe).collect();
    let moments =
        Moments { sharpe: best.daily_sharpe, skew: best.skew, kurtosis: best.kurtosis, n: best.returns as usize };
    let is_best = points.iter().max_by(|a, b| key(a.is_sharpe).total_cmp(&key(b.is_sharpe)))?;
    let rank = 1 + points.iter().filter(|p| key(p.oos_sharpe) > key(is_best.oos_sharpe)).count();
    Some(BestPoint {
        point: best.point,
        params: serde_json::from_str(&best.params).unwrap_or_default(),
        sharpe: best.sharpe,
        deflated_sharpe: sweep::deflated_sharpe(moments, &trials),
        in_sample_best_oos_rank: rank,
    })
}

fn row(sweep_id: i64, plan: &sweep::Plan, indices: &[usize], r: PointResult, job: &str) -> SweepPoint {
    let s = &r.summary;
    let params: Vec<serde_json::Value> = plan.points[r.index].iter().map(|(p, v)| serde_json::json!([p, v])).collect();
    SweepPoint {
        sweep_id,
        point: indices[r.index] as i32,
        params: serde_json::Value::Array(params).to_string(),
        total_return: s.returns.total_return,
        cagr: s.returns.cagr,
        sharpe: s.returns.sharpe,
        sortino: s.returns.sortino,
        max_drawdown: s.returns.max_drawdown,
        annual_volatility: s.returns.annual_volatility,
        final_equity: s.final_equity.get(),
        trade_count: i32::try_from(s.trade_count).unwrap_or(i32::MAX),
        win_rate: s.trades.win_rate,
        turnover: s.turnover,
        is_return: r.in_sample.total_return,
        is_sharpe: r.in_sample.sharpe,
        oos_return: r.out_of_sample.total_return,
        oos_sharpe: r.out_of_sample.sharpe,
        daily_sharpe: r.moments.sharpe,
        skew: r.moments.skew,
        kurtosis: r.moments.kurtosis,
        returns: i32::try_from(r.moments.n).unwrap_or(i32::MAX),
        fills_digest: r.fills_digest,
        job: job.chars().take(64).collect(),
        created_at: 0,
    }
}

impl JobHandler for SweepRunner {
    type Job = SweepJob;

    async fn handle(&self, job: SweepJob, ctx: JobContext) -> Result<(), HandlerError> {
        let span = tracing::info_span!("sweep", sweep = job.sweep_id, first = job.first, last = job.last);
        self.execute(&job, &ctx).instrument(span).await
    }

    async fn exhausted(&self, job: SweepJob, ctx: JobContext) {
        let why = format!("gave up after {} attempts (each one's worker stopped mid-chunk)", ctx.attempt.attempt);
        self.fail(job.sweep_id, &why).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_point_once() {
        let c = chunks(7, 20);
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].first, c[0].last, c[2].first, c[2].last), (0, 7, 16, 19));
        let covered: Vec<u32> = c.iter().flat_map(|j| j.first..=j.last).collect();
        assert_eq!(covered, (0..20).collect::<Vec<_>>());
        assert_eq!(chunks(7, 8).len(), 1);
    }
}
