//! Investment scenarios: CRUD with immutable versions, diff and restore, soft delete,
//! duplicate, sharing, and TOML import/export.
//!
//! Authorisation: a scenario is visible to its owner and to the users it is shared with
//! (read-only); anyone else gets `404`, so ids reveal nothing. Only the owner changes it.

use crate::auth::extract::{ClientInfo, Principal};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::json::ApiJson;
use crate::rbac::{Permission, Role};
use crate::routes::admin::{page, per_page};
use crate::routes::audit;
use crate::spec::{self, Change, ValidSpec};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_db::{Access, NewVersion, Scenario, ScenarioQuery, ScenarioScope, ScenarioVersion};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

const MAX_MESSAGE: usize = 500;
const MAX_NAME: usize = 200;

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

fn view(s: &Scenario, access: Access, v: &ScenarioVersion) -> ScenarioView {
    ScenarioView { summary: summary(s, access), spec: serde_json::from_str(&v.spec).unwrap_or(Value::Null) }
}

fn is_analyst(p: &Principal) -> bool {
    p.role == Role::Analyst
}

/// The scenario if the caller may read it (live, or the owner's deleted one when
/// `allow_deleted`).
pub(crate) async fn readable(
    state: &AppState,
    p: &Principal,
    id: i64,
    allow_deleted: bool,
) -> ApiResult<(Scenario, Access)> {
    let found = state.db().scenario_for(id, p.user.id, is_analyst(p)).await?;
    match found {
        Some((s, a)) if allow_deleted || s.deleted_at.is_none() => Ok((s, a)),
        _ => Err(ApiError::NotFound),
    }
}

/// The scenario if the caller owns it; readers get 403, strangers 404.
pub(crate) async fn owned(state: &AppState, p: &Principal, id: i64, allow_deleted: bool) -> ApiResult<Scenario> {
    match readable(state, p, id, allow_deleted).await? {
        (s, Access::Owner) => Ok(s),
        (_, Access::Reader) => Err(ApiError::Forbidden("this scenario is shared with you read-only")),
    }
}

pub(crate) async fn current(state: &AppState, s: &Scenario) -> ApiResult<ScenarioVersion> {
    state
        .db()
        .scenario_version(s.id, s.current_version)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("scenario {} lost version {}", s.id, s.current_version)))
}

/// The validated document and version message, or every problem with both at once.
fn validated(doc: &Value, message: Option<&str>) -> ApiResult<(ValidSpec, String)> {
    let message = message.unwrap_or("").trim().to_owned();
    let mut errs = match spec::validate_json(doc, "spec") {
        Ok(valid) if message.chars().count() <= MAX_MESSAGE => return Ok((valid, message)),
        Ok(_) => Vec::new(),
        Err(e) => e,
    };
    if message.chars().count() > MAX_MESSAGE {
        errs.push(FieldError::new("message", format!("must be at most {MAX_MESSAGE} characters")));
    }
    Err(ApiError::Validation(errs))
}

fn new_version(v: ValidSpec, author_id: i64, message: String) -> Result<NewVersion, ApiError> {
    if v.scenario.name.chars().count() > MAX_NAME {
        return Err(ApiError::Validation(vec![FieldError::new(
            "spec.name",
            format!("must be at most {MAX_NAME} characters"),
        )]));
    }
    Ok(NewVersion {
        name: v.scenario.name.clone(),
        description: v.scenario.description.clone(),
        strategy: v.scenario.strategy.name().to_owned(),
        spec: v.json,
        author_id,
        message,
    })
}

