//! Paper trading (모의투자): mock accounts a user places orders into, filled by the matcher on
//! the market's trade prints.
//!
//! Every operation on an account runs in one transaction holding that account's lock
//! ([`haechi_db::PaperTxn`]); the decisions are `haechi-paper`'s pure functions — the
//! market rules shared with the backtester, the fail-safes, price-time matching — applied to
//! the rows the operation needs. An account is its owner's alone: anyone else's id is a 404.

use crate::App;
use crate::accounts::{Reauth, reauthenticate};
use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult, FieldProblem};
use crate::paging::{PageOf, Paging};
use crate::principal::Principal;
use crate::rbac::Permission;
use chrono::NaiveDate;
use haechi_core::krx::{self, PriceBand};
use haechi_core::{Market, OrderId, OrderKind, Price, Quantity, Rate, RejectReason, Side, Ticker, Won};
use haechi_db::{MarketRow, NewPaperAccount, PaperTxn, QuoteRow};
pub use haechi_db::{OrderFilter, PaperAccountRow, PaperEquityRow, PaperFillRow, PaperHoldingRow, PaperOrderRow};
use haechi_jobs::market::{day_from_number, day_number};
use haechi_paper::failsafe::{self, Activity, Ticket};
pub use haechi_paper::failsafe::{Limits, Refusal};
use haechi_paper::session::{MarketTime, Phase, Sessions};
use haechi_paper::{Holding, NewOrder, OrderState, PaperAccount, PaperOrder, Print, Stored};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Smallest and largest starting cash, won.
pub const MIN_CASH: i64 = 1_000_000;
pub const MAX_CASH: i64 = 10_000_000_000;
/// Longest account name, characters.
pub const MAX_NAME: usize = 100;
/// Largest order quantity (well above any listed share count traded in a day).
pub const MAX_QUANTITY: u64 = 100_000_000;
/// A replay's market state older than this is stale: order entry falls back to the wall clock.
pub const REPLAY_FRESH_MS: i64 = 60_000;
/// The site-wide trading halt's flag.
pub const SITE_HALT_FLAG: &str = "trading_halted";

/// A mock account with what it is worth now.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    #[serde(flatten)]
    pub account: AccountInfo,
    /// Cash + Σ shares × last price.
    pub equity: i64,
    /// Equity − starting cash.
    pub profit: i64,
    pub return_pct: f64,
}

/// The stored account, as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub id: i64,
    pub name: String,
    pub starting_cash: i64,
    pub cash: i64,
    pub reserved: i64,
    /// Cash an order may still use.
    pub available: i64,
    pub commissions: i64,
    pub taxes: i64,
    /// `open` or `closed`.
    pub state: String,
    pub halted: bool,
    /// New buys are halted for this session by the daily loss limit (yyyy-mm-dd).
    pub loss_halt_session: Option<String>,
    pub limits: Limits,
    /// Bumped by every change: a client polling it sees when to refresh.
    pub version: i64,
    pub created_at: i64,
}

impl AccountInfo {
    fn from_row(r: &PaperAccountRow) -> AccountInfo {
        AccountInfo {
            id: r.id,
            name: r.name.clone(),
            starting_cash: r.starting_cash,
            cash: r.cash,
            reserved: r.reserved,
            available: r.cash - r.reserved,
            commissions: r.commissions,
            taxes: r.taxes,
            state: r.state.clone(),
            halted: r.halted,
            loss_halt_session: r.loss_halt_session.filter(|d| *d > 0).and_then(day_from_number).map(|d| d.to_string()),
            limits: limits_of(r),
            version: r.version,
            created_at: r.created_at,
        }
    }
}

/// A position valued at the last print.
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub ticker: String,
    pub name: String,
    pub quantity: i64,
    /// Shares promised to open sells.
    pub reserved: i64,
    /// Book cost, commissions included.
    pub cost: i64,
    pub last: Option<i64>,
    pub value: i64,
    /// Value − cost.
    pub unrealized: i64,
}

/// An account with its positions: the account page and the live stream.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub summary: AccountSummary,
    pub positions: Vec<Position>,
    pub market: MarketView,
}

/// Where the market stands for order entry.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MarketView {
    /// `live` (the wall clock in KST) or `replay` (a replayed session on a virtual clock).
    pub mode: &'static str,
    pub phase: Phase,
    /// The session a new order is for.
    pub order_session: NaiveDate,
    /// A replay's progress through its session, 0–1.
    pub progress: Option<f64>,
}

/// An order request.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub ticker: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    pub kind: String,
    pub price: Option<i64>,
    pub quantity: i64,
    /// The client confirms an order it was asked to confirm.
    pub confirm: bool,
    pub client_order_id: Option<String>,
}

/// What placing an order came to.
#[derive(Debug, Clone)]
pub enum Placed {
    Accepted(PaperOrderRow),
    /// Refused by a market rule or a fail-safe; stored as a `rejected` order so the history
    /// shows it.
    Rejected {
        order: PaperOrderRow,
        code: &'static str,
        message: String,
    },
    /// A fail-safe asks the client to confirm (nothing stored).
    NeedsConfirmation {
        code: &'static str,
        message: String,
    },
}

/// What the order ticket shows for a ticker: its tick, band and last price.
#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub ticker: String,
    pub name: String,
    pub market: String,
    pub session: NaiveDate,
    pub base: Option<i64>,
    pub lower: Option<i64>,
    pub upper: Option<i64>,
    pub last: Option<i64>,
    /// The tick at the last (or base) price.
    pub tick: Option<i64>,
}

fn limits_of(r: &PaperAccountRow) -> Limits {
    serde_json::from_str(&r.limits).unwrap_or_default()
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn state_str(s: OrderState) -> &'static str {
    match s {
        OrderState::Accepted => "accepted",
        OrderState::PartiallyFilled => "partially_filled",
        OrderState::Filled => "filled",
        OrderState::Cancelled => "cancelled",
        OrderState::Expired => "expired",
    }
}

fn parse_state(s: &str) -> OrderState {
    match s {
        "partially_filled" => OrderState::PartiallyFilled,
        "filled" => OrderState::Filled,
        "cancelled" => OrderState::Cancelled,
        "expired" | "rejected" => OrderState::Expired,
        _ => OrderState::Accepted,
    }
}

fn internal(context: &'static str) -> impl FnOnce(haechi_db::DbError) -> AppError {
    move |e| AppError::internal(context, e)
}

/// A stored order as the pure core sees it (ids are the account's order numbers).
fn to_paper(o: &PaperOrderRow) -> Option<PaperOrder> {
    let kind = match (o.kind.as_str(), o.limit_price) {
        ("limit", Some(p)) => OrderKind::Limit { price: Price::new(p)? },
        _ => OrderKind::Market,
    };
    Some(PaperOrder {
        id: OrderId(u64::try_from(o.seq).ok()?),
        ticker: Ticker::parse(&o.ticker).ok()?,
        market: o.market.parse().ok()?,
        side: if o.side == "sell" { Side::Sell } else { Side::Buy },
        kind,
        quantity: Quantity(u64::try_from(o.quantity).ok()?),
        filled: Quantity(u64::try_from(o.filled).ok()?),
        session: day_from_number(o.session)?,
        state: parse_state(&o.state),
        reserved: Won(o.reserved),
    })
}

fn to_holding(h: &PaperHoldingRow) -> Option<(Ticker, Holding)> {
    Some((
        Ticker::parse(&h.ticker).ok()?,
        Holding {
            quantity: u64::try_from(h.quantity).ok()?,
            reserved: u64::try_from(h.reserved).ok()?,
            cost: Won(h.cost),
        },
    ))
}

/// Rebuilds the pure account from the locked row and the rows an operation loaded.
fn restore(t: &PaperTxn, holdings: &[PaperHoldingRow], orders: &[PaperOrderRow]) -> AppResult<PaperAccount> {
    let a = &t.account;
    let mut hs = BTreeMap::new();
    for h in holdings {
        let (k, v) = to_holding(h).ok_or_else(|| AppError::internal("reading a holding", format!("{h:?}")))?;
        hs.insert(k, v);
    }
    let mut os = Vec::with_capacity(orders.len());
    for o in orders {
        os.push(to_paper(o).ok_or_else(|| AppError::internal("reading an order", format!("order {}", o.id)))?);
    }
    Ok(PaperAccount::restore(Stored {
        cash: Won(a.cash),
        reserved: Won(a.reserved),
        commission: Rate::from_ppb(u64::try_from(a.commission_ppb).unwrap_or(0)),
        next_id: u64::try_from(a.next_order).unwrap_or(1),
        holdings: hs,
        orders: os,
        commissions: Won(a.commissions),
        taxes: Won(a.taxes),
    }))
}

