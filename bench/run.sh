#!/usr/bin/env bash
# crest benchmark: crest against nginx (and FastAPI) on the same machine, in the same run.
#
#   bench/run.sh                                # what `make bench` runs (after building build/)
#   BENCH_DURATION=2s BENCH_RUNS=1 bench/run.sh # a quick check
#   BENCH_ONLY=tasks_get,tasks_post bench/run.sh  # a subset of the scenarios
#
# Every scenario is one request pattern (a method and path, optionally a wrk Lua
# script) measured against several servers; the first server of a scenario is
# the baseline the others are compared with (nginx answering `return 200`), and
# a scenario may name a second reference (FastAPI) crest is compared with too.
# For each run (the server order is reversed on every other run), each scenario
# and each server: start the server on a free 127.0.0.1 port (servers with a
# database get a fresh copy of it), wait until it accepts connections, send one
# sample request, sample idle RSS, warm up, run wrk -t1 -c64 and -c256
# (--latency), sample peak RSS (VmHWM), stop the server. bench/report.py prints
# the medians and ratios as markdown tables (one per scenario group), saved to
# bench/results/latest.md (raw numbers in bench/results/latest.tsv).
#
# Scenarios: hello, sql (core); tasks_get, tasks_list, tasks_post (the REST
# module over a 100k-row tasks table, bench/tasks-app.yaml, against FastAPI +
# SQLAlchemy + uvicorn, bench/fastapi_tasks.py). FastAPI is optional: when it
# cannot be imported or does not start, its rows say "skipped". tasks_auth
# (auth): tasks_get with a JWT bearer token against bench/tasks-auth-app.yaml,
# compared with crest_tasks without auth (a per-run random CREST_JWT_SECRET,
# the token from `crest token`). https_hello (https): GET /hello over TLS
# keep-alive, crest's hello example against nginx with the same self-signed
# certificate, made per run with the openssl CLI. Both check their servers with
# curl first (401 without the token, the certificate verifies) and end the
# benchmark when a check fails. pg_get, pg_list, pg_post (pg): the tasks
# scenarios on PostgreSQL (a durable throwaway cluster, bench/pg.sh): crest
# against pgbench running the statements crest sends (bench/pg_*.sql; the
# baseline, the database's own ceiling) and FastAPI + asyncpg
# (bench/fastapi_tasks_pg.py, optional like FastAPI); report.py also divides
# crest on PostgreSQL by crest on SQLite of the matching tasks scenario.
# pg_scale (pgscale): GET /tasks/{id} through nginx to 1, 2 and 3 crest
# processes. Every measurement records the CPU the machine, the server, the
# cluster and the load generator used (bench/pg.sh's cpu_sample). rel_list,
# rel_include, rel_where (relations; `make bench-relations` runs them alone):
# 10,000 people × 5 computers (bench/people-app.yaml) on SQLite and on the
# cluster, crest on one store against crest on the other: a random page of
# people without and with include=computers, and computers whose owner has a
# random name (bench/relations.sh); report.py divides the page with the embed
# by the page without it per store, and shows the statements per request.
# idem_post, idem_replay (idem; bench/idempotency.sh): creates with a new
# Idempotency-Key each, against plain creates; replays of one key's answer.
# gzip_list (gzip; `make bench-gzip` runs it alone): a 50-row page of the tasks
# list without and with `Accept-Encoding: gzip` (compression levels 1 and 6),
# the bytes per answer both ways and crest's CPU per KB compressed
# (bench/gzip.sh).
# etag_200, etag_304 (etag; `make bench-etag` runs them alone): GET /tasks/12345
# without and with a matching If-None-Match (a 304) on both stores
# (bench/etag.sh); report.py divides the 304's req/s by the 200's per server.
# cursor_page10/100/1000 and cursor_next10/100/1000 (cursor): page N of the
# 100k-row tasks table by page= and by cursor (the next_cursor of page N - 1),
# on SQLite and PostgreSQL (bench/cursor.sh); `make bench-cursor` runs them.
# tasks_reload (reload): GET /tasks/{id} on crest_tasks while it is reloaded
# by SIGHUP every BENCH_RELOAD_EVERY seconds (bench/reload.sh), against
# crest_tasks without reloads.
# changes (bench/changes.sh: bench/changes.py on each store, once, after the
# wrk scenarios): events/s to 100 subscribers while POST /tasks runs, the RSS
# with 1,000 idle subscribers, and a write's time from one crest process to a
# subscriber of another (PostgreSQL: LISTEN/NOTIFY; SQLite: the look at the
# log's end).
#
# Environment: BENCH_DURATION (10s), BENCH_RUNS (3), BENCH_CONNS ("64 256"),
# BENCH_WARMUP (1s; 0 for none), BENCH_ONLY (comma list of scenario names; all),
# BUILD (build), BENCH_BASE (another build folder, e.g. of main before a change:
# its crest runs tasks_get, tasks_list and tasks_post side by side with this
# build's, as crest_tasks_base, so the two are compared in one run),
# BENCH_PG_POOL (8: the pool of each crest process on PostgreSQL and of
# FastAPI's asyncpg).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
CONNS=${BENCH_CONNS:-64 256}
WARMUP=${BENCH_WARMUP:-1s}
ONLY=${BENCH_ONLY:-}
THREADS=1
RESULTS="$HERE/results"
SQL_ROWS=100000
TASKS_ROWS=100000
PY=/usr/bin/python3   # FastAPI's interpreter: the Debian packages live there

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$BUILD/crest" ] || die "$BUILD/crest is missing: run 'make build' first"
[ -x "$BUILD/examples/hello" ] || die "$BUILD/examples/hello is missing: run 'make build' first"

mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/crest-bench.XXXXXX")
# Databases that take writes live on the disk of the repository (bench/results
# is git-ignored), not in TMPDIR, which may be a tmpfs where fsync costs nothing.
DBDIR=$(mktemp -d "$RESULTS/db.XXXXXX")
RAW="$TMP/raw.tsv"
WRKLOG="$TMP/wrk"
mkdir -p "$WRKLOG"

# ---------------------------------------------------------------- processes
# Every process this script starts is recorded here and, if still alive, ended
# by its PID on exit; nothing is killed by name.
STARTED=()
PG_DIR=""    # the PostgreSQL cluster's folder (tests/pg/cluster.py), when a scenario needs it
SRV_PID="" RSS_PID="" SRV_NAME="" SRV_DB="" SRV_PGDB=""
SRV_PIDS=()   # every process of the server measured now (crest processes, nginx), stopped by stop_server
SRV_KIDS=()   # their children to make sure of (nginx workers)
cleanup() {
  local rc=$?
  set +e
  for pid in "${STARTED[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null; fi
  done
  for pid in "${STARTED[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  done
  if [ -n "$PG_DIR" ]; then
    "$PY" "$ROOT/tests/pg/cluster.py" stop "$PG_DIR" || echo "bench: could not stop the PostgreSQL cluster in $PG_DIR" >&2
  fi
  rm -rf "$TMP" "$DBDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT PID: until 127.0.0.1:PORT accepts a connection (10 s at most),
# failing early when PID has exited.
wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# proc_kb PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in kB.
proc_kb() {
  awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print "nan" }' "/proc/$1/status" 2>/dev/null || echo nan
}

