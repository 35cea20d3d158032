//! The deterministic day-by-day backtest loop.
//!
//! For each session `t` from the scenario's start to its end:
//! 1. orders placed at the close of `t-1` execute against session `t`'s bar
//!    (`fill = next_open`), sells before buys so that proceeds fund purchases;
//! 2. the account is marked to market at `t`'s close;
//! 3. the strategy decides on data up to `t`'s close and its orders wait for `t+1`
//!    (with `fill = close` they execute at once at `t`'s close and the account is re-marked).
//!
//! Sessions before the start are history: the strategy sees each of their closes through
//! [`Strategy::on_history`] (so moving averages and RSI are warm on day one) but cannot trade.
//!
//! # Fill prices
//! A fill is always priced on the tick grid, inside the price band and inside the session's
//! traded range `[low, high]` — a price that traded, or could have. A market order's reference
//! is the open (or close); slippage moves it `slippage_bps` against the trader; the result goes
//! onto the grid by stochastic rounding ([`krx::stochastic_tick`], the coin a hash of the order
//! id and the session, so runs stay deterministic), which keeps the mean effective slippage at
//! the configured rate; then it is kept inside the range and the band. A session whose
//! range holds no grid price (possible only in back-adjusted data) fills nothing
//! (`no_valid_price`). At a locked limit — the session opened, traded and closed at its upper
//! (lower) limit — buys (sells) fill at most `locked_limit_share` of the session's volume and
//! the rest expires (`locked_limit`): on KRX the queue at the limit rations them.
//!
//! Nothing here reads a clock or a random source, and iteration orders are fixed, so the same
//! inputs always give the same bytes out.

use crate::strategy::{Context, MarketView, OrderRequest, PortfolioView, Strategy};
use chrono::NaiveDate;
use haechi_core::krx::{self, PriceBand};
use haechi_core::order::ExpiryReason;
use haechi_core::pretrade;
use haechi_core::{
    Fill, Ledger, LedgerError, MarketStore, OrderId, OrderKind, OrderStatus, Price, Quantity, Rate, RejectReason, Side,
    Ticker, TradingCalendar, Won,
};
use serde::{Deserialize, Serialize};

/// When orders execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillTiming {
    /// At the next session's open (default): decisions made at a close cannot trade at it.
    NextOpen,
    /// At the same session's close, as if placed in the closing auction.
    Close,
}

/// Which date picks the sell-tax rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxBasis {
    /// The settlement date (T+2), as KRX/KSD apply rate changes (default).
    Settlement,
    /// The trade date.
    Trade,
}

/// Execution and risk settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineConfig {
    pub capital: Won,
    /// First and last session index (inclusive) of the run in the store.
    pub start: usize,
    pub end: usize,
    pub fill: FillTiming,
    /// Adverse slippage on market orders, in basis points of the reference price.
    pub slippage_bps: u32,
    /// Most of a day's volume one ticker's orders may take (0 < p ≤ 1).
    pub participation: f64,
    /// Share of a locked-limit session's volume that orders on the locked side may take (0..=1).
    pub locked_limit_share: f64,
    pub commission: Rate,
    pub tax_basis: TaxBasis,
    pub max_order_value: Option<Won>,
    pub max_position_weight: Option<f64>,
    pub cash_reserve: f64,
    /// Sell everything at the last session's close, so fees and taxes of exit are counted.
    pub liquidate_at_end: bool,
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderOrigin {
    Strategy,
    Liquidation,
}

/// One order and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub id: OrderId,
    pub ticker: Ticker,
    pub side: Side,
    #[serde(flatten)]
    pub kind: OrderKind,
    pub quantity: Quantity,
    pub placed_on: NaiveDate,
    pub executes_on: NaiveDate,
    pub origin: OrderOrigin,
    #[serde(flatten)]
    pub status: OrderStatus,
    pub filled_quantity: Quantity,
}

/// The account at one session's close.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayRecord {
    pub date: NaiveDate,
    pub equity: Won,
    pub cash: Won,
    /// Value of positions at the close.
    pub invested: Won,
}

/// A position still open at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalPosition {
    pub ticker: Ticker,
    pub quantity: Quantity,
    pub cost: Won,
    pub last_price: Price,
    pub value: Won,
}

