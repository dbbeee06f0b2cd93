#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Debian packages, npm, the
# Pulumi CLI), the lean kernel (built once, cached), lint, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-kernel.sh >/dev/null
npm run lint
mkdir -p .cache
status=0
npm test -- --reporter=default --reporter=json --outputFile.json=.cache/vitest.json || status=$?
# One plain closing line: "N passed, N failed".
node -e 'const r = require("./.cache/vitest.json"); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)' || true
exit "$status"
