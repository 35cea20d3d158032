//! Administration: users and roles, access and audit logs.

use super::*;
use haechi_app::admin::{self, LogFilter, UserChange};
use haechi_app::paging::Paging;
use haechi_app::{Role, UserId};

/// One log line, already formatted; `a`..`d` are the columns of the log shown.
pub(super) struct LogRow {
    at: String,
    user: String,
    ip: String,
    a: String,
    b: String,
    c: String,
    d: String,
}

#[derive(Template)]
#[template(path = "portal/admin_logs.html")]
pub(super) struct AdminLogsPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    audit: bool,
    user_id: String,
    kind: String,
    status: String,
    total: String,
    rows: Vec<LogRow>,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) const LOG_ROWS: u64 = 50;

/// Access and audit logs with filters, for admins and auditors.
pub(super) async fn admin_logs(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<ReadLogs>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let params: HashMap<String, String> =
        q.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let get = |k: &str| params.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let audit = get("log") == "audit";
    let (user_id, kind, status) = (get("user_id"), get("kind"), get("status"));
    let page_no: u64 = get("page").parse().unwrap_or(0);
    let filter = LogFilter {
        user: user_id.parse().ok().map(UserId),
        kind: (!kind.is_empty()).then(|| kind.clone()),
        status: status.parse().ok(),
        ..LogFilter::default()
    };
    let paging = Paging::new(Some(page_no), Some(LOG_ROWS))?;
    let (rows, total) = if audit {
        match admin::audit_log(state.app(), &p, &filter, paging).await {
            Ok(pg) => (
                pg.items
                    .into_iter()
                    .map(|e| LogRow {
                        at: kst(e.at),
                        user: e.user_id.map_or_else(String::new, |u| u.to_string()),
                        ip: e.ip,
                        a: e.event,
                        b: e.detail,
                        c: String::new(),
                        d: String::new(),
                    })
                    .collect::<Vec<_>>(),
                pg.total,
            ),
            Err(e) => return Err(e.into()),
        }
    } else {
        match admin::access_log(state.app(), &p, &filter, paging).await {
            Ok(pg) => (
                pg.items
                    .into_iter()
                    .map(|e| LogRow {
                        at: kst(e.at),
                        user: e.user_id.map_or_else(String::new, |u| u.to_string()),
                        ip: e.ip,
                        a: e.method,
                        b: e.route,
                        c: e.status.to_string(),
                        d: format!("{:.1}", e.latency_us as f64 / 1000.0),
                    })
                    .collect::<Vec<_>>(),
                pg.total,
            ),
            Err(e) => return Err(e.into()),
        }
    };
    let link = |pg: u64| {
        let mut u = url::form_urlencoded::Serializer::new(String::from("/admin/logs?"));
        u.append_pair("log", if audit { "audit" } else { "access" });
        for (k, v) in [("user_id", &user_id), ("kind", &kind), ("status", &status)] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("page", &pg.to_string());
        u.finish()
    };
    let csrf = session_csrf(&p);
    let html = AdminLogsPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        audit,
        total: t.fill("admin.total", &[("n", &total.to_string())]),
        prev: (page_no > 0).then(|| link(page_no - 1)),
        next: ((page_no + 1) * LOG_ROWS < total).then(|| link(page_no + 1)),
        rows,
        user_id,
        kind,
        status,
    }
    .render()?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}

pub(super) struct UserRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    mfa: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "portal/admin_users.html")]
pub(super) struct AdminUsersPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    total: String,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    /// (role, label key, requires two-factor)
    policies: Vec<(&'static str, &'static str, bool)>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    /// Paper trading is halted on the whole site.
    site_halted: bool,
}

pub(super) fn role_key(role: Role) -> &'static str {
    match role {
        Role::Admin => msg("role.admin"),
        Role::Analyst => msg("role.analyst"),
        Role::Investor => msg("role.investor"),
        Role::Auditor => msg("role.auditor"),
    }
}

pub(super) async fn admin_users_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> UiResult {
    let page_of_users = admin::list_users(state.app(), p, Paging::new(Some(0), Some(200))?).await?;
    let policies = admin::role_policies(state.app(), p).await?;
    let site_halted = haechi_app::paper::site_halted(state.app()).await?;
    let csrf = session_csrf(p);
    let html = AdminUsersPage {
        policies: policies.into_iter().map(|(r, required)| (r.as_str(), role_key(r), required)).collect(),
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        total: t.fill("admin.total", &[("n", &page_of_users.total.to_string())]),
        users: page_of_users
            .items
            .into_iter()
            .map(|u| UserRow {
                id: u.id.get(),
                email: u.email,
                name: u.display_name,
                role: u.role.as_str().to_owned(),
                mfa: u.mfa_enabled,
                disabled: u.disabled,
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| (r.as_str(), role_key(*r))).collect(),
        notice,
        error,
        site_halted,
    }
    .render()?;
    Ok(page(status, Ok(html), cookies))
}

/// Users with their role, two-factor state and account state; admins change them here.
pub(super) async fn admin_users(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<ManageUsers>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let has = |flag: &str| q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == flag));
    let notice = if has("changed=1") {
        Some(msg("admin.changed"))
    } else if has("policy=1") {
        Some(msg("admin.policy_saved"))
    } else if has("halt=1") {
        Some(msg("admin.trading_halted"))
    } else if has("halt=0") {
        Some(msg("admin.trading_resumed"))
    } else {
        None
    };
    admin_users_render(&state, t, &p, notice, None, StatusCode::OK, lang_cookie.into_iter().collect()).await
}

#[derive(Debug, Deserialize)]
pub(super) struct UserForm {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

pub(super) async fn admin_user_update(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<ManageUsers>,
    Form(f): Form<UserForm>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    let change = UserChange {
        role: f.role.as_deref().and_then(Role::parse),
        disabled: f.disabled.as_deref().map(|d| d == "true"),
    };
    match admin::update_user(state.app(), &meta, &p, UserId(id), change).await {
        Ok(_) => Ok(Redirect::to("/admin/users?changed=1").into_response()),
        Err(AppError::Invalid(_)) => {
            admin_users_render(
                &state,
                t,
                &p,
                None,
                Some(msg("admin.self_change")),
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TradingHaltForm {
    halted: String,
}

/// Halts or resumes paper trading on the whole site (audited as `site_trading_halted` /
/// `site_trading_resumed`).
pub(super) async fn admin_trading_halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Signed(p, ..): Signed<ManagePolicies>,
    Form(f): Form<TradingHaltForm>,
) -> UiResult {
    let halted = f.halted == "1";
    haechi_app::paper::set_site_halt(state.app(), &meta, &p, halted).await?;
    Ok(Redirect::to(if halted { "/admin/users?halt=1" } else { "/admin/users?halt=0" }).into_response())
}

/// Sets the two-factor requirement of every role from the checked boxes.
pub(super) async fn admin_policies(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Signed(p, ..): Signed<ManagePolicies>,
    body: axum::body::Bytes,
) -> UiResult {
    // Repeated `require_mfa` fields: one per checked role.
    let checked: Vec<String> =
        url::form_urlencoded::parse(&body).filter(|(k, _)| k == "require_mfa").map(|(_, v)| v.into_owned()).collect();
    for role in Role::ALL {
        let require = checked.iter().any(|c| c == role.as_str());
        admin::set_role_mfa(state.app(), &meta, &p, role, require).await?;
    }
    Ok(Redirect::to("/admin/users?policy=1").into_response())
}