fn created(body: impl Serialize, location: String) -> Response {
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
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
    p: Principal,
    Query(q): Query<ScenarioListParams>,
) -> ApiResult<axum::Json<ScenarioPage>> {
    p.require(Permission::Simulate)?;
    let scope = match q.scope.as_deref() {
        None | Some("all") => ScenarioScope::All,
        Some("owned") => ScenarioScope::Owned,
        Some("shared") => ScenarioScope::Shared,
        Some(_) => return Err(ApiError::Validation(vec![FieldError::new("scope", "must be all, owned or shared")])),
    };
    let (page, per) = (page(q.page)?, per_page(q.per_page));
    let query = ScenarioQuery {
        viewer_id: p.user.id,
        viewer_is_analyst: is_analyst(&p),
        scope,
        search: q.q.filter(|s| s.len() <= 200),
        strategy: q.strategy,
        deleted: q.deleted.unwrap_or(false),
        page,
        per_page: per,
    };
    let res = state.db().list_scenarios(&query).await?;
    let items = res
        .items
        .iter()
        .map(|s| summary(s, if s.owner_id == p.user.id { Access::Owner } else { Access::Reader }))
        .collect();
    Ok(axum::Json(ScenarioPage { items, total: res.total, page, per_page: per }))
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
    client: ClientInfo,
    p: Principal,
    ApiJson(req): ApiJson<ScenarioCreate>,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let (valid, message) = validated(&req.spec, req.message.as_deref())?;
    store_new(&state, &client, &p, valid, if message.is_empty() { "created".into() } else { message }).await
}

async fn store_new(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    valid: ValidSpec,
    message: String,
) -> ApiResult<Response> {
    let (s, v) = create_scenario_from(state, client, p, valid, message).await?;
    Ok(created(view(&s, Access::Owner, &v), format!("/api/v1/scenarios/{}", s.id)))
}

/// Stores a validated scenario as version 1 (API and portal).
pub(crate) async fn create_scenario_from(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    valid: ValidSpec,
    message: String,
) -> ApiResult<(haechi_db::Scenario, haechi_db::ScenarioVersion)> {
    let nv = new_version(valid, p.user.id, message)?;
    let (s, v) = state.db().create_scenario(p.user.id, nv).await?;
    audit(state, client, "scenario_created", Some(p.user.id), Some(p.user.id), json!({"scenario": s.id})).await;
    Ok((s, v))
}

/// Creates a scenario from a TOML file (the body, `Content-Type: application/toml`).
/// Syntax errors name `scenario.toml:line:column`.
#[utoipa::path(post, path = "/api/v1/scenarios/import", tag = "scenarios",
    request_body(content((String = "application/toml"), (String = "text/plain"))),
    responses((status = 201, body = ScenarioView), (status = 422, body = Problem)))]
pub async fn import(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !(ct.starts_with("application/toml") || ct.starts_with("text/plain") || ct.starts_with("text/x-toml")) {
        return Err(ApiError::BadRequest("expected Content-Type: application/toml".into()));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::Validation(vec![FieldError::new("body", "the file is not UTF-8 text")]))?;
    let valid = spec::validate_toml(text, "scenario.toml").map_err(ApiError::Validation)?;
    store_new(&state, &client, &p, valid, "imported from TOML".into()).await
}

/// Reads a scenario with its current document.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ScenarioView>> {
    p.require(Permission::Simulate)?;
    let (s, access) = readable(&state, &p, id, false).await?;
    let v = current(&state, &s).await?;
    Ok(axum::Json(view(&s, access, &v)))
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
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ScenarioUpdate>,
) -> ApiResult<axum::Json<ScenarioView>> {
    p.require(Permission::Simulate)?;
    let (valid, message) = validated(&req.spec, req.message.as_deref())?;
    let (s, v) = save_edit(&state, &client, &p, id, valid, message, req.base_version).await?;
    Ok(axum::Json(view(&s, Access::Owner, &v)))
}

/// Saves a validated document as the owner's next version; `base_version` guards against
/// overwriting someone's newer save (API and portal).
pub(crate) async fn save_edit(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    id: i64,
    valid: ValidSpec,
    message: String,
    base_version: Option<i32>,
) -> ApiResult<(Scenario, ScenarioVersion)> {
    let s = owned(state, p, id, false).await?;
    let nv = new_version(valid, p.user.id, if message.is_empty() { "edited".into() } else { message })?;
    let (s, v) = state.db().add_scenario_version(s.id, base_version, nv).await?;
    audit(
        state,
        client,
        "scenario_updated",
        Some(p.user.id),
        Some(p.user.id),
        json!({"scenario": s.id, "version": v.version}),
    )
    .await;
    Ok((s, v))
}

