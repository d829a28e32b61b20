#!/bin/bash
# The paper ablations at smoke scale on the real EuroSAT images, end to end through the CLI:
# `ablate run` of experiments/psts_order.yaml (all six PSTS orderings) and
# experiments/cross_scale_losses.yaml (Table 5's five loss/input combinations), then `ablate report`.
# Checks with the sqlite3 shell that every planned run is recorded (done, or diverged with its step),
# that each done run's loss fell (last logged loss below the first), that KNN results exist at
# every configured scale, and that the reports render. Also plans experiments/model_scaling.yaml
# (86M to 2.4B: planned with counts and FLOPs, not trained on a CPU).
#
# Usage: tests/scripts/smoke_experiments.sh <path to ablate>. Env: SMOKE_DB (keep the database
# there, e.g. to commit a report), SMOKE_JOBS (default 2). Exit 77 = skipped.
set -euo pipefail
ABLATE=${1:-build/ablate}
cd "$(dirname "$0")/../.."
[ -x "$ABLATE" ] || { echo "skip: no ablate binary at $ABLATE"; exit 77; }
command -v sqlite3 >/dev/null || { echo "skip: no sqlite3 shell"; exit 77; }
[ -d ../shared/data/eurosat_rgb ] || { echo "skip: no EuroSAT data under ../shared/data"; exit 77; }
TMP=$(mktemp -d /tmp/ablate-smoke-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=${SMOKE_DB:-$TMP/smoke.sqlite}
JOBS=${SMOKE_JOBS:-2}
q() { sqlite3 -batch -noheader "$DB" "$1"; }
fail() { echo "FAIL: $*"; exit 1; }

"$ABLATE" plan experiments/model_scaling.yaml --scale smoke | tee "$TMP/plan.txt"
grep -q "vit_2b4" "$TMP/plan.txt" || fail "model_scaling plan lacks the 2.4B model"

for exp in psts_order cross_scale_losses; do
  "$ABLATE" run "experiments/$exp.yaml" --scale smoke --db "$DB" --jobs "$JOBS" || true  # verdicts below
  planned=$("$ABLATE" plan "experiments/$exp.yaml" --scale smoke --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')
  recorded=$(q "SELECT count(*) FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = '$exp' AND r.status IN ('done','diverged')")
  [ "$planned" = "$recorded" ] || fail "$exp: $recorded of $planned runs recorded as done/diverged"
  # A diverged run must carry its step; a done run must have learned.
  bad=$(q "SELECT count(*) FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = '$exp' AND r.status = 'diverged' AND r.diverged_step IS NULL")
  [ "$bad" = 0 ] || fail "$exp: diverged runs without a step"
  notfalling=$(q "SELECT count(*) FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = '$exp' AND r.status = 'done' AND
      (SELECT value FROM metrics WHERE run_id = r.id AND name = 'loss' ORDER BY step DESC LIMIT 1) >=
      (SELECT value FROM metrics WHERE run_id = r.id AND name = 'loss' ORDER BY step ASC LIMIT 1)")
  [ "$notfalling" = 0 ] || fail "$exp: $notfalling done runs whose loss did not fall"
  noknn=$(q "SELECT count(*) FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = '$exp' AND r.status = 'done' AND
      NOT EXISTS (SELECT 1 FROM evals WHERE run_id = r.id AND protocol = 'knn' AND metric = 'top1')")
  [ "$noknn" = 0 ] || fail "$exp: done runs without KNN results"
  "$ABLATE" report "experiments/$exp.yaml" --scale smoke --db "$DB" --out-dir "$TMP/report-$exp"
  for f in report.md report.html; do [ -s "$TMP/report-$exp/$f" ] || fail "$exp: $f not written"; done
  cat "$TMP/report-$exp/report.md"
done
# Fine-tuning through the worker (after KNN; tiny: 2 epochs on 200 images) records its evals.
"$ABLATE" run tests/data/kill_resume.yaml --db "$TMP/ft.sqlite" --jobs "$JOBS" 'eval.protocols=[knn, finetune]' \
  eval.ft_epochs=2 method.mask_ratio=0.75 seed=0
ft=$(sqlite3 -batch -noheader "$TMP/ft.sqlite" "SELECT count(*) FROM evals WHERE protocol = 'finetune' AND metric = 'top1' AND value > 0")
[ "$ft" -ge 1 ] || fail "no fine-tuning result recorded"
echo "smoke experiments: all runs recorded, losses falling, KNN and fine-tuning present, reports rendered"
