//! Simulation runs: create (queued for a worker), follow (state, progress, a live SSE
//! stream), cancel, list, compare, and download the report from object storage.
//!
//! A run is visible to its owner and to whoever may read its scenario; only the owner
//! starts or cancels runs.

use crate::auth::extract::{ClientInfo, Principal};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::rbac::Permission;
use crate::routes::admin::{page, per_page};
use crate::routes::audit;
use crate::routes::scenarios::{owned, readable};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use haechi_db::{Run, RunQuery, now_ms, state as run_state};
use haechi_jobs::RunJob;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Most runs in one comparison.
pub const MAX_COMPARE: usize = 5;

/// Summary figures of a finished run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunFigures {
    pub total_return: Option<f64>,
    pub cagr: Option<f64>,
    pub volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub benchmark_return: Option<f64>,
    /// Won.
    pub final_equity: Option<i64>,
    pub trade_count: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    pub owner_id: i64,
    pub scenario_id: i64,
    pub scenario_version: i32,
    /// The market data version the run was (or will be) computed on.
    pub data_version: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// `queued`, `loading`, `simulating`, `reporting`, `done`, …
    pub stage: String,
    /// Why the run failed or was cancelled.
    pub error: Option<String>,
    pub attempts: i32,
    pub cancel_requested: bool,
    /// Unix milliseconds.
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    pub figures: RunFigures,
    /// Report download links, once the run succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportLinks>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportLinks {
    pub json: String,
    pub html: String,
}

impl From<&Run> for RunView {
    fn from(r: &Run) -> RunView {
        RunView {
            id: r.id,
            owner_id: r.owner_id,
            scenario_id: r.scenario_id,
            scenario_version: r.scenario_version,
            data_version: r.data_version,
            state: r.state.clone(),
            progress: r.progress,
            stage: r.stage.clone(),
            error: r.error.clone(),
            attempts: r.attempts,
            cancel_requested: r.cancel_requested,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            figures: RunFigures {
                total_return: r.total_return,
                cagr: r.cagr,
                volatility: r.volatility,
                sharpe: r.sharpe,
                sortino: r.sortino,
                max_drawdown: r.max_drawdown,
                benchmark_return: r.benchmark_return,
                final_equity: r.final_equity,
                trade_count: r.trade_count,
            },
            report: (r.state == run_state::SUCCEEDED && r.report_key.is_some()).then(|| ReportLinks {
                json: format!("/api/v1/runs/{}/report?format=json", r.id),
                html: format!("/api/v1/runs/{}/report?format=html", r.id),
            }),
        }
    }
}

