#!/usr/bin/env bash
# The whole GPU proof, on the GPU machine (device tool), from the repository root:
#   bash scripts/gpu_all.sh [phase ...]   phases: ops tests serve bench trt kernels engines soak (default: all, in order)
# Before it: TensorRT-RTX, tritonserver and tritonclient staged into /tmp/devsite (/work/shared/device/README.md,
# three stage.sh calls) and the missing client wheels installed (scripts/gpu_stage_extras.sh install). The environment
# comes from scripts/lanes/env.sh (sourced here once; every phase inherits it).
#   ops      trtrepo ops check --device cuda --sanitize: CUDA kernels vs decompositions, memcheck  (gpu_ops_check.sh)
#   tests    pytest's gpu tier (tests/ops/test_ops_cuda.py) and the numpy-2 malformed-output tests (needs pytest)
#   serve    torch target with KIND_GPU instances served by tritonserver; trtrepo check over HTTP and gRPC, then
#            with --shared-memory system and cuda
#   bench    trtrepo bench (served vs eager) of gelu_block and mlp_block (torch target, KIND_GPU); gelu_block again
#            over gRPC, and over HTTP with --shared-memory system and cuda; the per-request breakdown table
#   trt      TensorRT target through torch-tensorrt-rtx: plans vs eager across the profile   (lanes/trt_lane.sh)
#   kernels  kernel bandwidth vs device copy (trtrepo bench kernels)
#   engines  trtrepo bench engines examples/mlp_block: eager, torch.compile, plans per lowering/profile, hybrid
#   soak     trtrepo bench soak --faults of gelu_block on KIND_GPU (server killed mid-run, malformed requests)
# One device call runs at most 10 minutes: run the phases in two calls when all are wanted, e.g.
#   bash scripts/gpu_all.sh ops tests serve bench trt kernels     then     bash scripts/gpu_all.sh engines soak
# Results: $OUT/summary.txt and $OUT/results.tar.gz (every phase's files; the device tool returns at most 8 files).
# Knobs: PHASE_TIMEOUT (s, default 420), ENGINES_ARGS (extra arguments for the engines phase).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lanes/env.sh"
cd "$REPO"
OUT=${OUT:-$REPO/out/gpu_all}
R=/tmp/gpu_all_results
rm -rf "$R"; mkdir -p "$R" "$OUT"
PHASE_TIMEOUT=${PHASE_TIMEOUT:-420}
phases=("$@"); [ ${#phases[@]} -gt 0 ] || phases=(ops tests serve bench trt kernels engines soak)

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

bench_phase() {  # served vs eager, torch target with KIND_GPU instances
  local status=0 example repo
  for example in gelu_block mlp_block; do
    repo=/tmp/gpu_all_bench_$example
    $PY -m trtrepo build "examples/$example/model.yaml" --target torch --out "$repo" || return 1
    grep -q KIND_GPU "$repo/$example/config.pbtxt" || { echo "$example: no KIND_GPU instance group"; return 1; }
  done
  $PY -m trtrepo bench examples/gelu_block/model.yaml --repository /tmp/gpu_all_bench_gelu_block \
    --concurrency 1,4,16 --requests 400 --report "$R/bench/bench.json" --plot "$R/bench" || status=1
  $PY -m trtrepo bench examples/mlp_block/model.yaml --repository /tmp/gpu_all_bench_mlp_block \
    --batch-sizes 1,8 --concurrency 1,16 --requests 200 --report "$R/bench/bench_mlp_block.json" || status=1
  # Issue 12's served path: the same gelu_block sweep through system and CUDA shared memory (perf_analyzer's
  # --shared-memory, or the own loop's regions), each with its per-request breakdown table (client total = queue +
  # compute input/infer/output + rest). CUDA needs cuda-python (tritonclient[cuda]); without it: exit 3, said so.
  local shm proto variant
  for variant in grpc:none http:system http:cuda; do
    proto=${variant%%:*}; shm=${variant#*:}
    $PY -m trtrepo bench examples/gelu_block/model.yaml --repository /tmp/gpu_all_bench_gelu_block \
      --batch-sizes 1,8 --concurrency 1,16 --requests 400 --shared-memory "$shm" --protocol "$proto" \
      --report "$R/bench/bench_${proto}_shm_$shm.json" > "$R/bench/bench_${proto}_shm_$shm.txt" 2>&1 || status=1
    echo "--- bench --protocol $proto --shared-memory $shm"
    sed -n '/^per request/,$p' "$R/bench/bench_${proto}_shm_$shm.txt"
  done
  $PY - "$R/bench" <<'PY'  # every breakdown of the phase in one table (the none rows come from bench.json)
import json
import sys
from pathlib import Path

from trtrepo.bench.breakdown import breakdown_table
from trtrepo.bench.report import BenchReport

rows = []
for name in ("bench.json", "bench_grpc_shm_none.json", "bench_http_shm_system.json", "bench_http_shm_cuda.json"):
    path = Path(sys.argv[1]) / name
    if path.is_file():
        rows += BenchReport.from_dict(json.loads(path.read_text())).rows
print("=== breakdown (mean ms per request)")
print(breakdown_table(rows))
PY
  ls /dev/shm | grep '^trtrepo-shm-' && { echo "FAIL: trtrepo shared memory segments left in /dev/shm"; status=1; }
  return $status
}

engines_phase() {  # issue 12's engine benchmark; fails (exit 3) if the plan or the lean hybrid cannot run here
  # shellcheck disable=SC2086  # ENGINES_ARGS is a list of words
  $PY -m trtrepo bench engines examples/mlp_block/model.yaml --native model:build_native --out "$R/engines" \
    --require eager,plan-decompose-dynamic,plan-native-dynamic,hybrid-lean --warmup-seconds 3 ${ENGINES_ARGS:-}
}

soak_phase() {  # the fault soak on the GPU-served model (gelu_block, the bench phase's build or a new one)
  local repo=/tmp/gpu_all_bench_gelu_block
  [ -d "$repo/gelu_block" ] || $PY -m trtrepo build examples/gelu_block/model.yaml --target torch --out "$repo" \
    || return 1
  $PY -m trtrepo bench soak examples/gelu_block/model.yaml --repository "$repo" --protocol grpc --requests 2000 \
    --concurrency 16 --faults --restarts 1 --report "$R/soak/soak.json" --markdown "$R/soak/soak.md"
}

for p in "${phases[@]}"; do
  mkdir -p "$R/$p"
  case $p in
    ops)     run_phase ops env OUT="$R/ops" bash scripts/gpu_ops_check.sh ;;
    tests)   run_phase tests $PY -m pytest -q -rs -p no:cacheprovider tests/ops/test_ops_cuda.py \
               tests/serve/test_malformed_output.py ;;
    serve)   run_phase serve env OUT="$R/serve" bash scripts/gpu_serve_check.sh ;;
    bench)   export -f bench_phase; export R; run_phase bench bash -c bench_phase ;;
    trt)     run_phase trt env OUT="$R/trt" bash scripts/lanes/trt_lane.sh ;;
    kernels) run_phase kernels $PY -m trtrepo bench kernels plugin_src --out "$R/kernels" \
               --goal trtrepo::bias_gelu=0.85 --goal trtrepo::fused_add_rms_norm=0.75 ;;
    engines) export -f engines_phase; export R; run_phase engines bash -c engines_phase ;;
    soak)    export -f soak_phase; export R; run_phase soak bash -c soak_phase ;;
    *) echo "unknown phase $p"; exit 2 ;;
  esac
done
cp "$R/summary.txt" "$OUT/summary.txt"
tar czf "$OUT/results.tar.gz" -C "$R" .
echo "--- summary"; cat "$R/summary.txt"
! grep -qv " exit 0 " "$R/summary.txt"
