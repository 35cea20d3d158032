//! Password hashing with argon2id, off the async runtime.

use crate::error::{AppError, FieldProblem};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use std::sync::OnceLock;

/// Hashes a password (argon2id, default parameters, random salt) on a blocking thread.
///
/// # Errors
/// [`AppError::Internal`] if hashing fails.
pub async fn hash(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal("argon2", e.to_string()))
    })
    .await
    .map_err(|e| AppError::internal("hash task", e))?
}

/// Verifies `password` against `stored`, or against a fixed dummy hash when there is no
/// account, so that an unknown email costs the same time as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let dummy = stored.is_none();
    let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
    tokio::task::spawn_blocking(move || {
        let ok = PasswordHash::new(&stored)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        ok && !dummy
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default().hash_password(b"haechi dummy password for timing").map(|h| h.to_string()).unwrap_or_default()
    })
}

/// Password policy: at least 12 characters, at most 1,024, not containing the email's local
/// part or the display name.
#[must_use]
pub fn policy_problems(password: &str, email: &str, display_name: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let n = password.chars().count();
    if n < 12 {
        out.push(FieldProblem::new("password", "must be at least 12 characters"));
    }
    if n > 1024 {
        out.push(FieldProblem::new("password", "must be at most 1024 characters"));
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if !email.is_empty()
        && (lower.contains(&email.to_lowercase()) || (local.chars().count() >= 3 && lower.contains(&local)))
    {
        out.push(FieldProblem::new("password", "must not contain your email"));
    }
    let name = display_name.trim().to_lowercase();
    if name.chars().count() >= 2 && lower.contains(&name) {
        out.push(FieldProblem::new("password", "must not contain your display name"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rejects_short_and_personal_passwords() {
        assert!(policy_problems("correct horse battery", "a@b.c", "홍길동").is_empty());
        assert_eq!(policy_problems("short", "a@b.c", "x").len(), 1);
        assert_eq!(
            policy_problems("kim.minsu-2024-secret", "kim.minsu@example.com", "x")[0].message,
            "must not contain your email"
        );
        assert_eq!(
            policy_problems("i am 홍길동 and proud", "a@b.c", "홍길동")[0].message,
            "must not contain your display name"
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_pass() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("haechi dummy password for timing".into(), None).await);
    }
}
