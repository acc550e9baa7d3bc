# shellcheck shell=bash disable=SC2034  # (the variables are used by the scripts that source it)
# Shared by the OpenAPI test scripts (sourced, not run). Each script is called
# by CTest as: SCRIPT BUILD_DIR SOURCE_DIR.
#
# Sets BUILD, SRC, NODE_MODULES, NODE_BIN, WORK (a temporary folder removed at
# exit), and the binaries under test: CREST (env CREST_BIN, default
# BUILD/crest), HELLO (env CREST_HELLO, default BUILD/examples/hello) and
# TASKS_C (env CREST_TASKS_C, default BUILD/examples/tasks_c). Servers started
# with start_server are stopped at exit, by their PID.

oa_init() {
  if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
  fi
  BUILD=$(cd "$1" && pwd) || exit 2
  SRC=$(cd "$2" && pwd) || exit 2
  CREST=${CREST_BIN:-$BUILD/crest}
  HELLO=${CREST_HELLO:-$BUILD/examples/hello}
  TASKS_C=${CREST_TASKS_C:-$BUILD/examples/tasks_c}
  NODE_MODULES=$BUILD/node/node_modules
  NODE_BIN=$NODE_MODULES/.bin
  export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1 FORCE_COLOR=0
  OA_PIDS=()
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/crest-openapi.XXXXXX")
  trap oa_cleanup EXIT
  trap 'exit 130' INT TERM

  # The Node tools: installed into the build folder by scripts/npm.sh --tools
  # (a no-op when its stamp matches the lock file).
  if ! "$SRC/scripts/npm.sh" --tools "$BUILD"; then
    echo "FAIL: scripts/npm.sh could not install the Node tools" >&2
    exit 1
  fi
}

oa_cleanup() {
  local pid
  for pid in "${OA_PIDS[@]}"; do
    stop_server "$pid"
  done
  rm -rf "$WORK"
}

# start_server NAME DIR CMD ARGS... — runs CMD in DIR (its database files land
# there), waits up to 15 s for its {"event":"listening","address":...} line on
# stderr and sets SERVER_ADDR (host:port) and SERVER_PID.
start_server() {
  local name=$1 dir=$2
  shift 2
  local err="$WORK/$name.stderr"
  (cd "$dir" && exec "$@") >"$WORK/$name.stdout" 2>"$err" &
  SERVER_PID=$!
  OA_PIDS+=("$SERVER_PID")
  SERVER_ADDR=
  local i
  for i in $(seq 1 150); do
    SERVER_ADDR=$(sed -n 's/.*"event": *"listening".*"address": *"\([^"]*\)".*/\1/p' "$err" | head -n 1)
    [ -n "$SERVER_ADDR" ] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "FAIL: $name exited before listening: $*" >&2
      sed 's/^/  | /' "$err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "FAIL: $name did not print its listening event within 15 s: $*" >&2
  sed 's/^/  | /' "$err" >&2
  return 1
}

# stop_server PID — SIGTERM, up to 10 s to drain, then SIGKILL.
stop_server() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# fetch URL OUT — GET with a 10 s bound; fails on a non-2xx answer.
fetch() {
  curl -fsS --max-time 10 -o "$2" "$1"
}

# normalize IN OUT PREFIX — checks that IN is a JSON object whose "openapi"
# starts with PREFIX and writes it indented to OUT (so that line numbers in
# the linters' messages point somewhere readable).
normalize() {
  # shellcheck disable=SC2016  # JavaScript, not shell
  node -e '
    const fs = require("fs");
    const [inp, out, want] = process.argv.slice(1);
    let d;
    try { d = JSON.parse(fs.readFileSync(inp, "utf8")); }
    catch (e) { console.error(`FAIL: ${inp} is not JSON: ${e.message}`); process.exit(1); }
    if (typeof d !== "object" || d === null || Array.isArray(d)) {
      console.error(`FAIL: ${inp} is not a JSON object`); process.exit(1);
    }
    if (!String(d.openapi).startsWith(want)) {
      console.error(`FAIL: ${inp}: "openapi" is ${JSON.stringify(d.openapi)}, expected ${want}...`);
      process.exit(1);
    }
    fs.writeFileSync(out, JSON.stringify(d, null, 2) + "\n");
  ' "$1" "$2" "$3"
}

# Redocly CLI without its Node.js end-of-life banner.
redocly() {
  "$NODE_BIN/redocly" "$@" 2>&1 | grep -v '[║╔╚]'
  return "${PIPESTATUS[0]}"
}
