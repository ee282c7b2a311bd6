#!/usr/bin/env bash
# The same HTTP order load on the SQLite store and on PostgreSQL, same run, same machine: does the
# persister keep up with what the HTTP path sustains? For each store: `invsync serve` (SQLite: the
# zero-configuration run, its own Redis in a temporary data dir; PostgreSQL: the servers of
# scripts/with-services), one hot SKU, wrk -t2 -c64 POST /v1/orders (bench/http_orders.lua) for
# SECONDS, `invsync status` sampled every 250 ms for the oldest unpersisted event's age, then the
# time until everything is persisted, and the audit: Redis = database = seed - orders sold.
#
# Usage: scripts/with-services -- bench/stores.sh BUILD_DIR [SECONDS]
# Prints one JSON line per store ("STORE_RESULT {...}") and a table.
set -euo pipefail

build=${1:?usage: bench/stores.sh BUILD_DIR [SECONDS]}
secs=${2:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bin=$build/apps/invsync/invsync
readonly seed=1000000000

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_store() {
  local store=$1 dir args=() env=()
  dir=$(mktemp -d)
  if [[ $store == sqlite ]]; then
    env=(env -u INVSYNC_REDIS_URL -u INVSYNC_DATABASE_URL)
    args=(--data-dir "$dir")
  else
    env=(env)
    args=()
    "$bin" migrate >/dev/null
    psql -q "$INVSYNC_DATABASE_URL" -c "TRUNCATE inventory, invsync_ledger, invsync_outbox" >/dev/null
    redis-cli -u "$INVSYNC_REDIS_URL" FLUSHALL >/dev/null
  fi
  local p
  p=$(port)
  "${env[@]}" "$bin" "${args[@]}" --listen "127.0.0.1:$p" --log-level warn serve >"$dir/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  "${env[@]}" "$bin" "${args[@]}" set HOT "$seed" --request-id seed >/dev/null
  local max_lag=0
  (
    while sleep 0.25; do
      "${env[@]}" "$bin" "${args[@]}" --json status 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["persister"]["oldest_unpersisted_age_ms"] or 0)' \
          2>/dev/null || true
    done
  ) >"$dir/lag" &
  local sampler=$!
  wrk -t2 -c64 -d"${secs}s" --latency -s "$root/bench/http_orders.lua" "http://127.0.0.1:$p" -- \
    "$store-$$" HOT >"$dir/wrk.log" 2>&1
  local drain_start drained
  drain_start=$(date +%s.%N)
  for _ in $(seq 600); do
    [[ $("${env[@]}" "$bin" "${args[@]}" --json status |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["persister"]["unpersisted"])') == 0 ]] && break
    sleep 0.05
  done
  drained=$(python3 -c "import time; print(round(time.time() - $drain_start, 3))")
  kill "$sampler" 2>/dev/null || true
  max_lag=$(sort -n "$dir/lag" | tail -1)
  local redis_q db_q sold rate p99
  redis_q=$("${env[@]}" "$bin" "${args[@]}" get HOT | awk '{print $2}')
  kill -TERM "$pid"
  wait "$pid" || true
  if [[ $store == sqlite ]]; then
    db_q=$(sqlite3 "$dir/invsync.db" "SELECT quantity FROM inventory WHERE sku = 'HOT'")
    sold=$(sqlite3 "$dir/invsync.db" "SELECT -coalesce(sum(delta),0) FROM invsync_ledger WHERE kind = 'deduct'")
  else
    db_q=$(psql -qtA "$INVSYNC_DATABASE_URL" -c "SELECT quantity FROM inventory WHERE sku = 'HOT'")
    sold=$(psql -qtA "$INVSYNC_DATABASE_URL" -c "SELECT -coalesce(sum(delta),0) FROM invsync_ledger WHERE kind = 'deduct'")
  fi
  rate=$(sed -n 's/^Requests\/sec: *//p' "$dir/wrk.log")
  p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk.log")
  local audit=ok
  [[ $redis_q == "$db_q" && $db_q == $((seed - sold)) ]] || audit="FAILED (redis $redis_q, database $db_q, sold $sold)"
  echo "STORE_RESULT {\"store\":\"$store\",\"orders_per_s\":$rate,\"p99\":\"$p99\",\"max_lag_ms\":${max_lag:-0},\"drain_after_load_s\":$drained,\"sold\":$sold,\"audit\":\"$audit\"}"
  rm -rf "$dir"
}

run_store postgres
run_store sqlite
