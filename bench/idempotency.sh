# bench/run.sh's idempotency part (issue 14, item 4), sourced by it: the tasks
# module with `idempotency: true` (TMP/tasks-app-idem.yaml, bench/tasks-app.yaml
# with the option), its server, and the scenarios of the `idem` group:
#   idem_post    POST /tasks with a new Idempotency-Key per request
#                (bench/tasks_post_idem.lua): the claim, the record and the
#                purge on top of a create; crest_tasks (the same requests, the
#                header ignored: a plain create) is the baseline.
#   idem_replay  POST /tasks with one key and body (bench/tasks_post_replay.lua):
#                one create, then replays of its answer. Its METHOD is GET (the
#                sample request reads /tasks/1) so run.sh's lost-writes check,
#                rows created against 2xx answers, leaves it alone: a replay
#                makes no row by design.
# shellcheck shell=bash

SERVER_LABEL+=(
  [crest_tasks_idem]="crest serve bench/tasks-app.yaml with idempotency: true on the tasks module (--workers 1, durability: full)"
)
SERVER_DURABILITY+=([crest_tasks_idem]=full)

start_crest_tasks_idem() {
  [ -e "$TMP/tasks-app-idem.yaml" ] ||
    sed 's/^    model: Task$/    model: Task\n    idempotency: true/' "$HERE/tasks-app.yaml" >"$TMP/tasks-app-idem.yaml"
  grep -q '^    idempotency: true$' "$TMP/tasks-app-idem.yaml" || die "tasks-app-idem.yaml: no module to turn idempotency on in"
  crest_serve_tasks crest_tasks_idem "$1" "$TMP/tasks-app-idem.yaml"
}

idem_scenarios() {
  scenario idem_post idem POST /tasks tasks_post_idem.lua - - - crest_tasks crest_tasks_idem
  SCEN_BODY[idem_post]='{"title":"bench","spent_time":1}'
  scenario idem_replay idem GET /tasks/1 tasks_post_replay.lua - - - crest_tasks_idem
}
