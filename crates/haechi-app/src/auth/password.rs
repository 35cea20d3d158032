//! Password hashing with argon2id, off the async runtime.

use crate::error::{AppError, AppResult, FieldProblem};
use crate::metrics_names;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How many argon2 computations run at once in this process. Each takes about 19 MiB and a
/// core for a moment: unbounded, a burst of registrations or sign-ins exhausts memory (issue
/// 13). Sized to the cores, at least 2 and at most 8 (8 × 19 MiB ≈ 152 MiB at the peak).
fn slot_count() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).clamp(2, 8)
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(slot_count()))
}

/// How long a request waits for a hashing slot before it is told to come back.
const SLOT_WAIT: Duration = Duration::from_secs(2);
/// What a refused request is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most argon2 computations that ran at once in this process so far (for tests and the
/// load benchmark).
#[must_use]
pub fn peak_in_flight() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The threads that hash, one per slot. Fixed threads, not the runtime's blocking pool: the
/// allocator keeps an arena per thread, and argon2's 19 MiB landing on a new blocking thread each
/// time would leave that much behind on dozens of threads.
fn workers() -> &'static std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>> {
    static WORKERS: OnceLock<std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>> = OnceLock::new();
    WORKERS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(64);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..slot_count() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("haechi-hash-{i}")).spawn(move || {
                loop {
                    // The lock is held only while taking a job, not while running it.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-hashing thread");
            }
        }
        tx
    })
}

/// Runs `f` on a hashing thread once a slot is free.
async fn with_slot<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let Ok(Ok(permit)) = tokio::time::timeout(SLOT_WAIT, slots().acquire()).await else {
        metrics::counter!(metrics_names::PASSWORD_HASH_REFUSED).increment(1);
        return Err(AppError::Unavailable { retry_after: RETRY_AFTER });
    };
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = workers().send(Box::new(move || {
        let _ = tx.send(f());
    }));
    let out = match sent {
        Ok(()) => rx.await.map_err(|e| AppError::internal("password hashing thread", e)),
        Err(e) => Err(AppError::internal("password hashing threads", e.to_string())),
    };
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    drop(permit);
    out
}

/// Hashes a password (argon2id, default parameters, random salt) in the bounded pool.
///
/// # Errors
/// [`AppError::Unavailable`] when every hashing slot stayed busy; [`AppError::Internal`] if
/// hashing fails.
pub async fn hash(password: String) -> AppResult<String> {
    with_slot(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal("argon2", e.to_string()))
    })
    .await?
}

/// Verifies `password` against `stored`, or against a fixed dummy hash when there is no
/// account, so that an unknown email costs the same time as a wrong password.
///
/// # Errors
/// [`AppError::Unavailable`] when every hashing slot stayed busy.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    let dummy = stored.is_none();
    let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
    with_slot(move || {
        let ok = PasswordHash::new(&stored)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        ok && !dummy
    })
    .await
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
        assert!(verify("correct horse battery".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse battery".into(), Some(h)).await.unwrap());
        assert!(!verify("haechi dummy password for timing".into(), None).await.unwrap());
    }
}
