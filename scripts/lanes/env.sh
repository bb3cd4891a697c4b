# The one environment preamble of the GPU-machine lanes: source it, do not run it.
#   source scripts/lanes/env.sh        (from anywhere; gpu_all.sh sources it once and every lane inherits it)
# Sets: REPO (the checkout), PY (python), PYTHONPATH (the checkout, then /tmp/devsite where the staged wheels live:
# TensorRT-RTX, torch-tensorrt-rtx, tritonserver, tritonclient), PATH (+ /tmp/devsite/bin), LD_LIBRARY_PATH
# (TensorRT-RTX and tritonserver libraries), TRITONSERVER_BIN and TRTREPO_TRITONSERVER (the staged tritonserver),
# TRTREPO_CACHE_DIR (one op/plan cache for every lane), PYTHONUNBUFFERED. Values already set are kept.
# Staging: /work/shared/device/README.md (three stage.sh calls), then scripts/gpu_stage_extras.sh install.
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PY=${PYTHON:-${PY:-python3}}
_trtrepo_prepend() {  # var dir: put dir first in the colon list var, once
  local var=$1 dir=$2 cur
  cur=${!var:-}
  case ":$cur:" in *":$dir:"*) ;; *) export "$var=$dir${cur:+:$cur}";; esac
}
_trtrepo_append() {  # var dir: put dir last in the colon list var, once
  local var=$1 dir=$2 cur
  cur=${!var:-}
  case ":$cur:" in *":$dir:"*) ;; *) export "$var=${cur:+$cur:}$dir";; esac
}
if [ -d /tmp/devsite ]; then
  _trtrepo_append PYTHONPATH /tmp/devsite
  [ -d /tmp/devsite/bin ] && _trtrepo_append PATH /tmp/devsite/bin
  [ -d /tmp/devsite/nvidia_pytriton.libs ] && _trtrepo_prepend LD_LIBRARY_PATH /tmp/devsite/nvidia_pytriton.libs
  [ -d /tmp/devsite/tensorrt_rtx_libs ] && _trtrepo_prepend LD_LIBRARY_PATH /tmp/devsite/tensorrt_rtx_libs
  [ -x /tmp/devsite/pytriton/tritonserver/bin/tritonserver ] && \
    export TRITONSERVER_BIN=${TRITONSERVER_BIN:-/tmp/devsite/pytriton/tritonserver/bin/tritonserver}
fi
_trtrepo_prepend PYTHONPATH "$REPO"
[ -n "${TRITONSERVER_BIN:-}" ] && export TRTREPO_TRITONSERVER=${TRTREPO_TRITONSERVER:-$TRITONSERVER_BIN}
export TRTREPO_CACHE_DIR=${TRTREPO_CACHE_DIR:-/tmp/trtrepo_gpu_cache}
export PYTHONUNBUFFERED=1
export REPO PY
unset -f _trtrepo_prepend _trtrepo_append