# stop_server: ends the processes of the server started last (SRV_PIDS, named
# SRV_NAME), nginx first, and waits for them.
stop_server() {
  local i pid pids=("${SRV_PIDS[@]}")
  [ ${#pids[@]} -gt 0 ] || pids=("$SRV_PID")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$SRV_NAME (pid $pid) did not stop on SIGTERM within 5 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  # nginx's worker is ours too: make sure it went with its master.
  for pid in "${SRV_KIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      sleep 0.5
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  done
  SRV_PIDS=() SRV_KIDS=()
}

# alive: whether every process of the server measured now still runs.
alive() {
  local pid
  for pid in "${SRV_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}

# ---------------------------------------------------------------- servers
# start_<server> PORT: starts the server in the background on 127.0.0.1:PORT
# through start_server, which sets SRV_PID (the process to stop) and RSS_PID
# (the process whose memory is reported) and waits until the port accepts
# connections (fails if it does not). Add a server by adding a one-line
# start_<name> function and a label.
declare -A SERVER_LABEL=(
  [nginx]="nginx (return 200, 1 worker)"
  [crest_hello]="crest examples/hello (--workers 1)"
  [crest_sql]="crest serve bench/sql-app.yaml (--workers 1)"
  [crest_tasks]="crest serve bench/tasks-app.yaml (--workers 1, durability: full)"
  [crest_tasks_normal]="crest serve bench/tasks-app.yaml with durability: normal (--workers 1)"
  [crest_tasks_base]="BENCH_BASE's crest serve bench/tasks-app.yaml (--workers 1, durability: full): the build compared with"
  [crest_tasks_auth]="crest serve bench/tasks-auth-app.yaml: tasks-app.yaml with JWT auth (HS256), reads need a bearer token (--workers 1)"
  [nginx_tls]="nginx over TLS (return 200, 1 worker, TLSv1.2/1.3, the run's self-signed certificate)"
  [crest_hello_tls]="crest examples/hello over TLS (--workers 1, --tls-cert/--tls-key: the run's self-signed certificate)"
  [fastapi_tasks]="FastAPI + SQLAlchemy + uvicorn, bench/fastapi_tasks.py (1 worker, SQLite WAL, synchronous=FULL)"
)
# The command of each server as the report shows it (start_server sets it).
declare -A SERVER_CMD=()
# The durability of the servers that write (SQLite synchronous=FULL or NORMAL);
# report.py holds crest to the FastAPI target only where they match.
declare -A SERVER_DURABILITY=([crest_tasks]=full [crest_tasks_normal]=normal [crest_tasks_auth]=full [fastapi_tasks]=full
  [crest_tasks_base]=full)
# Servers whose failure to start or to last the load skips their rows instead of
# ending the benchmark.
declare -A SERVER_SOFT=([fastapi_tasks]=1)

# shown_cmd PORT WORD...: the command as the report shows it: the run's folders
# and port as placeholders (DBDIR, TMP, bench, build, PORT), no secret.
shown_cmd() {
  local port=$1 cmd
  shift
  cmd="$*"
  cmd=${cmd#env }
  [ -z "${JWT_SECRET:-}" ] || cmd=${cmd//"$JWT_SECRET"/"(32 random bytes, hex, per run)"}
  [ -z "${BENCH_BASE:-}" ] || cmd=${cmd//"$BENCH_BASE"/"\$BENCH_BASE"}
  cmd=${cmd//"$DBDIR"/DBDIR}
  cmd=${cmd//"$TMP"/TMP}
  cmd=${cmd//"$BUILD"/build}
  cmd=${cmd//"$HERE"/bench}
  printf '%s\n' "${cmd//$port/PORT}"
}

# start_server NAME PORT CMD...: starts CMD (with `env` for its environment) in
# the background, its output appended to SRV_OUT (default /dev/null), records
# it (STARTED, SRV_PIDS; SRV_PID and RSS_PID: itself), sets SERVER_CMD[NAME] and waits
# until 127.0.0.1:PORT accepts connections; fails when it does not within
# 10 s or CMD exited.
start_server() {
  local name=$1 port=$2
  shift 2
  SERVER_CMD[$name]=$(shown_cmd "$port" "$@")
  "$@" >>"${SRV_OUT:-/dev/null}" 2>&1 &
  SRV_PID=$!
  STARTED+=("$SRV_PID")
  SRV_PIDS+=("$SRV_PID")
  RSS_PID=$SRV_PID
  wait_port "$port" "$SRV_PID"
}

NGINX_MODULES_OFF=$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--without-http_\(.*\)_module$/\1/p')
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"

# nginx_from NAME TEMPLATE PORT: starts nginx as server NAME with
# bench/TEMPLATE filled in (@PREFIX@, @PORT@, @USER@, @CERT@/@KEY@ for the
# TLS one, @UPSTREAMS@ from UPSTREAMS for the proxy); RSS_PID is its worker.
nginx_from() {
  local name=$1 template=$2 port=$3
  local dir="$TMP/nginx-$port" conf
  mkdir -p "$dir/tmp"
  conf=$(sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$USER_LINE|" \
    -e "s|@CERT@|$TLS_CERT|g" -e "s|@KEY@|$TLS_KEY|g" -e "s|@UPSTREAMS@|${UPSTREAMS:-}|" "$HERE/$template")
  local m
  for m in proxy fastcgi uwsgi scgi; do   # temp paths of modules this nginx lacks
    if grep -qx "$m" <<<"$NGINX_MODULES_OFF"; then conf=$(grep -v "^ *${m}_temp_path" <<<"$conf"); fi
  done
  printf '%s\n' "$conf" >"$dir/nginx.conf"
  SRV_OUT="$dir/stdout.log" start_server "$name" "$port" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ||
    return 1
  SERVER_CMD[$name]+=" (bench/$template)"
  local i w=""
  for i in $(seq 100); do
    w=$(pgrep -P "$SRV_PID" | head -n1 || true)
    [ -n "$w" ] && break
    sleep 0.05
  done
  if [ -n "$w" ]; then RSS_PID=$w; STARTED+=("$w"); SRV_KIDS+=("$w"); fi
}

# tasks_copy PORT: a fresh copy of the filled tasks database for one server
# start (SRV_DB, removed by drop_db after the server stopped), so the rows one
# server creates are not seen by the next.
tasks_copy() {
  SRV_DB="$DBDIR/run-$1.db"
  rm -f "$SRV_DB" "$SRV_DB-wal" "$SRV_DB-shm"
  cp "$DBDIR/${TASKS_DB:-tasks.db}" "$SRV_DB"
}

# crest_serve_tasks NAME PORT APP [ENV=VALUE...]: crest serve APP (--workers 1) on
# a fresh copy of the tasks database, BUILD's crest unless CREST is set.
crest_serve_tasks() {
  local name=$1 port=$2 app=$3
  shift 3
  tasks_copy "$port"
  start_server "$name" "$port" env "$@" CREST_DATABASE="sqlite:$SRV_DB" \
    "${CREST:-$BUILD/crest}" serve "$app" --listen "127.0.0.1:$port" --workers 1
}

start_nginx() { nginx_from nginx nginx.conf.in "$1"; }
start_nginx_tls() { nginx_from nginx_tls nginx-tls.conf.in "$1"; }
start_crest_hello() {
  start_server crest_hello "$1" "$BUILD/examples/hello" --listen "127.0.0.1:$1" --workers 1 --db "$TMP/hello.db"
}
start_crest_hello_tls() {
  start_server crest_hello_tls "$1" "$BUILD/examples/hello" --listen "127.0.0.1:$1" --workers 1 \
    --db "$TMP/hello-tls.db" --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY"
}
start_crest_sql() {
  start_server crest_sql "$1" env CREST_DATABASE="sqlite:$TMP/bench.db" \
    "$BUILD/crest" serve "$HERE/sql-app.yaml" --listen "127.0.0.1:$1" --workers 1
}
start_crest_tasks() { crest_serve_tasks crest_tasks "$1" "$HERE/tasks-app.yaml"; }
# BENCH_BASE's crest may predate the row version crest keeps on every model's
# table (crest_version): it refuses a column no field names, so it gets the
# same rows without that column (made once).
start_crest_tasks_base() {
  if [ ! -f "$DBDIR/tasks-base.db" ]; then
    cp "$DBDIR/tasks.db" "$DBDIR/tasks-base.db"
    python3 - "$DBDIR/tasks-base.db" <<'PY' || die "could not make the tasks database for BENCH_BASE"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
if any(r[1] == "crest_version" for r in con.execute("PRAGMA table_info(tasks)")):
    con.execute("ALTER TABLE tasks DROP COLUMN crest_version")
con.commit()
con.execute("VACUUM")
PY
  fi
  TASKS_DB=tasks-base.db CREST="$BENCH_BASE/crest" crest_serve_tasks crest_tasks_base "$1" "$HERE/tasks-app.yaml"
}
# bench/tasks-app.yaml with durability: normal (make_tasks_db writes it)
start_crest_tasks_normal() { crest_serve_tasks crest_tasks_normal "$1" "$TMP/tasks-app-normal.yaml"; }
# JWT auth: CREST_JWT_SECRET is the run's secret.
start_crest_tasks_auth() {
  crest_serve_tasks crest_tasks_auth "$1" "$HERE/tasks-auth-app.yaml" CREST_JWT_SECRET="$JWT_SECRET"
}
start_fastapi_tasks() {
  tasks_copy "$1"
  SRV_OUT="$TMP/fastapi.log" start_server fastapi_tasks "$1" env TASKS_DB="$SRV_DB" "$PY" -m uvicorn \
    --app-dir "$HERE" fastapi_tasks:app --host 127.0.0.1 --port "$1" --workers 1 --no-access-log --log-level warning
}

# PostgreSQL: its cluster, servers, pgbench and the CPU samples (bench/pg.sh).
# shellcheck source=bench/pg.sh
. "$HERE/pg.sh"
# The relations scenarios' databases, servers and statement counts.
# shellcheck source=bench/relations.sh
. "$HERE/relations.sh"
# The idempotent creates' server and scenarios.
# shellcheck source=bench/idempotency.sh
. "$HERE/idempotency.sh"
# The gzip scenario's servers and check.
# shellcheck source=bench/gzip.sh
. "$HERE/gzip.sh"
# The conditional-requests scenarios' check (etag_200, etag_304).
# shellcheck source=bench/etag.sh
. "$HERE/etag.sh"
# The cursor scenarios' check (the cursor of each server's page).
# shellcheck source=bench/cursor.sh
. "$HERE/cursor.sh"
# The hot reload scenario's server (reloaded by SIGHUP while measured) and its check.
# shellcheck source=bench/reload.sh
. "$HERE/reload.sh"

# The change feed's group (bench/changes.py once per store, after the wrk scenarios).
# shellcheck source=bench/changes.sh
. "$HERE/changes.sh"

# ---------------------------------------------------------------- scenarios
# scenario NAME GROUP METHOD PATH LUA RPS_TARGET P99_TARGET VERSUS SERVER...
#   GROUP     the report table the scenario goes in: core, tasks, pg, pgscale,
#             auth, https
#   METHOD    the sample request's method (GET, or POST with SCEN_BODY[NAME]);
#             under load the Lua script sets its own
#   PATH      request path; with a Lua script, a sample request (checked
#             before the load) and the URL wrk is given
#   LUA       wrk script under bench/ that builds each request, or "-"
#   RPS_TARGET / P99_TARGET  minimum req/s ratio / maximum p99 ratio of each
#             non-baseline server against the first (baseline) server, or "-"
#   VERSUS    SERVER:RATIO: every crest server's req/s is also compared with
#             SERVER's; those of the same durability must reach RATIO. Or "-"
# The RSS targets (idle / peak under c256, MiB) apply to every crest server.
# SCEN_SCHEME[NAME]=https: the scenario speaks TLS (wrk, the sample request);
# SCEN_AUTH[NAME]=1: the sample request carries the bearer token the Lua script
# sends; SCEN_CHECK[NAME]=FUNCTION: FUNCTION SERVER PORT PATH checks each server
# after it started, before any load, and the benchmark ends when it fails.
# SCEN_PGBENCH[NAME]=SCRIPT: the server pgbench runs bench/SCRIPT instead of
# wrk's requests (bench/pg.sh's measure_pgbench). SCEN_PER[NAME]=OTHER:RATIO:
# report.py divides each server's req/s in NAME by its req/s in OTHER, which
# should reach RATIO.
SCENARIOS=()
declare -A SCEN_BODY=() SCEN_SCHEME=() SCEN_AUTH=() SCEN_CHECK=() SCEN_PGBENCH=() SCEN_SQLITE=() SCEN_PER=()
scenario() { SCENARIOS+=("$*"); }
scenario hello core GET /hello - 0.95 1.2 - nginx crest_hello
scenario sql core GET /items/12345 random_id.lua 0.6 - - nginx crest_sql
BASE_SRV=""
if [ -n "${BENCH_BASE:-}" ]; then
  [ -x "$BENCH_BASE/crest" ] || { echo "bench: BENCH_BASE=$BENCH_BASE has no crest binary" >&2; exit 1; }
  BASE_SRV=crest_tasks_base
fi
LIST_PATH='/tasks?where=%7B%22is_completed%22%3Afalse%7D&sort_by=-spent_time&page_size=20&count=none'
scenario tasks_get tasks GET /tasks/12345 tasks_get.lua 0.5 - fastapi_tasks:20 nginx crest_tasks $BASE_SRV fastapi_tasks
scenario tasks_list tasks GET "$LIST_PATH" - 0.3 - fastapi_tasks:20 nginx crest_tasks $BASE_SRV fastapi_tasks
scenario tasks_post tasks POST /tasks tasks_post.lua - - fastapi_tasks:20 \
  nginx crest_tasks $BASE_SRV crest_tasks_normal fastapi_tasks
SCEN_BODY[tasks_post]='{"title":"bench","spent_time":1}'
scenario pg_get pg GET /tasks/12345 tasks_get.lua 0.7 - fastapi_pg:10 pgbench pgbench_pool crest_pg fastapi_pg
scenario pg_list pg GET "$LIST_PATH" - 0.7 - fastapi_pg:10 pgbench pgbench_pool crest_pg fastapi_pg
scenario pg_post pg POST /tasks tasks_post.lua - - fastapi_pg:10 pgbench pgbench_pool crest_pg fastapi_pg
scenario pg_scale pgscale GET /tasks/12345 tasks_get.lua - - - crest_pg_x1 crest_pg_x2 crest_pg_x3
SCEN_BODY[pg_post]=${SCEN_BODY[tasks_post]}
SCEN_PGBENCH=([pg_get]=pg_get.sql [pg_list]=pg_list.sql [pg_post]=pg_post.sql)
# SCEN_SQLITE[NAME]=OTHER: report.py compares crest_pg in NAME with crest_tasks in OTHER.
SCEN_SQLITE=([pg_get]=tasks_get [pg_list]=tasks_list [pg_post]=tasks_post)
scenario tasks_auth auth GET /tasks/12345 tasks_get_auth.lua 0.9 - - crest_tasks crest_tasks_auth
SCEN_AUTH[tasks_auth]=1
SCEN_CHECK[tasks_auth]=check_auth
scenario https_hello https GET /hello - 0.8 - - nginx_tls crest_hello_tls
SCEN_SCHEME[https_hello]=https
SCEN_CHECK[https_hello]=check_https
scenario rel_list relations GET '/people?page_size=20' people_page.lua - - - crest_people crest_people_pg
scenario rel_include relations GET '/people?include=computers&page_size=20' people_page.lua - - - \
  crest_people crest_people_pg
scenario rel_where relations GET '/computers?where=%7B%22owner.name%22%3A%22person%201234%22%7D' \
  computers_where.lua - - - crest_people crest_people_pg
SCEN_CHECK+=([rel_list]=check_relations [rel_include]=check_relations [rel_where]=check_relations)
SCEN_PER[rel_include]=rel_list:0.4
idem_scenarios
scenario gzip_list gzip GET "$GZIP_PATH" - - - - crest_tasks crest_tasks_gz1 crest_tasks_gz6
SCEN_CHECK[gzip_list]=check_gzip
scenario etag_200 etag GET /tasks/12345 etag_200.lua - - - crest_tasks crest_pg
scenario etag_304 etag GET /tasks/12345 etag_304.lua - - - crest_tasks crest_pg
SCEN_CHECK+=([etag_200]=check_etag [etag_304]=check_etag)
SCEN_PER[etag_304]=etag_200:1.0
for n in 10 100 1000; do
  scenario "cursor_page$n" cursor GET "$CURSOR_PATH" cursor_page.lua - - - crest_tasks crest_pg
  scenario "cursor_next$n" cursor GET "$CURSOR_PATH" cursor_page.lua - - - crest_tasks crest_pg
  SCEN_CHECK+=(["cursor_page$n"]=check_cursor ["cursor_next$n"]=check_cursor)
done
scenario tasks_reload reload GET /tasks/12345 tasks_get.lua 0.8 - - crest_tasks crest_tasks_reloading
SCEN_CHECK[tasks_reload]=check_reload
# SHARED_BASELINE[NAME]=OTHER: when OTHER runs too, NAME's baseline is not measured
# again but takes OTHER's numbers of the same run, because the baseline cannot
# tell the two request patterns apart: nginx answers GET /items/N
# (random_id.lua) and GET /tasks/N (tasks_get.lua), the same number of bytes,
# with the same `return 200`. Saves three server measurements of ~24 s.
declare -A SHARED_BASELINE=([tasks_get]=sql)
RSS_IDLE_TARGET=8
RSS_PEAK_TARGET=16

changes_select
if [ -n "$ONLY" ]; then
  declare -A want=()
  for n in ${ONLY//,/ }; do want[$n]=1; done
  selected=() known=()
  for s in "${SCENARIOS[@]}"; do
    n=${s%% *}
    known+=("$n")
    if [ -n "${want[$n]:-}" ]; then selected+=("$s"); unset "want[$n]"; fi
  done
  [ ${#want[@]} = 0 ] || die "BENCH_ONLY: unknown scenario(s): ${!want[*]} (known: ${known[*]})"
  SCENARIOS=("${selected[@]}")
elif [ -n "${BENCH_ONLY:-}" ]; then
  SCENARIOS=()   # BENCH_ONLY named the changes group alone
fi
[ ${#SCENARIOS[@]} -gt 0 ] || [ -n "$CHANGES_RUN" ] || die "no scenario selected"

# uses SERVER: whether a selected scenario runs SERVER.
uses() {
  local s
  for s in "${SCENARIOS[@]}"; do
    case " $s " in *" $1 "*) return 0 ;; esac
  done
  return 1
}

# ---------------------------------------------------------------- FastAPI
# Optional: when its packages cannot be imported, its rows say "skipped".
FASTAPI_SKIP="" FASTAPI_INFO=""
FASTAPI_PROBE='
import importlib.util as u, platform
import fastapi, pydantic, sqlalchemy, starlette, uvicorn
loop = "uvloop" if u.find_spec("uvloop") else "asyncio"
http = "httptools" if u.find_spec("httptools") else "h11"
print(f"FastAPI {fastapi.__version__}, Starlette {starlette.__version__}, Pydantic {pydantic.VERSION}, "
      f"SQLAlchemy {sqlalchemy.__version__}, uvicorn {uvicorn.__version__} (--loop auto: {loop}, --http auto: {http}), "
      f"Python {platform.python_version()}")
'
# probe SKIP_VAR INFO_VAR LABEL WHAT CODE: INFO_VAR gets what CODE prints
# run by $PY; when PY is missing or CODE fails, SKIP_VAR says why.
probe() {
  local -n skip=$1 info=$2
  local out
  if [ ! -x "$PY" ]; then
    skip="$PY is missing"
  elif ! out=$("$PY" -c "$5" 2>&1); then
    skip="$4 cannot be imported by $PY ($(tail -n1 <<<"$out"); scripts/deps.sh bench installs them)"
  else
    info=$out
  fi
  if [ -n "$skip" ]; then log "$3 skipped: $skip"; else log "$3: $info"; fi
}
FASTAPI_PG_SKIP="" FASTAPI_PG_INFO=""
if uses fastapi_tasks; then
  probe FASTAPI_SKIP FASTAPI_INFO FastAPI "FastAPI, SQLAlchemy or uvicorn" "$FASTAPI_PROBE"
fi
# FastAPI + asyncpg (fastapi_pg): the same, asyncpg too.
if uses fastapi_pg; then
  probe FASTAPI_PG_SKIP FASTAPI_PG_INFO "FastAPI + asyncpg" "FastAPI, asyncpg or uvicorn" \
    'import asyncpg, fastapi, uvicorn; print(f"asyncpg {asyncpg.__version__}")'
fi
declare -A SKIP_REASON=([fastapi_tasks]=$FASTAPI_SKIP [fastapi_pg]=$FASTAPI_PG_SKIP)

# ---------------------------------------------------------------- auth
# tasks_auth: a random secret per run (in CREST_JWT_SECRET of crest_tasks_auth
# and of `crest token` only; never written to a file or the report) and a token
# signed with it; bench/tasks_get_auth.lua reads the token from BENCH_AUTH_TOKEN.
# FORGED_TOKEN, the same claims signed with another secret, must be refused.
JWT_SECRET="" FORGED_TOKEN="" AUTH_INFO="" TOKEN_MADE=0
# auth_token SECRET: prints a token for sub=bench, valid 2 h, signed with SECRET.
auth_token() {
  CREST_JWT_SECRET="$1" CREST_DATABASE="sqlite:$TMP/auth-token.db" \
    "$BUILD/crest" token "$HERE/tasks-auth-app.yaml" --sub bench --ttl 2h 2>"$TMP/auth-token.log" ||
    { cat "$TMP/auth-token.log" >&2; die "tasks_auth: crest token bench/tasks-auth-app.yaml --sub bench --ttl 2h failed"; }
}
if uses crest_tasks_auth; then
  command -v curl >/dev/null 2>&1 || die "curl is missing (tasks_auth checks its servers with it)"
  # The app must stay tasks-app.yaml plus auth: and permissions:, or the ratio
  # measures something else than authentication.
  python3 - "$HERE/tasks-app.yaml" "$HERE/tasks-auth-app.yaml" <<'EOF' ||
import re, sys
def core(path):
    out, skip = [], False
    for line in open(path, encoding="utf-8"):
        line = re.sub(r"\s+#.*$|^#.*$", "", line.rstrip("\n"))
        if not line.strip():
            continue
        if skip and line.startswith(" "):
            continue
        skip = line == "auth:"
        if skip or re.match(r"\s+permissions:", line):
            continue
        out.append(line)
    return out
a, b = core(sys.argv[1]), core(sys.argv[2])
if a != b:
    import difflib
    sys.stderr.write("\n".join(difflib.unified_diff(a, b, sys.argv[1], sys.argv[2], lineterm="")) + "\n")
    sys.exit(1)
EOF
    die "bench/tasks-auth-app.yaml differs from bench/tasks-app.yaml in more than auth: and permissions: (diff above)"
  JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  CREST_JWT_SECRET="$JWT_SECRET" CREST_DATABASE="sqlite:$TMP/auth-token.db" \
    "$BUILD/crest" check "$HERE/tasks-auth-app.yaml" >"$TMP/auth-check.log" 2>&1 ||
    { cat "$TMP/auth-check.log" >&2; die "tasks_auth: crest check bench/tasks-auth-app.yaml failed"; }
  BENCH_AUTH_TOKEN=$(auth_token "$JWT_SECRET") TOKEN_MADE=$SECONDS
  FORGED_TOKEN=$(auth_token "$(python3 -c 'import secrets; print(secrets.token_hex(32))')")
  [ -n "$BENCH_AUTH_TOKEN" ] && [ "$BENCH_AUTH_TOKEN" != "$FORGED_TOKEN" ] ||
    die "tasks_auth: crest token printed no token (or the same one for two secrets)"
  export BENCH_AUTH_TOKEN
  AUTH_INFO="HS256, secret: 32 random bytes (hex) drawn per run in CREST_JWT_SECRET; token: \`crest token bench/tasks-auth-app.yaml --sub bench --ttl 2h\`, ${#BENCH_AUTH_TOKEN} bytes, claims $(python3 -c '
import base64, sys
p = sys.argv[1].split(".")[1]
print(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode())' "$BENCH_AUTH_TOKEN")"
  log "tasks_auth: $AUTH_INFO"
fi
# fresh_token: a new token (same claims, later iat/exp) once the one in
# BENCH_AUTH_TOKEN is an hour old, so long benchmarks never send an expired one.
fresh_token() {
  if [ $((SECONDS - TOKEN_MADE)) -ge 3600 ]; then
    BENCH_AUTH_TOKEN=$(auth_token "$JWT_SECRET") TOKEN_MADE=$SECONDS
    log "tasks_auth: a new token (the previous one was an hour old)"
  fi
}

# ---------------------------------------------------------------- TLS
# https_hello: a self-signed EC P-256 certificate for 127.0.0.1 (CN and SAN),
# made per run; nginx_tls and crest_hello_tls serve the same files, and the
# checks verify the chain and the address against it (curl --cacert).
TLS_CERT="" TLS_KEY="" TLS_INFO=""
if uses nginx_tls || uses crest_hello_tls; then
  for tool in openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (https_hello needs it)"
  done
  nginx -V 2>&1 | grep -q -- '--with-http_ssl_module' || die "https_hello: this nginx is built without http_ssl_module"
  if uses crest_hello_tls && ! "$BUILD/examples/hello" --help 2>&1 | grep -q -- '--tls-cert'; then
    die "https_hello: $BUILD/examples/hello has no --tls-cert/--tls-key options (a build without HTTPS support): rebuild it, or leave the scenario out with BENCH_ONLY"
  fi
  mkdir -p "$TMP/tls"
  TLS_CERT="$TMP/tls/cert.pem" TLS_KEY="$TMP/tls/key.pem"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TLS_KEY" -out "$TLS_CERT" >"$TMP/tls/openssl.log" 2>&1 ||
    { cat "$TMP/tls/openssl.log" >&2; die "https_hello: openssl req could not make a self-signed certificate"; }
  # crest's TLS start once with its log kept, so a refused certificate or a
  # missing option is reported as such instead of "did not accept connections".
  if uses crest_hello_tls; then
    port=$(free_port)
    SRV_NAME=crest_hello_tls
    if ! SRV_OUT="$TMP/tls/hello.log" start_server tls_check "$port" env CREST_ACCESS_LOG=off \
      "$BUILD/examples/hello" --listen "127.0.0.1:$port" --workers 1 --db "$TMP/hello-tls.db" \
      --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY"; then
      stop_server
      cat "$TMP/tls/hello.log" >&2
      die "https_hello: build/examples/hello --tls-cert TMP/tls/cert.pem --tls-key TMP/tls/key.pem did not start (its output above)"
    fi
    stop_server
  fi
  libssl() { ldd "$1" 2>/dev/null | awk '$1 ~ /^libssl/ { print $3; f = 1; exit } END { if (!f) print "no libssl" }'; }
  TLS_INFO="$(openssl version | sed 's/ (Library: \(.*\))$/ (openssl CLI; library: \1)/');"
  TLS_INFO+=" nginx $(nginx -V 2>&1 | sed -n 's/^built with //p');"
  TLS_INFO+=" libssl loaded by build/examples/hello: $(libssl "$BUILD/examples/hello"), by wrk: $(libssl "$(command -v wrk)");"
  TLS_INFO+=" certificate: self-signed ECDSA $(openssl x509 -in "$TLS_CERT" -noout -text | awk '/NIST CURVE/ { print $NF }') for"
  TLS_INFO+=" 127.0.0.1 (CN and SAN), made per run with \`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1\`"
  log "https_hello: $TLS_INFO"
fi

# check_auth SERVER PORT PATH: prints what it saw; fails unless the run's
# token reads on every server and crest_tasks_auth answers 401 without a token
# and to a token signed with another secret (crest_tasks, without auth: 200).
check_auth() {
  local server=$1 url="http://127.0.0.1:$2$3" with without forged want=200
  with=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_AUTH_TOKEN" "$url") || with="no answer"
  without=$(curl -s -o /dev/null -w '%{http_code}' "$url") || without="no answer"
  forged=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FORGED_TOKEN" "$url") || forged="no answer"
  [ "$server" = crest_tasks_auth ] && want=401
  echo "GET $3 with the token: $with (want 200), without a token: $without (want $want)," \
    "with a token signed by another secret: $forged (want $want)"
  [ "$with" = 200 ] && [ "$without" = "$want" ] && [ "$forged" = "$want" ]
}

# check_https SERVER PORT PATH: the answer over TLS, verifying the run's
# certificate (chain and address); notes the protocol and cipher OpenSSL's
# defaults negotiate (wrk uses them too) as a '#tls' line.
check_https() {
  local server=$1 url="https://127.0.0.1:$2$3" got hs proto cipher group
  got=$(curl -sS --cacert "$TLS_CERT" -w ' %{http_code}' "$url" 2>&1) || got="curl: $got"
  hs=$(openssl s_client -connect "127.0.0.1:$2" -brief -CAfile "$TLS_CERT" -verify_return_error -verify_ip 127.0.0.1 \
    </dev/null 2>&1) || true
  proto=$(awk -F': ' '/^Protocol version/ { print $2 }' <<<"$hs")
  cipher=$(awk -F': ' '/^Ciphersuite/ { print $2 }' <<<"$hs")
  group=$(awk -F': ' '/^Server Temp Key/ { print $2 }' <<<"$hs")
  printf '#tls\t%s\t%s\t%s\t%s\n' "$server" "${proto:-?}" "${cipher:-?}" "${group:-?}" >>"$RAW"
  echo "curl --cacert TMP/tls/cert.pem $url -> $got (want {\"message\":\"hello\"} 200); openssl s_client:" \
    "${proto:-?} ${cipher:-?} ${group:-?}, verification: $(awk -F': ' '/^Verification/ { print $2 }' <<<"$hs")"
  [ "$got" = '{"message":"hello"} 200' ] && [ -n "$proto" ] && grep -q '^Verification: OK' <<<"$hs"
}

# ---------------------------------------------------------------- data
make_sql_db() {
  local db="$TMP/bench.db"
  local sql="CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $SQL_ROWS)
INSERT INTO items (id, name, qty) SELECT i, 'item ' || i, i % 1000 FROM n;"
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 "$db" "$sql"
  else
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' "$db" "$sql"
  fi
}

# make_tasks_db: crest creates the tasks table (columns, indexes) in an empty
# file, as it does on a first start, and is stopped; bench/fill_tasks.py then
# inserts the rows in one transaction. Every server start gets a copy
# (tasks_copy).
make_tasks_db() {
  local db="$DBDIR/tasks.db" port
  port=$(free_port)
  SRV_NAME="crest (creating the tasks table)"
  if ! SRV_OUT="$TMP/tasks-create.log" start_server tasks_create "$port" env CREST_DATABASE="sqlite:$db" \
    "$BUILD/crest" serve "$HERE/tasks-app.yaml" --listen "127.0.0.1:$port" --workers 1; then
    cat "$TMP/tasks-create.log" >&2
    die "crest serve bench/tasks-app.yaml did not start on an empty database"
  fi
  stop_server
  python3 "$HERE/fill_tasks.py" "$db" "$TASKS_ROWS" >"$TMP/tasks-fill.tsv" || die "bench/fill_tasks.py failed"
  log "tasks: $(awk -F'\t' '$1 == "rows" { print $2 " rows, " $3 }' "$TMP/tasks-fill.tsv");" \
    "list query plan: $(awk -F'\t' '$1 == "plan" { print $2 }' "$TMP/tasks-fill.tsv")"
  sed 's/^durability: full\b/durability: normal/' "$HERE/tasks-app.yaml" >"$TMP/tasks-app-normal.yaml"
  grep -q '^durability: normal' "$TMP/tasks-app-normal.yaml" ||
    die "bench/tasks-app.yaml has no 'durability: full' line to turn into 'normal'"
}

# ---------------------------------------------------------------- measuring
# fail SERVER RUN SCENARIO REASON: a server could not be measured. Ends the
# benchmark, except for the SERVER_SOFT ones, whose rows are marked skipped.
fail() {
  local server=$1 run=$2 scen=$3 reason=$4
  [ -n "${SERVER_SOFT[$server]:-}" ] || die "$server: $reason"
  log "skipped: $server in $scen, run $run: $reason"
  printf '#skipped\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$reason" >>"$RAW"
}

# wrk_counts FILE: "RESPONSES NON2XX" as wrk counted them ("N requests in ...").
wrk_counts() {
  awk '/ requests in / { n = $1 } /Non-2xx or 3xx responses:/ { e = $NF } END { print n + 0, e + 0 }' "$1"
}

# drop_db: removes the database copy of the server measured last.
drop_db() {
  if [ -n "$SRV_DB" ]; then rm -f "$SRV_DB" "$SRV_DB-wal" "$SRV_DB-shm"; fi
  SRV_DB=""
  drop_pgdb
}

# measure RUN SCENARIO SERVER METHOD PATH LUA: one server through one request
# pattern; appends one line per connection count to $RAW.
measure() {
  local run=$1 scen=$2 server=$3 method=$4 path=$5 lua=$6
  local port url c out idle peak rps p99 non2xx sockerr lua_args=() responses=0 ok2xx=0 n e cpu0 cpu1 t0 t1
  local scheme=${SCEN_SCHEME[$scen]:-http}
  port=$(free_port)
  url="$scheme://127.0.0.1:$port$path"
  [ "$lua" != "-" ] && lua_args=(-s "$HERE/$lua")
  [ -z "${SERVER_WRK_HEADER[$server]:-}" ] || lua_args+=(-H "${SERVER_WRK_HEADER[$server]}")
  SRV_NAME=$server SRV_PIDS=() SRV_KIDS=() CUR_METHOD=$method
  [ -z "${SCEN_AUTH[$scen]:-}" ] || fresh_token
  if ! "start_$server" "$port"; then
    case "$server" in nginx* | crest_pg_x*) cat "$TMP/nginx-$port/error.log" "$TMP/nginx-$port/stdout.log" >&2 2>/dev/null ;; esac
    case "$server" in fastapi*) tail -n 20 "$TMP/fastapi.log" >&2 ;; esac
    stop_server
    drop_db
    fail "$server" "$run" "$scen" "did not accept connections on 127.0.0.1:$port"
    return 0
  fi
  # A sanity request, so a broken endpoint is seen instead of benchmarking 404s
  # (over TLS verifying the run's certificate; with the Lua script's token).
  local probe
  probe=$(python3 -c '
import http.client, os, ssl, sys
port, method, path, body, scheme, auth, ca = int(sys.argv[1]), *sys.argv[2:4], sys.argv[4] or None, *sys.argv[5:8]
if scheme == "https":
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl.create_default_context(cafile=ca))
else:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
headers = {"Content-Type": "application/json"} if body else {}
if auth:
    headers["Authorization"] = "Bearer " + os.environ["BENCH_AUTH_TOKEN"]
c.request(method, path, body=body, headers=headers)
r = c.getresponse()
print(r.status, r.read().decode("utf-8", "replace")[:200])
' "$port" "$method" "$path" "${SCEN_BODY[$scen]:-}" "$scheme" "${SCEN_AUTH[$scen]:-}" "$TLS_CERT") || probe="no answer"
  log "run $run: $scen on $server (pid $SRV_PID, port $port): $method $scheme://…$path -> $probe"
  case "$probe" in
    2*) ok2xx=1 responses=1 ;;
    *) log "WARNING: $server answered '$probe' to $method $path" ;;
  esac
  local check="${SCEN_CHECK[$scen]:-}" seen
  if [ -n "$check" ]; then
    if ! seen=$("$check" "$server" "$port" "$path" 2>&1); then
      stop_server
      drop_db
      fail "$server" "$run" "$scen" "$check failed: $seen"
      return 0
    fi
    log "run $run: $scen on $server: $check: $seen"
  fi
  sleep 1
  idle=$(proc_kb "$RSS_PID" VmRSS)
  if [ "$WARMUP" != 0 ]; then
    out="$WRKLOG/run$run-$scen-$server-warmup.txt"
    wrk -t"$THREADS" -c64 -d"$WARMUP" "${lua_args[@]}" "$url" >"$out" 2>&1 || true
    read -r n e < <(wrk_counts "$out")
    responses=$((responses + n)) ok2xx=$((ok2xx + n - e))
  fi
  for c in $CONNS; do
    out="$WRKLOG/run$run-$scen-$server-c$c.txt"
    log "run $run: $scen on $server: wrk -t$THREADS -c$c -d$DURATION --latency ${lua:+${lua_args[*]}}"
    # CPU used meanwhile: the machine's, the server's and the cluster's
    # processes' (cpu_sample), and wrk's (this shell's children, from `times`).
    cpu0=$(cpu_sample)
    t0=$EPOCHREALTIME
    times >"$TMP/times0"
    if ! wrk -t"$THREADS" -c"$c" -d"$DURATION" --latency "${lua_args[@]}" "$url" >"$out" 2>&1; then
      cat "$out" >&2
      stop_server
      drop_db
      fail "$server" "$run" "$scen" "wrk failed at c$c"
      return 0
    fi
    times >"$TMP/times1"
    t1=$EPOCHREALTIME
    cpu1=$(cpu_sample)
    cpu_line "$run" "$scen" "$server" "$c" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
      "$cpu0" "$cpu1" "$(awk -v a="$(children_cpu "$TMP/times0")" -v b="$(children_cpu "$TMP/times1")" \
      'BEGIN { printf "%.2f", b - a }')"
    if ! alive; then
      cat "$out" >&2
      case "$server" in fastapi*) tail -n 20 "$TMP/fastapi.log" >&2 ;; esac
      stop_server
      drop_db
      fail "$server" "$run" "$scen" "died under load (pid $SRV_PID) at c$c"
      return 0
    fi
    peak=$(proc_kb "$RSS_PID" VmHWM)
    rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                              m = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
                              if (m < 0) print "nan"; else printf "%.4f\n", v * m }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    read -r n e < <(wrk_counts "$out")
    responses=$((responses + n)) ok2xx=$((ok2xx + n - e))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$c" \
      "${rps:-nan}" "${p99:-nan}" "${non2xx:-0}" "${sockerr:-0}" "$idle" "$peak" >>"$RAW"
    if [ "${non2xx:-0}" != 0 ] || [ "${sockerr:-0}" != 0 ]; then
      log "WARNING: $server c$c: ${non2xx:-0} non-2xx responses, ${sockerr:-0} socket errors:"
      grep -E "Non-2xx|Socket errors" "$out" >&2 || true
    fi
  done
  # The WAL file's size after the load (SQLite removes it when the last
  # connection closes), to see whether checkpoints keep it bounded.
  local wal=0
  [ -n "$SRV_DB" ] && [ -e "$SRV_DB-wal" ] && wal=$(stat -c %s "$SRV_DB-wal")
  stop_server
  # Writes: the rows the server added against the 2xx answers wrk counted
  # (requests in flight when wrk stops may add rows it never saw answered).
  if [ "$method" = POST ] && { [ -n "$SRV_DB" ] || [ -n "$SRV_PGDB" ]; }; then
    local rows
    if [ -n "$SRV_PGDB" ]; then
      rows=$(pg_rows) || rows=nan
    else
      rows=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM tasks").fetchone()[0])' \
        "$SRV_DB" 2>/dev/null) || rows=""
      if [ -n "$rows" ]; then rows=$((rows - TASKS_ROWS)); else rows=nan; fi
    fi
    printf '#writes\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$rows" "$ok2xx" "$responses" "$wal" >>"$RAW"
    log "run $run: $scen on $server: $rows rows created; wrk counted $ok2xx 2xx of $responses responses;" \
      "WAL file $((wal / 1048576)) MiB after the load"
  fi
  drop_db
}

# ---------------------------------------------------------------- main
if uses crest_sql; then
  log "filling a $SQL_ROWS-row SQLite table (items)"
  make_sql_db
fi
# uses_tasks_db: whether a selected server serves a copy of the tasks
# database (its start function calls crest_serve_tasks), or FastAPI does.
uses_tasks_db() {
  local s w
  for s in "${SCENARIOS[@]}"; do
    for w in ${s#* }; do
      declare -F "start_$w" >/dev/null && declare -f "start_$w" | grep -q crest_serve_tasks && return 0
    done
  done
  uses fastapi_tasks && [ -z "$FASTAPI_SKIP" ]
}
if uses_tasks_db; then
  log "creating and filling a $TASKS_ROWS-row tasks table"
  make_tasks_db
fi
if uses pgbench || uses pgbench_pool || uses crest_pg || uses crest_pg_x1 || uses crest_pg_x2 || uses crest_pg_x3 ||
  { uses fastapi_pg && [ -z "$FASTAPI_PG_SKIP" ]; }; then
  log "starting a durable PostgreSQL cluster, creating and filling a $TASKS_ROWS-row tasks table in it"
  make_pg_db
fi
if uses crest_people; then
  log "creating and filling $PEOPLE_ROWS people × $PEOPLE_COMPUTERS computers (SQLite)"
  make_people_db
fi
if uses crest_people_pg; then
  log "creating and filling $PEOPLE_ROWS people × $PEOPLE_COMPUTERS computers (PostgreSQL)"
  make_pg_people_db
fi

{
  printf '#meta\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  printf '#meta\tcommand\t%s\n' "${BENCH_ONLY:+BENCH_ONLY=$BENCH_ONLY }BENCH_DURATION=$DURATION BENCH_RUNS=$RUNS BENCH_WARMUP=$WARMUP bench/run.sh  (wrk -t$THREADS -c{${CONNS// /,}} -d$DURATION --latency)"
  printf '#meta\tmachine\t%s cores (nproc), %s, %s MiB RAM, Linux %s; load average at the start %s\n' "$(nproc)" \
    "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" "$(uname -r)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '#meta\tversions\t%s; %s; %s; SQLite %s%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
    "$(wrk -v 2>&1 | head -n1 | awk '{ print "wrk " $2 }')" "$("$BUILD/crest" --version)" \
    "$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')" \
    "${TLS_INFO:+; $(openssl version | sed 's/ (Library: .*//')}"
  [ -z "$TLS_INFO" ] || printf '#meta\ttls\t%s\n' "$TLS_INFO"
  [ -z "$AUTH_INFO" ] || printf '#meta\tauth\t%s\n' "$AUTH_INFO"
  printf '#meta\tduration\t%s\n#meta\truns\t%s\n' "$DURATION" "$RUNS"
  printf '#meta\trss_target\t%s\t%s\n' "$RSS_IDLE_TARGET" "$RSS_PEAK_TARGET"
  if [ -e "$DBDIR/tasks.db" ]; then
    printf '#meta\tdb_dir\tbench/results/db.XXXXXX, %s\n' "$(df -PT "$DBDIR" | awk 'NR == 2 { print $2 " on " $7 }')"
    awk -F'\t' '{ printf "#meta\ttasks_%s", $1; for (i = 2; i <= NF; i++) printf "\t%s", $i; print "" }' "$TMP/tasks-fill.tsv"
  fi
  if uses fastapi_tasks; then
    if [ -n "$FASTAPI_SKIP" ]; then printf '#meta\tfastapi_skipped\t%s\n' "$FASTAPI_SKIP"
    else printf '#meta\tfastapi\t%s\n' "$FASTAPI_INFO"; fi
  fi
  if uses fastapi_pg && [ -n "$FASTAPI_PG_INFO" ]; then
    printf '#meta\tfastapi_pg\t%s, %s\n' "$FASTAPI_PG_INFO" "$("$PY" -c "$FASTAPI_PROBE" 2>/dev/null | sed 's/, SQLAlchemy [^,]*//')"
  fi
  [ -z "$PG_PORT" ] || pg_meta
  people_meta
  for s in "${!SCEN_SQLITE[@]}"; do printf '#sqlite_pair\t%s\t%s\n' "$s" "${SCEN_SQLITE[$s]}"; done
  for s in "${!SCEN_PER[@]}"; do printf '#per\t%s\t%s\t%s\n' "$s" "${SCEN_PER[$s]%:*}" "${SCEN_PER[$s]#*:}"; done
  for s in "${SCENARIOS[@]}"; do
    read -r name group method path lua rt pt vs servers <<<"$s"
    printf '#scenario\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$group" "$method" "$path" "$lua" "$rt" "$pt" "$vs" "$servers"
  done
  for server in "${!SERVER_DURABILITY[@]}"; do
    printf '#durability\t%s\t%s\n' "$server" "${SERVER_DURABILITY[$server]}"
  done
} >"$RAW"

declare -A MEASURED=()   # "RUN SCENARIO SERVER" measured so far
for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    read -r name group method path lua rt pt vs servers <<<"$s"
    base=${servers%% *}
    from=${SHARED_BASELINE[$name]:-}
    # shellcheck disable=SC2206
    list=($servers)
    if [ $((run % 2)) = 0 ]; then   # alternate the order across runs
      rev=()
      for ((i = ${#list[@]} - 1; i >= 0; i--)); do rev+=("${list[$i]}"); done
      list=("${rev[@]}")
    fi
    for server in "${list[@]}"; do
      printf '#server\t%s\t%s\n' "$server" "${SERVER_LABEL[$server]:-$server}" >>"$RAW"
      if [ -n "${SKIP_REASON[$server]:-}" ]; then
        printf '#skipped\t%s\t%s\t%s\t%s\n' "$run" "$name" "$server" "${SKIP_REASON[$server]}" >>"$RAW"
        log "run $run: $name on $server: skipped"
        continue
      fi
      if [ "$server" = "$base" ] && [ -n "$from" ] && [ -n "${MEASURED["$run $from $server"]:-}" ]; then
        awk -F'\t' -v OFS='\t' -v r="$run" -v f="$from" -v s="$server" -v n="$name" \
          '$1 == r && $2 == f && $3 == s { $2 = n; print }' "$RAW" >"$TMP/shared.tsv"
        cat "$TMP/shared.tsv" >>"$RAW"
        printf '#shared\t%s\t%s\t%s\t%s\n' "$run" "$name" "$server" "$from" >>"$RAW"
        log "run $run: $name on $server: the numbers of $from (same requests for $server)"
        continue
      fi
      if [ -n "${SCEN_PGBENCH[$name]:-}" ] && [[ $server == pgbench* ]]; then
        measure_pgbench "$run" "$name" "$server" "$method"
      else
        measure "$run" "$name" "$server" "$method" "$path" "$lua"
      fi
      MEASURED["$run $name $server"]=1
      printf '#cmd\t%s\t%s\n' "$server" "${SERVER_CMD[$server]:-}" >>"$RAW"
    done
  done
done
changes_measure
printf '#meta\telapsed\t%s\n' "$((SECONDS / 60)) min $((SECONDS % 60)) s" >>"$RAW"

cp "$RAW" "$RESULTS/latest.tsv"
rm -rf "$RESULTS/wrk-latest"
cp -r "$WRKLOG" "$RESULTS/wrk-latest"
if [ -s "$TMP/fastapi.log" ]; then
  cp "$TMP/fastapi.log" "$RESULTS/fastapi-latest.log"
  log "FastAPI wrote $(wc -l <"$TMP/fastapi.log") line(s) to its log: bench/results/fastapi-latest.log"
else
  rm -f "$RESULTS/fastapi-latest.log"
fi
python3 "$HERE/report.py" "$RAW" >"$RESULTS/latest.md"
cat "$RESULTS/latest.md"
log "saved to bench/results/latest.md (raw: latest.tsv, wrk output: wrk-latest/)"
