//! The account's fail-safes (주문 Fail-safe): limits checked at order entry, before the market
//! rules. Pure: the store gathers the [`Activity`] (today's orders, equity, halts) and this
//! module decides. The order of checks is the order of severity: a halt answers before a limit,
//! a limit before a request for confirmation (confirming cannot lift a limit).

use haechi_core::{Side, Won};
use serde::{Deserialize, Serialize};

/// An account's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest value of one order (limit × quantity; the upper limit for a market order).
    pub max_order_value: Option<Won>,
    /// Orders placed per session, refused ones not counted.
    pub max_orders_per_day: Option<u32>,
    /// A fall of equity below the session's opening equity by this much halts new buys until
    /// the next session, or until the owner lifts it after signing in again.
    pub daily_loss_limit: Option<Won>,
    /// Orders worth more than this need a confirmation.
    pub confirm_above: Option<Won>,
    /// The same side, ticker, quantity and price again within this many seconds needs a
    /// confirmation (0 turns the check off).
    pub duplicate_window_secs: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_order_value: None,
            max_orders_per_day: Some(500),
            daily_loss_limit: None,
            confirm_above: None,
            duplicate_window_secs: 5,
        }
    }
}

/// What the store knows about the account when an order arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Activity {
    /// Orders accepted for the order's session so far.
    pub orders_today: u32,
    /// The site's trading halt (an administrator's).
    pub site_halted: bool,
    /// The account's own halt (its owner's).
    pub account_halted: bool,
    /// New buys halted by the daily loss limit for this session.
    pub loss_halted: bool,
    /// An identical order was placed within the duplicate window.
    pub duplicate: bool,
}

/// The order as the fail-safes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub side: Side,
    /// Limit × quantity, or the upper limit × quantity for a market order.
    pub value: Won,
    /// The client confirmed the order (after being asked).
    pub confirmed: bool,
}

/// Why confirmation is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirm {
    /// The same order was just placed.
    Duplicate,
    /// The order is above the confirmation threshold.
    Large,
}

/// A fail-safe's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("trading is halted on this site")]
    SiteHalted,
    #[error("trading is halted on this account")]
    AccountHalted,
    #[error("new buys are halted for the rest of the session: the daily loss limit was reached")]
    LossHalted,
    #[error("at most {limit} orders per session")]
    MaxOrdersPerDay { limit: u32 },
    #[error("the order's value {value} is above the limit of {limit} won")]
    MaxOrderValue { value: Won, limit: Won },
    #[error("{}", match .0 {
        Confirm::Duplicate => "the same order was just placed: send it again with a confirmation to place it twice",
        Confirm::Large => "the order is above the account's confirmation threshold: send it again with a confirmation",
    })]
    NeedsConfirmation(Confirm),
}

impl Refusal {
    /// Every code [`Refusal::code`] answers, for catalogues that must word each one.
    pub const CODES: [&'static str; 7] = [
        "site_halted",
        "account_halted",
        "daily_loss_halt",
        "max_orders_per_day",
        "max_order_value",
        "confirm_duplicate",
        "confirm_large",
    ];

    /// A stable code for clients and the portal's wording.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Refusal::SiteHalted => "site_halted",
            Refusal::AccountHalted => "account_halted",
            Refusal::LossHalted => "daily_loss_halt",
            Refusal::MaxOrdersPerDay { .. } => "max_orders_per_day",
            Refusal::MaxOrderValue { .. } => "max_order_value",
            Refusal::NeedsConfirmation(Confirm::Duplicate) => "confirm_duplicate",
            Refusal::NeedsConfirmation(Confirm::Large) => "confirm_large",
        }
    }
}

