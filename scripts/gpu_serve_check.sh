#!/usr/bin/env bash
# GPU serving check: build the gelu_block example with the CUDA op library (torch target), serve it with KIND_GPU
# instances on the bundled tritonserver, run `trtrepo check` over HTTP and gRPC, and record everything under $OUT.
#
# Run on the GPU machine from the repository root, after tritonserver + tritonclient were staged
# (/tmp/devsite on sys.path or installed) and TRITONSERVER_BIN points at the tritonserver binary:
#     OUT=/path/to/out TRITONSERVER_BIN=/path/to/tritonserver bash scripts/gpu_serve_check.sh
# Exit code: 0 when parity passes on both protocols, non-zero otherwise.
set -uo pipefail

OUT="${OUT:?set OUT to a folder for the results}"
source "$(dirname "${BASH_SOURCE[0]}")/lanes/env.sh"  # REPO, PY, PYTHONPATH, TRTREPO_TRITONSERVER, the cache
ROOT="$REPO"
WORK="${WORK:-$(mktemp -d /tmp/trtrepo-gpu-serve.XXXXXX)}"
mkdir -p "$OUT"
cd "$ROOT"
export TRTREPO_CACHE_DIR="$WORK/cache"

{
  echo "date: $(date -Is)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1
  "$PY" - <<'PY'
import numpy, torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None, "numpy", numpy.__version__)
PY
  echo "tritonserver: ${TRTREPO_TRITONSERVER:-<auto>}"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

cat > "$WORK/model.yaml" <<YAML
repository: repo
plugin_sources: [$ROOT/plugin_src]
models:
  - name: gelu_block
    source: examples.gelu_block.model:build
    target: torch
    inputs:
      - {name: x, shape: [-1, 64], min: [1, 64], opt: [8, 64], max: [32, 64]}
    outputs: [y]
    triton:
      max_batch_size: 32
      dynamic_batching: {max_queue_delay_microseconds: 20000}
      instance_group: [{kind: gpu, count: 1}]
    parity:
      samples: 4
      ragged_requests: 8
YAML
cp "$WORK/model.yaml" "$OUT/model.yaml"

status=0
"$PY" -m trtrepo build "$WORK/model.yaml" > "$OUT/build.log" 2>&1 || status=$?
tail -5 "$OUT/build.log"
if [ "$status" -ne 0 ]; then echo "build failed ($status): see $OUT/build.log"; exit "$status"; fi
cp "$WORK/repo/gelu_block/config.pbtxt" "$WORK/repo/trtrepo-manifest.json" "$OUT/" 2>/dev/null
grep -q KIND_GPU "$WORK/repo/gelu_block/config.pbtxt" || echo "WARNING: config.pbtxt has no KIND_GPU instance group"

"$PY" -m trtrepo serve "$WORK/repo" --print-command > "$OUT/serve_command.txt" 2>&1

# The check starts its own tritonserver (free loopback ports) and writes the JSON report.
"$PY" -m trtrepo check "$WORK/model.yaml" --protocol both --report "$OUT/parity-report.json" \
  > "$OUT/check.txt" 2>&1 || status=$?
tail -15 "$OUT/check.txt"
# server logs stay with the run: <cache>/runs/<repository>-<key>/logs/ (the newest 20 per repository)
cp "$TRTREPO_CACHE_DIR"/runs/*/logs/tritonserver-*.log "$OUT/" 2>/dev/null

# Issue 12's served path: a KIND_GPU instance keeps GPU inputs on the GPU (the Python backend's parameter), and the
# same check through system and CUDA shared memory (CUDA needs cuda-python: `pip install 'tritonclient[cuda]'`;
# without it the check exits 3 and says so).
grep -A2 'FORCE_CPU_ONLY_INPUT_TENSORS' "$WORK/repo/gelu_block/config.pbtxt" | grep -q '"no"' \
  || { echo "FAIL: config.pbtxt lacks FORCE_CPU_ONLY_INPUT_TENSORS: no on KIND_GPU"; status=1; }
for shm in system cuda; do
  "$PY" -m trtrepo check "$WORK/model.yaml" --protocol both --shared-memory "$shm" \
    --report "$OUT/parity-report-shm-$shm.json" > "$OUT/check-shm-$shm.txt" 2>&1
  rc=$?
  echo "check --shared-memory $shm: exit $rc"; tail -3 "$OUT/check-shm-$shm.txt"
  [ "$rc" -eq 0 ] || status=1
done
ls /dev/shm | grep '^trtrepo-shm-' && { echo "FAIL: trtrepo shared memory segments left in /dev/shm"; status=1; }

# Issue 15 on KIND_GPU: every custom op served alone (one-op probe models of the served model's target, loading the
# served op library) over HTTP and gRPC, compared with the eager op on the captured calls.
PLOT=(); "$PY" -c "import matplotlib" 2>/dev/null && PLOT=(--plot "$OUT/ops-error.png")
"$PY" -m trtrepo check "$WORK/model.yaml" --ops --protocol both --report "$OUT/ops-report.json" "${PLOT[@]}" \
  > "$OUT/check-ops.txt" 2>&1
rc=$?
echo "check --ops: exit $rc"; tail -12 "$OUT/check-ops.txt"
[ "$rc" -eq 0 ] || status=1

# Diagnosis of the "empty array" symptom: the same model with the NumPy transfer path (expected to fail with
# NumPy 2 in the stub: the Python backend's pybind11 NumPy bridge is built for NumPy 1) versus DLPack (default).
cp -r "$WORK/repo" "$WORK/repo_numpy"
cat >> "$WORK/repo_numpy/gelu_block/config.pbtxt" <<'PB'
parameters { key: "trtrepo_tensor_transfer" value { string_value: "numpy" } }
PB
# the copy's config.pbtxt is edited on purpose: --allow-modified serves it despite the manifest (with a warning)
"$PY" -m trtrepo check "$WORK/model.yaml" --repository "$WORK/repo_numpy" --protocol http --allow-modified \
  --report "$OUT/parity-report-numpy-transfer.json" > "$OUT/check-numpy-transfer.txt" 2>&1
echo "numpy-transfer check exit code: $? (diagnostic only; see check-numpy-transfer.txt)"
tail -4 "$OUT/check-numpy-transfer.txt"

echo "gpu_serve_check: exit $status (0 = parity passed over HTTP and gRPC with KIND_GPU)"
exit "$status"
