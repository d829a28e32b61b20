#!/bin/bash
# The paper ablations at smoke scale on the real EuroSAT images, end to end through the CLI:
# `ablate run` of experiments/psts_order.yaml (all six PSTS orderings) and
# experiments/cross_scale_losses.yaml (Table 5's five loss/input combinations), then `ablate report`.
# Checks with the sqlite3 shell that every planned run is recorded (done, or diverged with its step),
# that each done run's loss fell (last logged loss below the first), that KNN results exist at
# every configured scale, and that the reports render (three seeds per cell, so the claims are
# tested). Then `ablate compare --rerun-borderline 1` through the real runner: the database against
# a copy of itself re-runs nothing and passes; against a copy in which one psts_order cell's KNN is
# 20 points higher on one seed (beyond the 1-point tolerance, not significant: borderline), exactly
# that cell gets one more seed (seed 3, a real run into the new database) and the baseline file is
# left byte for byte as it was. Also plans experiments/model_scaling.yaml (86M to 2.4B: planned
# with counts and FLOPs, not trained on a CPU).
#
# Usage: tests/scripts/smoke_experiments.sh <path to ablate>. Env: SMOKE_DB (keep the database
# there, e.g. to commit a report), SMOKE_JOBS (default 2), SMOKE_OVERRIDES (key=value overrides of
# every run and report; default KNN on 2,000 / 500 images, which keeps the test at a few minutes:
# the files' smoke profiles take the whole EuroSAT split; set SMOKE_OVERRIDES= to run them as
# committed). Exit 77 = skipped.
set -euo pipefail
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
TMP=$(mktemp -d /tmp/ablate-smoke-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=${SMOKE_DB:-$TMP/smoke.sqlite}
JOBS=${SMOKE_JOBS:-2}
read -r -a OVERRIDES <<<"${SMOKE_OVERRIDES-eval.max_train=2000 eval.max_val=500}"
q() { sqlite3 -batch -noheader "$DB" "$1"; }
fail() { echo "FAIL: $*"; exit 1; }

"$ABLATE" plan experiments/model_scaling.yaml --scale smoke | tee "$TMP/plan.txt"
grep -q "vit_2b4" "$TMP/plan.txt" || fail "model_scaling plan lacks the 2.4B model"

for exp in psts_order cross_scale_losses; do
  "$ABLATE" run "experiments/$exp.yaml" --scale smoke --db "$DB" --jobs "$JOBS" "${OVERRIDES[@]}" || true  # verdicts below
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
  "$ABLATE" report "experiments/$exp.yaml" --scale smoke --db "$DB" --out-dir "$TMP/report-$exp" "${OVERRIDES[@]}"
  for f in report.md report.html; do [ -s "$TMP/report-$exp/$f" ] || fail "$exp: $f not written"; done
  cat "$TMP/report-$exp/report.md"
done
# compare --rerun-borderline 1, KNN top-1 tracked alone (throughput of a re-run on a busy CPU says
# nothing here).
CMP_FILE=$TMP/psts_order_knn.yaml
{ cat experiments/psts_order.yaml
  printf 'compare:\n  defaults: false\n  metrics:\n    - {source: "eval:knn:eurosat:1.0:top1", better: higher, abs_tol: 1.0, scale: 100}\n'
} > "$CMP_FILE"
NEW=$TMP/new.sqlite BASE=$TMP/base.sqlite  # copies: SMOKE_DB stays as the experiments left it
sqlite3 "$DB" ".backup '$NEW'"
sqlite3 "$DB" ".backup '$BASE'"
qn() { sqlite3 -batch -noheader "$NEW" "$1"; }
runs_before=$(qn "SELECT count(*) FROM runs")
"$ABLATE" compare --db "$NEW" --against "$BASE" "$CMP_FILE" --rerun-borderline 1 > "$TMP/cmp_same.md" \
  || { cat "$TMP/cmp_same.md"; fail "compare against a copy of itself exited non-zero"; }
grep -q "no borderline cell: nothing re-run" "$TMP/cmp_same.md" || { cat "$TMP/cmp_same.md"; fail "a copy of itself had borderline cells"; }
[ "$(qn 'SELECT count(*) FROM runs')" = "$runs_before" ] || fail "compare against a copy of itself ran something"
nfr="json_extract(e.axes_json, '\$.\"method.psts_order\"') = json('[\"near\",\"far\",\"random\"]')"
sqlite3 "$BASE" "UPDATE eval_metrics SET value = value + 0.2 WHERE metric = 'top1' AND eval_id IN
  (SELECT t.id FROM eval_tasks t WHERE t.protocol = 'knn' AND t.point = 1.0 AND t.run_id =
    (SELECT r.id FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = 'psts_order' AND r.seed = 0 AND $nfr))"
base_sum=$(sha256sum < "$BASE")
"$ABLATE" compare --db "$NEW" --against "$BASE" "$CMP_FILE" --rerun-borderline 1 --jobs "$JOBS" > "$TMP/cmp_rerun.md" \
  || { cat "$TMP/cmp_rerun.md"; fail "a borderline cell re-run turned into a regression"; }
cat "$TMP/cmp_rerun.md"
grep -q "| psts_order | method.psts_order=near-far-random | \`eval:knn:eurosat:1.0:top1\` | 3 | 3 → 4 | borderline (p " "$TMP/cmp_rerun.md" \
  || fail "the re-run table does not show the borderline cell re-run with seed 3"
grep -q "^1 cell(s) re-run" "$TMP/cmp_rerun.md" || fail "more than the borderline cell was re-run"
[ "$(qn 'SELECT count(*) FROM runs')" = "$((runs_before + 1))" ] || fail "expected exactly one re-run"
rerun=$(qn "SELECT r.status FROM runs r JOIN experiments e ON e.run_id = r.id WHERE e.name = 'psts_order' AND r.seed = 3 AND $nfr")
[ "$rerun" = done ] || fail "the re-run (seed 3) is '$rerun', not done"
[ "$(sha256sum < "$BASE")" = "$base_sum" ] || fail "compare wrote to the baseline database"
# Fine-tuning through the worker (after KNN; tiny: 2 epochs on 200 images) records its evals.
"$ABLATE" run tests/data/kill_resume.yaml --db "$TMP/ft.sqlite" --jobs "$JOBS" 'eval.protocols=[knn, finetune]' \
  eval.ft_epochs=2 method.mask_ratio=0.75 seed=0
ft=$(sqlite3 -batch -noheader "$TMP/ft.sqlite" "SELECT count(*) FROM evals WHERE protocol = 'finetune' AND metric = 'top1' AND value > 0")
[ "$ft" -ge 1 ] || fail "no fine-tuning result recorded"
echo "smoke experiments: all runs recorded, losses falling, KNN and fine-tuning present, reports rendered, borderline re-run"
