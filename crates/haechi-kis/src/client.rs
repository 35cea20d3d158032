//! The REST client: one request pipeline (pace → token → send → archive → classify → retry)
//! under typed calls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::config::{AccountTr, KisConfig, KisEnv};
use crate::error::{codes, is_rate_limit};
use crate::limiter::{LocalLimiter, RateLimiter};
use crate::model::{self, *};
use crate::token::{Issuer, MemoryTokenStore, TokenManager, TokenStore};
use crate::wire::{FieldError, ymd};
use crate::{BoxFuture, KisError, now_ms};

/// A REST endpoint: the name used in metrics and archive keys, and the path on the KIS host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub name: &'static str,
    pub path: &'static str,
    pub post: bool,
}

/// Every endpoint the client calls, with KIS's paths.
pub mod endpoints {
    use super::Endpoint;
    const fn get(name: &'static str, path: &'static str) -> Endpoint {
        Endpoint { name, path, post: false }
    }
    const fn post(name: &'static str, path: &'static str) -> Endpoint {
        Endpoint { name, path, post: true }
    }
    pub const TOKEN: Endpoint = post("tokenP", "/oauth2/tokenP");
    pub const APPROVAL: Endpoint = post("Approval", "/oauth2/Approval");
    pub const PRICE: Endpoint = get("inquire-price", "/uapi/domestic-stock/v1/quotations/inquire-price");
    pub const CHART: Endpoint =
        get("inquire-daily-itemchartprice", "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice");
    pub const RECENT: Endpoint = get("inquire-daily-price", "/uapi/domestic-stock/v1/quotations/inquire-daily-price");
    pub const STOCK_INFO: Endpoint = get("search-stock-info", "/uapi/domestic-stock/v1/quotations/search-stock-info");
    pub const FIN_RATIO: Endpoint = get("financial-ratio", "/uapi/domestic-stock/v1/finance/financial-ratio");
    pub const FIN_INCOME: Endpoint = get("income-statement", "/uapi/domestic-stock/v1/finance/income-statement");
    pub const FIN_BALANCE: Endpoint = get("balance-sheet", "/uapi/domestic-stock/v1/finance/balance-sheet");
    pub const ORDER: Endpoint = post("order-cash", "/uapi/domestic-stock/v1/trading/order-cash");
    pub const REVISE: Endpoint = post("order-rvsecncl", "/uapi/domestic-stock/v1/trading/order-rvsecncl");
    pub const BALANCE: Endpoint = get("inquire-balance", "/uapi/domestic-stock/v1/trading/inquire-balance");
    pub const ORDERABLE: Endpoint = get("inquire-psbl-order", "/uapi/domestic-stock/v1/trading/inquire-psbl-order");
    pub const DAILY_FILLS: Endpoint = get("inquire-daily-ccld", "/uapi/domestic-stock/v1/trading/inquire-daily-ccld");
}

/// A response exactly as received, handed to the [`RawArchive`] before it is used.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub endpoint: &'static str,
    pub tr_id: String,
    /// What was asked, in a form fit for a file name (`005930_20150101_20241231`).
    pub label: String,
    pub status: u16,
    pub body: Bytes,
    pub received_at_ms: i64,
}

/// Keeps raw responses. A failure fails the call, so no data is used that was not archived.
pub trait RawArchive: Send + Sync + fmt::Debug {
    fn store(&self, raw: RawResponse) -> BoxFuture<'_, Result<(), String>>;
}

/// A KIS REST client. Cheap to clone; clones share the token, limiter and connection pool.
#[derive(Clone)]
pub struct KisClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: KisConfig,
    http: reqwest::Client,
    limiter: Arc<dyn RateLimiter>,
    tokens: TokenManager,
    archive: Option<Arc<dyn RawArchive>>,
    token_wait: Duration,
}

