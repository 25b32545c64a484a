#!/usr/bin/env bash
# Sets up everything a fresh Debian machine lacks, then runs the whole test suite.
# This is README's second Quick start command, and what CI runs (.ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh --test
# npm ci installs node modules and, through the root "install" script, builds native/.
npm ci --no-fund --no-audit
exec npm test
