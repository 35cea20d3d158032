//! Simulation runs: started (queued for a worker), read, listed, compared, cancelled, and
//! their reports read from object storage.
//!
//! A run is visible to its owner and to whoever may read its scenario; only the owner starts
//! or cancels runs.

use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult, FieldProblem};
use crate::paging::{PageOf, Paging};
use crate::principal::Principal;
use crate::rbac::Permission;
use crate::scenarios;
use crate::{App, RunId, RunState, ScenarioId, metrics_names};
pub use haechi_db::Run;
use haechi_db::{NewRun, RunQuery};
use haechi_jobs::RunJob;
use serde_json::json;

/// Most runs in one comparison.
pub const MAX_COMPARE: usize = 5;

/// A run's state as the enum (rows store its name).
#[must_use]
pub fn state_of(run: &Run) -> Option<RunState> {
    RunState::parse(&run.state)
}

/// The run if the caller may read it.
///
/// # Errors
/// [`AppError::NotFound`] when it does not exist or the caller may not see it.
pub async fn get(app: &App, p: &Principal, id: RunId) -> AppResult<Run> {
    p.require(Permission::Simulate)?;
    let run = app.db().run_by_id(id.get()).await?.ok_or(AppError::NotFound)?;
    if run.owner_id == p.id().get() {
        return Ok(run);
    }
    scenarios::readable(app, p, ScenarioId(run.scenario_id), false).await.map(|_| run)
}

/// Queues a run of the caller's scenario at `version` (default: the current one), pinned to
/// the current market data version: the one path of the API, the portal and the demo.
///
/// # Errors
/// [`AppError::Invalid`] at `version` for a version that does not exist;
/// [`AppError::Conflict`] when no market data is loaded; [`AppError::Internal`] when the
/// queue refuses the job (the run is then marked failed, never left queued).
pub async fn start(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    scenario: ScenarioId,
    version: Option<i32>,
) -> AppResult<Run> {
    let s = scenarios::owned(app, p, scenario, false).await?;
    let version = version.unwrap_or(s.current_version);
    if app.db().scenario_version(s.id, version).await?.is_none() {
        return Err(AppError::invalid("version", format!("version {version} does not exist")));
    }
    let Some(data) = app.db().data_version().await? else {
        return Err(AppError::Conflict("no market data is loaded yet (run `haechi data load`)".into()));
    };
    // A run stores a report: refused once the owner's storage is full.
    scenarios::ensure_storage(app, p, 0).await?;
    let new = NewRun { owner_id: p.id().get(), scenario_id: s.id, scenario_version: version, data_version: data.id };
    let run = app.db().create_run(new).await?;
    // Counted after the insert, this run included: requests racing each other can only
    // refuse too many, never let one more through than the quota.
    let limit = app.settings().max_active_runs;
    if app.db().count_active_runs(p.id().get()).await? > u64::from(limit) {
        app.db().end_run(run.id, None, RunState::Cancelled.as_str(), "over the quota of active runs").await?;
        return Err(AppError::Quota(format!(
            "at most {limit} runs may be queued or running at once; wait for one to finish or cancel one"
        )));
    }
    if let Err(e) = app.queue().enqueue(RunJob { run_id: run.id }).await {
        // The run must not sit "queued" forever with no job behind it.
        let _ = app.db().end_run(run.id, None, RunState::Failed.as_str(), "the job queue is unavailable").await;
        return Err(AppError::internal("enqueueing a run", e));
    }
    metrics::counter!(metrics_names::RUNS_ENQUEUED).increment(1);
    app.notify_run(p.id(), RunId(run.id));
    let detail = json!({"run": run.id, "scenario": s.id, "version": version});
    record(app, meta, "run_created", Some(p.id()), Some(p.id()), detail).await;
    Ok(run)
}

