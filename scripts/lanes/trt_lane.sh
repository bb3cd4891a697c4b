#!/usr/bin/env bash
# TensorRT target lane on the GPU machine (TensorRT-RTX + torch-tensorrt-rtx standing in for TensorRT).
#   OUT=/path/to/out bash scripts/lanes/trt_lane.sh [--precisions fp32,fp16]
# Builds the op library (CUDA, cached in TRTREPO_CACHE_DIR), then scripts/lanes/trt_lane.py writes
# $OUT/trt_lane.json and $OUT/logs/*.tensorrt.log and prints a summary; PASS or FAIL is the last line.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
OUT=${OUT:-$REPO/out/trt_lane}
mkdir -p "$OUT"
if ! $PY -c "import torch_tensorrt, tensorrt" 2>"$OUT/import_error.txt"; then
  echo "tensorrt / torch_tensorrt do not import (stage TensorRT-RTX first: /work/shared/device/README.md):"
  tail -3 "$OUT/import_error.txt"
  echo FAIL
  exit 1
fi
$PY scripts/lanes/trt_lane.py --out "$OUT" "$@" 2>&1 | tee "$OUT/lane.log"
exit "${PIPESTATUS[0]}"
