# bench/run.sh's relations part (issue 13), sourced by it after bench/pg.sh:
# the people database on both stores, its servers and the check that counts
# the statements a request runs.
#
# bench/people-app.yaml: Person (name with `index: true`, age, has_many
# computers) and Computer (name, vendor, owner: a ref to Person). crest creates
# the tables (an empty SQLite file, an empty PostgreSQL database `people` in
# the run's cluster) and is stopped; bench/fill_people.py fills both with the
# same 10,000 people × 5 computers. Every scenario only reads, so every server
# start of a store serves the same database. The scenarios (in run.sh's list):
# rel_list GET /people?page_size=20 and rel_include the same with
# include=computers, a random page of the 500 per request
# (bench/people_page.lua); rel_where GET /computers?where={"owner.name": …}, a
# random existing name per request (bench/computers_where.lua). report.py
# divides rel_include by rel_list per store (SCEN_PER).
# shellcheck shell=bash

PEOPLE_ROWS=10000
PEOPLE_COMPUTERS=5

SERVER_LABEL+=(
  [crest_people]="crest serve bench/people-app.yaml on SQLite (--workers 1)"
  [crest_people_pg]="crest serve bench/people-app.yaml on PostgreSQL (--workers 1, pool size BENCH_PG_POOL)"
)

start_crest_people() {
  start_server crest_people "$1" env CREST_DATABASE="sqlite:$DBDIR/people.db" \
    "$BUILD/crest" serve "$HERE/people-app.yaml" --listen "127.0.0.1:$1" --workers 1
}
start_crest_people_pg() {
  local rc=0
  start_server crest_people_pg "$1" env CREST_DATABASE="$(pg_uri people)" \
    "$BUILD/crest" serve "$TMP/people-pg-app.yaml" --listen "127.0.0.1:$1" --workers 1 || rc=$?
  SERVER_CMD[crest_people_pg]=${SERVER_CMD[crest_people_pg]//":$PG_PORT/"/":PGPORT/"}   # the run's, as pgbench's
  return $rc
}

# people_create NAME START: crest creates the tables (START PORT starts it on
# the empty database) and is stopped.
people_create() {
  local port
  port=$(free_port)
  SRV_NAME="crest (creating the people tables: $1)"
  if ! SRV_OUT="$TMP/people-create.log" "$2" "$port"; then
    cat "$TMP/people-create.log" >&2
    die "crest serve bench/people-app.yaml did not start on an empty database ($1)"
  fi
  stop_server
}

# make_people_db: the filled SQLite file DBDIR/people.db.
make_people_db() {
  people_create SQLite start_crest_people
  python3 "$HERE/fill_people.py" "$DBDIR/people.db" "$PEOPLE_ROWS" "$PEOPLE_COMPUTERS" >"$TMP/people-fill.tsv" ||
    die "bench/fill_people.py failed"
  log "people (SQLite): $(awk -F'\t' '$1 == "rows" { print $2 " people, " $3 " computers" }' "$TMP/people-fill.tsv")"
}

# make_pg_people_db: the cluster (pg_cluster), its filled database `people`
# and the app file TMP/people-pg-app.yaml.
make_pg_people_db() {
  pg_cluster
  pg_sql "CREATE DATABASE people" >/dev/null
  pg_app people-app.yaml "$TMP/people-pg-app.yaml"
  people_create PostgreSQL start_crest_people_pg
  "$PY" "$HERE/fill_people.py" --postgres "$(pg_uri people)" "$PEOPLE_ROWS" "$PEOPLE_COMPUTERS" \
    >"$TMP/pg-people-fill.tsv" || die "bench/fill_people.py --postgres failed"
  log "people (PostgreSQL): $(awk -F'\t' '$1 == "rows" { print $2 " people, " $3 " computers" }' "$TMP/pg-people-fill.tsv")"
}

# people_meta: the '#meta' lines of the people databases (rows, plans).
people_meta() {
  local f
  for f in people-fill pg-people-fill; do
    [ ! -e "$TMP/$f.tsv" ] ||
      awk -F'\t' '{ printf "#meta\tpeople_%s", $1; for (i = 2; i <= NF; i++) printf "\t%s", $i; print "" }' "$TMP/$f.tsv"
  done
}

# check_relations SERVER PORT PATH (a SCEN_CHECK, called by measure, whose
# `run` and `scen` it reads): the answers are right, and the statements each
# request runs (/metrics' crest_db_statements_total before and after 10
# requests, the server has one worker) at page sizes 5, 20 and 50 for the
# people scenarios, as '#stmts RUN SCENARIO SERVER PAGE_SIZE PER_REQUEST'
# lines; prints what it saw. Fails on a wrong answer, not on the counts
# (report.py judges them).
check_relations() {
  # shellcheck disable=SC2154 # run and scen: measure's locals
  PYTHONPATH="$HERE" python3 - "$2" "$3" "$RAW" "$run" "$scen" "$1" "$PEOPLE_ROWS" "$PEOPLE_COMPUTERS" <<'EOF'
import json, random, re, sys, urllib.parse
from benchhttp import Client
port, path, raw, run, scen, server = int(sys.argv[1]), *sys.argv[2:7]
people, per = int(sys.argv[7]), int(sys.argv[8])
c = Client(port)
get = c.json


def statements():
    m = re.search(r"^crest_db_statements_total (\d+)$", c.raw("/metrics")[2].decode(), re.M)
    if not m:
        sys.exit("/metrics has no crest_db_statements_total")
    return int(m.group(1))


def check_people(p, size):
    page = random.randint(1, people // size)
    rows = get(f"{p}&page={page}")["data"]
    ids = [r["id"] for r in rows]
    if ids != list(range((page - 1) * size + 1, page * size + 1)):
        sys.exit(f"GET {p}&page={page}: ids {ids}")
    for r in rows:
        if "include=computers" in p and ([x["owner_id"] for x in r["computers"]] != [r["id"]] * per
                                         or r["computers_has_more"] is not False):
            sys.exit(f"GET {p}&page={page}: person {r['id']}: {r['computers']}")
        if "include" not in p and "computers" in r:
            sys.exit(f"GET {p}&page={page}: computers without include")


def check_where(_p, _size):
    n = random.randint(1, people)
    q = urllib.parse.quote(json.dumps({"owner.name": f"person {n}"}, separators=(",", ":")))
    rows = get(f"/computers?where={q}")["data"]
    if [r["owner_id"] for r in rows] != [n] * per:
        sys.exit(f"where owner.name = person {n}: {rows}")


seen = []
with open(raw, "a") as out:
    for size in ([5, 20, 50] if path.startswith("/people") else [20]):
        p = path.replace("page_size=20", f"page_size={size}")
        check = check_people if p.startswith("/people") else check_where
        before = statements()
        for _ in range(10):
            check(p, size)
        n = (statements() - before) / 10
        out.write(f"#stmts\t{run}\t{scen}\t{server}\t{size}\t{n:g}\n")
        seen.append(f"page_size {size}: {n:g}")
print("answers right; statements per request: " + ", ".join(seen))
EOF
}
