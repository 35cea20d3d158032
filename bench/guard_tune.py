#!/usr/bin/env python3
"""How the default market playbook was chosen, reproducibly, on 2005–2014 only.

Evaluates a grid of trend-break playbooks with `haechi guard evaluate` over 2005-01-01 ..
2014-12-31 and picks the one with the best Calmar ratio (CAGR over |max drawdown|) in that
span. The exposure while defended is fixed at 30% beforehand (the naive rule's level), so
only the average's length and the band are tuned. Nothing after 2014 is read.

    cargo build --release && python3 bench/guard_tune.py target/release/haechi ../shared/data/krx
"""
import itertools
import json
import os
import subprocess
import sys
import tempfile

TEMPLATE = """name = "grid"
[[rules]]
id = "trend-break"
when = ["market.trend_{n} < {band}"]
until = ["market.trend_{n} > 0"]
actions = [{{ do = "reduce_exposure", to = 0.3 }}]
[[rules]]
id = "circuit-breaker"
when = ["market.day_return <= -0.08"]
until = ["market.trend_{n} > 0"]
actions = [{{ do = "reduce_exposure", to = 0.3 }}]
"""


def main(haechi, data):
    tmp = tempfile.mkdtemp()
    best = None
    print(f"{'sma':>4} {'band':>6} {'CAGR':>7} {'MDD':>7} {'Calmar':>7}")
    for n, band in itertools.product([60, 90, 120, 150, 200], [0.0, -0.02, -0.04]):
        pb = os.path.join(tmp, "pb.toml")
        out = os.path.join(tmp, "out.json")
        open(pb, "w").write(TEMPLATE.format(n=n, band=band))
        subprocess.run([haechi, "guard", "evaluate", "--data", data, "--playbook", pb,
                        "--from", "2005-01-01", "--to", "2014-12-31", "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        whole = json.load(open(out))["whole"]["with"]
        calmar = whole["cagr"] / abs(whole["max_drawdown"])
        print(f"{n:>4} {band:>6} {whole['cagr']:>7.2%} {whole['max_drawdown']:>7.1%} {calmar:>7.3f}")
        if best is None or calmar > best[0]:
            best = (calmar, n, band)
    print(f"chosen: market.trend_{best[1]} < {best[2]} (Calmar {best[0]:.3f} on 2005–2014)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
