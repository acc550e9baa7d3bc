# bench/run.sh's PostgreSQL part, sourced by it: the cluster, its servers
# (crest, FastAPI + asyncpg, 1 to 3 crest processes behind nginx), pgbench as
# the database's own ceiling, and the CPU each process group used under load.
#
# The cluster is tests/pg/cluster.py's with --durable (fsync, synchronous
# commit and full page writes on, like the SQLite scenarios' synchronous=FULL
# files on disk) in /tmp/bench-pg.XXXXXX, started by make_pg_db and stopped
# and removed by run.sh's cleanup, on failure too. crest creates the tasks
# table in database tasks_tpl, bench/fill_tasks.py --postgres fills it with
# the SQLite scenarios' rows; readers share tasks_read, a copy of it, and
# every server start of a scenario that writes gets a fresh copy (run_PORT),
# dropped after it stopped. BENCH_PG_POOL (8): the pool of each crest process
# (`pool: {size}` added to bench/tasks-app.yaml) and of FastAPI's asyncpg.

PG_BIN=/usr/lib/postgresql/15/bin
PG_POOL=${BENCH_PG_POOL:-8}
PG_PORT="" PG_POSTMASTER="" PG_DB="" CUR_METHOD=GET PG_SKIP=""
CLK_TCK=$(getconf CLK_TCK)

SERVER_LABEL+=(
  [pgbench]="pgbench -M prepared -n -j 1 -c CONNS (wrk's connection count), the scenario's bench/pg_*.sql: the statements crest sends, in its transaction shape"
  [pgbench_pool]="the same pgbench with -c BENCH_PG_POOL (as many database connections as crest_pg's pool) at every connection count"
  [crest_pg]="crest serve bench/tasks-app.yaml on PostgreSQL (--workers 1, pool size BENCH_PG_POOL)"
  [fastapi_pg]="FastAPI + asyncpg + uvicorn, bench/fastapi_tasks_pg.py (1 worker, asyncpg pool of BENCH_PG_POOL)"
  [crest_pg_x1]="nginx (1 worker, least_conn, keep-alive upstream) in front of 1 crest process (--workers 1) on PostgreSQL"
  [crest_pg_x2]="nginx in front of 2 crest processes (--workers 1 each) on PostgreSQL"
  [crest_pg_x3]="nginx in front of 3 crest processes (--workers 1 each) on PostgreSQL"
)
SERVER_DURABILITY+=([pgbench]=pg-sync [pgbench_pool]=pg-sync [crest_pg]=pg-sync [fastapi_pg]=pg-sync)
SERVER_SOFT+=([fastapi_pg]=1)

pg_uri() { printf 'postgresql://crest@127.0.0.1:%s/%s\n' "$PG_PORT" "$1"; }

# pg_sql SQL [DB]: psql's unaligned, tuples-only output of SQL on DB (postgres).
pg_sql() {
  "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$(pg_uri "${2:-postgres}")" -c "$1"
}

# pg_cluster: starts the run's cluster unless it runs already (PG_DIR,
# PG_PORT, PG_POSTMASTER).
pg_cluster() {
  [ -z "$PG_PORT" ] || return 0
  PG_DIR=$(mktemp -u /tmp/bench-pg.XXXXXX)
  "$PY" "$ROOT/tests/pg/cluster.py" start --durable "$PG_DIR" >"$TMP/pg-start.log" 2>&1 ||
    { cat "$TMP/pg-start.log" >&2; die "tests/pg/cluster.py start --durable $PG_DIR failed"; }
  PG_PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$PG_DIR/conninfo")
  local home=$PG_DIR
  [ -e "$PG_DIR/home" ] && home=$(cat "$PG_DIR/home")
  PG_POSTMASTER=$(head -n1 "$home/data/postmaster.pid")
}

# pg_app APP OUT: APP (under bench/) for PostgreSQL as OUT: its durability
# line dropped (SQLite's), `pool: {size: BENCH_PG_POOL}` added.
pg_app() {
  sed 's/^durability: full\b.*//' "$HERE/$1" >"$2"
  printf 'pool: {size: %s}\n' "$PG_POOL" >>"$2"
}

