#!/usr/bin/env bash
# TensorRT target lane on the GPU machine (TensorRT-RTX + torch-tensorrt-rtx standing in for TensorRT).
#   After staging TensorRT-RTX (/work/shared/device/README.md: stages 1-3, then `source .devwheels/3/env.sh`),
#   from the repository root:  OUT=/path/to/out bash scripts/gpu_trt_lane.sh
# Needs PYTHONPATH to hold /tmp/devsite (TensorRT-RTX, torch-tensorrt-rtx, pyyaml) — the repo root is added here.
# Builds the op library (CUDA, ~1 min, cached in TRTREPO_CACHE_DIR), then scripts/gpu_trt_lane.py writes
# $OUT/gpu_trt_lane.json and $OUT/logs/*.tensorrt.log and prints a summary; PASS or FAIL is the last line.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/out/gpu_trt_lane}
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TRTREPO_CACHE_DIR=${TRTREPO_CACHE_DIR:-/tmp/trtrepo_gpu_cache}
PY=${PYTHON:-python3}

if ! $PY -c "import torch_tensorrt, tensorrt" 2>"$OUT/import_error.txt"; then
  echo "tensorrt / torch_tensorrt do not import (stage TensorRT-RTX first, see /work/shared/device/README.md):"
  tail -3 "$OUT/import_error.txt"
  echo FAIL
  exit 1
fi
$PY scripts/gpu_trt_lane.py --out "$OUT" "$@" 2>&1 | tee "$OUT/lane.log"
exit "${PIPESTATUS[0]}"
