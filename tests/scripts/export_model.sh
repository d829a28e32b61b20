#!/bin/bash
# `ablate export` end to end: one tiny run (tests/data/export_model.yaml) is trained, then its
# encoder exported with --format timm (model.safetensors + config.json in timm's save_for_hf
# layout) and --format pth (MAE's {'model': state_dict} torch.save archive). Checked with Python's
# standard library only: config.json's architecture fields and input size, the safetensors header
# (encoder tensors only, pos_embed with timm's CLS row), the .pth archive's entries; an unknown run
# is a clear error. The numerical round trip (export, reload, same features; timm's and MAE's own
# files) is tests/methods/pretrained_test.cpp.
#
# Usage: tests/scripts/export_model.sh <path to ablate>   (from the source root; ctest does this)
set -u
source "$(dirname "$0")/../support/script_start.bash" "${1:-}"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

TMP=$(mktemp -d /tmp/ablate-export-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/db.sqlite
EXP=tests/data/export_model.yaml
fail() { echo "FAIL: $*"; exit 1; }

"$ABLATE" run "$EXP" --db "$DB" >"$TMP/run.log" 2>&1 || { tail -n 30 "$TMP/run.log"; fail "ablate run"; }
ID=$("$ABLATE" plan "$EXP" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
[ -n "$ID" ] || fail "no run id from ablate plan"

"$ABLATE" export "$ID" --db "$DB" --format timm -o "$TMP/timm" || fail "export --format timm"
"$ABLATE" export "$ID" --db "$DB" --format pth -o "$TMP/encoder.pth" || fail "export --format pth"

python3 - "$TMP" <<'PY' || fail "exported files"
import json, struct, sys, zipfile
tmp = sys.argv[1]
cfg = json.load(open(f"{tmp}/timm/config.json"))
assert cfg["num_classes"] == 0 and cfg["global_pool"] == "token" and cfg["num_features"] == 64, cfg
args = cfg["model_args"]
assert (args["img_size"], args["patch_size"], args["embed_dim"], args["depth"], args["num_heads"]) == (64, 8, 64, 2, 2), args
assert cfg["pretrained_cfg"]["input_size"] == [3, 64, 64]
assert cfg["pretrained_cfg"]["mean"] == [0.485, 0.456, 0.406]
with open(f"{tmp}/timm/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
names = set(header) - {"__metadata__"}
assert header["pos_embed"]["shape"] == [1, 65, 64], header["pos_embed"]
assert header["patch_embed.proj.weight"]["shape"] == [64, 3, 8, 8]
assert "blocks.1.attn.qkv.weight" in names and "norm.bias" in names
assert not [k for k in names if k.startswith("decoder") or k == "mask_token"], names
assert len(names) == 4 + 2 * 12 + 2, sorted(names)  # patch (2), cls, pos; 12 per block; final norm
entries = zipfile.ZipFile(f"{tmp}/encoder.pth").namelist()
assert "encoder/data.pkl" in entries and "encoder/version" in entries and "encoder/byteorder" in entries, entries
assert len([e for e in entries if e.startswith("encoder/data/")]) == len(names)
print("exported files ok")
PY

if "$ABLATE" export nosuchrun --db "$DB" --format timm -o "$TMP/x" 2>"$TMP/err.log"; then
  fail "exporting an unknown run succeeded"
fi
grep -q "no run 'nosuchrun'" "$TMP/err.log" || { cat "$TMP/err.log"; fail "unclear error for an unknown run"; }
echo "PASS"
