//! Accounts: registration, sign-in with lockout and the second factor, sign-out, password
//! change and re-authentication. One path for the API, the portal and the CLI.

use crate::audit::{RequestMeta, record};
use crate::auth::throttle::{self, IP_MULTIPLIER, Policy};
use crate::auth::{email_tag, normalise_email, password, sha256_hex, totp};
use crate::error::{AppError, AppResult, AuthFailure, FieldProblem};
use crate::guard;
use crate::principal::{Account, AuthVia, Principal};
use crate::sessions::{self, StartedSession};
use crate::{App, Role, UserId};
use haechi_db::NewUser;
use serde_json::json;
use std::time::Duration;

/// Problems with an email address, at field `email`.
#[must_use]
pub fn email_problems(email: &str) -> Vec<FieldProblem> {
    let e = email.trim();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Vec::new()
    } else {
        vec![FieldProblem::new("email", "must be an email address such as name@example.com")]
    }
}

/// A new account's details.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: String,
    pub display_name: String,
    pub password: String,
    pub role: Role,
}

/// Validates (every problem at once) and creates an account: the one registration path of the
/// API, the portal (always `investor`) and the CLI (any role).
///
/// # Errors
/// [`AppError::Invalid`] with every problem; [`AppError::Conflict`] when the email is taken.
pub async fn register(app: &App, meta: &RequestMeta, new: Registration) -> AppResult<Account> {
    let email = normalise_email(&new.email);
    let name = new.display_name.trim().to_owned();
    let mut problems = email_problems(&email);
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        problems.push(FieldProblem::new("display_name", "must be 1 to 100 characters"));
    }
    problems.extend(password::policy_problems(&new.password, &email, &name));
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    // Per address, counted before the (costly) hash, so a flood from one address gets 429s
    // instead of queueing for the hashing pool.
    let per_hour = Policy { max_failures: app.settings().registrations_per_hour, lock: Duration::from_secs(3600) };
    let keys = [(format!("register:{}", meta.ip), per_hour)];
    if let Some(secs) = blocked(app, &keys).await? {
        return Err(AppError::RateLimited { retry_after: Duration::from_secs(secs) });
    }
    if Reserved::take(app, &keys).await?.is_err() {
        // The allowance is per hour: come back when it has passed.
        return Err(AppError::RateLimited { retry_after: per_hour.lock });
    }
    let hash = password::hash(new.password).await?;
    let user = app
        .db()
        .create_user(NewUser { email, display_name: name, password_hash: hash, role: new.role.as_str().into() })
        .await?;
    record(app, meta, "user_registered", Some(UserId(user.id)), None, json!({})).await;
    Ok(Account::from(&user))
}

