#!/usr/bin/env bash
# The production profile on this machine: PostgreSQL and Redis (Debian packages), an S3 stand-in
# (moto's server, from the dev lock) and the platform on them, with Airflow's CeleryExecutor and two
# Celery workers. Everything listens on 127.0.0.1; secrets are generated into the home, not committed.
#
#   infra/local/production.sh up [--no-demo]  # start the servers (idempotent) and `seqops platform up`
#   infra/local/production.sh down            # stop exactly that: the platform, the S3 stand-in, the servers
#   infra/local/production.sh env             # the stack's settings: `source <(infra/local/production.sh env)`
#   infra/local/production.sh purge           # down, then delete the servers' data
#
# The home is SEQOPS_HOME (default ~/.seqops-production, apart from the embedded ~/.seqops); the
# servers' data lives in SEQOPS_SERVICES_DIR (default $TMPDIR/seqops-production-<uid>). Ports: SEQOPS_SERVICES_PG_PORT
# (55432), SEQOPS_SERVICES_REDIS_PORT (56379), SEQOPS_S3_PORT (59000) and the platform's own
# SEQOPS_*_PORT settings. On real servers, set the same SEQOPS_* variables (see `env`) instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SEQOPS_BIN:-$ROOT/.venv/bin}
export SEQOPS_HOME=${SEQOPS_HOME:-$HOME/.seqops-production}
# outside the home: PostgreSQL runs as its own user, which must reach the folder (a home is often 700)
export SEQOPS_SERVICES_DIR=${SEQOPS_SERVICES_DIR:-${TMPDIR:-/tmp}/seqops-production-$(id -u)}
S3_PORT=${SEQOPS_S3_PORT:-59000}
PG_PORT=${SEQOPS_SERVICES_PG_PORT:-55432}
REDIS_PORT=${SEQOPS_SERVICES_REDIS_PORT:-56379}
BUCKET=seqops-local
RUN=$SEQOPS_HOME/run
SECRETS=$SEQOPS_HOME/secrets

log() { echo "production: $*" >&2; }

secret() {  # a generated secret, created once (mode 600)
  local file=$SECRETS/$1
  if [ ! -s "$file" ]; then
    mkdir -p "$SECRETS"
    (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_hex(16))' >"$file")
  fi
  cat "$file"
}

print_env() {
  local pw db
  pw=$(secret postgres_password)
  db="seqops:$pw@127.0.0.1:$PG_PORT"
  cat <<ENV
export SEQOPS_HOME=$SEQOPS_HOME
export SEQOPS_PROFILE=production
export SEQOPS_AIRFLOW_DB_URL=postgresql+psycopg://$db/airflow
export SEQOPS_AIRFLOW_EXECUTOR=CeleryExecutor
export SEQOPS_CELERY_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/1
export SEQOPS_MLFLOW_TRACKING_URI=postgresql+psycopg://$db/mlflow
export SEQOPS_MLFLOW_ARTIFACT_ROOT=s3://$BUCKET/mlflow
export SEQOPS_FEAST_REGISTRY_URL=postgresql://$db/feast
export SEQOPS_FEAST_OFFLINE_PG_URL=postgresql://$db/feast
export SEQOPS_FEAST_ONLINE_REDIS=127.0.0.1:$REDIS_PORT,db=2
export SEQOPS_PREDICTION_LOG_URL=postgresql+psycopg://$db/predictions
export SEQOPS_OBJECT_STORE_ROOT=s3://$BUCKET/seqops
export AWS_ACCESS_KEY_ID=$(secret s3_access_key)
export AWS_SECRET_ACCESS_KEY=$(secret s3_secret_key)
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_ALLOW_HTTP=true
export MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
ENV
}

s3_running() { "$BIN/python" -c "import socket; socket.create_connection(('127.0.0.1', $S3_PORT), 1)" 2>/dev/null; }

start_s3() {
  if s3_running; then
    log "S3 stand-in already answers on 127.0.0.1:$S3_PORT"
  else
    [ -x "$BIN/moto_server" ] || { log "moto_server not found in $BIN: run 'make venv' then install the dev lock (make test-fast does)"; exit 1; }
    mkdir -p "$RUN"
    nohup "$BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$RUN/s3.log" 2>&1 &
    echo $! >"$RUN/s3.pid"
    for _ in $(seq 1 100); do s3_running && break; sleep 0.2; done
    s3_running || { log "the S3 stand-in did not start:"; tail -n 20 "$RUN/s3.log" >&2; exit 1; }
    log "S3 stand-in (moto) started on 127.0.0.1:$S3_PORT"
  fi
}

stop_s3() {
  local pid
  [ -f "$RUN/s3.pid" ] || return 0
  pid=$(cat "$RUN/s3.pid")
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server; then
    kill "$pid" && log "stopped the S3 stand-in (pid $pid)"
  fi
  rm -f "$RUN/s3.pid"
}

provision() {  # databases and the bucket, idempotent
  eval "$(print_env)"
  "$BIN/python" - <<PY
import os, psycopg, boto3
url = os.environ["SEQOPS_AIRFLOW_DB_URL"].replace("+psycopg", "").rsplit("/", 1)[0] + "/seqops"
with psycopg.connect(url, autocommit=True) as conn:
    have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    for name in ("airflow", "mlflow", "feast", "predictions"):
        if name not in have:
            conn.execute(f"CREATE DATABASE {name}")
s3 = boto3.client("s3")
if "$BUCKET" not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket="$BUCKET")
PY
}

up() {
  export SEQOPS_SERVICES_PG_PASSWORD
  SEQOPS_SERVICES_PG_PASSWORD=$(secret postgres_password)
  "$ROOT/.ci/services.sh" start >/dev/null
  start_s3
  provision
  log "PostgreSQL 127.0.0.1:$PG_PORT (airflow, mlflow, feast, predictions), Redis 127.0.0.1:$REDIS_PORT, S3 127.0.0.1:$S3_PORT"
  eval "$(print_env)"
  exec "$BIN/seqops" platform up "$@"
}

down() {
  if [ -f "$SECRETS/postgres_password" ]; then
    eval "$(print_env)"
    "$BIN/seqops" platform down || true
  fi
  stop_s3
  "$ROOT/.ci/services.sh" halt
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  env) print_env ;;
  purge) down; "$ROOT/.ci/services.sh" stop ;;
  *) echo "usage: $0 up [--no-demo]|down|env|purge" >&2; exit 2 ;;
esac
