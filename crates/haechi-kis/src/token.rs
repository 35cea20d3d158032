//! The access token, issued at most once a minute per app key and shared by every process.
//!
//! KIS lets an app key issue one token a minute, notifies the account holder on every issuance,
//! and answers a second issuance within six hours with the same token. So the token lives in a
//! [`TokenStore`] shared by all processes (the database in Haechi), and issuing takes a lease in
//! that store: one caller issues, everyone else — in this process or another — waits for its
//! result instead of asking KIS too.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{BoxFuture, KisError, now_ms};

/// A token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub access_token: String,
    pub expires_at_ms: i64,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The shared state for one app key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSlot {
    pub token: Option<StoredToken>,
    /// When KIS last issued (or refused to issue) a token for this key.
    pub last_issue_ms: Option<i64>,
}

/// Where tokens are shared. Implementations must make `try_lease` atomic across processes.
pub trait TokenStore: Send + Sync + fmt::Debug {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<TokenSlot, String>>;
    /// Takes the issuing lease for `key` until `until_ms` if nobody holds a live one.
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>>;
    /// Records an issuance attempt at `issued_at_ms` (with its token, if KIS gave one) and
    /// releases `holder`'s lease.
    fn finish<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        token: Option<&'a StoredToken>,
        issued_at_ms: i64,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Releases `holder`'s lease without recording anything (the request never reached KIS).
    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

type Lease = Option<(String, i64)>;

/// A store for one process (tests, and a single-process setup without a database).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    /// Per key: the slot and the lease (holder, until).
    rows: Mutex<std::collections::HashMap<String, (TokenSlot, Lease)>>,
}

impl MemoryTokenStore {
    #[must_use]
    pub fn new() -> Arc<MemoryTokenStore> {
        Arc::new(MemoryTokenStore::default())
    }
}

impl TokenStore for MemoryTokenStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<TokenSlot, String>> {
        Box::pin(async move {
            let rows = self.rows.lock().map_err(|e| e.to_string())?;
            Ok(rows.get(key).map(|r| r.0.clone()).unwrap_or_default())
        })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut rows = self.rows.lock().map_err(|e| e.to_string())?;
            let row = rows.entry(key.to_owned()).or_default();
            match &row.1 {
                Some((_, until)) if *until > now_ms => Ok(false),
                _ => {
                    row.1 = Some((holder.to_owned(), until_ms));
                    Ok(true)
                }
            }
        })
    }

    fn finish<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        token: Option<&'a StoredToken>,
        issued_at_ms: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut rows = self.rows.lock().map_err(|e| e.to_string())?;
            let row = rows.entry(key.to_owned()).or_default();
            if let Some(t) = token {
                row.0.token = Some(t.clone());
            }
            row.0.last_issue_ms = Some(issued_at_ms);
            if row.1.as_ref().is_some_and(|(h, _)| h == holder) {
                row.1 = None;
            }
            Ok(())
        })
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut rows = self.rows.lock().map_err(|e| e.to_string())?;
            if let Some(row) = rows.get_mut(key)
                && row.1.as_ref().is_some_and(|(h, _)| h == holder)
            {
                row.1 = None;
            }
            Ok(())
        })
    }
}

/// Issues a token when asked; the REST client implements it with `POST /oauth2/tokenP`.
pub trait Issuer: Send + Sync {
    fn issue(&self) -> BoxFuture<'_, Result<crate::model::IssuedToken, KisError>>;
}

/// Lease length: long enough for one `tokenP` round trip with retries.
const LEASE: Duration = Duration::from_secs(30);
/// How often a caller waiting for another process's issuance looks again.
const POLL: Duration = Duration::from_millis(100);

/// Hands out a valid token, issuing one only when needed and allowed.
pub struct TokenManager {
    store: Arc<dyn TokenStore>,
    key: String,
    holder: String,
    min_interval_ms: i64,
    refresh_margin_ms: i64,
    /// The last good token, so most calls never touch the store.
    cached: Mutex<Option<StoredToken>>,
    /// A token KIS refused: never handed out again, even if the store still has it.
    rejected: Mutex<Option<String>>,
    /// Single flight within the process; the lease does it across processes.
    flight: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager").field("key", &self.key).field("store", &self.store).finish_non_exhaustive()
    }
}

