//! Orders, their outcomes and fills.

use crate::market::Ticker;
use crate::money::{Price, Quantity, Won};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// Market or limit. Every order is a day order: what is unfilled at the close expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderKind {
    Market,
    Limit { price: Price },
}

/// An order for a positive number of shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    id: OrderId,
    ticker: Ticker,
    side: Side,
    quantity: Quantity,
    kind: OrderKind,
    placed_on: NaiveDate,
}

impl Order {
    /// Returns `None` for a zero quantity: an order for nothing is not an order.
    #[must_use]
    pub fn new(
        id: OrderId,
        ticker: Ticker,
        side: Side,
        quantity: Quantity,
        kind: OrderKind,
        placed_on: NaiveDate,
    ) -> Option<Order> {
        (!quantity.is_zero()).then_some(Order { id, ticker, side, quantity, kind, placed_on })
    }

    #[must_use]
    pub fn id(&self) -> OrderId {
        self.id
    }
    #[must_use]
    pub fn ticker(&self) -> Ticker {
        self.ticker
    }
    #[must_use]
    pub fn side(&self) -> Side {
        self.side
    }
    #[must_use]
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }
    #[must_use]
    pub fn kind(&self) -> OrderKind {
        self.kind
    }
    #[must_use]
    pub fn placed_on(&self) -> NaiveDate {
        self.placed_on
    }
}

/// Why an order was refused before any share traded. The serialised names are stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The limit price is not a multiple of its band's tick.
    OffTick,
    /// The limit price lies outside the day's ±30% (or ±15%) band.
    OutsidePriceLimit,
    /// Cash does not cover the amount plus commission.
    InsufficientCash,
    /// A sell for more shares than held (no short selling).
    InsufficientShares,
    /// The ticker has no bar (or no volume) on the execution day.
    NotTraded,
    /// The order's value exceeds the configured maximum order value.
    MaxOrderValue,
    /// The position after the fill would exceed the configured maximum weight of equity.
    MaxPositionWeight,
}

impl RejectReason {
    /// Every reason, for catalogues that must name each one.
    pub const ALL: [RejectReason; 7] = [
        RejectReason::OffTick,
        RejectReason::OutsidePriceLimit,
        RejectReason::InsufficientCash,
        RejectReason::InsufficientShares,
        RejectReason::NotTraded,
        RejectReason::MaxOrderValue,
        RejectReason::MaxPositionWeight,
    ];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            RejectReason::OffTick => "off_tick",
            RejectReason::OutsidePriceLimit => "outside_price_limit",
            RejectReason::InsufficientCash => "insufficient_cash",
            RejectReason::InsufficientShares => "insufficient_shares",
            RejectReason::NotTraded => "not_traded",
            RejectReason::MaxOrderValue => "max_order_value",
            RejectReason::MaxPositionWeight => "max_position_weight",
        }
    }
}

/// Why (part of) an accepted order did not trade by the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryReason {
    /// The day's range never reached the limit price.
    LimitNotReached,
    /// The volume participation cap was used up.
    VolumeCap,
    /// The session was locked at its price limit on the order's side (it opened, traded and
    /// closed at the limit): the queue at the limit rationed the fills.
    LockedLimit,
    /// No price on the tick grid lies inside the session's low–high range and the price
    /// band, so nothing could trade at a valid price (back-adjusted histories).
    NoValidPrice,
}

/// What became of an order by the close of its execution day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OrderStatus {
    Filled,
    /// Some shares traded; the rest expired at the close.
    PartiallyFilled {
        filled: Quantity,
        expired: Quantity,
        reason: ExpiryReason,
    },
    Expired {
        reason: ExpiryReason,
    },
    Rejected {
        reason: RejectReason,
    },
}

/// One execution. `amount = price × quantity`; commission and tax are whole won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub order_id: OrderId,
    pub ticker: Ticker,
    pub side: Side,
    pub trade_date: NaiveDate,
    /// T+2: when cash and shares actually change hands.
    pub settlement_date: NaiveDate,
    pub quantity: Quantity,
    pub price: Price,
    pub amount: Won,
    pub commission: Won,
    pub tax: Won,
}

impl Fill {
    /// Cash moved by this fill: negative for buys (amount + commission), positive for sells.
    #[must_use]
    pub fn cash_flow(&self) -> Won {
        match self.side {
            Side::Buy => -(self.amount + self.commission),
            Side::Sell => self.amount - self.commission - self.tax,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_quantity_orders_cannot_exist() {
        let t = Ticker::parse("005930").unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert!(Order::new(OrderId(1), t, Side::Buy, Quantity(0), OrderKind::Market, day).is_none());
        assert!(Order::new(OrderId(1), t, Side::Buy, Quantity(1), OrderKind::Market, day).is_some());
    }

    #[test]
    fn reject_codes_match_serialised_names() {
        for r in [
            RejectReason::OffTick,
            RejectReason::OutsidePriceLimit,
            RejectReason::InsufficientCash,
            RejectReason::InsufficientShares,
            RejectReason::NotTraded,
            RejectReason::MaxOrderValue,
            RejectReason::MaxPositionWeight,
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.code()));
        }
    }
}
