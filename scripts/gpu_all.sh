#!/usr/bin/env bash
# The whole GPU proof in one command, on the GPU machine (device tool), from the repository root:
#   bash scripts/gpu_all.sh [phase ...]      phases: ops tests serve bench trt kernels trtrtx   (default: all, in order)
# Before it: TensorRT-RTX, tritonserver and tritonclient staged into /tmp/devsite (shared/device/README.md, three
# stage.sh calls) and the missing client wheels installed (scripts/gpu_stage_extras.sh install).
#   ops      CUDA op library build; CUDA kernels vs decompositions; compute-sanitizer memcheck  (gpu_ops_check.sh)
#   tests    pytest's gpu tier (tests/ops/test_ops_cuda.py) and the numpy-2 malformed-output tests (needs pytest)
#   serve    torch target with KIND_GPU instances served by tritonserver; trtrepo check over HTTP and gRPC
#   bench    trtrepo bench of the served example against eager on the same GPU
#   trt      TensorRT target through torch-tensorrt-rtx: plans vs eager across the profile (gpu_trt_lane.sh)
#   kernels  kernel bandwidth vs device copy (bench_kernels.py)
#   trtrtx   TensorRT-RTX plan vs eager vs torch.compile (bench_trt_rtx.py)
# Results: $OUT/summary.txt and $OUT/results.tar.gz (every phase's files; the device tool returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/out/gpu_all}
R=/tmp/gpu_all_results
rm -rf "$R"; mkdir -p "$R" "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ -d /tmp/devsite ] && case ":$PYTHONPATH:" in *:/tmp/devsite:*) ;; *) export PYTHONPATH="$PYTHONPATH:/tmp/devsite";; esac
[ -d /tmp/devsite/bin ] && export PATH="$PATH:/tmp/devsite/bin"
[ -d /tmp/devsite/tensorrt_rtx_libs ] && export LD_LIBRARY_PATH="/tmp/devsite/tensorrt_rtx_libs:/tmp/devsite/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TRITONSERVER_BIN=${TRITONSERVER_BIN:-/tmp/devsite/pytriton/tritonserver/bin/tritonserver}
export TRTREPO_TRITONSERVER=${TRTREPO_TRITONSERVER:-$TRITONSERVER_BIN}
export TRTREPO_CACHE_DIR=${TRTREPO_CACHE_DIR:-/tmp/trtrepo_gpu_cache}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-420}
phases=("$@"); [ ${#phases[@]} -gt 0 ] || phases=(ops tests serve bench trt kernels trtrtx)

{
  date -Is; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import sys, torch, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'arch', torch.cuda.get_device_capability())"
  $PY -m trtrepo doctor 2>&1 | tail -n +1
} > "$R/environment.txt" 2>&1
cat "$R/environment.txt"

run_phase() {  # name, command...
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name"
  timeout "$PHASE_TIMEOUT" "$@" > "$R/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$R/$name.log"
  printf '%-8s exit %-3s %4ss\n' "$name" "$rc" "$((SECONDS - start))" | tee -a "$R/summary.txt"
}

bench_phase() {
  local repo=/tmp/gpu_all_bench_repo
  $PY -m trtrepo build examples/gelu_block/model.yaml --target torch --out "$repo" || return 1
  grep -q KIND_GPU "$repo/gelu_block/config.pbtxt" || { echo "no KIND_GPU instance group"; return 1; }
  $PY -m trtrepo bench examples/gelu_block/model.yaml --repository "$repo" --concurrency 1,4,16 --requests 400 \
    --report "$R/bench/bench.json" --plot "$R/bench"
}

for p in "${phases[@]}"; do
  mkdir -p "$R/$p"
  case $p in
    ops)     run_phase ops env OUT="$R/ops" SANITIZERS=memcheck bash scripts/gpu_ops_check.sh ;;
    tests)   run_phase tests $PY -m pytest -q -rs -p no:cacheprovider tests/ops/test_ops_cuda.py \
               tests/serve/test_malformed_output.py ;;
    serve)   run_phase serve env OUT="$R/serve" bash scripts/gpu_serve_check.sh ;;
    bench)   export -f bench_phase; export R PY; run_phase bench bash -c bench_phase ;;
    trt)     run_phase trt env OUT="$R/trt" bash scripts/gpu_trt_lane.sh ;;
    kernels) run_phase kernels $PY scripts/bench_kernels.py --out "$R/kernels" ;;
    trtrtx)  run_phase trtrtx $PY scripts/bench_trt_rtx.py --out "$R/trtrtx" ;;
    *) echo "unknown phase $p"; exit 2 ;;
  esac
done
cp "$R/summary.txt" "$OUT/summary.txt"
tar czf "$OUT/results.tar.gz" -C "$R" .
echo "--- summary"; cat "$R/summary.txt"
! grep -qv " exit 0 " "$R/summary.txt"
