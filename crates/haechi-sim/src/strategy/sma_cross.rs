//! Moving-average crossover.

use super::{Context, MarketView, OrderRequest, Sizing, Strategy};
use haechi_core::{OrderKind, Side};

/// Per name: buy when the `fast` simple moving average of closes crosses above the `slow`
/// one, sell the whole position when it crosses back below. Averages are over the name's
/// last bars (sessions without a bar are skipped), kept incrementally so a day costs O(1)
/// per name.
#[derive(Debug, Clone)]
pub struct SmaCross {
    fast: usize,
    slow: usize,
    sizing: Sizing,
    state: Vec<Averages>,
}

#[derive(Debug, Clone, Default)]
struct Averages {
    /// Last `slow` closes, oldest first once full (ring buffer).
    ring: Vec<u32>,
    head: usize,
    sum_fast: u64,
    sum_slow: u64,
    /// Sign of fast − slow on the previous bar: None until both averages exist.
    above: Option<bool>,
}

impl Averages {
    fn push(&mut self, close: u32, fast: usize, slow: usize) -> Option<bool> {
        let c = u64::from(close);
        if self.ring.len() < slow {
            self.ring.push(close);
            let n = self.ring.len();
            self.sum_slow += c;
            self.sum_fast += c;
            if n > fast {
                self.sum_fast -= u64::from(self.ring[n - 1 - fast]);
            }
        } else {
            // ring[head] is the oldest close; the one leaving the fast window is `fast` back.
            let leaving_slow = self.ring[self.head];
            let leaving_fast = self.ring[(self.head + slow - fast) % slow];
            self.ring[self.head] = close;
            self.head = (self.head + 1) % slow;
            self.sum_slow = self.sum_slow + c - u64::from(leaving_slow);
            self.sum_fast = self.sum_fast + c - u64::from(leaving_fast);
        }
        (self.ring.len() == slow).then(|| {
            // Compare fast/slow means without division: fast_sum × slow > slow_sum × fast.
            u128::from(self.sum_fast) * slow as u128 > u128::from(self.sum_slow) * fast as u128
        })
    }
}

impl SmaCross {
    /// `fast < slow` is checked by the scenario validator.
    #[must_use]
    pub fn new(fast: usize, slow: usize, sizing: Sizing) -> SmaCross {
        SmaCross { fast, slow, sizing, state: Vec::new() }
    }
}

impl SmaCross {
    fn ensure_state(&mut self, n: usize) {
        if self.state.len() != n {
            self.state = vec![Averages::default(); n];
        }
    }
}

impl Strategy for SmaCross {
    fn name(&self) -> &'static str {
        "sma_cross"
    }

    fn on_history(&mut self, market: &MarketView<'_>, universe: &[usize]) {
        self.ensure_state(universe.len());
        for (i, &slot) in universe.iter().enumerate() {
            if let Some(price) = market.close(slot) {
                let st = &mut self.state[i];
                if let Some(above) = st.push(price.get() as u32, self.fast, self.slow) {
                    st.above = Some(above);
                }
            }
        }
    }

    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        self.ensure_state(ctx.universe.len());
        for (i, &slot) in ctx.universe.iter().enumerate() {
            let Some(price) = ctx.market.close(slot) else { continue };
            let st = &mut self.state[i];
            let Some(above) = st.push(price.get() as u32, self.fast, self.slow) else { continue };
            let was = st.above.replace(above);
            let held = ctx.portfolio.quantity(slot);
            match (was, above) {
                (Some(false), true) if held == 0 => {
                    let qty = self.sizing.buy_quantity(price, ctx.portfolio.equity, held, ctx.buy_cost_factor);
                    if qty > 0 {
                        out.push(OrderRequest { slot, side: Side::Buy, quantity: qty, kind: OrderKind::Market });
                    }
                }
                (Some(true), false) if held > 0 => {
                    out.push(OrderRequest { slot, side: Side::Sell, quantity: held, kind: OrderKind::Market });
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_averages_match_direct_ones() {
        let closes: Vec<u32> = (0..200).map(|i| 1_000 + ((i * 7919) % 503) as u32).collect();
        let (fast, slow) = (5, 20);
        let mut a = Averages::default();
        for (t, c) in closes.iter().enumerate() {
            let got = a.push(*c, fast, slow);
            if t + 1 < slow {
                assert_eq!(got, None);
                continue;
            }
            let mean = |n: usize| closes[t + 1 - n..=t].iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
            assert_eq!(got, Some(mean(fast) > mean(slow)), "t={t}");
        }
    }
}
