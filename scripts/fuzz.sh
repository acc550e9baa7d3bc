#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan+UBSan) in build-fuzz/ when
# needed and runs each for FUZZ_SECONDS (default 600). Seeds from
# fuzz/corpus/<target>/ are copied into build-fuzz/corpus/<target>/, which
# the run grows, so the repository's corpus is never modified. Prints one line
# per target, "fuzz <target>: N executions, no crash" or the crash file with
# the end of its log, and exits non-zero if any target crashed or failed.
#
#   FUZZ_SECONDS=60 scripts/fuzz.sh            # every target, one after another
#   FUZZ_JOBS=3 scripts/fuzz.sh                # three targets at a time
#   FUZZ_TARGETS="fuzz_json" scripts/fuzz.sh   # a subset
#   scripts/fuzz.sh build-fuzz/artifacts/fuzz_http/crash-...   # replay one input
set -u
cd "$(dirname "$0")/.." || exit 2

seconds=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-1}
dir=${FUZZ_BUILD:-build-fuzz}
targets=${FUZZ_TARGETS:-"fuzz_http fuzz_json fuzz_appfile fuzz_query fuzz_token"}
ncpu=$(nproc 2>/dev/null || echo 2)

case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac
case "$jobs" in '' | *[!0-9]* | 0) echo "fuzz.sh: FUZZ_JOBS must be a positive number" >&2; exit 2 ;; esac

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang is needed (scripts/deps.sh test installs it)" >&2
  exit 2
fi

# ---- build ----
# A build directory configured with another compiler cannot switch: start over.
if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' "$dir/CMakeCache.txt"; then
  echo "fuzz.sh: $dir was configured without clang; reconfiguring it from scratch" >&2
  rm -rf "$dir"
fi
# Configured every time (cheap), so new targets and sources are picked up.
if ! CC=clang cmake -S . -B "$dir" -DCREST_FUZZ=ON -DCREST_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; then
  echo "fuzz.sh: cmake configure failed" >&2
  exit 1
fi
# shellcheck disable=SC2086
if ! cmake --build "$dir" -j "$ncpu" --target $targets >"$dir/fuzz-build.log" 2>&1; then
  echo "fuzz.sh: build failed; the end of $dir/fuzz-build.log:" >&2
  tail -40 "$dir/fuzz-build.log" >&2
  exit 1
fi

# Sanitizer settings for the runs: stop at the first error, symbolized stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:symbolize=1}

# ---- replay: scripts/fuzz.sh FILE... runs each file through the target named
# by the directory it sits in (artifacts/<target>/ or corpus/<target>/) ----
if [ $# -gt 0 ]; then
  status=0
  for f in "$@"; do
    t=$(basename "$(dirname "$f")")
    if [ ! -x "$dir/fuzz/$t" ]; then
      echo "fuzz.sh: cannot tell the target of $f (expected .../<target>/file)" >&2
      status=2
      continue
    fi
    "$dir/fuzz/$t" -runs=1 "$f" || status=1
  done
  exit $status
fi

# ---- run ----
mkdir -p "$dir/logs"

run_target() { # target → writes $dir/logs/<target>.result, returns libFuzzer's status
  local t=$1
  local corpus="$dir/corpus/$t" artifacts="$dir/artifacts/$t" log="$dir/logs/$t.log"
  local bin="$dir/fuzz/$t" dict="fuzz/$t.dict"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/corpus/$t" ]; then
    cp -p fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
  fi
  local dict_arg=()
  [ -f "$dict" ] && dict_arg=("-dict=$dict")
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict_arg[@]}" -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  local rc=$?
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: ${execs:-?} executions, no crash" >"$dir/logs/$t.result"
  else
    local crash
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    {
      echo "fuzz $t: CRASH (exit $rc) after ${execs:-?} executions: ${crash:-no crash file, see $log}"
      [ -n "$crash" ] && echo "  replay: scripts/fuzz.sh $crash"
      echo "  --- the end of $log:"
      grep -v -E '^#[0-9]+|^INFO:|^\s*$' "$log" | tail -60 | sed 's/^/  /'
    } >"$dir/logs/$t.result"
  fi
  return $rc
}

status=0
running=0
for t in $targets; do
  if [ ! -x "$dir/fuzz/$t" ]; then
    echo "fuzz $t: no such target in $dir/fuzz" >"$dir/logs/$t.result"
    status=1
    continue
  fi
  rm -f "$dir/logs/$t.result"
  if [ "$jobs" -gt 1 ]; then
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
  else
    run_target "$t"
  fi
done
wait

for t in $targets; do
  if [ -f "$dir/logs/$t.result" ]; then
    cat "$dir/logs/$t.result"
    grep -q ', no crash$' "$dir/logs/$t.result" || status=1
  else
    echo "fuzz $t: no result (see $dir/logs/$t.log)"
    status=1
  fi
done
exit $status
