//! Administration: users, role policies, and the access and audit logs.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;
use crate::routes::auth::UserView;
use crate::routes::paging;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use haechi_app::admin::{self, LogFilter, UserChange};
use haechi_app::{Role, UserId};
use serde::{Deserialize, Serialize};
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
    Caller(principal): Caller,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<UserPage>> {
    let p = admin::list_users(state.app(), &principal, paging(q.page, q.per_page)?).await?;
    Ok(axum::Json(UserPage {
        items: p.items.iter().map(UserView::from).collect(),
        total: p.total,
        page: p.page,
        per_page: p.per_page,
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
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UserUpdate>,
) -> ApiResult<axum::Json<UserView>> {
    let change = UserChange { role: req.role, disabled: req.disabled };
    let account = admin::update_user(state.app(), &meta, &principal, UserId(id), change).await?;
    Ok(axum::Json(UserView::from(&account)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolePolicy {
    pub role: Role,
    pub require_mfa: bool,
}

/// Each role's MFA requirement.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin", responses((status = 200, body = Vec<RolePolicy>), (status = 403, body = Problem)))]
pub async fn list_roles(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> ApiResult<axum::Json<Vec<RolePolicy>>> {
    let policies = admin::role_policies(state.app(), &principal).await?;
    Ok(axum::Json(policies.into_iter().map(|(role, require_mfa)| RolePolicy { role, require_mfa }).collect()))
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
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    Path(role): Path<String>,
    ApiJson(req): ApiJson<MfaRequirement>,
) -> ApiResult<axum::Json<RolePolicy>> {
    principal.require(haechi_app::rbac::Permission::ManagePolicies)?;
    let role = Role::parse(&role).ok_or(ApiError::NotFound)?;
    admin::set_role_mfa(state.app(), &meta, &principal, role, req.require_mfa).await?;
    Ok(axum::Json(RolePolicy { role, require_mfa: req.require_mfa }))
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
    fn filter(&self) -> LogFilter {
        LogFilter {
            user: self.user_id.map(UserId),
            kind: self.kind.clone(),
            status: self.status,
            since_ms: self.since,
            until_ms: self.until,
        }
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
    Caller(principal): Caller,
    Query(q): Query<LogParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    let p = admin::audit_log(state.app(), &principal, &q.filter(), paging(q.page, q.per_page)?).await?;
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
    Caller(principal): Caller,
    Query(q): Query<LogParams>,
) -> ApiResult<axum::Json<AccessPage>> {
    let p = admin::access_log(state.app(), &principal, &q.filter(), paging(q.page, q.per_page)?).await?;
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