impl TokenManager {
    /// `key` is the app key's fingerprint; `min_interval` is KIS's one-issuance-a-minute rule
    /// (shorter only against the fake server in tests).
    #[must_use]
    pub fn new(
        store: Arc<dyn TokenStore>,
        key: String,
        min_interval: Duration,
        refresh_margin: Duration,
    ) -> TokenManager {
        TokenManager {
            store,
            key,
            holder: uuid::Uuid::new_v4().to_string(),
            min_interval_ms: min_interval.as_millis() as i64,
            refresh_margin_ms: refresh_margin.as_millis() as i64,
            cached: Mutex::new(None),
            rejected: Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    fn usable(&self, t: &StoredToken, now: i64) -> bool {
        let rejected = self.rejected.lock().map(|r| r.as_deref() == Some(&t.access_token)).unwrap_or(false);
        !rejected && t.expires_at_ms > now
    }

    fn fresh(&self, t: &StoredToken, now: i64) -> bool {
        self.usable(t, now) && t.expires_at_ms - now > self.refresh_margin_ms
    }

    fn cached(&self) -> Option<StoredToken> {
        self.cached.lock().ok().and_then(|c| c.clone())
    }

    fn set_cached(&self, t: &StoredToken) {
        if let Ok(mut c) = self.cached.lock() {
            *c = Some(t.clone());
        }
    }

    /// KIS refused `token` (expired or invalid): the next [`get`](Self::get) issues another.
    pub fn reject(&self, token: &str) {
        if let Ok(mut r) = self.rejected.lock() {
            *r = Some(token.to_owned());
        }
        if let Ok(mut c) = self.cached.lock()
            && c.as_ref().is_some_and(|t| t.access_token == token)
        {
            *c = None;
        }
    }

    /// A usable token: the cached one, the store's, or a new one from `issuer`. Waits when
    /// another caller is issuing or the last issuance was under a minute ago, at most
    /// `max_wait`.
    ///
    /// # Errors
    /// The store failed, KIS refused to issue, or the wait would exceed `max_wait`.
    pub async fn get(&self, issuer: &dyn Issuer, max_wait: Duration) -> Result<String, KisError> {
        let now = now_ms();
        if let Some(t) = self.cached()
            && self.fresh(&t, now)
        {
            return Ok(t.access_token);
        }
        let deadline = tokio::time::Instant::now() + max_wait;
        let _flight = self.flight.lock().await;
        loop {
            let now = now_ms();
            if let Some(t) = self.cached()
                && self.fresh(&t, now)
            {
                return Ok(t.access_token);
            }
            let slot = self.store.load(&self.key).await.map_err(store_err)?;
            if let Some(t) = &slot.token
                && self.fresh(t, now)
            {
                self.set_cached(t);
                return Ok(t.access_token.clone());
            }
            let allowed_at = slot.last_issue_ms.map_or(i64::MIN, |t| t + self.min_interval_ms);
            if now < allowed_at {
                // Too soon to issue: a token near its refresh point is still good to use.
                if let Some(t) = &slot.token
                    && self.usable(t, now)
                {
                    self.set_cached(t);
                    return Ok(t.access_token.clone());
                }
                let wait = Duration::from_millis((allowed_at - now) as u64);
                if tokio::time::Instant::now() + wait > deadline {
                    return Err(KisError::TokenWait(wait));
                }
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "KIS token issuance throttled (one a minute); waiting"
                );
                tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                continue;
            }
            if self
                .store
                .try_lease(&self.key, &self.holder, now, now + LEASE.as_millis() as i64)
                .await
                .map_err(store_err)?
            {
                match self.issue(issuer).await {
                    // Recorded as an issuance: the loop now waits out the minute.
                    Err(e) if e.code() == Some(crate::codes::TOKEN_THROTTLED) => continue,
                    other => return other,
                }
            }
            // Someone else is issuing; their token will appear in the store.
            if tokio::time::Instant::now() + POLL > deadline {
                return Err(KisError::TokenWait(POLL));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn issue(&self, issuer: &dyn Issuer) -> Result<String, KisError> {
        let started = now_ms();
        match issuer.issue().await {
            Ok(issued) => {
                let token = StoredToken { access_token: issued.access_token, expires_at_ms: issued.expires_at_ms };
                self.store.finish(&self.key, &self.holder, Some(&token), started).await.map_err(store_err)?;
                metrics::counter!("haechi_kis_token_issuances_total", "outcome" => "issued").increment(1);
                tracing::info!(key = %self.key, "KIS access token issued");
                if let Ok(mut r) = self.rejected.lock()
                    && r.as_deref() == Some(&token.access_token)
                {
                    // KIS handed back the token it had just refused: nothing better to do than use it.
                    *r = None;
                }
                self.set_cached(&token);
                Ok(token.access_token)
            }
            Err(e) if e.code() == Some(crate::codes::TOKEN_THROTTLED) => {
                // Someone issued outside our store (another tool with the same key): count it as
                // an issuance so nobody asks again for a minute.
                self.store.finish(&self.key, &self.holder, None, started).await.map_err(store_err)?;
                metrics::counter!("haechi_kis_token_issuances_total", "outcome" => "throttled").increment(1);
                Err(e)
            }
            Err(e) => {
                // Failed before KIS issued anything (network, bad key): free the lease for a retry.
                let _ = self.store.release(&self.key, &self.holder).await;
                metrics::counter!("haechi_kis_token_issuances_total", "outcome" => "failed").increment(1);
                Err(e)
            }
        }
    }
}

fn store_err(detail: String) -> KisError {
    KisError::Shared { what: "token store", detail }
}