/// Registration for anonymous callers (the API and the portal): answers the same whether or
/// not the address already has an account, so nobody can use it to learn which addresses are
/// registered. Both paths pay for the password hash before the insert finds the duplicate, so
/// timing tells nothing either. The owner of a taken address loses nothing: their account is
/// untouched, and the attempt is audited.
///
/// # Errors
/// As [`register`], except that a taken address is not an error.
pub async fn register_anonymous(app: &App, meta: &RequestMeta, new: Registration) -> AppResult<()> {
    match register(app, meta, new).await {
        Ok(_) => Ok(()),
        Err(AppError::Conflict(_)) => {
            record(app, meta, "registration_for_existing_email", None, None, json!({})).await;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// What a sign-in presents.
#[derive(Debug, Clone, Default)]
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: String,
    pub totp_code: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
}

/// The fail2ban-friendly line (see `deploy/fail2ban/`). Carries no email, only a tag.
fn log_auth_failure(meta: &RequestMeta, reason: &str, email: &str) {
    tracing::warn!(target: "haechi::auth", "haechi_auth_failure ip={} reason={} email_hash={}", meta.ip, reason, email_tag(email));
}

/// Attempts counted against throttle keys before anything is verified (see
/// [`haechi_db::Db::count_attempt`]): whatever arrives at once, no more guesses are checked
/// than the limit allows.
struct Reserved<'k> {
    keys: &'k [(String, Policy)],
    counts: Vec<i32>,
}

impl<'k> Reserved<'k> {
    /// Counts one attempt on every key. `Err(retry_after)` when a key is over its limit with
    /// attempts in flight: this attempt is refused unverified and not counted (it was never
    /// checked), so a burst of honest sign-ins from one school address is slowed to the limit,
    /// not locked out; only failures lock a key.
    async fn take(app: &App, keys: &'k [(String, Policy)]) -> AppResult<Result<Reserved<'k>, Duration>> {
        let now = app.now_ms();
        let mut counts = Vec::with_capacity(keys.len());
        let mut over = false;
        for (key, policy) in keys {
            let window = i64::try_from(policy.lock.as_millis()).unwrap_or(i64::MAX);
            let n = app.db().count_attempt(key, now, window).await?;
            over |= u32::try_from(n).unwrap_or(0) > policy.max_failures;
            counts.push(n);
        }
        if over {
            for (key, _) in keys {
                app.db().refund_attempt(key).await?;
            }
            return Ok(Err(BUSY_RETRY));
        }
        Ok(Ok(Reserved { keys, counts }))
    }

    /// The attempt failed: it stays counted, and each key backs off as its count says.
    async fn failed(self, app: &App) -> AppResult<()> {
        let now = app.now_ms();
        for ((key, policy), n) in self.keys.iter().zip(&self.counts) {
            let block = throttle::block_after(*n, *policy);
            if block > 0 {
                app.db().block_until(key, now.saturating_add(block)).await?;
            }
        }
        Ok(())
    }

    /// The attempt was not a failure: give it back on every key.
    async fn refund(self, app: &App) -> AppResult<()> {
        for (key, _) in self.keys {
            app.db().refund_attempt(key).await?;
        }
        Ok(())
    }

    /// The attempt succeeded: the first key (the account) starts over, the rest get it back.
    async fn succeeded(self, app: &App) -> AppResult<()> {
        let mut keys = self.keys.iter();
        if let Some((first, _)) = keys.next() {
            app.db().clear_throttle(first).await?;
        }
        for (key, _) in keys {
            app.db().refund_attempt(key).await?;
        }
        Ok(())
    }
}

/// What an attempt refused for too many attempts in flight is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

async fn blocked(app: &App, keys: &[(String, Policy)]) -> AppResult<Option<u64>> {
    let now = app.now_ms();
    let mut wait = None;
    for (key, _) in keys {
        wait = wait.max(throttle::retry_after(app.db().throttle(key).await?.as_ref(), now));
    }
    Ok(wait)
}

/// Checks the credentials (with lockout, audit and the second factor) and starts a session:
/// the one sign-in path of the API and the portal.
///
/// # Errors
/// [`AppError::RateLimited`] while the account or address is locked;
/// [`AppError::Unauthenticated`] with [`AuthFailure::InvalidCredentials`] (one answer for an
/// unknown email, a wrong password or code, and a disabled account) or
/// [`AuthFailure::MfaRequired`] when the password was right and a code is needed.
pub async fn sign_in(app: &App, meta: &RequestMeta, req: SignIn<'_>) -> AppResult<StartedSession> {
    let email = normalise_email(req.email);
    let s = app.settings();
    let acct = Policy { max_failures: s.login_max_failures, lock: s.login_lock };
    let ip = Policy { max_failures: s.login_max_failures.saturating_mul(IP_MULTIPLIER), lock: s.login_lock };
    let keys =
        [(format!("acct:{}", email.chars().take(254).collect::<String>()), acct), (format!("ip:{}", meta.ip), ip)];
    let locked = |secs: u64| AppError::RateLimited { retry_after: Duration::from_secs(secs) };
    if let Some(secs) = blocked(app, &keys).await? {
        blocked_attempt(app, meta, &email).await;
        return Err(locked(secs));
    }
    let reserved = match Reserved::take(app, &keys).await? {
        Ok(r) => r,
        Err(lock) => {
            blocked_attempt(app, meta, &email).await;
            return Err(locked(lock.as_secs()));
        }
    };
    let user = app.db().user_by_email(&email).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        other => {
            reserved.failed(app).await?;
            log_auth_failure(meta, "bad_credentials", &email);
            let uid = other.map(|u| UserId(u.id));
            let detail = json!({"reason": "bad_credentials", "email_hash": email_tag(&email)});
            record(app, meta, "login_failure", uid, None, detail).await;
            if let Some(uid) = uid {
                guard::after_failed_sign_in(app, meta, uid);
            }
            return Err(AppError::Unauthenticated(AuthFailure::InvalidCredentials));
        }
    };
    if user.mfa_enabled {
        let Some(accepted) = verify_second_factor(app, meta, &user, req.totp_code, req.recovery_code).await? else {
            // The password was right; asking for the code is not a failure.
            reserved.refund(app).await?;
            return Err(AppError::Unauthenticated(AuthFailure::MfaRequired));
        };
        if !accepted {
            reserved.failed(app).await?;
            log_auth_failure(meta, "bad_totp", &user.email);
            let detail = json!({"reason": "bad_second_factor"});
            record(app, meta, "login_failure", Some(UserId(user.id)), None, detail).await;
            guard::after_failed_sign_in(app, meta, UserId(user.id));
            return Err(AppError::Unauthenticated(AuthFailure::InvalidCredentials));
        }
    }
    reserved.succeeded(app).await?;
    let started = sessions::start(app, meta, &user).await?;
    // The device, as a short hash of the user agent: enough to tell a new one, nothing to read.
    let device: String = sha256_hex(&meta.user_agent).chars().take(12).collect();
    let detail = json!({"mfa": user.mfa_enabled, "device": device});
    record(app, meta, "login_success", Some(UserId(user.id)), None, detail).await;
    guard::after_account_event(app, meta, UserId(user.id)).await;
    // The scan may have locked the account (a success right after a stuffing burst): then
    // the session it just started is already gone, and the answer says so.
    if app.db().user_by_id(user.id).await?.is_some_and(|u| u.disabled) {
        return Err(AppError::Unauthenticated(AuthFailure::InvalidCredentials));
    }
    Ok(started)
}

/// An attempt refused while the account or address is locked: audited against the account
/// when the email is one (the security detectors count it as a failure), then scanned.
async fn blocked_attempt(app: &App, meta: &RequestMeta, email: &str) {
    log_auth_failure(meta, "locked", email);
    let uid = app.db().user_by_email(email).await.ok().flatten().map(|u| UserId(u.id));
    record(app, meta, "login_blocked", uid, None, json!({"email_hash": email_tag(email)})).await;
    if let Some(uid) = uid {
        guard::after_failed_sign_in(app, meta, uid);
    }
}

/// Checks a TOTP code (once per step) or, failing that, a recovery code (once ever).
/// `None` when neither was given. Shared by sign-in and by re-authentication.
pub(crate) async fn verify_second_factor(
    app: &App,
    meta: &RequestMeta,
    user: &haechi_db::User,
    code: Option<&str>,
    recovery: Option<&str>,
) -> AppResult<Option<bool>> {
    let secret = user.totp_secret.clone().unwrap_or_default();
    Ok(Some(match (code, recovery) {
        (Some(code), _) => match totp::matching_step(&secret, code, app.clock().unix_secs())? {
            Some(step) => app.db().consume_totp_step(user.id, step).await?,
            None => false,
        },
        (None, Some(rc)) => {
            let used = app.db().consume_recovery_code(user.id, &sha256_hex(&normalise_recovery(rc))).await?;
            if used {
                let left = app.db().unused_recovery_codes(user.id).await?;
                record(app, meta, "recovery_code_used", Some(UserId(user.id)), None, json!({"remaining": left})).await;
            }
            used
        }
        (None, None) => return Ok(None),
    }))
}

/// Recovery codes are shown grouped (`abcd-efgh-…`); accept them with or without dashes.
#[must_use]
pub fn normalise_recovery(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Fresh proof for a sensitive change: the password, and a second factor when MFA is on.
#[derive(Debug, Clone, Default)]
pub struct Reauth<'a> {
    pub password: &'a str,
    pub totp_code: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
}

/// The caller's own row, with its secrets, for the checks that need them.
pub(crate) async fn own_row(app: &App, p: &Principal) -> AppResult<haechi_db::User> {
    app.db().user_by_id(p.id().get()).await?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))
}

