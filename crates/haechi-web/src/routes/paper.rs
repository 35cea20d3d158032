//! Paper trading: mock accounts, their orders (with fail-safes and `Idempotency-Key`),
//! positions, fills, equity, and a live stream of changes. Placing, changing and cancelling
//! need the `trade` scope on an API token (checked for every unsafe request).

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::routes::paging;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use haechi_app::paper::{
    self, AccountSummary, KeyState, Limits, OrderFilter, OrderRequest, PaperEquityRow, PaperFillRow, PaperOrderRow,
    Placed,
};
use haechi_jobs::market::day_from_number;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

fn body<T: serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::Validation(vec![FieldError::new("body", e.to_string())]))
}

fn date(n: i32) -> String {
    day_from_number(n).map(|d| d.to_string()).unwrap_or_default()
}

/// The fail-safe limits of an account (`null`: no limit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsView {
    /// Largest value of one order, won (limit × quantity; the upper limit for a market order).
    pub max_order_value: Option<i64>,
    /// Orders per session.
    pub max_orders_per_day: Option<u32>,
    /// A fall of equity this large since the session opened halts new buys until the next session.
    pub daily_loss_limit: Option<i64>,
    /// Orders worth more than this need `"confirm": true`.
    pub confirm_above: Option<i64>,
    /// The same order again within this many seconds needs `"confirm": true` (0: off).
    pub duplicate_window_secs: u32,
}

impl From<Limits> for LimitsView {
    fn from(l: Limits) -> LimitsView {
        LimitsView {
            max_order_value: l.max_order_value.map(|w| w.get()),
            max_orders_per_day: l.max_orders_per_day,
            daily_loss_limit: l.daily_loss_limit.map(|w| w.get()),
            confirm_above: l.confirm_above.map(|w| w.get()),
            duplicate_window_secs: l.duplicate_window_secs,
        }
    }
}

impl From<LimitsView> for Limits {
    fn from(l: LimitsView) -> Limits {
        Limits {
            max_order_value: l.max_order_value.map(haechi_core::Won),
            max_orders_per_day: l.max_orders_per_day,
            daily_loss_limit: l.daily_loss_limit.map(haechi_core::Won),
            confirm_above: l.confirm_above.map(haechi_core::Won),
            duplicate_window_secs: l.duplicate_window_secs,
        }
    }
}

/// A mock account and what it is worth at the last prints. Money in won.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub starting_cash: i64,
    pub cash: i64,
    /// Cash set aside for open buys.
    pub reserved: i64,
    /// Cash an order may still use (cash − reserved).
    pub available: i64,
    /// Cash + Σ shares × last price.
    pub equity: i64,
    pub profit: i64,
    pub return_pct: f64,
    pub commissions: i64,
    pub taxes: i64,
    /// `open` or `closed`.
    pub state: String,
    pub halted: bool,
    /// The session whose new buys the daily loss limit halted.
    pub loss_halt_session: Option<String>,
    pub limits: LimitsView,
    /// Changes with every order, fill or setting.
    pub version: i64,
    pub created_at: i64,
}

impl From<&AccountSummary> for AccountView {
    fn from(s: &AccountSummary) -> AccountView {
        let a = &s.account;
        AccountView {
            id: a.id,
            name: a.name.clone(),
            starting_cash: a.starting_cash,
            cash: a.cash,
            reserved: a.reserved,
            available: a.available,
            equity: s.equity,
            profit: s.profit,
            return_pct: s.return_pct,
            commissions: a.commissions,
            taxes: a.taxes,
            state: a.state.clone(),
            halted: a.halted,
            loss_halt_session: a.loss_halt_session.clone(),
            limits: a.limits.into(),
            version: a.version,
            created_at: a.created_at,
        }
    }
}

/// A position valued at the last print. Money in won.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    pub ticker: String,
    pub name: String,
    pub quantity: i64,
    /// Shares promised to open sells.
    pub reserved: i64,
    /// Book cost, commissions included.
    pub cost: i64,
    pub last: Option<i64>,
    pub value: i64,
    pub unrealized: i64,
}

