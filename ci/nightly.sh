#!/usr/bin/env bash
# Nightly regression: runs experiments/nightly.yaml (small MAE and SelectiveMAE pre-training plus
# KNN on the real EuroSAT images; smoke scale on a CPU, `small` where a GPU is present), writes the
# HTML report, and compares the results with the baseline database in results/baseline/. Exits
# non-zero when a tracked metric (the file's `compare:` section) regresses beyond its tolerance
# with significance across seeds. Borderline cells first get one more seed each
# (--rerun-borderline 1: at most two more runs, one round of at most about 8 minutes on a 2-core
# CPU, which keeps the whole nightly under 30 minutes; README, "Nightly regression").
#
#   ci/nightly.sh                 # run, report, compare (exit 1 on regression)
#   ci/nightly.sh --update-baseline   # run, then make this run the new baseline (on purpose only)
# Schedule: e.g. cron `0 2 * * * cd /path/to/ablate && ci/nightly.sh >> results/nightly/cron.log 2>&1`,
# or a CI scheduler job that runs this script (see README, "Nightly regression").
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh >/dev/null
SCALE=${ABLATE_SCALE:-$(nvidia-smi -L >/dev/null 2>&1 && echo small || echo smoke)}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=results/nightly/$STAMP
mkdir -p "$OUT"
DB=$OUT/nightly.sqlite
BASE=results/baseline/nightly-$SCALE.sqlite
ABLATE=./${ABLATE_BUILD_DIR:-build}/ablate

"$ABLATE" run experiments/nightly.yaml --scale "$SCALE" --db "$DB" --jobs "${ABLATE_JOBS:-2}"
"$ABLATE" report experiments/nightly.yaml --scale "$SCALE" --db "$DB" --out-dir "$OUT" --format html
"$ABLATE" report experiments/nightly.yaml --scale "$SCALE" --db "$DB" --out-dir "$OUT" --format md

if [ "${1:-}" = "--update-baseline" ]; then
  mkdir -p results/baseline
  sqlite3 "$DB" ".backup '$BASE'"
  echo "baseline updated: $BASE (commit it with a message saying why)"
  exit 0
fi
if [ ! -f "$BASE" ]; then
  echo "no baseline at $BASE: create one on purpose with ci/nightly.sh --update-baseline" >&2
  exit 2
fi
"$ABLATE" compare --db "$DB" --against "$BASE" experiments/nightly.yaml --scale "$SCALE" \
  --rerun-borderline 1 --jobs "${ABLATE_JOBS:-2}" | tee "$OUT/compare.md"
