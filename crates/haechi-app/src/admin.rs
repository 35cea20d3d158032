//! Administration: users and their roles, the per-role two-factor policy, and the logs.

use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult};
use crate::paging::{PageOf, Paging};
use crate::principal::{Account, Principal};
use crate::rbac::Permission;
use crate::{App, Role, UserId, sessions};
use haechi_db::{AccessEntry, AuditEntry, LogQuery};
use serde_json::json;

/// Lists accounts.
///
/// # Errors
/// [`AppError::Forbidden`] without `ManageUsers`.
pub async fn list_users(app: &App, p: &Principal, paging: Paging) -> AppResult<PageOf<Account>> {
    p.require(Permission::ManageUsers)?;
    let page = app.db().list_users(paging.page, paging.per_page).await?;
    Ok(PageOf {
        items: page.items.iter().map(Account::from).collect(),
        total: page.total,
        page: paging.page,
        per_page: paging.per_page,
    })
}

/// A change to an account; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// Changes a user's role or disables/enables the account, with audit entries. Either change
/// ends the user's sessions, so new privileges start with a new session.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown user; [`AppError::Invalid`] at `role` when an admin
/// would demote or disable themselves.
pub async fn update_user(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: UserId,
    change: UserChange,
) -> AppResult<Account> {
    p.require(Permission::ManageUsers)?;
    let db = app.db();
    let user = db.user_by_id(id.get()).await?.ok_or(AppError::NotFound)?;
    if id == p.id() && (change.disabled == Some(true) || change.role.is_some_and(|r| r != Role::Admin)) {
        return Err(AppError::invalid("role", "admins cannot demote or disable themselves"));
    }
    if let Some(role) = change.role
        && role.as_str() != user.role
    {
        db.set_role(id.get(), role.as_str()).await?;
        sessions::end_all(app, id).await?;
        let detail = json!({"from": user.role, "to": role.as_str()});
        record(app, meta, "role_changed", Some(id), Some(p.id()), detail).await;
    }
    if let Some(disabled) = change.disabled
        && disabled != user.disabled
    {
        db.set_disabled(id.get(), disabled).await?;
        sessions::end_all(app, id).await?;
        // A disabled account's tokens stay dead when it is enabled again: the person makes new
        // ones, after signing in.
        let revoked = if disabled { db.revoke_all_tokens(id.get(), app.now_ms()).await? } else { 0 };
        if !disabled {
            // A lock the security playbook set is over: its rules start afresh, so the next
            // burst and success lock the account again.
            crate::guard::reset_security_rules(app, id).await?;
        }
        let event = if disabled { "user_disabled" } else { "user_enabled" };
        record(app, meta, event, Some(id), Some(p.id()), json!({"tokens_revoked": revoked})).await;
    }
    app.cache().invalidate_user(id);
    let user = db.user_by_id(id.get()).await?.ok_or(AppError::NotFound)?;
    Ok(Account::from(&user))
}

/// Whether each role must use two-factor authentication, in [`Role::ALL`] order.
///
/// # Errors
/// [`AppError::Forbidden`] without `ManagePolicies`.
pub async fn role_policies(app: &App, p: &Principal) -> AppResult<Vec<(Role, bool)>> {
    p.require(Permission::ManagePolicies)?;
    let set = app.db().role_policies().await?;
    Ok(Role::ALL.into_iter().map(|r| (r, set.iter().any(|x| x.role == r.as_str() && x.require_mfa))).collect())
}

/// Sets whether `role` must use two-factor authentication, with its audit entry.
///
/// # Errors
/// [`AppError::Forbidden`] without `ManagePolicies`.
pub async fn set_role_mfa(app: &App, meta: &RequestMeta, p: &Principal, role: Role, require: bool) -> AppResult<()> {
    p.require(Permission::ManagePolicies)?;
    app.db().set_role_requires_mfa(role.as_str(), require).await?;
    app.cache().put_policy(role.as_str(), require);
    let detail = json!({"role": role.as_str(), "require_mfa": require});
    record(app, meta, "role_policy_changed", None, Some(p.id()), detail).await;
    Ok(())
}

/// Filters for the logs.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub user: Option<UserId>,
    /// Audit: event name; access: HTTP method.
    pub kind: Option<String>,
    /// Access log only.
    pub status: Option<i32>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<i64>,
}

fn log_query(filter: &LogFilter, paging: Paging) -> LogQuery {
    LogQuery {
        user_id: filter.user.map(UserId::get),
        kind: filter.kind.clone(),
        since_ms: filter.since_ms,
        until_ms: filter.until_ms,
        status: filter.status,
        page: paging.page,
        per_page: paging.per_page,
    }
}

/// The audit log of security events, newest first.
///
/// # Errors
/// [`AppError::Forbidden`] without `ReadLogs`.
pub async fn audit_log(app: &App, p: &Principal, filter: &LogFilter, paging: Paging) -> AppResult<PageOf<AuditEntry>> {
    p.require(Permission::ReadLogs)?;
    let page = app.db().audit_entries(&log_query(filter, paging)).await?;
    Ok(PageOf { items: page.items, total: page.total, page: paging.page, per_page: paging.per_page })
}

/// The access log of every request, newest first.
///
/// # Errors
/// [`AppError::Forbidden`] without `ReadLogs`.
pub async fn access_log(
    app: &App,
    p: &Principal,
    filter: &LogFilter,
    paging: Paging,
) -> AppResult<PageOf<AccessEntry>> {
    p.require(Permission::ReadLogs)?;
    let page = app.db().access_entries(&log_query(filter, paging)).await?;
    Ok(PageOf { items: page.items, total: page.total, page: paging.page, per_page: paging.per_page })
}
