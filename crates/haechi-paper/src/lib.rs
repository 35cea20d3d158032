//! Paper trading's core: one mock account's cash, reservations, holdings and day orders, and how
//! trade prints fill them. Pure: no clock, no I/O — the caller says which session an order is
//! for, what the day's price band is, and when a print happened; the store and the matcher
//! process apply these transitions and persist the result.
//!
//! # Invariants (property-tested)
//! - cash ≥ 0 and reserved ≤ cash: an order can only be placed against available cash
//!   (cash − reserved), and a buy reserves its worst case (limit, or the day's upper limit for
//!   a market order, × quantity + commission), so no fill can overdraw;
//! - reserved = Σ open buys' remaining reservations; each holding's reserved shares = Σ open
//!   sells' remaining quantities ≤ the shares held (no short selling, no selling twice);
//! - each holding = Σ its bought − Σ its sold fills; a print fills at most its volume.
//!
//! # Matching
//! Open orders of a ticker match a print in price-time priority. A limit buy fills when the
//! print is at or below its limit — at its limit, or at the print when that print opened the
//! session through the limit (a better price the queue would have had), or at the closing
//! call's single price; a market buy at the print. Sells mirror this. Each print's volume is shared out in priority order (partial fills);
//! the rest waits for the next print. Day orders expire at the session's end.

use chrono::NaiveDate;
use haechi_core::krx::PriceBand;
use haechi_core::pretrade::{self, OrderCheck};
use haechi_core::{Fill, Market, OrderId, OrderKind, Price, Quantity, Rate, RejectReason, Side, Ticker, Won};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub mod failsafe;
/// The synthetic intraday session the replayed market and the fake KIS stream both play.
pub use haechi_core::intraday as replay;
pub mod session;

/// An order's life: accepted, then partly and wholly filled, or ended another way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderState {
    Accepted,
    PartiallyFilled,
    Filled,
    Cancelled,
    /// The session ended with the order (or its rest) unfilled.
    Expired,
}

impl OrderState {
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, OrderState::Accepted | OrderState::PartiallyFilled)
    }
}

/// A new order, before the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    pub ticker: Ticker,
    pub market: Market,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Quantity,
    /// The session it is for: today's during trading hours, the next one outside them.
    pub session: NaiveDate,
    /// That session's price band (from the previous close); `None` before a first close.
    pub band: Option<PriceBand>,
}

/// An accepted order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaperOrder {
    pub id: OrderId,
    pub ticker: Ticker,
    pub market: Market,
    pub side: Side,
    #[serde(flatten)]
    pub kind: OrderKind,
    pub quantity: Quantity,
    pub filled: Quantity,
    pub session: NaiveDate,
    #[serde(flatten)]
    pub state: OrderState,
    /// Cash still set aside for a buy.
    pub reserved: Won,
}

impl PaperOrder {
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.quantity.get() - self.filled.get()
    }
}

/// Shares of one name: held, promised to open sells, and their book cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Holding {
    pub quantity: u64,
    pub reserved: u64,
    pub cost: Won,
}

/// One trade on the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Print {
    pub ticker: Ticker,
    pub price: Price,
    pub volume: u64,
    /// An auction's single price — the opening print, or the closing call's — where every
    /// order it reaches fills at the print, not at its limit.
    pub auction: bool,
    pub session: NaiveDate,
    /// T+2 on the exchange calendar: the sell tax's rate is the one in force then.
    pub settlement: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaperError {
    #[error("no such order")]
    UnknownOrder,
    #[error("the order is no longer open")]
    NotOpen,
    #[error("starting cash must be positive")]
    NoCash,
}

/// An account as a store keeps it, for [`PaperAccount::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub cash: Won,
    pub reserved: Won,
    pub commission: Rate,
    pub next_id: u64,
    pub holdings: BTreeMap<Ticker, Holding>,
    pub orders: Vec<PaperOrder>,
    pub commissions: Won,
    pub taxes: Won,
}

/// A mock account.
#[derive(Debug, Clone, Serialize)]
pub struct PaperAccount {
    cash: Won,
    reserved: Won,
    commission: Rate,
    holdings: BTreeMap<Ticker, Holding>,
    orders: BTreeMap<OrderId, PaperOrder>,
    /// Open orders by ticker, so a print looks only at its own name's orders.
    #[serde(skip)]
    open: HashMap<Ticker, Vec<OrderId>>,
    next_id: u64,
    commissions: Won,
    taxes: Won,
}

impl PaperAccount {
    /// # Errors
    /// [`PaperError::NoCash`] for a starting cash that is not positive.
    pub fn new(cash: Won, commission: Rate) -> Result<PaperAccount, PaperError> {
        if cash.get() <= 0 {
            return Err(PaperError::NoCash);
        }
        Ok(PaperAccount {
            cash,
            reserved: Won::ZERO,
            commission,
            holdings: BTreeMap::new(),
            orders: BTreeMap::new(),
            open: HashMap::new(),
            next_id: 1,
            commissions: Won::ZERO,
            taxes: Won::ZERO,
        })
    }

