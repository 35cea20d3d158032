//! Environments, credentials and client settings.

use std::fmt;
use std::time::Duration;

use crate::KisError;

/// KIS's two environments. Account and order TR ids differ between them (`T…` real, `V…` mock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KisEnv {
    /// 실전: real money.
    Real,
    /// 모의투자 ("VTS"): KIS's paper-trading environment.
    Mock,
}

impl KisEnv {
    /// KIS's REST host for this environment.
    #[must_use]
    pub fn rest_base(self) -> &'static str {
        match self {
            KisEnv::Real => "https://openapi.koreainvestment.com:9443",
            KisEnv::Mock => "https://openapivts.koreainvestment.com:29443",
        }
    }

    /// KIS's WebSocket endpoint (plain `ws://`, as KIS serves it).
    #[must_use]
    pub fn ws_base(self) -> &'static str {
        match self {
            KisEnv::Real => "ws://ops.koreainvestment.com:21000/tryitout",
            KisEnv::Mock => "ws://ops.koreainvestment.com:31000/tryitout",
        }
    }

    /// Requests per second this client allows itself by default: one under KIS's 20/s for real
    /// keys, so network jitter cannot push a window over; KIS's 2/s for mock keys.
    #[must_use]
    pub fn default_rate(self) -> f64 {
        match self {
            KisEnv::Real => 19.0,
            KisEnv::Mock => 2.0,
        }
    }

    /// KIS's own per-second limit for an app key of this environment.
    #[must_use]
    pub fn kis_rate_limit(self) -> u32 {
        match self {
            KisEnv::Real => 20,
            KisEnv::Mock => 2,
        }
    }

    /// The account or order TR id for this environment: the real id's first letter becomes `V`
    /// on mock, as KIS's own client does.
    #[must_use]
    pub fn account_tr(self, tr: AccountTr) -> &'static str {
        use AccountTr::*;
        match (self, tr) {
            (KisEnv::Real, Buy) => "TTTC0012U",
            (KisEnv::Real, Sell) => "TTTC0011U",
            (KisEnv::Real, ReviseCancel) => "TTTC0013U",
            (KisEnv::Real, Balance) => "TTTC8434R",
            (KisEnv::Real, Orderable) => "TTTC8908R",
            (KisEnv::Real, DailyFills) => "TTTC0081R",
            (KisEnv::Real, DailyFillsOld) => "CTSC9215R",
            (KisEnv::Mock, Buy) => "VTTC0012U",
            (KisEnv::Mock, Sell) => "VTTC0011U",
            (KisEnv::Mock, ReviseCancel) => "VTTC0013U",
            (KisEnv::Mock, Balance) => "VTTC8434R",
            (KisEnv::Mock, Orderable) => "VTTC8908R",
            (KisEnv::Mock, DailyFills) => "VTTC0081R",
            (KisEnv::Mock, DailyFillsOld) => "VTSC9215R",
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KisEnv::Real => "real",
            KisEnv::Mock => "mock",
        }
    }
}

impl fmt::Display for KisEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KisEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "real" | "prod" => Ok(KisEnv::Real),
            "mock" | "vts" | "paper" => Ok(KisEnv::Mock),
            other => Err(format!("unknown KIS environment {other:?}: expected mock or real")),
        }
    }
}

/// Account and order TRs, whose ids depend on the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTr {
    Buy,
    Sell,
    ReviseCancel,
    Balance,
    Orderable,
    /// Daily orders and fills within the last three months.
    DailyFills,
    /// Daily orders and fills older than three months.
    DailyFillsOld,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An app key and its secret. KIS issues separate pairs for real and mock accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub app_key: String,
    pub app_secret: Secret,
}

impl Credentials {
    /// Trims the whitespace a copied secret often carries (KIS answers `EGW00105` for it).
    ///
    /// # Errors
    /// An empty key or secret.
    pub fn new(app_key: &str, app_secret: &str) -> Result<Credentials, KisError> {
        let (k, s) = (app_key.trim(), app_secret.trim());
        if k.is_empty() {
            return Err(KisError::Config("the app key is empty".into()));
        }
        if s.is_empty() {
            return Err(KisError::Config("the app secret is empty".into()));
        }
        Ok(Credentials { app_key: k.to_owned(), app_secret: Secret::new(s) })
    }

