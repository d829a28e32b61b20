#!/usr/bin/env bash
# One-stop, idempotent set-up for ablate on Debian 12 (or Ubuntu): system packages via apt,
# LibTorch 2.11 from the torch==2.11.0 PyPI wheel (headers, libs, share/cmake) into .deps/,
# then a CMake + Ninja build in build/. Fast when everything is already there.
#
# Environment knobs:
#   ABLATE_BUILD_DIR   build folder (default: build)
#   ABLATE_BUILD_TYPE  CMake build type (default: Release)
#   ABLATE_NO_INSTALL  set to 1 to skip apt/pip (machines without network, e.g. the GPU box)
#   ABLATE_BUILD_TARGETS  space-separated targets to build (default: all, tests included;
#                      ci/quickstart.sh builds only `ablate`)
#   Torch_DIR / CMAKE_PREFIX_PATH  use another LibTorch (official zip, CUDA wheel) instead
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${ABLATE_BUILD_DIR:-build}
BUILD_TYPE=${ABLATE_BUILD_TYPE:-Release}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

APT_PKGS=(g++ cmake ninja-build pkg-config git python3 python3-pip
          libopencv-dev libsqlite3-dev sqlite3 libfmt-dev libyaml-cpp-dev libcli11-dev
          nlohmann-json3-dev catch2 gnuplot-nox chromium libgloo-dev)

if [ "${ABLATE_NO_INSTALL:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # LibTorch from the PyPI wheel. --no-deps: the C++ CPU build needs only the wheel's own
  # headers/libs plus the CUDA runtime and CUPTI sonames that libtorch_cpu.so is linked
  # against (small wheels); the multi-GB cuDNN/cuBLAS/NCCL wheels are not needed on CPU.
  if [ ! -f .deps/py/torch/share/cmake/Torch/TorchConfig.cmake ] || [ ! -f .deps/py/.complete ]; then
    echo "[setup] pip install torch==2.11.0 (LibTorch C++ parts) into .deps/py"
    PIP="python3 -m pip"
    $PIP --version >/dev/null 2>&1 || { echo "python3 -m pip is not available" >&2; exit 1; }
    rm -rf .deps/py
    $PIP install -q --no-deps --no-compile --target .deps/py \
      torch==2.11.0 'nvidia-cuda-runtime==13.0.96.*' 'nvidia-cuda-cupti==13.0.85.*'
    touch .deps/py/.complete
  fi
fi

CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE")
[ -n "${ABLATE_CMAKE_ARGS:-}" ] && read -r -a extra <<<"$ABLATE_CMAKE_ARGS" && CMAKE_ARGS+=("${extra[@]}")
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}"
fi
JOBS=${ABLATE_JOBS:-$(nproc)}
TARGETS=()
[ -n "${ABLATE_BUILD_TARGETS:-}" ] && read -r -a targets <<<"$ABLATE_BUILD_TARGETS" && TARGETS=(--target "${targets[@]}")
cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGETS[@]}"
