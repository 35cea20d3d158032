//! Administration: users, role policies, and the access and audit logs.

use crate::auth::extract::{ClientInfo, Principal};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::json::ApiJson;
use crate::rbac::{Permission, Role};
use crate::routes::audit;
use crate::routes::auth::UserView;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use haechi_db::LogQuery;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    /// Zero-based page.
    #[serde(default)]
    pub page: Option<u64>,
    /// 1–200, default 50.
    #[serde(default)]
    pub per_page: Option<u64>,
}

pub(crate) fn per_page(p: Option<u64>) -> u64 {
    p.unwrap_or(50).clamp(1, 200)
}

/// Pages beyond this are refused: page × per_page must stay a valid SQL offset.
const MAX_PAGE: u64 = 1_000_000;

pub(crate) fn page(p: Option<u64>) -> Result<u64, ApiError> {
    match p.unwrap_or(0) {
        n if n <= MAX_PAGE => Ok(n),
        _ => Err(ApiError::Validation(vec![FieldError::new("page", format!("must be at most {MAX_PAGE}"))])),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(PageParams),
    responses((status = 200, body = UserPage), (status = 403, body = Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<UserPage>> {
    principal.require(Permission::ManageUsers)?;
    let (page, per) = (page(q.page)?, per_page(q.per_page));
    let p = state.db().list_users(page, per).await?;
    Ok(axum::Json(UserPage {
        items: p.items.iter().map(UserView::from).collect(),
        total: p.total,
        page,
        per_page: per,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Changes a user's role or disables/enables the account. Either change ends the user's
/// sessions, so new privileges start with a new session.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = i64, Path)), request_body = UserUpdate,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    client: ClientInfo,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UserUpdate>,
) -> ApiResult<axum::Json<UserView>> {
    principal.require(Permission::ManageUsers)?;
    Ok(axum::Json(apply_user_update(&state, &client, &principal, id, &req).await?))
}

/// Applies a role or disabled change with its audit entries (API and portal).
pub(crate) async fn apply_user_update(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    id: i64,
    req: &UserUpdate,
) -> ApiResult<UserView> {
    let (state, client) = (state.clone(), client.clone());
    let db = state.db();
    let user = db.user_by_id(id).await?.ok_or(ApiError::NotFound)?;
    if id == principal.user.id && (req.disabled == Some(true) || req.role.is_some_and(|r| r != Role::Admin)) {
        return Err(ApiError::Validation(vec![FieldError::new("role", "admins cannot demote or disable themselves")]));
    }
    if let Some(role) = req.role
        && role.as_str() != user.role
    {
        db.set_role(id, role.as_str()).await?;
        db.delete_other_sessions(id, None).await?;
        audit(
            &state,
            &client,
            "role_changed",
            Some(id),
            Some(principal.user.id),
            json!({"from": user.role, "to": role.as_str()}),
        )
        .await;
    }
    if let Some(disabled) = req.disabled
        && disabled != user.disabled
    {
        db.set_disabled(id, disabled).await?;
        db.delete_other_sessions(id, None).await?;
        let event = if disabled { "user_disabled" } else { "user_enabled" };
        audit(&state, &client, event, Some(id), Some(principal.user.id), json!({})).await;
    }
    state.cache().invalidate_user(id);
    let user = db.user_by_id(id).await?.ok_or(ApiError::NotFound)?;
    Ok(UserView::from(&user))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolePolicy {
    pub role: Role,
    pub require_mfa: bool,
}

/// Each role's MFA requirement.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin", responses((status = 200, body = Vec<RolePolicy>), (status = 403, body = Problem)))]
pub async fn list_roles(State(state): State<AppState>, principal: Principal) -> ApiResult<axum::Json<Vec<RolePolicy>>> {
    principal.require(Permission::ManagePolicies)?;
    let set = state.db().role_policies().await?;
    Ok(axum::Json(
        Role::ALL
            .into_iter()
            .map(|role| RolePolicy { role, require_mfa: set.iter().any(|p| p.role == role.as_str() && p.require_mfa) })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequirement {
    pub require_mfa: bool,
}

/// Requires (or stops requiring) MFA for everyone with a role.
#[utoipa::path(put, path = "/api/v1/admin/roles/{role}/mfa", tag = "admin", params(("role" = Role, Path)), request_body = MfaRequirement,
    responses((status = 200, body = RolePolicy), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_role_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    principal: Principal,
    Path(role): Path<String>,
    ApiJson(req): ApiJson<MfaRequirement>,
) -> ApiResult<axum::Json<RolePolicy>> {
    principal.require(Permission::ManagePolicies)?;
    let role = Role::parse(&role).ok_or(ApiError::NotFound)?;
    apply_role_mfa(&state, &client, &principal, role, req.require_mfa).await?;
    Ok(axum::Json(RolePolicy { role, require_mfa: req.require_mfa }))
}

/// Sets whether `role` must use two-factor authentication, with its audit entry (API and portal).
pub(crate) async fn apply_role_mfa(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    role: Role,
    require: bool,
) -> ApiResult<()> {
    state.db().set_role_requires_mfa(role.as_str(), require).await?;
    state.cache().put_policy(role.as_str(), require);
    audit(
        state,
        client,
        "role_policy_changed",
        None,
        Some(principal.user.id),
        json!({"role": role.as_str(), "require_mfa": require}),
    )
    .await;
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogParams {
    pub user_id: Option<i64>,
    /// Audit: event name (`login_failure`); access: HTTP method (`GET`).
    pub kind: Option<String>,
    /// Access log only: HTTP status.
    pub status: Option<i32>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

impl LogParams {
    fn query(&self) -> Result<LogQuery, ApiError> {
        Ok(LogQuery {
            user_id: self.user_id,
            kind: self.kind.clone(),
            since_ms: self.since,
            until_ms: self.until,
            status: self.status,
            page: page(self.page)?,
            per_page: per_page(self.per_page),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub event: String,
    pub ip: String,
    pub request_id: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub total: u64,
}

/// The audit log of security events, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(LogParams),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub async fn audit_log(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<LogParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    principal.require(Permission::ReadLogs)?;
    let p = state.db().audit_entries(&q.query()?).await?;
    let items = p
        .items
        .into_iter()
        .map(|e| AuditView {
            id: e.id,
            at: e.at,
            user_id: e.user_id,
            actor_id: e.actor_id,
            event: e.event,
            ip: e.ip,
            request_id: e.request_id,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(axum::Json(AuditPage { items, total: p.total }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    pub id: i64,
    pub at: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub ip: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub latency_us: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessPage {
    pub items: Vec<AccessView>,
    pub total: u64,
}

/// The access log of every request, newest first.
#[utoipa::path(get, path = "/api/v1/admin/access", tag = "admin", params(LogParams),
    responses((status = 200, body = AccessPage), (status = 403, body = Problem)))]
pub async fn access_log(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<LogParams>,
) -> ApiResult<axum::Json<AccessPage>> {
    principal.require(Permission::ReadLogs)?;
    let p = state.db().access_entries(&q.query()?).await?;
    let items = p
        .items
        .into_iter()
        .map(|e| AccessView {
            id: e.id,
            at: e.at,
            request_id: e.request_id,
            user_id: e.user_id,
            ip: e.ip,
            method: e.method,
            route: e.route,
            status: e.status,
            latency_us: e.latency_us,
        })
        .collect();
    Ok(axum::Json(AccessPage { items, total: p.total }))
}
