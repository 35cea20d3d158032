# shellcheck shell=bash
# S3-compatible test server for the object-store tests: moto_server on 127.0.0.1:9000 with the
# bucket `haechi-test`.
#
# Use it either way:
#   source .ci/s3.sh            # from .ci/run: exports the variables into the calling shell
#   eval "$(bash .ci/s3.sh)"    # by hand: run as a script it prints `export ...` lines on stdout
# Log lines go to stderr so that stdout stays eval-able.
#
# Idempotent and quick (well under a second) when the server is already up. Otherwise it:
#   - creates a venv under a cache dir (HAECHI_S3_VENV, default ${TMPDIR:-/tmp}/haechi-moto-venv)
#     and pip-installs a pinned moto[server] into it (PyPI only; about a minute the first time),
#   - starts moto_server detached (it outlives this script, like MariaDB/Redis in services.sh)
#     and waits up to 30 s for it to answer S3 requests,
#   - creates the bucket (a second create is accepted: moto answers 200 in us-east-1),
#   - exports HAECHI_TEST_S3_URL=http://127.0.0.1:9000/haechi-test plus the access/secret keys.
# moto keeps everything in memory: a restart loses all objects, which is what tests want.
# On any failure it prints `s3: ERROR: ...` and returns/exits non-zero.
# All helpers are prefixed `_haechi_s3_`; the caller's shell options are left untouched.

_HAECHI_S3_MOTO_PIN='moto[server]==5.2.5'
_HAECHI_S3_HOST=127.0.0.1
_HAECHI_S3_PORT="${HAECHI_S3_PORT:-9000}"
_HAECHI_S3_BUCKET="${HAECHI_S3_BUCKET:-haechi-test}"

_haechi_s3_log() { echo "s3: $*" >&2; }
_haechi_s3_err() { echo "s3: ERROR: $*" >&2; }

_haechi_s3_venv() { echo "${HAECHI_S3_VENV:-${TMPDIR:-/tmp}/haechi-moto-venv}"; }

_haechi_s3_tcp_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Is what listens on the port an S3 endpoint? ListBuckets answers with this XML root element
# (moto accepts unsigned requests); a port held by some other program must not pass for S3.
_haechi_s3_answers() {
  curl -s --max-time 3 "http://$_HAECHI_S3_HOST:$_HAECHI_S3_PORT/" 2>/dev/null \
    | grep -q 'ListAllMyBucketsResult'
}

_haechi_s3_install() {
  local venv
  venv=$(_haechi_s3_venv)
  # The pin is recorded next to the venv so that changing it above reinstalls instead of
  # silently reusing an older moto.
  if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$venv/.haechi-pin" 2>/dev/null)" = "$_HAECHI_S3_MOTO_PIN" ]; then
    return 0
  fi
  _haechi_s3_log "installing $_HAECHI_S3_MOTO_PIN into $venv (PyPI)..."
  local t0=$SECONDS
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    _haechi_s3_err "python3 -m venv $venv failed (Debian: apt-get install python3-venv)"
    return 1
  fi
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$_HAECHI_S3_MOTO_PIN" >&2; then
    _haechi_s3_err "pip install $_HAECHI_S3_MOTO_PIN failed"
    return 1
  fi
  echo "$_HAECHI_S3_MOTO_PIN" >"$venv/.haechi-pin"
  _haechi_s3_log "installed moto in $((SECONDS - t0)) s"
}

_haechi_s3_start() {
  local venv log
  venv=$(_haechi_s3_venv)
  log="$venv/moto_server.log"
  _haechi_s3_log "starting moto_server on $_HAECHI_S3_HOST:$_HAECHI_S3_PORT (log: $log)..."
  # setsid + nohup: detached from this shell's job control and terminal, so it keeps serving
  # after the script (or a non-interactive .ci/run step) has returned.
  setsid nohup "$venv/bin/moto_server" -H "$_HAECHI_S3_HOST" -p "$_HAECHI_S3_PORT" \
    </dev/null >"$log" 2>&1 &
  echo $! >"$venv/moto_server.pid"
}

_haechi_s3_create_bucket() {
  local code
  # us-east-1 needs no CreateBucketConfiguration body. moto answers 200 for a bucket we already
  # own; 409 (BucketAlreadyOwnedByYou) is what real S3 outside us-east-1 and others say.
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT \
    "http://$_HAECHI_S3_HOST:$_HAECHI_S3_PORT/$_HAECHI_S3_BUCKET" 2>/dev/null) || code=000
  case "$code" in
    200 | 409) return 0 ;;
    *)
      _haechi_s3_err "creating bucket $_HAECHI_S3_BUCKET answered HTTP $code"
      return 1
      ;;
  esac
}

_haechi_s3_main() {
  local started="" t0=$SECONDS
  if _haechi_s3_tcp_open "$_HAECHI_S3_HOST" "$_HAECHI_S3_PORT"; then
    if ! _haechi_s3_answers; then
      _haechi_s3_err "something on $_HAECHI_S3_HOST:$_HAECHI_S3_PORT is not an S3 server (no ListAllMyBucketsResult); stop it or set HAECHI_S3_PORT"
      return 1
    fi
  else
    command -v curl >/dev/null || { _haechi_s3_err "curl is needed (apt-get install curl)"; return 1; }
    _haechi_s3_install || return 1
    t0=$SECONDS
    _haechi_s3_start || return 1
    local i
    for ((i = 0; i < 60; i++)); do
      _haechi_s3_answers && break
      sleep 0.5
    done
    if ! _haechi_s3_answers; then
      _haechi_s3_err "moto_server does not answer on $_HAECHI_S3_HOST:$_HAECHI_S3_PORT after 30 s"
      tail -n 15 "$(_haechi_s3_venv)/moto_server.log" >&2 2>/dev/null
      return 1
    fi
    started=" (started in $((SECONDS - t0)) s)"
  fi
  _haechi_s3_create_bucket || return 1
  _haechi_s3_log "S3 (moto) is up on $_HAECHI_S3_HOST:$_HAECHI_S3_PORT${started}; bucket $_HAECHI_S3_BUCKET exists"
  # moto accepts any credentials; fixed ones keep request signing deterministic.
  export HAECHI_TEST_S3_URL="http://$_HAECHI_S3_HOST:$_HAECHI_S3_PORT/$_HAECHI_S3_BUCKET"
  export HAECHI_TEST_S3_ACCESS_KEY="${HAECHI_TEST_S3_ACCESS_KEY:-test}"
  export HAECHI_TEST_S3_SECRET_KEY="${HAECHI_TEST_S3_SECRET_KEY:-test}"
}

if ! _haechi_s3_main; then
  _haechi_s3_err "S3 test server could not be brought up (see above)"
  # `return` when sourced, `exit` when run as a script.
  return 1 2>/dev/null || exit 1
fi

# Run as a script (not sourced): hand the variables to the caller as eval-able lines.
if ! (return 0 2>/dev/null); then
  printf 'export HAECHI_TEST_S3_URL=%q\n' "$HAECHI_TEST_S3_URL"
  printf 'export HAECHI_TEST_S3_ACCESS_KEY=%q\n' "$HAECHI_TEST_S3_ACCESS_KEY"
  printf 'export HAECHI_TEST_S3_SECRET_KEY=%q\n' "$HAECHI_TEST_S3_SECRET_KEY"
fi
