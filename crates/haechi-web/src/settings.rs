//! What the HTTP layer needs to know from configuration (the use cases' own settings are
//! [`haechi_app::AppSettings`]).

/// Server settings, validated by the binary's configuration loader.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Add `Secure` to cookies (set when served over HTTPS).
    pub cookie_secure: bool,
    pub body_limit_bytes: usize,
    /// Trust `X-Forwarded-For` for the client address (only behind a reverse proxy).
    pub trusted_proxy: bool,
    /// The bearer token `/metrics` requires; `None`: `/metrics` answers 404 (per-route traffic,
    /// sign-in failures and queue depth are not for the public).
    pub metrics_token: Option<String>,
}

impl Default for WebSettings {
    fn default() -> WebSettings {
        WebSettings { cookie_secure: false, body_limit_bytes: 1 << 20, trusted_proxy: false, metrics_token: None }
    }
}
