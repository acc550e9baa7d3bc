#!/usr/bin/env bash
# Installs the Node tools pinned in tools/package.json + tools/package-lock.json
# (@redocly/cli, swagger-ui-dist, playwright-core, openapi-typescript,
# typescript) into BUILD_DIR/node/node_modules — never into the repository —
# and copies swagger-ui-dist's files into BUILD_DIR/swagger-ui/, where crest
# serves them under /docs/.
#
# Usage: scripts/npm.sh BUILD_DIR
#
# Idempotent and fast: a stamp of the package files' hash in BUILD_DIR/node
# says what is installed; with the same files and everything in place it does
# nothing. Otherwise `npm ci` installs exactly the lock file, from npm's cache
# when it can (--prefer-offline), and runs no install script (none of these
# packages needs one; swagger-ui-dist's would only send telemetry). Concurrent
# runs on one build folder (ctest -j) wait for each other.
set -eu

die() { echo "scripts/npm.sh: $*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: scripts/npm.sh BUILD_DIR" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
tools="$src/tools"
mkdir -p "$1" || die "cannot create the build folder '$1'"
build=$(cd "$1" && pwd)
node_dir="$build/node"
ui_dir="$build/swagger-ui"
stamp="$node_dir/.crest-npm-stamp"

if [ ! -f "$tools/package.json" ] || [ ! -f "$tools/package-lock.json" ]; then
  die "missing $tools/package.json or package-lock.json"
fi

want=$(cat "$tools/package.json" "$tools/package-lock.json" | sha256sum | cut -d' ' -f1)

installed() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    [ -f "$node_dir/node_modules/swagger-ui-dist/package.json" ] &&
    [ -f "$ui_dir/swagger-ui-bundle.js" ]
}
installed && exit 0

command -v node >/dev/null 2>&1 ||
  die "node not found: install Node.js 20.19+ (Debian: nodejs) to build the docs page and run the OpenAPI tests"
command -v npm >/dev/null 2>&1 ||
  die "npm not found: install npm (Debian: npm, or the one that comes with Node.js) to build the docs page and run the OpenAPI tests"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] 2>/dev/null ||
  die "Node.js $(node --version 2>/dev/null) is too old: @redocly/cli needs 20.19 or later"

mkdir -p "$node_dir"
# One installer at a time per build folder; the others wait, then find it done.
exec 9>"$node_dir/.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 900 9 || die "timed out waiting for another scripts/npm.sh on $build"
fi
installed && exit 0

echo "scripts/npm.sh: installing the Node tools into $node_dir" >&2
rm -f "$stamp"
cp "$tools/package.json" "$tools/package-lock.json" "$node_dir/"
# shellcheck disable=SC2086
npm ci --prefix "$node_dir" --ignore-scripts --no-audit --no-fund --prefer-offline \
  --loglevel=error ${CREST_NPM_FLAGS:-} >&2 ||
  die "npm ci failed (the npm registry or npm's cache must be reachable; see the messages above)"

# swagger-ui-dist's browser files: everything but its Node entry points,
# package metadata and source maps. Built aside, then swapped in whole.
dist="$node_dir/node_modules/swagger-ui-dist"
[ -f "$dist/swagger-ui-bundle.js" ] || die "swagger-ui-dist has no swagger-ui-bundle.js in $dist"
tmp="$build/.swagger-ui.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
for f in "$dist"/*; do
  [ -f "$f" ] || continue
  case "${f##*/}" in
    package.json | README.md | index.js | absolute-path.js | *.map | log.*.txt) continue ;;
  esac
  cp "$f" "$tmp/"
done
for f in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js favicon-32x32.png; do
  [ -f "$tmp/$f" ] || { rm -rf "$tmp"; die "swagger-ui-dist lacks $f"; }
done
rm -rf "$ui_dir"
mv "$tmp" "$ui_dir"

echo "$want" >"$stamp"
echo "scripts/npm.sh: done ($(node -p "require('$dist/package.json').version") swagger-ui-dist in $ui_dir)" >&2