/// Everything a run produced, before metrics.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub days: Vec<DayRecord>,
    pub orders: Vec<OrderRecord>,
    pub fills: Vec<Fill>,
    pub positions: Vec<FinalPosition>,
    pub commissions: Won,
    pub taxes: Won,
    /// Universe size × sessions run: the work the engine stepped through.
    pub bar_steps: u64,
    /// Market-order fills: Σ (fill − reference) × quantity, against the trader (won), and
    /// Σ reference × quantity, for the effective slippage.
    pub slippage_won: i64,
    pub slippage_base: i64,
}

impl RunOutput {
    /// Effective slippage of market orders in basis points of their reference prices,
    /// amount-weighted; `None` without a market-order fill.
    #[must_use]
    pub fn effective_slippage_bps(&self) -> Option<f64> {
        (self.slippage_base > 0).then(|| self.slippage_won as f64 / self.slippage_base as f64 * 10_000.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the run's sessions {start}..={end} do not fit the store's {n} sessions")]
    BadRange { start: usize, end: usize, n: usize },
    #[error("universe slot {0} is not in the store")]
    BadSlot(usize),
    #[error("starting capital must be positive")]
    NoCapital,
    #[error("stopped by the caller after {0} sessions")]
    Stopped(usize),
}

/// How often (in sessions) [`run_observed`] reports progress.
pub const OBSERVE_EVERY: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: OrderId,
    req: OrderRequest,
    placed: usize,
    origin: OrderOrigin,
}

/// Runs `strategy` over `universe` (store slots) under `config`.
///
/// # Errors
/// [`EngineError`] for a session range or universe that does not fit the store.
pub fn run(
    store: &MarketStore,
    universe: &[usize],
    strategy: &mut dyn Strategy,
    config: &EngineConfig,
) -> Result<RunOutput, EngineError> {
    run_observed(store, universe, strategy, config, &mut |_, _| true)
}

/// [`run`], calling `observer(sessions done, sessions in all)` every [`OBSERVE_EVERY`]
/// sessions so a worker can report progress and stop a cancelled run: the run stops with
/// [`EngineError::Stopped`] when the observer returns `false`.
///
/// # Errors
/// As [`run`], and [`EngineError::Stopped`].
pub fn run_observed(
    store: &MarketStore,
    universe: &[usize],
    strategy: &mut dyn Strategy,
    config: &EngineConfig,
    observer: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<RunOutput, EngineError> {
    let mut stepper = Stepper::new(store, universe, config)?;
    let total = config.end - config.start + 1;
    for day in 0..config.start {
        stepper.history(day, strategy);
    }
    for day in config.start..=config.end {
        let done = day - config.start;
        if done.is_multiple_of(OBSERVE_EVERY) && done > 0 && !observer(done, total) {
            return Err(EngineError::Stopped(done));
        }
        stepper.step(day, strategy);
    }
    Ok(stepper.finish())
}

/// One run's state between sessions. [`run_observed`] steps one; a parameter sweep steps many
/// over the same sessions in lockstep, so each session's bars are read from memory once for
/// all of them. Either way a run is the same sequence of `history` and `step` calls, hence the
/// same output.
pub struct Stepper<'a> {
    sim: Sim<'a>,
    universe: &'a [usize],
    requests: Vec<OrderRequest>,
    pending: Vec<Pending>,
}

impl std::fmt::Debug for Stepper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stepper")
            .field("universe", &self.universe.len())
            .field("days", &self.sim.days.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Stepper<'a> {
    /// # Errors
    /// [`EngineError`] for a session range or universe that does not fit the store.
    pub fn new(store: &'a MarketStore, universe: &'a [usize], config: &'a EngineConfig) -> Result<Self, EngineError> {
        let n = store.n_days();
        if config.start > config.end || config.end >= n {
            return Err(EngineError::BadRange { start: config.start, end: config.end, n });
        }
        if let Some(bad) = universe.iter().find(|s| **s >= store.n_instruments()) {
            return Err(EngineError::BadSlot(*bad));
        }
        if config.capital.get() <= 0 {
            return Err(EngineError::NoCapital);
        }
        let ledger = Ledger::new(config.capital, store.n_instruments()).map_err(|_| EngineError::NoCapital)?;
        Ok(Stepper { sim: Sim::new(store, config, ledger), universe, requests: Vec::new(), pending: Vec::new() })
    }

    /// Shows the strategy a session before the start (`day < config.start`).
    pub fn history(&mut self, day: usize, strategy: &mut dyn Strategy) {
        strategy.on_history(&MarketView::new(self.sim.store, day), self.universe);
    }

    /// Runs session `day` (from `config.start` to `config.end`, in order).
    pub fn step(&mut self, day: usize, strategy: &mut dyn Strategy) {
        let (config, store) = (self.sim.config, self.sim.store);
        let sim = &mut self.sim;
        let pending = &mut self.pending;
        if !pending.is_empty() {
            sim.execute(day, pending, Reference::Open);
        }
        sim.mark(day);
        let last = day == config.end;
        if config.fill == FillTiming::NextOpen && last {
            // Orders decided at the last close could never execute inside the run.
        } else {
            self.requests.clear();
            let ctx = Context {
                market: MarketView::new(store, day),
                portfolio: PortfolioView::new(sim.ledger.cash(), sim.equity, &sim.quantities),
                universe: self.universe,
                cash_reserve: config.cash_reserve,
                buy_cost_factor: sim.buy_cost_factor,
            };
            strategy.on_close(&ctx, &mut self.requests);
            for req in self.requests.drain(..) {
                if req.quantity > 0 && req.slot < store.n_instruments() {
                    pending.push(sim.new_pending(req, day, OrderOrigin::Strategy));
                }
            }
            if config.fill == FillTiming::Close && !pending.is_empty() {
                sim.execute(day, pending, Reference::Close);
                sim.mark(day);
            }
        }
        if last && config.liquidate_at_end {
            let held: Vec<usize> = sim.ledger.held().to_vec();
            for slot in held {
                let quantity = sim.quantities[slot];
                let req = OrderRequest { slot, side: Side::Sell, quantity, kind: OrderKind::Market };
                pending.push(sim.new_pending(req, day, OrderOrigin::Liquidation));
            }
            if !pending.is_empty() {
                sim.execute(day, pending, Reference::Close);
                sim.mark(day);
            }
        }
    }

    /// The run's output once `config.end` has been stepped.
    #[must_use]
    pub fn finish(self) -> RunOutput {
        let c = self.sim.config;
        let bar_steps = (self.universe.len() as u64) * ((c.end - c.start + 1) as u64);
        self.sim.finish(bar_steps)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    Open,
    Close,
}

struct Sim<'a> {
    store: &'a MarketStore,
    config: &'a EngineConfig,
    calendar: &'a TradingCalendar,
    ledger: Ledger,
    /// Shares per slot, mirrored from the ledger for O(1) strategy reads.
    quantities: Vec<u64>,
    /// (session, shares) of each slot's trading on its last traded session, for the volume cap.
    traded: Vec<(usize, u64)>,
    equity: Won,
    next_id: u64,
    buy_cost_factor: f64,
    days: Vec<DayRecord>,
    orders: Vec<OrderRecord>,
    fills: Vec<Fill>,
    slippage_won: i64,
    slippage_base: i64,
}

impl<'a> Sim<'a> {
    fn new(store: &'a MarketStore, config: &'a EngineConfig, ledger: Ledger) -> Sim<'a> {
        let slots = store.n_instruments();
        Sim {
            store,
            config,
            calendar: store.calendar(),
            ledger,
            quantities: vec![0; slots],
            traded: vec![(usize::MAX, 0); slots],
            equity: config.capital,
            next_id: 1,
            buy_cost_factor: 1.0 + config.commission.as_fraction() + f64::from(config.slippage_bps) / 10_000.0,
            days: Vec::with_capacity(config.end - config.start + 1),
            orders: Vec::new(),
            fills: Vec::new(),
            slippage_won: 0,
            slippage_base: 0,
        }
    }

