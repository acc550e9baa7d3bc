#!/usr/bin/env bash
# A TypeScript client generated from crest's OpenAPI document type-checks:
# openapi-typescript turns the Tasks API document (examples/tasks/app.yaml,
# from `crest openapi`, in 3.1 and in 3.0.3) into BUILD_DIR/openapi-tests/
# typescript/tasks/<version>/tasks-api.ts, and tests/openapi/client_check.ts —
# a small typed client using its `paths` and `components` — compiles beside it
# with `tsc --noEmit --strict`; likewise the relations example
# (examples/people/app.yaml) with tests/openapi/people_check.ts.
#
# Usage: tests/openapi/typescript.sh BUILD_DIR SOURCE_DIR   (CTest passes both)
set -u
# shellcheck source=tests/openapi/lib.sh
. "$(dirname "$0")/lib.sh"
oa_init "$@"

OUT=$BUILD/openapi-tests/typescript
rm -rf "$OUT"
mkdir -p "$OUT"

echo "openapi-typescript $("$NODE_BIN/openapi-typescript" --version 2>/dev/null | head -n 1)," \
  "$("$NODE_BIN/tsc" --version) (node $(node --version))"

failed=0
# client NAME APP CHECK_TS — CHECK_TS (importing ./NAME-api) compiles against
# the client generated from APP's document, in 3.1 and in 3.0.3.
client() {
  local name=$1 app=$2 check=$3 v args prefix dir
  mkdir -p "$WORK/$name"
  for v in 3.1 3.0; do
    echo
    echo "=== $name, OpenAPI $v"
    args=()
    prefix=$v.
    if [ "$v" = 3.0 ]; then args=(--openapi 3.0); prefix=3.0.3; fi
    dir=$OUT/$name/$v
    mkdir -p "$dir"
    if ! (cd "$WORK/$name" && "$CREST" openapi "$app" "${args[@]}") >"$WORK/raw.json" 2>"$WORK/err"; then
      echo "FAIL: crest openapi $app ${args[*]} exited with an error:"
      sed 's/^/  | /' "$WORK/err"
      failed=$((failed + 1))
      continue
    fi
    if ! normalize "$WORK/raw.json" "$dir/$name.json" "$prefix"; then
      failed=$((failed + 1))
      continue
    fi
    # --default-non-nullable=false: openapi-typescript would otherwise make
    # every property with a default required, in request bodies too, where a
    # default is exactly what lets a client leave it out.
    (cd "$dir" && timeout 120 "$NODE_BIN/openapi-typescript" "$name.json" -o "$name-api.ts" \
       --default-non-nullable=false 2>&1) | grep -v '^$'
    if [ ! -s "$dir/$name-api.ts" ]; then
      echo "FAIL: openapi-typescript wrote no $dir/$name-api.ts"
      failed=$((failed + 1))
      continue
    fi
    cp "$check" "$dir/"
    echo "generated $dir/$name-api.ts ($(wc -l <"$dir/$name-api.ts") lines); tsc --noEmit --strict $(basename "$check")"
    if (cd "$dir" && timeout 120 "$NODE_BIN/tsc" --noEmit --strict --pretty false \
          --target es2022 --lib es2022,dom --module esnext --moduleResolution bundler \
          --forceConsistentCasingInFileNames "$(basename "$check")"); then
      echo "ok: the client type-checks against the $name $v document"
    else
      echo "FAIL: $(basename "$check") does not type-check against the $name $v document (errors above; files in $dir)"
      failed=$((failed + 1))
    fi
  done
}
client tasks "$SRC/examples/tasks/app.yaml" "$SRC/tests/openapi/client_check.ts"
client people "$SRC/examples/people/app.yaml" "$SRC/tests/openapi/people_check.ts"

echo
echo "typescript: $failed failures"
[ "$failed" = 0 ]
