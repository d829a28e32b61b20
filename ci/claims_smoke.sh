#!/usr/bin/env bash
# Every experiment file with a `claims:` section, run at one scale (default smoke) into one results
# database, then its report and the one-page claims overview results/CLAIMS.md (`ablate claims`).
# Runs one experiment at a time, cheapest first (by the plan's training FLOPs), with --jobs 1 unless
# told otherwise, and notes each experiment's wall time. The reports land next to the database's
# other committed reports, named <experiment>_<scale>_<device>, so that they can be committed with
# the database (results/reports/README.md).
#
#   ci/claims_smoke.sh                               # all claim experiments, smoke scale, CPU
#   EXPERIMENTS="selective_recon_select epoch_budget" ci/claims_smoke.sh   # a subset, in that order
#   ABLATE_SCALE=small ABLATE_GPUS=0 ci/claims_smoke.sh                    # one GPU, small profiles
#   CLAIMS_ONLY=1 ci/claims_smoke.sh                 # only rewrite results/CLAIMS.md
#
# Env: ABLATE_SCALE (smoke), ABLATE_JOBS (1; CPU runs at once), ABLATE_GPUS (GPU list; default none),
# CLAIMS_DB (default results/claims/<scale>_<device>.sqlite), ABLATE (the binary; default
# build/ablate), ABLATE_BUILD_DIR (build).
# A failed or diverged run is a result: the script carries on and the reports say what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
ABLATE=${ABLATE:-./${ABLATE_BUILD_DIR:-build}/ablate}
SCALE=${ABLATE_SCALE:-smoke}
if [ -n "${ABLATE_GPUS:-}" ]; then DEVICE=gpu; WHERE=(--gpus "$ABLATE_GPUS"); else DEVICE=cpu; WHERE=(--jobs "${ABLATE_JOBS:-1}"); fi
DB=${CLAIMS_DB:-results/claims/${SCALE}_${DEVICE}.sqlite}
TIMES=${DB%.sqlite}_times.tsv
mkdir -p "$(dirname "$DB")"

if [ "${CLAIMS_ONLY:-0}" != 1 ]; then
  if [ -n "${EXPERIMENTS:-}" ]; then
    read -r -a names <<<"$EXPERIMENTS"
  else
    # Files with claims, cheapest first: the sum of the plan's training FLOPs at this scale.
    mapfile -t names < <(for f in experiments/*.yaml; do
        grep -q '^claims:' "$f" || continue
        "$ABLATE" plan "$f" --scale "$SCALE" --json |
          python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total_train_flops"], d["experiment"])'
      done | sort -g | awk '{print $2}')
  fi
  [ -f "$TIMES" ] || printf 'experiment\tscale\truns\twall_s\tfinished_utc\n' > "$TIMES"
  for name in "${names[@]}"; do
    file=experiments/$name.yaml
    runs=$("$ABLATE" plan "$file" --scale "$SCALE" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')
    echo "== $name: $runs runs at $SCALE scale ($(date -u +%H:%M:%S) UTC)"
    t0=$(date +%s)
    "$ABLATE" run "$file" --scale "$SCALE" --db "$DB" "${WHERE[@]}" || echo "   (some runs did not finish: see the report)"
    wall=$(( $(date +%s) - t0 ))
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$SCALE" "$runs" "$wall" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$TIMES"
    out=results/reports/${name}_${SCALE}_${DEVICE}
    "$ABLATE" report "$file" --scale "$SCALE" --db "$DB" --out-dir "$out"   # report.md and report.html
    echo "   $name: ${wall}s wall"
  done
fi

# The overview reads every committed database, so a claim shows its latest verdict wherever it was
# run (results/ablate.sqlite, the uncommitted default database, is left out).
dbs=()
for d in results/claims/*.sqlite results/smoke/*.sqlite results/gpu/*.sqlite results/baseline/*.sqlite results/*.sqlite; do
  [ -f "$d" ] && [ "$d" != results/ablate.sqlite ] && dbs+=(--db "$d")
done
"$ABLATE" claims "${dbs[@]}" -o results/CLAIMS.md
cat results/CLAIMS.md
