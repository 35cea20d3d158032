//! Simulation runs: create (queued for a worker), follow (state, progress, a live SSE
//! stream), cancel, list, compare, and download the report from object storage.
//!
//! A run is visible to its owner and to whoever may read its scenario; only the owner
//! starts or cancels runs.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::routes::paging;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use haechi_app::rbac::Permission;
use haechi_app::runs::{self, ReportFile, Run, RunFilter};
use haechi_app::{RunId, RunState, ScenarioId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

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
    pub state: RunState,
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
            // Rows only ever hold the names `RunState` writes; an unreadable one is not a
            // run that can still succeed.
            state: runs::state_of(r).unwrap_or(RunState::Failed),
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
            report: runs::report_key(r, "").map(|_| ReportLinks {
                json: format!("/api/v1/runs/{}/report?format=json", r.id),
                html: format!("/api/v1/runs/{}/report?format=html", r.id),
            }),
        }
    }
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
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let req: RunCreate = if body.iter().all(u8::is_ascii_whitespace) {
        RunCreate::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Validation(vec![FieldError::new("body", e.to_string())]))?
    };
    let run = runs::start(state.app(), &meta, &p, ScenarioId(id), req.version).await?;
    let mut resp = (StatusCode::ACCEPTED, axum::Json(RunView::from(&run))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/runs/{}", run.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
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

async fn list_runs(state: &AppState, p: &haechi_app::Principal, q: RunListParams) -> ApiResult<RunPage> {
    let filter = RunFilter { state: q.state, scenario: q.scenario_id.map(ScenarioId) };
    let res = runs::list(state.app(), p, filter, paging(q.page, q.per_page)?).await?;
    Ok(RunPage {
        items: res.items.iter().map(RunView::from).collect(),
        total: res.total,
        page: res.page,
        per_page: res.per_page,
    })
}

/// Lists your runs (or a readable scenario's runs), newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunListParams),
    responses((status = 200, body = RunPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<RunListParams>,
) -> ApiResult<axum::Json<RunPage>> {
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
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<ScenarioRunParams>,
) -> ApiResult<axum::Json<RunPage>> {
    let q = RunListParams { state: q.state, scenario_id: Some(id), page: q.page, per_page: q.per_page };
    Ok(axum::Json(list_runs(&state, &p, q).await?))
}

/// Reads a run: state, progress, figures, report links.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RunView>> {
    Ok(axum::Json(RunView::from(&runs::get(state.app(), &p, RunId(id)).await?)))
}

/// Cancels a run: a queued run ends at once, a running one within a moment (its worker
/// checks between steps). A finished run answers 409.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RunView>> {
    Ok(axum::Json(RunView::from(&runs::cancel(state.app(), &meta, &p, RunId(id)).await?)))
}

/// Deletes a finished run with its report (frees the stored-bytes quota). A queued or running
/// run answers 409: cancel it first.
#[utoipa::path(delete, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    runs::delete(state.app(), &meta, &p, RunId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
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
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<ReportParams>,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let kind = ReportFile::parse(q.format.as_deref())?;
    let bytes = runs::report(state.app(), &p, RunId(id), kind).await?;
    let (file, ct) = match kind {
        ReportFile::Json => (kind.file_name(), "application/json"),
        ReportFile::Html => (kind.file_name(), "text/html; charset=utf-8"),
    };
    let mut resp = ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], bytes).into_response();
    if kind == ReportFile::Html {
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
    Caller(p): Caller,
    Query(q): Query<CompareParams>,
) -> ApiResult<axum::Json<Vec<ComparedRun>>> {
    let found = runs::compare(state.app(), &p, &q.ids).await?;
    Ok(axum::Json(
        found.into_iter().map(|(scenario_name, run)| ComparedRun { scenario_name, run: RunView::from(&run) }).collect(),
    ))
}

/// How often the live stream looks for changes made by other processes (workers elsewhere).
const POLL: Duration = Duration::from_millis(500);

/// A live stream (Server-Sent Events) of your runs' changes: each `run` event carries the
/// run as `GET /api/v1/runs/{id}` would return it.
#[utoipa::path(get, path = "/api/v1/runs/events", tag = "runs",
    responses((status = 200, description = "text/event-stream of `run` events", content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    p.require(Permission::Simulate)?;
    let owner = p.id().get();
    let rx = state.app().events().subscribe();
    // Start a moment back so a change racing the subscription is not missed.
    let cursor = state.app().now_ms() - 1_000;
    let init = (state, rx, cursor, HashMap::<i64, (i64, String, u64)>::new(), Vec::<Event>::new());
    let p = std::sync::Arc::new(p);
    let stream = futures_util::stream::unfold(init, move |(state, mut rx, mut cursor, mut seen, mut pending)| {
        let p = p.clone();
        async move {
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
                let Ok(changed) = runs::changed_since(state.app(), &p, cursor).await else { continue };
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
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