/// Moves a scenario to the owner's bin (soft delete; undo with `…/undelete`).
#[utoipa::path(delete, path = "/api/v1/scenarios/{id}", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    p.require(Permission::Simulate)?;
    let s = owned(&state, &p, id, false).await?;
    state.db().set_scenario_deleted(s.id, true).await?;
    audit(&state, &client, "scenario_deleted", Some(p.user.id), Some(p.user.id), json!({"scenario": s.id})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a scenario from the bin.
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/undelete", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn undelete(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ScenarioView>> {
    p.require(Permission::Simulate)?;
    let s = owned(&state, &p, id, true).await?;
    state.db().set_scenario_deleted(s.id, false).await?;
    audit(&state, &client, "scenario_undeleted", Some(p.user.id), Some(p.user.id), json!({"scenario": s.id})).await;
    let s = owned(&state, &p, id, false).await?;
    let v = current(&state, &s).await?;
    Ok(axum::Json(view(&s, Access::Owner, &v)))
}

/// Copies a scenario you can read into a new one you own (version 1).
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/duplicate", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 201, body = ScenarioView), (status = 404, body = Problem)))]
pub async fn duplicate(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let (s, _) = readable(&state, &p, id, false).await?;
    let v = current(&state, &s).await?;
    let mut doc: Value = serde_json::from_str(&v.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let name: String = format!("{} (사본 copy)", s.name).chars().take(MAX_NAME).collect();
    doc["name"] = Value::String(name);
    let valid = spec::validate_json(&doc, "spec").map_err(ApiError::Validation)?;
    store_new(&state, &client, &p, valid, format!("copied from scenario {} version {}", s.id, v.version)).await
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
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<VersionMeta>>> {
    p.require(Permission::Simulate)?;
    let (s, _) = readable(&state, &p, id, false).await?;
    Ok(axum::Json(state.db().scenario_versions(s.id).await?.iter().map(meta).collect()))
}

/// Reads one version with its document.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/versions/{version}", tag = "scenarios",
    params(("id" = i64, Path), ("version" = i32, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = Problem)))]
pub async fn version(
    State(state): State<AppState>,
    p: Principal,
    Path((id, version)): Path<(i64, i32)>,
) -> ApiResult<axum::Json<VersionView>> {
    p.require(Permission::Simulate)?;
    let (s, _) = readable(&state, &p, id, false).await?;
    let v = state.db().scenario_version(s.id, version).await?.ok_or(ApiError::NotFound)?;
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
    pub changes: Vec<Change>,
}

/// What changed between two versions, field by field.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/diff", tag = "scenarios", params(("id" = i64, Path), DiffParams),
    responses((status = 200, body = DiffView), (status = 404, body = Problem)))]
pub async fn diff(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    Query(q): Query<DiffParams>,
) -> ApiResult<axum::Json<DiffView>> {
    p.require(Permission::Simulate)?;
    let (s, _) = readable(&state, &p, id, false).await?;
    let to = q.to.unwrap_or(s.current_version);
    let a = state.db().scenario_version(s.id, q.from).await?.ok_or(ApiError::NotFound)?;
    let b = state.db().scenario_version(s.id, to).await?.ok_or(ApiError::NotFound)?;
    let (va, vb): (Value, Value) =
        (serde_json::from_str(&a.spec).unwrap_or(Value::Null), serde_json::from_str(&b.spec).unwrap_or(Value::Null));
    Ok(axum::Json(DiffView { from: q.from, to, changes: spec::diff(&va, &vb) }))
}

