//! Buy every name in the universe once, then hold.

use super::{Context, OrderRequest, Sizing, Strategy};
use haechi_core::{OrderKind, Side};

/// Buys each universe name on the first close it can be priced, sized by [`Sizing`]
/// (default: an equal share of equity each), and never sells.
#[derive(Debug, Clone)]
pub struct BuyAndHold {
    sizing: Option<Sizing>,
    bought: Vec<bool>,
}

impl BuyAndHold {
    /// `sizing = None` splits equity equally across the universe.
    #[must_use]
    pub fn new(sizing: Option<Sizing>) -> BuyAndHold {
        BuyAndHold { sizing, bought: Vec::new() }
    }
}

impl Strategy for BuyAndHold {
    fn name(&self) -> &'static str {
        "buy_and_hold"
    }

    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        if self.bought.len() != ctx.universe.len() {
            self.bought = vec![false; ctx.universe.len()];
        }
        let n = ctx.universe.len().max(1) as f64;
        let sizing = self.sizing.unwrap_or(Sizing::TargetWeight { weight: (1.0 - ctx.cash_reserve) / n });
        for (i, &slot) in ctx.universe.iter().enumerate() {
            if self.bought[i] {
                continue;
            }
            let Some(price) = ctx.market.close(slot) else { continue };
            let held = ctx.portfolio.quantity(slot);
            let qty = sizing.buy_quantity(price, ctx.portfolio.equity, held, ctx.buy_cost_factor);
            self.bought[i] = true;
            if qty > 0 {
                out.push(OrderRequest { slot, side: Side::Buy, quantity: qty, kind: OrderKind::Market });
            }
        }
    }
}
