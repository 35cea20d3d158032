//! Brute-force defence as a small state machine over (failures, last failure, blocked until),
//! kept per account (`acct:<email>`) and per client address (`ip:<addr>`). Time is an
//! argument, so the rules are tested without sleeping.
//!
//! - A failure older than the lock period is forgotten before counting a new one.
//! - From the 3rd consecutive failure on, the key is blocked for 1, 2, 4, … seconds
//!   (exponential backoff) — enough to make guessing slow, short enough not to bother a typo.
//! - At `max_failures` the key is locked for the lock period.
//! - A blocked key is refused before the password is even checked (429 + `Retry-After`).
//! - A successful login clears the account's key.

use haechi_db::entity::login_throttle::Model;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: u32,
    pub lock: Duration,
}

/// How many times more failures an address may make than an account: several people can
/// share one address (a school network), and a lock there hurts everyone behind it.
pub const IP_MULTIPLIER: u32 = 4;

/// Seconds left on a block at `now_ms`, if blocked.
#[must_use]
pub fn retry_after(state: Option<&Model>, now_ms: i64) -> Option<u64> {
    let s = state?;
    (s.blocked_until > now_ms).then(|| ((s.blocked_until - now_ms) as u64).div_ceil(1000))
}

/// How long a key is blocked after its `failures`-th failure, in ms (0: not at all).
#[must_use]
pub fn block_after(failures: i32, policy: Policy) -> i64 {
    let lock_ms = i64::try_from(policy.lock.as_millis()).unwrap_or(i64::MAX);
    if u32::try_from(failures).unwrap_or(0) >= policy.max_failures {
        lock_ms
    } else if failures >= 3 {
        1000 * (1i64 << (failures - 3).min(16))
    } else {
        0
    }
}

/// The state after one more failure at `now_ms`.
#[must_use]
pub fn after_failure(key: &str, state: Option<Model>, now_ms: i64, policy: Policy) -> Model {
    let lock_ms = i64::try_from(policy.lock.as_millis()).unwrap_or(i64::MAX);
    let previous = state.filter(|s| now_ms - s.last_failure_at < lock_ms).map_or(0, |s| s.failures);
    let failures = previous.saturating_add(1);
    let block = block_after(failures, policy);
    Model {
        key: key.to_owned(),
        failures,
        last_failure_at: now_ms,
        blocked_until: if block > 0 { now_ms + block } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { max_failures: 5, lock: Duration::from_secs(900) };

    #[test]
    fn backoff_then_lock_then_forgiveness() {
        let mut s = None;
        let mut t = 1_000_000;
        let mut blocks = Vec::new();
        for _ in 0..5 {
            let next = after_failure("acct:x", s.take(), t, P);
            blocks.push(retry_after(Some(&next), t));
            s = Some(next);
            t += 10;
        }
        assert_eq!(blocks, [None, None, Some(1), Some(2), Some(900)]);
        let locked = s.clone().unwrap();
        assert_eq!(retry_after(Some(&locked), locked.last_failure_at + 899_000), Some(1));
        assert_eq!(retry_after(Some(&locked), locked.last_failure_at + 900_000), None);
        // Long after, the count starts again from one.
        let later = after_failure("acct:x", s, locked.last_failure_at + 901_000, P);
        assert_eq!(later.failures, 1);
        assert_eq!(retry_after(Some(&later), later.last_failure_at), None);
    }
}
