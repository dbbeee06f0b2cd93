#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Debian packages, npm, the
# Pulumi CLI), the lean kernel (built once, cached), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-kernel.sh >/dev/null
npm run lint
npm test
