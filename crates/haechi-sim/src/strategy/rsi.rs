//! RSI mean reversion.

use super::{Context, MarketView, OrderRequest, Sizing, Strategy};
use haechi_core::{OrderKind, Side};

/// Buys a name when Wilder's RSI over `period` bars falls below `oversold`, sells the whole
/// position when it rises above `overbought`.
#[derive(Debug, Clone)]
pub struct RsiReversion {
    period: usize,
    oversold: f64,
    overbought: f64,
    sizing: Sizing,
    state: Vec<Wilder>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Wilder {
    prev: u32,
    seen: usize,
    avg_gain: f64,
    avg_loss: f64,
}

impl Wilder {
    /// Feeds one close; returns the RSI once `period` changes have been seen.
    fn push(&mut self, close: u32, period: usize) -> Option<f64> {
        if self.seen == 0 {
            self.prev = close;
            self.seen = 1;
            return None;
        }
        let change = f64::from(close) - f64::from(self.prev);
        self.prev = close;
        let (gain, loss) = (change.max(0.0), (-change).max(0.0));
        let n = period as f64;
        if self.seen <= period {
            // Seed with the simple average of the first `period` changes.
            self.avg_gain += gain / n;
            self.avg_loss += loss / n;
        } else {
            self.avg_gain = (self.avg_gain * (n - 1.0) + gain) / n;
            self.avg_loss = (self.avg_loss * (n - 1.0) + loss) / n;
        }
        self.seen += 1;
        if self.seen <= period {
            return None;
        }
        Some(if self.avg_loss == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss) })
    }
}

impl RsiReversion {
    #[must_use]
    pub fn new(period: usize, oversold: f64, overbought: f64, sizing: Sizing) -> RsiReversion {
        RsiReversion { period, oversold, overbought, sizing, state: Vec::new() }
    }
}

impl Strategy for RsiReversion {
    fn name(&self) -> &'static str {
        "rsi_reversion"
    }

    fn on_history(&mut self, market: &MarketView<'_>, universe: &[usize]) {
        if self.state.len() != universe.len() {
            self.state = vec![Wilder::default(); universe.len()];
        }
        for (i, &slot) in universe.iter().enumerate() {
            if let Some(price) = market.close(slot) {
                let _ = self.state[i].push(price.get() as u32, self.period);
            }
        }
    }

    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        if self.state.len() != ctx.universe.len() {
            self.state = vec![Wilder::default(); ctx.universe.len()];
        }
        for (i, &slot) in ctx.universe.iter().enumerate() {
            let Some(price) = ctx.market.close(slot) else { continue };
            let Some(rsi) = self.state[i].push(price.get() as u32, self.period) else { continue };
            let held = ctx.portfolio.quantity(slot);
            if rsi < self.oversold && held == 0 {
                let qty = self.sizing.buy_quantity(price, ctx.portfolio.equity, held, ctx.buy_cost_factor);
                if qty > 0 {
                    out.push(OrderRequest { slot, side: Side::Buy, quantity: qty, kind: OrderKind::Market });
                }
            } else if rsi > self.overbought && held > 0 {
                out.push(OrderRequest { slot, side: Side::Sell, quantity: held, kind: OrderKind::Market });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wilder's RSI computed the textbook way, in one pass over the whole series.
    fn reference_rsi(closes: &[f64], period: usize) -> Vec<Option<f64>> {
        let mut out = vec![None; closes.len()];
        let changes: Vec<f64> = closes.windows(2).map(|w| w[1] - w[0]).collect();
        if changes.len() < period {
            return out;
        }
        let mut g = changes[..period].iter().map(|c| c.max(0.0)).sum::<f64>() / period as f64;
        let mut l = changes[..period].iter().map(|c| (-c).max(0.0)).sum::<f64>() / period as f64;
        let rsi = |g: f64, l: f64| if l == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + g / l) };
        out[period] = Some(rsi(g, l));
        for k in period..changes.len() {
            g = (g * (period as f64 - 1.0) + changes[k].max(0.0)) / period as f64;
            l = (l * (period as f64 - 1.0) + (-changes[k]).max(0.0)) / period as f64;
            out[k + 1] = Some(rsi(g, l));
        }
        out
    }

    #[test]
    fn wilder_rsi_matches_reference() {
        let closes: Vec<u32> = (0..120).map(|i| 10_000 + ((i * 37 + i * i * 11) % 997) as u32).collect();
        let reference = reference_rsi(&closes.iter().map(|c| f64::from(*c)).collect::<Vec<_>>(), 14);
        let mut w = Wilder::default();
        for (t, c) in closes.iter().enumerate() {
            let got = w.push(*c, 14);
            match (got, reference[t]) {
                (None, None) => {}
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "t={t}: {a} vs {b}"),
                other => panic!("t={t}: {other:?}"),
            }
        }
    }
}
