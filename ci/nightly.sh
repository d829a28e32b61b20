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

# Where the runs go: the GPUs when there are any (ABLATE_GPUS, default GPU 0), else CPU jobs.
if nvidia-smi -L >/dev/null 2>&1; then WHERE=(--gpus "${ABLATE_GPUS:-0}"); else WHERE=(--jobs "${ABLATE_JOBS:-2}"); fi

# A run that fails is recorded as failed and shown so in the report: carry on, and fail at the end.
run_rc=0
"$ABLATE" run experiments/nightly.yaml --scale "$SCALE" --db "$DB" "${WHERE[@]}" || run_rc=$?

if [ "${1:-}" = "--update-baseline" ]; then
  if [ "$run_rc" != 0 ]; then
    echo "not a baseline: some runs did not finish (ablate run exit $run_rc)" >&2
    exit 1
  fi
  "$ABLATE" report experiments/nightly.yaml --scale "$SCALE" --db "$DB" --out-dir "$OUT"  # md + html
  mkdir -p results/baseline
  sqlite3 "$DB" ".backup '$BASE'"
  echo "baseline updated: $BASE (commit it with a message saying why)"
  exit 0
fi
if [ ! -f "$BASE" ]; then
  echo "no baseline at $BASE: create one on purpose with ci/nightly.sh --update-baseline" >&2
  exit 2
fi
# Compare first: its borderline re-runs add seeds to $DB, and the report should show them.
compare_rc=0
"$ABLATE" compare --db "$DB" --against "$BASE" experiments/nightly.yaml --scale "$SCALE" \
  --rerun-borderline 1 "${WHERE[@]}" >"$OUT/compare.md" || compare_rc=$?
cat "$OUT/compare.md"
"$ABLATE" report experiments/nightly.yaml --scale "$SCALE" --db "$DB" --out-dir "$OUT"  # md + html
[ "$compare_rc" != 0 ] && exit "$compare_rc"
exit "$run_rc"
