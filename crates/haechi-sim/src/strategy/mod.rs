//! Strategies: the decisions, separate from execution.
//!
//! A strategy sees the market only through a [`MarketView`] bounded at today's close, so it
//! cannot peek at tomorrow; it answers with [`OrderRequest`]s that the engine executes under
//! KRX rules on the next session's open (or at today's close, per the scenario). Adding a
//! strategy is one file: implement [`Strategy`] and add a variant to
//! [`crate::scenario::StrategySpec`].

mod buy_and_hold;
mod momentum;
mod rebalance;
mod rsi;
mod sizing;
mod sma_cross;

pub use buy_and_hold::BuyAndHold;
pub use momentum::MomentumRotation;
pub use rebalance::{Rebalance, RebalanceFrequency};
pub use rsi::RsiReversion;
pub use sizing::Sizing;
pub use sma_cross::SmaCross;

/// The orders of a paper account, placed by its owner: as a strategy it places none. It exists
/// so a paper account's report can say truthfully what decided its trades
/// ([`crate::scenario::StrategySpec::Manual`]); no scenario file can ask for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manual;

impl Strategy for Manual {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn on_close(&mut self, _ctx: &Context<'_>, _out: &mut Vec<OrderRequest>) {}
}

use chrono::{Datelike, NaiveDate};
use haechi_core::{MarketStore, OrderKind, Price, Side, Won};

/// Market data up to and including the close of session `today`.
#[derive(Debug, Clone, Copy)]
pub struct MarketView<'a> {
    store: &'a MarketStore,
    today: usize,
}

impl<'a> MarketView<'a> {
    #[must_use]
    pub fn new(store: &'a MarketStore, today: usize) -> MarketView<'a> {
        MarketView { store, today }
    }
    /// Index of today's session in the store.
    #[must_use]
    pub fn today(&self) -> usize {
        self.today
    }
    #[must_use]
    pub fn date(&self) -> NaiveDate {
        self.store.dates()[self.today]
    }
    /// The previous session's date, if any.
    #[must_use]
    pub fn previous_date(&self) -> Option<NaiveDate> {
        self.today.checked_sub(1).map(|d| self.store.dates()[d])
    }
    /// Closes of `slot` for sessions `0..=today` (0 where it had no bar).
    #[must_use]
    pub fn closes(&self, slot: usize) -> &'a [u32] {
        &self.store.closes(slot)[..=self.today]
    }
    /// Today's close, if `slot` traded today.
    #[must_use]
    pub fn close(&self, slot: usize) -> Option<Price> {
        self.store.close(slot, self.today)
    }
    /// The latest close at or before today.
    #[must_use]
    pub fn last_close(&self, slot: usize) -> Option<Price> {
        self.store.last_close(slot, self.today)
    }
    #[must_use]
    pub fn store_instrument(&self, slot: usize) -> &'a haechi_core::Instrument {
        self.store.instrument(slot)
    }
}

/// The account as of today's close.
#[derive(Debug, Clone, Copy)]
pub struct PortfolioView<'a> {
    pub cash: Won,
    /// Cash + positions at today's (or the latest) close.
    pub equity: Won,
    positions: &'a [u64],
}

impl<'a> PortfolioView<'a> {
    #[must_use]
    pub fn new(cash: Won, equity: Won, positions: &'a [u64]) -> PortfolioView<'a> {
        PortfolioView { cash, equity, positions }
    }
    /// Shares held in `slot`.
    #[must_use]
    pub fn quantity(&self, slot: usize) -> u64 {
        self.positions.get(slot).copied().unwrap_or(0)
    }
}

/// What a strategy asks for. Quantities of zero are dropped by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    pub slot: usize,
    pub side: Side,
    pub quantity: u64,
    pub kind: OrderKind,
}

/// Everything a strategy may look at when deciding.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub market: MarketView<'a>,
    pub portfolio: PortfolioView<'a>,
    /// The scenario's universe, as store slots.
    pub universe: &'a [usize],
    /// Fraction of equity kept in cash when sizing to target weights.
    pub cash_reserve: f64,
    /// Expected cost per won bought (commission + slippage), used to size buys that fit.
    pub buy_cost_factor: f64,
}

/// A trading strategy. Called once per session after the close.
pub trait Strategy {
    /// Stable identifier used in reports (`momentum_rotation`, …).
    fn name(&self) -> &'static str;

    /// Decide after the close of `ctx.market.today()`; push orders into `out`.
    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>);

    /// Sees the close of a session before the run's start, in order, and cannot trade.
    /// Strategies that keep running state (moving averages, RSI) feed it here, so that data
    /// before `period.start` is history, as the scenario format promises; strategies that
    /// read [`MarketView::closes`] directly need nothing.
    fn on_history(&mut self, market: &MarketView<'_>, universe: &[usize]) {
        let _ = (market, universe);
    }
}

/// Emits the market orders that move the portfolio to `targets` (slot, weight of equity),
/// selling everything not in `targets`. Sells come first so their proceeds fund the buys.
pub fn rebalance_to(ctx: &Context<'_>, targets: &[(usize, f64)], out: &mut Vec<OrderRequest>) {
    let investable = ctx.portfolio.equity.get() as f64 * (1.0 - ctx.cash_reserve).max(0.0);
    let mut buys = Vec::new();
    let held_not_targeted = ctx.universe.iter().copied().filter(|s| ctx.portfolio.quantity(*s) > 0);
    for slot in held_not_targeted {
        if !targets.iter().any(|(t, _)| *t == slot) {
            out.push(OrderRequest {
                slot,
                side: Side::Sell,
                quantity: ctx.portfolio.quantity(slot),
                kind: OrderKind::Market,
            });
        }
    }
    for &(slot, weight) in targets {
        let Some(price) = ctx.market.last_close(slot) else { continue };
        let want = target_shares(investable * weight, price, ctx.buy_cost_factor);
        let have = ctx.portfolio.quantity(slot);
        if want < have {
            out.push(OrderRequest { slot, side: Side::Sell, quantity: have - want, kind: OrderKind::Market });
        } else if want > have {
            buys.push(OrderRequest { slot, side: Side::Buy, quantity: want - have, kind: OrderKind::Market });
        }
    }
    out.extend(buys);
}

/// Whole shares worth `value` won at `price`, leaving room for costs.
#[must_use]
pub fn target_shares(value: f64, price: Price, cost_factor: f64) -> u64 {
    if value <= 0.0 {
        return 0;
    }
    (value / (price.get() as f64 * cost_factor)).floor() as u64
}

/// Whether `date` lies in a later week, month or quarter than `last` (the previous rebalance),
/// so that rebalancing happens at the first close of each period.
#[must_use]
pub fn starts_new_period(last: Option<NaiveDate>, date: NaiveDate, freq: RebalanceFrequency) -> bool {
    let Some(prev) = last else { return true };
    let key = |d: NaiveDate| match freq {
        RebalanceFrequency::Weekly => (d.iso_week().year(), d.iso_week().week()),
        RebalanceFrequency::Monthly => (d.year(), d.month()),
        RebalanceFrequency::Quarterly => (d.year(), (d.month() - 1) / 3),
    };
    key(prev) != key(date)
}