/// Makes an old version current again, as a new version (history is never rewritten).
#[utoipa::path(post, path = "/api/v1/scenarios/{id}/versions/{version}/restore", tag = "scenarios",
    params(("id" = i64, Path), ("version" = i32, Path)),
    responses((status = 200, body = ScenarioView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn restore(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path((id, version)): Path<(i64, i32)>,
) -> ApiResult<axum::Json<ScenarioView>> {
    p.require(Permission::Simulate)?;
    let (s, v) = restore_version(&state, &client, &p, id, version).await?;
    Ok(axum::Json(view(&s, Access::Owner, &v)))
}

/// Makes `version` current again as a new version (API and portal).
pub(crate) async fn restore_version(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    id: i64,
    version: i32,
) -> ApiResult<(Scenario, ScenarioVersion)> {
    let (state, client) = (state.clone(), client.clone());
    let s = owned(&state, p, id, false).await?;
    let old = state.db().scenario_version(s.id, version).await?.ok_or(ApiError::NotFound)?;
    let doc: Value = serde_json::from_str(&old.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Re-validated: rules may have tightened since the old version was saved.
    let valid = spec::validate_json(&doc, "spec").map_err(ApiError::Validation)?;
    let nv = new_version(valid, p.user.id, format!("restored version {version}"))?;
    let (s, v) = state.db().add_scenario_version(s.id, None, nv).await?;
    audit(
        &state,
        &client,
        "scenario_restored",
        Some(p.user.id),
        Some(p.user.id),
        json!({"scenario": s.id, "from_version": version, "version": v.version}),
    )
    .await;
    Ok((s, v))
}

/// Downloads the current version as a TOML file.
#[utoipa::path(get, path = "/api/v1/scenarios/{id}/export", tag = "scenarios", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/toml", body = String), (status = 404, body = Problem)))]
pub async fn export(State(state): State<AppState>, p: Principal, Path(id): Path<i64>) -> ApiResult<Response> {
    p.require(Permission::Simulate)?;
    let (s, _) = readable(&state, &p, id, false).await?;
    let v = current(&state, &s).await?;
    let doc: Value = serde_json::from_str(&v.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let text = format!("# {} — version {}\n{}", s.name.replace('\n', " "), v.version, spec::to_toml(&doc));
    let disposition = format!("attachment; filename=\"scenario-{}-v{}.toml\"", s.id, v.version);
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
    p: Principal,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Shares>> {
    p.require(Permission::Simulate)?;
    let s = owned(&state, &p, id, false).await?;
    let users = state.db().scenario_shares(s.id).await?;
    Ok(axum::Json(Shares { emails: users.into_iter().map(|u| u.email).collect(), analysts: s.shared_with_analysts }))
}

/// Replaces who the scenario is shared with. Unknown emails are validation errors
/// (`emails[i]`), and nothing changes then.
#[utoipa::path(put, path = "/api/v1/scenarios/{id}/shares", tag = "scenarios", params(("id" = i64, Path)), request_body = Shares,
    responses((status = 200, body = Shares), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_shares(
    State(state): State<AppState>,
    client: ClientInfo,
    p: Principal,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<Shares>,
) -> ApiResult<axum::Json<Shares>> {
    p.require(Permission::Simulate)?;
    set_shares(&state, &client, &p, id, &req).await?;
    get_shares(State(state), p, Path(id)).await
}

/// Replaces the scenario's readers (API and portal); unknown emails are `emails[i]` errors and
/// nothing changes then.
pub(crate) async fn set_shares(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    id: i64,
    req: &Shares,
) -> ApiResult<()> {
    let s = owned(state, p, id, false).await?;
    if req.emails.len() > 100 {
        return Err(ApiError::Validation(vec![FieldError::new("emails", "at most 100 users")]));
    }
    let mut ids = Vec::new();
    let mut errs = Vec::new();
    for (i, email) in req.emails.iter().enumerate() {
        let norm = email.trim().to_lowercase();
        match state.db().user_by_email(&norm).await? {
            Some(u) if u.id == p.user.id => errs.push(FieldError::new(format!("emails[{i}]"), "that is you")),
            Some(u) if !ids.contains(&u.id) => ids.push(u.id),
            Some(_) => {}
            None => errs.push(FieldError::new(format!("emails[{i}]"), format!("no user with the email {norm:?}"))),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    state.db().set_scenario_shares(s.id, &ids, req.analysts).await?;
    audit(
        state,
        client,
        "scenario_shared",
        Some(p.user.id),
        Some(p.user.id),
        json!({"scenario": s.id, "users": ids, "analysts": req.analysts}),
    )
    .await;
    Ok(())
}
