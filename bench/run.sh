#!/usr/bin/env bash
# crest benchmark: crest against nginx on the same machine, in the same run.
#
#   bench/run.sh                                # what `make bench` runs (after building build/)
#   BENCH_DURATION=2s BENCH_RUNS=1 bench/run.sh # a quick check
#
# Every scenario is one request pattern (a path, optionally a wrk Lua script)
# measured against several servers; the first server of a scenario is the
# baseline the others are compared with. For each run (the server order is
# reversed on every other run), each scenario and each server: start the server
# on a free 127.0.0.1 port, wait until it accepts connections, sample idle RSS,
# warm up, run wrk -t1 -c64 and -c256 (--latency), sample peak RSS (VmHWM), stop
# the server. bench/report.py prints the medians and ratios as a markdown table,
# saved to bench/results/latest.md (raw numbers in bench/results/latest.tsv).
#
# Environment: BENCH_DURATION (10s), BENCH_RUNS (3), BENCH_CONNS ("64 256"),
# BENCH_WARMUP (1s; 0 for none), BUILD (build).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
CONNS=${BENCH_CONNS:-64 256}
WARMUP=${BENCH_WARMUP:-1s}
THREADS=1
RESULTS="$HERE/results"
SQL_ROWS=100000

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/deps.sh bench installs it)"
done
[ -x "$BUILD/crest" ] || die "$BUILD/crest is missing: run 'make build' first"
[ -x "$BUILD/examples/hello" ] || die "$BUILD/examples/hello is missing: run 'make build' first"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crest-bench.XXXXXX")
mkdir -p "$RESULTS"
RAW="$TMP/raw.tsv"
WRKLOG="$TMP/wrk"
mkdir -p "$WRKLOG"

# ---------------------------------------------------------------- processes
# Every process this script starts is recorded here and, if still alive, ended
# by its PID on exit; nothing is killed by name.
STARTED=()
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
  rm -rf "$TMP"
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

# stop_server: ends the server started last (SRV_PID) and waits for it.
stop_server() {
  local i
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$SRV_PID" 2>/dev/null; then
    log "$SRV_NAME (pid $SRV_PID) did not stop on SIGTERM within 5 s; SIGKILL"
    kill -KILL "$SRV_PID" 2>/dev/null || true
  fi
  wait "$SRV_PID" 2>/dev/null || true
  # nginx's worker is ours too: make sure it went with its master.
  if [ "$RSS_PID" != "$SRV_PID" ] && kill -0 "$RSS_PID" 2>/dev/null; then
    sleep 0.5
    if kill -0 "$RSS_PID" 2>/dev/null; then kill -KILL "$RSS_PID" 2>/dev/null || true; fi
  fi
}

# ---------------------------------------------------------------- servers
# start_<server> PORT: starts the server in the background on 127.0.0.1:PORT and
# sets SRV_PID (the process to stop) and RSS_PID (the process whose memory is
# reported). Add a server by adding a start_<name> function and a label.
declare -A SERVER_LABEL=(
  [nginx]="nginx (return 200, 1 worker)"
  [crest_hello]="crest examples/hello (--workers 1)"
  [crest_sql]="crest serve bench/sql-app.yaml (--workers 1)"
)
declare -A SERVER_CMD=()

NGINX_MODULES_OFF=$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--without-http_\(.*\)_module$/\1/p')
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"

