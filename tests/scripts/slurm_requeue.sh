#!/bin/bash
# Preemption through Slurm: on the one-node cluster of slurm_e2e.sh, tests/data/slurm_small.yaml
# (trained 20 epochs here, so each run checkpoints many times) is submitted with
# `ablate run --backend slurm`; once the first array task has written run_dir/ckpt/last.pt it is
# preempted with `scontrol requeue` (Slurm SIGTERMs the worker, which checkpoints and exits 99).
# The requeued task must resume from its checkpoint: its journal records env resumed_from_step > 0
# and a second open line, and after `ablate sync` every run is done exactly once (one attempt, one
# finish line) with its training complete. Checked with the plain sqlite3 shell.
#
# Usage: tests/scripts/slurm_requeue.sh <path to ablate>   (from the source root; ctest does this)
# Exit 77 = skipped, for the reasons slurm_e2e.sh gives.
set -u
source "$(dirname "$0")/slurm_e2e.sh"

slurm_test_begin "$@"

"$ABLATE" run "$EXP" --db "$DB" --backend slurm --partition ablate --time 10:00 --throttle 2 \
  --gpus-per-task 0 train.epochs=20 >>"$LOG" 2>&1 || fail "ablate run --backend slurm exited with $?"
read -r victim job dir <<<"$(q "SELECT id, slurm_job_id, run_dir FROM runs WHERE slurm_job_id LIKE '%\_0' ESCAPE '\\'" | tr '|' ' ')"
[ -n "$dir" ] || fail "no array task 0 among $(q 'SELECT id, status, slurm_job_id FROM runs')"

for ((i = 0; i < 600; i++)); do
  [ -f "$dir/ckpt/last.pt" ] && break
  sleep 0.1
done
[ -f "$dir/ckpt/last.pt" ] || fail "task $job wrote no checkpoint within 60 s"
grep -q '"type":"finish"' "$dir/journal.jsonl" && fail "run $victim finished before it could be preempted"
scontrol requeue "$job" || fail "scontrol requeue $job failed"
echo "preempted task $job (run $victim) after its first checkpoint ($((SECONDS - t0)) s)"

# Slurm holds a requeued job back for a while (BeginTime); once it is pending again, let it start.
state=""
for ((i = 0; i < 120; i++)); do
  state=$(squeue -h -j "$job" -o %T 2>/dev/null)
  [ "$state" = PENDING ] && break
  sleep 0.25
done
[ "$state" = PENDING ] || fail "task $job is '$state' after the requeue, not PENDING"
scontrol update JobId="$job" StartTime=now || fail "could not release $job"

slurm_wait_jobs ablate-slurm_small 150 || fail "jobs still queued after 150 s: $(squeue)"
echo "jobs finished ($((SECONDS - t0)) s)"
"$ABLATE" sync --db "$DB" >>"$LOG" 2>&1 || fail "ablate sync exited with $?"

j=$dir/journal.jsonl
opens=$(grep -c '"type":"open"' "$j")
[ "$opens" -ge 2 ] || fail "run $victim started $opens time(s): the requeued task never restarted"
resumed=$(grep '"key":"resumed_from_step"' "$j" | tail -n 1 | sed 's/.*"value":"\([0-9]*\)".*/\1/')
[ -n "$resumed" ] && [ "$resumed" -gt 0 ] ||
  fail "run $victim did not resume from its checkpoint (resumed_from_step '${resumed}')"
grep -q 'start 2 ====' "$dir/worker.log" || fail "$dir/worker.log shows no second start of the task"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check: $(q 'PRAGMA integrity_check')"
done_runs=$(q "SELECT count(*) FROM runs WHERE status = 'done' AND attempts = 1 AND last_step = total_steps")
[ "$done_runs" = 3 ] || fail "$done_runs of 3 runs done and complete in one attempt: $(q 'SELECT id, status, attempts, last_step, total_steps, exit_reason FROM runs')"
for d in $(q "SELECT run_dir FROM runs"); do
  n=$(grep -c '"type":"finish"' "$d/journal.jsonl")
  [ "$n" = 1 ] || fail "$d/journal.jsonl has $n finish lines"
done
echo "PASS: run $victim resumed from step $resumed after preemption; 3 runs done exactly once ($((SECONDS - t0)) s)"