impl From<&paper::Position> for PositionView {
    fn from(p: &paper::Position) -> PositionView {
        PositionView {
            ticker: p.ticker.clone(),
            name: p.name.clone(),
            quantity: p.quantity,
            reserved: p.reserved,
            cost: p.cost,
            last: p.last,
            value: p.value,
            unrealized: p.unrealized,
        }
    }
}

/// Where the market stands for order entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarketStateView {
    /// `live` (KST wall clock), `replay` (a replayed session on a virtual clock) or `feed`
    /// (the session and time of the trades on the live feed).
    pub mode: String,
    /// `before_open`, `continuous`, `closing_call`, `after_close` or `closed`.
    pub phase: String,
    /// The session a new order is for.
    pub order_session: String,
    /// A replay's progress through its session, 0–1.
    pub progress: Option<f64>,
}

impl From<paper::MarketView> for MarketStateView {
    fn from(m: paper::MarketView) -> MarketStateView {
        MarketStateView {
            mode: m.mode.into(),
            phase: m.phase.as_str().into(),
            order_session: m.order_session.to_string(),
            progress: m.progress,
        }
    }
}

/// An account with its positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDetail {
    #[serde(flatten)]
    pub account: AccountView,
    pub positions: Vec<PositionView>,
    pub market: MarketStateView,
}

impl From<&paper::Snapshot> for AccountDetail {
    fn from(s: &paper::Snapshot) -> AccountDetail {
        AccountDetail {
            account: AccountView::from(&s.summary),
            positions: s.positions.iter().map(PositionView::from).collect(),
            market: s.market.into(),
        }
    }
}

