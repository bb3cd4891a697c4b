#!/usr/bin/env bash
# GPU machine only: install the client-side wheels the GPU image lacks (carried under .gpuextra/, see
# scripts/gpu_all.sh) into /tmp/devsite, skipping every package the image already has. The image's own torch,
# numpy and friends must win, so nothing that imports there is replaced.
#   bash scripts/gpu_stage_extras.sh copy DIR   # while warm: keep DIR's wheels in /tmp/gpuextra for later
#   bash scripts/gpu_stage_extras.sh install    # install what is missing from /tmp/gpuextra into /tmp/devsite
set -euo pipefail
mode=${1:?copy DIR | install}
STORE=/tmp/gpuextra
if [ "$mode" = copy ]; then
  mkdir -p "$STORE"; cp "${2:?DIR}"/*.whl "$STORE"/; ls "$STORE" | wc -l; exit 0
fi
PY=${PYTHON:-python3}
mkdir -p /tmp/devsite
# wheel-name prefix → module that proves it is present
declare -A MOD=([click]=click [geventhttpclient]=geventhttpclient [gevent]=gevent [greenlet]=greenlet
  [zope_event]=zope.event [zope_interface]=zope.interface [brotli]=brotli [certifi]=certifi [urllib3]=urllib3
  [PyYAML]=yaml [pyyaml]=yaml [grpcio]=grpc [protobuf]=google.protobuf
  [cuda_bindings]=cuda.bindings [cuda_pathfinder]=cuda.pathfinder
  [pytest]=pytest [pluggy]=pluggy [iniconfig]=iniconfig [pygments]=pygments [packaging]=packaging)
todo=()
for whl in "$STORE"/*.whl; do
  name=$(basename "$whl"); prefix=${name%%-*}
  if [ "$prefix" = perf_analyzer ]; then
    command -v perf_analyzer >/dev/null || todo+=("$whl"); continue
  fi
  mod=${MOD[$prefix]:-}
  if [ -z "$mod" ]; then echo "unknown wheel $name"; continue; fi
  if [ "$prefix" = protobuf ]; then   # tritonclient.grpc needs protobuf >= 6.30
    $PY -c "import google.protobuf as p, sys; sys.exit(0 if tuple(map(int, p.__version__.split('.')[:2])) >= (6, 30) else 1)" \
      2>/dev/null || todo+=("$whl")
    continue
  fi
  $PY -c "import $mod" 2>/dev/null || todo+=("$whl")
done
if [ ${#todo[@]} -gt 0 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/devsite "${todo[@]}" \
    2>&1 | grep -v "Target directory" || true
fi
printf 'installed: %s\n' "${todo[@]##*/}"