# make_pg_db: the cluster, the filled template and its read copy; the
# generated app file TMP/tasks-pg-app.yaml.
make_pg_db() {
  local port
  [ -x "$PG_BIN/pgbench" ] || die "$PG_BIN/pgbench is missing (PostgreSQL 15: scripts/deps.sh test installs it)"
  pg_cluster
  pg_sql "CREATE DATABASE tasks_tpl" >/dev/null
  pg_app tasks-app.yaml "$TMP/tasks-pg-app.yaml"
  port=$(free_port)
  SRV_NAME="crest (creating the tasks table in PostgreSQL)"
  if ! SRV_OUT="$TMP/pg-create.log" crest_pg_start pg_create "$port" tasks_tpl; then
    cat "$TMP/pg-create.log" >&2
    die "crest serve TMP/tasks-pg-app.yaml did not start on an empty PostgreSQL database"
  fi
  stop_server
  "$PY" "$HERE/fill_tasks.py" --postgres "$(pg_uri tasks_tpl)" "$TASKS_ROWS" >"$TMP/pg-fill.tsv" ||
    die "bench/fill_tasks.py --postgres failed"
  pg_sql "CREATE DATABASE tasks_read TEMPLATE tasks_tpl" >/dev/null
  log "PostgreSQL: $(pg_sql 'SHOW server_version'), $PG_DIR, port $PG_PORT;" \
    "$(awk -F'\t' '$1 == "rows" { print $2 " rows, " $3 }' "$TMP/pg-fill.tsv");" \
    "list query plan: $(awk -F'\t' '$1 == "pg_plan" { print $2 }' "$TMP/pg-fill.tsv")"
}

# pg_meta: the '#meta' lines of the cluster.
pg_meta() {
  printf '#meta\tpg\tPostgreSQL %s (tests/pg/cluster.py --durable, %s): fsync=%s, synchronous_commit=%s, full_page_writes=%s, shared_buffers=%s, max_connections=%s; data on %s; pool size BENCH_PG_POOL=%s\n' \
    "$(pg_sql 'SHOW server_version')" "/tmp/bench-pg.XXXXXX" "$(pg_sql 'SHOW fsync')" \
    "$(pg_sql 'SHOW synchronous_commit')" "$(pg_sql 'SHOW full_page_writes')" "$(pg_sql 'SHOW shared_buffers')" \
    "$(pg_sql 'SHOW max_connections')" "$(df -PT "$PG_DIR" | awk 'NR == 2 { print $2 " on " $7 }')" "$PG_POOL"
  [ ! -e "$TMP/pg-fill.tsv" ] ||
    awk -F'\t' '{ printf "#meta\tpg_%s", $1; for (i = 2; i <= NF; i++) printf "\t%s", $i; print "" }' "$TMP/pg-fill.tsv"
}

# pg_db NAME: PG_DB, the database of a server start: for a scenario that
# writes (CUR_METHOD POST) a fresh copy of the filled one (SRV_PGDB, dropped
# by drop_pgdb), else tasks_read.
pg_db() {
  PG_DB=tasks_read
  if [ "$CUR_METHOD" = POST ]; then
    SRV_PGDB="run_$1"
    pg_sql "CREATE DATABASE $SRV_PGDB TEMPLATE tasks_tpl" >/dev/null
    PG_DB=$SRV_PGDB
  fi
}

drop_pgdb() {
  if [ -n "$SRV_PGDB" ]; then pg_sql "DROP DATABASE IF EXISTS $SRV_PGDB WITH (FORCE)" >/dev/null; fi
  SRV_PGDB=""
}

# pg_rows: the rows SRV_PGDB's tasks table holds beyond the filled ones ("" if unknown).
pg_rows() {
  local n
  n=$(pg_sql "SELECT count(*) FROM tasks" "$SRV_PGDB" 2>/dev/null) && echo $((n - TASKS_ROWS))
}

# crest_pg_start NAME PORT DB: crest on PostgreSQL database DB.
crest_pg_start() {
  start_server "$1" "$2" env CREST_DATABASE="$(pg_uri "$3")" "$BUILD/crest" serve "$TMP/tasks-pg-app.yaml" \
    --listen "127.0.0.1:$2" --workers 1
}

start_crest_pg() { pg_db "$1" && crest_pg_start crest_pg "$1" "$PG_DB"; }
start_fastapi_pg() {
  pg_db "$1" || return 1
  SRV_OUT="$TMP/fastapi.log" start_server fastapi_pg "$1" env TASKS_PG="$(pg_uri "$PG_DB")" TASKS_PG_POOL="$PG_POOL" \
    "$PY" -m uvicorn --app-dir "$HERE" fastapi_tasks_pg:app --host 127.0.0.1 --port "$1" --workers 1 \
    --no-access-log --log-level warning
}

