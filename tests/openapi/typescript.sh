#!/usr/bin/env bash
# A TypeScript client generated from crest's OpenAPI document type-checks:
# openapi-typescript turns the Tasks API document (examples/tasks/app.yaml,
# from `crest openapi`, in 3.1 and in 3.0.3) into BUILD_DIR/openapi-tests/
# typescript/<version>/tasks-api.ts, and tests/openapi/client_check.ts — a
# small typed client using its `paths` and `components` — compiles beside it
# with `tsc --noEmit --strict`.
#
# Usage: tests/openapi/typescript.sh BUILD_DIR SOURCE_DIR   (CTest passes both)
set -u
# shellcheck source=tests/openapi/lib.sh
. "$(dirname "$0")/lib.sh"
oa_init "$@"

OUT=$BUILD/openapi-tests/typescript
rm -rf "$OUT"
mkdir -p "$OUT" "$WORK/tasks"
TASKS_APP=$SRC/examples/tasks/app.yaml

echo "openapi-typescript $("$NODE_BIN/openapi-typescript" --version 2>/dev/null | head -n 1)," \
  "$("$NODE_BIN/tsc" --version) (node $(node --version))"

failed=0
for v in 3.1 3.0; do
  echo
  echo "=== OpenAPI $v"
  args=()
  prefix=$v.
  if [ "$v" = 3.0 ]; then args=(--openapi 3.0); prefix=3.0.3; fi
  dir=$OUT/$v
  mkdir -p "$dir"
  if ! (cd "$WORK/tasks" && "$CREST" openapi "$TASKS_APP" "${args[@]}") >"$WORK/raw.json" 2>"$WORK/err"; then
    echo "FAIL: crest openapi $TASKS_APP ${args[*]} exited with an error:"
    sed 's/^/  | /' "$WORK/err"
    failed=$((failed + 1))
    continue
  fi
  if ! normalize "$WORK/raw.json" "$dir/tasks.json" "$prefix"; then
    failed=$((failed + 1))
    continue
  fi
  # --default-non-nullable=false: openapi-typescript would otherwise make
  # every property with a default required, in request bodies too, where a
  # default is exactly what lets a client leave it out.
  (cd "$dir" && timeout 120 "$NODE_BIN/openapi-typescript" tasks.json -o tasks-api.ts \
     --default-non-nullable=false 2>&1) | grep -v '^$'
  if [ ! -s "$dir/tasks-api.ts" ]; then
    echo "FAIL: openapi-typescript wrote no $dir/tasks-api.ts"
    failed=$((failed + 1))
    continue
  fi
  cp "$SRC/tests/openapi/client_check.ts" "$dir/"
  echo "generated $dir/tasks-api.ts ($(wc -l <"$dir/tasks-api.ts") lines); tsc --noEmit --strict client_check.ts"
  if (cd "$dir" && timeout 120 "$NODE_BIN/tsc" --noEmit --strict --pretty false \
        --target es2022 --lib es2022,dom --module esnext --moduleResolution bundler \
        --forceConsistentCasingInFileNames client_check.ts); then
    echo "ok: the client type-checks against the $v document"
  else
    echo "FAIL: client_check.ts does not type-check against the $v document (errors above; files in $dir)"
    failed=$((failed + 1))
  fi
done

echo
echo "typescript: $failed failures"
[ "$failed" = 0 ]
