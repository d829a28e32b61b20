#!/usr/bin/env bash
# What this project checks on a lent GPU machine (no network there), in stages that each fit one
# remote call. Inputs travel in .carry/ (ignored by git): headers the machine lacks (sqlite3.h),
# a stratified EuroSAT subset packed here with `ablate data pack` (.carry/eurosat-sub), and, for
# later stages, the `ablate` binary built by the first stage (.carry/bin/ablate).
#
#   ci/gpu_session.sh build   # CUDA build, --version, GPU tests, a short bench, small-scale runs
#   ci/gpu_session.sh bench   # ci/bench_gpu.sh: C++ vs Python reference side by side
#   ci/gpu_session.sh reports # psts_order + cross_scale_losses at `small` scale (the files' 3 seeds) on the
#                             # carried subset, with their reports (issue 5's GPU-scale tables)
# Results go to $OUT (the device tool's return folder) or results/gpu/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export ABLATE_EXTRA_PREFIX=$PWD/.carry
# ../shared does not travel to the GPU machine: the reference script comes in .carry/bench.
[ -f .carry/bench/mae_reference.py ] && export ABLATE_REFERENCE=.carry/bench/mae_reference.py
BUILD=build-gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

build() {
  cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DABLATE_CUDA=ON \
    -DABLATE_EXTRA_PREFIX="$ABLATE_EXTRA_PREFIX" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
  local t0=$SECONDS
  cmake --build $BUILD -j "$(nproc)" --target ablate >"$OUT/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
  echo "build of ablate: $((SECONDS - t0)) s"
  cmake --build $BUILD -j "$(nproc)" -- -k 0 >>"$OUT/build.log" 2>&1 || grep -E "error|FAILED" "$OUT/build.log" | head -20
  echo "build of everything: $((SECONDS - t0)) s"
  strip -o "$OUT/ablate" $BUILD/ablate
}

# Stops starting new work past this many seconds (the remote call's limit is 600 s).
DEADLINE=${ABLATE_GPU_DEADLINE:-560}
left() { echo $((DEADLINE - SECONDS)); }

case "${1:-build}" in
  all)
    build
    $BUILD/ablate --version | tee "$OUT/versions.txt"
    timeout 150 $BUILD/tests/methods_tests "[gpu]" --reporter compact 2>&1 | tail -8 | tee "$OUT/gpu_tests.txt"
    ABLATE_BENCH_DEADLINE=$((DEADLINE - 90)) ABLATE_SKIP_BUILD=1 ABLATE_BUILD_DIR=$BUILD \
      ABLATE_SHARDS=.carry/eurosat-sub bash ci/bench_gpu.sh "$OUT/bench" 2>&1 | tail -40
    if [ "$(left)" -gt 40 ]; then
      timeout $(($(left) - 10)) $BUILD/ablate run experiments/quickstart.yaml --scale small --db "$OUT/small.sqlite" \
        data.shards=.carry/eurosat-sub 2>&1 | tail -4
      $BUILD/ablate report experiments/quickstart.yaml --scale small --db "$OUT/small.sqlite" --out-dir "$OUT/report" \
        --format md >/dev/null 2>&1; cat "$OUT/report/report.md" 2>/dev/null | head -30
    fi
    ;;
  build)
    build
    ABL=$BUILD/ablate
    $ABL --version | tee "$OUT/versions.txt"
    for t in methods datasets; do
      timeout 300 $BUILD/tests/${t}_tests "[gpu]" --reporter compact 2>&1 | tail -15 | tee -a "$OUT/gpu_tests.txt"
    done
    # A short bench of each method: proves the graph-captured bf16 steps run; the full side-by-side
    # table comes from the bench stage.
    for m in mae selectivemae; do
      timeout 120 $ABL bench --method $m --model vit_b --batch 256 --steps 20 --warmup 5 \
        --json-out "$OUT/quick_${m}.json" 2>&1 | head -3
    done
    # Small-scale real runs on the carried EuroSAT subset (ablate's quickstart at `small` scale).
    timeout 240 $ABL run experiments/quickstart.yaml --scale small --db "$OUT/small.sqlite" \
      data.shards=.carry/eurosat-sub data.max_images=0 2>&1 | tail -5
    $ABL report experiments/quickstart.yaml --scale small --db "$OUT/small.sqlite" --out-dir "$OUT/report" \
      --format md 2>&1 | tail -3
    cat "$OUT/report/report.md" 2>/dev/null
    ;;
  reports)
    ABL=.carry/bin/ablate
    if [ -x "$ABL" ]; then mkdir -p $BUILD && cp "$ABL" $BUILD/ablate; else build; fi
    for exp in psts_order cross_scale_losses; do
      [ "$(left)" -gt 60 ] || { echo "deadline: $exp not run"; continue; }
      timeout $(($(left) - 30)) $BUILD/ablate run experiments/$exp.yaml --scale small --db "$OUT/small_reports.sqlite" \
        data.shards=.carry/eurosat-sub data.max_images=0 2>&1 | tail -3
      $BUILD/ablate report experiments/$exp.yaml --scale small --db "$OUT/small_reports.sqlite" \
        --out-dir "$OUT/report_$exp" --format md >/dev/null 2>&1; head -40 "$OUT/report_$exp/report.md" 2>/dev/null
    done
    ;;
  bench)
    ABL=.carry/bin/ablate
    if [ -x "$ABL" ]; then mkdir -p $BUILD && cp "$ABL" $BUILD/ablate && export ABLATE_SKIP_BUILD=1; fi
    ABLATE_SHARDS=.carry/eurosat-sub bash ci/bench_gpu.sh "$OUT/bench"
    ;;
esac
