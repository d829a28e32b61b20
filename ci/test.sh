#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, and run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
ctest --test-dir "${ABLATE_BUILD_DIR:-build}" --output-on-failure -j "${ABLATE_TEST_JOBS:-2}" "$@"
