//! Two-factor authentication: TOTP enrolment (a secret, inactive until a code confirms it),
//! recovery codes, and turning it off.

use crate::App;
use crate::accounts::{Reauth, normalise_recovery, own_row, reauthenticate};
use crate::audit::{RequestMeta, record};
use crate::auth::{recovery_code, sha256_hex, totp};
use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use serde_json::json;

/// What an authenticator app needs: the secret, its `otpauth://` URI and the URI as a QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Base32, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// Inline SVG.
    pub qr_svg: String,
}

/// Starts enrolment: a new secret, stored but inactive until confirmed.
///
/// # Errors
/// [`AppError::Conflict`] when two-factor authentication is already on.
pub async fn begin(app: &App, p: &Principal) -> AppResult<Enrolment> {
    p.require_person()?;
    if p.user.mfa_enabled {
        return Err(AppError::Conflict("two-factor authentication is already on; disable it first".into()));
    }
    let secret = totp::new_secret();
    let enrolment = enrolment_of(&secret, &p.user.email)?;
    app.db().set_totp_secret(p.id().get(), Some(secret)).await?;
    Ok(enrolment)
}

/// The enrolment in progress, shown again after a wrong confirmation code.
///
/// # Errors
/// [`AppError::Conflict`] when none is in progress.
pub async fn pending(app: &App, p: &Principal) -> AppResult<Enrolment> {
    let user = own_row(app, p).await?;
    match user.totp_secret.filter(|_| !user.mfa_enabled) {
        Some(secret) => enrolment_of(&secret, &user.email),
        None => Err(AppError::Conflict("no enrolment in progress".into())),
    }
}

fn enrolment_of(secret: &str, email: &str) -> AppResult<Enrolment> {
    let uri = totp::uri(secret, email)?;
    let qr_svg = totp::qr_svg(&uri)?;
    Ok(Enrolment { secret: secret.to_owned(), otpauth_uri: uri, qr_svg })
}

/// Turns MFA on when `code` matches the pending secret; returns ten recovery codes, shown once.
///
/// # Errors
/// [`AppError::Conflict`] with no enrolment in progress; [`AppError::Invalid`] at `code` when
/// it does not match.
pub async fn confirm(app: &App, meta: &RequestMeta, p: &Principal, code: &str) -> AppResult<Vec<String>> {
    p.require_person()?;
    let user = own_row(app, p).await?;
    let Some(secret) = user.totp_secret.clone().filter(|_| !user.mfa_enabled) else {
        return Err(AppError::Conflict("no enrolment in progress: POST /api/v1/me/mfa/totp first".into()));
    };
    let Some(step) = totp::matching_step(&secret, code, app.clock().unix_secs())? else {
        return Err(AppError::invalid("code", "does not match the authenticator"));
    };
    let codes = (0..10).map(|_| recovery_code()).collect::<Result<Vec<_>, _>>()?;
    let hashes = codes.iter().map(|c| sha256_hex(&normalise_recovery(c))).collect();
    app.db().enable_mfa(user.id, step, hashes).await?;
    app.cache().invalidate_user(p.id());
    record(app, meta, "mfa_enabled", Some(p.id()), None, json!({})).await;
    Ok(codes)
}

/// Turns MFA off after a fresh re-authentication (a recovery code may stand in for the code).
///
/// # Errors
/// [`AppError::Conflict`] when MFA is off; [`AppError::Invalid`] for a failed re-authentication.
pub async fn disable(app: &App, meta: &RequestMeta, p: &Principal, proof: Reauth<'_>) -> AppResult<()> {
    p.require_person()?;
    if !p.user.mfa_enabled {
        return Err(AppError::Conflict("two-factor authentication is not on".into()));
    }
    reauthenticate(app, meta, p, &proof).await?;
    app.db().disable_mfa(p.id().get()).await?;
    app.cache().invalidate_user(p.id());
    record(app, meta, "mfa_disabled", Some(p.id()), None, json!({})).await;
    crate::guard::after_account_event(app, meta, p.id()).await;
    Ok(())
}

/// How many unused recovery codes the caller has left.
///
/// # Errors
/// The database's.
pub async fn recovery_codes_left(app: &App, p: &Principal) -> AppResult<u64> {
    p.require_person()?;
    Ok(app.db().unused_recovery_codes(p.id().get()).await?)
}