/// Writes back what the pure account changed: the account's sums, the given tickers'
/// holdings and the loaded orders.
async fn write_back(
    t: &mut PaperTxn,
    acct: &PaperAccount,
    tickers: &[Ticker],
    orders: &mut [PaperOrderRow],
    now: i64,
) -> AppResult<()> {
    t.account.cash = acct.cash().get();
    t.account.reserved = acct.reserved().get();
    t.account.next_order = i64::try_from(acct.next_id()).unwrap_or(i64::MAX);
    t.account.commissions = acct.commissions_paid().get();
    t.account.taxes = acct.taxes_paid().get();
    t.save_account().await.map_err(internal("saving an account"))?;
    for tk in tickers {
        let h = acct.holdings().get(tk).copied().unwrap_or_default();
        let row = PaperHoldingRow {
            account_id: t.account.id,
            ticker: tk.as_str().to_owned(),
            quantity: i64::try_from(h.quantity).unwrap_or(i64::MAX),
            reserved: i64::try_from(h.reserved).unwrap_or(i64::MAX),
            cost: h.cost.get(),
        };
        t.put_holding(row).await.map_err(internal("saving a holding"))?;
    }
    for row in orders.iter_mut() {
        let Some(o) = acct.orders().get(&OrderId(u64::try_from(row.seq).unwrap_or(0))) else { continue };
        let state = state_str(o.state);
        let filled = i64::try_from(o.filled.get()).unwrap_or(i64::MAX);
        if row.state != state || row.filled != filled || row.reserved != o.reserved.get() {
            row.state = state.to_owned();
            row.filled = filled;
            row.reserved = o.reserved.get();
            row.updated_at = now;
            t.update_order(row.clone()).await.map_err(internal("saving an order"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- market data

/// The instrument's market and name, from the loaded market data.
async fn instrument(app: &App, ticker: Ticker) -> AppResult<(Market, String)> {
    let m = app.market().recent(app.db()).await.map_err(market_error)?;
    let slot = m.store.slot_of(ticker).ok_or_else(|| {
        AppError::invalid("ticker", format!("{ticker} is not a listed instrument in the loaded market data"))
    })?;
    let i = m.store.instrument(slot);
    Ok((i.market, i.name.clone()))
}

fn market_error(e: haechi_jobs::MarketError) -> AppError {
    match e {
        haechi_jobs::MarketError::NoData => {
            AppError::Conflict("no market data is loaded: run `haechi data load` or the collector first".into())
        }
        other => AppError::internal("loading market data", other),
    }
}

/// The session calendar: the exchange's where the data has it, weekdays beyond.
async fn sessions(app: &App) -> AppResult<Sessions> {
    let m = app.market().recent(app.db()).await.map_err(market_error)?;
    Ok(Sessions::new(m.store.calendar().clone()))
}

/// The base of a ticker's price band for a session: the matcher's close of the previous
/// session when it has one, else the last daily close before the session.
async fn band_base(app: &App, ticker: Ticker, session: NaiveDate) -> AppResult<Option<Price>> {
    let day = day_number(session);
    if let Some(q) = app.db().quote(ticker.as_str()).await.map_err(internal("reading a quote"))? {
        if q.session == day {
            return Ok(Price::new(q.prev_close));
        }
        if q.session < day {
            return Ok(Price::new(q.last));
        }
    }
    let m = app.market().recent(app.db()).await.map_err(market_error)?;
    let Some(slot) = m.store.slot_of(ticker) else { return Ok(None) };
    let idx = m.store.session_at_or_after(session);
    Ok(if idx == 0 { None } else { m.store.last_close(slot, idx - 1) })
}

/// Where the market is for order entry: a fresh replay's state, else the wall clock.
///
/// # Errors
/// The database's error.
pub async fn market_time(app: &App) -> AppResult<MarketView> {
    let now = app.now_ms();
    if let Some(row) = app.db().market_state().await.map_err(internal("reading the market state"))?
        && (row.mode == "replay" || row.mode == "feed")
        && now - row.updated_at < REPLAY_FRESH_MS
        && let Some(session) = day_from_number(row.session)
    {
        let phase = Phase::parse(&row.phase).unwrap_or(Phase::BeforeOpen);
        let order_session = if phase == Phase::AfterClose { replay_next(app, session).await? } else { session };
        let progress = (row.steps > 0).then(|| f64::from(row.step) / f64::from(row.steps));
        let mode = if row.mode == "feed" { "feed" } else { "replay" };
        return Ok(MarketView { mode, phase, order_session, progress });
    }
    let t: MarketTime = sessions(app).await?.at(now);
    Ok(MarketView { mode: "live", phase: t.phase, order_session: t.order_session, progress: None })
}

/// The session a replay plays after `session`: the next day of the market data.
async fn replay_next(app: &App, session: NaiveDate) -> AppResult<NaiveDate> {
    let m = app.market().recent(app.db()).await.map_err(market_error)?;
    let i = m.store.session_at_or_after(session.succ_opt().unwrap_or(session));
    Ok(m.store.dates().get(i).copied().unwrap_or_else(|| Sessions::new(m.store.calendar().clone()).next_after(session)))
}

/// What the order ticket shows for a ticker.
///
/// # Errors
/// [`AppError::Invalid`] for a ticker that is malformed or not in the market data.
pub async fn ticket_info(app: &App, ticker: &str) -> AppResult<TicketInfo> {
    let t = Ticker::parse(ticker.trim()).map_err(|e| AppError::invalid("ticker", e.to_string()))?;
    let (market, name) = instrument(app, t).await?;
    let session = market_time(app).await?.order_session;
    let base = band_base(app, t, session).await?;
    let band = base.map(|b| krx::price_band(session, market, b));
    let last = app.db().quote(t.as_str()).await.map_err(internal("reading a quote"))?.map(|q| q.last);
    let at = last.or(base.map(Price::get));
    Ok(TicketInfo {
        ticker: t.as_str().to_owned(),
        name,
        market: market.as_str().to_owned(),
        session,
        base: base.map(Price::get),
        lower: band.map(|b| b.lower.get()),
        upper: band.map(|b| b.upper_orderable.get()),
        last,
        tick: at.map(|p| krx::tick_size(session, market, p)),
    })
}

// ---------------------------------------------------------------- accounts

fn require_trader(p: &Principal) -> AppResult<()> {
    p.require(Permission::Trade)
}

/// The caller's own account, else a 404 (another user's id looks like no account at all).
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn owned(app: &App, p: &Principal, id: i64) -> AppResult<PaperAccountRow> {
    let a = app.db().paper_account(id).await.map_err(internal("reading an account"))?;
    match a {
        Some(a) if a.owner_id == p.id().get() => Ok(a),
        _ => Err(AppError::NotFound),
    }
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::invalid("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::invalid("name", format!("at most {MAX_NAME} characters")));
    }
    Ok(name.to_owned())
}

/// Opens a mock account.
///
/// # Errors
/// [`AppError::Invalid`] naming `name` or `cash`; [`AppError::Quota`] past the open-account limit.
pub async fn open(app: &App, meta: &RequestMeta, p: &Principal, name: &str, cash: i64) -> AppResult<PaperAccountRow> {
    require_trader(p)?;
    let mut problems = Vec::new();
    let name = match check_name(name) {
        Ok(n) => n,
        Err(AppError::Invalid(mut v)) => {
            problems.append(&mut v);
            String::new()
        }
        Err(e) => return Err(e),
    };
    if !(MIN_CASH..=MAX_CASH).contains(&cash) {
        problems
            .push(FieldProblem::new("cash", format!("must be between {MIN_CASH} and {MAX_CASH} won, found {cash}")));
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let open = app.db().count_paper_accounts(p.id().get()).await.map_err(internal("counting accounts"))?;
    let max = app.settings().max_paper_accounts;
    if open >= u64::from(max) {
        return Err(AppError::Quota(format!("at most {max} open mock accounts; close one first")));
    }
    let limits = serde_json::to_string(&Limits::default()).unwrap_or_default();
    let row = app
        .db()
        .create_paper_account(NewPaperAccount {
            owner_id: p.id().get(),
            name,
            cash,
            commission_ppb: i64::try_from(krx::DEFAULT_COMMISSION.ppb()).unwrap_or(0),
            limits,
        })
        .await
        .map_err(internal("creating an account"))?;
    record(app, meta, "paper_account_opened", Some(p.id()), None, json!({"account": row.id, "cash": cash})).await;
    Ok(row)
}

/// The caller's accounts with their equity.
///
/// # Errors
/// The database's error.
pub async fn list(app: &App, p: &Principal) -> AppResult<Vec<AccountSummary>> {
    let rows = app.db().paper_accounts(p.id().get()).await.map_err(internal("listing accounts"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let holdings = app.db().paper_holdings(r.id).await.map_err(internal("reading holdings"))?;
        let (_, equity) = value_positions(app, &r, &holdings).await?;
        out.push(summary(&r, equity));
    }
    Ok(out)
}

fn summary(r: &PaperAccountRow, equity: i64) -> AccountSummary {
    let profit = equity - r.starting_cash;
    AccountSummary {
        account: AccountInfo::from_row(r),
        equity,
        profit,
        return_pct: if r.starting_cash > 0 { profit as f64 / r.starting_cash as f64 * 100.0 } else { 0.0 },
    }
}

/// Values holdings at the last prints (a name never printed counts at its book cost).
async fn value_positions(
    app: &App,
    r: &PaperAccountRow,
    holdings: &[PaperHoldingRow],
) -> AppResult<(Vec<Position>, i64)> {
    let tickers: Vec<String> = holdings.iter().map(|h| h.ticker.clone()).collect();
    let quotes: BTreeMap<String, QuoteRow> = app
        .db()
        .quotes(&tickers)
        .await
        .map_err(internal("reading quotes"))?
        .into_iter()
        .map(|q| (q.ticker.clone(), q))
        .collect();
    let names = match app.market().recent(app.db()).await {
        Ok(m) => Some(m.store),
        Err(_) => None,
    };
    let mut equity = r.cash;
    let mut out = Vec::with_capacity(holdings.len());
    for h in holdings.iter().filter(|h| h.quantity > 0) {
        let last = quotes.get(&h.ticker).map(|q| q.last).or_else(|| {
            let s = names.as_ref()?;
            let slot = s.slot_of(Ticker::parse(&h.ticker).ok()?)?;
            s.last_close(slot, s.n_days().checked_sub(1)?).map(Price::get)
        });
        let value = last.map_or(h.cost, |p| p * h.quantity);
        equity += value;
        let name = names
            .as_ref()
            .and_then(|s| {
                Ticker::parse(&h.ticker).ok().and_then(|t| s.slot_of(t)).map(|i| s.instrument(i).name.clone())
            })
            .unwrap_or_default();
        out.push(Position {
            ticker: h.ticker.clone(),
            name,
            quantity: h.quantity,
            reserved: h.reserved,
            cost: h.cost,
            last,
            value,
            unrealized: value - h.cost,
        });
    }
    Ok((out, equity))
}

/// An account with its positions valued now, and the market's state.
///
/// # Errors
/// [`AppError::NotFound`] unless the caller owns it.
pub async fn snapshot(app: &App, p: &Principal, id: i64) -> AppResult<Snapshot> {
    let r = owned(app, p, id).await?;
    let holdings = app.db().paper_holdings(r.id).await.map_err(internal("reading holdings"))?;
    let (positions, equity) = value_positions(app, &r, &holdings).await?;
    let market = market_time(app).await?;
    Ok(Snapshot { summary: summary(&r, equity), positions, market })
}

async fn lock(app: &App, id: i64) -> AppResult<PaperTxn> {
    app.db().paper_begin(id).await.map_err(internal("locking an account"))?.ok_or(AppError::NotFound)
}

/// Starts an account over: its orders, fills, holdings and history are deleted and the cash is
/// the starting cash again (or a new amount).
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Invalid`] naming `cash`; [`AppError::Conflict`] for a
/// closed account.
pub async fn reset(app: &App, meta: &RequestMeta, p: &Principal, id: i64, cash: Option<i64>) -> AppResult<()> {
    require_trader(p)?;
    owned(app, p, id).await?;
    if let Some(c) = cash
        && !(MIN_CASH..=MAX_CASH).contains(&c)
    {
        return Err(AppError::invalid("cash", format!("must be between {MIN_CASH} and {MAX_CASH} won, found {c}")));
    }
    let mut t = lock(app, id).await?;
    if t.account.state != "open" {
        return Err(AppError::Conflict("the account is closed".into()));
    }
    t.wipe().await.map_err(internal("resetting an account"))?;
    let start = cash.unwrap_or(t.account.starting_cash);
    let a = &mut t.account;
    a.starting_cash = start;
    a.cash = start;
    a.reserved = 0;
    a.commissions = 0;
    a.taxes = 0;
    a.loss_halt_session = None;
    t.save_account().await.map_err(internal("resetting an account"))?;
    t.commit().await.map_err(internal("resetting an account"))?;
    record(app, meta, "paper_account_reset", Some(p.id()), None, json!({"account": id, "cash": start})).await;
    app.notify_paper(p.id().get(), id);
    Ok(())
}

/// Closes an account: its open orders are cancelled; it stays readable.
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Conflict`] when already closed.
pub async fn close(app: &App, meta: &RequestMeta, p: &Principal, id: i64) -> AppResult<()> {
    require_trader(p)?;
    owned(app, p, id).await?;
    let mut t = lock(app, id).await?;
    if t.account.state != "open" {
        return Err(AppError::Conflict("the account is already closed".into()));
    }
    let now = app.now_ms();
    let mut orders = t.open_orders(None, None).await.map_err(internal("reading orders"))?;
    let holdings = t.holdings(None).await.map_err(internal("reading holdings"))?;
    let mut acct = restore(&t, &holdings, &orders)?;
    for o in &orders {
        let _ = acct.cancel(OrderId(u64::try_from(o.seq).unwrap_or(0)));
    }
    let tickers: Vec<Ticker> = holdings.iter().filter_map(|h| Ticker::parse(&h.ticker).ok()).collect();
    write_back(&mut t, &acct, &tickers, &mut orders, now).await?;
    t.account.state = "closed".into();
    t.account.closed_at = Some(now);
    t.save_account().await.map_err(internal("closing an account"))?;
    t.commit().await.map_err(internal("closing an account"))?;
    record(app, meta, "paper_account_closed", Some(p.id()), None, json!({"account": id, "cancelled": orders.len()}))
        .await;
    app.notify_paper(p.id().get(), id);
    Ok(())
}

/// Renames an account and sets its fail-safe limits.
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Invalid`] naming the field.
pub async fn configure(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: i64,
    name: Option<&str>,
    limits: Option<Limits>,
) -> AppResult<PaperAccountRow> {
    require_trader(p)?;
    owned(app, p, id).await?;
    let name = name.map(check_name).transpose()?;
    if let Some(l) = &limits {
        let mut problems = Vec::new();
        for (field, v) in [
            ("limits.max_order_value", l.max_order_value),
            ("limits.daily_loss_limit", l.daily_loss_limit),
            ("limits.confirm_above", l.confirm_above),
        ] {
            if let Some(v) = v
                && v.get() <= 0
            {
                problems.push(FieldProblem::new(field, format!("must be positive, found {}", v.get())));
            }
        }
        if l.max_orders_per_day == Some(0) {
            problems.push(FieldProblem::new("limits.max_orders_per_day", "must be at least 1"));
        }
        if l.duplicate_window_secs > 3600 {
            problems.push(FieldProblem::new("limits.duplicate_window_secs", "at most 3600 seconds"));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
    }
    let mut t = lock(app, id).await?;
    if let Some(n) = name {
        t.account.name = n;
    }
    if let Some(l) = limits {
        t.account.limits = serde_json::to_string(&l).unwrap_or_default();
    }
    t.save_account().await.map_err(internal("configuring an account"))?;
    let row = t.account.clone();
    t.commit().await.map_err(internal("configuring an account"))?;
    record(app, meta, "paper_account_configured", Some(p.id()), None, json!({"account": id, "limits": row.limits}))
        .await;
    Ok(row)
}

/// Halts or resumes trading on an account (the owner's own stop button).
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn set_halt(app: &App, meta: &RequestMeta, p: &Principal, id: i64, halted: bool) -> AppResult<()> {
    require_trader(p)?;
    owned(app, p, id).await?;
    let mut t = lock(app, id).await?;
    t.account.halted = halted;
    t.save_account().await.map_err(internal("halting an account"))?;
    t.commit().await.map_err(internal("halting an account"))?;
    let event = if halted { "paper_account_halted" } else { "paper_account_resumed" };
    record(app, meta, event, Some(p.id()), None, json!({"account": id})).await;
    app.notify_paper(p.id().get(), id);
    Ok(())
}

/// Lifts the daily loss limit's halt before the next session: the owner signs in again first.
///
/// # Errors
/// [`AppError::NotFound`]; the re-authentication's error.
pub async fn lift_loss_halt(app: &App, meta: &RequestMeta, p: &Principal, id: i64, proof: Reauth<'_>) -> AppResult<()> {
    require_trader(p)?;
    p.require_person()?;
    owned(app, p, id).await?;
    reauthenticate(app, meta, p, &proof).await?;
    let day = day_number(market_time(app).await?.order_session);
    let mut t = lock(app, id).await?;
    // Lifted for the rest of this session; the next session measures from its own opening.
    t.account.loss_halt_session = Some(-day);
    t.save_account().await.map_err(internal("lifting a halt"))?;
    t.commit().await.map_err(internal("lifting a halt"))?;
    record(app, meta, "paper_loss_halt_lifted", Some(p.id()), None, json!({"account": id})).await;
    app.notify_paper(p.id().get(), id);
    Ok(())
}

/// Halts or resumes trading on the whole site (administrators).
///
/// # Errors
/// [`AppError::Forbidden`] for anyone else.
pub async fn set_site_halt(app: &App, meta: &RequestMeta, p: &Principal, halted: bool) -> AppResult<()> {
    p.require(Permission::ManageUsers)?;
    app.db()
        .set_site_flag(SITE_HALT_FLAG, if halted { "1" } else { "0" }, Some(p.id().get()))
        .await
        .map_err(internal("setting the site halt"))?;
    // This process sees it at once; others within the cache's quarter second.
    if let Ok(mut c) = app.paper_state().site.lock() {
        *c = None;
    }
    let event = if halted { "site_trading_halted" } else { "site_trading_resumed" };
    record(app, meta, event, None, Some(p.id()), json!({})).await;
    Ok(())
}

/// Whether the site's trading halt is on.
///
/// # Errors
/// The database's error.
pub async fn site_halted(app: &App) -> AppResult<bool> {
    Ok(app.db().site_flag(SITE_HALT_FLAG).await.map_err(internal("reading the site halt"))?.as_deref() == Some("1"))
}

// ---------------------------------------------------------------- orders

#[derive(Debug)]
struct Parsed {
    ticker: Ticker,
    side: Side,
    kind: OrderKind,
    quantity: Quantity,
    client_order_id: Option<String>,
}

fn parse_order(req: &OrderRequest) -> AppResult<Parsed> {
    let mut problems = Vec::new();
    let ticker =
        Ticker::parse(req.ticker.trim()).map_err(|e| problems.push(FieldProblem::new("ticker", e.to_string())));
    let side = match req.side.as_str() {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        other => {
            problems.push(FieldProblem::new("side", format!("must be buy or sell, found {other:?}")));
            None
        }
    };
    let kind = match (req.kind.as_str(), req.price) {
        ("market", None) => Some(OrderKind::Market),
        ("market", Some(_)) => {
            problems.push(FieldProblem::new("price", "a market order has no price"));
            None
        }
        ("limit", Some(p)) => match Price::new(p) {
            Some(price) if p > 0 => Some(OrderKind::Limit { price }),
            _ => {
                problems.push(FieldProblem::new("price", format!("must be a positive number of won, found {p}")));
                None
            }
        },
        ("limit", None) => {
            problems.push(FieldProblem::new("price", "a limit order needs a price"));
            None
        }
        (other, _) => {
            problems.push(FieldProblem::new("type", format!("must be market or limit, found {other:?}")));
            None
        }
    };
    let quantity = u64::try_from(req.quantity).ok().filter(|q| (1..=MAX_QUANTITY).contains(q));
    if quantity.is_none() {
        problems.push(FieldProblem::new(
            "quantity",
            format!("must be a whole number of shares from 1 to {MAX_QUANTITY}, found {}", req.quantity),
        ));
    }
    if let Some(c) = &req.client_order_id
        && (c.is_empty() || c.len() > 64)
    {
        problems.push(FieldProblem::new("client_order_id", "must be 1 to 64 characters"));
    }
    match (ticker, side, kind, quantity) {
        (Ok(ticker), Some(side), Some(kind), Some(q)) if problems.is_empty() => {
            Ok(Parsed { ticker, side, kind, quantity: Quantity(q), client_order_id: req.client_order_id.clone() })
        }
        _ => Err(AppError::Invalid(problems)),
    }
}

/// Places an order: the fail-safes, then the market rules, then the reservation, all under
/// the account's lock. A refusal is stored as a `rejected` order; everything is audited.
///
/// Orders for one account that arrive together are placed together: the account's writer in
/// this process takes every order waiting, applies them one after another under one lock, and
/// commits them (with their audit entries) in one transaction — group commit, so fifty
/// clients on one account cost one commit, not fifty.
///
/// # Errors
/// [`AppError::Invalid`] for a malformed request (nothing stored); [`AppError::NotFound`];
/// [`AppError::Conflict`] without market data or for a closed account.
pub async fn place(app: &App, meta: &RequestMeta, p: &Principal, id: i64, req: OrderRequest) -> AppResult<Placed> {
    require_trader(p)?;
    let o = parse_order(&req)?;
    let (market, _) = instrument(app, o.ticker).await?;
    let session = market_time_recent(app).await?.order_session;
    let band = band_base_recent(app, o.ticker, session).await?.map(|b| krx::price_band(session, market, b));
    let site_halt = site_halted_recent(app).await?;
    let spec = Spec {
        owner: p.id().get(),
        o,
        market,
        session,
        band,
        site_halted: site_halt,
        confirmed: req.confirm,
        now: app.now_ms(),
        meta: meta.clone(),
    };
    let placed = submit(app, id, spec).await?;
    if !matches!(placed, Placed::NeedsConfirmation { .. }) {
        app.notify_paper(p.id().get(), id);
    }
    Ok(placed)
}

/// An order as its account's writer places it: the request and what was read for it outside
/// the account's lock.
#[derive(Debug)]
struct Spec {
    owner: i64,
    o: Parsed,
    market: Market,
    session: NaiveDate,
    band: Option<PriceBand>,
    site_halted: bool,
    confirmed: bool,
    now: i64,
    meta: RequestMeta,
}

impl Spec {
    fn audit(&self, event: &'static str, detail: serde_json::Value) -> haechi_db::NewAuditEntry {
        haechi_db::NewAuditEntry {
            user_id: Some(self.owner),
            actor_id: None,
            event,
            ip: self.meta.ip.clone(),
            request_id: self.meta.request_id.clone(),
            detail,
        }
    }
}

/// An order waiting for its account's writer.
#[derive(Debug)]
pub(crate) struct Entry {
    spec: Spec,
    reply: tokio::sync::oneshot::Sender<AppResult<Placed>>,
}

/// Paper trading's per-process state: the accounts' writers and short-lived caches of what
/// every order asks (where the market is, the site's halt, band bases).
#[derive(Debug, Default)]
pub(crate) struct PaperState {
    writers: std::sync::Mutex<std::collections::HashMap<i64, tokio::sync::mpsc::Sender<Entry>>>,
    market: std::sync::Mutex<Option<(std::time::Instant, i64, MarketView)>>,
    site: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    bases: std::sync::Mutex<BaseCache>,
}

/// Band bases by (ticker, session), with when they were read.
type BaseCache = std::collections::HashMap<(Ticker, i32), (std::time::Instant, Option<Price>)>;

/// How long a cached answer stays good. A site halt set in another process takes effect
/// within this; in this process, at once.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(250);
/// A writer with nothing to do this long stops (a new order starts another).
const WRITER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Most orders one commit takes.
const BATCH: usize = 256;

async fn market_time_recent(app: &App) -> AppResult<MarketView> {
    let now = app.now_ms();
    if let Ok(c) = app.paper_state().market.lock()
        && let Some((at, ms, v)) = c.as_ref()
        && at.elapsed() < CACHE_TTL
        && (now - ms).abs() < 250
    {
        return Ok(*v);
    }
    let v = market_time(app).await?;
    if let Ok(mut c) = app.paper_state().market.lock() {
        *c = Some((std::time::Instant::now(), now, v));
    }
    Ok(v)
}

async fn site_halted_recent(app: &App) -> AppResult<bool> {
    if let Ok(c) = app.paper_state().site.lock()
        && let Some((at, v)) = c.as_ref()
        && at.elapsed() < CACHE_TTL
    {
        return Ok(*v);
    }
    let v = site_halted(app).await?;
    if let Ok(mut c) = app.paper_state().site.lock() {
        *c = Some((std::time::Instant::now(), v));
    }
    Ok(v)
}

async fn band_base_recent(app: &App, ticker: Ticker, session: NaiveDate) -> AppResult<Option<Price>> {
    let key = (ticker, day_number(session));
    if let Ok(c) = app.paper_state().bases.lock()
        && let Some((at, v)) = c.get(&key)
        && at.elapsed() < std::time::Duration::from_secs(1)
    {
        return Ok(*v);
    }
    let v = band_base(app, ticker, session).await?;
    if let Ok(mut c) = app.paper_state().bases.lock() {
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(key, (std::time::Instant::now(), v));
    }
    Ok(v)
}

/// Hands an order to its account's writer and waits for the answer.
async fn submit(app: &App, id: i64, spec: Spec) -> AppResult<Placed> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let mut entry = Entry { spec, reply };
    // A writer that just retired hands the order back: a new one takes it.
    for _ in 0..3 {
        let tx = {
            let mut writers = app.paper_state().writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            writers
                .entry(id)
                .or_insert_with(|| {
                    let (tx, rx) = tokio::sync::mpsc::channel(4 * BATCH);
                    tokio::spawn(writer(app.clone(), id, rx));
                    tx
                })
                .clone()
        };
        match tx.send(entry).await {
            Ok(()) => {
                return answer
                    .await
                    .map_err(|_| AppError::internal("placing an order", "the account's writer stopped"))?;
            }
            Err(tokio::sync::mpsc::error::SendError(back)) => {
                entry = back;
                let mut writers = app.paper_state().writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if writers.get(&id).is_some_and(|w| w.same_channel(&tx)) {
                    writers.remove(&id);
                }
            }
        }
    }
    Err(AppError::internal("placing an order", "no writer took the order"))
}

/// One account's writer: takes every waiting order, places them under one lock, commits once.
async fn writer(app: App, id: i64, mut rx: tokio::sync::mpsc::Receiver<Entry>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match tokio::time::timeout(WRITER_IDLE, rx.recv_many(&mut batch, BATCH)).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => {
                // Idle: retire, unless an order slipped in meanwhile.
                let retired = {
                    let mut writers =
                        app.paper_state().writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let idle = rx.is_empty();
                    if idle {
                        writers.remove(&id);
                        rx.close();
                    }
                    idle
                };
                if !retired {
                    continue;
                }
                // Orders sent between the check and the close are answered, not dropped.
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                }
                if !batch.is_empty() {
                    place_batch(&app, id, std::mem::take(&mut batch)).await;
                }
                return;
            }
        }
        place_batch(&app, id, std::mem::take(&mut batch)).await;
    }
}

/// The answer for every order of a batch whose transaction failed as a whole.
fn batch_error(e: &AppError) -> AppError {
    match e {
        AppError::NotFound => AppError::NotFound,
        AppError::Conflict(c) => AppError::Conflict(c.clone()),
        other => AppError::internal("placing orders", other.to_string()),
    }
}

async fn place_batch(app: &App, id: i64, entries: Vec<Entry>) {
    let (specs, replies): (Vec<_>, Vec<_>) = entries.into_iter().map(|e| (e.spec, e.reply)).unzip();
    match place_all(app, id, &specs).await {
        Ok(results) => {
            for (r, reply) in results.into_iter().zip(replies) {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            tracing::warn!(account = id, error = %e, orders = replies.len(), "a batch of orders failed");
            for reply in replies {
                let _ = reply.send(Err(batch_error(&e)));
            }
        }
    }
}

/// What became of one order of a batch before the commit.
enum Outcome {
    /// Stored as `rows[i]`: accepted, or rejected with a code and message.
    Row(usize, Option<(&'static str, String)>),
    Done(Box<AppResult<Placed>>),
}

async fn place_all(app: &App, id: i64, specs: &[Spec]) -> AppResult<Vec<AppResult<Placed>>> {
    let mut t = lock(app, id).await?;
    let limits = limits_of(&t.account);
    let mut holdings: std::collections::HashMap<Ticker, Vec<PaperHoldingRow>> = std::collections::HashMap::new();
    let mut counts: std::collections::HashMap<i32, u32> = std::collections::HashMap::new();
    let mut rows: Vec<PaperOrderRow> = Vec::new();
    let mut outcomes = Vec::with_capacity(specs.len());
    let mut audits = Vec::new();
    let mut touched: Vec<Ticker> = Vec::new();
    for spec in specs {
        let Spec { owner, ref o, market, session, band, site_halted, confirmed, now, .. } = *spec;
        if t.account.owner_id != owner {
            outcomes.push(Outcome::Done(Box::new(Err(AppError::NotFound))));
            continue;
        }
        if t.account.state != "open" {
            outcomes.push(Outcome::Done(Box::new(Err(AppError::Conflict("the account is closed".into())))));
            continue;
        }
        let day = day_number(session);
        let limit_price = match o.kind {
            OrderKind::Limit { price } => Some(price.get()),
            OrderKind::Market => None,
        };
        let kind = if limit_price.is_some() { "limit" } else { "market" };
        let quantity = i64::try_from(o.quantity.get()).unwrap_or(i64::MAX);
        let per_share = limit_price.or(band.map(|b| b.upper_orderable.get())).unwrap_or(0);
        let value = Won(per_share.saturating_mul(quantity));
        // The daily loss limit, measured now against the session's opening equity.
        let mut loss_halted = t.account.loss_halt_session == Some(day);
        // Negative: the owner lifted this session's halt after signing in again.
        let lifted = t.account.loss_halt_session == Some(-day);
        if !loss_halted && !lifted && o.side == Side::Buy && limits.daily_loss_limit.is_some() {
            let all = t.holdings(None).await.map_err(internal("reading holdings"))?;
            let (_, equity) = value_positions(app, &t.account, &all).await?;
            let opening = t
                .equity_before(day)
                .await
                .map_err(internal("reading equity"))?
                .map_or(t.account.starting_cash, |e| e.equity);
            if failsafe::loss_limit_reached(&limits, Won(opening), Won(equity)) {
                loss_halted = true;
                t.account.loss_halt_session = Some(day);
            }
        }
        let window = i64::from(limits.duplicate_window_secs) * 1000;
        let same = |r: &PaperOrderRow| {
            r.ticker == o.ticker.as_str()
                && r.side == side_str(o.side)
                && r.kind == kind
                && r.limit_price == limit_price
                && r.quantity == quantity
                && r.state != "rejected"
                && r.created_at >= now - window
        };
        let duplicate = window > 0
            && (rows.iter().any(same)
                || t.same_order_since(o.ticker.as_str(), side_str(o.side), kind, limit_price, quantity, now - window)
                    .await
                    .map_err(internal("checking duplicates"))?);
        let orders_today = if limits.max_orders_per_day.is_some() {
            match counts.get(&day) {
                Some(n) => *n,
                None => {
                    let n = u32::try_from(t.orders_for_session(day).await.map_err(internal("counting orders"))?)
                        .unwrap_or(u32::MAX);
                    counts.insert(day, n);
                    n
                }
            }
        } else {
            0
        };
        let activity = Activity { orders_today, site_halted, account_halted: t.account.halted, loss_halted, duplicate };
        let ticket = Ticket { side: o.side, value, confirmed };
        let base_row = PaperOrderRow {
            id: 0,
            account_id: id,
            seq: t.account.next_order,
            ticker: o.ticker.as_str().to_owned(),
            market: market.as_str().to_owned(),
            side: side_str(o.side).to_owned(),
            kind: kind.to_owned(),
            limit_price,
            quantity,
            filled: 0,
            session: day,
            state: "accepted".into(),
            reason: None,
            reserved: 0,
            client_order_id: o.client_order_id.clone(),
            created_at: now,
            updated_at: now,
        };
        let refusal = match failsafe::check(&limits, &activity, &ticket) {
            Ok(()) => None,
            Err(Refusal::NeedsConfirmation(_)) if confirmed => None,
            Err(r @ Refusal::NeedsConfirmation(_)) => {
                // Nothing is stored for a question but the audit entry.
                audits.push(spec.audit("paper_order_unconfirmed", json!({"account": id, "reason": r.code()})));
                outcomes.push(Outcome::Done(Box::new(Ok(Placed::NeedsConfirmation {
                    code: r.code(),
                    message: r.to_string(),
                }))));
                continue;
            }
            Err(r) => Some((r.code(), r.to_string())),
        };
        let refusal = match refusal {
            Some(r) => Some(r),
            None => {
                let hs = match holdings.get(&o.ticker) {
                    Some(h) => h.clone(),
                    None => {
                        let h = t.holdings(Some(o.ticker.as_str())).await.map_err(internal("reading holdings"))?;
                        holdings.insert(o.ticker, h.clone());
                        h
                    }
                };
                let mut acct = restore(&t, &hs, &[])?;
                let new = NewOrder {
                    ticker: o.ticker,
                    market,
                    side: o.side,
                    kind: o.kind,
                    quantity: o.quantity,
                    session,
                    band,
                };
                match acct.place(new) {
                    Ok(seq) => {
                        let reserved = acct.orders()[&seq].reserved.get();
                        t.account.cash = acct.cash().get();
                        t.account.reserved = acct.reserved().get();
                        t.account.next_order = i64::try_from(acct.next_id()).unwrap_or(i64::MAX);
                        let h = acct.holdings().get(&o.ticker).copied().unwrap_or_default();
                        holdings.insert(
                            o.ticker,
                            vec![PaperHoldingRow {
                                account_id: id,
                                ticker: o.ticker.as_str().to_owned(),
                                quantity: i64::try_from(h.quantity).unwrap_or(i64::MAX),
                                reserved: i64::try_from(h.reserved).unwrap_or(i64::MAX),
                                cost: h.cost.get(),
                            }],
                        );
                        if !touched.contains(&o.ticker) {
                            touched.push(o.ticker);
                        }
                        if let Some(n) = counts.get_mut(&day) {
                            *n += 1;
                        }
                        rows.push(PaperOrderRow { reserved, ..base_row.clone() });
                        outcomes.push(Outcome::Row(rows.len() - 1, None));
                        None
                    }
                    Err(reason) => Some((reason.code(), reject_message(reason, band))),
                }
            }
        };
        if let Some(r) = refusal {
            t.account.next_order += 1;
            rows.push(PaperOrderRow { state: "rejected".into(), reason: Some(r.0.to_owned()), ..base_row });
            outcomes.push(Outcome::Row(rows.len() - 1, Some(r)));
        }
    }
    t.save_account().await.map_err(internal("saving an account"))?;
    for tk in &touched {
        if let Some(h) = holdings.get(tk).and_then(|v| v.first()) {
            t.put_holding(h.clone()).await.map_err(internal("saving a holding"))?;
        }
    }
    let stored = t.insert_orders(rows).await.map_err(internal("storing orders"))?;
    let mirrored: Vec<PaperOrderRow> =
        if t.account.mirror { stored.iter().filter(|o| o.state == "accepted").cloned().collect() } else { Vec::new() };
    t.add_mirror_orders(&mirrored).await.map_err(internal("recording orders to mirror"))?;
    let mut results = Vec::with_capacity(outcomes.len());
    for (outcome, spec) in outcomes.into_iter().zip(specs) {
        results.push(match outcome {
            Outcome::Done(r) => *r,
            Outcome::Row(i, None) => {
                let order =
                    stored.get(i).cloned().ok_or_else(|| AppError::internal("storing orders", "row missing"))?;
                audits.push(spec.audit("paper_order_placed", json!({"account": id, "order": order.id})));
                Ok(Placed::Accepted(order))
            }
            Outcome::Row(i, Some((code, message))) => {
                let order =
                    stored.get(i).cloned().ok_or_else(|| AppError::internal("storing orders", "row missing"))?;
                audits.push(
                    spec.audit("paper_order_rejected", json!({"account": id, "order": order.id, "reason": code})),
                );
                Ok(Placed::Rejected { order, code, message })
            }
        });
    }
    t.audit_many(audits).await.map_err(internal("auditing orders"))?;
    t.commit().await.map_err(internal("storing orders"))?;
    if !mirrored.is_empty() {
        enqueue_mirror(app, id).await;
    }
    Ok(results)
}

fn reject_message(reason: RejectReason, band: Option<PriceBand>) -> String {
    match (reason, band) {
        (RejectReason::OutsidePriceLimit, Some(b)) => {
            format!("the price must lie between {} and {} won today", b.lower.get(), b.upper_orderable.get())
        }
        (RejectReason::OffTick, _) => "the price is not a multiple of the tick size for its price band".into(),
        (RejectReason::InsufficientCash, _) => "available cash does not cover the order and its commission".into(),
        (RejectReason::InsufficientShares, _) => "more shares than held and not already promised to sells".into(),
        (RejectReason::NotTraded, _) => "the ticker has no reference price for the session yet".into(),
        (r, _) => r.code().replace('_', " "),
    }
}

/// The caller's order, else a 404; with its account.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn order(app: &App, p: &Principal, order_id: i64) -> AppResult<PaperOrderRow> {
    let o = app.db().paper_order(order_id).await.map_err(internal("reading an order"))?.ok_or(AppError::NotFound)?;
    owned(app, p, o.account_id).await?;
    Ok(o)
}

/// Cancels an open order and frees what it held.
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Conflict`] when the order is no longer open.
pub async fn cancel(app: &App, meta: &RequestMeta, p: &Principal, order_id: i64) -> AppResult<PaperOrderRow> {
    require_trader(p)?;
    let o = order(app, p, order_id).await?;
    let mut t = lock(app, o.account_id).await?;
    let mut rows = vec![t.order(order_id).await.map_err(internal("reading an order"))?.ok_or(AppError::NotFound)?];
    let holdings = t.holdings(Some(&rows[0].ticker)).await.map_err(internal("reading holdings"))?;
    let mut acct = restore(&t, &holdings, &rows)?;
    acct.cancel(OrderId(u64::try_from(rows[0].seq).unwrap_or(0)))
        .map_err(|_| AppError::Conflict(format!("the order is {}, not open", rows[0].state)))?;
    let tickers: Vec<Ticker> = Ticker::parse(&rows[0].ticker).ok().into_iter().collect();
    write_back(&mut t, &acct, &tickers, &mut rows, app.now_ms()).await?;
    t.commit().await.map_err(internal("cancelling an order"))?;
    mirror_changes(app, o.account_id).await;
    record(app, meta, "paper_order_cancelled", Some(p.id()), None, json!({"account": o.account_id, "order": order_id}))
        .await;
    app.notify_paper(p.id().get(), o.account_id);
    Ok(rows.remove(0))
}

/// Modifies an open order's price or quantity: KRX treats it as cancel and replace (the new
/// order queues behind the others). If the replacement is refused, the original stays.
///
/// # Errors
/// As [`cancel`] and [`place`].
pub async fn modify(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    order_id: i64,
    price: Option<i64>,
    quantity: Option<i64>,
) -> AppResult<Placed> {
    require_trader(p)?;
    if price.is_none() && quantity.is_none() {
        return Err(AppError::invalid("price", "give a new price, a new quantity or both"));
    }
    let old = order(app, p, order_id).await?;
    if !haechi_db::OPEN_STATES.contains(&old.state.as_str()) {
        return Err(AppError::Conflict(format!("the order is {}, not open", old.state)));
    }
    if price.is_some() && old.kind == "market" {
        return Err(AppError::invalid("price", "a market order has no price to change"));
    }
    let remaining = old.quantity - old.filled;
    let req = OrderRequest {
        ticker: old.ticker.clone(),
        side: old.side.clone(),
        kind: old.kind.clone(),
        price: price.or(old.limit_price),
        quantity: quantity.unwrap_or(remaining),
        // A modification is the owner's deliberate act on an order they already placed.
        confirm: true,
        client_order_id: old.client_order_id.clone(),
    };
    let parsed = parse_order(&req)?;
    let (market, _) = instrument(app, parsed.ticker).await?;
    let session = market_time(app).await?.order_session;
    let band = band_base(app, parsed.ticker, session).await?.map(|b| krx::price_band(session, market, b));
    let site_halt = site_halted(app).await?;
    let now = app.now_ms();
    // Cancel and place in one transaction each would let a print slip between them; the
    // cancel is undone if the replacement is refused.
    let mut t = lock(app, old.account_id).await?;
    let mut rows = vec![t.order(order_id).await.map_err(internal("reading an order"))?.ok_or(AppError::NotFound)?];
    let holdings = t.holdings(Some(&old.ticker)).await.map_err(internal("reading holdings"))?;
    let mut acct = restore(&t, &holdings, &rows)?;
    acct.cancel(OrderId(u64::try_from(rows[0].seq).unwrap_or(0)))
        .map_err(|_| AppError::Conflict(format!("the order is {}, not open", rows[0].state)))?;
    write_back(&mut t, &acct, &[parsed.ticker], &mut rows, now).await?;
    t.commit().await.map_err(internal("modifying an order"))?;
    mirror_changes(app, old.account_id).await;
    let spec = Spec {
        owner: p.id().get(),
        o: parsed,
        market,
        session,
        band,
        site_halted: site_halt,
        confirmed: true,
        now: app.now_ms(),
        meta: meta.clone(),
    };
    let placed = submit(app, old.account_id, spec).await?;
    if !matches!(placed, Placed::Accepted(_)) {
        // Put the original back as it was: same number, same place in the queue.
        restore_order(app, &old).await?;
    }
    record(
        app,
        meta,
        "paper_order_modified",
        Some(p.id()),
        None,
        json!({"account": old.account_id, "order": order_id, "accepted": matches!(placed, Placed::Accepted(_))}),
    )
    .await;
    app.notify_paper(p.id().get(), old.account_id);
    Ok(placed)
}

/// Reinstates an order cancelled by a refused modification, with its reservation.
async fn restore_order(app: &App, old: &PaperOrderRow) -> AppResult<()> {
    let mut t = lock(app, old.account_id).await?;
    let Some(now_row) = t.order(old.id).await.map_err(internal("reading an order"))? else { return Ok(()) };
    if now_row.state != "cancelled" {
        return Ok(());
    }
    if old.side == "buy" {
        if t.account.cash - t.account.reserved < old.reserved {
            // The cash went elsewhere meanwhile: the original stays cancelled.
            return Ok(());
        }
        t.account.reserved += old.reserved;
    } else if let Some(mut h) = t.holdings(Some(&old.ticker)).await.map_err(internal("reading holdings"))?.pop() {
        let rest = old.quantity - old.filled;
        if h.quantity - h.reserved < rest {
            return Ok(());
        }
        h.reserved += rest;
        t.put_holding(h).await.map_err(internal("saving a holding"))?;
    }
    t.save_account().await.map_err(internal("saving an account"))?;
    t.update_order(PaperOrderRow { updated_at: app.now_ms(), ..old.clone() })
        .await
        .map_err(internal("saving an order"))?;
    t.commit().await.map_err(internal("saving an order"))?;
    Ok(())
}

/// A page of an account's orders, newest first.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn orders(
    app: &App,
    p: &Principal,
    id: i64,
    filter: OrderFilter,
    paging: Paging,
) -> AppResult<PageOf<PaperOrderRow>> {
    owned(app, p, id).await?;
    let page = app
        .db()
        .paper_orders(id, filter, paging.page * paging.per_page, paging.per_page)
        .await
        .map_err(internal("listing orders"))?;
    Ok(PageOf { items: page.items, total: page.total, page: paging.page, per_page: paging.per_page })
}

/// A page of an account's fills, newest first.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn fills(app: &App, p: &Principal, id: i64, paging: Paging) -> AppResult<PageOf<PaperFillRow>> {
    owned(app, p, id).await?;
    let page = app
        .db()
        .paper_fills(id, paging.page * paging.per_page, paging.per_page)
        .await
        .map_err(internal("listing fills"))?;
    Ok(PageOf { items: page.items, total: page.total, page: paging.page, per_page: paging.per_page })
}

/// An account's positions.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn positions(app: &App, p: &Principal, id: i64) -> AppResult<Vec<Position>> {
    Ok(snapshot(app, p, id).await?.positions)
}

/// An account's equity at each close.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn equity(app: &App, p: &Principal, id: i64) -> AppResult<Vec<PaperEquityRow>> {
    owned(app, p, id).await?;
    app.db().paper_equity(id).await.map_err(internal("reading equity"))
}

/// An account's performance from its equity at each close, with the definitions of a run's
/// report (`haechi_sim::metrics`, checked against empyrical): daily returns from the starting
/// cash, then total return, CAGR, volatility, Sharpe, Sortino, drawdown and VaR.
///
/// # Errors
/// [`AppError::NotFound`].
pub async fn performance(app: &App, p: &Principal, id: i64) -> AppResult<(usize, haechi_sim::metrics::ReturnMetrics)> {
    let a = owned(app, p, id).await?;
    let equity = app.db().paper_equity(id).await.map_err(internal("reading equity"))?;
    let levels: Vec<f64> = equity.iter().map(|e| e.equity as f64).collect();
    let returns = haechi_sim::metrics::returns_from_equity(a.starting_cash as f64, &levels);
    Ok((levels.len(), haechi_sim::metrics::summarize(&returns, None)))
}

/// The account as a run report (`haechi_sim::report`, the type and page a run has): equity and
/// drawdown at each close, the same metrics, the monthly returns, the round trips of its fills
/// and its positions. The scenario it carries describes the account — its name, starting cash,
/// period, traded names and commission — with the strategy `manual`: its owner placed the
/// orders. The orders themselves are on the account page, not in the report (a paper order
/// can be cancelled, or refused by a fail-safe, which a run's order record has no words for).
///
/// # Errors
/// [`AppError::NotFound`]; [`AppError::Conflict`] without market data.
pub async fn report(app: &App, p: &Principal, id: i64) -> AppResult<haechi_sim::report::Report> {
    use haechi_sim::engine::{DayRecord, FillTiming, FinalPosition, RunOutput, TaxBasis};
    use haechi_sim::scenario::{Execution, Period, Risk, Scenario, StrategySpec, Universe};
    let a = owned(app, p, id).await?;
    let m = app.market().recent(app.db()).await.map_err(market_error)?;
    let equity = app.db().paper_equity(id).await.map_err(internal("reading equity"))?;
    let days: Vec<DayRecord> = equity
        .iter()
        .filter_map(|e| {
            Some(DayRecord {
                date: day_from_number(e.session)?,
                equity: Won(e.equity),
                cash: Won(e.cash),
                invested: Won(e.equity - e.cash),
            })
        })
        .collect();
    let fills: Vec<haechi_core::Fill> = app
        .db()
        .all_paper_fills(id)
        .await
        .map_err(internal("reading fills"))?
        .iter()
        .filter_map(|f| {
            Some(haechi_core::Fill {
                order_id: OrderId(u64::try_from(f.order_id).ok()?),
                ticker: Ticker::parse(&f.ticker).ok()?,
                side: if f.side == "sell" { Side::Sell } else { Side::Buy },
                trade_date: day_from_number(f.trade_date)?,
                settlement_date: day_from_number(f.settlement_date)?,
                quantity: Quantity(u64::try_from(f.quantity).ok()?),
                price: Price::new(f.price)?,
                amount: Won(f.amount),
                commission: Won(f.commission),
                tax: Won(f.tax),
            })
        })
        .collect();
    let holdings = app.db().paper_holdings(id).await.map_err(internal("reading holdings"))?;
    let (positions, _) = value_positions(app, &a, &holdings).await?;
    let positions: Vec<FinalPosition> = positions
        .iter()
        .filter_map(|x| {
            let last = x.last.and_then(Price::new)?;
            Some(FinalPosition {
                ticker: Ticker::parse(&x.ticker).ok()?,
                quantity: Quantity(u64::try_from(x.quantity).ok()?),
                cost: Won(x.cost),
                last_price: last,
                value: Won(x.value),
            })
        })
        .collect();
    let mut traded: Vec<Ticker> = fills.iter().map(|f| f.ticker).collect();
    traded.sort_unstable();
    traded.dedup();
    let today = market_time(app).await?.order_session;
    let period = Period { start: days.first().map_or(today, |d| d.date), end: days.last().map_or(today, |d| d.date) };
    let limits = limits_of(&a);
    let scenario = Scenario {
        name: a.name.clone(),
        description: Some(format!("모의계좌 paper account #{id}")),
        capital: Won(a.starting_cash),
        period,
        universe: Universe::Tickers(traded.clone()),
        benchmark: None,
        strategy: StrategySpec::Manual,
        sizing: None,
        execution: Execution {
            // Paper orders fill on the printed trades of their own session.
            fill: FillTiming::Close,
            slippage_bps: 0,
            participation: 1.0,
            locked_limit_share: haechi_sim::scenario::DEFAULT_LOCKED_LIMIT_SHARE,
            commission_rate: a.commission_ppb as f64 / 1e9,
            tax_basis: TaxBasis::Settlement,
            liquidate_at_end: false,
        },
        risk: Risk { max_order_value: limits.max_order_value, max_position_weight: None, cash_reserve: 0.0 },
    };
    let run = RunOutput {
        days,
        orders: Vec::new(),
        fills,
        positions,
        commissions: Won(a.commissions),
        taxes: Won(a.taxes),
        bar_steps: 0,
        slippage_won: 0,
        slippage_base: 0,
    };
    let ctx = haechi_sim::report::ReportContext {
        store: &m.store,
        start: m.store.session_at_or_after(period.start),
        benchmark: None,
        synthetic: m.synthetic,
        clamped_rows: 0,
        universe_size: traded.len(),
    };
    Ok(haechi_sim::report::build(&scenario, run, ctx))
}

// ---------------------------------------------------------------- the matcher

/// A print as the matcher hands it over.
#[derive(Debug, Clone)]
pub struct PrintIn {
    pub ticker: Ticker,
    pub session: NaiveDate,
    pub price: Price,
    pub volume: u64,
    pub auction: bool,
    /// Unique per print (`session:ticker:sequence`): a print applied twice fills nothing twice.
    pub key: String,
}

/// Fills every account's open orders the print reaches. Each account is its own transaction,
/// and a print an account already saw (a replay after a crash) is skipped.
///
/// # Errors
/// The database's error (accounts handled before it keep their fills).
pub async fn apply_print(app: &App, print: &PrintIn) -> AppResult<usize> {
    let accounts = app
        .db()
        .accounts_with_open_orders(print.ticker.as_str(), day_number(print.session), print.price.get())
        .await
        .map_err(internal("finding open orders"))?;
    let settlement = sessions(app).await?.add_sessions(print.session, 2);
    let mut total = 0;
    for id in accounts {
        total += apply_to_account(app, id, print, settlement).await?;
    }
    Ok(total)
}

async fn apply_to_account(app: &App, id: i64, print: &PrintIn, settlement: NaiveDate) -> AppResult<usize> {
    let Some(mut t) = app.db().paper_begin(id).await.map_err(internal("locking an account"))? else { return Ok(0) };
    if t.print_applied(&print.key).await.map_err(internal("checking a print"))? {
        return Ok(0);
    }
    let day = day_number(print.session);
    // Only the orders this print can reach: an account with thousands of orders far from the
    // market costs a print nothing.
    let mut rows =
        t.orders_reached(print.ticker.as_str(), day, print.price.get()).await.map_err(internal("reading orders"))?;
    let holdings = t.holdings(Some(print.ticker.as_str())).await.map_err(internal("reading holdings"))?;
    let mut acct = restore(&t, &holdings, &rows)?;
    let p = Print {
        ticker: print.ticker,
        price: print.price,
        volume: print.volume,
        auction: print.auction,
        session: print.session,
        settlement,
    };
    let fills = acct.on_print(&p);
    if fills.is_empty() {
        return Ok(0);
    }
    let now = app.now_ms();
    write_back(&mut t, &acct, &[print.ticker], &mut rows, now).await?;
    let by_seq: BTreeMap<i64, i64> = rows.iter().map(|r| (r.seq, r.id)).collect();
    for f in &fills {
        let order_id = by_seq.get(&i64::try_from(f.order_id.0).unwrap_or(0)).copied().unwrap_or(0);
        t.insert_fill(PaperFillRow {
            id: 0,
            account_id: id,
            order_id,
            ticker: f.ticker.as_str().to_owned(),
            side: side_str(f.side).to_owned(),
            quantity: i64::try_from(f.quantity.get()).unwrap_or(i64::MAX),
            price: f.price.get(),
            amount: f.amount.get(),
            commission: f.commission.get(),
            tax: f.tax.get(),
            trade_date: day,
            settlement_date: day_number(f.settlement_date),
            print_key: print.key.clone(),
            created_at: now,
        })
        .await
        .map_err(internal("storing a fill"))?;
    }
    let owner = t.account.owner_id;
    t.commit().await.map_err(internal("storing fills"))?;
    app.notify_paper(owner, id);
    Ok(fills.len())
}

/// Ends a session: open orders for it (or earlier) expire, and each open account's equity at
/// the close is recorded.
///
/// # Errors
/// The database's error.
pub async fn close_session(app: &App, session: NaiveDate) -> AppResult<()> {
    let day = day_number(session);
    let ids = app.db().open_paper_account_ids().await.map_err(internal("listing accounts"))?;
    for &id in &ids {
        let Some(mut t) = app.db().paper_begin(id).await.map_err(internal("locking an account"))? else { continue };
        let mut rows = t.open_orders(None, Some(day)).await.map_err(internal("reading orders"))?;
        let holdings = t.holdings(None).await.map_err(internal("reading holdings"))?;
        let mut acct = restore(&t, &holdings, &rows)?;
        let expired = acct.expire(session);
        let tickers: Vec<Ticker> = holdings.iter().filter_map(|h| Ticker::parse(&h.ticker).ok()).collect();
        write_back(&mut t, &acct, &tickers, &mut rows, app.now_ms()).await?;
        let holdings = t.holdings(None).await.map_err(internal("reading holdings"))?;
        let (_, equity) = value_positions(app, &t.account, &holdings).await?;
        t.put_equity(day, t.account.cash, equity).await.map_err(internal("recording equity"))?;
        let owner = t.account.owner_id;
        t.commit().await.map_err(internal("closing a session"))?;
        if !expired.is_empty() {
            app.notify_paper(owner, id);
        }
    }
    // Threat response: each account is scanned as of this close, on a worker.
    for &account_id in &ids {
        let job = crate::guard::PaperScanJob { account_id, session: day };
        if let Err(e) = app.queue().enqueue(job).await {
            tracing::warn!(account = account_id, error = %e, "could not enqueue a guard scan");
        }
    }
    // Mirrored accounts: compare the session's fills with KIS's once it has closed.
    let jobs = haechi_jobs::mirror::reconcile_jobs(app.db(), &ids, session)
        .await
        .map_err(internal("finding mirrored orders"))?;
    for job in jobs {
        if let Err(e) = app.queue().enqueue(job).await {
            tracing::warn!(account = job.account_id, error = %e, "could not enqueue a mirror reconciliation");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- mirroring

/// Sends the account's new mirrored orders (and cancels) to KIS, on a worker. A failure to
/// enqueue is logged: the next order or cancel of the account enqueues the work again.
async fn enqueue_mirror(app: &App, account_id: i64) {
    if let Err(e) = app.queue().enqueue(haechi_jobs::mirror::MirrorJob { account_id }).await {
        tracing::warn!(account = account_id, error = %e, "could not enqueue mirroring");
    }
}

/// After a cancel: a mirrored account's cancel goes to KIS too.
async fn mirror_changes(app: &App, account_id: i64) {
    match app.db().is_mirrored(account_id).await {
        Ok(true) => enqueue_mirror(app, account_id).await,
        Ok(false) => {}
        Err(e) => tracing::warn!(account = account_id, error = %e, "could not read mirroring"),
    }
}

/// An account's mirroring to the KIS mock account: on or off, and its mirrored orders.
#[derive(Debug, Clone)]
pub struct MirrorView {
    pub enabled: bool,
    /// This platform has a KIS mock account to mirror to.
    pub available: bool,
    pub orders: Vec<haechi_db::MirrorOrderRow>,
}

/// # Errors
/// [`AppError::NotFound`] for an account not the caller's.
pub async fn mirror(app: &App, p: &Principal, id: i64) -> AppResult<MirrorView> {
    owned(app, p, id).await?;
    let enabled = app.db().is_mirrored(id).await.map_err(internal("reading mirroring"))?;
    let orders = app.db().mirror_orders(id, None).await.map_err(internal("reading mirrored orders"))?;
    Ok(MirrorView { enabled, available: app.settings().kis_mirror, orders })
}

/// Turns mirroring of the account's new orders to the KIS mock account on or off (audited).
///
/// # Errors
/// [`AppError::Conflict`] to turn it on where no KIS mock account is configured;
/// [`AppError::NotFound`].
pub async fn set_mirror(app: &App, meta: &RequestMeta, p: &Principal, id: i64, on: bool) -> AppResult<()> {
    require_trader(p)?;
    let a = owned(app, p, id).await?;
    if on && !app.settings().kis_mirror {
        return Err(AppError::Conflict(
            "mirroring needs a KIS mock account: HAECHI_KIS_ENV=mock, HAECHI_KIS_ACCOUNT and the app key".into(),
        ));
    }
    if on && a.state != "open" {
        return Err(AppError::Conflict("the account is closed".into()));
    }
    let mut t = lock(app, id).await?;
    t.account.mirror = on;
    t.save_account().await.map_err(internal("setting mirroring"))?;
    t.commit().await.map_err(internal("setting mirroring"))?;
    let event = if on { "paper_mirror_on" } else { "paper_mirror_off" };
    record(app, meta, event, Some(p.id()), None, json!({"account": id})).await;
    Ok(())
}

/// Asks for the session's mirrored orders to be compared with KIS's now (it also happens at
/// each close).
///
/// # Errors
/// [`AppError::NotFound`]; the queue's error.
pub async fn reconcile(app: &App, p: &Principal, id: i64, session: NaiveDate) -> AppResult<()> {
    require_trader(p)?;
    owned(app, p, id).await?;
    let job = haechi_jobs::mirror::ReconcileJob { account_id: id, session: day_number(session) };
    app.queue().enqueue(job).await.map_err(|e| AppError::internal("enqueueing a reconciliation", e))?;
    Ok(())
}

/// Records where a replay is (so order entry anywhere follows its virtual clock).
///
/// # Errors
/// The database's error.
pub async fn set_replay_state(app: &App, session: NaiveDate, phase: Phase, step: u32, steps: u32) -> AppResult<()> {
    set_market_state(app, "replay", session, phase, step, steps).await
}

/// Records where the market is: `mode` is `replay` (the replayed daily data) or `feed` (a live
/// trade feed); `step` of `steps` is how far into the session it is.
///
/// # Errors
/// The database's error.
pub async fn set_market_state(
    app: &App,
    mode: &str,
    session: NaiveDate,
    phase: Phase,
    step: u32,
    steps: u32,
) -> AppResult<()> {
    app.db()
        .set_market_state(MarketRow {
            id: 1,
            mode: mode.into(),
            session: day_number(session),
            phase: phase.as_str().into(),
            step: i32::try_from(step).unwrap_or(i32::MAX),
            steps: i32::try_from(steps).unwrap_or(i32::MAX),
            updated_at: app.now_ms(),
        })
        .await
        .map_err(internal("recording the market state"))
}

// ---------------------------------------------------------------- idempotency

/// What an `Idempotency-Key` came to on arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// First use: run the request, then [`idempotency_finish`] (or [`idempotency_release`]).
    Fresh,
    /// The same request was answered before: send this answer again.
    Replay { status: u16, body: String },
}

/// Longest `Idempotency-Key`.
pub const MAX_KEY: usize = 128;

/// Claims an idempotency key for a request whose method, path and body are `fingerprint`.
///
/// # Errors
/// [`AppError::Invalid`] naming `Idempotency-Key` for a malformed key or one used with another
/// request; [`AppError::Conflict`] while the first request with the key is still in flight.
pub async fn idempotency_begin(app: &App, p: &Principal, key: &str, fingerprint: &str) -> AppResult<KeyState> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid("Idempotency-Key", format!("must be 1 to {MAX_KEY} visible ASCII characters")));
    }
    let hash = crate::auth::sha256_hex(fingerprint);
    match app.db().claim_idempotency_key(p.id().get(), key, &hash).await.map_err(internal("claiming a key"))? {
        haechi_db::KeyClaim::Claimed => Ok(KeyState::Fresh),
        haechi_db::KeyClaim::Seen(row) if row.body_hash != hash => Err(AppError::invalid(
            "Idempotency-Key",
            "this key was already used with a different request; use a new key for a new order",
        )),
        haechi_db::KeyClaim::Seen(row) if row.status == 0 => {
            Err(AppError::Conflict("the first request with this Idempotency-Key is still being processed".into()))
        }
        haechi_db::KeyClaim::Seen(row) => Ok(KeyState::Replay {
            status: u16::try_from(row.status).unwrap_or(200),
            body: row.response.unwrap_or_default(),
        }),
    }
}

/// Stores the answer a claimed key replays.
///
/// # Errors
/// The database's error.
pub async fn idempotency_finish(app: &App, p: &Principal, key: &str, status: u16, body: &str) -> AppResult<()> {
    app.db()
        .finish_idempotency_key(p.id().get(), key, i32::from(status), body)
        .await
        .map_err(internal("storing a key's answer"))
}

/// Frees a claimed key after a failure of ours, so the client's retry runs.
///
/// # Errors
/// The database's error.
pub async fn idempotency_release(app: &App, p: &Principal, key: &str) -> AppResult<()> {
    app.db().release_idempotency_key(p.id().get(), key).await.map_err(internal("releasing a key"))
}
