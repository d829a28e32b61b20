#!/bin/bash
# `ablate claims` over every experiment file and a committed database (no training): every claim
# of every file is listed exactly once; a claim with committed smoke runs carries a smoke-scale
# verdict with n per side, the device and the database; a claim whose runs are not in the given
# database is "not run"; the Markdown page names the scale beside each verdict.
#
# Usage: tests/scripts/claims_overview.sh <path to ablate>. Exit 77 = skipped.
set -euo pipefail
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
TMP=$(mktemp -d /tmp/ablate-claims-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

DB=results/smoke/smoke_cpu_3seeds.sqlite   # psts_order and cross_scale_losses, 3 seeds, smoke
"$ABLATE" claims --db "$DB" --format json > "$TMP/claims.json"
# Claims written in the files: `  - id:` lines after a top-level `claims:`.
declared=$(for f in experiments/*.yaml; do
  awk '/^claims:/{c=1; next} /^[a-z]/{c=0} c && /^  - id:/{print FILENAME ":" $3}' "$f"; done | sort)
listed=$(python3 -c 'import json,sys; [print(r["file"] + ":" + r["claim"]) for r in json.load(open(sys.argv[1]))]' \
  "$TMP/claims.json" | sort)
[ "$declared" = "$listed" ] || { diff <(echo "$declared") <(echo "$listed"); fail "claims listed differ from the files"; }
python3 - "$TMP/claims.json" "$DB" <<'PY' || exit 1
import json, sys
rows = {r["claim"]: r for r in json.load(open(sys.argv[1]))}
decided = {"reproduced", "contradicted", "inconclusive"}
r = rows["nfr_beats_fnr"]  # psts_order, in the database: 3 vs 3 at smoke scale on a CPU
assert r["verdict"] in decided and r["scale"] == "smoke" and r["p"] is not None, r
assert r["n_a"] == 3 and r["n_b"] == 3 and r["db"] == sys.argv[2], r
assert r["devices"] and r["devices"][0].startswith("CPU "), r
r = rows["all_losses_beat_mae"]  # cross_scale_losses, same database
assert r["verdict"] in decided and r["n_a"] == 3 and r["n_b"] == 3, r
r = rows["hog_beats_random_recon"]  # selective_recon_select: not in this database
assert r["verdict"] == "not run" and r["scale"] == "" and r["p"] is None, r
PY
"$ABLATE" claims --db "$DB" -o "$TMP/CLAIMS.md" 2>/dev/null
grep -Eq '\*\*(reproduced|contradicted|inconclusive) \(smoke scale\)\*\*' "$TMP/CLAIMS.md" || fail "no smoke-scale verdict on the page"
grep -q '\*\*not run\*\*' "$TMP/CLAIMS.md" || fail "no 'not run' row on the page"
echo "claims overview: $(echo "$listed" | wc -l) claims listed"
