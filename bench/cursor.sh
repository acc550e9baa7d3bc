# bench/run.sh's cursor part (issue 14), sourced by it: page N of the 100k-row
# tasks table (bench/tasks-app.yaml, default sort: id; page_size 50,
# count=none so that no COUNT(*) hides the page's own cost) by `page=N`
# against the same page by `cursor=` (the next_cursor of page N - 1), for
# N = 10, 100 and 1,000, on SQLite (crest_tasks) and PostgreSQL (crest_pg).
# A page by offset reads and skips every row before it; a page by cursor
# seeks the id index, so its cost stays flat with depth.
#
# Before the load, check_cursor (a SCEN_CHECK) asks the server for page
# N - 1, takes its meta.next_cursor, checks that the page by cursor and the
# page by `page=N` hold the same rows, and writes the query the scenario's
# requests add ("&page=N" or "&cursor=...") to CURSOR_QUERY_FILE, which
# bench/cursor_page.lua reads when wrk loads it. The cursor is made per
# server start: its secret lives in the database (crest_meta).
# shellcheck shell=bash

CURSOR_PATH='/tasks?page_size=50&count=none'
export CREST_BENCH_CURSOR_FILE="$TMP/cursor-query.txt"

# check_cursor SERVER PORT PATH (called by measure, whose `scen` it reads:
# cursor_pageN or cursor_nextN).
check_cursor() {
  # shellcheck disable=SC2154 # scen: measure's local
  PYTHONPATH="$HERE" python3 - "$2" "$3" "$scen" "$CREST_BENCH_CURSOR_FILE" <<'PY'
import re, sys
from benchhttp import Client
port, path, scen, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
n = int(re.search(r"(\d+)$", scen).group(1))
get = Client(port, timeout=30).json

by_page = get(f"{path}&page={n}")
cursor = get(f"{path}&page={n - 1}")["meta"]["next_cursor"]
by_cursor = get(f"{path}&cursor={cursor}")
ids = [r["id"] for r in by_page["data"]]
if ids != [r["id"] for r in by_cursor["data"]] or len(ids) != 50:
    sys.exit(f"page {n} by page= and by cursor differ: {ids[:3]}... vs {[r['id'] for r in by_cursor['data']][:3]}...")
query = f"&cursor={cursor}" if "_next" in scen else f"&page={n}"
with open(out, "w") as f:
    f.write(query + "\n")
print(f"page {n}: ids {ids[0]}..{ids[-1]} by page= and by cursor; requests add {query[:40]}")
PY
}
