//! The signed-in user's risk: the score with its components, the active playbook rules and
//! the threat events, which the user acknowledges.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use haechi_app::guard::{self, EventView, RiskView, Shock, StressReport, StressScenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A threat event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatEventResponse {
    pub id: i64,
    /// `failed_signin_burst`, `new_ip_signin`, `mfa_disabled`, `new_api_token`, … (see docs/threat-response.md).
    pub kind: String,
    /// `market`, `portfolio`, `news` or `security`.
    pub source: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub subject: String,
    /// The signals that made it, by name.
    pub evidence: BTreeMap<String, f64>,
    /// Unix milliseconds.
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    /// Sightings folded into this event within its cooldown.
    pub seen: i32,
    pub acknowledged_at: Option<i64>,
}

impl From<EventView> for ThreatEventResponse {
    fn from(e: EventView) -> Self {
        let source =
            serde_json::to_value(e.source).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Self {
            id: e.id,
            kind: e.kind,
            source,
            severity: e.severity,
            subject: e.subject,
            evidence: e.evidence,
            first_seen_at: e.first_seen_ms,
            last_seen_at: e.last_seen_ms,
            seen: e.seen,
            acknowledged_at: e.acknowledged_at_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RiskResponse {
    /// 0–100: the worst component plus a fifth of the others.
    pub score: u32,
    /// `market`, `portfolio`, `news`, `security` → 0–100.
    pub components: BTreeMap<String, u32>,
    /// The playbook rules now active.
    pub active_rules: Vec<String>,
    /// When the last scan ran (Unix milliseconds); null before the first.
    pub updated_at: Option<i64>,
    /// The last 30 days' events, newest first.
    pub events: Vec<ThreatEventResponse>,
}

impl From<RiskView> for RiskResponse {
    fn from(v: RiskView) -> Self {
        Self {
            score: v.score,
            components: v.components,
            active_rules: v.active_rules,
            updated_at: v.updated_at_ms,
            events: v.events.into_iter().map(Into::into).collect(),
        }
    }
}

/// The caller's risk score, its components and the recent threat events.
#[utoipa::path(get, path = "/api/v1/me/risk", tag = "risk", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = RiskResponse), (status = 401, body = Problem)))]
pub async fn risk(State(state): State<AppState>, Caller(p): Caller) -> ApiResult<axum::Json<RiskResponse>> {
    Ok(axum::Json(guard::risk(state.app(), &p).await?.into()))
}

/// Acknowledges one of the caller's threat events (audited).
#[utoipa::path(post, path = "/api/v1/me/risk/events/{id}/acknowledge", tag = "risk", params(("id" = i64, Path)),
    security(("session" = []), ("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    guard::acknowledge(state.app(), &p, &meta, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A shock to apply to the account's positions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShockRequest {
    /// Every name gaps by `pct` (−0.10 = −10%) on day 1.
    MarketGap { pct: f64 },
    /// The names of one sector fall by `pct` on day 1.
    SectorCrash { sector: String, pct: f64 },
    /// The named tickers close at the lower limit (−30%) `days` days in a row (1–10).
    LimitDownStreak { tickers: Vec<String>, days: u32 },
    /// The market falls `k` × its last 20 sessions' daily volatility each day for `days` days.
    VolatilitySpike { k: f64, days: u32 },
    /// Volume at `factor` of normal: days to sell each position at 10% of a day's value traded.
    LiquidityFreeze { factor: f64 },
}

/// Exactly one of `replay` (a historical window: `2008-09..2009-03`, `2020-02..2020-04`,
/// `2022`, `2024-08-05`) or `shock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StressRequest {
    #[serde(default)]
    pub replay: Option<String>,
    #[serde(default)]
    pub shock: Option<ShockRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StressPositionView {
    pub ticker: String,
    pub value_before: i64,
    pub value_after: i64,
    pub value_worst: i64,
    /// Days to sell it all (liquidity freeze only).
    pub days_to_exit: Option<f64>,
    /// `shock`, `own` (its own history) or `index` (the index's path, its history lacking the window).
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StressResponse {
    pub account_id: i64,
    /// The session the account was valued at (YYYY-MM-DD).
    pub as_of: String,
    pub scenario: String,
    pub equity_before: i64,
    pub equity_after: i64,
    pub equity_worst: i64,
    /// Worst equity over equity before, minus one.
    pub worst_loss: f64,
    pub end_return: f64,
    /// Equity after each day (day 0: before the shock).
    pub path: Vec<i64>,
    pub positions: Vec<StressPositionView>,
}

impl From<StressReport> for StressResponse {
    fn from(r: StressReport) -> Self {
        let x = r.result;
        Self {
            account_id: r.account_id,
            as_of: r.as_of.to_string(),
            scenario: r.scenario,
            equity_before: x.equity_before,
            equity_after: x.equity_after,
            equity_worst: x.equity_worst,
            worst_loss: x.worst_loss,
            end_return: x.end_return,
            path: x.path,
            positions: x
                .positions
                .into_iter()
                .map(|p| StressPositionView {
                    ticker: p.ticker,
                    value_before: p.value_before,
                    value_after: p.value_after,
                    value_worst: p.value_worst,
                    days_to_exit: p.days_to_exit,
                    path: p.path.into(),
                })
                .collect(),
        }
    }
}

impl StressRequest {
    /// The use case's scenario, or the problem with the request.
    pub fn scenario(self) -> Result<StressScenario, ApiError> {
        match (self.replay, self.shock) {
            (Some(r), None) => Ok(StressScenario::Replay(r)),
            (None, Some(s)) => Ok(StressScenario::Shock(match s {
                ShockRequest::MarketGap { pct } => Shock::MarketGap { pct },
                ShockRequest::SectorCrash { sector, pct } => Shock::SectorCrash { sector, pct },
                ShockRequest::LimitDownStreak { tickers, days } => Shock::LimitDownStreak { tickers, days },
                ShockRequest::VolatilitySpike { k, days } => Shock::VolatilitySpike { k, days, daily_vol: 0.01 },
                ShockRequest::LiquidityFreeze { factor } => Shock::LiquidityFreeze { factor },
            })),
            _ => Err(ApiError::Validation(vec![FieldError::new("body", "give exactly one of replay or shock")])),
        }
    }
}

/// Stresses one of the caller's paper accounts: a historical replay, name by name, or a shock.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/stress", tag = "risk", params(("id" = i64, Path)),
    security(("session" = []), ("bearer" = [])),
    request_body(content = StressRequest, content_type = "application/json"),
    responses((status = 200, body = StressResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn stress(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<axum::Json<StressResponse>> {
    let req: StressRequest =
        serde_json::from_slice(&b).map_err(|e| ApiError::Validation(vec![FieldError::new("body", e.to_string())]))?;
    Ok(axum::Json(guard::stress(state.app(), &p, id, req.scenario()?).await?.into()))
}
