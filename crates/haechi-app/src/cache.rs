//! A short-lived, in-process cache of bearer-token authentications and role policies.
//!
//! API clients (mobile apps, agents) call in tight loops; without a cache every request costs
//! three queries. Entries live at most [`TTL`]: a change made through this process
//! (revocation, role change, disabling, MFA) clears the affected entries at once, and a change
//! made by another `serve` process is seen within the TTL. That bounded staleness is the
//! price of the speed and is documented in `docs/security.md`.

use haechi_core::platform::UserId;
use haechi_db::{ApiToken, User};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(2);
/// Past this many entries the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub struct AuthCache {
    tokens: RwLock<HashMap<String, (Instant, ApiToken, User)>>,
    policies: RwLock<HashMap<String, (Instant, bool)>>,
}

impl AuthCache {
    #[must_use]
    pub fn token(&self, hash: &str) -> Option<(ApiToken, User)> {
        let map = self.tokens.read().ok()?;
        let (at, t, u) = map.get(hash)?;
        (at.elapsed() < TTL).then(|| (t.clone(), u.clone()))
    }

    pub fn put_token(&self, hash: String, token: ApiToken, user: User) {
        if let Ok(mut map) = self.tokens.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(hash, (Instant::now(), token, user));
        }
    }

    /// Forgets everything cached about a user (after any change to the user or their tokens).
    pub fn invalidate_user(&self, user: UserId) {
        let user_id = user.get();
        if let Ok(mut map) = self.tokens.write() {
            map.retain(|_, (_, t, u)| t.user_id != user_id && u.id != user_id);
        }
    }

    #[must_use]
    pub fn policy(&self, role: &str) -> Option<bool> {
        let map = self.policies.read().ok()?;
        let (at, v) = map.get(role)?;
        (at.elapsed() < TTL).then_some(*v)
    }

    pub fn put_policy(&self, role: &str, require: bool) {
        if let Ok(mut map) = self.policies.write() {
            map.insert(role.to_owned(), (Instant::now(), require));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> User {
        User {
            id,
            email: "a@b.c".into(),
            display_name: "a".into(),
            password_hash: String::new(),
            role: "investor".into(),
            disabled: false,
            totp_secret: None,
            mfa_enabled: false,
            totp_last_step: None,
            created_at: 0,
            password_changed_at: 0,
        }
    }

    fn token(id: i64, user_id: i64) -> ApiToken {
        ApiToken {
            id,
            user_id,
            name: "t".into(),
            token_hash: format!("h{id}"),
            prefix: String::new(),
            scopes: "read".into(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn entries_are_served_until_their_user_is_invalidated() {
        let c = AuthCache::default();
        c.put_token("h1".into(), token(1, 7), user(7));
        c.put_token("h2".into(), token(2, 8), user(8));
        assert_eq!(c.token("h1").map(|(t, _)| t.id), Some(1));
        c.invalidate_user(UserId(7));
        assert!(c.token("h1").is_none());
        assert!(c.token("h2").is_some(), "other users keep their entries");
        assert_eq!(c.policy("admin"), None);
        c.put_policy("admin", true);
        assert_eq!(c.policy("admin"), Some(true));
    }
}
