#!/usr/bin/env bash
# The Node packages crest uses, installed into the build folder — never into
# the repository. Two sets, each pinned by its own package-lock.json:
#
#   the docs page's files  tools/docs-ui: swagger-ui-dist, installed into
#                          BUILD_DIR/docs-ui and its browser files copied into
#                          BUILD_DIR/swagger-ui, where crest serves them under
#                          /docs/ (and `make install` installs them from). The
#                          build runs this; any npm does (Debian 12's nodejs +
#                          npm are enough). Without npm it warns and succeeds:
#                          /docs then answers 503 docs_unavailable.
#   the test tools         tools: @redocly/cli, playwright-core,
#                          openapi-typescript, typescript, installed into
#                          BUILD_DIR/node for the OpenAPI tests. They need
#                          Node.js 20.19+ (or 22.12+).
#
# Usage: scripts/npm.sh BUILD_DIR           the docs page's files
#        scripts/npm.sh --tools BUILD_DIR   those, then the test tools
#        scripts/npm.sh --check-node        fails, saying why, unless the node
#                                           on the PATH can run the test tools
#
# Idempotent and fast: a stamp of the package files' hash says what is
# installed; with the same files and everything in place it does nothing.
# Otherwise `npm ci` installs exactly the lock file, from npm's cache when it
# can (--prefer-offline), and runs no install script (none of these packages
# needs one; swagger-ui-dist's would only send telemetry). Concurrent runs on
# one build folder (ctest -j) wait for each other.
set -eu

die() { echo "scripts/npm.sh: $*" >&2; exit 1; }
usage() {
  echo "usage: scripts/npm.sh BUILD_DIR | --tools BUILD_DIR | --check-node" >&2
  exit 2
}

# The oldest Node.js the test tools run on: @redocly/cli's engines field
# (">=22.12.0 || >=20.19.0 <21.0.0"); playwright-core needs 20.
node_for_tools() {
  command -v node >/dev/null 2>&1 ||
    die "node not found: the test tools (@redocly/cli, playwright-core) need Node.js 20.19+ or 22.12+. Debian 12's nodejs (18) is enough to build crest, not to test it: install a newer Node.js (e.g. NodeSource's nodejs 22 package), then run make test again."
  local v major minor
  v=$(node -p 'process.versions.node' 2>/dev/null || echo 0.0.0)
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  case "$major$minor" in *[!0-9]*|"") major=0 minor=0 ;; esac
  if [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; then return 0; fi
  if [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; then return 0; fi
  if [ "$major" -ge 23 ]; then return 0; fi
  local why="too old for"
  [ "$major" -eq 21 ] && why="not supported by"
  die "Node.js v$v ($(command -v node)) is $why the test tools: @redocly/cli needs Node.js 20.19+ or 22.12+. Debian 12's nodejs (18) is enough to build crest and its docs page, not to test it: install a newer Node.js (e.g. NodeSource's nodejs 22 package), then run make test again."
}

tools=false
case "${1:-}" in
  --check-node) [ $# -eq 1 ] || usage; node_for_tools; exit 0 ;;
  --tools) tools=true; shift ;;
  -*) usage ;;
esac
if [ $# -ne 1 ] || [ -z "$1" ]; then usage; fi

src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || die "cannot create the build folder '$1'"
build=$(cd "$1" && pwd)

# npm_ci PACKAGE_DIR PREFIX CHECK_FILE: installs PACKAGE_DIR's lock file into
# PREFIX/node_modules unless the stamp says it is there; returns 1 when it was
# already installed, 0 when it installed it.
npm_ci() {
  local pkg=$1 prefix=$2 check=$3 want stamp
  if [ ! -f "$pkg/package.json" ] || [ ! -f "$pkg/package-lock.json" ]; then
    die "missing $pkg/package.json or package-lock.json"
  fi
  want=$(cat "$pkg/package.json" "$pkg/package-lock.json" | sha256sum | cut -d' ' -f1)
  stamp="$prefix/.crest-npm-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$prefix/node_modules/$check" ]; then
    return 1
  fi
  echo "scripts/npm.sh: installing ${pkg#"$src"/} into $prefix" >&2
  rm -f "$stamp"
  cp "$pkg/package.json" "$pkg/package-lock.json" "$prefix/"
  # shellcheck disable=SC2086
  npm ci --prefix "$prefix" --ignore-scripts --no-audit --no-fund --prefer-offline \
    --loglevel=error ${CREST_NPM_FLAGS:-} >&2 ||
    die "npm ci failed (the npm registry or npm's cache must be reachable; see the messages above)"
  echo "$want" >"$stamp"
  return 0
}

# One installer at a time per build folder; the others wait, then find it done.
lock_build() {
  exec 9>"$build/.crest-npm.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 900 9 || die "timed out waiting for another scripts/npm.sh on $build"
  fi
}

# ---- the docs page's files
docs_dir="$build/docs-ui"
ui_dir="$build/swagger-ui"
if ! command -v npm >/dev/null 2>&1; then
  $tools && die "npm not found: the test tools need Node.js 20.19+ with its npm"
  if [ ! -f "$ui_dir/swagger-ui-bundle.js" ]; then
    echo "scripts/npm.sh: warning: npm not found, so the docs page's files (swagger-ui-dist) are not installed" \
      "and GET /docs will answer 503 docs_unavailable. To get them: apt-get install nodejs npm" \
      "(or scripts/deps.sh build), then build again." >&2
  fi
  exit 0
fi
mkdir -p "$docs_dir"
lock_build
if npm_ci "$src/tools/docs-ui" "$docs_dir" swagger-ui-dist/package.json || [ ! -f "$ui_dir/swagger-ui-bundle.js" ]; then
  # swagger-ui-dist's browser files: everything but its Node entry points,
  # package metadata and source maps. Built aside, then swapped in whole.
  dist="$docs_dir/node_modules/swagger-ui-dist"
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
  version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dist/package.json" | head -n 1)
  echo "scripts/npm.sh: swagger-ui-dist $version in $ui_dir" >&2
fi

# ---- the test tools
if $tools; then
  node_for_tools
  mkdir -p "$build/node"
  npm_ci "$src/tools" "$build/node" @redocly/cli/package.json || true
fi
exit 0
