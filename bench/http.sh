#!/usr/bin/env bash
# HTTP load benchmark for a running `haechi serve` on this machine.
#
# Usage: HAECHI_BENCH_TOKEN=... HAECHI_BENCH_EMAIL=... HAECHI_BENCH_PASSWORD=... \
#          bench/http.sh [base-url]          (default base URL: http://127.0.0.1:8080)
#
#   1. GET  /api/v1/me          with `Authorization: Bearer $HAECHI_BENCH_TOKEN`,
#      10 s, 64 connections -> requests/s, p50, p99 latency
#   2. POST /api/v1/auth/login  with {"email": $HAECHI_BENCH_EMAIL, "password": $HAECHI_BENCH_PASSWORD},
#      10 s, $HAECHI_BENCH_LOGIN_CONNECTIONS connections (default 8: password hashing is
#      deliberately slow, and 64 concurrent logins would only queue) -> logins/s, p50, p99
#
# Only loopback targets are accepted (127.0.0.1, localhost, [::1]); each run is bounded
# (10 s of load per phase, killed after 30 s whatever happens).
# Load tool: wrk, from Debian (installed with apt-get if missing). A non-2xx count above zero
# means the rates include failed requests: a 429 or 401 in the login phase means the server's
# login rate limit or lockout was measured, not password checking.
# Env: HAECHI_BENCH_THREADS (wrk threads, default 1: leaves the other core to the server).
set -euo pipefail

base="${1:-http://127.0.0.1:8080}"
base="${base%/}"
duration=10
conns=64
login_conns="${HAECHI_BENCH_LOGIN_CONNECTIONS:-8}"
threads="${HAECHI_BENCH_THREADS:-1}"

die() { echo "bench/http.sh: $*" >&2; exit 1; }

# ---- loopback only
if [[ ! "$base" =~ ^http://(\[[^]/]*\]|[^]/:@[]+)(:[0-9]{1,5})?$ ]]; then
  die "base URL must look like http://HOST[:PORT] with no path or user info (got '$base')"
fi
host="${BASH_REMATCH[1]}"
case "$host" in
  127.0.0.1 | localhost | "[::1]") ;;
  *) die "refusing non-loopback target '$host': only 127.0.0.1, localhost or [::1]" ;;
esac

# ---- inputs
[ -n "${HAECHI_BENCH_TOKEN:-}" ] || die "set HAECHI_BENCH_TOKEN to a bearer token for GET /api/v1/me"
[ -n "${HAECHI_BENCH_EMAIL:-}" ] || die "set HAECHI_BENCH_EMAIL for the login benchmark"
[ -n "${HAECHI_BENCH_PASSWORD:-}" ] || die "set HAECHI_BENCH_PASSWORD for the login benchmark"
[[ "$login_conns" =~ ^[1-9][0-9]{0,2}$ ]] || die "HAECHI_BENCH_LOGIN_CONNECTIONS must be 1..999"
[[ "$threads" =~ ^[1-9]$ ]] || die "HAECHI_BENCH_THREADS must be 1..9"
# JSON body, escaped properly; handed to wrk through the environment (not argv, so not in ps).
HAECHI_BENCH_LOGIN_BODY="$(python3 -c 'import json, os; print(json.dumps({"email": os.environ["HAECHI_BENCH_EMAIL"], "password": os.environ["HAECHI_BENCH_PASSWORD"]}))')"
export HAECHI_BENCH_TOKEN HAECHI_BENCH_LOGIN_BODY

# ---- tool
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)..."
  [ "$(id -u)" = 0 ] || die "wrk is missing; install it: sudo apt-get install -y wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
    || die "could not install wrk"
fi

tmp="$(mktemp -d)"; chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# Common reporting: wrk's done() hook gives exact counts and percentiles (microseconds).
cat >"$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rate=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx=%d sockerr=%d secs=%.2f\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, secs))
end
EOF
{ echo 'wrk.headers["Authorization"] = "Bearer " .. os.getenv("HAECHI_BENCH_TOKEN")'
  cat "$tmp/report.lua"; } >"$tmp/me.lua"
{ echo 'wrk.method = "POST"'
  echo 'wrk.body = os.getenv("HAECHI_BENCH_LOGIN_BODY")'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  cat "$tmp/report.lua"; } >"$tmp/login.lua"

# One request first, so a wrong token, URL or password shows as a status code.
preflight() { # method path [curl args...]
  local m="$1" p="$2"; shift 2
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$m" "$@" "$base$p" || true)"
  echo "   one $m $p -> HTTP $code"
  [[ "$code" =~ ^2 ]] || echo "   warning: not 2xx; the run below measures that response" >&2
}

run() { # label unit path connections script
  local label="$1" unit="$2" path="$3" c="$4" script="$5" out="$tmp/out"
  echo "== $label $path  (${duration} s, $c connections, $threads wrk thread(s))"
  if ! timeout 30 wrk -t"$threads" -c"$c" -d"${duration}s" --timeout 5s -s "$script" "$base$path" >"$out" 2>&1; then
    cat "$out" >&2
    die "wrk failed against $base$path"
  fi
  local line
  line="$(grep '^RESULT ' "$out")" || { cat "$out" >&2; die "no RESULT line from wrk"; }
  local rate p50 p99 n non2xx sockerr
  rate="$(sed -E 's/.* rate=([^ ]+).*/\1/' <<<"$line")"
  p50="$(sed -E 's/.* p50_ms=([^ ]+).*/\1/' <<<"$line")"
  p99="$(sed -E 's/.* p99_ms=([^ ]+).*/\1/' <<<"$line")"
  n="$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<"$line")"
  non2xx="$(sed -E 's/.* non2xx=([^ ]+).*/\1/' <<<"$line")"
  sockerr="$(sed -E 's/.* sockerr=([^ ]+).*/\1/' <<<"$line")"
  printf '   %s/s: %s   p50: %s ms   p99: %s ms   (%s requests, %s non-2xx, %s socket errors)\n' \
    "$unit" "$rate" "$p50" "$p99" "$n" "$non2xx" "$sockerr"
}

(umask 077
 printf 'Authorization: Bearer %s\n' "$HAECHI_BENCH_TOKEN" >"$tmp/auth.hdr"
 printf '%s' "$HAECHI_BENCH_LOGIN_BODY" >"$tmp/login.json")

echo "target: $base"
preflight GET /api/v1/me -H "@$tmp/auth.hdr"
run "GET" requests /api/v1/me "$conns" "$tmp/me.lua"
preflight POST /api/v1/auth/login -H 'Content-Type: application/json' --data-binary "@$tmp/login.json"
run "POST" logins /api/v1/auth/login "$login_conns" "$tmp/login.lua"
