#!/usr/bin/env bash
# One script for a GPU machine: builds ablate against the machine's CUDA LibTorch, runs the GPU
# tests, benchmarks the C++ train step (MAE and SelectiveMAE at ViT-B batch 256 and ViT-L batch 128)
# side by side with the Python reference ../shared/bench/mae_reference.py (eager and
# torch.compile) in the same run, and writes a Markdown table with the ratios, the GPU name and the
# date to results/bench/.
#
#   ci/bench_gpu.sh [OUT_DIR]      (default OUT_DIR: results/bench)
# Environment:
#   ABLATE_REFERENCE   path of mae_reference.py (default ../shared/bench/mae_reference.py)
#   ABLATE_EXTRA_PREFIX  folder with headers the machine lacks (CLI11, nlohmann-json, sqlite3.h)
#   ABLATE_SHARDS      packed EuroSAT shards for the data-path measurement (optional)
#   ABLATE_BENCH_STEPS timed steps per configuration (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/bench}
mkdir -p "$OUT"
REF=${ABLATE_REFERENCE:-../shared/bench/mae_reference.py}
STEPS=${ABLATE_BENCH_STEPS:-50}
BUILD=${ABLATE_BUILD_DIR:-build-gpu}
LOG="$OUT/bench_gpu.log"
: >"$LOG"

if [ "${ABLATE_SKIP_BUILD:-0}" != 1 ]; then  # ci/gpu_session.sh bench brings a binary built earlier
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DABLATE_CUDA=ON \
    ${ABLATE_EXTRA_PREFIX:+-DABLATE_EXTRA_PREFIX=$ABLATE_EXTRA_PREFIX} >>"$LOG" 2>&1
  cmake --build "$BUILD" -j "$(nproc)" >>"$LOG" 2>&1 || { tail -50 "$LOG"; exit 1; }
fi
"$BUILD/ablate" --version | tee "$OUT/versions.txt"

GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# ABLATE_BENCH_DEADLINE: skip configurations once this many seconds of the script have passed.
over() { [ -n "${ABLATE_BENCH_DEADLINE:-}" ] && [ "$SECONDS" -gt "$ABLATE_BENCH_DEADLINE" ]; }
run_cpp() {  # method model batch [extra...]
  local m=$1 s=$2 b=$3; shift 3
  over && { echo "skipped (deadline): cpp $m $s $*" | tee -a "$LOG"; return; }
  timeout 120 "$BUILD/ablate" bench --method "$m" --model "$s" --batch "$b" --steps "$STEPS" \
    --json-out "$OUT/cpp_${m}_${s}_${b}$*.json" "$@" >>"$LOG" 2>&1 || echo "{}" >"$OUT/cpp_${m}_${s}_${b}$*.json"
}
run_py() {  # method model batch compile(0/1)
  local m=$1 s=$2 b=$3 c=$4 flag=""
  over && { echo "skipped (deadline): python $m $s compile=$c" | tee -a "$LOG"; return; }
  [ "$c" = 1 ] && flag=--compile
  PYTHONUNBUFFERED=1 timeout 180 python3 "$REF" --method "$m" --model "$s" --batch "$b" --steps "$STEPS" $flag 2>>"$LOG" | tail -1 \
    >"$OUT/py_${m}_${s}_${b}_c${c}.json" || echo "{}" >"$OUT/py_${m}_${s}_${b}_c${c}.json"
}

for cfg in "vit_b 256" "vit_l 128"; do
  set -- $cfg
  for m in mae selectivemae; do
    run_cpp "$m" "$1" "$2"
    run_py "$m" "$1" "$2" 0
    run_py "$m" "$1" "$2" 1
  done
done
# The data path (a target of its own) before the technique ablations, so a deadline cuts those.
if [ -n "${ABLATE_SHARDS:-}" ]; then
  run_cpp mae vit_b 256 --input shards --shards "$ABLATE_SHARDS"
  run_cpp selectivemae vit_b 256 --input shards --shards "$ABLATE_SHARDS"