/// Checks a re-authentication and returns the caller's row.
///
/// # Errors
/// [`AppError::Invalid`] at `password` or `totp_code`.
pub(crate) async fn reauthenticate(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    proof: &Reauth<'_>,
) -> AppResult<haechi_db::User> {
    let user = own_row(app, p).await?;
    let s = app.settings();
    let keys = [(format!("reauth:{}", user.id), Policy { max_failures: s.login_max_failures, lock: s.login_lock })];
    // A stolen session must not become a password oracle: failures are counted before the
    // check, like sign-in's, and the limit ends the session.
    if let Some(secs) = blocked(app, &keys).await? {
        return Err(AppError::RateLimited { retry_after: Duration::from_secs(secs) });
    }
    let Ok(reserved) = Reserved::take(app, &keys).await? else {
        return Err(end_session(app, meta, p).await);
    };
    let mut problem = None;
    if !password::verify(proof.password.to_owned(), Some(user.password_hash.clone())).await? {
        problem = Some(FieldProblem::new("password", "is not your current password"));
    } else if user.mfa_enabled
        && verify_second_factor(app, meta, &user, proof.totp_code, proof.recovery_code).await? != Some(true)
    {
        problem = Some(FieldProblem::new("totp_code", "a current, unused one-time code is required"));
    }
    let Some(problem) = problem else {
        reserved.succeeded(app).await?;
        return Ok(user);
    };
    let count = reserved.counts[0];
    reserved.failed(app).await?;
    record(app, meta, "reauth_failure", Some(p.id()), None, json!({"field": problem.field})).await;
    if u32::try_from(count).unwrap_or(0) >= s.login_max_failures {
        return Err(end_session(app, meta, p).await);
    }
    Err(AppError::Invalid(vec![problem]))
}

