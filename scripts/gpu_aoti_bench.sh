#!/usr/bin/env bash
# Issue 12's served path on the GPU machine (H200): the torch target's exported program vs its AOTInductor package
# (torch.program: aoti), both with KIND_GPU instances, benched side by side against eager, then the AOTI builds'
# parity through tritonserver. From the repository root, after the staging gpu_all.sh needs (tritonserver,
# tritonclient in /tmp/devsite):
#   bash scripts/gpu_aoti_bench.sh
# The builds (op library, export, AOTInductor compile for CUDA) run here, on the GPU machine. Budget: ~5 minutes
# (the two AOTI compiles are most of it; a second run takes the packages from the trtrepo cache). Fails loudly: every
# step's exit code is checked, the first failure names its step and log, and the last line says PASS or FAIL.
# Results in $OUT (default out/gpu_aoti): compare_gelu_block.txt, compare_mlp_block.txt, summary.txt and
# results.tar.gz (every build log, bench report JSON/text and check report).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lanes/env.sh"
cd "$REPO"
OUT=${OUT:-$REPO/out/gpu_aoti}
R=/tmp/gpu_aoti_results
rm -rf "$R"; mkdir -p "$R" "$OUT"
start=$SECONDS
trap 'rc=$?; [ $rc -ne 0 ] && echo "FAIL (exit $rc after $((SECONDS - start)) s)" | tee -a "$R/summary.txt"; \
      cp "$R/summary.txt" "$OUT/" 2>/dev/null; tar czf "$OUT/results.tar.gz" -C "$R" . 2>/dev/null; exit $rc' EXIT
{
  date -Is; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available())"
} | tee "$R/summary.txt"
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
# KIND_GPU on every build (instance kind auto on a CUDA build), an AOTI package per build, gelu_block's full
# latency sweep and mlp_block at batch 1/8, concurrency 1/16 (its c16 p50 was 123 ms before)
EXPECT_KIND=KIND_GPU PY=$PY GELU_ARGS="--batch-sizes 1,8 --concurrency 1,16 --requests 400" \
  MLP_ARGS="--batch-sizes 1,8 --concurrency 1,16 --requests 200" \
  bash scripts/aoti_bench.sh "$R" 2>&1 | tee -a "$R/summary.txt"
grep -q "cuda=model.aoti-cuda.pt2" /tmp/aoti_bench_gelu_block_aoti/gelu_block/config.pbtxt \
  || { echo "FAIL: gelu_block: config.pbtxt names no CUDA package"; exit 1; }
for example in gelu_block mlp_block; do  # parity of the AOTI-served model, HTTP and gRPC, one server each
  $PY -m trtrepo check "examples/$example/model.yaml" --repository "/tmp/aoti_bench_${example}_aoti" \
    --report "$R/check_${example}_aoti.json" > "$R/check_${example}_aoti.txt" 2>&1 \
    || { tail -30 "$R/check_${example}_aoti.txt"; echo "FAIL: trtrepo check $example (aoti)"; exit 1; }
  tail -1 "$R/check_${example}_aoti.txt" | tee -a "$R/summary.txt"
done
cp "$R"/compare_*.txt "$OUT/"
echo "PASS in $((SECONDS - start)) s" | tee -a "$R/summary.txt"