    /// Rebuilds an account from what a store kept. `orders` need hold only the orders the next
    /// operation touches (a ticker's open orders for a print, one order for a cancel); the
    /// account-wide sums (`cash`, `reserved`) cover the rest.
    #[must_use]
    pub fn restore(stored: Stored) -> PaperAccount {
        let mut open: HashMap<Ticker, Vec<OrderId>> = HashMap::new();
        let mut orders = BTreeMap::new();
        for o in stored.orders {
            if o.state.is_open() {
                open.entry(o.ticker).or_default().push(o.id);
            }
            orders.insert(o.id, o);
        }
        for ids in open.values_mut() {
            ids.sort_unstable();
        }
        PaperAccount {
            cash: stored.cash,
            reserved: stored.reserved,
            commission: stored.commission,
            holdings: stored.holdings,
            orders,
            open,
            next_id: stored.next_id.max(1),
            commissions: stored.commissions,
            taxes: stored.taxes,
        }
    }

    /// Everything [`PaperAccount::restore`] needs to rebuild this account.
    #[must_use]
    pub fn to_stored(&self) -> Stored {
        Stored {
            cash: self.cash,
            reserved: self.reserved,
            commission: self.commission,
            next_id: self.next_id,
            holdings: self.holdings.clone(),
            orders: self.orders.values().cloned().collect(),
            commissions: self.commissions,
            taxes: self.taxes,
        }
    }

    /// The id the next accepted order gets.
    #[must_use]
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    #[must_use]
    pub fn cash(&self) -> Won {
        self.cash
    }
    #[must_use]
    pub fn reserved(&self) -> Won {
        self.reserved
    }
    /// Cash an order may still use.
    #[must_use]
    pub fn available(&self) -> Won {
        self.cash - self.reserved
    }
    #[must_use]
    pub fn holdings(&self) -> &BTreeMap<Ticker, Holding> {
        &self.holdings
    }
    #[must_use]
    pub fn orders(&self) -> &BTreeMap<OrderId, PaperOrder> {
        &self.orders
    }
    /// The open orders of a ticker, as the matcher looks them up.
    #[must_use]
    pub fn open_orders(&self, ticker: Ticker) -> &[OrderId] {
        self.open.get(&ticker).map_or(&[], Vec::as_slice)
    }
    #[must_use]
    pub fn commissions_paid(&self) -> Won {
        self.commissions
    }
    #[must_use]
    pub fn taxes_paid(&self) -> Won {
        self.taxes
    }

    /// Checks an order (the shared pre-trade rules, then cash or shares) and reserves what it
    /// may use.
    ///
    /// # Errors
    /// The [`RejectReason`]; nothing changes then.
    pub fn place(&mut self, new: NewOrder) -> Result<OrderId, RejectReason> {
        let held = self.holdings.get(&new.ticker).copied().unwrap_or_default();
        let check = OrderCheck {
            date: new.session,
            market: new.market,
            side: new.side,
            kind: new.kind,
            quantity: new.quantity,
            band: new.band,
            sellable: Quantity(held.quantity - held.reserved),
        };
        if new.quantity.is_zero() {
            return Err(RejectReason::InsufficientShares);
        }
        pretrade::check_entry(&check)?;
        let reserved = match new.side {
            Side::Buy => {
                // A market buy before the name's first close has no bounded price.
                let need = pretrade::buy_reservation(new.kind, new.quantity, new.band, self.commission)
                    .ok_or(RejectReason::NotTraded)?;
                if need > self.available() {
                    return Err(RejectReason::InsufficientCash);
                }
                self.reserved += need;
                need
            }
            Side::Sell => {
                self.holdings.entry(new.ticker).or_default().reserved += new.quantity.get();
                Won::ZERO
            }
        };
        let id = OrderId(self.next_id);
        self.next_id += 1;
        self.open.entry(new.ticker).or_default().push(id);
        self.orders.insert(
            id,
            PaperOrder {
                id,
                ticker: new.ticker,
                market: new.market,
                side: new.side,
                kind: new.kind,
                quantity: new.quantity,
                filled: Quantity(0),
                session: new.session,
                state: OrderState::Accepted,
                reserved,
            },
        );
        Ok(id)
    }

    /// Cancels an open order and frees what it held.
    ///
    /// # Errors
    /// [`PaperError::UnknownOrder`], [`PaperError::NotOpen`].
    pub fn cancel(&mut self, id: OrderId) -> Result<(), PaperError> {
        self.end(id, OrderState::Cancelled)
    }

    /// Expires every open order of `session` (at its close).
    pub fn expire(&mut self, session: NaiveDate) -> Vec<OrderId> {
        let ids: Vec<OrderId> =
            self.orders.values().filter(|o| o.state.is_open() && o.session <= session).map(|o| o.id).collect();
        for id in &ids {
            let _ = self.end(*id, OrderState::Expired);
        }
        ids
    }

