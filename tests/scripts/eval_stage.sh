#!/bin/bash
# Pre-train once, evaluate many (issue 13): `ablate run` on tests/data/eval_stage.yaml pre-trains
# one tiny run and evaluates it on two datasets (EuroSAT and UC Merced KNN) as two evaluation
# records, each its own worker process. Then a third evaluation (a linear probe) is added to a copy
# of the file and `ablate run` runs again: the run id is unchanged, no pre-training step is taken
# (no worker for the run starts, its journal and its loss series do not grow, its attempt count
# stays 1), exactly one new evaluation runs, and the first two are not run again. Checked with the
# plain sqlite3 shell; `ablate report` reads the results at their eval:... addresses.
#
# Usage: tests/scripts/eval_stage.sh <path to ablate>   (from the source root; ctest does this)
# Exit 77 = skipped (no binary, sqlite3 or data).
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
[ -d ../shared/data/ucmerced ] || { echo "skip: no UC Merced data under ../shared/data"; exit 77; }

TMP=$(mktemp -d /tmp/ablate-eval-stage-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db.sqlite
EXP=tests/data/eval_stage.yaml
EXP3=$TMP/eval_stage.yaml

fail() {
  echo "FAIL: $*"
  for log in "$TMP"/run*.log; do echo "---- $log (tail) ----"; tail -n 30 "$log"; done
  exit 1
}
q() { sqlite3 -batch -noheader "$DB" "$1"; }

"$ABLATE" run "$EXP" --db "$DB" --jobs 2 >"$TMP/run1.log" 2>&1 || fail "first ablate run exited $?"
[ "$(q "SELECT count(*) FROM runs")" = 1 ] || fail "expected one run"
RUN=$(q "SELECT id FROM runs")
[ "$(q "SELECT status || ' ' || attempts FROM runs")" = "done 1" ] || fail "the run is not done once"
[ "$(q "SELECT count(*) FROM eval_tasks WHERE run_id = '$RUN' AND status = 'done' AND attempts = 1")" = 2 ] ||
  fail "expected two done evaluations: $(q "SELECT protocol, dataset, status, exit_reason FROM eval_tasks")"
for ds in eurosat ucmerced; do
  v=$(q "SELECT value FROM evals WHERE run_id = '$RUN' AND protocol = 'knn' AND dataset = '$ds' AND scale = 1.0 AND metric = 'top1'")
  awk -v v="$v" 'BEGIN { exit !(v != "" && v > 0 && v <= 1) }' || fail "no KNN top-1 on $ds (got '$v')"
done
[ "$(grep -c 'evaluation [0-9a-f]* (.*) started' "$TMP/run1.log")" = 2 ] || fail "expected two evaluation workers"
loss_points=$(q "SELECT count(*) FROM metrics WHERE run_id = '$RUN' AND name = 'loss'")
[ "$loss_points" -ge 1 ] || fail "the run logged no loss"
journal=$(q "SELECT run_dir FROM runs")/journal.jsonl
journal_lines=$(wc -l <"$journal")

# The same experiment with a third evaluation.
awk '{ print } /dataset: ucmerced}/ { print "  - {protocol: linprobe, dataset: ucmerced, probe_epochs: 5}" }' "$EXP" >"$EXP3"
grep -q linprobe "$EXP3" || fail "could not add the third evaluation"
"$ABLATE" run "$EXP3" --db "$DB" --jobs 2 >"$TMP/run2.log" 2>&1 || fail "second ablate run exited $?"
[ "$(q "SELECT count(*) FROM runs")" = 1 ] || fail "the third evaluation planned another run"
[ "$(q "SELECT id FROM runs")" = "$RUN" ] || fail "the run id changed"
[ "$(q "SELECT attempts FROM runs")" = 1 ] || fail "the run was claimed again"
grep -q "run $RUN started" "$TMP/run2.log" && fail "the second run started pre-training"
[ "$(q "SELECT count(*) FROM metrics WHERE run_id = '$RUN' AND name = 'loss'")" = "$loss_points" ] ||
  fail "pre-training steps were taken again"
[ "$(wc -l <"$journal")" = "$journal_lines" ] || fail "the run's journal grew: its worker ran again"
started=$(grep -c 'evaluation [0-9a-f]* (.*) started' "$TMP/run2.log")
[ "$started" = 1 ] || fail "expected exactly one evaluation to run, $started did"
[ "$(q "SELECT count(*) FROM eval_tasks WHERE status = 'done'")" = 3 ] || fail "expected three done evaluations"
[ "$(q "SELECT count(*) FROM eval_tasks WHERE attempts = 1")" = 3 ] || fail "an evaluation ran twice"
v=$(q "SELECT value FROM evals WHERE run_id = '$RUN' AND protocol = 'linprobe' AND dataset = 'ucmerced' AND metric = 'top1'")
awk -v v="$v" 'BEGIN { exit !(v != "" && v > 0 && v <= 1) }' || fail "no linear-probe top-1 on ucmerced (got '$v')"

"$ABLATE" report "$EXP3" --db "$DB" --format md -o "$TMP/report" >"$TMP/run3.log" 2>&1 || fail "ablate report exited $?"
grep -q "UCM" "$TMP/report/report.md" || fail "the report has no UCM column"
echo "PASS: one pre-training, 2 then 3 evaluations; adding one ran 0 pre-training steps and 1 evaluation"