/// The run if the caller may read it.
pub(crate) async fn readable_run(state: &AppState, p: &Principal, id: i64) -> ApiResult<Run> {
    let run = state.db().run_by_id(id).await?.ok_or(ApiError::NotFound)?;
    if run.owner_id == p.user.id {
        return Ok(run);
    }
    readable(state, p, run.scenario_id, false).await.map(|_| run)
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RunCreate {
    /// The scenario version to run (default: the current one).
    #[serde(default)]
    pub version: Option<i32>,
}

/// Queues a run of the scenario. The run pins the scenario version and the market data
/// version, so it can be reproduced. Answers 202 with the queued run.
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/runs", tag = "runs", params(("id" = i64, Path)),
    request_body(content = Option<RunCreate>, content_type = "application/json"),
    responses((status = 202, body = RunView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "no market data loaded"), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let req: RunCreate = if body.iter().all(u8::is_ascii_whitespace) {
        RunCreate::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Validation(vec![FieldError::new("body", e.to_string())]))?
    };
    let run = start_run(&state, &client, &p, id, req.version).await?;
    let mut resp = (StatusCode::ACCEPTED, axum::Json(RunView::from(&run))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/runs/{}", run.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Queues a run of the caller's scenario `id` at `version` (default: the current one), pinned
/// to the current data version (API and portal).
pub(crate) async fn start_run(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    id: i64,
    version: Option<i32>,
) -> ApiResult<Run> {
    let (state, client) = (state.clone(), client.clone());
    let s = owned(&state, p, id, false).await?;
    let version = version.unwrap_or(s.current_version);
    if state.db().scenario_version(s.id, version).await?.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "version",
            format!("version {version} does not exist"),
        )]));
    }
    let Some(data) = state.db().data_version().await? else {
        return Err(ApiError::Conflict("no market data is loaded yet (run `haechi data load`)".into()));
    };
    let run = state
        .db()
        .create_run(haechi_db::NewRun {
            owner_id: p.user.id,
            scenario_id: s.id,
            scenario_version: version,
            data_version: data.id,
        })
        .await?;
    if let Err(e) = state.services().queue.enqueue(RunJob { run_id: run.id }).await {
        // The run must not sit "queued" forever with no job behind it.
        let _ = state.db().end_run(run.id, None, run_state::FAILED, "the job queue is unavailable").await;
        return Err(ApiError::Internal(format!("enqueueing run {}: {e}", run.id)));
    }
    metrics::counter!("haechi_runs_enqueued_total").increment(1);
    state.notify_run(p.user.id, run.id);
    audit(
        &state,
        &client,
        "run_created",
        Some(p.user.id),
        Some(p.user.id),
        json!({"run": run.id, "scenario": s.id, "version": version}),
    )
    .await;
    Ok(run)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RunListParams {
    /// Only runs in this state.
    pub state: Option<String>,
    /// Only runs of this scenario (including the owner's runs of a scenario shared with you).
    pub scenario_id: Option<i64>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

async fn list_runs(state: &AppState, p: &Principal, q: RunListParams) -> ApiResult<RunPage> {
    if let Some(s) = &q.state
        && !run_state::ALL.contains(&s.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "state",
            format!("must be one of {}", run_state::ALL.join(", ")),
        )]));
    }
    let (page, per) = (page(q.page)?, per_page(q.per_page));
    let owner_id = match q.scenario_id {
        // Readers of a shared scenario see its runs; everyone else only their own.
        Some(sid) => match readable(state, p, sid, true).await {
            Ok(_) => None,
            Err(ApiError::NotFound) => return Err(ApiError::NotFound),
            Err(e) => return Err(e),
        },
        None => Some(p.user.id),
    };
    let res = state
        .db()
        .list_runs(&RunQuery { owner_id, scenario_id: q.scenario_id, state: q.state, page, per_page: per })
        .await?;
    Ok(RunPage { items: res.items.iter().map(RunView::from).collect(), total: res.total, page, per_page: per })
}