/// An order. Money in won.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub account_id: i64,
    /// The order's number within its account.
    pub seq: i64,
    pub ticker: String,
    pub market: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    #[serde(rename = "type")]
    pub kind: String,
    pub price: Option<i64>,
    pub quantity: i64,
    pub filled: i64,
    /// The session it is for (a day order).
    pub session: String,
    /// `accepted`, `partially_filled`, `filled`, `cancelled`, `expired` or `rejected`.
    pub state: String,
    /// Why it was rejected: `off_tick`, `outside_price_limit`, `insufficient_cash`,
    /// `insufficient_shares`, `not_traded`, `max_order_value`, `max_orders_per_day`,
    /// `daily_loss_halt`, `account_halted` or `site_halted`.
    pub reason: Option<String>,
    /// Cash still set aside for it.
    pub reserved: i64,
    pub client_order_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&PaperOrderRow> for OrderView {
    fn from(o: &PaperOrderRow) -> OrderView {
        OrderView {
            id: o.id,
            account_id: o.account_id,
            seq: o.seq,
            ticker: o.ticker.clone(),
            market: o.market.clone(),
            side: o.side.clone(),
            kind: o.kind.clone(),
            price: o.limit_price,
            quantity: o.quantity,
            filled: o.filled,
            session: date(o.session),
            state: o.state.clone(),
            reason: o.reason.clone(),
            reserved: o.reserved,
            client_order_id: o.client_order_id.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A fill. Money in won.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillView {
    pub id: i64,
    pub order_id: i64,
    pub ticker: String,
    pub side: String,
    pub quantity: i64,
    pub price: i64,
    pub amount: i64,
    pub commission: i64,
    pub tax: i64,
    pub trade_date: String,
    /// T+2: when cash and shares change hands (proceeds are usable for buying at once).
    pub settlement_date: String,
    pub created_at: i64,
}

impl From<&PaperFillRow> for FillView {
    fn from(f: &PaperFillRow) -> FillView {
        FillView {
            id: f.id,
            order_id: f.order_id,
            ticker: f.ticker.clone(),
            side: f.side.clone(),
            quantity: f.quantity,
            price: f.price,
            amount: f.amount,
            commission: f.commission,
            tax: f.tax,
            trade_date: date(f.trade_date),
            settlement_date: date(f.settlement_date),
            created_at: f.created_at,
        }
    }
}

/// Equity at a session's close. Won.
#[derive(Debug, Serialize, ToSchema)]
pub struct EquityPoint {
    pub session: String,
    pub cash: i64,
    pub equity: i64,
}

impl From<&PaperEquityRow> for EquityPoint {
    fn from(e: &PaperEquityRow) -> EquityPoint {
        EquityPoint { session: date(e.session), cash: e.cash, equity: e.equity }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FillPage {
    pub items: Vec<FillView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    pub name: String,
    /// Starting cash in won, 1,000,000 to 10,000,000,000.
    pub cash: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub limits: Option<LimitsView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountReset {
    /// New starting cash (default: the account's starting cash).
    #[serde(default)]
    pub cash: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HaltRequest {
    pub halted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreate {
    pub ticker: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The limit price in won (limit orders only).
    #[serde(default)]
    pub price: Option<i64>,
    /// Whole shares.
    pub quantity: i64,
    /// Set after the server asked for a confirmation (a duplicate or a large order).
    #[serde(default)]
    pub confirm: bool,
    /// Your own id for the order, echoed back.
    #[serde(default)]
    pub client_order_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderUpdate {
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default)]
    pub quantity: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrderParams {
    /// `open`, `closed` or `all` (default).
    pub status: Option<String>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

/// Your mock accounts.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "paper",
    responses((status = 200, body = Vec<AccountView>)))]
pub async fn list(State(state): State<AppState>, Caller(p): Caller) -> ApiResult<axum::Json<Vec<AccountView>>> {
    let rows = paper::list(state.app(), &p).await?;
    Ok(axum::Json(rows.iter().map(AccountView::from).collect()))
}

/// Opens a mock account.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "paper",
    request_body(content = AccountCreate, content_type = "application/json"),
    responses((status = 201, body = AccountDetail), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    b: Bytes,
) -> ApiResult<Response> {
    let req: AccountCreate = body(&b)?;
    let row = paper::open(state.app(), &meta, &p, &req.name, req.cash).await?;
    let snap = paper::snapshot(state.app(), &p, row.id).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(AccountDetail::from(&snap))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/accounts/{}", row.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// An account with its positions valued at the last prints.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = AccountDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<AccountDetail>> {
    Ok(axum::Json(AccountDetail::from(&paper::snapshot(state.app(), &p, id).await?)))
}

/// Renames an account or sets its fail-safe limits.
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "paper", params(("id" = i64, Path)),
    request_body(content = AccountUpdate, content_type = "application/json"),
    responses((status = 200, body = AccountDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<axum::Json<AccountDetail>> {
    let req: AccountUpdate = body(&b)?;
    paper::configure(state.app(), &meta, &p, id, req.name.as_deref(), req.limits.map(Limits::from)).await?;
    Ok(axum::Json(AccountDetail::from(&paper::snapshot(state.app(), &p, id).await?)))
}

/// Closes an account: open orders are cancelled; it stays readable.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "paper", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn close(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    paper::close(state.app(), &meta, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts an account over with its starting cash (or a new amount): orders, fills, positions
/// and history are deleted.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/reset", tag = "paper", params(("id" = i64, Path)),
    request_body(content = AccountReset, content_type = "application/json"),
    responses((status = 200, body = AccountDetail), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reset(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<axum::Json<AccountDetail>> {
    let req: AccountReset = if b.is_empty() { AccountReset { cash: None } } else { body(&b)? };
    paper::reset(state.app(), &meta, &p, id, req.cash).await?;
    Ok(axum::Json(AccountDetail::from(&paper::snapshot(state.app(), &p, id).await?)))
}

/// Halts or resumes trading on the account.
#[utoipa::path(put, path = "/api/v1/accounts/{id}/halt", tag = "paper", params(("id" = i64, Path)),
    request_body(content = HaltRequest, content_type = "application/json"),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let req: HaltRequest = body(&b)?;
    paper::set_halt(state.app(), &meta, &p, id, req.halted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The password (and one-time code, with two-factor on) that lifts a daily loss halt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftRequest {
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// Lifts the daily loss halt for the rest of the session, after the owner proves it is them
/// again (a stolen session cannot undo the fail-safe). Audited as `paper_loss_halt_lifted`.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/loss-halt/lift", tag = "paper", params(("id" = i64, Path)),
    request_body(content = LiftRequest, content_type = "application/json"),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn lift_loss_halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let req: LiftRequest = body(&b)?;
    let proof = haechi_app::accounts::Reauth {
        password: &req.password,
        totp_code: req.totp_code.as_deref().filter(|c| !c.is_empty()),
        recovery_code: None,
    };
    paper::lift_loss_halt(state.app(), &meta, &p, id, proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A paper order's twin at the KIS mock account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MirrorOrderView {
    pub order_id: i64,
    pub session: String,
    /// `pending`, `sending`, `sent`, `failed` (KIS refused it: `detail`), `unknown` (no answer;
    /// reconciliation looks for it), `skipped` (cancelled before it was sent), `matched` or
    /// `differs` (reconciliation: `detail` has both sides).
    pub state: String,
    /// KIS's order number.
    pub broker_order_no: Option<String>,
    pub cancel_sent: bool,
    /// What KIS filled, and at what average price, as of the last reconciliation.
    pub kis_filled: Option<i64>,
    pub kis_price: Option<i64>,
    pub detail: Option<String>,
}

/// Mirroring of an account's orders to the KIS mock account (모의투자).
#[derive(Debug, Serialize, ToSchema)]
pub struct MirrorStateView {
    pub enabled: bool,
    /// Whether this platform has a KIS mock account to mirror to.
    pub available: bool,
    pub orders: Vec<MirrorOrderView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorRequest {
    pub enabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The session to compare (YYYY-MM-DD); the current order session when absent.
    #[serde(default)]
    pub session: Option<String>,
}

/// The account's mirroring to the KIS mock account and its mirrored orders, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/mirror", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = MirrorStateView), (status = 404, body = Problem)))]
pub async fn mirror(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<MirrorStateView>> {
    let m = paper::mirror(state.app(), &p, id).await?;
    Ok(axum::Json(MirrorStateView {
        enabled: m.enabled,
        available: m.available,
        orders: m
            .orders
            .into_iter()
            .map(|o| MirrorOrderView {
                order_id: o.order_id,
                session: date(o.session),
                state: o.state,
                broker_order_no: o.broker_order_no,
                cancel_sent: o.cancel_sent,
                kis_filled: o.kis_filled,
                kis_price: o.kis_price,
                detail: o.detail,
            })
            .collect(),
    }))
}

/// Turns mirroring of the account's new orders to the KIS mock account on or off. Orders are
/// sent by workers on the `paper` queue; each session's fills are reconciled at the close.
#[utoipa::path(put, path = "/api/v1/accounts/{id}/mirror", tag = "paper", params(("id" = i64, Path)),
    request_body(content = MirrorRequest, content_type = "application/json"),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn set_mirror(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let req: MirrorRequest = body(&b)?;
    paper::set_mirror(state.app(), &meta, &p, id, req.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Compares a session's mirrored orders with KIS's record of them now (a job; the answer is
/// in `GET …/mirror` once it ran).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/mirror/reconcile", tag = "paper", params(("id" = i64, Path)),
    request_body(content = ReconcileRequest, content_type = "application/json"),
    responses((status = 202), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reconcile(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let req: ReconcileRequest = if b.is_empty() { ReconcileRequest { session: None } } else { body(&b)? };
    let session = match req.session.as_deref() {
        Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ApiError::Validation(vec![FieldError::new("session", format!("{s:?} is not YYYY-MM-DD"))]))?,
        None => paper::market_time(state.app()).await?.order_session,
    };
    paper::reconcile(state.app(), &p, id, session).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Halts or resumes trading on the whole site (administrators).
#[utoipa::path(put, path = "/api/v1/admin/trading-halt", tag = "admin",
    request_body(content = HaltRequest, content_type = "application/json"),
    responses((status = 204), (status = 403, body = Problem)))]
pub async fn site_halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    b: Bytes,
) -> ApiResult<StatusCode> {
    let req: HaltRequest = body(&b)?;
    paper::set_site_halt(state.app(), &meta, &p, req.halted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account's orders, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/orders", tag = "paper", params(("id" = i64, Path), OrderParams),
    responses((status = 200, body = OrderPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn orders(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<OrderParams>,
) -> ApiResult<axum::Json<OrderPage>> {
    let filter = match q.status.as_deref() {
        None | Some("all") => OrderFilter::All,
        Some("open") => OrderFilter::Open,
        Some("closed") => OrderFilter::Closed,
        Some(other) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "status",
                format!("must be open, closed or all, found {other:?}"),
            )]));
        }
    };
    let page = paper::orders(state.app(), &p, id, filter, paging(q.page, q.per_page)?).await?;
    Ok(axum::Json(OrderPage {
        items: page.items.iter().map(OrderView::from).collect(),
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// The answer to an order: 201 with the accepted order; 422 `order-rejected` with the stored
/// rejected order and its reason; 422 `confirmation-required` asking for `"confirm": true`.
fn placed_response(placed: &Placed) -> (StatusCode, serde_json::Value) {
    match placed {
        Placed::Accepted(o) => (StatusCode::CREATED, serde_json::to_value(OrderView::from(o)).unwrap_or_default()),
        Placed::Rejected { order, code, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({
                "type": "/problems/order-rejected",
                "title": "주문이 거부되었습니다 Order rejected",
                "status": 422,
                "detail": message,
                "reason": code,
                "reason_ko": crate::portal::i18n::reason_ko(code),
                "order": OrderView::from(order),
            }),
        ),
        Placed::NeedsConfirmation { code, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({
                "type": "/problems/confirmation-required",
                "title": "주문 확인이 필요합니다 Confirmation required",
                "status": 422,
                "detail": message,
                "reason": code,
                "reason_ko": crate::portal::i18n::reason_ko(code),
                "errors": [{"field": "confirm", "message": "send the order again with \"confirm\": true"}],
            }),
        ),
    }
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut resp = (status, body).into_response();
    let ct = if status.is_success() { "application/json" } else { "application/problem+json" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Places an order. With an `Idempotency-Key` header, a retry of the same request gets the
/// first answer again (header `Idempotent-Replayed: true`); the same key with another body is
/// a 422, and while the first is still in flight a 409.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/orders", tag = "paper", params(("id" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 128 visible ASCII characters; kept a day")),
    request_body(content = OrderCreate, content_type = "application/json"),
    responses((status = 201, body = OrderView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the account is closed, or the key's first request is in flight"),
        (status = 422, body = Problem, description = "invalid, rejected (`/problems/order-rejected`, with `reason` and `order`) or needing confirmation (`/problems/confirmation-required`)")))]
pub async fn place(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::Validation(vec![FieldError::new("Idempotency-Key", "must be visible ASCII")]))?
                .to_owned(),
        ),
    };
    if let Some(k) = &key {
        let fingerprint = format!("POST /api/v1/accounts/{id}/orders\n{}", String::from_utf8_lossy(&b));
        if let KeyState::Replay { status, body } = paper::idempotency_begin(state.app(), &p, k, &fingerprint).await? {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Ok(json_response(status, body, true));
        }
    }
    let result = async {
        let req: OrderCreate = body(&b)?;
        let req = OrderRequest {
            ticker: req.ticker,
            side: req.side,
            kind: req.kind,
            price: req.price,
            quantity: req.quantity,
            confirm: req.confirm,
            client_order_id: req.client_order_id,
        };
        Ok::<_, ApiError>(paper::place(state.app(), &meta, &p, id, req).await?)
    }
    .await;
    match result {
        Ok(placed) => {
            let (status, value) = placed_response(&placed);
            let text = value.to_string();
            if let Some(k) = &key {
                paper::idempotency_finish(state.app(), &p, k, status.as_u16(), &text).await?;
            }
            let mut resp = json_response(status, text, false);
            if let Placed::Accepted(o) = &placed
                && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/orders/{}", o.id))
            {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        Err(e) => {
            if let Some(k) = &key {
                // A client error is an answer too, replayed as such; a fault of ours frees the
                // key so the retry runs.
                let problem = e.problem();
                if problem.status >= 500 {
                    let _ = paper::idempotency_release(state.app(), &p, k).await;
                } else {
                    let text = serde_json::to_string(&problem).unwrap_or_default();
                    let _ = paper::idempotency_finish(state.app(), &p, k, problem.status, &text).await;
                }
            }
            Err(e)
        }
    }
}

/// An order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
pub async fn get_order(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(OrderView::from(&paper::order(state.app(), &p, id).await?)))
}

/// Changes an open order's price or quantity (cancel and replace: the new order queues last).
/// If the replacement is refused, the original stays.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "paper", params(("id" = i64, Path)),
    request_body(content = OrderUpdate, content_type = "application/json"),
    responses((status = 201, body = OrderView, description = "the replacement"), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn modify(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
    b: Bytes,
) -> ApiResult<Response> {
    let req: OrderUpdate = body(&b)?;
    let placed = paper::modify(state.app(), &meta, &p, id, req.price, req.quantity).await?;
    let (status, value) = placed_response(&placed);
    Ok(json_response(status, value.to_string(), false))
}

/// Cancels an open order.
#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(OrderView::from(&paper::cancel(state.app(), &meta, &p, id).await?)))
}

/// An account's positions valued at the last prints.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/positions", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PositionView>), (status = 404, body = Problem)))]
pub async fn positions(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<PositionView>>> {
    Ok(axum::Json(paper::positions(state.app(), &p, id).await?.iter().map(PositionView::from).collect()))
}

/// An account's fills, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/fills", tag = "paper", params(("id" = i64, Path), PageParams),
    responses((status = 200, body = FillPage), (status = 404, body = Problem)))]
pub async fn fills(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<FillPage>> {
    let page = paper::fills(state.app(), &p, id, paging(q.page, q.per_page)?).await?;
    Ok(axum::Json(FillPage {
        items: page.items.iter().map(FillView::from).collect(),
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// An account's equity at each session's close.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/equity", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<EquityPoint>), (status = 404, body = Problem)))]
pub async fn equity(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<EquityPoint>>> {
    Ok(axum::Json(paper::equity(state.app(), &p, id).await?.iter().map(EquityPoint::from).collect()))
}

/// An account's performance from its equity at each close, by the run report's definitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PerformanceView {
    /// Closes recorded.
    pub sessions: usize,
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub annual_volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub max_drawdown_duration_days: usize,
    pub var_95: Option<f64>,
    pub cvar_95: Option<f64>,
}

/// An account's performance (total return, CAGR, volatility, Sharpe, Sortino, drawdown, VaR)
/// from its equity at each close, with the definitions of a run's report.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/performance", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, body = PerformanceView), (status = 404, body = Problem)))]
pub async fn performance(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PerformanceView>> {
    let (sessions, m) = paper::performance(state.app(), &p, id).await?;
    Ok(axum::Json(PerformanceView {
        sessions,
        total_return: m.total_return,
        cagr: m.cagr,
        annual_volatility: m.annual_volatility,
        sharpe: m.sharpe,
        sortino: m.sortino,
        max_drawdown: m.max_drawdown,
        max_drawdown_duration_days: m.max_drawdown_duration_days,
        var_95: m.var_95,
        cvar_95: m.cvar_95,
    }))
}

/// Where the market stands: live or replayed, its phase, the session a new order is for.
#[utoipa::path(get, path = "/api/v1/market", tag = "paper",
    responses((status = 200, body = MarketStateView)))]
pub async fn market(State(state): State<AppState>, Caller(_p): Caller) -> ApiResult<axum::Json<MarketStateView>> {
    Ok(axum::Json(paper::market_time(state.app()).await?.into()))
}

/// What an order ticket shows for a ticker: its band and tick for the order's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub ticker: String,
    pub name: String,
    pub market: String,
    pub session: String,
    /// The band's base (the previous close), and the lowest and highest orderable prices.
    pub base: Option<i64>,
    pub lower: Option<i64>,
    pub upper: Option<i64>,
    pub last: Option<i64>,
    pub tick: Option<i64>,
}

/// The order ticket's facts for a ticker.
#[utoipa::path(get, path = "/api/v1/market/tickers/{ticker}", tag = "paper", params(("ticker" = String, Path)),
    responses((status = 200, body = TicketView), (status = 422, body = Problem)))]
pub async fn ticker(
    State(state): State<AppState>,
    Caller(_p): Caller,
    Path(t): Path<String>,
) -> ApiResult<axum::Json<TicketView>> {
    let i = paper::ticket_info(state.app(), &t).await?;
    Ok(axum::Json(TicketView {
        ticker: i.ticker,
        name: i.name,
        market: i.market,
        session: i.session.to_string(),
        base: i.base,
        lower: i.lower,
        upper: i.upper,
        last: i.last,
        tick: i.tick,
    }))
}

/// How often the stream looks for changes made by other processes (the matcher elsewhere).
const POLL: Duration = Duration::from_secs(1);

/// The account as it changes: its detail (as `GET /api/v1/accounts/{id}`, with live P&L) at
/// once, then after every change and every price move; ends when the account is no longer the
/// caller's. What the SSE stream and the WebSocket both send.
fn account_changes(
    state: AppState,
    p: haechi_app::Principal,
    id: i64,
) -> impl Stream<Item = AccountDetail> + Send + 'static {
    let rx = state.app().paper_notices();
    let p = std::sync::Arc::new(p);
    let init = (state, rx, None::<(i64, i64)>, true);
    futures_util::stream::unfold(init, move |(state, mut rx, mut last, first)| {
        let p = p.clone();
        async move {
            loop {
                if !first {
                    let wait = async {
                        loop {
                            match rx.recv().await {
                                Ok(n) if n.account_id == id => return,
                                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                    std::future::pending::<()>().await;
                                }
                            }
                        }
                    };
                    let _ = tokio::time::timeout(POLL, wait).await;
                }
                let Ok(snap) = paper::snapshot(state.app(), &p, id).await else {
                    // The account is gone (or the session ended): end the stream.
                    return None;
                };
                // Prices move without the account changing: equity is part of the key.
                let key = (snap.summary.account.version, snap.summary.equity);
                if last == Some(key) {
                    continue;
                }
                last = Some(key);
                return Some((AccountDetail::from(&snap), (state, rx, last, false)));
            }
        }
    })
}

/// A live stream (Server-Sent Events) of the account: an `account` event (as `GET
/// /api/v1/accounts/{id}`, with live P&L) at once and after every change.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/events", tag = "paper", params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream of `account` events", content_type = "text/event-stream"),
        (status = 404, body = Problem)))]
pub async fn events(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    paper::owned(state.app(), &p, id).await?;
    let stream = futures_util::StreamExt::filter_map(account_changes(state, p, id), |d| async move {
        Event::default().event("account").json_data(d).ok().map(Ok)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The account's live stream over a WebSocket, for app clients: the same `account` messages
/// as the SSE stream, each a text frame `{"event":"account","data":{…}}`. Browsers send cookies
/// on a cross-site WebSocket handshake and no CORS rule stops the page reading the socket, so
/// a handshake whose `Origin` is not this server's is refused (403).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/socket", tag = "paper", params(("id" = i64, Path)),
    responses((status = 101, description = "WebSocket of `account` messages"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 426, body = Problem)))]
pub async fn socket(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ws: Result<axum::extract::ws::WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    paper::owned(state.app(), &p, id).await?;
    let ws = ws.map_err(|e| ApiError::UpgradeRequired(e.body_text()))?;
    let changes = account_changes(state, p, id);
    Ok(ws.on_upgrade(move |socket| serve_socket(socket, changes)))
}

/// `Origin`, when the client sent one, names this server (scheme aside): what a browser page of
/// another site cannot forge.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map_or("", |(_, h)| h);
    if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return Err(ApiError::Forbidden("a WebSocket from another site's page is refused"));
    }
    Ok(())
}

async fn serve_socket(
    mut socket: axum::extract::ws::WebSocket,
    changes: impl Stream<Item = AccountDetail> + Send + 'static,
) {
    use axum::extract::ws::Message;
    use futures_util::StreamExt as _;
    let mut changes = std::pin::pin!(changes);
    loop {
        tokio::select! {
            next = changes.next() => {
                let Some(detail) = next else { break };
                let text = serde_json::json!({"event": "account", "data": detail}).to_string();
                if socket.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            // Pings are answered by the library; anything else from the client is ignored.
            msg = socket.recv() => match msg {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
