#!/bin/bash
# End-to-end test of `ablate run --backend slurm` on a real Slurm: starts a one-node cluster on
# loopback (Debian's slurm-wlm and munge, installed when missing; munged, slurmctld and slurmd run
# as root with every key, socket, state and log file under a temp folder; the node's CPUs and memory
# as `slurmd -C` reports them), submits tests/data/slurm_small.yaml (3 tiny runs: a job array, at
# most 2 tasks at once), waits for the jobs, runs `ablate sync`, and checks with the plain sqlite3
# shell that every run is done exactly once (one attempt, one finish line) with its Slurm job id and
# its sbatch script recorded, and evaluated once by an evaluation job array that waited for it
# (--dependency=afterok); then tests/data/multi_rank.yaml, one run of 2 data-parallel ranks as a
# 2-task srun job, which must train and finish once. The daemons are stopped on exit, whatever happens.
#
# Usage: tests/scripts/slurm_e2e.sh <path to ablate>   (from the source root; ctest does this)
# Exit 77 = skipped: no ablate binary or data, or Slurm cannot be installed or started here (not
# root and no sudo, no package registry, daemons refusing to start); the reason is printed.
# slurm_requeue.sh sources this file for slurm_cluster_start / slurm_cluster_stop.

# The cluster's folder, and the commands to reach it (root or passwordless sudo).
CLUSTER=""
SUDO=""

skip() {
  echo "skip: $*"
  exit 77
}

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

