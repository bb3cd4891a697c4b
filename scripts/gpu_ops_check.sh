#!/usr/bin/env bash
# GPU check of the custom ops (needs CUDA torch, nvcc and a GPU; no network).
#   From the repository root on the GPU machine:  OUT=/path/to/out bash scripts/gpu_ops_check.sh
# 1. builds the CPU+CUDA torch op library (cache: TRTREPO_CACHE_DIR, default /tmp/trtrepo_gpu_cache) and compares
#    the CUDA kernels with the pure-PyTorch decompositions over fp32/fp16/bf16 and odd/large shapes, reloads an
#    exported example model in a fresh process and measures bandwidth   -> $OUT/gpu_ops_check_full.json
# 2. runs a small case set under compute-sanitizer memcheck and racecheck -> $OUT/{memcheck,racecheck}.log
# Writes $OUT/summary.txt and prints PASS or FAIL last; exit status 0 only on PASS.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/out/gpu_ops_check}
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TRTREPO_CACHE_DIR=${TRTREPO_CACHE_DIR:-/tmp/trtrepo_gpu_cache}
PY=${PYTHON:-python3}
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
status=0

if ! $PY -c "import yaml" 2>/dev/null; then
  echo "pyyaml is missing: pip install pyyaml (carry the wheel: no network here)" | tee -a "$SUMMARY"
  echo FAIL; exit 1
fi

$PY scripts/gpu_ops_check.py full --out "$OUT" 2>&1 | tee "$OUT/full.log"
rc=${PIPESTATUS[0]}; echo "full check: exit $rc" | tee -a "$SUMMARY"; [ "$rc" = 0 ] || status=1

SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$SAN" ]; then
  # No caching allocator: every tensor is its own cudaMalloc, so an out-of-bounds access is not hidden in a pool.
  for tool in ${SANITIZERS:-memcheck racecheck}; do
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SAN" --tool "$tool" --error-exitcode 99 --log-file "$OUT/$tool.log" \
      $PY scripts/gpu_ops_check.py small --out "$OUT/$tool" > "$OUT/$tool.stdout" 2>&1
    rc=$?
    echo "compute-sanitizer $tool: exit $rc ($(grep -h 'ERROR SUMMARY\|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1))" \
      | tee -a "$SUMMARY"
    [ "$rc" = 0 ] || status=1
  done
else
  echo "compute-sanitizer not found ($SAN)" | tee -a "$SUMMARY"; status=1
fi

latest=$(ls -td "$TRTREPO_CACHE_DIR"/torch/*/ 2>/dev/null | head -1)
[ -n "$latest" ] && cp "$latest/build.log" "$latest/reproduce.sh" "$OUT/" 2>/dev/null
if [ "$status" = 0 ]; then echo PASS | tee -a "$SUMMARY"; else echo FAIL | tee -a "$SUMMARY"; fi
exit $status
