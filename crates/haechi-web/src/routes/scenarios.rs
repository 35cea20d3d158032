//! Investment scenarios: CRUD with immutable versions, diff and restore, soft delete,
//! duplicate, sharing, and TOML import/export.
//!
//! Authorisation: a scenario is visible to its owner and to the users it is shared with
//! (read-only); anyone else gets `404`, so ids reveal nothing. Only the owner changes it.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;
use crate::routes::paging;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_app::ScenarioId;
use haechi_app::scenarios::{self, Access, ListQuery, Scenario, ScenarioDoc, ScenarioVersion};
use haechi_app::spec::Change;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A scenario without its document, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioSummary {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Strategy type of the current version (`sma_cross`, …).
    pub strategy: String,
    pub current_version: i32,
    /// `owner` or `reader` (shared with you read-only).
    pub access: &'static str,
    pub shared_with_analysts: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when the scenario is in the owner's bin.
    pub deleted_at: Option<i64>,
}

/// A scenario with its current document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioView {
    #[serde(flatten)]
    pub summary: ScenarioSummary,
    /// The current version's scenario document (see docs/scenarios.md).
    #[schema(value_type = Object)]
    pub spec: Value,
}

fn summary(s: &Scenario, access: Access) -> ScenarioSummary {
    ScenarioSummary {
        id: s.id,
        owner_id: s.owner_id,
        name: s.name.clone(),
        description: s.description.clone(),
        strategy: s.strategy.clone(),
        current_version: s.current_version,
        access: match access {
            Access::Owner => "owner",
            Access::Reader => "reader",
        },
        shared_with_analysts: s.shared_with_analysts,
        created_at: s.created_at,
        updated_at: s.updated_at,
        deleted_at: s.deleted_at,
    }
}

fn view(doc: &ScenarioDoc) -> ScenarioView {
    ScenarioView { summary: summary(&doc.scenario, doc.access), spec: doc.spec() }
}