/// Queues again every run left `running` by a process that died while it held it (under the
/// job that held it, so that job takes it back; the runner's lease makes a late second
/// delivery harmless), and pushes a job for every queued run that has none (a queue emptied
/// or lost while runs waited): a spare job finds nothing to do, a missing one would leave a
/// run queued for good. Only for the embedded queue, at start: there the starting process is
/// the only worker, so nothing else can be running anything.
///
/// # Errors
/// The database's, or the queue's.
pub async fn recover_orphaned(app: &App) -> AppResult<Vec<RunId>> {
    let requeue = |e| AppError::internal("re-queueing a run", e);
    let mut recovered = Vec::new();
    for run in app.db().running_runs().await? {
        app.queue().enqueue(RunJob { run_id: run.ticket.unwrap_or(run.id) }).await.map_err(requeue)?;
        tracing::info!(run_id = run.id, "a run left running by a stopped process was queued again");
        recovered.push(RunId(run.id));
    }
    let waiting = app.db().count_waiting_runs().await?;
    let pending = app.queue().stats(haechi_jobs::queues::RUNS).await.map_err(requeue)?.pending;
    if waiting > pending {
        let missing = waiting - pending;
        let page = RunQuery {
            state: Some(RunState::Queued.as_str().into()),
            page: 0,
            per_page: missing,
            ..Default::default()
        };
        for run in app.db().list_runs(&page).await?.items {
            app.queue().enqueue(RunJob { run_id: run.id }).await.map_err(requeue)?;
        }
        tracing::info!(missing, "queued runs without a job got one");
    }
    Ok(recovered)
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// A state name, checked here.
    pub state: Option<String>,
    /// Only this scenario's runs (including the owner's runs of a scenario shared with the caller).
    pub scenario: Option<ScenarioId>,
}

/// The caller's runs, or a readable scenario's runs, newest first.
///
/// # Errors
/// [`AppError::Invalid`] at `state` for an unknown state; [`AppError::NotFound`] for a
/// scenario the caller may not read.
pub async fn list(app: &App, p: &Principal, filter: RunFilter, paging: Paging) -> AppResult<PageOf<Run>> {
    p.require(Permission::Simulate)?;
    if let Some(s) = &filter.state
        && RunState::parse(s).is_none()
    {
        let names: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(AppError::invalid("state", format!("must be one of {}", names.join(", "))));
    }
    let owner_id = match filter.scenario {
        // Readers of a shared scenario see its runs; everyone else only their own.
        Some(sid) => scenarios::readable(app, p, sid, true).await.map(|_| None)?,
        None => Some(p.id().get()),
    };
    let query = RunQuery {
        owner_id,
        scenario_id: filter.scenario.map(ScenarioId::get),
        state: filter.state,
        page: paging.page,
        per_page: paging.per_page,
    };
    let res = app.db().list_runs(&query).await?;
    Ok(PageOf { items: res.items, total: res.total, page: paging.page, per_page: paging.per_page })
}

/// Cancels one of the caller's runs: a queued run ends at once, a running one within a
/// moment (its worker checks between steps).
///
/// # Errors
/// [`AppError::NotFound`] for a run that is not the caller's; [`AppError::Conflict`] for a
/// run that already ended.
pub async fn cancel(app: &App, meta: &RequestMeta, p: &Principal, id: RunId) -> AppResult<Run> {
    p.require(Permission::Simulate)?;
    let run = app.db().run_by_id(id.get()).await?.filter(|r| r.owner_id == p.id().get()).ok_or(AppError::NotFound)?;
    if state_of(&run).is_some_and(RunState::is_final) {
        return Err(AppError::Conflict(format!("the run already ended ({})", run.state)));
    }
    let run = app.db().request_cancel(id.get()).await?.ok_or(AppError::NotFound)?;
    app.notify_run(p.id(), id);
    record(app, meta, "run_cancelled", Some(p.id()), Some(p.id()), json!({"run": id.get()})).await;
    Ok(run)
}