# crest_pg_behind_nginx NAME PORT N: N crest processes on free ports and
# nginx on PORT in front of them (bench/nginx-proxy.conf.in); RSS_PID is the
# first crest process.
crest_pg_behind_nginx() {
  local name=$1 port=$2 n=$3 i p ups="" first="" shown
  pg_db "$port" || return 1
  for i in $(seq "$n"); do
    p=$(free_port)
    crest_pg_start "$name" "$p" "$PG_DB" || return 1
    [ -n "$first" ] || first=$SRV_PID shown=${SERVER_CMD[$name]//$p/PORT_i}
    ups+="server 127.0.0.1:$p; "
  done
  UPSTREAMS=$ups nginx_from "$name" nginx-proxy.conf.in "$port" || return 1
  SERVER_CMD[$name]="$n × \`$shown\` (i = 1..$n), behind \`${SERVER_CMD[$name]}\`"
  RSS_PID=$first
}
start_crest_pg_x1() { crest_pg_behind_nginx crest_pg_x1 "$1" 1; }
start_crest_pg_x2() { crest_pg_behind_nginx crest_pg_x2 "$1" 2; }
start_crest_pg_x3() { crest_pg_behind_nginx crest_pg_x3 "$1" 3; }

# ---------------------------------------------------------------- CPU
# cpu_sample: "BUSY TOTAL CREST NGINX POSTGRES PYTHON", clock ticks: the
# machine's busy and total time over all cores (/proc/stat) and the CPU time
# (utime + stime) of the server's processes and of the cluster's, by command
# name. The postmaster's cutime + cstime hold its backends that have ended
# (pgbench's, when it disconnects).
cpu_sample() {
  local p files=() pids=("${SRV_PIDS[@]}" "${SRV_KIDS[@]}")
  if [ -n "$PG_POSTMASTER" ]; then
    pids+=("$PG_POSTMASTER")
    while read -r p; do pids+=("$p"); done < <(pgrep -P "$PG_POSTMASTER" || true)
  fi
  for p in $(printf '%s\n' "${pids[@]}" | sort -u); do files+=("/proc/$p/stat"); done
  awk -v pm="$PG_POSTMASTER" '
    FILENAME == "/proc/stat" { if ($1 == "cpu") { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6 } next }
    { pid = $1; comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\)[^)]*$/, "", comm)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      t[comm] += f[12] + f[13]; if (pid == pm) t[comm] += f[14] + f[15] }
    END { printf "%d %d %d %d %d %d\n", busy, total, t["crest"], t["nginx"], t["postgres"], t["python3"] }
  ' /proc/stat "${files[@]}" 2>/dev/null || true
}

# children_cpu FILE: the CPU seconds (user + system) of this shell's waited-for
# children, from the output of `times` saved in FILE.
children_cpu() {
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.2f\n", s }' "$1"
}

