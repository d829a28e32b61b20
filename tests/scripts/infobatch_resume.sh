#!/bin/bash
# InfoBatch end to end through `ablate run` on the real EuroSAT shards (the worker's ShardBatchSource,
# whose planned epochs each get a loader of their own): one tiny MAE run with method.infobatch=true
# over 8 epochs trains to completion once uninterrupted and once SIGKILLed mid-run and resumed from
# its checkpoint. Checked with the sqlite3 shell: both record the same loss at every step (to 17
# digits), `infobatch_kept` holds every sample in epochs 0 and 7 and fewer in the pruned epochs 1-6,
# and the recorded total_steps is the exact step count (fewer than 8 full epochs).
#
# Usage: tests/scripts/infobatch_resume.sh <path to ablate>   (from the source root; ctest does this)
# Exit 77 = skipped.
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"

TMP=$(mktemp -d /tmp/ablate-infobatch-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/a" "$TMP/b"
# tests/data/kill_resume.yaml's runs (256 images, batch 32: 8 steps a full epoch, checkpoints every
# 2 steps), narrowed to one run with InfoBatch over 8 epochs and no evaluation to speak of.
ARGS=(tests/data/kill_resume.yaml --jobs 1 method.infobatch=true train.epochs=8 method.mask_ratio=0.75 seed=0
      eval.max_train=50 eval.max_val=20)

fail() {
  echo "FAIL: $*"
  for d in a b; do echo "---- runner log $d (tail) ----"; tail -n 20 "$TMP/$d/runner.log" 2>/dev/null; done
  exit 1
}
q() { sqlite3 -batch -noheader "$TMP/$1/db.sqlite" "$2"; }

"$ABLATE" run "${ARGS[@]}" --db "$TMP/a/db.sqlite" >"$TMP/a/runner.log" 2>&1 || fail "uninterrupted run failed"

"$ABLATE" run "${ARGS[@]}" --db "$TMP/b/db.sqlite" >"$TMP/b/runner.log" 2>&1 &
RUNNER=$!
# Kill once the run is well into the pruned epochs (past step 12; a full run has 64 steps).
killed=0
for ((i = 0; i < 6000; i++)); do
  j=$(ls "$TMP"/b/runs/*/journal.jsonl 2>/dev/null | head -n 1)
  if [ -n "$j" ] && [ "$(grep -c '"name":"loss"' "$j")" -ge 12 ]; then
    kill -9 "$RUNNER" && killed=1
    break
  fi
  kill -0 "$RUNNER" 2>/dev/null || break
  sleep 0.02
done
wait "$RUNNER" 2>/dev/null
[ "$killed" = 1 ] || fail "the run ended before it could be killed"
grep -q '"type":"finish"' "$j" && fail "the run had finished when it was killed"
for ((i = 0; i < 20; i++)); do pgrep -f -- "worker --run-dir $TMP/b/" >/dev/null || break; sleep 0.1; done
"$ABLATE" run "${ARGS[@]}" --db "$TMP/b/db.sqlite" >>"$TMP/b/runner.log" 2>&1 || fail "resumed run failed"
grep -q '"resumed_from_step"' "$j" || fail "the second attempt did not resume from a checkpoint"

for d in a b; do
  [ "$(q $d "SELECT count(*) FROM runs WHERE status = 'done'")" = 1 ] || fail "$d: run not done"
done
losses() { q "$1" "SELECT step || ' ' || printf('%.17g', value) FROM metrics WHERE name = 'loss' ORDER BY step"; }
[ -n "$(losses a)" ] || fail "no losses recorded"
[ "$(losses a)" = "$(losses b)" ] || fail "resumed losses differ: $(diff <(losses a) <(losses b) | head -n 5)"

read -r total n <<<"$(q a "SELECT r.total_steps, (SELECT count(*) FROM metrics WHERE run_id = r.id AND name = 'loss')
                            FROM runs r" | tr '|' ' ')"
[ "$total" = "$n" ] || fail "total_steps $total, but $n steps logged"
[ "$total" -lt 64 ] || fail "$total steps: no epoch was pruned"
kept=$(q a "SELECT CAST(epoch AS INTEGER) || ':' || CAST(value AS INTEGER) FROM metrics
            WHERE name = 'infobatch_kept' ORDER BY epoch" | tr '\n' ' ')
read -r -a k <<<"$kept"
[ "${#k[@]}" = 8 ] || fail "infobatch_kept for ${#k[@]} epochs, expected 8: $kept"
[ "${k[0]}" = "0:256" ] && [ "${k[7]}" = "7:256" ] || fail "epochs 0 and 7 must be full: $kept"
for e in 1 2 3 4 5 6; do
  v=${k[$e]#*:}
  [ "$v" -lt 256 ] && [ "$v" -ge 128 ] || fail "epoch $e kept $v of 256: $kept"
done
echo "ok: $total steps (a full run: 64), kept per epoch $kept; the resumed run's losses equal the uninterrupted ones"
