#!/usr/bin/env bash
# Runs every test: the normal build, the same suite under AddressSanitizer +
# UndefinedBehaviorSanitizer, and a short smoke run of each fuzz target.
# Ends with one summary line, "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# The OpenAPI tests' tools need Node.js 20.19+: say so now, not after the build.
scripts/npm.sh --check-node || exit 1
passed=0; failed=0; status=0

run_suite() { # name build-dir cmake-args...
  local name=$1 dir=$2; shift 2
  echo "=== $name ($dir)"
  if ! cmake -S . -B "$dir" "$@" >/dev/null || ! cmake --build "$dir" -j "$jobs" >/dev/null; then
    echo "$name: build failed"; cmake --build "$dir" 2>&1 | tail -40
    failed=$((failed + 1)); status=1; return
  fi
  local log; log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600) 2>&1 | tee "$log"
  local p f
  p=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$log" | tail -1)
  if [ -z "$p" ]; then failed=$((failed + 1)); status=1; rm -f "$log"; return; fi
  set -- $p
  passed=$((passed + $1 - $2)); failed=$((failed + $2))
  [ "$2" = 0 ] || status=1
  rm -f "$log"
}

run_suite "tests" build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREST_TESTS=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "tests under ASan+UBSan" build-asan -DCMAKE_BUILD_TYPE=Debug -DCREST_SANITIZE=ON -DCREST_TESTS=ON
if [ -x scripts/fuzz.sh ]; then
  echo "=== fuzz smoke"
  if FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-20} scripts/fuzz.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
fi
echo
echo "$passed passed, $failed failed"
exit $status
