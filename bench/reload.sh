# bench/run.sh's hot reload part (issue 14), sourced by it: what serving costs
# while the app is reloaded. crest_tasks_reloading is crest_tasks (bench/tasks-app.yaml
# on a copy of the 100k-row tasks table, --workers 1) with a loop that sends it
# SIGHUP every BENCH_RELOAD_EVERY seconds (0.1) for as long as it runs: each
# reload reads and checks the app file again (its model against the table, its
# routes, the OpenAPI document) on the main thread and switches the worker, which
# goes on serving meanwhile. The scenario tasks_reload (group reload) measures
# GET /tasks/{id} on it against crest_tasks without reloads. Before the load,
# check_reload waits for the server to log a reload (the loop works).
# shellcheck shell=bash

RELOAD_EVERY=${BENCH_RELOAD_EVERY:-0.1}

SERVER_LABEL+=(
  [crest_tasks_reloading]="crest serve bench/tasks-app.yaml (--workers 1, durability: full), reloaded by SIGHUP every ${RELOAD_EVERY}s"
)
SERVER_DURABILITY+=([crest_tasks_reloading]=full)

start_crest_tasks_reloading() {
  SRV_OUT="$TMP/reloading-$1.log" crest_serve_tasks crest_tasks_reloading "$1" "$HERE/tasks-app.yaml" || return 1
  local pid=$SRV_PID
  # The loop is one of the server's processes: stop_server ends it first (the
  # last started), before the server, so no SIGHUP ever goes to another pid.
  (while kill -HUP "$pid" 2>/dev/null; do sleep "$RELOAD_EVERY"; done) &
  STARTED+=($!)
  SRV_PIDS+=($!)
  SERVER_CMD[crest_tasks_reloading]+=" (kill -HUP every ${RELOAD_EVERY}s)"
}

# check_reload SERVER PORT PATH: the server logs reloads (within 5 s), all good.
check_reload() {
  local log="$TMP/reloading-$2.log" i
  [ "$1" = crest_tasks_reloading ] || return 0
  for i in $(seq 100); do
    grep -q '"event":"reloaded"' "$log" 2>/dev/null && break
    sleep 0.05
  done
  grep -q '"event":"reloaded"' "$log" || { echo "crest_tasks_reloading logged no reload" >&2; return 1; }
  if grep -q '"event":"reload_failed"' "$log"; then
    grep '"event":"reload_failed"' "$log" | head -n1 >&2
    return 1
  fi
}
