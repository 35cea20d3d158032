//! API tokens for apps and agents (`Authorization: Bearer …`): created by a person after a
//! fresh re-authentication, stored as a hash, listed and revoked by their owner.

use crate::accounts::{Reauth, reauthenticate};
use crate::audit::{RequestMeta, record};
use crate::auth::{random_token, sha256_hex};
use crate::error::{AppError, AppResult, FieldProblem};
use crate::principal::Principal;
use crate::rbac::{Permission, allows};
use crate::{App, Scope, TokenId};
use haechi_db::NewToken;
use serde_json::json;

/// A token as its owner may see it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub name: String,
    /// The secret's first characters, to tell tokens apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<haechi_db::ApiToken> for TokenInfo {
    fn from(t: haechi_db::ApiToken) -> TokenInfo {
        TokenInfo {
            id: TokenId(t.id),
            name: t.name,
            prefix: t.prefix,
            scopes: t.scopes.split_whitespace().filter_map(Scope::parse).collect(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// What a new token is asked to be.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub name: &'a str,
    /// Scope names as given (`read`, `trade`, `admin`), checked here.
    pub scopes: &'a [String],
    /// 1–365; `None` never expires.
    pub expires_in_days: Option<u32>,
    pub proof: Reauth<'a>,
}

/// Validates a token request (every problem at once), re-authenticates the person and creates
/// the token. The secret is in the answer only.
///
/// # Errors
/// [`AppError::Invalid`] with the problems or a failed re-authentication.
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    req: TokenRequest<'_>,
) -> AppResult<(TokenInfo, String)> {
    p.require_person()?;
    let mut problems = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldProblem::new("name", "must be 1 to 100 characters"));
    }
    let mut scopes = Vec::new();
    for (i, s) in req.scopes.iter().enumerate() {
        match Scope::parse(s) {
            Some(Scope::Admin) if !allows(p.role(), Permission::ManageUsers) => {
                problems.push(FieldProblem::new(format!("scopes[{i}]"), "admin scope needs the admin role"));
            }
            Some(sc) if !scopes.contains(&sc) => scopes.push(sc),
            Some(_) => {}
            None => problems.push(FieldProblem::new(format!("scopes[{i}]"), "must be read, trade or admin")),
        }
    }
    if scopes.is_empty() && problems.is_empty() {
        problems.push(FieldProblem::new("scopes", "must name at least one scope"));
    }
    if req.expires_in_days.is_some_and(|d| !(1..=365).contains(&d)) {
        problems.push(FieldProblem::new("expires_in_days", "must be between 1 and 365"));
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    // Tokens cannot mint tokens: only a person with the password (and code) can.
    reauthenticate(app, meta, p, &req.proof).await?;
    scopes.sort();
    let secret = format!("hae_{}", random_token(32)?);
    let now = app.now_ms();
    let t = app
        .db()
        .create_token(NewToken {
            user_id: p.id().get(),
            name,
            token_hash: sha256_hex(&secret),
            prefix: secret.chars().take(10).collect(),
            scopes: scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            created_at: now,
            expires_at: req.expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
        })
        .await?;
    record(app, meta, "token_created", Some(p.id()), None, json!({"token_id": t.id, "scopes": t.scopes})).await;
    crate::guard::after_account_event(app, meta, p.id()).await;
    Ok((TokenInfo::from(t), secret))
}

/// The caller's tokens, revoked ones included.
///
/// # Errors
/// The database's.
pub async fn list(app: &App, p: &Principal) -> AppResult<Vec<TokenInfo>> {
    p.require_person()?;
    Ok(app.db().list_tokens(p.id().get()).await?.into_iter().map(TokenInfo::from).collect())
}

/// Revokes one of the caller's tokens.
///
/// # Errors
/// [`AppError::NotFound`] for a token that is not the caller's (or already revoked).
pub async fn revoke(app: &App, meta: &RequestMeta, p: &Principal, id: TokenId) -> AppResult<()> {
    p.require_person()?;
    if !app.db().revoke_token(p.id().get(), id.get()).await? {
        return Err(AppError::NotFound);
    }
    app.cache().invalidate_user(p.id());
    record(app, meta, "token_revoked", Some(p.id()), None, json!({"token_id": id.get()})).await;
    Ok(())
}