slurm_cluster_logs() {
  local f
  for f in "$CLUSTER"/log/*.log; do
    [ -f "$f" ] && { echo "---- $f (tail) ----"; $SUDO tail -n 15 "$f"; }
  done
}

# Installs and starts the cluster; exports SLURM_CONF for the client programs. Exit 77 when that is
# impossible here.
slurm_cluster_start() {
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || skip "starting Slurm daemons needs root or passwordless sudo"
    SUDO="sudo -n"
  fi
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
    ! command -v sbatch >/dev/null; then
    echo "installing slurm-wlm and munge (Debian packages)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge; } \
      >/tmp/ablate-slurm-apt.log 2>&1 ||
      { tail -n 5 /tmp/ablate-slurm-apt.log; skip "could not install slurm-wlm and munge with apt-get"; }
  fi
  PATH=$PATH:/usr/sbin:/sbin
  CLUSTER=$(mktemp -d /tmp/ablate-slurm-XXXXXX)
  chmod 755 "$CLUSTER"
  mkdir -p "$CLUSTER"/{state,spool,log,munge}
  chmod 700 "$CLUSTER/munge"
  dd if=/dev/urandom of="$CLUSTER/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$CLUSTER/munge/munge.key"
  [ -n "$SUDO" ] && $SUDO chown -R root:root "$CLUSTER/munge" "$CLUSTER/state" "$CLUSTER/spool" "$CLUSTER/log"
  # --force: munged refuses root and keys in non-standard folders without it.
  $SUDO munged --force --socket="$CLUSTER/munge/munge.socket" --key-file="$CLUSTER/munge/munge.key" \
    --pid-file="$CLUSTER/munge/munged.pid" --log-file="$CLUSTER/log/munged.log" \
    --seed-file="$CLUSTER/munge/munged.seed" || skip "munged does not start here"
  $SUDO chmod 755 "$CLUSTER/munge"  # clients (the submitting user) reach the socket

  local host node ctld_port slurmd_port
  host=$(hostname -s)
  # slurmd refuses a node whose configured CPUs or memory exceed what it finds: describe the node
  # exactly as slurmd -C sees it.
  node=$(slurmd -C 2>/dev/null | head -n 1 | sed 's/^NodeName=[^ ]*//')
  [[ "$node" == *CPUs=* ]] || skip "slurmd -C does not describe this machine"
  ctld_port=$(free_port) && slurmd_port=$(free_port) || skip "no free TCP port on 127.0.0.1"
  [ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$((ctld_port + 1))
  cat >"$CLUSTER/slurm.conf" <<EOF
ClusterName=ablatetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CLUSTER/munge/munge.socket
StateSaveLocation=$CLUSTER/state
SlurmdSpoolDir=$CLUSTER/spool
SlurmctldPidFile=$CLUSTER/slurmctld.pid
SlurmdPidFile=$CLUSTER/slurmd.pid
SlurmctldLogFile=$CLUSTER/log/slurmctld.log
SlurmdLogFile=$CLUSTER/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=ablate Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$CLUSTER/slurm.conf
  $SUDO slurmctld -f "$SLURM_CONF" || { slurm_cluster_logs; skip "slurmctld does not start here"; }
  $SUDO slurmd -f "$SLURM_CONF" || { slurm_cluster_logs; skip "slurmd does not start here"; }
  local state=""
  for ((i = 0; i < 60; i++)); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.5
  done
  [ "$state" = idle ] || { slurm_cluster_logs; skip "the Slurm node did not become idle (state '$state')"; }
  echo "slurm: one-node cluster up in $CLUSTER (node $host:$slurmd_port, controller $ctld_port)"
}

# Cancels what is left, stops the daemons this script started (by their pid files) and removes the
# cluster's folder.
slurm_cluster_stop() {
  [ -n "$CLUSTER" ] && [ -d "$CLUSTER" ] || return 0
  if [ -f "$CLUSTER/slurmctld.pid" ]; then
    scancel --full --quiet --partition=ablate 2>/dev/null
    for ((i = 0; i < 40; i++)); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.25
    done
  fi
  local f
  for f in "$CLUSTER/slurmd.pid" "$CLUSTER/slurmctld.pid" "$CLUSTER/munge/munged.pid"; do
    [ -f "$f" ] && $SUDO kill "$($SUDO cat "$f")" 2>/dev/null
  done
  sleep 0.5
  $SUDO rm -rf "$CLUSTER"
}

# Polls until Slurm holds no job of `$1` (a job name) any more, at most $2 seconds.
slurm_wait_jobs() {
  local name=$1 limit=$2 left
  for ((i = 0; i < limit * 2; i++)); do
    left=$(squeue -h -n "$name" -o %i 2>/dev/null | wc -l)
    [ "$left" = 0 ] && return 0
    sleep 0.5
  done
  return 1
}

# The start shared by the Slurm tests ($1 = path to ablate): resolves ablate, checks prerequisites
# (skipping with the reason), starts the cluster (stopped on exit) and defines OUT, DB, LOG, EXP,
# t0, fail (with the logs that explain a failure) and q (sqlite3 query).
slurm_test_begin() {
  set -u
  source "$(dirname "${BASH_SOURCE[0]}")/../support/script_start.bash" "${1:-}"
  "$ABLATE" run --help 2>&1 | grep -q -- --backend || skip "this ablate has no 'run --backend slurm'"

  trap slurm_cluster_stop EXIT
  slurm_cluster_start
  t0=$SECONDS
  OUT=$CLUSTER/results
  mkdir -p "$OUT"
  DB=$OUT/db.sqlite
  LOG=$OUT/ablate.log
  EXP=tests/data/slurm_small.yaml
  fail() {
    echo "FAIL: $*"
    echo "---- ablate log (tail) ----"; tail -n 30 "$LOG"
    local l
    for l in "$OUT"/runs/*/worker.log; do [ -f "$l" ] && { echo "---- $l (tail) ----"; tail -n 12 "$l"; }; done
    slurm_cluster_logs
    exit 1
  }
  q() { sqlite3 -batch -noheader "$DB" "$1"; }
}

slurm_e2e_main() {
  slurm_test_begin "$@"

  "$ABLATE" run "$EXP" --db "$DB" --backend slurm --partition ablate --time 10:00 --throttle 2 \
    --gpus-per-task 0 >>"$LOG" 2>&1 || fail "ablate run --backend slurm exited with $?"
  submitted=$(q "SELECT count(*) FROM runs WHERE status = 'running' AND slurm_job_id LIKE '%\_%' ESCAPE '\\'")
  [ "$submitted" = 3 ] || fail "expected 3 running array tasks, found $submitted: $(q 'SELECT id, status, slurm_job_id FROM runs')"
  scripts=$(q "SELECT count(*) FROM artifacts WHERE kind = 'sbatch' AND path = 'sbatch.sh'")
  [ "$scripts" = 3 ] || fail "expected 3 sbatch artifacts, found $scripts"
  for d in $(q "SELECT run_dir FROM runs"); do
    grep -q '^#SBATCH --array=0-2%2$' "$d/sbatch.sh" || fail "$d/sbatch.sh is not the throttled array script"
  done
  echo "submitted: $(q "SELECT group_concat(slurm_job_id, ' ') FROM runs") ($((SECONDS - t0)) s)"

  # At most 2 tasks ran at once (throttle), while the jobs run.
  max_running=0
  for ((i = 0; i < 300; i++)); do
    running=$(squeue -h -n ablate-slurm_small -t RUNNING -o %i | wc -l)
    ((running > max_running)) && max_running=$running
    [ "$(squeue -h -n ablate-slurm_small -o %i | wc -l)" = 0 ] && break
    sleep 0.5
  done
  [ "$(squeue -h -n ablate-slurm_small -o %i | wc -l)" = 0 ] || fail "jobs still queued after 150 s: $(squeue)"
  ((max_running <= 2)) || fail "$max_running tasks ran at once despite --throttle 2"
  echo "jobs finished ($((SECONDS - t0)) s, at most $max_running at once)"
  # The evaluations: one job array per run, each started after its run's job (afterok).
  slurm_wait_jobs ablate-slurm_small-eval 150 || fail "evaluation jobs still queued after 150 s: $(squeue)"

  "$ABLATE" sync --db "$DB" >>"$LOG" 2>&1 || fail "ablate sync exited with $?"
  "$ABLATE" status "$EXP" --db "$DB" >>"$LOG" 2>&1 || fail "ablate status exited with $?"
  [ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check: $(q 'PRAGMA integrity_check')"
  done_runs=$(q "SELECT count(*) FROM runs JOIN experiments e ON e.run_id = runs.id
                 WHERE e.name = 'slurm_small' AND status = 'done' AND attempts = 1")
  [ "$done_runs" = 3 ] || fail "$done_runs of 3 runs done in one attempt: $(q 'SELECT id, status, attempts, exit_reason FROM runs')"
  for d in $(q "SELECT run_dir FROM runs"); do
    n=$(grep -c '"type":"finish"' "$d/journal.jsonl")
    [ "$n" = 1 ] || fail "$d/journal.jsonl has $n finish lines"
  done
  evals=$(q "SELECT count(DISTINCT run_id) FROM evals WHERE protocol = 'knn'")
  [ "$evals" = 3 ] || fail "knn results for $evals of 3 runs: $(q 'SELECT id, status, slurm_job_id, exit_reason FROM eval_tasks')"
  [ "$(q "SELECT count(*) FROM eval_tasks WHERE status = 'done' AND attempts = 1 AND slurm_job_id IS NOT NULL")" = 3 ] ||
    fail "not every evaluation ran once as a Slurm job: $(q 'SELECT id, status, attempts, slurm_job_id FROM eval_tasks')"
  echo "PASS: 3 runs done exactly once through Slurm ($((SECONDS - t0)) s)"

  # A data-parallel run (resources.gpus: 2) is one job of 2 srun tasks that rendezvous and train
  # together (Gloo on the CPU here); rank 0 alone writes the journal.
  "$ABLATE" run tests/data/multi_rank.yaml --db "$DB" --backend slurm --partition ablate --time 10:00 \
    --gpus-per-task 0 --dist-timeout 60 >>"$LOG" 2>&1 || fail "ablate run --backend slurm (2 ranks) exited with $?"
  id=$(q "SELECT run_id FROM experiments WHERE name = 'multi_rank'")
  d=$(q "SELECT run_dir FROM runs WHERE id = '$id'")
  grep -q '^#SBATCH --ntasks=2$' "$d/sbatch.sh" || fail "$d/sbatch.sh is not a 2-task job"
  slurm_wait_jobs ablate-multi_rank 150 || fail "the 2-rank job is still queued after 150 s: $(squeue)"
  "$ABLATE" sync --db "$DB" >>"$LOG" 2>&1 || fail "ablate sync exited with $?"
  read -r status attempts <<<"$(q "SELECT status, attempts FROM runs WHERE id = '$id'" | tr '|' ' ')"
  [ "$status" = done ] && [ "$attempts" = 1 ] ||
    fail "2-rank run: $status after $attempts attempt(s): $(q "SELECT exit_reason FROM runs WHERE id = '$id'")"
  [ "$(grep -c '"type":"open"' "$d/journal.jsonl")" = 1 ] || fail "2-rank run: the journal was opened more than once"
  [ "$(grep -c '"type":"finish"' "$d/journal.jsonl")" = 1 ] || fail "2-rank run: not one finish line"
  [ "$(q "SELECT value FROM env WHERE run_id = '$id' AND key = 'world_size'")" = 2 ] || fail "2-rank run: world_size not 2"
  grep -q "rank 1 of 2" "$d/worker.log" || fail "2-rank run: rank 1 never started"
  echo "PASS: a 2-rank run trained through srun, done once ($((SECONDS - t0)) s)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  slurm_e2e_main "$@"
fi
