#!/usr/bin/env bash
# Runs browser_auth.mjs (the /docs page in headless Chromium, driven by
# playwright-core: a pasted bearer token turns GET /tasks from 401 into 200);
# installs nothing but the pinned Node tools into the build folder when they
# are missing (scripts/npm.sh), needs Debian's chromium. Like browser.sh.
#
# Usage: tests/openapi/browser_auth.sh BUILD_DIR SOURCE_DIR   (CTest passes both)
set -u
# shellcheck source=tests/openapi/lib.sh
. "$(dirname "$0")/lib.sh"
oa_init "$@"

chromium=${CREST_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "FAIL: $chromium not found: install Debian's chromium (scripts/deps.sh test)"
  exit 1
fi
echo "playwright-core $(node -p "require('$NODE_MODULES/playwright-core/package.json').version")," \
  "$("$chromium" --version 2>/dev/null | head -n 1)"
rm -f "$BUILD/docs-auth-screenshot.png" "$BUILD/docs-auth-screenshot-failure.png"
timeout -k 10 200 node "$SRC/tests/openapi/browser_auth.mjs" "$BUILD" "$SRC"
