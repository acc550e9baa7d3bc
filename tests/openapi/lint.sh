#!/usr/bin/env bash
# The OpenAPI documents crest generates pass @redocly/cli lint (the
# `recommended` ruleset, tests/openapi/redocly.yaml) with zero errors, in
# OpenAPI 3.1 and 3.0.3:
#  - examples/tasks/app.yaml, from `crest openapi` (and the one a running
#    `crest serve` answers at /openapi.json must be the same document);
#  - tests/openapi/bare.yaml, an app file that declares no summary, tag or
#    description: SQL endpoints of every kind and a REST module;
#  - the relations examples, examples/people/app.yaml and examples/tags/app.yaml
#    (ref fields, embedded rows, include enums, nested routes, a json-typed
#    computed field), from `crest openapi`;
#  - the C examples (examples/hello, examples/tasks_c: C endpoints, C
#    callbacks), from GET /openapi.json of the running program.
# The documents are kept in BUILD_DIR/openapi-tests/lint/ for inspection.
#
# Usage: tests/openapi/lint.sh BUILD_DIR SOURCE_DIR   (CTest passes both)
set -u
# shellcheck source=tests/openapi/lib.sh
. "$(dirname "$0")/lib.sh"
oa_init "$@"

OUT=$BUILD/openapi-tests/lint
rm -rf "$OUT"
mkdir -p "$OUT"
CONFIG=$SRC/tests/openapi/redocly.yaml
TASKS_APP=$SRC/examples/tasks/app.yaml

echo "validator: @redocly/cli $("$NODE_BIN/redocly" --version 2>/dev/null | head -n 1) (node $(node --version))"
echo "config: $CONFIG"

failed=0
checked=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# lint NAME FILE — zero errors required; on errors, one line per problem with
# its rule and JSON pointer, easier to act on than line:column.
lint() {
  local name=$1 doc=$2
  echo
  echo "=== redocly lint $name ($doc)"
  checked=$((checked + 1))
  if (cd "$(dirname "$doc")" && redocly lint --config "$CONFIG" --format=stylish "$(basename "$doc")"); then
    return 0
  fi
  fail "$name: redocly lint found errors"
  # shellcheck disable=SC2016  # JavaScript, not shell
  "$NODE_BIN/redocly" lint --config "$CONFIG" --format=json "$doc" 2>/dev/null |
    node -e '
      let s = "";
      process.stdin.on("data", d => s += d).on("end", () => {
        let j;
        try { j = JSON.parse(s); } catch (e) { return; }
        for (const p of j.problems || [])
          if (p.severity === "error")
            console.log(`  error ${p.ruleId} ${(p.location || []).map(l => l.pointer).join(" ")}: ${p.message}`);
      });'
}

# An app file: `crest openapi`, run where its database may land.
app_file() {
  local name=$1 app=$2 v args prefix raw
  mkdir -p "$WORK/$name"
  for v in 3.1 3.0; do
    args=()
    [ "$v" = 3.0 ] && args=(--openapi 3.0)
    prefix=$v.
    [ "$v" = 3.0 ] && prefix=3.0.3
    raw="$WORK/$name-$v.raw.json"
    if ! (cd "$WORK/$name" && "$CREST" openapi "$app" "${args[@]}") >"$raw" 2>"$WORK/$name-$v.stderr"; then
      fail "crest openapi $app ${args[*]} exited with an error:"
      sed 's/^/  | /' "$WORK/$name-$v.stderr"
      continue
    fi
    if normalize "$raw" "$OUT/$name-$v.json" "$prefix"; then
      lint "$name $v" "$OUT/$name-$v.json"
    else
      fail "crest openapi $app ${args[*]}: not an OpenAPI $prefix document"
    fi
  done
}
app_file tasks "$TASKS_APP"
app_file bare "$SRC/tests/openapi/bare.yaml"
app_file people "$SRC/examples/people/app.yaml"
app_file tags "$SRC/examples/tags/app.yaml"

# What `crest serve` answers at /openapi.json is what `crest openapi` prints.
if [ -f "$OUT/tasks-3.1.json" ]; then
  mkdir -p "$WORK/tasks-serve"
  if start_server crest-tasks "$WORK/tasks-serve" "$CREST" serve "$TASKS_APP" --listen 127.0.0.1:0; then
    if fetch "http://$SERVER_ADDR/openapi.json" "$WORK/tasks-served.json"; then
      if node -e '
        const fs = require("fs"), assert = require("assert");
        const [a, b] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")));
        try { assert.deepStrictEqual(a, b); }
        catch (e) { console.log(e.message.split("\n").slice(0, 40).join("\n")); process.exit(1); }
      ' "$WORK/tasks-served.json" "$OUT/tasks-3.1.json"; then
        echo "ok: GET /openapi.json of crest serve equals crest openapi (3.1)"
      else
        fail "GET /openapi.json of crest serve differs from crest openapi (above)"
      fi
    else
      fail "GET http://$SERVER_ADDR/openapi.json failed"
    fi
    stop_server "$SERVER_PID"
  else
    fail "crest serve $TASKS_APP did not start"
  fi
fi

# A C program: its 3.1 document from GET /openapi.json of the running
# program, its 3.0.3 one from `PROGRAM --openapi 3.0` (crest_app_main).
c_example() {
  local name=$1 bin=$2
  if [ ! -x "$bin" ]; then
    fail "$name: $bin is not built"
    return
  fi
  local v args prefix
  for v in 3.1 3.0; do
    args=()
    prefix=$v.
    if [ "$v" = 3.0 ]; then
      if ! "$bin" --help 2>&1 | grep -q -- '--openapi'; then
        echo
        echo "SKIP: $name 3.0: '$bin --help' lists no --openapi option, so its 3.0.3 document cannot be asked for"
        continue
      fi
      args=(--openapi 3.0)
      prefix=3.0.3
      # `--openapi 3.0` prints the 3.0.3 document and exits (crest_app_main).
      mkdir -p "$WORK/$name-$v"
      if ! (cd "$WORK/$name-$v" && "$bin" --db "$WORK/$name-$v/$name.db" --openapi 3.0) >"$WORK/$name-$v.raw.json"; then
        fail "$name --openapi 3.0 exited with an error"
        continue
      fi
      if normalize "$WORK/$name-$v.raw.json" "$OUT/$name-$v.json" "$prefix"; then
        lint "$name $v" "$OUT/$name-$v.json"
      else
        fail "$name --openapi 3.0: not an OpenAPI $prefix document"
      fi
      continue
    fi
    mkdir -p "$WORK/$name-$v"
    if ! start_server "$name-$v" "$WORK/$name-$v" "$bin" --db "$WORK/$name-$v/$name.db" \
         --listen 127.0.0.1:0 "${args[@]}"; then
      fail "$name${args[*]:+ ${args[*]}} did not start"
      continue
    fi
    if fetch "http://$SERVER_ADDR/openapi.json" "$WORK/$name-$v.raw.json"; then
      if normalize "$WORK/$name-$v.raw.json" "$OUT/$name-$v.json" "$prefix"; then
        lint "$name $v" "$OUT/$name-$v.json"
      else
        fail "$name${args[*]:+ ${args[*]}}: GET /openapi.json is not an OpenAPI $prefix document"
      fi
    else
      fail "$name: GET http://$SERVER_ADDR/openapi.json failed"
    fi
    stop_server "$SERVER_PID"
  done
}
c_example hello "$HELLO"
c_example tasks_c "$TASKS_C"

echo
echo "documents kept in $OUT"
echo "lint: $checked documents linted, $failed failures"
[ "$failed" = 0 ]
