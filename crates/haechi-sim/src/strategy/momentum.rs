//! Cross-sectional momentum rotation.

use super::{Context, OrderRequest, RebalanceFrequency, Strategy, rebalance_to, starts_new_period};
use chrono::NaiveDate;

/// Every period, ranks the universe by the return from `lookback + skip` sessions ago to
/// `skip` sessions ago (skipping the most recent month avoids short-term reversal) and holds
/// the top `top_n` in equal weight. Names without a close on both ends are not ranked.
#[derive(Debug, Clone)]
pub struct MomentumRotation {
    lookback: usize,
    skip: usize,
    top_n: usize,
    frequency: RebalanceFrequency,
    last: Option<NaiveDate>,
    scores: Vec<(f64, usize)>,
}

impl MomentumRotation {
    #[must_use]
    pub fn new(lookback: usize, skip: usize, top_n: usize, frequency: RebalanceFrequency) -> MomentumRotation {
        MomentumRotation { lookback, skip, top_n, frequency, last: None, scores: Vec::new() }
    }
}

impl Strategy for MomentumRotation {
    fn name(&self) -> &'static str {
        "momentum_rotation"
    }

    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        let today = ctx.market.today();
        let date = ctx.market.date();
        if today < self.lookback + self.skip || !starts_new_period(self.last, date, self.frequency) {
            return;
        }
        let (end, start) = (today - self.skip, today - self.skip - self.lookback);
        self.scores.clear();
        for &slot in ctx.universe {
            let closes = ctx.market.closes(slot);
            let (a, b) = (closes[start], closes[end]);
            // Only names trading today are bought: tomorrow's open must be reachable.
            if a != 0 && b != 0 && closes[today] != 0 {
                self.scores.push((f64::from(b) / f64::from(a) - 1.0, slot));
            }
        }
        if self.scores.is_empty() {
            return;
        }
        self.last = Some(date);
        let n = self.top_n.min(self.scores.len());
        // Ties broken by slot so the pick never depends on sort stability.
        let by_score_desc = |x: &(f64, usize), y: &(f64, usize)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
        if n < self.scores.len() {
            self.scores.select_nth_unstable_by(n - 1, by_score_desc);
            self.scores.truncate(n);
        }
        self.scores.sort_unstable_by(by_score_desc);
        let weight = 1.0 / n as f64;
        let targets: Vec<(usize, f64)> = self.scores.iter().map(|(_, s)| (*s, weight)).collect();
        rebalance_to(ctx, &targets, out);
    }
}
