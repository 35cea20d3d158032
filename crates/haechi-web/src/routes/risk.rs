//! The signed-in user's risk: the score with its components, the active playbook rules and
//! the threat events, which the user acknowledges.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiResult, Problem};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use haechi_app::guard::{self, EventView, RiskView};
use serde::Serialize;
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
