#!/usr/bin/env bash
# Installs every Debian package crest needs to build, test and benchmark,
# skipping what is already there. Called by `make run`, `make test`, `make bench`.
# Usage: scripts/deps.sh [build|test|bench]   (each set includes the ones before it)
set -eu
set_name=${1:-build}

build_pkgs="build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libjansson-dev libyaml-dev libsqlite3-dev libpcre2-dev libjwt-dev libssl-dev"
test_pkgs="clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest python3-httpx python3-jsonschema python3-jwt python3-cryptography openssl sqlite3 curl chromium"
bench_pkgs="wrk nginx-light python3-fastapi python3-uvicorn python3-sqlalchemy python3-uvloop python3-httptools"

want="$build_pkgs"
case "$set_name" in
  build) ;;
  test)  want="$want $test_pkgs" ;;
  bench) want="$want $test_pkgs $bench_pkgs" ;;
  *) echo "deps.sh: unknown set '$set_name' (build|test|bench)" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
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