start_nginx() {
  local port=$1
  local dir="$TMP/nginx-$port" conf
  mkdir -p "$dir/tmp"
  conf=$(sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$USER_LINE|" "$HERE/nginx.conf.in")
  local m
  for m in proxy fastcgi uwsgi scgi; do   # temp paths of modules this nginx lacks
    if grep -qx "$m" <<<"$NGINX_MODULES_OFF"; then conf=$(grep -v "^ *${m}_temp_path" <<<"$conf"); fi
  done
  printf '%s\n' "$conf" >"$dir/nginx.conf"
  SERVER_CMD[nginx]="nginx -p DIR -e DIR/error.log -c DIR/nginx.conf (bench/nginx.conf.in)"
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  SRV_PID=$!
  STARTED+=("$SRV_PID")
  RSS_PID=$SRV_PID
  if wait_port "$port" "$SRV_PID"; then
    local i w=""
    for i in $(seq 100); do
      w=$(pgrep -P "$SRV_PID" | head -n1 || true)
      [ -n "$w" ] && break
      sleep 0.05
    done
    if [ -n "$w" ]; then RSS_PID=$w; STARTED+=("$w"); fi
  fi
}

start_crest_hello() {
  local port=$1
  SERVER_CMD[crest_hello]="build/examples/hello --listen 127.0.0.1:PORT --workers 1 --db TMP/hello.db 2>/dev/null"
  "$BUILD/examples/hello" --listen "127.0.0.1:$port" --workers 1 --db "$TMP/hello.db" 2>/dev/null &
  SRV_PID=$!
  STARTED+=("$SRV_PID")
  RSS_PID=$SRV_PID
}

start_crest_sql() {
  local port=$1
  SERVER_CMD[crest_sql]="CREST_DATABASE=sqlite:TMP/bench.db build/crest serve bench/sql-app.yaml --listen 127.0.0.1:PORT --workers 1 2>/dev/null"
  CREST_DATABASE="sqlite:$TMP/bench.db" \
    "$BUILD/crest" serve "$HERE/sql-app.yaml" --listen "127.0.0.1:$port" --workers 1 2>/dev/null &
  SRV_PID=$!
  STARTED+=("$SRV_PID")
  RSS_PID=$SRV_PID
}

# ---------------------------------------------------------------- scenarios
# scenario NAME PATH LUA RPS_TARGET P99_TARGET SERVER...
#   PATH      request path; with a Lua script, a sample request (checked
#             before the load) and the URL wrk is given
#   LUA       wrk script under bench/ that builds each request, or "-"
#   RPS_TARGET / P99_TARGET  minimum req/s ratio / maximum p99 ratio of each
#             non-baseline server against the first (baseline) server, or "-"
# The RSS targets (idle / peak under c256, MiB) apply to every crest server.
SCENARIOS=()
scenario() { SCENARIOS+=("$*"); }
scenario hello /hello - 0.95 1.2 nginx crest_hello
scenario sql /items/12345 random_id.lua 0.6 - nginx crest_sql
RSS_IDLE_TARGET=8
RSS_PEAK_TARGET=16

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

# ---------------------------------------------------------------- measuring
# measure RUN SCENARIO SERVER PATH LUA: one server through one request pattern;
# appends one line per connection count to $RAW.
measure() {
  local run=$1 scen=$2 server=$3 path=$4 lua=$5
  local port url c out idle peak rps p99 non2xx sockerr lua_args=()
  port=$(free_port)
  url="http://127.0.0.1:$port$path"
  [ "$lua" != "-" ] && lua_args=(-s "$HERE/$lua")
  "start_$server" "$port"
  if ! wait_port "$port" "$SRV_PID"; then
    [ "$server" = nginx ] && cat "$TMP/nginx-$port/error.log" "$TMP/nginx-$port/stdout.log" >&2 2>/dev/null
    die "$server did not accept connections on 127.0.0.1:$port"
  fi
  # A sanity request, so a broken endpoint is seen instead of benchmarking 404s.
  local probe_path=$path probe
  probe=$(python3 - "$port" "$probe_path" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status, r.read().decode("utf-8", "replace")[:200])
EOF
) || probe="no answer"
  log "run $run: $scen on $server (pid $SRV_PID, port $port): GET $probe_path -> $probe"
  case "$probe" in 2*) ;; *) log "WARNING: $server answered '$probe' to GET $probe_path" ;; esac
  sleep 1
  idle=$(proc_kb "$RSS_PID" VmRSS)
  if [ "$WARMUP" != 0 ]; then
    wrk -t"$THREADS" -c64 -d"$WARMUP" "${lua_args[@]}" "$url" >/dev/null 2>&1 || true
  fi
  for c in $CONNS; do
    out="$WRKLOG/run$run-$scen-$server-c$c.txt"
    log "run $run: $scen on $server: wrk -t$THREADS -c$c -d$DURATION --latency ${lua:+${lua_args[*]}}"
    if ! wrk -t"$THREADS" -c"$c" -d"$DURATION" --latency "${lua_args[@]}" "$url" >"$out" 2>&1; then
      cat "$out" >&2
      die "wrk failed against $server"
    fi
    kill -0 "$SRV_PID" 2>/dev/null || { cat "$out" >&2; die "$server (pid $SRV_PID) died under load"; }
    peak=$(proc_kb "$RSS_PID" VmHWM)
    rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                              m = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
                              if (m < 0) print "nan"; else printf "%.4f\n", v * m }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$c" \
      "${rps:-nan}" "${p99:-nan}" "${non2xx:-0}" "${sockerr:-0}" "$idle" "$peak" >>"$RAW"
    if [ "${non2xx:-0}" != 0 ] || [ "${sockerr:-0}" != 0 ]; then
      log "WARNING: $server c$c: ${non2xx:-0} non-2xx responses, ${sockerr:-0} socket errors:"
      grep -E "Non-2xx|Socket errors" "$out" >&2 || true
    fi
  done
  stop_server
}

