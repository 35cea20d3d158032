//! Cash and positions of one mock account.
//!
//! The ledger refuses any change that would make cash or a position negative, so its
//! invariants hold by construction: cash ≥ 0, every quantity ≥ 0, and
//! equity = cash + Σ quantity × price.

use crate::money::{Price, Quantity, Won};
use serde::Serialize;

/// Shares held in one instrument, with their book cost (average-cost method, buy commissions
/// included) as Korean brokers show it (평균단가).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Position {
    pub quantity: Quantity,
    pub cost: Won,
}

impl Position {
    /// Average cost per share, or `None` when flat.
    #[must_use]
    pub fn average_cost(&self) -> Option<f64> {
        (!self.quantity.is_zero()).then(|| self.cost.get() as f64 / self.quantity.get() as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient cash: needs {needed} won, has {available} won")]
    InsufficientCash { needed: Won, available: Won },
    #[error("insufficient shares: sells {wanted}, holds {held}")]
    InsufficientShares { wanted: u64, held: u64 },
    #[error("slot {0} is not part of this ledger")]
    UnknownSlot(usize),
    #[error("starting cash must not be negative")]
    NegativeCash,
    #[error("amounts and charges must not be negative")]
    NegativeCharge,
}

/// Cash plus one position per instrument slot. Slots are indices the caller assigns (the
/// engine uses its market store's instrument indices), which keeps lookups O(1).
#[derive(Debug, Clone)]
pub struct Ledger {
    cash: Won,
    positions: Vec<Position>,
    /// Slots with a non-zero quantity, in the order they were opened.
    held: Vec<usize>,
    commissions: Won,
    taxes: Won,
}

/// What a sale did to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleOutcome {
    /// Net proceeds credited to cash.
    pub proceeds: Won,
    /// Book cost of the shares sold (average-cost method).
    pub cost_released: Won,
}

impl Ledger {
    /// # Errors
    /// [`LedgerError::NegativeCash`] for a negative starting balance.
    pub fn new(cash: Won, slots: usize) -> Result<Ledger, LedgerError> {
        if cash.get() < 0 {
            return Err(LedgerError::NegativeCash);
        }
        Ok(Ledger {
            cash,
            positions: vec![Position::default(); slots],
            held: Vec::new(),
            commissions: Won::ZERO,
            taxes: Won::ZERO,
        })
    }

    #[must_use]
    pub fn cash(&self) -> Won {
        self.cash
    }

    #[must_use]
    pub fn position(&self, slot: usize) -> Position {
        self.positions.get(slot).copied().unwrap_or_default()
    }

    /// Slots currently held, in the order they were opened.
    #[must_use]
    pub fn held(&self) -> &[usize] {
        &self.held
    }

    #[must_use]
    pub fn commissions_paid(&self) -> Won {
        self.commissions
    }

    #[must_use]
    pub fn taxes_paid(&self) -> Won {
        self.taxes
    }

    /// Whether a buy of `amount` plus `commission` is affordable.
    #[must_use]
    pub fn can_afford(&self, amount: Won, commission: Won) -> bool {
        amount + commission <= self.cash
    }

    /// Buys `quantity` at `price`, paying `commission` on top.
    ///
    /// # Errors
    /// [`LedgerError::InsufficientCash`] if cash would go negative; nothing changes then.
    pub fn buy(&mut self, slot: usize, quantity: Quantity, price: Price, commission: Won) -> Result<(), LedgerError> {
        if commission.get() < 0 {
            return Err(LedgerError::NegativeCharge);
        }
        let pos = self.positions.get_mut(slot).ok_or(LedgerError::UnknownSlot(slot))?;
        let amount = price.times(quantity);
        let needed = amount + commission;
        if needed > self.cash {
            return Err(LedgerError::InsufficientCash { needed, available: self.cash });
        }
        if pos.quantity.is_zero() && !quantity.is_zero() {
            self.held.push(slot);
        }
        pos.quantity = Quantity(pos.quantity.get() + quantity.get());
        pos.cost += needed;
        self.cash -= needed;
        self.commissions += commission;
        Ok(())
    }

    /// Sells `quantity` at `price`, deducting `commission` and `tax` from the proceeds.
    ///
    /// # Errors
    /// [`LedgerError::InsufficientShares`] when selling more than held; nothing changes then.
    pub fn sell(
        &mut self,
        slot: usize,
        quantity: Quantity,
        price: Price,
        commission: Won,
        tax: Won,
    ) -> Result<SaleOutcome, LedgerError> {
        if commission.get() < 0 || tax.get() < 0 {
            return Err(LedgerError::NegativeCharge);
        }
        let pos = self.positions.get_mut(slot).ok_or(LedgerError::UnknownSlot(slot))?;
        let held = pos.quantity.get();
        if quantity.get() > held {
            return Err(LedgerError::InsufficientShares { wanted: quantity.get(), held });
        }
        let amount = price.times(quantity);
        // Charges are rates below 100%, so proceeds stay positive; the guard keeps cash ≥ 0
        // even for a caller passing absurd charges.
        let proceeds = amount - commission - tax;
        if (self.cash + proceeds).get() < 0 {
            return Err(LedgerError::InsufficientCash { needed: -proceeds, available: self.cash });
        }
        let remaining = held - quantity.get();
        let cost_released = if remaining == 0 {
            pos.cost
        } else {
            // Integer share of the book cost, so that released + remaining == cost exactly.
            Won((pos.cost.get() as i128 * quantity.get() as i128 / held as i128) as i64)
        };
        pos.cost -= cost_released;
        pos.quantity = Quantity(remaining);
        if remaining == 0 {
            self.held.retain(|s| *s != slot);
        }
        self.cash += proceeds;
        self.commissions += commission;
        self.taxes += tax;
        Ok(SaleOutcome { proceeds, cost_released })
    }

