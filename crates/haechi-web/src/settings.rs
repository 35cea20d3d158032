//! What the HTTP layer needs to know from configuration.

use std::time::Duration;

/// Server settings, validated by the binary's configuration loader.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Add `Secure` to cookies (set when served over HTTPS).
    pub cookie_secure: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, used or not.
    pub session_absolute: Duration,
    pub body_limit_bytes: usize,
    /// Failed logins (per account) before a temporary lock.
    pub login_max_failures: u32,
    pub login_lock: Duration,
    /// Trust `X-Forwarded-For` for the client address (only behind a reverse proxy).
    pub trusted_proxy: bool,
}

impl Default for WebSettings {
    fn default() -> WebSettings {
        WebSettings {
            cookie_secure: false,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            body_limit_bytes: 1 << 20,
            login_max_failures: 5,
            login_lock: Duration::from_secs(15 * 60),
            trusted_proxy: false,
        }
    }
}
