//! Engine throughput on a synthetic whole market: 2,000 tickers × 2,500 sessions, monthly
//! `momentum_rotation` top 20. Prints bar-steps per second (divan's item throughput) and the
//! market store's bytes per bar. Run: `cargo bench -p haechi-sim --bench engine`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::NaiveDate;
use divan::counter::ItemsCount;
use haechi_core::{MarketStore, Won};
use haechi_data::synth::{self, SynthConfig};
use haechi_sim::engine::{self, EngineConfig, FillTiming, TaxBasis};
use haechi_sim::strategy::{MomentumRotation, RebalanceFrequency, Sizing, SmaCross};
use std::sync::OnceLock;

const TICKERS: usize = 2_000;
const SESSIONS: usize = 2_500;

fn market() -> &'static MarketStore {
    static STORE: OnceLock<MarketStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let from = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
        // The synthetic calendar's 2,500th session, so the market is exactly 2,500 long.
        let sessions = synth::synth_sessions(from, NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default());
        let to = sessions.get(SESSIONS - 1).copied().unwrap_or_default();
        synth::generate(&SynthConfig { seed: 7, tickers: TICKERS, from, to }).unwrap_or_else(|e| {
            eprintln!("cannot generate the benchmark market: {e}");
            std::process::exit(1)
        })
    })
}

fn config(store: &MarketStore) -> EngineConfig {
    EngineConfig {
        capital: Won(1_000_000_000),
        start: 0,
        end: store.n_days() - 1,
        fill: FillTiming::NextOpen,
        slippage_bps: 10,
        participation: 0.1,
        locked_limit_share: 0.05,
        commission: haechi_core::krx::DEFAULT_COMMISSION,
        tax_basis: TaxBasis::Settlement,
        max_order_value: None,
        max_position_weight: None,
        cash_reserve: 0.01,
        liquidate_at_end: false,
    }
}

#[divan::bench(sample_count = 20)]
fn momentum_rotation_top20_monthly(bencher: divan::Bencher) {
    let store = market();
    let universe: Vec<usize> = (0..store.n_instruments()).collect();
    let cfg = config(store);
    bencher.counter(ItemsCount::new(store.n_instruments() * store.n_days())).bench(|| {
        let mut strategy = MomentumRotation::new(120, 20, 20, RebalanceFrequency::Monthly);
        engine::run(store, &universe, &mut strategy, &cfg).map(|o| o.fills.len()).unwrap_or(0)
    });
}

/// A strategy that reads every bar of every name every session, for comparison: its
/// throughput bounds what a per-bar strategy over the whole market costs.
#[divan::bench(sample_count = 10)]
fn sma_cross_20_60_every_bar(bencher: divan::Bencher) {
    let store = market();
    let universe: Vec<usize> = (0..store.n_instruments()).collect();
    let cfg = config(store);
    bencher.counter(ItemsCount::new(store.n_instruments() * store.n_days())).bench(|| {
        let mut strategy = SmaCross::new(20, 60, Sizing::PercentOfEquity { percent: 1.0 });
        engine::run(store, &universe, &mut strategy, &cfg).map(|o| o.fills.len()).unwrap_or(0)
    });
}

fn main() {
    let store = market();
    let cells = store.n_instruments() * store.n_days();
    let bars = store.bar_count();
    println!(
        "market store: {} tickers × {} sessions = {} bars; {} heap bytes = {:.1} bytes per bar",
        store.n_instruments(),
        store.n_days(),
        bars,
        store.heap_bytes(),
        store.heap_bytes() as f64 / cells.max(1) as f64
    );
    divan::main();
}
