#!/bin/bash
# A typo in an experiment file's report sections fails `ablate plan` and `ablate run` at the
# file:line:col where it was written, before any run: a claim's metric naming a result no planned
# run records, and a table's row axis that is not a matrix axis. `ablate run` must stop before it
# creates the database or a run folder. A file without scale profiles plans without "( scale)".
#
# Usage: tests/scripts/plan_spec_errors.sh <path to ablate>. Exit 77 = skipped.
set -euo pipefail
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
TMP=$(mktemp -d /tmp/ablate-spec-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Lines 1-17; the claim's metric is on line 16 (col 5), the table's row axis on line 12 (col 12).
write() {  # write FILE ROW_AXIS CLAIM_METRIC
  cat >"$1" <<YAML
name: spec_typo
description: "report-section typos are caught at load"
base:
  model: {size: vit_micro, img_size: 32, patch_size: 8, dec_depth: 1, dec_dim: 32, dec_heads: 4}
  train: {epochs: 1, batch: 16}
  eval: {protocols: [knn], scales: [1.0]}
matrix:
  product:
    method.mask_ratio: [0.75, 0.85]
tables:
  - name: t
    rows: [$2]
    metrics: [{name: knn, source: "eval:knn:eurosat:1.0:top1"}]
claims:
  - id: c
    metric: "$3"
    a: {method.mask_ratio: 0.75}
    b: {method.mask_ratio: 0.85}
YAML
}

expect_error() {  # expect_error FILE LOCATION TEXT: plan and run fail with exit 2 at LOCATION
  for cmd in "plan" "run --db $TMP/db/ablate.sqlite"; do
    set +e
    "$ABLATE" $cmd "$1" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set -e
    [ $rc = 2 ] || fail "ablate $cmd $1: exit $rc, expected 2 (config error): $(cat "$TMP/err")"
    grep -qF "ablate: config error: $1:$2: " "$TMP/err" || fail "ablate $cmd: no error at $1:$2: $(cat "$TMP/err")"
    grep -qF "$3" "$TMP/err" || fail "ablate $cmd: '$3' missing: $(cat "$TMP/err")"
    [ ! -e "$TMP/db" ] || fail "ablate $cmd created $TMP/db before rejecting the file"
  done
}

write "$TMP/ok.yaml" method.mask_ratio "eval:knn:eurosat:1.0:top1"
"$ABLATE" plan "$TMP/ok.yaml" >"$TMP/plan.txt" || fail "the correct file does not plan"
head -1 "$TMP/plan.txt" | grep -qx "spec_typo: 2 runs" || fail "plan header: $(head -1 "$TMP/plan.txt")"

write "$TMP/metric.yaml" method.mask_ratio "eval:knn:eurosat:1.0:top2"
expect_error "$TMP/metric.yaml" 16:5 "no planned run records 'eval:knn:eurosat:1.0:top2'"

write "$TMP/axis.yaml" method.mask_ratoi "eval:knn:eurosat:1.0:top1"
expect_error "$TMP/axis.yaml" 12:12 "'method.mask_ratoi' is not an axis of the experiment's matrix"
echo "ok: report-section typos fail plan and run at file:line:col before any run"
