# bench/run.sh's conditional-requests part (issue 14), sourced by it: the
# check of the etag scenarios' servers. etag_200 and etag_304 (group etag,
# `make bench-etag` runs them alone) read one row of the tasks table,
# GET /tasks/12345, on crest_tasks (SQLite) and crest_pg (PostgreSQL):
# etag_200 without If-None-Match (bench/etag_200.lua), etag_304 with the
# ETag the first answer gave (bench/etag_304.lua), so every later answer is
# a 304 without a body. report.py divides etag_304's req/s by etag_200's per
# server (SCEN_PER): a 304 must not cost more than the row (target >= 1.0).
# shellcheck shell=bash

# check_etag SERVER PORT PATH (a SCEN_CHECK, called by measure): the row
# answers 200 with an ETag, the same again, and 304 without a body when
# If-None-Match names it; a stale tag gives the 200 again.
check_etag() {
  PYTHONPATH="$HERE" python3 - "$2" "$3" <<'PYEOF'
import sys
from benchhttp import Client
port, path = int(sys.argv[1]), sys.argv[2]
c = Client(port)


def get(headers=None):
    status, h, body = c.raw(path, headers)
    return status, h.get("ETag"), body


st, tag, body = get()
if st != 200 or not tag or not tag.startswith('"'):
    sys.exit(f"GET {path}: {st}, ETag {tag!r}")
if get()[1] != tag:
    sys.exit(f"GET {path}: the ETag changed between two reads")
st, tag2, body = get({"If-None-Match": tag})
if st != 304 or body or tag2 != tag:
    sys.exit(f"GET {path} with If-None-Match: {st}, ETag {tag2!r}, {len(body)} body bytes")
st, _, _ = get({"If-None-Match": '"stale"'})
if st != 200:
    sys.exit(f"GET {path} with a stale If-None-Match: {st}")
PYEOF
}
