#!/usr/bin/env bash
# The README's first command: set up (idempotent), build, then pre-train and evaluate the default
# experiment on the real EuroSAT images (../shared/data) at smoke scale and print its table.
# Builds only the `ablate` binary (the tests are built by ci/test.sh), so the first run starts sooner.
set -euo pipefail
cd "$(dirname "$0")/.."
ABLATE_BUILD_TARGETS=${ABLATE_BUILD_TARGETS:-ablate} bash ci/setup.sh
EXP=${1:-experiments/quickstart.yaml}
./build/ablate run "$EXP" --scale "${ABLATE_SCALE:-smoke}" --jobs 2
NAME=$(basename "$EXP" .yaml)
./build/ablate report "$EXP" --format md --out-dir "results/reports/$NAME"
cat "results/reports/$NAME/report.md"
