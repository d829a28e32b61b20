#!/bin/bash
# End-to-end data-parallel run with the real worker: `ablate run` on tests/data/multi_rank.yaml (one
# run, resources.gpus: 2) starts two ranks (Gloo on the CPU, or two GPUs with --gpus). Checked with
# the plain sqlite3 shell and the run folder: the run is done exactly once, its journal was opened
# by one process only (rank 0) and holds every step's loss once, rank 1 logged to its own file, and
# rank 0 evaluated. Then the same run made longer: rank 1 is SIGKILLed mid-run and the run must end
# `failed` within the data-parallel timeout, its exit reason naming the killed rank.
#
# Usage: tests/scripts/multi_rank.sh <path to ablate>   (from the source root; ctest does this)
# Exit 77 = skipped.
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"

TMP=$(mktemp -d /tmp/ablate-multi-rank-XXXXXX)
RUNNER=
cleanup() {
  [ -n "$RUNNER" ] && kill -9 "$RUNNER" 2>/dev/null  # its workers die with it (PDEATHSIG)
  rm -rf "$TMP"
}
trap cleanup EXIT
LOG=$TMP/runner.log
EXP=tests/data/multi_rank.yaml
TIMEOUT=20  # --dist-timeout: the killed-rank run must fail well within it

fail() {
  echo "FAIL: $*"
  echo "---- runner log (tail) ----"; tail -n 30 "$LOG"
  for f in "$TMP"/*/runs/*/worker*.log; do echo "---- $f (tail) ----"; tail -n 15 "$f"; done
  exit 1
}
q() { sqlite3 -batch -noheader "$1" "$2"; }

# ---- a two-rank run, done once, reported by rank 0 only ----
mkdir -p "$TMP/ok"
DB=$TMP/ok/db.sqlite
"$ABLATE" run "$EXP" --db "$DB" --dist-timeout "$TIMEOUT" >>"$LOG" 2>&1
rc=$?
reason=$(q "$DB" "SELECT exit_reason FROM runs" 2>/dev/null)
case "$reason" in *"no Gloo headers"*) echo "skip: this build has no Gloo (CPU data-parallel runs)"; exit 77 ;; esac
[ "$rc" = 0 ] || fail "ablate run exited $rc: $(q "$DB" 'SELECT id, status, exit_reason FROM runs')"
id=$(q "$DB" "SELECT id FROM runs")
dir=$TMP/ok/runs/$id
read -r status attempts total <<<"$(q "$DB" "SELECT status, attempts, total_steps FROM runs" | tr '|' ' ')"
[ "$status" = done ] && [ "$attempts" = 1 ] || fail "run $id: status $status after $attempts attempt(s)"
[ "$(grep -c '"type":"finish"' "$dir/journal.jsonl")" = 1 ] || fail "not exactly one finish line"
[ "$(grep -c '"type":"open"' "$dir/journal.jsonl")" = 1 ] || fail "the journal was opened by more than one process"
[ "$(q "$DB" "SELECT value FROM env WHERE key = 'world_size'")" = 2 ] || fail "world_size not journaled as 2"
read -r n lo hi <<<"$(q "$DB" "SELECT count(*), min(step), max(step) FROM metrics WHERE name = 'loss'" | tr '|' ' ')"
[ "$total" -gt 0 ] && [ "$n" = "$total" ] && [ "$lo" = 1 ] && [ "$hi" = "$total" ] ||
  fail "loss logged at $n steps in [$lo, $hi], expected once at each of 1..$total"
[ "$(q "$DB" "SELECT count(*) FROM evals WHERE protocol = 'knn'")" -ge 1 ] || fail "rank 0 did not evaluate"
grep -q "rank 1 of 2" "$dir/worker.rank1.log" || fail "rank 1 did not log to worker.rank1.log"
[ -f "$dir/ckpt/last.pt" ] || fail "no checkpoint"
echo "ok: 2-rank run done once, $total steps logged once each by rank 0"

# ---- rank 1 SIGKILLed mid-run: the run fails, naming it, within the timeout ----
mkdir -p "$TMP/kill"
DB=$TMP/kill/db.sqlite
"$ABLATE" run "$EXP" --db "$DB" --dist-timeout "$TIMEOUT" train.epochs=50 >>"$LOG" 2>&1 &
RUNNER=$!
pid=
for ((i = 0; i < 1200; i++)); do  # the ranks start, rendezvous and train a few steps
  id=$(q "$DB" "SELECT id FROM runs" 2>/dev/null)
  if [ -n "$id" ] && [ -f "$TMP/kill/runs/$id/journal.jsonl" ] &&
     grep -q '"name":"loss","value"' "$TMP/kill/runs/$id/journal.jsonl" 2>/dev/null &&
     [ "$(grep -c '"name":"loss"' "$TMP/kill/runs/$id/journal.jsonl")" -ge 3 ]; then
    pid=$(grep -o 'rank 1 of 2, pid [0-9]*' "$TMP/kill/runs/$id/worker.rank1.log" | tail -n 1 | grep -o '[0-9]*$')
    break
  fi
  kill -0 "$RUNNER" 2>/dev/null || fail "the runner ended before the run trained"
  sleep 0.1
done
[ -n "$pid" ] || fail "rank 1 never trained (or logged no pid)"
kill -9 "$pid"
t0=$(date +%s.%N)
for ((i = 0; i < 10 * (2 * TIMEOUT + 30); i++)); do
  kill -0 "$RUNNER" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$RUNNER" 2>/dev/null && fail "the run was still going $((2 * TIMEOUT + 30)) s after rank 1 was killed"
wait "$RUNNER"
rc=$?
RUNNER=
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" = 1 ] || fail "ablate run exited $rc, expected 1 (a failed run)"
read -r status attempts <<<"$(q "$DB" "SELECT status, attempts FROM runs" | tr '|' ' ')"
reason=$(q "$DB" "SELECT exit_reason FROM runs")
[ "$status" = failed ] && [ "$attempts" = 1 ] || fail "status $status after $attempts attempt(s): $reason"
case "$reason" in
  "rank 1 of 2: killed by signal 9 (SIGKILL)"*"rank 0 of 2 reported: data-parallel rank 0 of 2"*) ;;
  *) fail "exit reason does not name the killed rank and rank 0's failed collective: $reason" ;;
esac
awk -v s="$secs" -v t="$TIMEOUT" 'BEGIN { exit !(s < t + 10) }' || fail "took $secs s to fail (timeout $TIMEOUT s)"
echo "ok: rank 1 killed -> run failed after ${secs}s: $reason"
