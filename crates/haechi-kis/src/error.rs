//! What can go wrong talking to KIS, typed so callers can tell a rate limit from a rejected order.

use std::time::Duration;

/// KIS message codes the client reacts to (see the spec, §4.2).
pub mod codes {
    /// Gateway per-second limit exceeded: the request was not processed, so it is safe to retry.
    pub const RATE_LIMIT: &str = "EGW00201";
    /// The account ledger's per-second limit, seen on balance and order TRs.
    pub const LEDGER_RATE_LIMIT: &str = "EGW00215";
    /// The access token expired.
    pub const TOKEN_EXPIRED: &str = "EGW00123";
    /// The access token is not valid (revoked or superseded).
    pub const TOKEN_INVALID: &str = "EGW00121";
    /// The access token was not found.
    pub const TOKEN_NOT_FOUND: &str = "EGW00122";
    /// Token issuance throttled: at most one a minute per app key.
    pub const TOKEN_THROTTLED: &str = "EGW00133";
    /// The TR is not offered on the mock environment.
    pub const NOT_A_MOCK_TR: &str = "EGW02006";
}

/// A failed KIS call. `Api` and `Auth` carry KIS's own codes unchanged.
#[derive(Debug, thiserror::Error)]
pub enum KisError {
    /// KIS answered with `rt_cd` other than `"0"`.
    #[error("KIS {endpoint}: {msg_cd} {msg1} (rt_cd {rt_cd}, HTTP {status})")]
    Api { endpoint: &'static str, status: u16, rt_cd: String, msg_cd: String, msg1: String },
    /// An OAuth endpoint (`tokenP`, `Approval`) refused, in its `error_code` shape.
    #[error("KIS {endpoint}: {error_code} {error_description} (HTTP {status})")]
    Auth { endpoint: &'static str, status: u16, error_code: String, error_description: String },
    /// The request could not be sent or no answer arrived, after the retries allowed.
    #[error("KIS {endpoint}: {source}")]
    Transport {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// A server error without a KIS body (maintenance, proxy), after the retries allowed.
    #[error("KIS {endpoint}: HTTP {status} without a KIS answer: {snippet}")]
    Unavailable { endpoint: &'static str, status: u16, snippet: String },
    /// The body is not what the specification describes; `detail` names the field.
    #[error("KIS {endpoint}: unexpected response: {detail}")]
    Decode { endpoint: &'static str, detail: String },
    /// An unknown stock code: KIS answers price and chart calls for it with zeros, not an error.
    #[error("KIS {endpoint}: no such stock code {ticker}")]
    UnknownTicker { endpoint: &'static str, ticker: String },
    /// A request that must not be sent; nothing went over the network.
    #[error("invalid KIS request: {field}: {problem}")]
    InvalidRequest { field: &'static str, problem: String },
    /// An order on the real environment without the opt-in or above the cap; nothing was sent.
    #[error("real-money order refused before sending: {0}")]
    RealOrderRefused(String),
    /// The configured credentials are unusable (empty, wrong environment).
    #[error("KIS configuration: {0}")]
    Config(String),
    /// The shared token store or rate limiter failed.
    #[error("KIS {what}: {detail}")]
    Shared { what: &'static str, detail: String },
    /// The raw-response archive failed, so the data is not used either.
    #[error("archiving the raw KIS response of {endpoint}: {detail}")]
    Archive { endpoint: &'static str, detail: String },
    /// Waiting for a token issuance would take longer than the caller allows.
    #[error("no KIS access token: issuance is throttled for another {0:?}")]
    TokenWait(Duration),
}

impl KisError {
    /// KIS's message or error code, when KIS answered.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            KisError::Api { msg_cd, .. } => Some(msg_cd),
            KisError::Auth { error_code, .. } => Some(error_code),
            _ => None,
        }
    }

    /// A per-second limit: the request never reached the order system and may be sent again.
    #[must_use]
    pub fn is_rate_limit(&self) -> bool {
        match self {
            KisError::Api { msg_cd, msg1, .. } => is_rate_limit(msg_cd, msg1),
            _ => false,
        }
    }

    /// The token was refused: drop it, issue a new one, retry once.
    #[must_use]
    pub fn is_token_rejected(&self) -> bool {
        matches!(self.code(), Some(codes::TOKEN_EXPIRED | codes::TOKEN_INVALID | codes::TOKEN_NOT_FOUND))
    }
}

/// Rate-limit codes, or KIS's wording for one (초당 … 초과) under a code not seen before.
pub(crate) fn is_rate_limit(msg_cd: &str, msg1: &str) -> bool {
    msg_cd == codes::RATE_LIMIT
        || msg_cd == codes::LEDGER_RATE_LIMIT
        || (msg1.contains("초당") && msg1.contains("초과"))
}
