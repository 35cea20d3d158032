//! The one error of the use cases. Its kinds are what an edge needs to answer: the API maps
//! them to problem documents, the portal to pages, the CLI to messages. No HTTP here.

use std::collections::BTreeMap;
use std::time::Duration;

/// One invalid input: a path (`email`, `scopes[1]`, `spec.fill`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    /// What is wrong, in English.
    pub message: String,
    /// A stable code (scenario problems) so a client can word the message in its language.
    pub code: Option<String>,
    /// The values the message quotes, by placeholder name.
    pub params: BTreeMap<String, String>,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldProblem {
        FieldProblem { field: field.into(), message: message.into(), code: None, params: BTreeMap::new() }
    }

    /// A scenario validation problem at `field` (which may carry a prefix such as `spec.`).
    #[must_use]
    pub fn from_scenario(field: String, p: haechi_sim::scenario::Problem) -> FieldProblem {
        FieldProblem {
            field,
            message: p.message,
            code: Some(p.code.to_owned()),
            params: p.params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
}

/// Why a caller is not authenticated. The edges word these differently (a sign-in form asks
/// for the code; the API says 401 with a problem type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential, or one that is unknown, expired or revoked.
    Missing,
    /// Sign-in failed: one answer for unknown email, wrong password, wrong code and disabled account.
    InvalidCredentials,
    /// The password was right and the account needs a one-time code.
    MfaRequired,
    /// A cookie-authenticated unsafe request without the session's CSRF token.
    Csrf,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input ({} problems)", .0.len())]
    Invalid(Vec<FieldProblem>),
    /// A request the use case cannot read at all (not a field problem): a wrong media type.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthenticated: {0:?}")]
    Unauthenticated(AuthFailure),
    #[error("rate limited; retry after {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// A per-user quota is used up; `what` names it and its limit.
    #[error("quota: {0}")]
    Quota(String),
    /// The server is at a capacity limit it keeps on purpose (the password-hashing pool);
    /// nothing is wrong with the request.
    #[error("busy; retry after {} s", retry_after.as_secs())]
    Unavailable { retry_after: Duration },
    /// A fault of ours. `source` is kept for the one log line the edge writes; users see
    /// only that something went wrong and the request id.
    #[error("internal error: {context}: {source}")]
    Internal { context: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An internal error with what was being done.
    pub fn internal(context: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AppError {
        AppError::Internal { context, source: source.into() }
    }

    /// A single field problem.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid(vec![FieldProblem::new(field, message)])
    }
}

impl From<haechi_db::DbError> for AppError {
    fn from(e: haechi_db::DbError) -> AppError {
        match e {
            haechi_db::DbError::Conflict(what) => AppError::Conflict(format!("{what} already exists")),
            haechi_db::DbError::NotFound(_) => AppError::NotFound,
            other => AppError::internal("database", other),
        }
    }
}

impl From<haechi_objects::ObjectsError> for AppError {
    fn from(e: haechi_objects::ObjectsError) -> AppError {
        AppError::internal("object storage", e)
    }
}