    fn end(&mut self, id: OrderId, state: OrderState) -> Result<(), PaperError> {
        let o = self.orders.get_mut(&id).ok_or(PaperError::UnknownOrder)?;
        if !o.state.is_open() {
            return Err(PaperError::NotOpen);
        }
        o.state = state;
        if let Some(ids) = self.open.get_mut(&o.ticker) {
            ids.retain(|x| *x != id);
        }
        match o.side {
            Side::Buy => {
                self.reserved -= o.reserved;
                o.reserved = Won::ZERO;
            }
            Side::Sell => {
                let rest = o.quantity.get() - o.filled.get();
                if let Some(h) = self.holdings.get_mut(&o.ticker) {
                    h.reserved -= rest;
                }
            }
        }
        Ok(())
    }

    /// Fills this account's open orders of the print's ticker and session that the print
    /// reaches, in price-time priority, sharing out its volume.
    pub fn on_print(&mut self, print: &Print) -> Vec<Fill> {
        let Some(ids) = self.open.get(&print.ticker) else { return Vec::new() };
        let mut eligible: Vec<(OrderId, Price)> = ids
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.session == print.session)
            .filter_map(|o| fill_price(o, print).map(|p| (o.id, p)))
            .collect();
        if eligible.is_empty() {
            return Vec::new();
        }
        // Price priority (market first, then the most generous limit), then time (id).
        eligible.sort_by_key(|(id, _)| {
            let o = &self.orders[id];
            let generosity = match (o.side, o.kind) {
                (_, OrderKind::Market) => i64::MAX,
                (Side::Buy, OrderKind::Limit { price }) => price.get(),
                (Side::Sell, OrderKind::Limit { price }) => -price.get(),
            };
            (std::cmp::Reverse(generosity), *id)
        });
        let mut volume = print.volume;
        let mut fills = Vec::new();
        for (id, price) in eligible {
            if volume == 0 {
                break;
            }
            let q = self.orders[&id].remaining().min(volume);
            if let Some(f) = self.fill(id, price, q, print) {
                volume -= q;
                fills.push(f);
            }
        }
        fills
    }

    fn fill(&mut self, id: OrderId, price: Price, q: u64, print: &Print) -> Option<Fill> {
        let o = self.orders.get_mut(&id)?;
        let quantity = Quantity(q);
        let amount = price.times(quantity);
        let commission = self.commission.charge(amount);
        let tax = match o.side {
            Side::Buy => Won::ZERO,
            Side::Sell => haechi_core::krx::sell_tax_rates(print.settlement, o.market).charge(amount),
        };
        let holding = self.holdings.entry(o.ticker).or_default();
        match o.side {
            Side::Buy => {
                let cost = amount + commission;
                // The reservation covered the worst case; releasing exactly the cost leaves
                // enough for the rest of the order (commission truncation is superadditive).
                let release = if q == o.remaining() { o.reserved } else { cost.min(o.reserved) };
                if cost > self.cash - self.reserved + release {
                    return None;
                }
                self.cash -= cost;
                self.reserved -= release;
                o.reserved -= release;
                holding.quantity += q;
                holding.cost += cost;
            }
            Side::Sell => {
                let before = holding.quantity;
                let cost_released =
                    Won(i64::try_from(i128::from(holding.cost.get()) * i128::from(q) / i128::from(before.max(1)))
                        .ok()?);
                holding.quantity -= q;
                holding.reserved -= q;
                holding.cost -= cost_released;
                self.cash += amount - commission - tax;
            }
        }
        if holding.quantity == 0 && holding.reserved == 0 {
            let t = o.ticker;
            self.holdings.remove(&t);
        }
        o.filled = Quantity(o.filled.get() + q);
        o.state = if o.remaining() == 0 { OrderState::Filled } else { OrderState::PartiallyFilled };
        if o.state == OrderState::Filled
            && let Some(ids) = self.open.get_mut(&o.ticker)
        {
            ids.retain(|x| *x != id);
        }
        self.commissions += commission;
        self.taxes += tax;
        Some(Fill {
            order_id: id,
            ticker: o.ticker,
            side: o.side,
            trade_date: print.session,
            settlement_date: print.settlement,
            quantity,
            price,
            amount,
            commission,
            tax,
        })
    }

    /// Equity at given prices: cash + Σ shares × price (a name without a price counts at its
    /// book cost).
    #[must_use]
    pub fn equity(&self, price: impl Fn(Ticker) -> Option<Price>) -> Won {
        let mut total = self.cash;
        for (t, h) in &self.holdings {
            total += price(*t).map_or(h.cost, |p| p.times(Quantity(h.quantity)));
        }
        total
    }
}

/// The price `print` fills `o` at, if it reaches it.
fn fill_price(o: &PaperOrder, print: &Print) -> Option<Price> {
    match (o.side, o.kind) {
        (_, OrderKind::Market) => Some(print.price),
        (Side::Buy, OrderKind::Limit { price }) if print.price <= price => {
            Some(if print.auction { print.price } else { price })
        }
        (Side::Sell, OrderKind::Limit { price }) if print.price >= price => {
            Some(if print.auction { print.price } else { price })
        }
        _ => None,
    }
}
