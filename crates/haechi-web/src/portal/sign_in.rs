//! Registration, sign-in (with the second-factor step) and sign-out.

use super::*;
use haechi_app::accounts::{self, Registration, SignIn};
use haechi_app::{Role, sessions};

#[derive(Template)]
#[template(path = "portal/login.html")]
pub(super) struct LoginPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    form_token: &'a str,
    email: &'a str,
    mfa: bool,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

/// The sign-in form, with a fresh double-submit token when the browser has none.
pub(super) async fn login_page(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    MaybeSigned(principal): MaybeSigned,
) -> Response {
    if principal.is_some() {
        return Redirect::to("/").into_response();
    }
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let registered = q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "registered=1"));
    let notice = registered.then_some(msg("register.done"));
    form_page(t, &headers, lang_cookie, StatusCode::OK, |t, token| {
        LoginPage { t, user: None, csrf: "", form_token: token, email: "", mfa: false, error: None, notice }.render()
    })
}

/// Renders a signed-out form page with the double-submit token (a fresh one, and its cookie,
/// when the browser has none).
pub(super) fn form_page(
    t: Tr,
    headers: &HeaderMap,
    lang_cookie: Option<HeaderValue>,
    status: StatusCode,
    render: impl FnOnce(Tr, &str) -> Result<String, askama::Error>,
) -> Response {
    let mut cookies: Vec<HeaderValue> = lang_cookie.into_iter().collect();
    let token = match cookie(headers, FORM_COOKIE) {
        Some(t) if t.len() >= 32 => t,
        _ => {
            let Ok(fresh) = random_token(32) else { return ApiError::Internal("randomness".into()).into_response() };
            if let Ok(v) = HeaderValue::from_str(&format!("{FORM_COOKIE}={fresh}; Path=/; HttpOnly; SameSite=Strict")) {
                cookies.push(v);
            }
            fresh
        }
    };
    page(status, render(t, &token), cookies)
}

/// Whether the form's double-submit token matches its cookie.
pub(super) fn form_token_ok(headers: &HeaderMap, sent: &str) -> bool {
    let expected = cookie(headers, FORM_COOKIE).unwrap_or_default();
    !expected.is_empty() && constant_time_eq(sent, &expected)
}

pub(super) fn login_form(
    t: Tr,
    headers: &HeaderMap,
    lang_cookie: Option<HeaderValue>,
    status: StatusCode,
    email: &str,
    mfa: bool,
    error: Option<&'static str>,
) -> Response {
    form_page(t, headers, lang_cookie, status, |t, token| {
        LoginPage { t, user: None, csrf: "", form_token: token, email, mfa, error, notice: None }.render()
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp_code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default, rename = "_form")]
    form: String,
}

pub(super) fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub(super) async fn login_submit(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    if !form_token_ok(&headers, &f.form) {
        return login_form(
            t,
            &headers,
            lang_cookie,
            StatusCode::FORBIDDEN,
            &f.email,
            false,
            Some(msg("login.form_expired")),
        );
    }
    let (totp, recovery) = (non_empty(&f.totp_code), non_empty(&f.recovery_code));
    let attempt = SignIn { email: &f.email, password: f.password, totp_code: totp, recovery_code: recovery };
    match accounts::sign_in(state.app(), &meta, attempt).await {
        Ok(started) => {
            let session_cookie = match session_cookie(&started, state.settings().cookie_secure) {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
            let mut resp = Redirect::to("/").into_response();
            resp.headers_mut().append(header::SET_COOKIE, session_cookie);
            if let Some(c) = lang_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(AppError::Unauthenticated(AuthFailure::MfaRequired)) => login_form(
            t,
            &headers,
            lang_cookie,
            StatusCode::UNAUTHORIZED,
            &f.email,
            true,
            Some(msg("login.mfa_required")),
        ),
        Err(AppError::Unauthenticated(AuthFailure::InvalidCredentials)) if totp.is_some() || recovery.is_some() => {
            login_form(
                t,
                &headers,
                lang_cookie,
                StatusCode::UNAUTHORIZED,
                &f.email,
                true,
                Some(msg("login.invalid_code")),
            )
        }
        Err(AppError::Unauthenticated(AuthFailure::InvalidCredentials)) => {
            login_form(t, &headers, lang_cookie, StatusCode::UNAUTHORIZED, &f.email, false, Some(msg("login.invalid")))
        }
        Err(AppError::RateLimited { retry_after }) => {
            let mut resp = login_form(
                t,
                &headers,
                lang_cookie,
                StatusCode::TOO_MANY_REQUESTS,
                &f.email,
                false,
                Some(msg("login.locked")),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(other) => UiError::from(other).into_response(),
    }
}

#[derive(Template)]
#[template(path = "portal/register.html")]
pub(super) struct RegisterPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    form_token: &'a str,
    email: &'a str,
    display_name: &'a str,
    /// (field, message key), in form order.
    errors: Vec<(&'static str, &'static str)>,
}

impl RegisterPage<'_> {
    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|(f, _)| *f == field)
    }

    fn error_for(&self, field: &str) -> &'static str {
        self.errors.iter().find(|(f, _)| *f == field).map_or("", |(_, key)| self.t.get(key))
    }
}

pub(super) async fn register_page(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    MaybeSigned(principal): MaybeSigned,
) -> Response {
    if principal.is_some() {
        return Redirect::to("/").into_response();
    }
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    form_page(t, &headers, lang_cookie, StatusCode::OK, |t, token| {
        RegisterPage { t, user: None, csrf: "", form_token: token, email: "", display_name: "", errors: Vec::new() }
            .render()
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_form")]
    form: String,
}

/// Creates the account through the API's own validation; problems come back next to their
/// fields, in the page's language.
pub(super) async fn register_submit(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    if !form_token_ok(&headers, &f.form) {
        return login_form(t, &headers, lang_cookie, StatusCode::FORBIDDEN, "", false, Some(msg("login.form_expired")));
    }
    let new = Registration {
        email: f.email.clone(),
        display_name: f.display_name.clone(),
        password: f.password,
        role: Role::Investor,
    };
    // A taken address answers like a new one: the form must not reveal who has an account.
    let errors: Vec<(&'static str, &'static str)> = match accounts::register_anonymous(state.app(), &meta, new).await {
        Ok(_) => return Redirect::to("/login?registered=1").into_response(),
        Err(AppError::Invalid(problems)) => [
            ("email", msg("register.error.email")),
            ("display_name", msg("register.error.display_name")),
            ("password", msg("register.error.password")),
        ]
        .into_iter()
        .filter(|(field, _)| problems.iter().any(|p| p.field == *field))
        .collect(),
        Err(other) => return UiError::from(other).into_response(),
    };
    form_page(t, &headers, lang_cookie, StatusCode::UNPROCESSABLE_ENTITY, |t, token| {
        RegisterPage {
            t,
            user: None,
            csrf: "",
            form_token: token,
            email: &f.email,
            display_name: &f.display_name,
            errors,
        }
        .render()
    })
}

/// Ends the session when the form's token is the session's own (the CSRF check every
/// unsafe request gets; the form layer copies `_csrf` into the header it reads).
pub(super) async fn logout(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    caller: Result<Caller, ApiError>,
) -> UiResult {
    let p = match caller {
        Ok(Caller(p)) => p,
        Err(ApiError::Unauthenticated) => return Ok(Redirect::to("/login").into_response()),
        Err(e) => return Err(e.into()),
    };
    sessions::sign_out(state.app(), &meta, &p).await?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(header::SET_COOKIE, clear_cookie(state.settings().cookie_secure));
    Ok(resp)
}