fn created(doc: &ScenarioDoc) -> Response {
    let mut r = (StatusCode::CREATED, axum::Json(view(doc))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/scenarios/{}", doc.scenario.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScenarioListParams {
    /// Text searched in names and descriptions (case-insensitive).
    pub q: Option<String>,
    /// `all` (default: yours and shared with you), `owned` or `shared`.
    pub scope: Option<String>,
    /// Strategy type, e.g. `sma_cross`.
    pub strategy: Option<String>,
    /// `true` lists your deleted scenarios instead.
    pub deleted: Option<bool>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioPage {
    pub items: Vec<ScenarioSummary>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// Lists scenarios you own or that are shared with you, newest change first.
#[utoipa::path(get, path = "/api/v1/scenarios", tag = "scenarios", params(ScenarioListParams),
    responses((status = 200, body = ScenarioPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<ScenarioListParams>,
) -> ApiResult<axum::Json<ScenarioPage>> {
    let query = ListQuery { search: q.q, scope: q.scope, strategy: q.strategy, deleted: q.deleted.unwrap_or(false) };
    let res = scenarios::list(state.app(), &p, query, paging(q.page, q.per_page)?).await?;
    let items = res.items.iter().map(|(s, access)| summary(s, *access)).collect();
    Ok(axum::Json(ScenarioPage { items, total: res.total, page: res.page, per_page: res.per_page }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCreate {
    /// The scenario document (see docs/scenarios.md), as JSON.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// What this version is about.
    #[serde(default)]
    pub message: Option<String>,
}

/// Creates a scenario (version 1). Every validation problem is reported at once, with the
/// field path under `spec`.
#[utoipa::path(post, path = "/api/v1/scenarios", tag = "scenarios", request_body = ScenarioCreate,
    responses((status = 201, body = ScenarioView), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    ApiJson(req): ApiJson<ScenarioCreate>,
) -> ApiResult<Response> {
    p.require(haechi_app::rbac::Permission::Simulate)?;
    let (valid, message) = scenarios::validate_off_thread(req.spec, req.message).await?;
    Ok(created(&scenarios::create(state.app(), &meta, &p, valid, message).await?))
}

/// Creates a scenario from a TOML file (the body, `Content-Type: application/toml`).
/// Syntax errors name `scenario.toml:line:column`.
#[utoipa::path(post, path = "/api/v1/scenarios/import", tag = "scenarios",
    request_body(content((String = "application/toml"), (String = "text/plain"))),
    responses((status = 201, body = ScenarioView), (status = 422, body = Problem)))]
pub async fn import(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    p.require(haechi_app::rbac::Permission::Simulate)?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !(ct.starts_with("application/toml") || ct.starts_with("text/plain") || ct.starts_with("text/x-toml")) {
        return Err(ApiError::BadRequest("expected Content-Type: application/toml".into()));
    }
    Ok(created(&scenarios::import_toml(state.app(), &meta, &p, &body).await?))
}

/// Reads a scenario with its current document.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ScenarioView>> {
    Ok(axum::Json(view(&scenarios::get(state.app(), &p, ScenarioId(id)).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioUpdate {
    #[schema(value_type = Object)]
    pub spec: Value,
    #[serde(default)]
    pub message: Option<String>,
    /// The version you edited. If someone saved a newer one since, the update is refused
    /// with 409 instead of silently overwriting it.
    #[serde(default)]
    pub base_version: Option<i32>,
}

/// Saves a new version (the old ones stay, immutable).
#[utoipa::path(put, path = "/api/v1/scenarios/{id}", tag = "scenarios", params(("id" = i64, Path)), request_body = ScenarioUpdate,
    responses((status = 200, body = ScenarioView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ScenarioUpdate>,
) -> ApiResult<axum::Json<ScenarioView>> {
    p.require(haechi_app::rbac::Permission::Simulate)?;
    let (valid, message) = scenarios::validate_off_thread(req.spec, req.message).await?;
    let doc = scenarios::save(state.app(), &meta, &p, ScenarioId(id), valid, message, req.base_version).await?;
    Ok(axum::Json(view(&doc)))
}

/// Moves a scenario to the owner's bin (soft delete; undo with `…/undelete`).
#[utoipa::path(delete, path = "/api/v1/scenarios/{id}", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    scenarios::set_deleted(state.app(), &meta, &p, ScenarioId(id), true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a scenario in the bin for good, with its versions, shares, runs and reports
/// (frees the stored-bytes quota). `409` when it is not in the bin or a run of it is active.
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/purge", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn purge(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    scenarios::purge(state.app(), &meta, &p, ScenarioId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a scenario from the bin.
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/undelete", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn undelete(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ScenarioView>> {
    scenarios::set_deleted(state.app(), &meta, &p, ScenarioId(id), false).await?;
    Ok(axum::Json(view(&scenarios::get(state.app(), &p, ScenarioId(id)).await?)))
}

/// Copies a scenario you can read into a new one you own (version 1).
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/duplicate", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 201, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn duplicate(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(created(&scenarios::duplicate(state.app(), &meta, &p, ScenarioId(id)).await?))
}

/// One version's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionMeta {
    pub version: i32,
    pub author_id: i64,
    pub message: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    #[serde(flatten)]
    pub meta: VersionMeta,
    #[schema(value_type = Object)]
    pub spec: Value,
}

fn meta(v: &ScenarioVersion) -> VersionMeta {
    VersionMeta { version: v.version, author_id: v.author_id, message: v.message.clone(), created_at: v.created_at }
}

/// Lists a scenario's versions, newest first.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/versions", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<VersionMeta>), (status = 404, body = Problem)))]
pub async fn versions(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<VersionMeta>>> {
    Ok(axum::Json(scenarios::versions(state.app(), &p, ScenarioId(id)).await?.iter().map(meta).collect()))
}

/// Reads one version with its document.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/versions/{version}", tag = "scenarios",
    params(("id" = i64, Path), ("version" = i32, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = Problem)))]
pub async fn version(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((id, version)): Path<(i64, i32)>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = scenarios::version(state.app(), &p, ScenarioId(id), version).await?;
    Ok(axum::Json(VersionView { meta: meta(&v), spec: serde_json::from_str(&v.spec).unwrap_or(Value::Null) }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DiffParams {
    /// The older version.
    pub from: i32,
    /// The newer version (default: current).
    pub to: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffView {
    pub from: i32,
    pub to: i32,
    pub changes: Vec<ChangeView>,
}

/// One difference between two scenario documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// Dotted path with indices: `strategy.slow`, `universe.tickers[2]`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

impl From<Change> for ChangeView {
    fn from(c: Change) -> ChangeView {
        ChangeView { path: c.path, op: c.op, before: c.before, after: c.after }
    }
}

/// What changed between two versions, field by field.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/diff", tag = "scenarios", params(("id" = i64, Path), DiffParams),
    responses((status = 200, body = DiffView), (status = 404, body = Problem)))]
pub async fn diff(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<DiffParams>,
) -> ApiResult<axum::Json<DiffView>> {
    let (to, changes) = scenarios::diff(state.app(), &p, ScenarioId(id), q.from, q.to).await?;
    Ok(axum::Json(DiffView { from: q.from, to, changes: changes.into_iter().map(ChangeView::from).collect() }))
}

/// Makes an old version current again, as a new version (history is never rewritten).
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/versions/{version}/restore", tag = "scenarios",
    params(("id" = i64, Path), ("version" = i32, Path)),
    responses((status = 200, body = ScenarioView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn restore(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path((id, version)): Path<(i64, i32)>,
) -> ApiResult<axum::Json<ScenarioView>> {
    Ok(axum::Json(view(&scenarios::restore(state.app(), &meta, &p, ScenarioId(id), version).await?)))
}

/// Downloads the current version as a TOML file.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/export", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/toml", body = String), (status = 404, body = Problem)))]
pub async fn export(State(state): State<AppState>, Caller(p): Caller, Path(id): Path<i64>) -> ApiResult<Response> {
    let (file, text) = scenarios::export_toml(state.app(), &p, ScenarioId(id)).await?;
    let disposition = format!("attachment; filename=\"{file}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/toml; charset=utf-8")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        text,
    )
        .into_response())
}

/// Who a scenario is shared with (read-only).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Shares {
    /// Email addresses of users who may read the scenario.
    pub emails: Vec<String>,
    /// Every user with the analyst role may read it.
    #[serde(default)]
    pub analysts: bool,
}

/// Lists who the scenario is shared with. Owner only.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/shares", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = Shares), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_shares(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Shares>> {
    let sh = scenarios::shares(state.app(), &p, ScenarioId(id)).await?;
    Ok(axum::Json(Shares { emails: sh.emails, analysts: sh.analysts }))
}

/// Replaces who the scenario is shared with. Unknown emails are validation errors
/// (`emails[i]`), and nothing changes then.
#[utoipa::path(put, path = "/api/v1/scenarios/{id}/shares", tag = "scenarios", params(("id" = i64, Path)), request_body = Shares,
    responses((status = 200, body = Shares), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_shares(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<Shares>,
) -> ApiResult<axum::Json<Shares>> {
    let want = scenarios::Shares { emails: req.emails, analysts: req.analysts };
    scenarios::set_shares(state.app(), &meta, &p, ScenarioId(id), &want).await?;
    get_shares(State(state), Caller(p), Path(id)).await
}
