//! Periodic rebalancing to fixed target weights.

use super::{Context, OrderRequest, Strategy, rebalance_to, starts_new_period};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceFrequency {
    Weekly,
    Monthly,
    Quarterly,
}

/// Holds fixed weights, restored at the first close of every month or quarter.
#[derive(Debug, Clone)]
pub struct Rebalance {
    /// (slot, weight) pairs; weights sum to at most 1.
    targets: Vec<(usize, f64)>,
    frequency: RebalanceFrequency,
    last: Option<NaiveDate>,
}

impl Rebalance {
    #[must_use]
    pub fn new(targets: Vec<(usize, f64)>, frequency: RebalanceFrequency) -> Rebalance {
        Rebalance { targets, frequency, last: None }
    }
}

impl Strategy for Rebalance {
    fn name(&self) -> &'static str {
        "rebalance"
    }

    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        let today = ctx.market.date();
        if !starts_new_period(self.last, today, self.frequency) {
            return;
        }
        // Names without a price yet are skipped this period rather than bought blind.
        let priced: Vec<(usize, f64)> =
            self.targets.iter().copied().filter(|(s, _)| ctx.market.last_close(*s).is_some()).collect();
        if priced.is_empty() {
            return;
        }
        self.last = Some(today);
        rebalance_to(ctx, &priced, out);
    }
}