    /// Market value of all positions, priced by `price_of(slot)`.
    pub fn market_value(&self, mut price_of: impl FnMut(usize) -> Price) -> Won {
        self.held.iter().map(|&s| price_of(s).times(self.positions[s].quantity)).fold(Won::ZERO, |a, b| a + b)
    }

    /// Cash plus market value.
    pub fn equity(&self, price_of: impl FnMut(usize) -> Price) -> Won {
        self.cash + self.market_value(price_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(v: i64) -> Price {
        Price::new(v).unwrap()
    }

    #[test]
    fn buy_then_sell_moves_cash_by_amount_and_charges() {
        let mut l = Ledger::new(Won(1_000_000), 2).unwrap();
        l.buy(0, Quantity(10), p(50_000), Won(75)).unwrap();
        assert_eq!(l.cash(), Won(1_000_000 - 500_000 - 75));
        assert_eq!(l.position(0).cost, Won(500_075));
        let out = l.sell(0, Quantity(4), p(51_000), Won(30), Won(408)).unwrap();
        assert_eq!(out.proceeds, Won(204_000 - 30 - 408));
        assert_eq!(out.cost_released, Won(200_030));
        assert_eq!(l.position(0).quantity, Quantity(6));
        assert_eq!(l.commissions_paid(), Won(105));
        assert_eq!(l.taxes_paid(), Won(408));
    }

    #[test]
    fn overspending_and_overselling_change_nothing() {
        let mut l = Ledger::new(Won(100), 1).unwrap();
        assert!(matches!(l.buy(0, Quantity(2), p(50), Won(1)), Err(LedgerError::InsufficientCash { .. })));
        assert!(matches!(l.sell(0, Quantity(1), p(50), Won(0), Won(0)), Err(LedgerError::InsufficientShares { .. })));
        assert_eq!(l.cash(), Won(100));
        assert!(l.held().is_empty());
        assert!(matches!(l.buy(3, Quantity(1), p(1), Won(0)), Err(LedgerError::UnknownSlot(3))));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Buy { slot: usize, qty: u64, price: i64, fee_bps: u64 },
        Sell { slot: usize, qty: u64, price: i64, fee_bps: u64, tax_bps: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, 0..500u64, 1..300_000i64, 0..50u64).prop_map(|(slot, qty, price, fee_bps)| Op::Buy {
                slot,
                qty,
                price,
                fee_bps
            }),
            (0..4usize, 0..500u64, 1..300_000i64, 0..50u64, 0..40u64)
                .prop_map(|(slot, qty, price, fee_bps, tax_bps)| Op::Sell { slot, qty, price, fee_bps, tax_bps }),
        ]
    }

    proptest! {
        /// Whatever sequence of trades is attempted, cash and positions never go negative,
        /// charges are whole non-negative won, and equity = cash + Σ qty × price.
        #[test]
        fn ledger_invariants_hold(start in 0..50_000_000i64, ops in proptest::collection::vec(op(), 1..60)) {
            let mut l = Ledger::new(Won(start), 4).unwrap();
            let mut last_price = [1i64; 4];
            let mut paid = Won::ZERO;
            for o in ops {
                match o {
                    Op::Buy { slot, qty, price, fee_bps } => {
                        let fee = crate::Rate::from_bps(fee_bps).charge(Won(price * qty as i64));
                        prop_assert!(fee.get() >= 0);
                        if l.buy(slot, Quantity(qty), p(price), fee).is_ok() { paid += fee; }
                        last_price[slot] = price;
                    }
                    Op::Sell { slot, qty, price, fee_bps, tax_bps } => {
                        let amount = Won(price * qty as i64);
                        let fee = crate::Rate::from_bps(fee_bps).charge(amount);
                        let tax = crate::Rate::from_bps(tax_bps).charge(amount);
                        prop_assert!(fee.get() >= 0 && tax.get() >= 0);
                        if l.sell(slot, Quantity(qty), p(price), fee, tax).is_ok() { paid += fee + tax; }
                        last_price[slot] = price;
                    }
                }
                prop_assert!(l.cash().get() >= 0);
                let mut sum = 0i64;
                for (s, price) in last_price.iter().enumerate() {
                    let q = l.position(s).quantity.get();
                    prop_assert_eq!(l.held().contains(&s), q > 0);
                    prop_assert!(l.position(s).cost.get() >= 0);
                    sum += q as i64 * price;
                }
                prop_assert_eq!(l.equity(|s| p(last_price[s])), Won(l.cash().get() + sum));
            }
            prop_assert_eq!(l.commissions_paid() + l.taxes_paid(), paid);
        }
    }
}