/// Lists your runs (or a readable scenario's runs), newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunListParams),
    responses((status = 200, body = RunPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<RunListParams>,
) -> ApiResult<axum::Json<RunPage>> {
    p.require(Permission::Simulate)?;
    Ok(axum::Json(list_runs(&state, &p, q).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScenarioRunParams {
    pub state: Option<String>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

/// Lists a scenario's runs, newest first.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/runs", tag = "runs", params(("id" = i64, Path), ScenarioRunParams),
    responses((status = 200, body = RunPage), (status = 404, body = Problem)))]
pub async fn list_for_scenario(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    Query(q): Query<ScenarioRunParams>,
) -> ApiResult<axum::Json<RunPage>> {
    p.require(Permission::Simulate)?;
    let q = RunListParams { state: q.state, scenario_id: Some(id), page: q.page, per_page: q.per_page };
    Ok(axum::Json(list_runs(&state, &p, q).await?))
}

/// Reads a run: state, progress, figures, report links.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem)))]
pub async fn get(State(state): State<AppState>, p: Principal, Path(id): Path<i64>) -> ApiResult<axum::Json<RunView>> {
    p.require(Permission::Simulate)?;
    Ok(axum::Json(RunView::from(&readable_run(&state, &p, id).await?)))
}

/// Cancels a run: a queued run ends at once, a running one within a moment (its worker
/// checks between steps). A finished run answers 409.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RunView>> {
    p.require(Permission::Simulate)?;
    let run = state.db().run_by_id(id).await?.filter(|r| r.owner_id == p.user.id).ok_or(ApiError::NotFound)?;
    if run_state::is_final(&run.state) {
        return Err(ApiError::Conflict(format!("the run already ended ({})", run.state)));
    }
    let run = state.db().request_cancel(id).await?.ok_or(ApiError::NotFound)?;
    state.notify_run(p.user.id, id);
    audit(&state, &client, "run_cancelled", Some(p.user.id), Some(p.user.id), json!({"run": id})).await;
    Ok(axum::Json(RunView::from(&run)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportParams {
    /// `json` (default) or `html`.
    pub format: Option<String>,
    /// `true` adds `Content-Disposition: attachment`.
    pub download: Option<bool>,
}

/// Downloads a finished run's report (JSON, see docs/report.md, or the self-contained HTML
/// page).
#[utoipa::path(get, path = "/api/v1/runs/{id}/report", tag = "runs", params(("id" = i64, Path), ReportParams),
    responses((status = 200, description = "the report", content_type = "application/json"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the run has no report (yet)")))]
pub async fn report(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    Query(q): Query<ReportParams>,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let run = readable_run(&state, &p, id).await?;
    let (file, ct) = match q.format.as_deref() {
        None | Some("json") => ("report.json", "application/json"),
        Some("html") => ("report.html", "text/html; charset=utf-8"),
        Some(_) => return Err(ApiError::Validation(vec![FieldError::new("format", "must be json or html")])),
    };
    let Some(prefix) = run.report_key.as_deref().filter(|_| run.state == run_state::SUCCEEDED) else {
        return Err(ApiError::Conflict(format!("the run has no report ({})", run.state)));
    };
    let bytes = state
        .services()
        .objects
        .get(&format!("{prefix}{file}"))
        .await
        .map_err(|e| ApiError::Internal(format!("reading the report of run {id}: {e}")))?;
    let mut resp = ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], bytes).into_response();
    if file == "report.html" {
        // The report is self-contained (inline styles and SVG, no script). Sandboxed, it runs
        // as an opaque origin: even a flaw in its escaping could not reach the session.
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox",
            ),
        );
    }
    if q.download == Some(true)
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"run-{id}-{file}\""))
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CompareParams {
    /// Comma-separated run ids, 1 to 5.
    pub ids: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComparedRun {
    pub scenario_name: String,
    #[serde(flatten)]
    pub run: RunView,
}

/// Up to five runs side by side (their figures; missing ones for unfinished runs).
#[utoipa::path(get, path = "/api/v1/runs/compare", tag = "runs", params(CompareParams),
    responses((status = 200, body = Vec<ComparedRun>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn compare(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<CompareParams>,
) -> ApiResult<axum::Json<Vec<ComparedRun>>> {
    p.require(Permission::Simulate)?;
    let mut ids = Vec::new();
    for (i, part) in q.ids.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        match part.parse::<i64>() {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => return Err(ApiError::Validation(vec![FieldError::new(format!("ids[{i}]"), "not a run id")])),
        }
    }
    if ids.is_empty() || ids.len() > MAX_COMPARE {
        return Err(ApiError::Validation(vec![FieldError::new("ids", format!("give 1 to {MAX_COMPARE} run ids"))]));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let run = readable_run(&state, &p, id).await?;
        let name = state.db().scenario_by_id(run.scenario_id).await?.map(|s| s.name).unwrap_or_default();
        out.push(ComparedRun { scenario_name: name, run: RunView::from(&run) });
    }
    Ok(axum::Json(out))
}

/// How often the live stream looks for changes made by other processes (workers elsewhere).
const POLL: Duration = Duration::from_millis(500);

/// A live stream (Server-Sent Events) of your runs' changes: each `run` event carries the
/// run as `GET /api/v1/runs/{id}` would return it.
#[utoipa::path(get, path = "/api/v1/runs/events", tag = "runs",
    responses((status = 200, description = "text/event-stream of `run` events", content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    p.require(Permission::Simulate)?;
    let owner = p.user.id;
    let rx = state.services().events.subscribe();
    // Start a moment back so a change racing the subscription is not missed.
    let cursor = now_ms() - 1_000;
    let init = (state, rx, cursor, HashMap::<i64, (i64, String, u64)>::new(), Vec::<Event>::new());
    let stream =
        futures_util::stream::unfold(init, move |(state, mut rx, mut cursor, mut seen, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop() {
                    return Some((Ok(ev), (state, rx, cursor, seen, pending)));
                }
                let wait = async {
                    loop {
                        match rx.recv().await {
                            Ok(n) if n.owner_id == owner => return,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(POLL, wait).await;
                let Ok(changed) = state.db().runs_changed_since(owner, cursor).await else { continue };
                for r in changed.iter() {
                    cursor = cursor.max(r.updated_at);
                    let key = (r.updated_at, r.state.clone(), (r.progress * 1000.0) as u64);
                    if seen.get(&r.id) == Some(&key) {
                        continue;
                    }
                    seen.insert(r.id, key);
                    if let Ok(ev) = Event::default().event("run").json_data(RunView::from(r)) {
                        pending.insert(0, ev);
                    }
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