fi
# Technique ablation at ViT-B: the same step without the CUDA graph.
run_cpp mae vit_b 256 --no-graph
run_cpp selectivemae vit_b 256 --no-graph

python3 - "$OUT" "$GPU" "$DATE" "$COMMIT" <<'EOF'
import json, sys, os, glob
out, gpu, date, commit = sys.argv[1:5]
def load(p):
    try:
        with open(os.path.join(out, p)) as f: return json.load(f)
    except Exception: return {}
rows = []
for model, batch in (("vit_b", 256), ("vit_l", 128)):
    for m in ("mae", "selectivemae"):
        c = load(f"cpp_{m}_{model}_{batch}.json"); e = load(f"py_{m}_{model}_{batch}_c0.json"); k = load(f"py_{m}_{model}_{batch}_c1.json")
        ci, ei, ki = c.get("img_per_s"), e.get("img_per_s"), k.get("img_per_s")
        r = lambda a, b: f"{a/b:.2f}x" if a and b else "n/a"
        f = lambda v: f"{v:,.0f}" if v else "failed"
        rows.append(f"| {m} | {model} | {batch} | {f(ci)} | {f(ei)} | {f(ki)} | {r(ci, ei)} | {r(ci, ki)} | "
                    f"{c.get('peak_mem_gib', 0):.1f} / {e.get('peak_mem_gib', 0):.1f} | {100*c.get('mfu', 0):.1f}% |")
def ratio(a, b, key="img_per_s"):
    x, y = load(a).get(key), load(b).get(key)
    return f"{x/y:.2f}x" if x and y else "n/a"
lines = [f"# ablate bench vs Python reference ({gpu}, {date}, commit {commit})", "",
         "Same GPU, same run, same settings (bf16 autocast, SDPA, fused AdamW, input on the GPU). "
         "C++ = `ablate bench` (median of timed steps, CUDA graph); Python = `mae_reference.py` (mean over steps).", "",
         "| method | model | batch | C++ img/s | Py eager | Py compile | C++/eager | C++/compile | peak GiB C++ / Py | C++ MFU |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"] + rows + ["",
         f"SelectiveMAE / MAE images/s, C++ ViT-B: {ratio('cpp_selectivemae_vit_b_256.json', 'cpp_mae_vit_b_256.json')}; "
         f"ViT-L: {ratio('cpp_selectivemae_vit_l_128.json', 'cpp_mae_vit_l_128.json')}.",
         f"SelectiveMAE / MAE peak memory, C++ ViT-B: {ratio('cpp_selectivemae_vit_b_256.json', 'cpp_mae_vit_b_256.json', 'peak_mem_gib')}.",
         f"CUDA graph gain, ViT-B: MAE {ratio('cpp_mae_vit_b_256.json', 'cpp_mae_vit_b_256--no-graph.json')}, "
         f"SelectiveMAE {ratio('cpp_selectivemae_vit_b_256.json', 'cpp_selectivemae_vit_b_256--no-graph.json')}.", "",
         "Per-phase split (eager steps, ms): forward / backward / optimizer / selection:", ""]
for p in sorted(glob.glob(os.path.join(out, "cpp_*.json"))):
    c = load(os.path.basename(p)); ph = c.get("phase_ms", {})
    if ph:
        lines.append(f"- {os.path.basename(p)[4:-5]}: {ph.get('forward',0):.1f} / {ph.get('backward',0):.1f} / "
                     f"{ph.get('optimizer',0):.1f} / {ph.get('selection',0):.2f}"
                     + (f"; data path feeds {c.get('data_feed_img_per_s',0):,.0f} img/s = "
                        f"{c.get('data_feed_img_per_s',0)/max(c.get('img_per_s',1),1):.2f}x consumption" if c.get('data_feed_img_per_s') else ""))
with open(os.path.join(out, f"bench_{date}.md"), "w") as f: f.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
