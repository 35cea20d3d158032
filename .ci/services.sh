# shellcheck shell=bash
# Local services for the DB-backed tests: MariaDB on 127.0.0.1:3306 and Redis on 127.0.0.1:6379.
#
# Sourced by .ci/run (`source "$(dirname "$0")/services.sh"`); can also be run on its own
# (`bash .ci/services.sh`) to bring the services up by hand, though then the exports are lost.
#
# Idempotent and quick when everything is already up (a few ms). Otherwise it:
#   - installs mariadb-server / redis-server from Debian if the binaries are missing (needs root),
#   - starts each one with the machine's own start command and waits up to 30 s for it,
#   - makes sure root@127.0.0.1 over TCP with an empty password can create and drop databases
#     (a fresh Debian install only lets root in through the unix socket),
#   - exports HAECHI_TEST_MYSQL_URL and HAECHI_TEST_REDIS_URL.
# On any failure it prints `services: ERROR: ...` and returns/exits non-zero.
# All helpers are prefixed `_haechi_svc_`; the caller's shell options are left untouched.

_haechi_svc_log() { echo "services: $*"; }
_haechi_svc_err() { echo "services: ERROR: $*" >&2; }

# Does anything accept a TCP connection on host:port?
_haechi_svc_tcp_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

_haechi_svc_apt_install() {
  if [ "$(id -u)" != 0 ]; then
    _haechi_svc_err "need root to apt-get install $*"
    return 1
  fi
  _haechi_svc_log "installing $* from Debian (apt-get)..."
  # Containers without systemd may refuse to start services from the package's postinst:
  # that is fine, we start them ourselves below.
  if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
    _haechi_svc_err "apt-get install $* failed"
    return 1
  fi
}

# ---------------------------------------------------------------- MariaDB

_HAECHI_SVC_MDB_TCP=(--protocol=tcp -h127.0.0.1 -P3306 -uroot --password= --connect-timeout=3)

_haechi_svc_mariadb_ping() {
  # mariadb-admin ping exits 0 whenever the server answers, even with "Access denied".
  mariadb-admin "${_HAECHI_SVC_MDB_TCP[@]}" ping >/dev/null 2>&1
}

# Can root@127.0.0.1, empty password, over TCP create and drop a database?
_haechi_svc_mariadb_tcp_root_ok() {
  local db="haechi_ci_probe_$$_${RANDOM}"
  mariadb "${_HAECHI_SVC_MDB_TCP[@]}" --batch \
    -e "CREATE DATABASE \`$db\`; DROP DATABASE \`$db\`;" >/dev/null 2>&1
}

_haechi_svc_mariadb_start() {
  if [ ! -x /usr/sbin/mariadbd ]; then
    _haechi_svc_apt_install mariadb-server mariadb-client || return 1
    # The package's postinst may have started it already.
    _haechi_svc_tcp_open 127.0.0.1 3306 && return 0
  fi
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/mysqld /var/log/mysql
    chown mysql:mysql /run/mysqld /var/log/mysql 2>/dev/null || true
  fi
  _haechi_svc_log "starting MariaDB..."
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    || { _haechi_svc_err "start-stop-daemon could not start /usr/sbin/mariadbd"; return 1; }
}

_haechi_svc_mariadb_fix_root() {
  # Through the unix socket, where root gets in by unix_socket auth on Debian.
  _haechi_svc_log "root@127.0.0.1 (TCP, empty password) cannot create databases; fixing via the socket"
  local sock=(mariadb --protocol=socket -uroot --batch)
  if ! "${sock[@]}" -e "
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
      ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
      FLUSH PRIVILEGES;" >/dev/null; then
    _haechi_svc_err "could not log in as root through the MariaDB unix socket to fix TCP auth"
    return 1
  fi
  _haechi_svc_mariadb_tcp_root_ok && return 0
  # Without skip-name-resolve, 127.0.0.1 may resolve to 'localhost' and match root@localhost,
  # which a fresh install gives only unix_socket: let it take an empty password too.
  "${sock[@]}" -e "
      ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
      FLUSH PRIVILEGES;" >/dev/null || return 1
  _haechi_svc_mariadb_tcp_root_ok
}

_haechi_svc_mariadb() {
  local started=""
  if ! _haechi_svc_tcp_open 127.0.0.1 3306; then
    _haechi_svc_mariadb_start || return 1
    started=" (started)"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    _haechi_svc_mariadb_ping && break
    sleep 0.5
  done
  if ! _haechi_svc_mariadb_ping; then
    _haechi_svc_err "MariaDB does not answer on 127.0.0.1:3306 after 30 s"
    [ -r /var/log/mysql/error.log ] && tail -n 8 /var/log/mysql/error.log >&2
    return 1
  fi
  if ! _haechi_svc_mariadb_tcp_root_ok; then
    if ! _haechi_svc_mariadb_fix_root; then
      _haechi_svc_err "root@127.0.0.1 over TCP with an empty password still cannot create/drop databases"
      return 1
    fi
  fi
  _haechi_svc_log "MariaDB is up on 127.0.0.1:3306${started}; root over TCP can create/drop databases"
}

# ---------------------------------------------------------------- Redis

_haechi_svc_redis_ping() {
  [ "$(timeout 3 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
}

_haechi_svc_redis() {
  local started=""
  if ! _haechi_svc_tcp_open 127.0.0.1 6379; then
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
      _haechi_svc_apt_install redis-server redis-tools || return 1
    fi
    if ! _haechi_svc_tcp_open 127.0.0.1 6379; then
      mkdir -p /var/lib/redis /var/log/redis
      _haechi_svc_log "starting Redis..."
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log \
        || { _haechi_svc_err "redis-server failed to start"; return 1; }
      started=" (started)"
    fi
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    _haechi_svc_redis_ping && break
    sleep 0.5
  done
  if ! _haechi_svc_redis_ping; then
    _haechi_svc_err "Redis does not answer PONG on 127.0.0.1:6379 after 30 s"
    [ -r /var/log/redis/ci.log ] && tail -n 8 /var/log/redis/ci.log >&2
    return 1
  fi
  _haechi_svc_log "Redis is up on 127.0.0.1:6379${started}"
}

# ---------------------------------------------------------------- main

_haechi_svc_main() {
  _haechi_svc_mariadb || return 1
  _haechi_svc_redis || return 1
  export HAECHI_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/"
  export HAECHI_TEST_REDIS_URL="redis://127.0.0.1:6379/"
}

if ! _haechi_svc_main; then
  _haechi_svc_err "test services could not be brought up (see above)"
  # `return` when sourced, `exit` when run as a script.
  return 1 2>/dev/null || exit 1
fi
