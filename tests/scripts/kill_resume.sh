#!/bin/bash
# End-to-end robustness of `ablate run` with the real worker: the runner is killed with SIGKILL at
# random moments (>= 10 times) while it trains tests/data/kill_resume.yaml (6 tiny runs, 2 at a
# time), restarted each time, then run to completion. Checked with the plain sqlite3 shell:
# database intact, every planned run done, each finished exactly once (one finish line in its
# journal: a finished run is never started again), and its loss logged at every step 1..total
# exactly once (resumed runs lose no step and duplicate none). No worker may outlive its runner.
#
# Usage: tests/scripts/kill_resume.sh <path to ablate>   (from the source root; ctest does this)
# Env: KILLS (default 12), SEED (kill moments, default 1). Exit 77 = skipped.
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"

TMP=$(mktemp -d /tmp/ablate-kill-resume-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db.sqlite
LOG=$TMP/runner.log
EXP=tests/data/kill_resume.yaml
KILLS=${KILLS:-12}
RANDOM=${SEED:-1}

fail() {
  echo "FAIL: $*"
  echo "---- runner log (tail) ----"; tail -n 40 "$LOG"
  exit 1
}
q() { sqlite3 -batch -noheader "$DB" "$1"; }

start_runner() {
  "$ABLATE" run "$EXP" --db "$DB" --jobs 2 >>"$LOG" 2>&1 &
  RUNNER=$!
}

# The first runner may pack the dataset cache (shared with other runs): let it reach the first
# worker launch before any kill, so the test exercises the runner, not the packer.
start_runner
for ((i = 0; i < 600; i++)); do
  grep -q " started " "$LOG" 2>/dev/null && break
  kill -0 "$RUNNER" 2>/dev/null || break
  sleep 0.5
done
grep -q " started " "$LOG" || fail "the first runner never launched a worker"

for ((k = 1; k <= KILLS; k++)); do
  ((k > 1)) && start_runner
  delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + 2.8 * r / 32767 }')
  sleep "$delay"
  if kill -9 "$RUNNER" 2>/dev/null; then
    echo "kill $k: runner SIGKILLed after ${delay}s"
  else
    echo "kill $k: runner had already exited"
  fi
  wait "$RUNNER" 2>/dev/null
  # Workers die with their runner (PDEATHSIG); allow the kernel a moment to deliver it.
  for ((i = 0; i < 20; i++)); do
    pgrep -f -- "worker --run-dir $TMP/" >/dev/null || break
    sleep 0.1
  done
  if pgrep -f -- "worker --run-dir $TMP/" >/dev/null; then
    pgrep -af -- "worker --run-dir $TMP/"
    fail "a worker outlived its runner"
  fi
done

"$ABLATE" run "$EXP" --db "$DB" --jobs 2 >>"$LOG" 2>&1 || fail "the final run did not finish every run (rc $?)"

[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check: $(q 'PRAGMA integrity_check')"
planned=$(q "SELECT count(*) FROM experiments WHERE name='kill_resume'")
[ "$planned" = 6 ] || fail "expected 6 planned runs, found $planned"
done_runs=$(q "SELECT count(*) FROM runs JOIN experiments e ON e.run_id = runs.id
               WHERE e.name = 'kill_resume' AND status = 'done'")
[ "$done_runs" = 6 ] || fail "$done_runs of 6 runs done: $(q 'SELECT id, status, exit_reason FROM runs')"
dups=$(q "SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY run_id, name, step HAVING count(*) > 1)")
[ "$dups" = 0 ] || fail "$dups duplicated metric rows"

for id in $(q "SELECT run_id FROM experiments WHERE name='kill_resume'"); do
  finishes=$(grep -c '"type":"finish"' "$TMP/runs/$id/journal.jsonl")
  [ "$finishes" = 1 ] || fail "run $id finished $finishes times"
  # loss at every step 1..total_steps, once each
  read -r total n lo hi <<<"$(q "SELECT r.total_steps, count(m.step), min(m.step), max(m.step)
                                  FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'loss'
                                  WHERE r.id = '$id'" | tr '|' ' ')"
  [ -n "$total" ] && [ "$total" -gt 0 ] || fail "run $id has no total_steps"
  [ "$n" = "$total" ] && [ "$lo" = 1 ] && [ "$hi" = "$total" ] ||
    fail "run $id: loss logged at $n steps in [$lo, $hi], expected 1..$total"
done

attempts=$(q "SELECT sum(attempts) FROM runs")
resumed=$(q "SELECT count(*) FROM runs WHERE attempts > 1")
echo "ok: 6 runs done once each, every step logged once; $attempts attempts in all, $resumed runs resumed after kills"