# cpu_line RUN SCENARIO SERVER CONNS WALL_S BEFORE AFTER CLIENT_S: the '#cpu'
# raw line: wall seconds, then CPU seconds of the machine (busy; total over
# all cores), crest, nginx, postgres, python3 and the load generator.
cpu_line() {
  local -a b a
  read -r -a b <<<"$6"
  read -r -a a <<<"$7"
  [ ${#a[@]} = 6 ] && [ ${#b[@]} = 6 ] || return 0
  printf '#cpu\t%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4" "$5" >>"$RAW"
  local i
  for i in 0 1 2 3 4 5; do
    awk -v d=$((a[i] - b[i])) -v hz="$CLK_TCK" 'BEGIN { printf "\t%.2f", d / hz }' >>"$RAW"
  done
  printf '\t%s\n' "$8" >>"$RAW"
}

# ---------------------------------------------------------------- pgbench
# seconds DURATION: wrk's duration (10s, 1m) in whole seconds for pgbench -T.
seconds() {
  case "$1" in
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# processed FILE: the transactions pgbench's output FILE says it completed.
processed() {
  awk '/^number of transactions actually processed:/ { split($6, a, "/"); n = a[1] } END { print n + 0 }' "$1"
}

# measure_pgbench RUN SCENARIO SERVER METHOD: pgbench with the scenario's
# script (SCEN_PGBENCH) at each connection count (SERVER pgbench: as many
# clients; pgbench_pool: BENCH_PG_POOL clients), on the same database the
# HTTP servers get; one raw line each (tps as req/s, p99 from its
# per-transaction log, failed transactions as errors, no RSS). pgbench's -T
# counts its connection set-up (serial with -j 1), which its tps leaves out:
# each run gets BENCH_DURATION plus 1.5 times the set-up its clients took in
# the warm-up (per client), so that about BENCH_DURATION is measured.
measure_pgbench() {
  local run=$1 scen=$2 server=$3 c out tps p99 failed before after t0 t1 secs done=0 n clients
  local script=${SCEN_PGBENCH[$scen]} per_client_ms=20 T
  SRV_NAME=$server SRV_PIDS=() SRV_KIDS=() CUR_METHOD=$4
  pg_db "$server"
  local args=(-M prepared -n -j 1 -f "$HERE/$script" -D is_completed=f -D title=bench
    -D "created_at=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)")
  SERVER_CMD[$server]="$PG_BIN/pgbench ${args[*]//$HERE/bench} -c $([ "$server" = pgbench ] && echo CONNS || echo "$PG_POOL") -T $(seconds "$DURATION")+SETUP -l $(pg_uri "$PG_DB" | sed "s/:$PG_PORT/:PGPORT/")"
  if [ "$WARMUP" != 0 ]; then
    clients=64
    [ "$server" = pgbench ] || clients=$PG_POOL
    out="$WRKLOG/run$run-$scen-$server-warmup.txt"
    T=$(($(seconds "$WARMUP") + (clients * per_client_ms * 3 / 2 + 999) / 1000))
    "$PG_BIN/pgbench" "${args[@]}" -c "$clients" -T "$T" "$(pg_uri "$PG_DB")" >"$out" 2>&1 ||
      { cat "$out" >&2; drop_pgdb; die "pgbench $script failed"; }
    done=$(processed "$out")
    per_client_ms=$(awk -v n="$clients" '/^initial connection time = / { printf "%d", $5 / n + 1 }' "$out")
  fi
  secs=$(seconds "$DURATION")
  for c in $CONNS; do
    out="$WRKLOG/run$run-$scen-$server-c$c.txt"
    clients=$c
    [ "$server" = pgbench ] || clients=$PG_POOL
    rm -f "$TMP"/pgblog.*
    T=$((secs + (clients * ${per_client_ms:-20} * 3 / 2 + 999) / 1000))
    log "run $run: $scen on $server: pgbench ${args[*]//$HERE/bench} -c $clients -T $T"
    before=$(cpu_sample)
    t0=$EPOCHREALTIME
    times >"$TMP/times0"
    if ! "$PG_BIN/pgbench" "${args[@]}" -c "$clients" -T "$T" -l --log-prefix="$TMP/pgblog" "$(pg_uri "$PG_DB")" \
      >"$out" 2>&1; then
      cat "$out" >&2
      drop_pgdb
      die "pgbench $script failed at c$c"
    fi
    times >"$TMP/times1"
    t1=$EPOCHREALTIME
    after=$(cpu_sample)
    cpu_line "$run" "$scen" "$server" "$c" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
      "$before" "$after" "$(awk -v a="$(children_cpu "$TMP/times0")" -v b="$(children_cpu "$TMP/times1")" \
      'BEGIN { printf "%.2f", b - a }')"
    n=$(processed "$out")
    done=$((done + n))
    tps=$(awk '/^tps = / { print $3 }' "$out")
    failed=$(awk '/^number of failed transactions:/ { print $5 }' "$out")
    # p99 of the transactions' latencies (third field of the log, µs), in ms.
    p99=$(cat "$TMP"/pgblog.* | awk '{ print $3 }' | sort -n |
      awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; if (NR) printf "%.4f\n", v[i] / 1000; else print "nan" }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$c" "${tps:-nan}" "${p99:-nan}" \
      "${failed:-0}" 0 nan nan >>"$RAW"
  done
  rm -f "$TMP"/pgblog.*
  if [ -n "$SRV_PGDB" ]; then
    local rows
    rows=$(pg_rows) || rows=nan
    printf '#writes\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$server" "$rows" "$done" "$done" nan >>"$RAW"
    log "run $run: $scen on $server: $rows rows created; pgbench counted $done transactions"
  fi
  drop_pgdb
}