/// Ends the caller's session after too many failed re-authentications; the error to answer.
async fn end_session(app: &App, meta: &RequestMeta, p: &Principal) -> AppError {
    if let AuthVia::Session { id_hash, .. } = &p.via
        && let Err(e) = app.db().delete_session(id_hash).await
    {
        return e.into();
    }
    record(app, meta, "session_ended_reauth", Some(p.id()), None, json!({})).await;
    AppError::Unauthenticated(AuthFailure::Missing)
}

/// Changes the password, ends every session and starts a fresh one for the caller.
///
/// # Errors
/// [`AppError::Forbidden`] unless signed in with a browser session; [`AppError::Invalid`] for
/// a new password the policy refuses or a failed re-authentication.
pub async fn change_password(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    proof: Reauth<'_>,
    new_password: String,
) -> AppResult<StartedSession> {
    p.require_person()?;
    let problems = password::policy_problems(&new_password, &p.user.email, &p.user.display_name);
    if !problems.is_empty() {
        return Err(AppError::Invalid(
            problems.into_iter().map(|x| FieldProblem::new("new_password", x.message)).collect(),
        ));
    }
    let user = reauthenticate(app, meta, p, &proof).await?;
    let hash = password::hash(new_password).await?;
    app.db().set_password(user.id, hash).await?;
    // Whoever knew the old password may have made tokens or sessions with it: every token is
    // revoked and every session, this one included, ends; the caller gets a fresh one.
    let revoked = app.db().revoke_all_tokens(user.id, app.now_ms()).await?;
    app.cache().invalidate_user(p.id());
    app.db().delete_other_sessions(user.id, None).await?;
    let started = sessions::start(app, meta, &user).await?;
    record(app, meta, "password_changed", Some(p.id()), None, json!({"tokens_revoked": revoked})).await;
    guard::after_account_event(app, meta, p.id()).await;
    Ok(started)
}
