#!/usr/bin/env bash
# Property-based API check: schemathesis (PyPI) generates requests from /api/openapi.json and
# fails if any answer is a 5xx or the connection breaks. Runs the debug `haechi` binary on a
# throw-away SQLite database with a small market loaded, authenticated with an all-scopes
# admin token. Left out: the SSE streams (they never end, by design), and revoking tokens and
# changing the password or requiring MFA for admins, which would lock this run's own
# credentials out halfway (the HTTP tests cover those).
# Usage: bash .ci/schemathesis.sh   (after `cargo build --bin haechi`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug/haechi"
[ -x "$bin" ] || cargo build --locked --bin haechi
venv="${HAECHI_SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/haechi-schemathesis-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export HAECHI_DATA_DIR="$work" HAECHI_ADDR="127.0.0.1:$port"
unset HAECHI_DATABASE_URL HAECHI_REDIS_URL HAECHI_OBJECT_STORE
# A small market, so generated runs really execute on the in-process workers.
"$bin" data load --tickers 20 --from 2020-01-01 --to 2021-12-31 >/dev/null
pw='schemathesis admin passphrase'
HAECHI_NEW_USER_PASSWORD="$pw" "$bin" user create --email st@example.com --role admin >/dev/null
"$bin" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://$HAECHI_ADDR/readyz" >/dev/null && break; sleep 0.2; done
base="http://$HAECHI_ADDR"
curl -sf -c "$work/jar" -H 'content-type: application/json' \
  -d "{\"email\":\"st@example.com\",\"password\":\"$pw\"}" "$base/api/v1/auth/login" >"$work/login.json"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/login.json")
curl -sf -b "$work/jar" -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
  -d "{\"name\":\"schemathesis\",\"scopes\":[\"read\",\"trade\",\"admin\"],\"password\":\"$pw\"}" \
  "$base/api/v1/me/tokens" >"$work/token.json"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/token.json")
echo "schemathesis against $base (5xx or broken connections fail the run)"
status=0
"$venv/bin/schemathesis" run "$base/api/openapi.json" --checks not_a_server_error \
  --header "Authorization: Bearer $token" --max-examples 40 --request-timeout 10 \
  --generation-deterministic --exclude-path /api/v1/runs/events --exclude-path '/api/v1/accounts/{id}/events' \
  --exclude-operation-id revoke_token --exclude-operation-id change_password \
  --exclude-operation-id set_role_mfa || status=$?
if [ $status -ne 0 ]; then
  echo "--- server log (last 40 lines)"; tail -40 "$work/serve.log"
fi
exit $status