    fn new_pending(&mut self, req: OrderRequest, placed: usize, origin: OrderOrigin) -> Pending {
        let id = OrderId(self.next_id);
        self.next_id += 1;
        Pending { id, req, placed, origin }
    }

    fn mark(&mut self, day: usize) {
        let store = self.store;
        let invested = self.ledger.market_value(|s| store.last_close(s, day).unwrap_or(Price::MIN));
        let cash = self.ledger.cash();
        self.equity = cash + invested;
        let date = store.dates()[day];
        if let Some(last) = self.days.last_mut()
            && last.date == date
        {
            *last = DayRecord { date, equity: self.equity, cash, invested };
        } else {
            self.days.push(DayRecord { date, equity: self.equity, cash, invested });
        }
    }

    /// Executes every pending order against session `day`, sells first, then in order of id.
    fn execute(&mut self, day: usize, pending: &mut Vec<Pending>, reference: Reference) {
        pending.sort_by_key(|p| (p.req.side == Side::Buy, p.id));
        for p in pending.drain(..) {
            let (status, filled) = self.execute_one(day, &p, reference);
            let store = self.store;
            self.orders.push(OrderRecord {
                id: p.id,
                ticker: store.instrument(p.req.slot).ticker,
                side: p.req.side,
                kind: p.req.kind,
                quantity: Quantity(p.req.quantity),
                placed_on: store.dates()[p.placed],
                executes_on: store.dates()[day],
                origin: p.origin,
                status,
                filled_quantity: Quantity(filled),
            });
        }
    }