/// Deletes one of the caller's finished runs with its report (frees what it took from the
/// stored-bytes quota).
///
/// # Errors
/// [`AppError::NotFound`] for a run that is not the caller's; [`AppError::Conflict`] for a run
/// still queued or running (cancel it first).
pub async fn delete(app: &App, meta: &RequestMeta, p: &Principal, id: RunId) -> AppResult<()> {
    p.require(Permission::Simulate)?;
    let run = app.db().run_by_id(id.get()).await?.filter(|r| r.owner_id == p.id().get()).ok_or(AppError::NotFound)?;
    if !app.db().delete_finished_run(run.id).await? {
        return Err(AppError::Conflict(format!("the run is still {}; cancel it first", run.state)));
    }
    if let Some(prefix) = run.report_key.as_deref()
        && let Err(e) = app.objects().delete_prefix(prefix).await
    {
        // The row is gone, so the quota is freed; an object left behind is only garbage.
        tracing::warn!(%prefix, error = %e, "a deleted run's report could not be removed");
    }
    app.notify_run(p.id(), id);
    record(app, meta, "run_deleted", Some(p.id()), Some(p.id()), json!({"run": id.get()})).await;
    Ok(())
}

/// The files a finished run leaves in object storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFile {
    /// `report.json`: the report document (docs/report.md).
    Json,
    /// `report.html`: the self-contained page.
    Html,
}

impl ReportFile {
    /// # Errors
    /// [`AppError::Invalid`] at `format` for anything but `json` or `html`.
    pub fn parse(format: Option<&str>) -> AppResult<ReportFile> {
        match format {
            None | Some("json") => Ok(ReportFile::Json),
            Some("html") => Ok(ReportFile::Html),
            Some(_) => Err(AppError::invalid("format", "must be json or html")),
        }
    }

    #[must_use]
    pub const fn file_name(self) -> &'static str {
        match self {
            ReportFile::Json => "report.json",
            ReportFile::Html => "report.html",
        }
    }
}

/// The object key of a finished run's report file, if it has one.
#[must_use]
pub fn report_key(run: &Run, file: &str) -> Option<String> {
    let prefix = run.report_key.as_deref().filter(|_| state_of(run) == Some(RunState::Succeeded))?;
    Some(format!("{prefix}{file}"))
}

/// A finished run's report file.
///
/// # Errors
/// [`AppError::Conflict`] when the run has no report (yet).
pub async fn report(app: &App, p: &Principal, id: RunId, file: ReportFile) -> AppResult<Vec<u8>> {
    let run = get(app, p, id).await?;
    let Some(key) = report_key(&run, file.file_name()) else {
        return Err(AppError::Conflict(format!("the run has no report ({})", run.state)));
    };
    Ok(app.objects().get(&key).await?.to_vec())
}

/// Up to [`MAX_COMPARE`] runs side by side, each with its scenario's name. `ids` is the
/// comma-separated list a client sent.
///
/// # Errors
/// [`AppError::Invalid`] at `ids[i]` for something that is not an id, or at `ids` for too
/// few or too many; [`AppError::NotFound`] for a run the caller may not read.
pub async fn compare(app: &App, p: &Principal, ids: &str) -> AppResult<Vec<(String, Run)>> {
    p.require(Permission::Simulate)?;
    let mut wanted = Vec::new();
    for (i, part) in ids.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        match part.parse::<i64>() {
            Ok(id) if !wanted.contains(&id) => wanted.push(id),
            Ok(_) => {}
            Err(_) => return Err(AppError::Invalid(vec![FieldProblem::new(format!("ids[{i}]"), "not a run id")])),
        }
    }
    if wanted.is_empty() || wanted.len() > MAX_COMPARE {
        return Err(AppError::invalid("ids", format!("give 1 to {MAX_COMPARE} run ids")));
    }
    let mut out = Vec::with_capacity(wanted.len());
    for id in wanted {
        let run = get(app, p, RunId(id)).await?;
        let name = app.db().scenario_by_id(run.scenario_id).await?.map(|s| s.name).unwrap_or_default();
        out.push((name, run));
    }
    Ok(out)
}

/// The caller's runs changed at or after `cursor` (Unix ms), for live streams.
///
/// # Errors
/// The database's.
pub async fn changed_since(app: &App, p: &Principal, cursor: i64) -> AppResult<Vec<Run>> {
    p.require(Permission::Simulate)?;
    Ok(app.db().runs_changed_since(p.id().get(), cursor).await?)
}
