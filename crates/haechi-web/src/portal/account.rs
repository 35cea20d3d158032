//! The security page: two-factor enrolment, signed-in devices, API tokens.

use super::*;
use haechi_app::accounts::Reauth;
use haechi_app::tokens::TokenRequest;
use haechi_app::{TokenId, mfa, sessions, tokens};

#[derive(Template)]
#[template(path = "portal/account.html")]
pub(super) struct AccountPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    mfa_enabled: bool,
    recovery_left: String,
    enrolment: Option<mfa::Enrolment>,
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

/// What the security page shows besides the lists: an enrolment in progress, recovery codes
/// just issued, a token just created, and a message.
#[derive(Debug, Default)]
pub(super) struct AccountView {
    enrolment: Option<mfa::Enrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    new_token: Option<String>,
    token_error: Option<&'static str>,
}

/// Renders the security page with the caller's sessions and tokens.
pub(super) async fn account_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    view: AccountView,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> UiResult {
    let app = state.app();
    let left = mfa::recovery_codes_left(app, p).await?;
    let sessions = sessions::list(app, p)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: s.current,
            handle: s.handle,
            ip: s.ip,
            agent: s.user_agent,
            created: kst(s.created_at),
            seen: kst(s.last_seen_at),
        })
        .collect();
    let tokens = tokens::list(app, p)
        .await?
        .into_iter()
        .map(|k| TokenRow {
            id: k.id.get(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            created: kst(k.created_at),
            seen: k.last_used_at.map(kst).unwrap_or_default(),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let csrf = session_csrf(p);
    let html = AccountPage {
        sessions,
        tokens,
        new_token: view.new_token,
        token_error: view.token_error,
        token_days: [30u32, 90, 365].iter().map(|d| (*d, t.fill("token.days", &[("n", &d.to_string())]))).collect(),
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        mfa_enabled: p.user.mfa_enabled || !view.recovery_codes.is_empty(),
        recovery_left: t.fill("account.recovery_left", &[("n", &left.to_string())]),
        enrolment: view.enrolment,
        recovery_codes: view.recovery_codes,
        error: view.error,
    }
    .render()?;
    Ok(page(status, Ok(html), cookies))
}

pub(super) async fn account_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    account_render(&state, t, &p, AccountView::default(), StatusCode::OK, lang_cookie.into_iter().collect()).await
}

pub(super) async fn account_mfa_begin(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    match mfa::begin(state.app(), &p).await {
        Ok(enrolment) => {
            let view = AccountView { enrolment: Some(enrolment), ..AccountView::default() };
            account_render(&state, t, &p, view, StatusCode::OK, Vec::new()).await
        }
        Err(AppError::Conflict(_)) => Ok(Redirect::to("/account").into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    code: String,
}

pub(super) async fn account_mfa_confirm(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
    Form(f): Form<ConfirmForm>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    match mfa::confirm(state.app(), &meta, &p, f.code.trim()).await {
        Ok(codes) => {
            let view = AccountView { recovery_codes: codes, ..AccountView::default() };
            account_render(&state, t, &p, view, StatusCode::OK, Vec::new()).await
        }
        Err(AppError::Invalid(_)) => {
            let view = AccountView {
                enrolment: Some(mfa::pending(state.app(), &p).await?),
                error: Some(msg("account.bad_code")),
                ..AccountView::default()
            };
            account_render(&state, t, &p, view, StatusCode::UNPROCESSABLE_ENTITY, Vec::new()).await
        }
        Err(AppError::Conflict(_)) => Ok(Redirect::to("/account").into_response()),
        Err(e) => Err(e.into()),
    }
}

/// Ends another of the user's own sessions (a stranger's handle is simply not found).
pub(super) async fn account_session_end(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(handle): axum::extract::Path<String>,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    sessions::revoke(state.app(), &meta, &p, &handle).await?;
    Ok(Redirect::to("/account").into_response())
}

/// Revokes one of the user's own API tokens.
pub(super) async fn account_token_revoke(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    tokens::revoke(state.app(), &meta, &p, TokenId(id)).await?;
    Ok(Redirect::to("/account").into_response())
}

/// Creates an API token after re-authentication (the API's own rules); the secret is shown once.
pub(super) async fn account_token_create(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
    body: axum::body::Bytes,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let scopes: Vec<String> = fields.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let (name, password, code) = (one("name"), one("password"), one("totp_code"));
    let ask = TokenRequest {
        name: &name,
        scopes: &scopes,
        expires_in_days: one("days").parse().ok(),
        proof: Reauth {
            password: &password,
            totp_code: Some(code.as_str()).filter(|c| !c.is_empty()),
            recovery_code: None,
        },
    };
    let (view, status) = match tokens::create(state.app(), &meta, &p, ask).await {
        Ok((_, secret)) => (AccountView { new_token: Some(secret), ..AccountView::default() }, StatusCode::OK),
        // A wrong password or code is a problem at that field.
        Err(AppError::Invalid(problems))
            if problems.iter().any(|e| matches!(e.field.as_str(), "password" | "totp_code" | "recovery_code")) =>
        {
            (
                AccountView { token_error: Some(msg("token.reauth")), ..AccountView::default() },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(AppError::Invalid(_)) => (
            AccountView { token_error: Some(msg("token.invalid")), ..AccountView::default() },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => return Err(e.into()),
    };
    account_render(&state, t, &p, view, status, Vec::new()).await
}