impl fmt::Debug for KisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KisClient")
            .field("env", &self.inner.cfg.env)
            .field("base_url", &self.inner.cfg.base_url)
            .field("limiter", &self.inner.limiter)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KisClient`]; without a store or limiter it uses in-process ones.
pub struct KisClientBuilder {
    cfg: KisConfig,
    store: Option<Arc<dyn TokenStore>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    archive: Option<Arc<dyn RawArchive>>,
    token_wait: Duration,
}

impl fmt::Debug for KisClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KisClientBuilder").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl KisClientBuilder {
    /// Where tokens are shared (the database, across processes).
    #[must_use]
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// The pacing shared by everyone using this app key (Redis, across processes).
    #[must_use]
    pub fn limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }
    /// Where every raw response is kept.
    #[must_use]
    pub fn archive(mut self, archive: Arc<dyn RawArchive>) -> Self {
        self.archive = Some(archive);
        self
    }
    /// How long a call may wait for a token issuance (default 90 s: one throttled minute).
    #[must_use]
    pub fn token_wait(mut self, wait: Duration) -> Self {
        self.token_wait = wait;
        self
    }

    /// # Errors
    /// The HTTP client cannot be built (TLS setup).
    pub fn build(self) -> Result<KisClient, KisError> {
        let cfg = self.cfg;
        let http = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| KisError::Config(format!("HTTP client: {e}")))?;
        let store = self.store.unwrap_or_else(|| MemoryTokenStore::new());
        let key = cfg.credentials.fingerprint(cfg.env);
        let tokens = TokenManager::new(store, key, cfg.min_issue_interval, cfg.refresh_margin);
        let limiter = self.limiter.unwrap_or_else(|| LocalLimiter::new(cfg.rate_per_sec));
        Ok(KisClient {
            inner: Arc::new(Inner { cfg, http, limiter, tokens, archive: self.archive, token_wait: self.token_wait }),
        })
    }
}

/// A decoded answer and the continuation flag KIS sent in the `tr_cont` header.
struct Answer {
    body: Value,
    tr_cont: String,
}

impl Answer {
    /// `F`/`M`: more pages; `D`/`E` or blank: done.
    fn more(&self) -> bool {
        matches!(self.tr_cont.as_str(), "F" | "M")
    }
}

struct Call<'a> {
    ep: crate::client::Endpoint,
    tr_id: &'a str,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    tr_cont: &'static str,
    label: String,
}

/// Cursor parameters of paginated account TRs.
const FK: &str = "CTX_AREA_FK100";
const NK: &str = "CTX_AREA_NK100";
/// Bars per chart call.
pub const CHART_PAGE_ROWS: usize = 100;

impl KisClient {
    #[must_use]
    pub fn builder(cfg: KisConfig) -> KisClientBuilder {
        KisClientBuilder { cfg, store: None, limiter: None, archive: None, token_wait: Duration::from_secs(90) }
    }

    #[must_use]
    pub fn config(&self) -> &KisConfig {
        &self.inner.cfg
    }

    #[must_use]
    pub fn env(&self) -> KisEnv {
        self.inner.cfg.env
    }

    /// A valid access token (issued, loaded from the shared store, or cached).
    ///
    /// # Errors
    /// See [`TokenManager::get`].
    pub async fn access_token(&self) -> Result<String, KisError> {
        self.inner.tokens.get(self, self.inner.token_wait).await
    }

    // Stays whole: the retry loop (token refresh, rate limit, 5xx backoff, EGW00201) shares its
    // state across every branch; split into helpers it would pass half a dozen mutable values around.
    async fn call(&self, c: Call<'_>) -> Result<Answer, KisError> {
        let cfg = &self.inner.cfg;
        let name = c.ep.name;
        let url = format!("{}{}", cfg.base_url, c.ep.path);
        let mut attempt = 0u32;
        let mut reissued = false;
        loop {
            let waited = self.inner.limiter.acquire().await?;
            metrics::histogram!("haechi_kis_rate_limit_wait_seconds").record(waited.as_secs_f64());
            let token = self.access_token().await?;
            let mut req = if c.ep.post { self.inner.http.post(&url) } else { self.inner.http.get(&url) };
            req = req
                .header("content-type", "application/json; charset=utf-8")
                .header("authorization", format!("Bearer {token}"))
                .header("appkey", &cfg.credentials.app_key)
                .header("appsecret", cfg.credentials.app_secret.expose())
                .header("tr_id", c.tr_id)
                .header("custtype", cfg.custtype);
            if !c.tr_cont.is_empty() {
                req = req.header("tr_cont", c.tr_cont);
            }
            req = if let Some(b) = &c.body { req.body(b.to_string()) } else { req.query(&c.query) };
            let sent = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let tr_cont = header(&r, "tr_cont");
                    r.bytes().await.map(|b| (status, tr_cont, b))
                }
                Err(e) => Err(e),
            };
            let (status, tr_cont, bytes) = match sent {
                Ok(x) => x,
                Err(e) => {
                    count(name, "transport");
                    // An order that may have reached KIS is never sent twice: KIS has no
                    // idempotency key, so a timeout must be reconciled, not retried.
                    let safe = !c.ep.post || e.is_connect();
                    if safe && attempt < cfg.max_retries {
                        attempt += 1;
                        tracing::warn!(endpoint = name, attempt, error = %e, "KIS request failed; retrying");
                        tokio::time::sleep(backoff(cfg.retry_base, attempt)).await;
                        continue;
                    }
                    return Err(KisError::Transport { endpoint: name, source: e });
                }
            };
            if let Some(archive) = &self.inner.archive {
                let raw = RawResponse {
                    endpoint: name,
                    tr_id: c.tr_id.to_owned(),
                    label: c.label.clone(),
                    status,
                    body: bytes.clone(),
                    received_at_ms: now_ms(),
                };
                archive.store(raw).await.map_err(|detail| KisError::Archive { endpoint: name, detail })?;
            }
            let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
                count(name, "unavailable");
                if status >= 500 && !c.ep.post && attempt < cfg.max_retries {
                    attempt += 1;
                    tokio::time::sleep(backoff(cfg.retry_base, attempt)).await;
                    continue;
                }
                return Err(if status >= 500 {
                    KisError::Unavailable { endpoint: name, status, snippet: snippet(&bytes) }
                } else {
                    KisError::Decode {
                        endpoint: name,
                        detail: format!("HTTP {status}, body is not JSON: {}", snippet(&bytes)),
                    }
                });
            };
            let rt_cd = str_of(&body, "rt_cd");
            if rt_cd == "0" {
                count(name, "ok");
                return Ok(Answer { body, tr_cont });
            }
            let (msg_cd, msg1) = (str_of(&body, "msg_cd"), str_of(&body, "msg1"));
            if is_rate_limit(&msg_cd, &msg1) {
                count(name, "rate_limited");
                self.inner.limiter.back_off(jitter(cfg.rate_limit_pause)).await?;
                if attempt < cfg.max_retries {
                    attempt += 1;
                    tracing::debug!(endpoint = name, attempt, "KIS rate limit answer; retrying after a pause");
                    continue;
                }
            } else if matches!(msg_cd.as_str(), codes::TOKEN_EXPIRED | codes::TOKEN_INVALID | codes::TOKEN_NOT_FOUND) {
                count(name, "token_rejected");
                if !reissued {
                    reissued = true;
                    tracing::info!(endpoint = name, code = %msg_cd, "KIS refused the access token; issuing a new one");
                    self.inner.tokens.reject(&token);
                    continue;
                }
            } else if rt_cd.is_empty() && body.get("error_code").is_some() {
                count(name, "error");
                return Err(KisError::Auth {
                    endpoint: name,
                    status,
                    error_code: str_of(&body, "error_code"),
                    error_description: str_of(&body, "error_description"),
                });
            } else {
                count(name, "error");
            }
            return Err(KisError::Api { endpoint: name, status, rt_cd, msg_cd, msg1 });
        }
    }

    fn decode<T>(endpoint: &'static str, r: Result<T, FieldError>) -> Result<T, KisError> {
        r.map_err(|e| KisError::Decode { endpoint, detail: e.0 })
    }

    /// POSTs to an OAuth endpoint, which answers in its own error shape and needs no token.
    async fn oauth(&self, ep: Endpoint, body: Value) -> Result<Value, KisError> {
        let url = format!("{}{}", self.inner.cfg.base_url, ep.path);
        let resp = self
            .inner
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| KisError::Transport { endpoint: ep.name, source: e })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| KisError::Transport { endpoint: ep.name, source: e })?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| KisError::Decode {
            endpoint: ep.name,
            detail: format!("HTTP {status}, body is not JSON: {}", snippet(&bytes)),
        })?;
        if body.get("error_code").is_some() || status >= 400 {
            count(ep.name, "error");
            return Err(KisError::Auth {
                endpoint: ep.name,
                status,
                error_code: str_of(&body, "error_code"),
                error_description: str_of(&body, "error_description"),
            });
        }
        count(ep.name, "ok");
        Ok(body)
    }

    /// A WebSocket approval key (`POST /oauth2/Approval`; the secret goes as `secretkey`).
    ///
    /// # Errors
    /// KIS refused or could not be reached.
    pub async fn approval_key(&self) -> Result<String, KisError> {
        let c = &self.inner.cfg.credentials;
        let body = self
            .oauth(
                endpoints::APPROVAL,
                json!({"grant_type": "client_credentials", "appkey": c.app_key, "secretkey": c.app_secret.expose()}),
            )
            .await?;
        match body.get("approval_key").and_then(Value::as_str) {
            Some(k) if !k.is_empty() => Ok(k.to_owned()),
            _ => Err(KisError::Decode { endpoint: endpoints::APPROVAL.name, detail: "approval_key missing".into() }),
        }
    }

    /// Current price. `FHKST01010100`.
    ///
    /// # Errors
    /// [`KisError::UnknownTicker`] when KIS does not know the code; otherwise the call's error.
    pub async fn quote(&self, ticker: &str) -> Result<Quote, KisError> {
        check_ticker(ticker)?;
        let ep = endpoints::PRICE;
        let a = self
            .call(Call {
                ep,
                tr_id: "FHKST01010100",
                query: vec![("fid_cond_mrkt_div_code", "J".into()), ("fid_input_iscd", ticker.into())],
                body: None,
                tr_cont: "",
                label: ticker.to_owned(),
            })
            .await?;
        let q = Self::decode(ep.name, model::parse_quote(&a.body))?;
        if q.price == 0 {
            return Err(KisError::UnknownTicker { endpoint: ep.name, ticker: ticker.to_owned() });
        }
        Ok(q)
    }

    /// One chart call: up to 100 bars between `from` and `to`, newest first. `FHKST03010100`,
    /// adjusted prices (수정주가).
    ///
    /// # Errors
    /// [`KisError::UnknownTicker`], or the call's error.
    pub async fn chart_page(
        &self,
        ticker: &str,
        from: NaiveDate,
        to: NaiveDate,
        period: Period,
    ) -> Result<ChartPage, KisError> {
        check_ticker(ticker)?;
        if from > to {
            return Err(KisError::InvalidRequest { field: "from", problem: format!("{from} is after {to}") });
        }
        let ep = endpoints::CHART;
        let a = self
            .call(Call {
                ep,
                tr_id: "FHKST03010100",
                query: vec![
                    ("fid_cond_mrkt_div_code", "J".into()),
                    ("fid_input_iscd", ticker.into()),
                    ("fid_input_date_1", ymd(from)),
                    ("fid_input_date_2", ymd(to)),
                    ("fid_period_div_code", period.code().into()),
                    ("fid_org_adj_prc", "0".into()),
                ],
                body: None,
                tr_cont: "",
                label: format!("{ticker}_{}_{}_{}", ymd(from), ymd(to), period.code()),
            })
            .await?;
        let page = Self::decode(ep.name, model::parse_chart_page(&a.body))?;
        if page.price == 0 && page.bars.is_empty() {
            return Err(KisError::UnknownTicker { endpoint: ep.name, ticker: ticker.to_owned() });
        }
        Ok(page)
    }

    /// Pages of daily bars from `to` back to `from` (KIS returns 100 a call, newest first).
    #[must_use]
    pub fn history(&self, ticker: &str, from: NaiveDate, to: NaiveDate) -> HistoryPager {
        self.history_of(ticker, from, to, Period::Day)
    }

    /// Pages of weekly, monthly or yearly bars, as [`history`](Self::history).
    #[must_use]
    pub fn history_of(&self, ticker: &str, from: NaiveDate, to: NaiveDate, period: Period) -> HistoryPager {
        HistoryPager { client: self.clone(), ticker: ticker.to_owned(), from, cursor: Some(to), period }
    }

    /// The whole daily history between `from` and `to`, oldest first.
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn daily_history(
        &self,
        ticker: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<PeriodBar>, KisError> {
        self.period_history(ticker, from, to, Period::Day).await
    }

    /// The whole history of `period` bars between `from` and `to`, oldest first.
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn period_history(
        &self,
        ticker: &str,
        from: NaiveDate,
        to: NaiveDate,
        period: Period,
    ) -> Result<Vec<PeriodBar>, KisError> {
        let mut pager = self.history_of(ticker, from, to, period);
        let mut bars = Vec::new();
        while let Some(page) = pager.next_page().await? {
            bars.extend(page.bars);
        }
        bars.sort_by_key(|b| b.date);
        bars.dedup_by_key(|b| b.date);
        Ok(bars)
    }

    /// The last 30 days, weeks or months. `FHKST01010400`, adjusted prices.
    ///
    /// # Errors
    /// The call's error.
    pub async fn recent_bars(&self, ticker: &str, period: Period) -> Result<Vec<RecentBar>, KisError> {
        check_ticker(ticker)?;
        let ep = endpoints::RECENT;
        let a = self
            .call(Call {
                ep,
                tr_id: "FHKST01010400",
                // Here "1" means adjusted: the opposite of the chart TR.
                query: vec![
                    ("fid_cond_mrkt_div_code", "J".into()),
                    ("fid_input_iscd", ticker.into()),
                    ("fid_period_div_code", period.code().into()),
                    ("fid_org_adj_prc", "1".into()),
                ],
                body: None,
                tr_cont: "",
                label: format!("{ticker}_{}", period.code()),
            })
            .await?;
        Self::decode(ep.name, model::parse_recent_bars(&a.body))
    }

    /// Basic information on a stock. `CTPF1002R` (real environment only).
    ///
    /// # Errors
    /// The call's error; `EGW02006` from a mock host.
    pub async fn stock_info(&self, ticker: &str) -> Result<StockInfo, KisError> {
        check_ticker(ticker)?;
        let ep = endpoints::STOCK_INFO;
        let a = self
            .call(Call {
                ep,
                tr_id: "CTPF1002R",
                query: vec![("PRDT_TYPE_CD", "300".into()), ("PDNO", ticker.into())],
                body: None,
                tr_cont: "",
                label: ticker.to_owned(),
            })
            .await?;
        let info = Self::decode(ep.name, model::parse_stock_info(&a.body))?;
        if info.name.is_empty() {
            return Err(KisError::UnknownTicker { endpoint: ep.name, ticker: ticker.to_owned() });
        }
        Ok(info)
    }

    /// Financial ratios, income statements and balance sheets merged by fiscal period, newest
    /// first (real environment only).
    ///
    /// # Errors
    /// The first failing call's error.
    pub async fn financials(&self, ticker: &str, period: FinancePeriod) -> Result<Vec<FinancialRow>, KisError> {
        check_ticker(ticker)?;
        let mut merged: std::collections::BTreeMap<String, FinancialRow> = std::collections::BTreeMap::new();
        type Parser = fn(&Value) -> Result<Vec<FinancialRow>, FieldError>;
        let parts: [(Endpoint, &str, Parser); 3] = [
            (endpoints::FIN_RATIO, "FHKST66430300", model::parse_financial_ratios),
            (endpoints::FIN_INCOME, "FHKST66430200", model::parse_income_statements),
            (endpoints::FIN_BALANCE, "FHKST66430100", model::parse_balance_sheets),
        ];
        for (ep, tr_id, parse) in parts {
            let a = self
                .call(Call {
                    ep,
                    tr_id,
                    query: vec![
                        ("FID_DIV_CLS_CODE", period.code().into()),
                        ("fid_cond_mrkt_div_code", "J".into()),
                        ("fid_input_iscd", ticker.into()),
                    ],
                    body: None,
                    tr_cont: "",
                    label: format!("{ticker}_{}", period.code()),
                })
                .await?;
            for row in Self::decode(ep.name, parse(&a.body))? {
                let slot = merged
                    .entry(row.period.clone())
                    .or_insert_with(|| FinancialRow { period: row.period.clone(), ..FinancialRow::default() });
                merge_financial(slot, &row);
            }
        }
        Ok(merged.into_values().rev().collect())
    }

    fn account(&self) -> Result<&crate::config::Account, KisError> {
        self.inner
            .cfg
            .account
            .as_ref()
            .ok_or_else(|| KisError::Config("no account: set HAECHI_KIS_ACCOUNT (8 + 2 digits)".into()))
    }

    /// Refuses real-money orders unless opted in and under the cap. Mock orders always pass.
    fn check_real_order(&self, value: Option<i64>) -> Result<(), KisError> {
        let cfg = &self.inner.cfg;
        if cfg.env == KisEnv::Mock {
            return Ok(());
        }
        if !cfg.allow_real_orders {
            metrics::counter!("haechi_kis_real_orders_refused_total").increment(1);
            return Err(KisError::RealOrderRefused(
                "orders go to the mock environment only; set HAECHI_KIS_ALLOW_REAL_ORDERS=true and HAECHI_KIS_MAX_ORDER_VALUE to trade real money".into(),
            ));
        }
        let Some(cap) = cfg.max_order_value else {
            metrics::counter!("haechi_kis_real_orders_refused_total").increment(1);
            return Err(KisError::RealOrderRefused("no per-order cap: set HAECHI_KIS_MAX_ORDER_VALUE (won)".into()));
        };
        match value {
            None => Err(KisError::RealOrderRefused(
                "a market order's value cannot be checked against the cap; use a limit order".into(),
            )),
            Some(v) if v > cap => {
                metrics::counter!("haechi_kis_real_orders_refused_total").increment(1);
                Err(KisError::RealOrderRefused(format!("order value {v} won is above the cap of {cap} won")))
            }
            Some(_) => Ok(()),
        }
    }

    /// Places a cash order (`TTTC0012U`/`TTTC0011U`, mock `VTTC…`). Real-money orders need the
    /// opt-in and a cap; they are refused before anything is sent. Never retried after a
    /// timeout: reconcile with [`daily_orders`](Self::daily_orders) instead.
    ///
    /// # Errors
    /// [`KisError::InvalidRequest`], [`KisError::RealOrderRefused`], or the call's error.
    pub async fn order(&self, req: &OrderRequest) -> Result<OrderAck, KisError> {
        check_ticker(&req.ticker)?;
        if req.quantity <= 0 {
            return Err(KisError::InvalidRequest {
                field: "quantity",
                problem: format!("{} is not positive", req.quantity),
            });
        }
        if let OrderKind::Limit { price } = req.kind
            && price <= 0
        {
            return Err(KisError::InvalidRequest { field: "price", problem: format!("{price} is not positive") });
        }
        let value = match req.kind {
            OrderKind::Limit { price } => price.checked_mul(req.quantity),
            OrderKind::Market => None,
        };
        self.check_real_order(value)?;
        let acct = self.account()?;
        let tr = match req.side {
            Side::Buy => AccountTr::Buy,
            Side::Sell => AccountTr::Sell,
        };
        let ep = endpoints::ORDER;
        let a = self
            .call(Call {
                ep,
                tr_id: self.env().account_tr(tr),
                query: Vec::new(),
                body: Some(json!({
                    "CANO": acct.cano,
                    "ACNT_PRDT_CD": acct.product,
                    "PDNO": req.ticker,
                    "ORD_DVSN": req.kind.code(),
                    "ORD_QTY": req.quantity.to_string(),
                    "ORD_UNPR": req.kind.price().to_string(),
                })),
                tr_cont: "",
                label: format!("{}_{}", req.ticker, if req.side == Side::Buy { "buy" } else { "sell" }),
            })
            .await?;
        Self::decode(ep.name, model::parse_order_ack(&a.body))
    }

    /// Revises or cancels an order (`TTTC0013U`, mock `VTTC0013U`). A real-money revision is held
    /// to the same opt-in and cap as a new order; a real cancel needs only the opt-in.
    ///
    /// # Errors
    /// As [`order`](Self::order).
    pub async fn revise_cancel(&self, req: &ReviseCancelRequest) -> Result<OrderAck, KisError> {
        let (kind, code) = match req.action {
            ReviseCancel::Revise(kind) => {
                let value = match (kind, req.quantity) {
                    (OrderKind::Limit { price }, Some(q)) => price.checked_mul(q),
                    _ => None,
                };
                self.check_real_order(value)?;
                (kind, "01")
            }
            ReviseCancel::Cancel => {
                if self.env() == KisEnv::Real && !self.inner.cfg.allow_real_orders {
                    return Err(KisError::RealOrderRefused("HAECHI_KIS_ALLOW_REAL_ORDERS is not true".into()));
                }
                (OrderKind::Limit { price: 0 }, "02")
            }
        };
        if req.original_order_no.trim().is_empty() {
            return Err(KisError::InvalidRequest { field: "original_order_no", problem: "empty".into() });
        }
        let acct = self.account()?;
        let ep = endpoints::REVISE;
        let a = self
            .call(Call {
                ep,
                tr_id: self.env().account_tr(AccountTr::ReviseCancel),
                query: Vec::new(),
                body: Some(json!({
                    "CANO": acct.cano,
                    "ACNT_PRDT_CD": acct.product,
                    "KRX_FWDG_ORD_ORGNO": req.branch,
                    "ORGN_ODNO": req.original_order_no,
                    "ORD_DVSN": kind.code(),
                    "RVSE_CNCL_DVSN_CD": code,
                    "ORD_QTY": req.quantity.unwrap_or(0).to_string(),
                    "ORD_UNPR": kind.price().to_string(),
                    "QTY_ALL_ORD_YN": if req.quantity.is_none() { "Y" } else { "N" },
                })),
                tr_cont: "",
                label: req.original_order_no.trim().to_owned(),
            })
            .await?;
        Self::decode(ep.name, model::parse_order_ack(&a.body))
    }

    /// The account balance, every page (`TTTC8434R`, mock `VTTC8434R`).
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn balance(&self) -> Result<Balance, KisError> {
        let acct = self.account()?.clone();
        let ep = endpoints::BALANCE;
        let mut out = Balance::default();
        let (mut fk, mut nk) = (String::new(), String::new());
        for page in 0.. {
            let a = self
                .call(Call {
                    ep,
                    tr_id: self.env().account_tr(AccountTr::Balance),
                    query: vec![
                        ("CANO", acct.cano.clone()),
                        ("ACNT_PRDT_CD", acct.product.clone()),
                        ("AFHR_FLPR_YN", "N".into()),
                        ("OFL_YN", String::new()),
                        ("INQR_DVSN", "02".into()),
                        ("UNPR_DVSN", "01".into()),
                        ("FUND_STTL_ICLD_YN", "N".into()),
                        ("FNCG_AMT_AUTO_RDPT_YN", "N".into()),
                        ("PRCS_DVSN", "00".into()),
                        (FK, fk.clone()),
                        (NK, nk.clone()),
                    ],
                    body: None,
                    tr_cont: if page == 0 { "" } else { "N" },
                    label: format!("p{page}"),
                })
                .await?;
            let part = Self::decode(ep.name, model::parse_balance_page(&a.body))?;
            out.holdings.extend(part.holdings);
            out.summary = part.summary;
            if !a.more() || page >= MAX_PAGES {
                break;
            }
            (fk, nk) = cursors(&a.body);
        }
        Ok(out)
    }

    /// How much of `ticker` the account can buy at `price` (`TTTC8908R`, mock `VTTC8908R`).
    ///
    /// # Errors
    /// The call's error.
    pub async fn orderable(&self, ticker: &str, kind: OrderKind) -> Result<Orderable, KisError> {
        check_ticker(ticker)?;
        let acct = self.account()?;
        let ep = endpoints::ORDERABLE;
        let a = self
            .call(Call {
                ep,
                tr_id: self.env().account_tr(AccountTr::Orderable),
                query: vec![
                    ("CANO", acct.cano.clone()),
                    ("ACNT_PRDT_CD", acct.product.clone()),
                    ("PDNO", ticker.into()),
                    ("ORD_UNPR", kind.price().to_string()),
                    ("ORD_DVSN", kind.code().into()),
                    ("CMA_EVLU_AMT_ICLD_YN", "N".into()),
                    ("OVRS_ICLD_YN", "N".into()),
                ],
                body: None,
                tr_cont: "",
                label: ticker.to_owned(),
            })
            .await?;
        Self::decode(ep.name, model::parse_orderable(&a.body))
    }

    /// Orders and fills between `from` and `to`, every page. Uses the older-than-three-months TR
    /// when `from` is more than 90 days ago.
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn daily_orders(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyOrder>, KisError> {
        let acct = self.account()?.clone();
        let today = crate::utc_now().date_naive();
        let tr = if (today - from).num_days() > 90 { AccountTr::DailyFillsOld } else { AccountTr::DailyFills };
        let ep = endpoints::DAILY_FILLS;
        let mut out = Vec::new();
        let (mut fk, mut nk) = (String::new(), String::new());
        for page in 0.. {
            let a = self
                .call(Call {
                    ep,
                    tr_id: self.env().account_tr(tr),
                    query: vec![
                        ("CANO", acct.cano.clone()),
                        ("ACNT_PRDT_CD", acct.product.clone()),
                        ("INQR_STRT_DT", ymd(from)),
                        ("INQR_END_DT", ymd(to)),
                        ("SLL_BUY_DVSN_CD", "00".into()),
                        ("INQR_DVSN", "00".into()),
                        ("PDNO", String::new()),
                        ("CCLD_DVSN", "00".into()),
                        ("ORD_GNO_BRNO", String::new()),
                        ("ODNO", String::new()),
                        ("INQR_DVSN_3", "00".into()),
                        ("INQR_DVSN_1", String::new()),
                        ("EXCG_ID_DVSN_CD", "KRX".into()),
                        (FK, fk.clone()),
                        (NK, nk.clone()),
                    ],
                    body: None,
                    tr_cont: if page == 0 { "" } else { "N" },
                    label: format!("{}_{}_p{page}", ymd(from), ymd(to)),
                })
                .await?;
            out.extend(Self::decode(ep.name, model::parse_daily_orders(&a.body))?);
            if !a.more() || page >= MAX_PAGES {
                break;
            }
            (fk, nk) = cursors(&a.body);
        }
        Ok(out)
    }
}

/// The error a KIS body carries, `None` when it reports success (`rt_cd` "0").
#[must_use]
pub fn classify_body(endpoint: &'static str, status: u16, body: &Value) -> Option<KisError> {
    let rt_cd = str_of(body, "rt_cd");
    if rt_cd == "0" {
        return None;
    }
    if rt_cd.is_empty() && body.get("error_code").is_some() {
        return Some(KisError::Auth {
            endpoint,
            status,
            error_code: str_of(body, "error_code"),
            error_description: str_of(body, "error_description"),
        });
    }
    Some(KisError::Api { endpoint, status, rt_cd, msg_cd: str_of(body, "msg_cd"), msg1: str_of(body, "msg1") })
}

/// A runaway cursor stops here rather than looping forever.
const MAX_PAGES: usize = 1_000;

impl Issuer for KisClient {
    fn issue(&self) -> BoxFuture<'_, Result<IssuedToken, KisError>> {
        Box::pin(async move {
            let c = &self.inner.cfg.credentials;
            let body = self
                .oauth(
                    endpoints::TOKEN,
                    json!({"grant_type": "client_credentials", "appkey": c.app_key, "appsecret": c.app_secret.expose()}),
                )
                .await?;
            model::parse_token(&body).map_err(|e| KisError::Decode { endpoint: endpoints::TOKEN.name, detail: e.0 })
        })
    }
}

/// Walks a long history backwards, one chart call per page.
#[derive(Debug)]
pub struct HistoryPager {
    client: KisClient,
    ticker: String,
    from: NaiveDate,
    /// The newest date still to fetch; `None` when done.
    cursor: Option<NaiveDate>,
    period: Period,
}

impl HistoryPager {
    /// The next page (newest first), `None` when the range is exhausted. A page of fewer than
    /// 100 bars, or one reaching `from`, is the last.
    ///
    /// # Errors
    /// The call's error; the pager can be asked again after a failure.
    pub async fn next_page(&mut self) -> Result<Option<ChartPage>, KisError> {
        let Some(to) = self.cursor else { return Ok(None) };
        if to < self.from {
            self.cursor = None;
            return Ok(None);
        }
        let page = self.client.chart_page(&self.ticker, self.from, to, self.period).await?;
        let oldest = page.bars.iter().map(|b| b.date).min();
        self.cursor = match oldest {
            // Before the oldest bar's whole period: a week or month split over two pages would
            // come back as two partial bars.
            Some(d) if page.bars.len() >= CHART_PAGE_ROWS && d > self.from => period_start(d, self.period).pred_opt(),
            _ => None,
        };
        Ok(Some(page))
    }

    /// The range still to fetch, `(from, to)`; `None` when done.
    #[must_use]
    pub fn remaining(&self) -> Option<(NaiveDate, NaiveDate)> {
        self.cursor.filter(|c| *c >= self.from).map(|c| (self.from, c))
    }
}

/// The first day of the period (`Day`: the day itself) that contains `d`.
fn period_start(d: NaiveDate, period: Period) -> NaiveDate {
    use chrono::Datelike as _;
    match period {
        Period::Day => d,
        Period::Week => d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday())),
        Period::Month => d.with_day(1).unwrap_or(d),
        Period::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
    }
}

fn merge_financial(into: &mut FinancialRow, from: &FinancialRow) {
    macro_rules! take {
        ($($f:ident),*) => { $( if from.$f != 0.0 { into.$f = from.$f; } )* };
    }
    take!(
        revenue,
        operating_profit,
        net_income,
        total_assets,
        total_liabilities,
        total_equity,
        revenue_growth,
        operating_profit_growth,
        net_income_growth,
        roe,
        eps,
        bps,
        debt_ratio
    );
}

fn cursors(body: &Value) -> (String, String) {
    // Sent back exactly as received: the padding is part of the cursor.
    let get = |k: &str| {
        body.get(k).or_else(|| body.get(k.to_ascii_uppercase())).and_then(Value::as_str).unwrap_or("").to_owned()
    };
    (get("ctx_area_fk100"), get("ctx_area_nk100"))
}

fn check_ticker(t: &str) -> Result<(), KisError> {
    let ok = (t.len() == 6 || (t.len() == 7 && t.starts_with('Q')))
        && t.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(KisError::InvalidRequest { field: "ticker", problem: format!("{t:?} is not a 6-character stock code") })
    }
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_owned()
}

fn str_of(body: &Value, key: &str) -> String {
    body.get(key).and_then(Value::as_str).unwrap_or("").trim().to_owned()
}

fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

fn count(endpoint: &'static str, status: &'static str) {
    metrics::counter!("haechi_kis_requests_total", "endpoint" => endpoint, "status" => status).increment(1);
}

/// `base × 2^(attempt-1)`, capped at 8 s, ±20 % jitter so many workers do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    jitter(exp.min(Duration::from_secs(8)))
}

fn jitter(d: Duration) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % 4001) as f64 / 10_000.0; // 0.0 ..= 0.4
    d.mul_f64(0.8 + r)
}

/// The REST client hands the WebSocket feed its approval keys (`POST /oauth2/Approval`).
impl crate::ws::ApprovalSource for KisClient {
    fn approval_key(&self) -> BoxFuture<'_, Result<String, KisError>> {
        Box::pin(KisClient::approval_key(self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(b, 1) >= Duration::from_millis(80) && backoff(b, 1) <= Duration::from_millis(120));
        assert!(backoff(b, 3) >= Duration::from_millis(320));
        assert!(backoff(b, 20) <= Duration::from_millis(9600));
    }

    #[test]
    fn tickers_are_checked_before_sending() {
        assert!(check_ticker("005930").is_ok());
        assert!(check_ticker("Q500001").is_ok());
        assert!(check_ticker("5930").is_err());
        assert!(check_ticker("00593a").is_err());
    }
}
