#!/bin/bash
# External checkpoints as table rows (issue 13): `ablate run` on tests/data/external_weights.yaml
# pre-trains our own tiny run and evaluates it and the official MAE code's checkpoint file
# (golden mae_tiny/checkpoint.pth, listed under `weights:`) by KNN on EuroSAT; `ablate report`
# then shows one table with both rows, each with a number. Also checked with the plain sqlite3 shell:
#  - the file's evaluation is keyed by the file's sha256 (weights = 'file:<sha256sum>'), not by its
#    path: the same bytes under another name plan the same evaluation and running again evaluates
#    nothing, while one changed byte plans a new one;
#  - a declared model the file does not fit (vit_tiny, width 192) fails that evaluation, and the
#    worker's log lists the mis-shaped keys with both shapes (the run's evaluation is unaffected).
#
# Usage: tests/scripts/external_weights.sh <path to ablate>   (from the source root; ctest does this)
# The golden folder is ABLATE_GOLDEN_DIR when set, else ../shared/golden; missing, it is an error.
# Exit 77 = skipped (no binary, sqlite3 or data).
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
GOLDEN=${ABLATE_GOLDEN_DIR:-../shared/golden}
CKPT=$GOLDEN/mae_tiny/checkpoint.pth
[ -f "$CKPT" ] || { echo "FAIL: golden checkpoint not found at $CKPT (set ABLATE_GOLDEN_DIR)"; exit 1; }

TMP=$(mktemp -d /tmp/ablate-external-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db.sqlite
fail() {
  echo "FAIL: $*"
  for log in "$TMP"/*.log; do echo "---- $log (tail) ----"; tail -n 30 "$log"; done
  exit 1
}
q() { sqlite3 -batch -noheader "$DB" "$1"; }
# A copy of the fixture in $TMP whose weights entry reads $1; further sed expressions in $2.
fixture() {
  sed -e "s|file: .*checkpoint.pth|file: $1|" -e "${2:-}" tests/data/external_weights.yaml >"$TMP/exp.yaml"
}

fixture "$(cd "$(dirname "$CKPT")" && pwd)/checkpoint.pth"
EXP=$TMP/exp.yaml
"$ABLATE" run "$EXP" --db "$DB" --jobs 1 >"$TMP/run1.log" 2>&1 || fail "ablate run exited $?"
RUN=$(q "SELECT id FROM runs")
[ "$(q "SELECT status || ' ' || attempts FROM runs")" = "done 1" ] || fail "our run is not done once"
SHA=$(sha256sum "$CKPT" | cut -d' ' -f1)
[ "$(q "SELECT count(*) FROM eval_tasks WHERE weights = 'file:$SHA' AND run_id IS NULL AND status = 'done'")" = 1 ] ||
  fail "no done evaluation keyed by the file's sha256: $(q "SELECT weights, status, exit_reason FROM eval_tasks")"
[ "$(q "SELECT count(*) FROM eval_tasks WHERE run_id = '$RUN' AND status = 'done'")" = 1 ] || fail "our run was not evaluated"
for w in "file:$SHA" "run:$RUN"; do
  v=$(q "SELECT m.value FROM eval_metrics m JOIN eval_tasks t ON t.id = m.eval_id WHERE t.weights = '$w' AND m.metric = 'top1'")
  awk -v v="$v" 'BEGIN { exit !(v != "" && v > 0 && v <= 1) }' || fail "no KNN top-1 for $w (got '$v')"
done

"$ABLATE" report "$EXP" --db "$DB" --format md -o "$TMP/report" >"$TMP/report.log" 2>&1 || fail "ablate report exited $?"
MD=$TMP/report/report.md
[ "$(grep -c '^| ours *|' "$MD")" = 1 ] || fail "the table has no 'ours' row: $(cat "$MD")"
[ "$(grep -c '^| mae_official *|' "$MD")" = 1 ] || fail "the table has no 'mae_official' row: $(cat "$MD")"
for row in ours mae_official; do
  grep "^| $row *|" "$MD" | grep -Eq '\| \**[0-9]+\.[0-9]' || fail "the $row row has no number: $(grep "^| $row" "$MD")"
done
[ "$(grep -c 'KNN top-1' "$MD")" -ge 1 ] || fail "no KNN column"

# The same bytes under another name: the same evaluation, nothing runs again.
cp "$CKPT" "$TMP/renamed.pth"
fixture "$TMP/renamed.pth"
"$ABLATE" run "$EXP" --db "$DB" --jobs 1 >"$TMP/run2.log" 2>&1 || fail "ablate run on the renamed file exited $?"
grep -q 'evaluation [0-9a-f]* (.*) started' "$TMP/run2.log" && fail "the renamed file was evaluated again"
[ "$(q "SELECT count(*) FROM eval_tasks")" = 2 ] || fail "the renamed file planned another evaluation"
# One byte more: another sha256, another evaluation (only planned here).
eval_id() { "$ABLATE" plan "$EXP" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["weights"][0]["evals"][0]["id"])'; }
recorded=$(q "SELECT id FROM eval_tasks WHERE weights = 'file:$SHA'")
[ "$(eval_id)" = "$recorded" ] || fail "plan's evaluation id of the renamed file is not the recorded one"
printf x >>"$TMP/renamed.pth"
changed=$(eval_id)
[ -n "$changed" ] && [ "$changed" != "$recorded" ] || fail "a changed file kept its evaluation id ($changed)"

# A declared model the file does not fit: a clear error listing the keys with their shapes.
fixture "$(cd "$(dirname "$CKPT")" && pwd)/checkpoint.pth" 's|model: {size: vit_micro, img_size: 32, patch_size: 8}$|model: {size: vit_tiny, img_size: 32, patch_size: 8}|'
grep -q 'size: vit_tiny' "$EXP" || fail "could not declare another model"
"$ABLATE" run "$EXP" --db "$DB" --jobs 1 >"$TMP/run3.log" 2>&1 && fail "a model mismatch did not fail the run"
reason=$(q "SELECT exit_reason FROM eval_tasks WHERE weights = 'file:$SHA' AND status = 'failed'")
echo "$reason" | grep -q 'do not fit' || fail "the failed evaluation's reason does not say the weights do not fit: '$reason'"
LOG=$(q "SELECT run_dir FROM eval_tasks WHERE weights = 'file:$SHA' AND status = 'failed'")/worker.log
grep -q 'shape mismatch: .*patch_embed.proj.weight \[64, 3, 8, 8\] in the file, \[192, 3, 8, 8\] in the model' "$LOG" ||
  fail "the worker log does not list the mis-shaped keys: $(tail -n 5 "$LOG")"
[ "$(q "SELECT count(*) FROM eval_tasks WHERE run_id = '$RUN' AND status = 'done' AND attempts = 1")" = 1 ] ||
  fail "our run's evaluation was disturbed"
echo "PASS: our run and the official MAE checkpoint in one table; the evaluation is keyed by the file's sha256; a model mismatch lists the keys"