    // Stays whole: the KRX checks for one order (price limits, tick, cash, holdings, volume cap,
    // fees and taxes) run in the exchange's order and share the fill being built.
    fn execute_one(&mut self, day: usize, p: &Pending, reference: Reference) -> (OrderStatus, u64) {
        let reject = |reason| (OrderStatus::Rejected { reason }, 0);
        let expire = |reason| (OrderStatus::Expired { reason }, 0);
        let store = self.store;
        let slot = p.req.slot;
        let date = store.dates()[day];
        let market = store.instrument(slot).market;
        let Some(bar) = store.raw(slot, day).filter(|b| b.volume > 0) else {
            return reject(RejectReason::NotTraded);
        };
        let band: Option<PriceBand> =
            day.checked_sub(1).and_then(|d| store.last_close(slot, d)).map(|base| krx::price_band(date, market, base));
        let held = self.quantities[slot];
        let entry = pretrade::OrderCheck {
            date,
            market,
            side: p.req.side,
            kind: p.req.kind,
            quantity: Quantity(p.req.quantity),
            band,
            sellable: Quantity(held),
        };
        if let Err(reason) = pretrade::check_entry(&entry) {
            return reject(reason);
        }
        let (open, high, low, close) =
            (i64::from(bar.open), i64::from(bar.high), i64::from(bar.low), i64::from(bar.close));
        let buy = p.req.side == Side::Buy;
        // The prices this fill may take: on the grid, inside the session's range and the band.
        let Some((grid_lo, grid_hi)) = krx::grid_range(date, market, low, high) else {
            return expire(ExpiryReason::NoValidPrice);
        };
        let (mut floor, mut cap) = (grid_lo, grid_hi);
        if let Some(b) = band {
            floor = floor.max(b.lower);
            cap = cap.min(b.upper_orderable);
        }
        // (reference price, target as num/den) per order type and reference.
        let (reference, num, den) = match (p.req.kind, reference) {
            (OrderKind::Market, r) => {
                let base = if r == Reference::Open { open } else { close };
                let bps = i64::from(self.config.slippage_bps);
                let factor = if buy { 10_000 + bps } else { 10_000 - bps };
                (Some(base), base * factor, 10_000)
            }
            (OrderKind::Limit { price }, Reference::Open) => {
                let l = price.get();
                // Gapping through the limit fills at the (better) open.
                match p.req.side {
                    Side::Buy if open <= l => (None, open, 1),
                    Side::Buy if low <= l => (None, l, 1),
                    Side::Sell if open >= l => (None, open, 1),
                    Side::Sell if high >= l => (None, l, 1),
                    _ => return expire(ExpiryReason::LimitNotReached),
                }
            }
            (OrderKind::Limit { price }, Reference::Close) => match p.req.side {
                Side::Buy if close <= price.get() => (None, close, 1),
                Side::Sell if close >= price.get() => (None, close, 1),
                _ => return expire(ExpiryReason::LimitNotReached),
            },
        };
        if let OrderKind::Limit { price } = p.req.kind {
            // A limit order never fills beyond its limit.
            if buy {
                cap = cap.min(price);
            } else {
                floor = floor.max(price);
            }
        }
        if floor > cap {
            return expire(ExpiryReason::NoValidPrice);
        }
        let price = krx::stochastic_tick(date, market, num, den, coin(p.id, day)).clamp(floor, cap);
        let locked = band.is_some_and(|b| low == high && locked_at_limit(date, market, b, low, buy));
        if let Err(reason) = pretrade::check_order_value(price, Quantity(p.req.quantity), self.config.max_order_value) {
            return reject(reason);
        }
        let mut limit = (bar.volume as f64 * self.config.participation).floor() as u64;
        let mut why = ExpiryReason::VolumeCap;
        if locked {
            let share = (bar.volume as f64 * self.config.locked_limit_share).floor() as u64;
            if share < limit {
                (limit, why) = (share, ExpiryReason::LockedLimit);
            }
        }
        let already = if self.traded[slot].0 == day { self.traded[slot].1 } else { 0 };
        let room = limit.saturating_sub(already);
        let qty = p.req.quantity.min(room);
        if qty == 0 {
            return expire(why);
        }
        let quantity = Quantity(qty);
        let amount = price.times(quantity);
        let commission = self.config.commission.charge(amount);
        let settlement_date = self.calendar.add_sessions(date, krx::SETTLEMENT_SESSIONS);
        let tax = match p.req.side {
            Side::Buy => Won::ZERO,
            Side::Sell => {
                let tax_date = match self.config.tax_basis {
                    TaxBasis::Settlement => settlement_date,
                    TaxBasis::Trade => date,
                };
                krx::sell_tax_rates(tax_date, market).charge(amount)
            }
        };
        match p.req.side {
            Side::Buy => {
                if let Some(max_w) = self.config.max_position_weight {
                    let after = price.times(Quantity(held + qty)).get() as f64;
                    if after > max_w * self.equity.get() as f64 {
                        return reject(RejectReason::MaxPositionWeight);
                    }
                }
                match self.ledger.buy(slot, quantity, price, commission) {
                    Ok(()) => {}
                    Err(LedgerError::InsufficientCash { .. }) => return reject(RejectReason::InsufficientCash),
                    Err(_) => return reject(RejectReason::NotTraded),
                }
            }
            Side::Sell => {
                if self.ledger.sell(slot, quantity, price, commission, tax).is_err() {
                    return reject(RejectReason::InsufficientShares);
                }
            }
        }
        self.quantities[slot] = self.ledger.position(slot).quantity.get();
        self.traded[slot] = (day, already + qty);
        if let Some(r) = reference {
            let adverse = if buy { price.get() - r } else { r - price.get() };
            self.slippage_won += adverse * qty as i64;
            self.slippage_base += r * qty as i64;
        }
        self.fills.push(Fill {
            order_id: p.id,
            ticker: store.instrument(slot).ticker,
            side: p.req.side,
            trade_date: date,
            settlement_date,
            quantity,
            price,
            amount,
            commission,
            tax,
        });
        if qty == p.req.quantity {
            (OrderStatus::Filled, qty)
        } else {
            let status =
                OrderStatus::PartiallyFilled { filled: quantity, expired: Quantity(p.req.quantity - qty), reason: why };
            (status, qty)
        }
    }

