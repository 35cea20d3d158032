#!/usr/bin/env bash
# End-to-end timing of `haechi simulate` on a whole synthetic market: 2,000 tickers × ~2,500
# sessions, monthly momentum rotation top 20 (load CSV, run, write JSON + HTML reports).
# Usage: bench/simulate_e2e.sh [workdir]   (needs ~250 MB free in workdir)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
cargo build --release --quiet
bin=target/release/haechi
if [ ! -f "$work/market/synthetic.json" ]; then
  /usr/bin/time -f "synth: %e s wall, %M KiB max RSS" \
    "$bin" data synth --seed 7 --tickers 2000 --from 2015-01-01 --to 2024-12-31 --out "$work/market"
fi
echo "files: $(ls "$work/market" | wc -l), size: $(du -sh "$work/market" | cut -f1)"
for i in 1 2 3; do
  /usr/bin/time -f "simulate run $i: %e s wall, %U s user, %M KiB max RSS" \
    "$bin" simulate --scenario bench/momentum_2000.toml --data "$work/market" \
      --out "$work/report.json" --html "$work/report.html" --quiet
done
echo "report: $(du -h "$work/report.json" | cut -f1) JSON, $(du -h "$work/report.html" | cut -f1) HTML"