/// Checks an order against the account's limits.
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn check(limits: &Limits, activity: &Activity, ticket: &Ticket) -> Result<(), Refusal> {
    if activity.site_halted {
        return Err(Refusal::SiteHalted);
    }
    if activity.account_halted {
        return Err(Refusal::AccountHalted);
    }
    // A loss halt stops adding risk; selling out of it stays possible.
    if activity.loss_halted && ticket.side == Side::Buy {
        return Err(Refusal::LossHalted);
    }
    if let Some(limit) = limits.max_orders_per_day
        && activity.orders_today >= limit
    {
        return Err(Refusal::MaxOrdersPerDay { limit });
    }
    if let Some(limit) = limits.max_order_value
        && ticket.value > limit
    {
        return Err(Refusal::MaxOrderValue { value: ticket.value, limit });
    }
    if !ticket.confirmed {
        if activity.duplicate && limits.duplicate_window_secs > 0 {
            return Err(Refusal::NeedsConfirmation(Confirm::Duplicate));
        }
        if let Some(limit) = limits.confirm_above
            && ticket.value > limit
        {
            return Err(Refusal::NeedsConfirmation(Confirm::Large));
        }
    }
    Ok(())
}

/// Whether equity has fallen through the daily loss limit since the session opened.
#[must_use]
pub fn loss_limit_reached(limits: &Limits, opening_equity: Won, equity: Won) -> bool {
    limits.daily_loss_limit.is_some_and(|l| opening_equity.get() - equity.get() >= l.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(side: Side, value: i64) -> Ticket {
        Ticket { side, value: Won(value), confirmed: false }
    }

    #[test]
    fn each_fail_safe_refuses_with_its_own_code() {
        let limits = Limits {
            max_order_value: Some(Won(1_000_000)),
            max_orders_per_day: Some(3),
            daily_loss_limit: Some(Won(50_000)),
            confirm_above: Some(Won(500_000)),
            duplicate_window_secs: 5,
        };
        let quiet = Activity::default();
        assert_eq!(check(&limits, &quiet, &ticket(Side::Buy, 400_000)), Ok(()));
        let code = |a: Activity, t: Ticket| check(&limits, &a, &t).err().map(Refusal::code);
        assert_eq!(code(Activity { site_halted: true, ..quiet }, ticket(Side::Sell, 1)), Some("site_halted"));
        assert_eq!(code(Activity { account_halted: true, ..quiet }, ticket(Side::Sell, 1)), Some("account_halted"));
        assert_eq!(code(Activity { loss_halted: true, ..quiet }, ticket(Side::Buy, 1)), Some("daily_loss_halt"));
        // Selling out of a loss halt is allowed.
        assert_eq!(code(Activity { loss_halted: true, ..quiet }, ticket(Side::Sell, 1)), None);
        assert_eq!(code(Activity { orders_today: 3, ..quiet }, ticket(Side::Buy, 1)), Some("max_orders_per_day"));
        assert_eq!(code(Activity { orders_today: 2, ..quiet }, ticket(Side::Buy, 1)), None);
        assert_eq!(code(quiet, ticket(Side::Buy, 1_000_001)), Some("max_order_value"));
        assert_eq!(code(quiet, ticket(Side::Buy, 1_000_000)), Some("confirm_large"));
        assert_eq!(code(Activity { duplicate: true, ..quiet }, ticket(Side::Buy, 10)), Some("confirm_duplicate"));
        // Confirming answers a question but lifts no limit.
        let confirmed = |v| Ticket { confirmed: true, ..ticket(Side::Buy, v) };
        assert_eq!(code(Activity { duplicate: true, ..quiet }, confirmed(900_000)), None);
        assert_eq!(code(quiet, confirmed(1_000_001)), Some("max_order_value"));
    }

    #[test]
    fn the_loss_limit_compares_with_the_opening_equity() {
        let limits = Limits { daily_loss_limit: Some(Won(100)), ..Limits::default() };
        assert!(!loss_limit_reached(&limits, Won(1_000), Won(901)));
        assert!(loss_limit_reached(&limits, Won(1_000), Won(900)));
        assert!(!loss_limit_reached(&Limits::default(), Won(1_000), Won(0)));
    }
}
