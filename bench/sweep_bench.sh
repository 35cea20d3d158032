#!/usr/bin/env bash
# Parameter sweep against vectorbt on the same data in the same run: sma_cross over the
# 100-pair grid fast 5..50:5 × slow 60..150:10, 200 synthetic tickers × ~2,500 sessions.
# vectorbt (in its own venv, created here when missing) runs the grid twice in one process:
# first call with numba's compilation, then warm; then `haechi sweep` runs three times.
# Usage: bench/sweep_bench.sh [workdir]
#   HAECHI_BENCH_VENV  venv for vectorbt (default ~/.cache/haechi-bench-venv, ~900 MB)
#   VECTORBT_VERSION   vectorbt to install into a new venv (default 1.2.0)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
venv="${HAECHI_BENCH_VENV:-$HOME/.cache/haechi-bench-venv}"
py="$venv/bin/python"

fresh=
if ! "$py" -c 'import vectorbt' 2>/dev/null; then
  fresh=1
  echo "creating $venv with vectorbt ${VECTORBT_VERSION:-1.2.0} (about a minute)"
  python3 -m venv "$venv"
  # With the default, the versions the figures in bench/README.md were measured with.
  pins=(numpy==2.4.6 pandas==3.1.1 numba==0.68.1)
  [ -n "${VECTORBT_VERSION:-}" ] && pins=()
  "$venv/bin/pip" install --quiet "vectorbt==${VECTORBT_VERSION:-1.2.0}" "${pins[@]}"
fi

cargo build --release --quiet
bin=target/release/haechi
if [ ! -f "$work/market/synthetic.json" ]; then
  "$bin" data synth --seed 42 --tickers 200 --from 2015-01-01 --to 2024-12-31 --out "$work/market"
fi

# The same model as bench/sweep_vectorbt.py (its docstring explains each choice): a fixed
# 10,000,000 won per entry (vectorbt's signal simulation cannot size by equity), whole shares
# at the decision close, filled at the next open with no slippage and no volume cap, 0.015%
# commission each side. Haechi also charges the sell tax, which vectorbt does not model.
cat > "$work/sma.toml" <<'EOF'
name = "sma_cross sweep vs vectorbt"
capital = 100_000_000

[period]
start = 2015-01-01
end = 2024-12-31

[universe]
all = true

[strategy]
type = "sma_cross"
fast = 5
slow = 60

[sizing]
type = "fixed_amount"
amount = 10_000_000

[execution]
fill = "next_open"
slippage_bps = 0
participation = 1.0
commission_rate = 0.00015
EOF

echo "== vectorbt: 100 pairs, first call (with JIT) and warm, one process"
"$py" bench/sweep_vectorbt.py --data "$work/market" --fast 5..50:5 --slow 60..150:10 \
  --fees 0.00015 --capital 100000000 --amount 10000000 --out "$work/vectorbt.csv" \
  | tee "$work/vectorbt.log"
tail -n 1 "$work/vectorbt.log" > "$work/vectorbt.json"
if [ -n "$fresh" ]; then
  echo "(new venv: numba's on-disk cache was empty, so the first call compiled everything;" \
    "a second run of this script gives the usual first-call time)"
fi

sweep=("$bin" sweep --scenario "$work/sma.toml" --data "$work/market"
  --grid 'strategy.fast=5..50:5' --grid 'strategy.slow=60..150:10' --out "$work/sweep.csv" --quiet)
echo "== haechi sweep: the same 100 pairs"
for i in 1 2 3; do
  /usr/bin/time -o "$work/time.$i" -f "%e %U %M" "${sweep[@]}" --json "$work/sweep.json"
  read -r wall user rss < "$work/time.$i"
  echo "haechi sweep run $i: $wall s wall, $user s user, $rss KiB max RSS"
done
/usr/bin/time -o "$work/time.1t" -f "%e %U %M" "${sweep[@]}" --json "$work/sweep-1t.json" --threads 1
read -r wall user rss < "$work/time.1t"
echo "haechi sweep --threads 1: $wall s wall, $user s user, $rss KiB max RSS"

"$py" - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
v = json.load(open(f"{work}/vectorbt.json"))
h = json.load(open(f"{work}/sweep.json"))
walls = [float(open(f"{work}/time.{i}").read().split()[0]) for i in (1, 2, 3)]
hw = min(walls)
ht = h.get("timings", {})
first = v["import_s"] + v["load_s"] + v["first_s"]
print(f"vectorbt {v['version']} ({v['engine']}): import {v['import_s']:.2f} s + load {v['load_s']:.2f} s "
      f"+ first call {v['first_s']:.2f} s = {first:.2f} s; warm call {v['warm_s']:.2f} s")
print(f"haechi sweep: best wall {hw:.2f} s of {walls} (load {ht.get('load_s', float('nan')):.2f} s, "
      f"run {ht.get('run_s', float('nan')):.2f} s on {ht.get('threads', '?')} threads)")
print(f"vectorbt_first / haechi = {first / hw:.1f}x   (a fresh `python` process vs a `haechi sweep` process)")
print(f"vectorbt_warm  / haechi = {v['warm_s'] / hw:.1f}x   (vectorbt's warm call alone, data loaded and compiled)")
w1 = float(open(f"{work}/time.1t").read().split()[0])
print(f"vectorbt_warm  / haechi --threads 1 = {v['warm_s'] / w1:.1f}x   (one core each: vectorbt's numba code is single-threaded)")
if ht.get("run_s"):
    print(f"vectorbt_warm  / haechi run_s = {v['warm_s'] / ht['run_s']:.1f}x   (simulation and metrics only on both sides)")
EOF
