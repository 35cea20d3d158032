//! Pre-trade checks: the KRX rules and account limits an order must pass, in the exchange's
//! order, as pure functions of the order, the day's price band and the account. One module for
//! the backtest engine (which checks at execution) and paper trading (which checks at entry),
//! so that a rule exists once.

use crate::krx::{self, PriceBand};
use crate::market::Market;
use crate::money::{Price, Quantity, Rate, Won};
use crate::order::{OrderKind, RejectReason, Side};
use chrono::NaiveDate;

/// What the checks need to know about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// The session the order is for (ticks and limits change by date).
    pub date: NaiveDate,
    pub market: Market,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Quantity,
    /// The day's band around the previous close; `None` for a name's first session.
    pub band: Option<PriceBand>,
    /// Shares held and not already promised to other sell orders.
    pub sellable: Quantity,
}

/// A limit price must lie on its band's tick grid and inside the day's price band.
///
/// # Errors
/// [`RejectReason::OffTick`], then [`RejectReason::OutsidePriceLimit`].
pub fn check_limit_price(
    date: NaiveDate,
    market: Market,
    price: Price,
    band: Option<PriceBand>,
) -> Result<(), RejectReason> {
    if !krx::is_on_tick(date, market, price) {
        return Err(RejectReason::OffTick);
    }
    if band.is_some_and(|b| !b.contains(price)) {
        return Err(RejectReason::OutsidePriceLimit);
    }
    Ok(())
}

/// No short selling: a sell may not exceed the shares held (and not promised elsewhere).
///
/// # Errors
/// [`RejectReason::InsufficientShares`].
pub fn check_holdings(side: Side, quantity: Quantity, sellable: Quantity) -> Result<(), RejectReason> {
    if side == Side::Sell && quantity.get() > sellable.get() {
        return Err(RejectReason::InsufficientShares);
    }
    Ok(())
}

/// An account's cap on one order's value.
///
/// # Errors
/// [`RejectReason::MaxOrderValue`] when `price × quantity` exceeds `max`.
pub fn check_order_value(price: Price, quantity: Quantity, max: Option<Won>) -> Result<(), RejectReason> {
    match max {
        Some(max) if price.times(quantity) > max => Err(RejectReason::MaxOrderValue),
        _ => Ok(()),
    }
}

/// The checks that need no market print, in KRX's order: the limit price's tick and band, then
/// the holdings for a sell.
///
/// # Errors
/// The first [`RejectReason`] that applies.
pub fn check_entry(order: &OrderCheck) -> Result<(), RejectReason> {
    if let OrderKind::Limit { price } = order.kind {
        check_limit_price(order.date, order.market, price, order.band)?;
    }
    check_holdings(order.side, order.quantity, order.sellable)
}

/// The most a buy can cost, which entry sets aside from cash: the limit (for a market order,
/// the day's upper limit, the highest price it could fill at) times the quantity, plus the
/// commission on that amount. `None` for a market buy without a band (a name's first session,
/// whose price is not bounded).
#[must_use]
pub fn buy_reservation(kind: OrderKind, quantity: Quantity, band: Option<PriceBand>, commission: Rate) -> Option<Won> {
    let price = match kind {
        OrderKind::Limit { price } => price,
        OrderKind::Market => band?.upper_orderable,
    };
    let amount = price.times(quantity);
    Some(amount + commission.charge(amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }
    fn p(v: i64) -> Price {
        Price::new(v).unwrap_or(Price::MIN)
    }

    #[test]
    fn a_limit_is_checked_for_its_tick_then_its_band() {
        let day = d(2024, 3, 4);
        let band = Some(krx::price_band(day, Market::Kospi, p(71_000)));
        assert_eq!(check_limit_price(day, Market::Kospi, p(71_100), band), Ok(()));
        assert_eq!(check_limit_price(day, Market::Kospi, p(71_050), band), Err(RejectReason::OffTick));
        assert_eq!(check_limit_price(day, Market::Kospi, p(92_400), band), Err(RejectReason::OutsidePriceLimit));
        assert_eq!(check_limit_price(day, Market::Kospi, p(92_300), band), Ok(()));
        // Off the grid and outside the band: the tick is named first, as KRX checks it first.
        assert_eq!(check_limit_price(day, Market::Kospi, p(100_050), band), Err(RejectReason::OffTick));
        // Without a band (a first session) only the tick applies.
        assert_eq!(check_limit_price(day, Market::Kospi, p(500_000), None), Ok(()));
    }

    #[test]
    fn entry_checks_run_in_krx_order_and_forbid_short_sales() {
        let day = d(2024, 3, 4);
        let order = OrderCheck {
            date: day,
            market: Market::Kosdaq,
            side: Side::Sell,
            kind: OrderKind::Limit { price: p(20_050) },
            quantity: Quantity(10),
            band: Some(krx::price_band(day, Market::Kosdaq, p(20_000))),
            sellable: Quantity(5),
        };
        // Both wrong: the price is named first.
        assert_eq!(
            check_entry(&OrderCheck { kind: OrderKind::Limit { price: p(20_010) }, ..order }),
            Err(RejectReason::OffTick)
        );
        assert_eq!(check_entry(&order), Err(RejectReason::InsufficientShares));
        assert_eq!(check_entry(&OrderCheck { sellable: Quantity(10), ..order }), Ok(()));
        assert_eq!(check_entry(&OrderCheck { side: Side::Buy, ..order }), Ok(()));
        assert_eq!(check_order_value(p(20_000), Quantity(10), Some(Won(199_999))), Err(RejectReason::MaxOrderValue));
        assert_eq!(check_order_value(p(20_000), Quantity(10), Some(Won(200_000))), Ok(()));
        assert_eq!(check_order_value(p(20_000), Quantity(10), None), Ok(()));
    }

    #[test]
    fn a_buy_reserves_its_worst_price_and_the_commission() {
        let day = d(2024, 3, 4);
        let band = Some(krx::price_band(day, Market::Kospi, p(71_000)));
        let fee = krx::DEFAULT_COMMISSION;
        // A market buy could fill up to the upper limit, 92,300.
        assert_eq!(buy_reservation(OrderKind::Market, Quantity(10), band, fee), Some(Won(923_000 + 138)));
        assert_eq!(
            buy_reservation(OrderKind::Limit { price: p(70_000) }, Quantity(10), band, fee),
            Some(Won(700_000 + 105))
        );
        assert_eq!(buy_reservation(OrderKind::Market, Quantity(10), None, fee), None);
    }
}
