#!/usr/bin/env bash
# Order entry over the API (issue 15): POST /api/v1/accounts/{id}/orders with a bearer token,
# on the embedded defaults (SQLite), from 50 connections on one account for 10 s.
#
# Usage: bench/order_entry.sh [path/to/haechi]   (default target/release/haechi)
#
# Starts `haechi demo` on a fresh folder (synthetic market, the replayed market matching
# meanwhile), signs in with the printed password, makes a `trade` token and an account with
# 10,000,000,000 won and no order-count or duplicate fail-safes, then sends limit buys of one
# share at the ticker's lower limit (valid, reserved, open) with wrk. Prints orders/s and the
# latency percentiles, then checks the account holds exactly the 201s: no order lost, none
# doubled. Env: HAECHI_BENCH_CONNECTIONS (50), HAECHI_BENCH_SECONDS (10), HAECHI_BENCH_PORT (18190).
set -euo pipefail
bin="${1:-target/release/haechi}"
conns="${HAECHI_BENCH_CONNECTIONS:-50}"
secs="${HAECHI_BENCH_SECONDS:-10}"
port="${HAECHI_BENCH_PORT:-18190}"
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$bin" ] || { echo "build first: cargo build --release -p haechi" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { echo "needs wrk" >&2; exit 1; }; }
dir="$(mktemp -d)"
base="http://127.0.0.1:$port"
HAECHI_ADDR="127.0.0.1:$port" HAECHI_DATA_DIR="$dir/data" HAECHI_LOG_FORMAT=json RUST_LOG=warn "$bin" demo >"$dir/demo.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do grep -q "Ctrl-C" "$dir/demo.log" 2>/dev/null && break; sleep 0.5; done
password="$(grep -o '[a-z0-9]\{4\}-[a-z0-9]\{4\}-[a-z0-9]\{4\}-[a-z0-9]\{4\}' "$dir/data/demo-credentials.txt" | head -1)"
export base password
eval "$(python3 - <<'PY'
import json, os, urllib.request, http.cookiejar
base, pw = os.environ["base"], os.environ["password"]
jar = http.cookiejar.CookieJar()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **(headers or {})})
    with op.open(req) as r:
        return json.loads(r.read() or b"null")
login = call("POST", "/api/v1/auth/login", {"email": "demo@haechi.local", "password": pw})
csrf = {"x-csrf-token": login["csrf_token"]}
token = call("POST", "/api/v1/me/tokens", {"name": "bench", "scopes": ["read", "trade"], "password": pw}, csrf)["token"]
auth = {"authorization": "Bearer " + token}
acct = call("POST", "/api/v1/accounts", {"name": "bench", "cash": 10_000_000_000}, auth)["id"]
call("PATCH", f"/api/v1/accounts/{acct}", {"limits": {"max_order_value": None, "max_orders_per_day": None,
     "daily_loss_limit": None, "confirm_above": None, "duplicate_window_secs": 0}}, auth)
t = call("GET", "/api/v1/market/tickers/100020", None, auth)
body = json.dumps({"ticker": t["ticker"], "side": "buy", "type": "limit", "price": t["lower"], "quantity": 1})
print(f"export HAECHI_BENCH_TOKEN='{token}' HAECHI_BENCH_PATH='/api/v1/accounts/{acct}/orders' HAECHI_BENCH_BODY='{body}' ACCT={acct}")
PY
)"
echo "order entry: $conns connections, ${secs} s, one account, SQLite ($(nproc) cores)"
wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$here/order_entry.lua" "$base" | tail -1
python3 - <<'PY'
import json, os, urllib.request
req = urllib.request.Request(os.environ["base"] + f"/api/v1/accounts/{os.environ['ACCT']}/orders?per_page=1",
                             headers={"authorization": "Bearer " + os.environ["HAECHI_BENCH_TOKEN"]})
orders = json.loads(urllib.request.urlopen(req).read())["total"]
req = urllib.request.Request(os.environ["base"] + f"/api/v1/accounts/{os.environ['ACCT']}",
                             headers={"authorization": "Bearer " + os.environ["HAECHI_BENCH_TOKEN"]})
a = json.loads(urllib.request.urlopen(req).read())
print(f"stored orders {orders}; reserved {a['reserved']:,} won = cash {a['cash']:,} − available {a['available']:,}")
PY
rss=$(ps -o rss= -p $pid); echo "server RSS after the run: $((rss / 1024)) MiB"
