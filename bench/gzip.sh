# bench/run.sh's gzip part (issue 14, item 5), sourced by it after
# bench/relations.sh: the servers and the check of the gzip_list scenario.
#
# gzip_list: GET of a 50-row page of the tasks list (bench/tasks-app.yaml over
# the filled 100k-row table) to crest_tasks (no Accept-Encoding: the identity
# body, the baseline) and to crest_tasks_gz1 and crest_tasks_gz6, the same app
# with `compression: {level: 1}` / `{level: 6}`, which wrk asks with
# `-H 'Accept-Encoding: gzip'` (SERVER_WRK_HEADER). Before the load
# check_gzip asks each server once with and once without gzip and records the
# bytes of both bodies ('#gzip SERVER IDENTITY_BYTES GZIP_BYTES'); the gzip
# body must inflate to the identity one. report.py's gzip section divides
# crest's CPU per request (bench/pg.sh's cpu_sample) of each gzip server minus
# the baseline's by the KB of the identity body: the CPU cost per KB
# compressed.
# shellcheck shell=bash

GZIP_PATH='/tasks?page_size=50&sort_by=id&count=none'

SERVER_LABEL+=(
  [crest_tasks_gz1]="crest serve bench/tasks-app.yaml with compression: {level: 1} (--workers 1), asked with Accept-Encoding: gzip"
  [crest_tasks_gz6]="crest serve bench/tasks-app.yaml with compression: {level: 6} (--workers 1), asked with Accept-Encoding: gzip"
)
# The request header wrk adds for a server (measure reads it).
declare -A SERVER_WRK_HEADER=([crest_tasks_gz1]="Accept-Encoding: gzip" [crest_tasks_gz6]="Accept-Encoding: gzip")

# gzip_app LEVEL: TMP/tasks-app-gzLEVEL.yaml, bench/tasks-app.yaml at that level.
gzip_app() {
  local f="$TMP/tasks-app-gz$1.yaml"
  [ -e "$f" ] || { cat "$HERE/tasks-app.yaml"; printf '\ncompression: {min_bytes: 1024, level: %s}\n' "$1"; } >"$f"
  printf '%s\n' "$f"
}
start_crest_tasks_gz1() { crest_serve_tasks crest_tasks_gz1 "$1" "$(gzip_app 1)"; }
start_crest_tasks_gz6() { crest_serve_tasks crest_tasks_gz6 "$1" "$(gzip_app 6)"; }

# check_gzip SERVER PORT PATH (a SCEN_CHECK): the body's bytes with and
# without gzip; a gzip server must answer gzip that inflates to the identity
# body (the baseline is not asked for gzip under load: its bytes are shown only).
check_gzip() {
  local line
  line=$(PYTHONPATH="$HERE" python3 - "$2" "$3" "${SERVER_WRK_HEADER[$1]:-}" <<'EOF'
import gzip, sys
from benchhttp import Client
port, path, want = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def get(headers):
    status, h, body = Client(port).raw(path, headers)
    assert status == 200, (status, body[:200])
    return h.get("Content-Encoding"), body
enc, plain = get({})
assert enc is None, enc
enc, gz = get({"Accept-Encoding": "gzip"})
if want:
    assert enc == "gzip", f"no gzip answer: {enc}"
    assert gzip.decompress(gz) == plain, "the gzip body does not inflate to the identity body"
print(len(plain), len(gz) if enc == "gzip" else len(plain))
EOF
) || return 1
  printf '#gzip\t%s\t%s\n' "$1" "${line// /$'\t'}" >>"$RAW"
  printf 'bytes per answer: %s identity, %s gzip%s\n' "${line% *}" "${line#* }" \
    "${SERVER_WRK_HEADER[$1]:+ (what wrk asks for)}"
}
