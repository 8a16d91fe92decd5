#!/usr/bin/env bash
# Retake docs/console.png, the console's overview after `cordon demo`, with
# the browser test (Playwright driving Chromium) that checks the console.
# Needs node, chromium and `npm install` in crates/cordon-cli/tests/browser.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
(cd crates/cordon-cli/tests/browser && npm ci --no-audit --no-fund --silent)
CORDON_SCREENSHOT="$PWD/docs/console.png" \
  cargo test -q -p cordon-cli --test console the_console_works_in_a_real_browser -- --include-ignored
echo "docs/console.png updated"
