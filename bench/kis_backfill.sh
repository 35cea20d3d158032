#!/usr/bin/env bash
# KIS backfill benchmark: 200 tickers × 10 years of daily bars from the fake KIS server, which
# enforces KIS's real limit of 20 requests/s, with the client at its default 19/s.
#
#   1. a full backfill into an empty database: requests/s against the 19/s allowed;
#   2. the same command again: no requests, no new rows;
#   3. a fresh database, the collection SIGKILLed after KILL_AFTER seconds, then started again:
#      it resumes, and ends with exactly the rows of run 1.
#
# Usage: bench/kis_backfill.sh            (builds target/release/haechi if missing)
#        HAECHI_BIN=path TICKERS=50 KILL_AFTER=20 bench/kis_backfill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HAECHI_BIN:-target/release/haechi}
TICKERS=${TICKERS:-200}
KILL_AFTER=${KILL_AFTER:-60}
PORT=${PORT:-19443}
[ -x "$BIN" ] || cargo build --release -p haechi
WORK=$(mktemp -d)
cleanup() { kill "${FAKE:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" kis-fake --port "$PORT" --env real --tickers "$TICKERS" --from 2015-01-01 --to 2024-12-31 >"$WORK/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do grep -q HAECHI_KIS_BASE_URL "$WORK/fake.log" 2>/dev/null && break; sleep 0.2; done
# The fake serves the default synthetic market (seed 42); its tickers are the ones `data synth` lists.
"$BIN" data synth --tickers "$TICKERS" --from 2015-01-01 --to 2024-12-31 --out "$WORK/synth" >/dev/null
tail -n +2 "$WORK/synth/instruments.csv" | cut -d, -f1 >"$WORK/tickers.txt"

export HAECHI_KIS_APP_KEY=bench HAECHI_KIS_APP_SECRET=bench HAECHI_KIS_ENV=real
export HAECHI_KIS_BASE_URL="http://127.0.0.1:$PORT" HAECHI_LOG=warn
bars() { "$BIN" etl bars --tickers-file "$WORK/tickers.txt" --from 2015-01-01 --to 2024-12-31 "$@"; }
count() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from daily_bars').fetchone()[0])" "$1/haechi.db"; }

echo "== 1. full backfill, $TICKERS tickers × 10 years, client at 19 req/s"
export HAECHI_DATA_DIR="$WORK/a"
START=$(date +%s.%N)
bars | tee "$WORK/run1.txt"
echo "   wall $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$START" "$(date +%s.%N)") s"
ROWS1=$(count "$WORK/a")
echo "   rows in daily_bars: $ROWS1"

echo "== 2. the same command again"
bars | tee "$WORK/run2.txt"
ROWS2=$(count "$WORK/a")
echo "   rows in daily_bars: $ROWS2 (before: $ROWS1)"

echo "== 3. fresh database, SIGKILL after ${KILL_AFTER} s, then again"
export HAECHI_DATA_DIR="$WORK/b"
timeout -s KILL "$KILL_AFTER" "$BIN" etl bars --tickers-file "$WORK/tickers.txt" --from 2015-01-01 --to 2024-12-31 >/dev/null 2>&1 || true
echo "   rows after the kill: $(count "$WORK/b")"
bars | tee "$WORK/run3.txt"
ROWS3=$(count "$WORK/b")
echo "   rows after the restart: $ROWS3 (full backfill: $ROWS1)"
DUPES=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from (select ticker, day from daily_bars group by ticker, day having count(*) > 1)').fetchone()[0])" "$WORK/b/haechi.db")
echo "   duplicate (ticker, day) rows: $DUPES"

echo "== what the fake server saw"
sleep 11
tail -n 1 "$WORK/fake.log"
[ "$ROWS1" = "$ROWS2" ] && [ "$ROWS1" = "$ROWS3" ] && [ "$DUPES" = 0 ] || { echo "MISMATCH"; exit 1; }