    /// A stable, non-reversible name for this key: shared caches are keyed by it so the key
    /// itself is not written anywhere.
    #[must_use]
    pub fn fingerprint(&self, env: KisEnv) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.app_key.as_bytes());
        format!("{}-{}", env.as_str(), &hex::encode(digest)[..16])
    }
}

/// A KIS account number, `CANO` (8 digits) and `ACNT_PRDT_CD` (2 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub cano: String,
    pub product: String,
}

impl std::str::FromStr for Account {
    type Err = String;
    /// `50012345-01` or `5001234501`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account {s:?} must be 8 + 2 digits, such as 50012345-01"));
        }
        Ok(Account { cano: digits[..8].to_owned(), product: digits[8..].to_owned() })
    }
}

/// Everything the client needs. [`KisConfig::new`] fills the defaults for an environment.
#[derive(Debug, Clone)]
pub struct KisConfig {
    pub env: KisEnv,
    pub credentials: Credentials,
    pub account: Option<Account>,
    /// REST base, KIS's host unless pointed elsewhere (the fake server).
    pub base_url: String,
    /// WebSocket URL.
    pub ws_url: String,
    /// Requests per second for this app key, shared by every process using it.
    pub rate_per_sec: f64,
    /// Real-money orders are refused unless this is set and `max_order_value` is too.
    pub allow_real_orders: bool,
    /// The largest real order, in won (quantity × price).
    pub max_order_value: Option<i64>,
    /// `P` individual (the only kind Haechi supports).
    pub custtype: &'static str,
    pub user_agent: String,
    /// Per request, connect to last byte.
    pub request_timeout: Duration,
    /// Retries after a rate-limit answer, a server error or a transport failure.
    pub max_retries: u32,
    /// First retry delay; doubles each time, with jitter, capped at 8 s.
    pub retry_base: Duration,
    /// After a rate-limit answer nobody using this key sends for this long.
    pub rate_limit_pause: Duration,
    /// KIS allows one token issuance a minute per app key.
    pub min_issue_interval: Duration,
    /// A token is replaced this long before it expires.
    pub refresh_margin: Duration,
}

impl KisConfig {
    /// Defaults for `env`, KIS's own hosts.
    #[must_use]
    pub fn new(env: KisEnv, credentials: Credentials) -> KisConfig {
        KisConfig {
            env,
            credentials,
            account: None,
            base_url: env.rest_base().to_owned(),
            ws_url: env.ws_base().to_owned(),
            rate_per_sec: env.default_rate(),
            allow_real_orders: false,
            max_order_value: None,
            custtype: "P",
            user_agent: concat!("haechi/", env!("CARGO_PKG_VERSION")).to_owned(),
            request_timeout: Duration::from_secs(10),
            max_retries: 5,
            retry_base: Duration::from_millis(250),
            rate_limit_pause: Duration::from_secs(1),
            min_issue_interval: Duration::from_secs(60),
            refresh_margin: Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tr_ids_follow_the_environment_and_the_current_ids() {
        assert_eq!(KisEnv::Real.account_tr(AccountTr::Buy), "TTTC0012U");
        assert_eq!(KisEnv::Mock.account_tr(AccountTr::Buy), "VTTC0012U");
        assert_eq!(KisEnv::Mock.account_tr(AccountTr::DailyFillsOld), "VTSC9215R");
        for tr in [AccountTr::Buy, AccountTr::Sell, AccountTr::ReviseCancel, AccountTr::Balance, AccountTr::Orderable] {
            let (real, mock) = (KisEnv::Real.account_tr(tr), KisEnv::Mock.account_tr(tr));
            assert_eq!(&real[1..], &mock[1..], "{tr:?}");
            assert!(mock.starts_with('V'));
        }
    }
}
