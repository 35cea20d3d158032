//! Closed trades from fills, matched first-in first-out, for trade statistics.

use chrono::NaiveDate;
use haechi_core::{Fill, Side, Ticker, Won};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// One sell fill matched against the buys it closes (FIFO).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    pub ticker: Ticker,
    /// Trade date of the oldest lot this sale closed.
    pub entry_date: NaiveDate,
    pub exit_date: NaiveDate,
    pub quantity: u64,
    /// What the shares cost, buy commissions included.
    pub cost: Won,
    /// What the sale brought in, net of commission and tax.
    pub proceeds: Won,
    pub pnl: Won,
    /// Sessions held, weighted by shares across the lots closed.
    pub holding_sessions: f64,
}

#[derive(Debug, Clone, Copy)]
struct Lot {
    qty: u64,
    /// Remaining cost of this lot (shrinks as shares are taken, exactly).
    cost: i64,
    session: usize,
    date: NaiveDate,
}

/// Matches sells to earlier buys per ticker. `sessions` are the store's dates, used to count
/// holding periods in trading sessions.
#[must_use]
pub fn closed_trades(fills: &[Fill], sessions: &[NaiveDate]) -> Vec<ClosedTrade> {
    let session_of = |d: NaiveDate| sessions.partition_point(|s| *s < d);
    let mut lots: BTreeMap<Ticker, VecDeque<Lot>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in fills {
        let queue = lots.entry(f.ticker).or_default();
        match f.side {
            Side::Buy => queue.push_back(Lot {
                qty: f.quantity.get(),
                cost: (f.amount + f.commission).get(),
                session: session_of(f.trade_date),
                date: f.trade_date,
            }),
            Side::Sell => {
                let exit = session_of(f.trade_date);
                let mut left = f.quantity.get();
                let (mut cost, mut weighted, mut entry) = (0i64, 0f64, None);
                while left > 0 {
                    let Some(lot) = queue.front_mut() else { break };
                    let take = left.min(lot.qty);
                    // Integer share of the lot's cost; the last share taken gets the remainder.
                    let part = if take == lot.qty {
                        lot.cost
                    } else {
                        (lot.cost as i128 * take as i128 / lot.qty as i128) as i64
                    };
                    cost += part;
                    weighted += take as f64 * exit.saturating_sub(lot.session) as f64;
                    entry.get_or_insert(lot.date);
                    lot.qty -= take;
                    lot.cost -= part;
                    left -= take;
                    if lot.qty == 0 {
                        queue.pop_front();
                    }
                }
                let matched = f.quantity.get() - left;
                if matched == 0 {
                    continue;
                }
                let proceeds = f.cash_flow().get();
                let proceeds = if left == 0 {
                    proceeds
                } else {
                    (proceeds as i128 * matched as i128 / f.quantity.get() as i128) as i64
                };
                out.push(ClosedTrade {
                    ticker: f.ticker,
                    entry_date: entry.unwrap_or(f.trade_date),
                    exit_date: f.trade_date,
                    quantity: matched,
                    cost: Won(cost),
                    proceeds: Won(proceeds),
                    pnl: Won(proceeds - cost),
                    holding_sessions: weighted / matched as f64,
                });
            }
        }
    }
    out
}

/// Win rate, profit factor and mean holding period of closed trades.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TradeStats {
    pub closed_trades: usize,
    /// Share of closed trades with a positive P&L.
    pub win_rate: Option<f64>,
    /// Gross profit / gross loss of closed trades; `None` without a losing trade.
    pub profit_factor: Option<f64>,
    /// Mean sessions held per closed trade (each weighted by shares within it).
    pub avg_holding_days: Option<f64>,
}

#[must_use]
pub fn trade_stats(trades: &[ClosedTrade]) -> TradeStats {
    let n = trades.len();
    if n == 0 {
        return TradeStats { closed_trades: 0, win_rate: None, profit_factor: None, avg_holding_days: None };
    }
    let wins = trades.iter().filter(|t| t.pnl.get() > 0).count();
    let gross_profit: i64 = trades.iter().map(|t| t.pnl.get().max(0)).sum();
    let gross_loss: i64 = trades.iter().map(|t| (-t.pnl.get()).max(0)).sum();
    TradeStats {
        closed_trades: n,
        win_rate: Some(wins as f64 / n as f64),
        profit_factor: (gross_loss > 0).then(|| gross_profit as f64 / gross_loss as f64),
        avg_holding_days: Some(trades.iter().map(|t| t.holding_sessions).sum::<f64>() / n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haechi_core::{OrderId, Price, Quantity};

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, day).unwrap()
    }

    fn fill(side: Side, day: u32, qty: u64, price: i64, commission: i64, tax: i64) -> Fill {
        Fill {
            order_id: OrderId(0),
            ticker: Ticker::parse("005930").unwrap(),
            side,
            trade_date: d(day),
            settlement_date: d(day),
            quantity: Quantity(qty),
            price: Price::new(price).unwrap(),
            amount: Won(price * qty as i64),
            commission: Won(commission),
            tax: Won(tax),
        }
    }

    #[test]
    fn sells_close_the_oldest_lots_first() {
        let sessions: Vec<NaiveDate> = (2..=12).map(d).collect();
        let fills = [
            fill(Side::Buy, 2, 10, 1_000, 10, 0),   // cost 10,010
            fill(Side::Buy, 4, 10, 2_000, 20, 0),   // cost 20,020
            fill(Side::Sell, 8, 15, 3_000, 45, 90), // closes 10 from day 2 and 5 from day 4
            fill(Side::Sell, 10, 5, 500, 5, 10),
        ];
        let trades = closed_trades(&fills, &sessions);
        assert_eq!(trades.len(), 2);
        let t = &trades[0];
        assert_eq!(t.cost, Won(10_010 + 10_010));
        assert_eq!(t.proceeds, Won(45_000 - 45 - 90));
        assert_eq!(t.pnl, Won(45_000 - 135 - 20_020));
        assert_eq!(t.entry_date, d(2));
        // 10 shares held 6 sessions, 5 shares held 4 sessions.
        assert!((t.holding_sessions - (10.0 * 6.0 + 5.0 * 4.0) / 15.0).abs() < 1e-12);
        assert_eq!(trades[1].cost, Won(10_010));
        assert_eq!(trades[1].pnl, Won(2_500 - 15 - 10_010));
        let s = trade_stats(&trades);
        assert_eq!(s.win_rate, Some(0.5));
        let profit = (45_000 - 135 - 20_020) as f64;
        let loss = (10_010 - 2_485) as f64;
        assert!((s.profit_factor.unwrap() - profit / loss).abs() < 1e-12);
    }

    #[test]
    fn no_trades_no_statistics() {
        let s = trade_stats(&[]);
        assert_eq!((s.closed_trades, s.win_rate, s.profit_factor), (0, None, None));
    }
}
