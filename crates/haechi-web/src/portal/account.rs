//! The security page: two-factor enrolment, signed-in devices, API tokens.

use super::*;

#[derive(Template)]
#[template(path = "portal/account.html")]
pub(super) struct AccountPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    mfa_enabled: bool,
    recovery_left: String,
    enrolment: Option<crate::routes::me::TotpEnrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    token_error: Option<&'static str>,
    token_days: Vec<(u32, String)>,
}

pub(super) struct SessionRow {
    handle: String,
    ip: String,
    agent: String,
    created: String,
    seen: String,
    current: bool,
}

pub(super) struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    seen: String,
    revoked: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn account_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    enrolment: Option<crate::routes::me::TotpEnrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> Response {
    account_render_with(state, t, p, enrolment, recovery_codes, error, status, cookies, (None, None)).await
}

/// As [`account_render`], with a just-created token or a token error to show.
#[allow(clippy::too_many_arguments)]
pub(super) async fn account_render_with(
    state: &AppState,
    t: Tr,
    p: &Principal,
    enrolment: Option<crate::routes::me::TotpEnrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
    token: (Option<String>, Option<&'static str>),
) -> Response {
    let left = match state.db().unused_recovery_codes(p.user.id).await {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let current = match &p.via {
        AuthVia::Session { handle, .. } => Some(handle.clone()),
        AuthVia::Token { .. } => None,
    };
    let sessions = match state.db().list_sessions(p.user.id).await {
        Ok(list) => list
            .into_iter()
            .map(|s| SessionRow {
                current: current.as_deref() == Some(s.handle.as_str()),
                handle: s.handle,
                ip: s.ip,
                agent: s.user_agent,
                created: kst(s.created_at),
                seen: kst(s.last_seen_at),
            })
            .collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tokens = match state.db().list_tokens(p.user.id).await {
        Ok(list) => list
            .into_iter()
            .map(|k| TokenRow {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                scopes: k.scopes,
                created: kst(k.created_at),
                seen: k.last_used_at.map(kst).unwrap_or_default(),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let csrf = session_csrf(p);
    let html = AccountPage {
        sessions,
        tokens,
        new_token: token.0,
        token_error: token.1,
        token_days: [30u32, 90, 365].iter().map(|d| (*d, t.fill("token.days", &[("n", &d.to_string())]))).collect(),
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        mfa_enabled: p.user.mfa_enabled || !recovery_codes.is_empty(),
        recovery_left: t.fill("account.recovery_left", &[("n", &left.to_string())]),
        enrolment,
        recovery_codes,
        error,
    }
    .render();
    page(status, html, cookies)
}

pub(super) async fn account_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    account_render(&state, t, &p, None, Vec::new(), None, StatusCode::OK, lang_cookie.into_iter().collect()).await
}

pub(super) async fn account_mfa_begin(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::me::begin_totp(&state, &p.user).await {
        Ok(enrolment) => {
            account_render(&state, t, &p, Some(enrolment), Vec::new(), None, StatusCode::OK, Vec::new()).await
        }
        Err(ApiError::Conflict(_)) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    code: String,
}

pub(super) async fn account_mfa_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::me::confirm_totp(&state, &client, &p.user, f.code.trim()).await {
        Ok(codes) => account_render(&state, t, &p, None, codes, None, StatusCode::OK, Vec::new()).await,
        Err(ApiError::Validation(_)) => {
            let secret = p.user.totp_secret.clone().unwrap_or_default();
            match crate::routes::me::enrolment_of(&secret, &p.user.email) {
                Ok(e) => {
                    account_render(
                        &state,
                        t,
                        &p,
                        Some(e),
                        Vec::new(),
                        Some(msg("account.bad_code")),
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Vec::new(),
                    )
                    .await
                }
                Err(e) => e.into_response(),
            }
        }
        Err(ApiError::Conflict(_)) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Ends another of the user's own sessions (a stranger's handle is simply not found).
pub(super) async fn account_session_end(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(handle): axum::extract::Path<String>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match state.db().delete_session_by_handle(p.user.id, &handle).await {
        Ok(true) => {
            crate::routes::audit(
                &state,
                &client,
                "session_revoked",
                Some(p.user.id),
                None,
                serde_json::json!({"session": handle}),
            )
            .await;
            Redirect::to("/account").into_response()
        }
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Revokes one of the user's own API tokens.
pub(super) async fn account_token_revoke(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match state.db().revoke_token(p.user.id, id).await {
        Ok(true) => {
            state.cache().invalidate_user(p.user.id);
            crate::routes::audit(
                &state,
                &client,
                "token_revoked",
                Some(p.user.id),
                None,
                serde_json::json!({"token_id": id}),
            )
            .await;
            Redirect::to("/account").into_response()
        }
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Creates an API token after re-authentication (the API's own rules); the secret is shown once.
pub(super) async fn account_token_create(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    body: axum::body::Bytes,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match allowed(principal, Permission::OwnAccount) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let req = crate::routes::me::CreateTokenRequest {
        name: one("name"),
        scopes: fields.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect(),
        expires_in_days: one("days").parse().ok(),
        password: one("password"),
        totp_code: Some(one("totp_code")).filter(|c| !c.is_empty()),
    };
    let (token, status) = match crate::routes::me::mint_token(&state, &client, &p, &req).await {
        Ok(created) => ((Some(created.token), None), StatusCode::OK),
        // The API answers a wrong password or code as a problem with that field.
        Err(ApiError::Validation(problems))
            if problems.iter().any(|e| matches!(e.field.as_str(), "password" | "totp_code" | "recovery_code")) =>
        {
            ((None, Some(msg("token.reauth"))), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(ApiError::Validation(_)) => ((None, Some(msg("token.invalid"))), StatusCode::UNPROCESSABLE_ENTITY),
        Err(ApiError::InvalidCredentials | ApiError::MfaRequired) => {
            ((None, Some(msg("token.reauth"))), StatusCode::UNAUTHORIZED)
        }
        Err(e) => return e.into_response(),
    };
    account_render_with(&state, t, &p, None, Vec::new(), None, status, Vec::new(), token).await
}