    fn finish(self, bar_steps: u64) -> RunOutput {
        let store = self.store;
        let end = self.config.end;
        let positions = self
            .ledger
            .held()
            .iter()
            .map(|&slot| {
                let pos = self.ledger.position(slot);
                let last_price = store.last_close(slot, end).unwrap_or(Price::MIN);
                FinalPosition {
                    ticker: store.instrument(slot).ticker,
                    quantity: pos.quantity,
                    cost: pos.cost,
                    last_price,
                    value: last_price.times(pos.quantity),
                }
            })
            .collect::<Vec<_>>();
        let mut positions = positions;
        positions.sort_by_key(|p| p.ticker);
        RunOutput {
            days: self.days,
            orders: self.orders,
            fills: self.fills,
            positions,
            commissions: self.ledger.commissions_paid(),
            taxes: self.ledger.taxes_paid(),
            bar_steps,
            slippage_won: self.slippage_won,
            slippage_base: self.slippage_base,
        }
    }
}

/// A number in `[0, 1)` from an order id and a session (SplitMix64): the same inputs always
/// give the same fill, and different orders round independently.
fn coin(id: OrderId, day: usize) -> f64 {
    let mut z = id.0 ^ ((day as u64) << 40) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a session that traded at one price (`low == high == price`) sat at the limit on the
/// order's side. Back-adjusted bars round the limit price, so within one tick counts.
fn locked_at_limit(date: NaiveDate, market: haechi_core::Market, band: PriceBand, price: i64, buy: bool) -> bool {
    if buy {
        // The tick just below the limit: at a band boundary (10,000) the limit's own tick is the
        // coarser one above it.
        let limit = band.upper_orderable.get();
        price >= limit - krx::tick_size(date, market, limit - 1)
    } else {
        let limit = band.lower.get();
        price <= limit + krx::tick_size(date, market, limit)
    }
}
