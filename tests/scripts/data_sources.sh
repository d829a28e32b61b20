#!/bin/bash
# Packed data must match its source, end to end through `ablate run` (tests/data/data_sources.yaml):
# two data roots whose millionaid/ folders hold different images (32 EuroSAT Forest JPEGs in one,
# 32 SeaLake ones in the other; eurosat_rgb/ for the KNN evaluation is linked into both) each
# pre-train one tiny run. Checked with the sqlite3 shell and the packs' manifests: the two runs
# read different cache folders and record different source fingerprints, and each run's record
# (env pretrain_shards, pretrain_source, pretrain_source_fingerprint) names the folder it read,
# whose manifest says it was packed from that run's root with that fingerprint. Then
# `ablate run ... data.root=<missing folder>` fails before any run starts, saying where it looked.
#
# Usage: tests/scripts/data_sources.sh <path to ablate>. The packs go to the usual cache
# (ABLATE_CACHE_DIR, else ~/.cache/ablate/shards); the two made from this script's folders are
# removed at exit. Exit 77 = skipped.
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
TMP=$(mktemp -d /tmp/ablate-data-sources-XXXXXX)
PACKS=()
cleanup() {
  for p in "${PACKS[@]}"; do rm -rf "$p" "$p.lock"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
DB=$TMP/db.sqlite
EXP=tests/data/data_sources.yaml
q() { sqlite3 -batch -noheader "$DB" "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
manifest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1] + "/manifest.json"))[sys.argv[2]])' "$1" "$2"; }

declare -A CLASS=([a]=Forest [b]=SeaLake)
declare -A ID
for r in a b; do
  mkdir -p "$TMP/root_$r/millionaid"
  ln -s "$(cd ../shared/data/eurosat_rgb && pwd)" "$TMP/root_$r/eurosat_rgb"
  find "../shared/data/eurosat_rgb/${CLASS[$r]}" -name '*.jpg' | sort | head -n 32 |
    xargs -I{} cp {} "$TMP/root_$r/millionaid/"
  ID[$r]=$("$ABLATE" plan "$EXP" "data.root=$TMP/root_$r" --json |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
  "$ABLATE" run "$EXP" "data.root=$TMP/root_$r" --db "$DB" >"$TMP/run_$r.log" 2>&1 ||
    { cat "$TMP/run_$r.log"; fail "run on root_$r did not finish"; }
  [ "$(q "SELECT status FROM runs WHERE id = '${ID[$r]}'")" = done ] || fail "run ${ID[$r]} not done"
done

env_of() { q "SELECT value FROM env WHERE run_id = '${ID[$1]}' AND key = '$2'"; }
for r in a b; do
  dir=$(env_of "$r" pretrain_shards)
  [ -n "$dir" ] && [ -f "$dir/manifest.json" ] || fail "run on root_$r records no readable pretrain_shards ('$dir')"
  PACKS+=("$dir")
  fp=$(env_of "$r" pretrain_source_fingerprint)
  [ ${#fp} = 64 ] || fail "run on root_$r records no source fingerprint ('$fp')"
  [ "$(manifest "$dir" source_fingerprint)" = "$fp" ] || fail "root_$r: the pack's manifest has another fingerprint"
  src=$(cd "$TMP/root_$r/millionaid" && pwd -P)
  [ "$(manifest "$dir" source)" = "$src" ] || fail "root_$r: the pack was made from $(manifest "$dir" source), not $src"
  [ "$(env_of "$r" pretrain_source)" = "$src" ] || fail "root_$r: recorded source is $(env_of "$r" pretrain_source)"
  # Evaluations are records of their own: each records what it read in eval_env.
  [ -n "$(q "SELECT e.value FROM eval_env e JOIN eval_tasks t ON t.id = e.eval_id
             WHERE t.run_id = '${ID[$r]}' AND e.key = 'eval_shards_fingerprint'")" ] ||
    fail "the evaluation of the run on root_$r records no eval shards fingerprint"
  echo "root_$r: run ${ID[$r]} read $dir (source fingerprint ${fp:0:16}...)"
done
[ "$(env_of a pretrain_shards)" != "$(env_of b pretrain_shards)" ] || fail "both roots were read from one cache folder"
[ "$(env_of a pretrain_source_fingerprint)" != "$(env_of b pretrain_source_fingerprint)" ] ||
  fail "different images, same fingerprint"

# A missing root: an error naming where it looked, before any run is recorded.
if "$ABLATE" run "$EXP" "data.root=$TMP/nonexistent" --db "$DB" >"$TMP/missing.log" 2>&1; then
  fail "a run with a missing data root succeeded"
fi
grep -q "$TMP/nonexistent/millionaid" "$TMP/missing.log" || { cat "$TMP/missing.log"; fail "the error does not say where it looked"; }
[ "$(q 'SELECT count(*) FROM runs')" = 2 ] || fail "the missing root left a run behind"
echo "PASS: two roots, two packs, each run's record names what it read; a missing root is refused"
