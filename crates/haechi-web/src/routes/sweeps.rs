//! Parameter sweeps: start one over a scenario's numeric fields (queued as chunk jobs for the
//! workers), follow it, and read its points sorted by any metric.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::routes::paging;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_app::ScenarioId;
use haechi_app::rbac::Permission;
use haechi_app::sweeps::{self, Sweep, SweepPoint, SweepRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepCreate {
    /// Axes, each `FIELD=LO..HI:STEP` (inclusive) or `FIELD=A,B,C`, e.g.
    /// `["strategy.fast=5..50:5", "strategy.slow=60..150:10"]`. At most 100,000 points.
    pub grid: Vec<String>,
    /// Share of each run's sessions that is in-sample (default 0.7).
    #[serde(default)]
    pub in_sample: Option<f64>,
    /// The scenario version (default: the current one).
    #[serde(default)]
    pub version: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SweepView {
    pub id: i64,
    pub owner_id: i64,
    pub scenario_id: i64,
    pub scenario_version: i32,
    pub data_version: i64,
    pub grid: Vec<String>,
    pub in_sample: f64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub points_total: i32,
    pub points_done: i32,
    pub error: Option<String>,
    /// The best point by Sharpe ratio with its deflated Sharpe ratio, once every point is done.
    #[schema(value_type = Option<Object>)]
    pub best: Option<serde_json::Value>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<&Sweep> for SweepView {
    fn from(s: &Sweep) -> SweepView {
        SweepView {
            id: s.id,
            owner_id: s.owner_id,
            scenario_id: s.scenario_id,
            scenario_version: s.scenario_version,
            data_version: s.data_version,
            grid: serde_json::from_str(&s.grid).unwrap_or_default(),
            in_sample: s.in_sample,
            state: s.state.clone(),
            points_total: s.points_total,
            points_done: s.points_done,
            error: s.error.clone(),
            best: s.best.as_deref().and_then(|b| serde_json::from_str(b).ok()),
            created_at: s.created_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}

/// One grid point's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointView {
    pub point: i32,
    /// `[["strategy.fast", 5], ["strategy.slow", 60]]`.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub annual_volatility: Option<f64>,
    /// Won.
    pub final_equity: i64,
    pub trade_count: i32,
    pub win_rate: Option<f64>,
    pub turnover: f64,
    pub is_return: f64,
    pub is_sharpe: Option<f64>,
    pub oos_return: f64,
    pub oos_sharpe: Option<f64>,
    /// Hash of every fill: equal digests, equal fills.
    pub fills_digest: String,
}

impl From<&SweepPoint> for PointView {
    fn from(p: &SweepPoint) -> PointView {
        PointView {
            point: p.point,
            params: serde_json::from_str(&p.params).unwrap_or_default(),
            total_return: p.total_return,
            cagr: p.cagr,
            sharpe: p.sharpe,
            sortino: p.sortino,
            max_drawdown: p.max_drawdown,
            annual_volatility: p.annual_volatility,
            final_equity: p.final_equity,
            trade_count: p.trade_count,
            win_rate: p.win_rate,
            turnover: p.turnover,
            is_return: p.is_return,
            is_sharpe: p.is_sharpe,
            oos_return: p.oos_return,
            oos_sharpe: p.oos_sharpe,
            fills_digest: p.fills_digest.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PointPage {
    pub items: Vec<PointView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SweepDetail {
    #[serde(flatten)]
    pub sweep: SweepView,
    pub points: PointPage,
}

/// Starts a sweep of the scenario: every problem with the grid is answered at once (422, one
/// error per axis at `grid[i]`, or per broken rule at `grid`) before anything is queued.
/// Answers 202 with the queued sweep.
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/sweeps", tag = "sweeps", params(("id" = i64, Path)),
    request_body(content = SweepCreate, content_type = "application/json"),
    responses((status = 202, body = SweepView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "no market data loaded"), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let req: SweepCreate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("body", e.to_string())]))?;
    let req = SweepRequest { grid: req.grid, in_sample: req.in_sample, version: req.version };
    let sw = sweeps::start(state.app(), &meta, &p, ScenarioId(id), req).await?;
    let mut resp = (StatusCode::ACCEPTED, axum::Json(SweepView::from(&sw))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/sweeps/{}", sw.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PointParams {
    /// Sort the points by this metric (`point`, `total_return`, `cagr`, `sharpe`, `sortino`,
    /// `max_drawdown`, `annual_volatility`, `final_equity`, `trade_count`, `win_rate`,
    /// `turnover`, `is_return`, `is_sharpe`, `oos_return`, `oos_sharpe`); default `point`.
    pub sort: Option<String>,
    /// `asc` or `desc`; by default a metric sorts best (largest) first and `point` in grid order.
    pub order: Option<String>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

/// Reads a sweep: its state and progress, the best point once done, and a page of its points
/// sorted by any metric.
#[utoipa::path(get, path = "/api/v1/sweeps/{id}", tag = "sweeps", params(("id" = i64, Path), PointParams),
    responses((status = 200, body = SweepDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<PointParams>,
) -> ApiResult<axum::Json<SweepDetail>> {
    let order = match q.order.as_deref() {
        None => None,
        Some("desc") => Some(sweeps::Order::Desc),
        Some("asc") => Some(sweeps::Order::Asc),
        Some(other) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "order",
                format!("must be asc or desc, found {other:?}"),
            )]));
        }
    };
    let (sw, page) = sweeps::points(state.app(), &p, id, q.sort.as_deref(), order, paging(q.page, q.per_page)?).await?;
    Ok(axum::Json(SweepDetail {
        sweep: SweepView::from(&sw),
        points: PointPage {
            items: page.items.iter().map(PointView::from).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        },
    }))
}
