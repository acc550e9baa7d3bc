# bench/run.sh's change feed part (issue 14), sourced by it: the group
# `changes` (BENCH_ONLY=changes runs it alone) is not a wrk scenario but
# bench/changes.py, once per store after the wrk scenarios (not once per run:
# each store's measurement takes BENCH_DURATION plus the subscribers' set-up):
# events per second delivered to 100 subscribers while 4 writers POST /tasks,
# the RSS with 1,000 idle subscribers, and the time a POST to one crest process
# takes to reach a subscriber of a second one (20 posts). Its figures go to the
# raw file as `#changes<TAB>store<TAB>key<TAB>value` lines; report.py shows them.
# shellcheck shell=bash

CHANGES_RUN=""   # whether the group runs (set by changes_select)
CHANGES_SUBSCRIBERS=${BENCH_CHANGES_SUBSCRIBERS:-100}
CHANGES_IDLE=${BENCH_CHANGES_IDLE:-1000}

# changes_select: the group runs when BENCH_ONLY is empty or names it; the
# name is taken out of ONLY so that the wrk scenarios' filter does not see it.
changes_select() {
  local n rest=()
  if [ -z "$ONLY" ]; then CHANGES_RUN=1; return 0; fi
  for n in ${ONLY//,/ }; do
    if [ "$n" = changes ]; then CHANGES_RUN=1; else rest+=("$n"); fi
  done
  ONLY=$(IFS=,; echo "${rest[*]}")
}

# changes_measure: bench/changes.py on SQLite, then on the run's cluster.
changes_measure() {
  local store out
  [ -n "$CHANGES_RUN" ] || return 0
  for store in sqlite postgres; do
    local args=(--build "$BUILD" --store "$store" --duration "$DURATION" --subscribers "$CHANGES_SUBSCRIBERS"
      --idle "$CHANGES_IDLE" --tsv)
    if [ "$store" = postgres ]; then
      pg_cluster
      args+=(--pg "$PG_DIR")
    fi
    log "changes: bench/changes.py ${args[*]}"
    out="$TMP/changes-$store.out"
    if ! TMPDIR="$DBDIR" python3 "$HERE/changes.py" "${args[@]}" >"$out" 2>&1; then
      cat "$out" >&2
      printf '#skipped\t1\tchanges\tcrest_changes_%s\t%s\n' "$store" "bench/changes.py failed (see the log)" >>"$RAW"
      continue
    fi
    grep -v '^#changes' "$out" >&2 || true
    grep '^#changes' "$out" >>"$RAW"
  done
}
