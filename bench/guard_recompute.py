#!/usr/bin/env python3
"""An independent check of `haechi guard evaluate` with the default market playbook.

Replays the rule from the raw index CSV in plain Python (no Haechi code), with the same
timing (decide at the close, trade at the next open, the gap at the old exposure) and cost,
and compares the daily curves with the ones Haechi wrote.

    haechi guard evaluate --data ../shared/data/krx --from 2005-01-01 --to 2024-12-31 \
        --out /tmp/guard.json --csv /tmp/guard.csv
    python3 bench/guard_recompute.py ../shared/data/krx/index/KS11.csv /tmp/guard.csv
"""
import csv
import sys

SMA, CUT, LOW, CB, COST = 150, -0.02, 0.3, -0.08, 0.001


def main(index_csv, haechi_csv):
    rows = list(csv.DictReader(open(index_csv)))
    date = [r["date"] for r in rows]
    close = [float(r["close"]) for r in rows]
    opn = [float(r["open"] or 0) for r in rows]
    ours = {r["date"]: r for r in csv.DictReader(open(haechi_csv))}
    first = min(ours)
    # The rules: trend break under -2% or a -8% day -> 30% until the close is above the average.
    active = False
    exposure = []
    s = 0.0
    for i, c in enumerate(close):
        s += c
        if i >= SMA:
            s -= close[i - SMA]
        trend = c / (s / SMA) - 1 if i + 1 >= SMA else None
        day = c / close[i - 1] - 1 if i else None
        if not active:
            active = (trend is not None and trend < CUT) or (day is not None and day <= CB)
        elif trend is not None and trend > 0:
            active = False
        exposure.append(LOW if active else 1.0)
    start = date.index(first)
    held = exposure[start - 1] if start else 1.0
    w = wo = 1.0
    worst = 0.0
    for i in range(start, len(date)):
        if date[i] not in ours:
            break
        target = exposure[i - 1] if i else 1.0
        if i > start:
            gap, intra = (opn[i] / close[i - 1] - 1, close[i] / opn[i] - 1) if opn[i] > 0 else (close[i] / close[i - 1] - 1, 0.0)
            w *= 1 + held * gap
            w -= w * abs(target - held) * COST
            w *= 1 + target * intra
            wo *= close[i] / close[i - 1]
        held = target
        r = ours[date[i]]
        worst = max(worst, abs(w / float(r["with"]) - 1), abs(wo / float(r["without"]) - 1))
    print(f"days {len(ours)}; largest relative difference from Haechi's curves: {worst:.2e}")
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
