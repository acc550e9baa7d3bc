#!/usr/bin/env bash
# Installs every Debian package crest needs to build, test and benchmark,
# skipping what is already there. Called by `make run`, `make test`, `make bench`.
# Usage: scripts/deps.sh [build|test|bench]   (each set includes the ones before it)
#        scripts/deps.sh --list SET           prints the set's packages, one a line
#        scripts/deps.sh --missing SET        prints those it would install, one a line
#
# nodejs + npm fetch the docs page's files (swagger-ui-dist) at build time;
# Debian 12's (Node 18) are enough for that. The test tools need Node.js
# 20.19+, which Debian 12 does not have: `make test` says so (scripts/npm.sh
# --check-node). A node and npm already on the PATH (NodeSource's nodejs, nvm)
# count as installed: NodeSource's nodejs conflicts with Debian's npm.
# libb64-dev: libjwt.pc lists -lb64 for static links, so
# `pkg-config --static --libs crest` needs it.
# zlib1g-dev: gzip compression of answers (src/app/compress.c).
# libpq-dev: the PostgreSQL store's client library. postgresql: the tests
# start throwaway clusters of their own (tests/pg/cluster.py) with the
# postgresql-15 programs in /usr/lib/postgresql/15/bin; the default cluster
# Debian's package may create and start on port 5432 is never used.
# nginx-light: the scale-out test (tests/e2e/test_pg_scaleout.py) and
# example put nginx in front of three crest processes; the benchmark's
# baseline too. Debian's package may start an nginx on port 80: never used.
set -eu
mode=install
case "${1:-}" in
  --list) mode=list; shift ;;
  --missing) mode=missing; shift ;;
esac
set_name=${1:-build}

build_pkgs="build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libjansson-dev libyaml-dev libsqlite3-dev libpcre2-dev libjwt-dev libssl-dev libb64-dev libpq-dev zlib1g-dev nodejs npm"
test_pkgs="clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest python3-httpx python3-jsonschema python3-jwt python3-cryptography openssl sqlite3 postgresql curl chromium nginx-light"
bench_pkgs="wrk python3-fastapi python3-uvicorn python3-sqlalchemy python3-uvloop python3-httptools python3-asyncpg"

want="$build_pkgs"
case "$set_name" in
  build) ;;
  test)  want="$want $test_pkgs" ;;
  bench) want="$want $test_pkgs $bench_pkgs" ;;
  *) echo "deps.sh: unknown set '$set_name' (build|test|bench)" >&2; exit 2 ;;
esac

if [ "$mode" = list ]; then
  # shellcheck disable=SC2086
  printf '%s\n' $want
  exit 0
fi

# Whether a package's job is done: installed, or (node, npm) its command is there.
have() {
  case "$1" in
    nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
    npm) command -v npm >/dev/null 2>&1 && return 0 ;;
  esac
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for p in $want; do
  have "$p" || missing="$missing $p"
done
if [ "$mode" = missing ]; then
  # shellcheck disable=SC2086
  [ -z "$missing" ] || printf '%s\n' $missing
  exit 0
fi
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Update the package lists once per machine (or when they are missing or stale).
stamp=/var/lib/apt/periodic/crest-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
  $SUDO apt-get update -q >&2
  $SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >&2
