//! Request pacing per app key, shared by every caller of that key.
//!
//! Each call reserves the next free slot and sleeps until it: slots are `1 / rate` apart, so no
//! one-second window ever holds more than `rate` requests at the client, and there is no burst
//! for KIS to punish. In-process the slot clock is a mutex; across processes it is one Redis key
//! updated by a script that reads Redis's own clock, so machines with skewed clocks still agree.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::{BoxFuture, KisError};

/// Paces requests. `acquire` returns how long the caller waited.
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Waits for this caller's slot.
    fn acquire(&self) -> BoxFuture<'_, Result<Duration, KisError>>;
    /// KIS said "too fast": nobody sends for `pause`.
    fn back_off(&self, pause: Duration) -> BoxFuture<'_, Result<(), KisError>>;
}

/// Slots within one process.
#[derive(Debug)]
pub struct LocalLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl LocalLimiter {
    #[must_use]
    pub fn new(rate_per_sec: f64) -> Arc<LocalLimiter> {
        Arc::new(LocalLimiter { interval: interval_of(rate_per_sec), next: Mutex::new(Instant::now()) })
    }
}

fn interval_of(rate_per_sec: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate_per_sec.clamp(0.001, 1_000_000.0))
}

impl RateLimiter for LocalLimiter {
    fn acquire(&self) -> BoxFuture<'_, Result<Duration, KisError>> {
        Box::pin(async move {
            let now = Instant::now();
            let slot = {
                let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let slot = (*next).max(now);
                *next = slot + self.interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
            Ok(slot.saturating_duration_since(now))
        })
    }

    fn back_off(&self, pause: Duration) -> BoxFuture<'_, Result<(), KisError>> {
        Box::pin(async move {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *next = (*next).max(Instant::now() + pause);
            Ok(())
        })
    }
}

/// Slots shared through Redis by every process using the same app key.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    key: String,
    interval_us: u64,
    script: redis::Script,
    backoff_script: redis::Script,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter").field("key", &self.key).field("interval_us", &self.interval_us).finish()
    }
}

/// Reserves the next slot: returns how many microseconds the caller must wait. The key expires
/// a minute after the last reservation so an idle key leaves nothing behind.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[1], tat + tonumber(ARGV[1]), 'PX', 60000 + math.floor((tat - now) / 1000))
return tat - now
";

const BACK_OFF: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ = now + tonumber(ARGV[1])
if tat < until_ then redis.call('SET', KEYS[1], until_, 'PX', 60000 + math.floor(tonumber(ARGV[1]) / 1000)) end
return 0
";

impl RedisLimiter {
    /// `scope` names the app key (its fingerprint), so different keys never share slots.
    ///
    /// # Errors
    /// Redis unreachable or the URL invalid.
    pub async fn connect(url: &str, scope: &str, rate_per_sec: f64) -> Result<Arc<RedisLimiter>, KisError> {
        let shared = |e: redis::RedisError| KisError::Shared { what: "rate limiter (Redis)", detail: e.to_string() };
        let client = redis::Client::open(url).map_err(shared)?;
        let conn = redis::aio::ConnectionManager::new(client).await.map_err(shared)?;
        Ok(Arc::new(RedisLimiter {
            conn,
            key: format!("haechi:kis:rate:{scope}"),
            interval_us: interval_of(rate_per_sec).as_micros().max(1) as u64,
            script: redis::Script::new(RESERVE),
            backoff_script: redis::Script::new(BACK_OFF),
        }))
    }
}

impl RateLimiter for RedisLimiter {
    fn acquire(&self) -> BoxFuture<'_, Result<Duration, KisError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let wait_us: i64 = self
                .script
                .key(&self.key)
                .arg(self.interval_us)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| KisError::Shared { what: "rate limiter (Redis)", detail: e.to_string() })?;
            let wait = Duration::from_micros(wait_us.max(0) as u64);
            tokio::time::sleep(wait).await;
            Ok(wait)
        })
    }

    fn back_off(&self, pause: Duration) -> BoxFuture<'_, Result<(), KisError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: i64 = self
                .backoff_script
                .key(&self.key)
                .arg(pause.as_micros() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| KisError::Shared { what: "rate limiter (Redis)", detail: e.to_string() })?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced_across_concurrent_callers() {
        let limiter = LocalLimiter::new(10.0);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                let mut at = Vec::new();
                for _ in 0..5 {
                    l.acquire().await.unwrap();
                    at.push(Instant::now().duration_since(start));
                }
                at
            }));
        }
        let mut all: Vec<Duration> = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(all.len(), 20);
        for pair in all.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(99), "{pair:?}");
        }
        // 20 slots at 10/s: the last one starts 1.9 s in.
        assert!(all[19] >= Duration::from_millis(1899) && all[19] <= Duration::from_millis(1950), "{:?}", all[19]);
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_holds_everyone() {
        let limiter = LocalLimiter::new(100.0);
        limiter.acquire().await.unwrap();
        limiter.back_off(Duration::from_secs(1)).await.unwrap();
        let waited = limiter.acquire().await.unwrap();
        assert!(waited >= Duration::from_millis(990), "{waited:?}");
    }

    #[tokio::test]
    async fn redis_slots_are_shared_between_limiters() {
        let Ok(url) = std::env::var("HAECHI_TEST_REDIS_URL") else { return };
        let scope = format!("test-{}", uuid::Uuid::new_v4());
        let a = RedisLimiter::connect(&url, &scope, 20.0).await.unwrap();
        let b = RedisLimiter::connect(&url, &scope, 20.0).await.unwrap();
        let start = std::time::Instant::now();
        for _ in 0..10 {
            a.acquire().await.unwrap();
            b.acquire().await.unwrap();
        }
        // 20 slots at 20/s from two "processes": the 20th is 0.95 s after the first.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }
}
