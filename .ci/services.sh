#!/usr/bin/env bash
# Throw-away PostgreSQL and Redis servers on 127.0.0.1 for the production-profile tests.
#
#   eval "$(.ci/services.sh start)"   # start both (idempotent) and export their URLs
#   .ci/services.sh env               # print the export lines for running servers
#   .ci/services.sh status            # exit 0 when both answer
#   .ci/services.sh stop              # stop both and delete their data
#   .ci/services.sh halt              # stop both and keep their data (start again later)
#
# Servers come from the Debian packages (`apt-get install -y postgresql redis-server`; `make
# sysdeps` does it). Data lives in SEQOPS_SERVICES_DIR (default: $TMPDIR/seqops-services-<uid>),
# ports are SEQOPS_SERVICES_PG_PORT (55432) and SEQOPS_SERVICES_REDIS_PORT (56379), the password
# SEQOPS_SERVICES_PG_PASSWORD (default seqops, used when the cluster is first created). Running as
# root, PostgreSQL runs as the `postgres` system user (it refuses root). Durability is off: these
# servers hold test data only. Exported variables:
#   SEQOPS_SERVICES_PG_URL     postgresql://seqops:seqops@127.0.0.1:<port>/seqops
#   SEQOPS_SERVICES_REDIS      127.0.0.1:<port>             (Feast's Redis connection string form)
#   SEQOPS_SERVICES_REDIS_URL  redis://127.0.0.1:<port>/0
set -euo pipefail

DIR="${SEQOPS_SERVICES_DIR:-${TMPDIR:-/tmp}/seqops-services-$(id -u)}"
PG_PORT="${SEQOPS_SERVICES_PG_PORT:-55432}"
REDIS_PORT="${SEQOPS_SERVICES_REDIS_PORT:-56379}"
PG_USER=seqops
PG_PASSWORD="${SEQOPS_SERVICES_PG_PASSWORD:-seqops}"
PG_DB=seqops

log() { echo "services: $*" >&2; }

pg_bin() {
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
    log "PostgreSQL server binaries not found: apt-get install -y postgresql (or: make sysdeps)"
    exit 1
  fi
  echo "$found"
}

# Run a PostgreSQL server program as a non-root user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

print_env() {
  cat <<EOF
export SEQOPS_SERVICES_PG_URL=postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB
export SEQOPS_SERVICES_REDIS=127.0.0.1:$REDIS_PORT
export SEQOPS_SERVICES_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
}

pg_running() {
  local bin
  bin=$(pg_bin)
  [ -f "$DIR/pg/data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1 &&
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

redis_running() {
  command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

start_pg() {
  local bin
  bin=$(pg_bin)
  if pg_running; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    return
  fi
  mkdir -p "$DIR/pg"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR/pg"
  if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
    as_pg sh -c "umask 077; echo '$PG_PASSWORD' > '$DIR/pg/pwfile'"
    as_pg "$bin/initdb" -D "$DIR/pg/data" -U "$PG_USER" --pwfile="$DIR/pg/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/pg/initdb.log" 2>&1 ||
      { log "initdb failed:"; cat "$DIR/pg/initdb.log" >&2; exit 1; }
  fi
  as_pg mkdir -p "$DIR/pg/socket"
  as_pg "$bin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pg/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null 9>&- || { log "PostgreSQL did not start:"; tail -n 20 "$DIR/pg/server.log" >&2; exit 1; }
  if ! PGPASSWORD=$PG_PASSWORD "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    PGPASSWORD=$PG_PASSWORD "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  fi
  log "PostgreSQL started on 127.0.0.1:$PG_PORT (data in $DIR/pg)"
}

start_redis() {
  if redis_running; then
    log "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  command -v redis-server >/dev/null || { log "redis-server not found: apt-get install -y redis-server"; exit 1; }
  mkdir -p "$DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --daemonize yes \
    --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" --save "" --appendonly no \
    --protected-mode yes >/dev/null 9>&-
  for _ in $(seq 1 50); do
    redis_running && { log "Redis started on 127.0.0.1:$REDIS_PORT (data in $DIR/redis)"; return; }
    sleep 0.1
  done
  log "Redis did not start:"; tail -n 20 "$DIR/redis/redis.log" >&2; exit 1
}

halt_all() {
  local bin
  bin=$(pg_bin)
  if [ -f "$DIR/pg/data/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if redis_running; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

stop_all() {
  halt_all
  rm -rf "$DIR"
  log "stopped; removed $DIR"
}

# One start/stop at a time per DIR (parallel test runs). Servers must not inherit the lock's fd.
with_lock() {
  mkdir -p "$(dirname "$DIR")"
  (
    flock 9
    "$@"
  ) 9>"$DIR.lock"
}

case "${1:-}" in
  start)
    with_lock start_pg
    with_lock start_redis
    print_env
    ;;
  env)
    print_env
    ;;
  status)
    pg_running && redis_running && { log "running"; exit 0; }
    log "not running"
    exit 1
    ;;
  stop)
    with_lock stop_all
    ;;
  halt)
    with_lock halt_all
    log "stopped; data kept in $DIR"
    ;;
  *)
    echo "usage: $0 start|env|status|stop|halt" >&2
    exit 2
    ;;
esac
