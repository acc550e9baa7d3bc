#!/usr/bin/env bash
# Runs a browser test of the /docs page, NAME.mjs (browser.mjs: the page and
# GET /tasks tried out; browser_auth.mjs: a pasted bearer token turns GET
# /tasks from 401 into 200), in headless Chromium driven by playwright-core:
# installs nothing but the pinned Node tools into the build folder when they
# are missing (scripts/npm.sh), needs Debian's chromium.
#
# Usage: tests/openapi/browser.sh BUILD_DIR SOURCE_DIR [NAME]   (CTest passes
# them; NAME is browser when left out)
set -u
name=${3:-browser}
set -- "${@:1:2}"
# shellcheck source=tests/openapi/lib.sh
. "$(dirname "$0")/lib.sh"
oa_init "$@"

case $name in
  browser) shot=docs-screenshot ;;
  browser_auth) shot=docs-auth-screenshot ;;
  *) echo "FAIL: unknown browser test '$name' (browser, browser_auth)"; exit 2 ;;
esac
chromium=${CREST_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "FAIL: $chromium not found: install Debian's chromium (scripts/deps.sh test)"
  exit 1
fi
echo "playwright-core $(node -p "require('$NODE_MODULES/playwright-core/package.json').version")," \
  "$("$chromium" --version 2>/dev/null | head -n 1)"
rm -f "$BUILD/$shot.png" "$BUILD/$shot-failure.png"
timeout -k 10 200 node "$SRC/tests/openapi/$name.mjs" "$BUILD" "$SRC"