# ---------------------------------------------------------------- main
log "filling a $SQL_ROWS-row SQLite table"
make_sql_db

{
  printf '#meta\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  printf '#meta\tcommand\t%s\n' "BENCH_DURATION=$DURATION BENCH_RUNS=$RUNS BENCH_WARMUP=$WARMUP bench/run.sh  (wrk -t$THREADS -c{${CONNS// /,}} -d$DURATION --latency)"
  printf '#meta\tmachine\t%s cores (nproc), %s, %s MiB RAM, Linux %s\n' "$(nproc)" \
    "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" "$(uname -r)"
  printf '#meta\tversions\t%s; %s; %s; SQLite %s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
    "$(wrk -v 2>&1 | head -n1 | awk '{ print "wrk " $2 }')" "$("$BUILD/crest" --version)" \
    "$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')"
  printf '#meta\tduration\t%s\n#meta\truns\t%s\n' "$DURATION" "$RUNS"
  printf '#meta\trss_target\t%s\t%s\n' "$RSS_IDLE_TARGET" "$RSS_PEAK_TARGET"
  for s in "${SCENARIOS[@]}"; do
    read -r name path lua rt pt servers <<<"$s"
    printf '#scenario\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$path" "$lua" "$rt" "$pt" "$servers"
  done
} >"$RAW"

for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    read -r name path lua rt pt servers <<<"$s"
    # shellcheck disable=SC2206
    list=($servers)
    if [ $((run % 2)) = 0 ]; then   # alternate the order across runs
      rev=()
      for ((i = ${#list[@]} - 1; i >= 0; i--)); do rev+=("${list[$i]}"); done
      list=("${rev[@]}")
    fi
    for server in "${list[@]}"; do
      printf '#server\t%s\t%s\n' "$server" "${SERVER_LABEL[$server]:-$server}" >>"$RAW"
      measure "$run" "$name" "$server" "$path" "$lua"
      printf '#cmd\t%s\t%s\n' "$server" "${SERVER_CMD[$server]:-}" >>"$RAW"
    done
  done
done

cp "$RAW" "$RESULTS/latest.tsv"
rm -rf "$RESULTS/wrk-latest"
cp -r "$WRKLOG" "$RESULTS/wrk-latest"
python3 "$HERE/report.py" "$RAW" >"$RESULTS/latest.md"
cat "$RESULTS/latest.md"
log "saved to bench/results/latest.md (raw: latest.tsv, wrk output: wrk-latest/)"
