//! How many shares a signal buys.

use haechi_core::{Price, Won};
use serde::{Deserialize, Serialize};

/// Position sizing for signal strategies (`buy_and_hold`, `sma_cross`, `rsi_reversion`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sizing {
    /// A fixed number of shares per entry.
    FixedShares { shares: u64 },
    /// Shares worth a fixed amount of won per entry.
    FixedAmount { amount: Won },
    /// Shares worth a percentage of equity per entry (`percent = 10` → 10%).
    PercentOfEquity { percent: f64 },
    /// Top up the position to a weight of equity (`weight = 0.2` → 20%).
    TargetWeight { weight: f64 },
}

impl Sizing {
    /// Shares to buy at `price` given `equity` and the shares already `held`.
    /// `cost_factor` (> 1) leaves room for commission and slippage.
    #[must_use]
    pub fn buy_quantity(&self, price: Price, equity: Won, held: u64, cost_factor: f64) -> u64 {
        let value = match *self {
            Sizing::FixedShares { shares } => return shares,
            Sizing::FixedAmount { amount } => amount.get() as f64,
            Sizing::PercentOfEquity { percent } => equity.get() as f64 * percent / 100.0,
            Sizing::TargetWeight { weight } => {
                let want = super::target_shares(equity.get() as f64 * weight, price, cost_factor);
                return want.saturating_sub(held);
            }
        };
        super::target_shares(value, price, cost_factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_rules() {
        let p = Price::new(10_000).unwrap();
        let eq = Won(1_000_000);
        assert_eq!(Sizing::FixedShares { shares: 7 }.buy_quantity(p, eq, 0, 1.0), 7);
        assert_eq!(Sizing::FixedAmount { amount: Won(55_000) }.buy_quantity(p, eq, 0, 1.0), 5);
        assert_eq!(Sizing::PercentOfEquity { percent: 10.0 }.buy_quantity(p, eq, 0, 1.0), 10);
        assert_eq!(Sizing::TargetWeight { weight: 0.5 }.buy_quantity(p, eq, 20, 1.0), 30);
        assert_eq!(Sizing::TargetWeight { weight: 0.1 }.buy_quantity(p, eq, 20, 1.0), 0);
        // Costs shrink the order so that it stays affordable.
        assert_eq!(Sizing::FixedAmount { amount: Won(100_000) }.buy_quantity(p, eq, 0, 1.001), 9);
    }
}
