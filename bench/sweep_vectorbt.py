#!/usr/bin/env python3
"""vectorbt's time for an SMA-cross parameter grid, the reference for `haechi sweep`.

Every (fast, slow) pair of the grid is one portfolio over all tickers with shared cash:
entries when the fast simple moving average of closes crosses above the slow one, exits when
it crosses below, decided at a close and filled at the next session's open.

Usage (the venv of bench/sweep_bench.sh has vectorbt):
  python bench/sweep_vectorbt.py --data MARKET [--fast 5..50:5] [--slow 60..150:10]
      [--fees 0.00015] [--capital 100000000] [--amount 10000000] [--out results.csv]

MARKET is a folder of `TICKER.csv` files (`date,open,high,low,close,volume`, integer won), as
`haechi data synth` writes; files whose name is not a 6-character ticker (`instruments.csv`,
`synthetic.json`, `index/`) are ignored.

The whole pipeline (indicators, signals, simulation, metrics) runs twice on the loaded data:
the first call includes numba's compilation (or loading its on-disk cache, see --cold-jit),
the second is warm. Both are what a user waits for, so both are printed; the last line of
output is one JSON object with the figures.

Modelling, chosen so that a Haechi scenario can say the same thing (see bench/sweep_bench.sh):
* Signals at the close of session t execute at the open of t+1: entries and exits are shifted
  one row forward and `price` is the open. Haechi: `execution.fill = "next_open"`.
* Sizing is a fixed amount of won per entry, in whole shares priced at the decision close,
  bought only if the cash covers them: `size_type="amount"` with
  size = ⌊amount / (close × (1 + fees))⌋ shifted with the signals, `allow_partial=False`.
  That is Haechi's `sizing.type = "fixed_amount"`, rejected (`insufficient_cash`) when the
  amount + commission at the open exceeds cash. (`size_type="value"` with
  `size_granularity=1` would turn every rounded-down order into a rejected partial fill.)
  vectorbt's signal simulation cannot size by equity: its `size_type="percent"` is a share of
  the *cash* left at that moment (each new entry smaller than the last), and target sizes are
  refused with signals; so Haechi's default of 10% of equity has no counterpart here.
* `fees` is charged on both sides as a fraction of the executed amount (Haechi's
  `commission_rate`). vectorbt has no sell-only transaction tax, which Haechi always charges;
  no slippage (Haechi: `slippage_bps = 0`), no volume cap (Haechi: `participation = 1.0`).
* Within a session sells go before buys so their proceeds fund the buys (`call_seq="auto"`),
  as in Haechi; the buys then go by order value here and by ticker in Haechi, which decides
  which entries are refused when cash runs short.
* Open positions are valued at the last close, not liquidated.
* A session without a bar is NaN: vectorbt's averages restart after such a gap, where Haechi's
  skip it (the synthetic markets have none).
* Sharpe ratio: mean / std (ddof 1) of daily returns × √252; max drawdown negative;
  both as in docs/metrics.md. `trades` counts closed round trips.
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def parse_range(text):
    """`lo..hi:step`, inclusive (`5..50:5` is 5, 10, …, 50); `lo..hi` steps by 1; `n` alone."""
    if ".." not in text:
        return [int(text)]
    lo, rest = text.split("..", 1)
    hi, step = (rest.split(":", 1) + ["1"])[:2]
    lo, hi, step = int(lo), int(hi), int(step)
    if step <= 0 or lo > hi:
        raise argparse.ArgumentTypeError(f"bad range {text!r}: expected lo..hi:step with lo <= hi, step > 0")
    return list(range(lo, hi + 1, step))


def args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="folder of TICKER.csv files")
    p.add_argument("--fast", default="5..50:5", type=parse_range, help="fast windows, lo..hi:step (5..50:5)")
    p.add_argument("--slow", default="60..150:10", type=parse_range, help="slow windows, lo..hi:step (60..150:10)")
    p.add_argument("--fees", default=0.00015, type=float, help="per side, fraction of the amount (0.00015)")
    p.add_argument("--capital", default=100_000_000, type=float, help="starting cash per pair, won (100,000,000)")
    p.add_argument("--amount", default=None, type=float, help="won per entry (default: capital / 10)")
    p.add_argument("--out", default=Path("results.csv"), type=Path, help="per-pair metrics CSV (results.csv)")
    p.add_argument("--engine", default="auto", choices=["auto", "numba", "rust"],
                   help="vectorbt engine (auto: Rust kernels where vectorbt-rust is installed and has one, else numba)")
    p.add_argument("--cold-jit", action="store_true",
                   help="compile with an empty numba cache, as on the first run after installing vectorbt")
    return p


def load(data_dir):
    """Wide (sessions × tickers) close and open frames, NaN where a ticker has no bar."""
    import pandas as pd

    files = sorted(f for f in data_dir.iterdir() if f.suffix == ".csv" and len(f.stem) == 6 and f.is_file())
    if not files:
        sys.exit(f"no TICKER.csv files in {data_dir}")
    close, open_ = {}, {}
    for f in files:
        df = pd.read_csv(f, usecols=["date", "open", "close"], index_col="date",
                         dtype={"open": "float64", "close": "float64"})
        close[f.stem] = df["close"]
        open_[f.stem] = df["open"]
    close = pd.DataFrame(close).sort_index()
    open_ = pd.DataFrame(open_).reindex(index=close.index, columns=close.columns)
    close.index = open_.index = pd.to_datetime(close.index)
    close.columns.name = open_.columns.name = "ticker"
    return close, open_


def sweep(vbt, np, close, open_, fast, slow, fees, capital, amount):
    """One full grid: returns (metrics per pair, {stage: seconds})."""
    import pandas as pd

    t = {}
    t0 = time.perf_counter()
    # Pair k is (fast[k // len(slow)], slow[k % len(slow)]). MA computes each distinct window
    # once (its cache function) and fans the results out to the 100 pairs.
    fw = np.repeat(fast, len(slow))
    sw = np.tile(slow, len(fast))
    fast_ma = vbt.MA.run(close, fw, short_name="fast")
    slow_ma = vbt.MA.run(close, sw, short_name="slow")
    # Columns (fast_window, slow_window, ticker): 100 pairs × tickers.
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    # Decided at close t, executed at open t+1.
    entries = entries.vbt.fshift(1, fill_value=False)
    exits = exits.vbt.fshift(1, fill_value=False)
    # Whole shares for `amount` won at the decision close, commission included (per ticker;
    # vectorbt broadcasts it to every pair).
    shares = np.floor(amount / (close.shift(1) * (1.0 + fees)))
    t1 = time.perf_counter()
    t["indicators_s"] = t1 - t0

    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=open_,
        # Fixed won per entry in whole shares at the decision close, all or nothing: Haechi's
        # fixed_amount sizing (see the module docstring for why not a share of equity).
        size=shares,
        size_type="amount",
        allow_partial=False,
        fees=fees,
        init_cash=capital,
        group_by=["fast_window", "slow_window"],
        cash_sharing=True,
        call_seq="auto",
        direction="longonly",
        freq="1D",
    )
    t2 = time.perf_counter()
    t["simulate_s"] = t2 - t1

    trades = pf.trades.closed.count()
    m = pd.DataFrame({
        "total_return": pf.total_return(),
        "sharpe": pf.sharpe_ratio(),
        "max_drawdown": pf.max_drawdown(),
        "trades": trades,
    })
    m.index.names = ["fast", "slow"]
    t3 = time.perf_counter()
    t["metrics_s"] = t3 - t2
    t["total_s"] = t3 - t0
    return m, t


def main():
    args = args_parser().parse_args()
    if args.cold_jit:
        # Must be set before numba is imported.
        import atexit
        import shutil
        import tempfile
        cache = tempfile.mkdtemp(prefix="numba-cold-")
        os.environ["NUMBA_CACHE_DIR"] = cache
        atexit.register(shutil.rmtree, cache, True)
    fast, slow = args.fast, args.slow
    bad = [(f, s) for f in fast for s in slow if f >= s]
    if bad:
        sys.exit(f"every fast window must be below every slow one; found {bad[:3]}")
    amount = args.amount if args.amount is not None else args.capital / 10

    t0 = time.perf_counter()
    import numpy as np
    import vectorbt as vbt
    import_s = time.perf_counter() - t0
    vbt.settings["engine"] = args.engine
    # Annualise over 252 sessions, as Haechi's metrics do.
    vbt.settings.returns["year_freq"] = "252 days"
    try:
        from vectorbt._engine import is_rust_available
        rust = is_rust_available()
    except ImportError:  # vectorbt before 1.0: numba only
        rust = False
    # "auto" takes Rust for each function that has a Rust kernel for its arguments and numba
    # for the rest; "rust" refuses the calls it cannot take (bool signals among them).
    engine = {"auto": "rust+numba" if rust else "numba"}.get(args.engine, args.engine)

    t0 = time.perf_counter()
    close, open_ = load(args.data)
    load_s = time.perf_counter() - t0
    sessions, tickers = close.shape
    pairs = len(fast) * len(slow)

    print(f"vectorbt {vbt.__version__} ({engine} engine), numpy {np.__version__}; "
          f"{pairs} pairs × {tickers} tickers × {sessions} sessions "
          f"({close.index[0].date()} to {close.index[-1].date()})", flush=True)
    print(f"import vectorbt: {import_s:.2f} s; load {tickers} CSV files: {load_s:.2f} s", flush=True)

    runs = []
    for label in ("first (with JIT)" if not args.cold_jit else "first (cold JIT)", "warm"):
        metrics, t = sweep(vbt, np, close, open_, fast, slow, args.fees, args.capital, amount)
        runs.append(t)
        print(f"{label:>18}: {t['total_s']:6.2f} s = indicators+signals {t['indicators_s']:.2f} + "
              f"simulation {t['simulate_s']:.2f} + metrics {t['metrics_s']:.2f}", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    metrics.reset_index().to_csv(args.out, index=False, float_format="%.10g")
    best = metrics["sharpe"].idxmax()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bar_steps = pairs * tickers * sessions
    print(f"{bar_steps:,} bar-steps; warm: {bar_steps / runs[1]['total_s'] / 1e6:.1f} M bar-steps/s; "
          f"max RSS {rss_kib / 1024:.0f} MiB; best Sharpe {metrics['sharpe'].max():.3f} at "
          f"fast={best[0]}, slow={best[1]}; {int(metrics['trades'].sum()):,} closed trades; wrote {args.out}")
    print(json.dumps({
        "tool": "vectorbt",
        "version": vbt.__version__,
        "engine": engine,
        "pairs": pairs,
        "tickers": tickers,
        "sessions": sessions,
        "bar_steps": bar_steps,
        "import_s": round(import_s, 3),
        "load_s": round(load_s, 3),
        "first_s": round(runs[0]["total_s"], 3),
        "warm_s": round(runs[1]["total_s"], 3),
        "first": {k: round(v, 3) for k, v in runs[0].items()},
        "warm": {k: round(v, 3) for k, v in runs[1].items()},
        "cold_jit": args.cold_jit,
        "max_rss_kib": rss_kib,
    }))


if __name__ == "__main__":
    main()
