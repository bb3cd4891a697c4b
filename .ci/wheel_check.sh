#!/usr/bin/env bash
# A user's install, checked end to end: build trtrepo's wheel, install it (not editable) into a fresh virtual
# environment, copy an example and the project's plugin root OUTSIDE the checkout, and run `trtrepo build` and
# `trtrepo check` there with a fresh cache. Nothing of the checkout is on the path: the example must work from the
# installed package alone (the Dockerfile's build stage does the same).
#   .ci/wheel_check.sh [WORK_DIR]      (default: a new temporary folder, removed afterwards)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
PYTHON="${PYTHON:-python3}"
WORK="${1:-$(mktemp -d -t trtrepo-wheel-XXXXXX)}"
[[ $# -ge 1 ]] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
step() { printf '\n--- wheel check: %s (%ss)\n' "$1" "$SECONDS"; }

step "build the wheel"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$REPO"
wheel=$(ls "$WORK"/dist/trtrepo-*.whl)
unzip -l "$wheel" | grep -q "trtrepo/ops/include/trt_plugin_base.h" || { echo "the wheel lacks the op headers"; exit 1; }

step "fresh venv + install $(basename "$wheel")"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "torch==2.13.0"
"$WORK/venv/bin/python" -m pip install --quiet "$wheel" "nvidia-pytriton==0.7.0" "numpy<2"

step "an example outside the checkout"
mkdir -p "$WORK/project/examples"
cp -r "$REPO/examples/gelu_block" "$WORK/project/examples/"
cp -r "$REPO/plugin_src" "$WORK/project/plugin_src"
cd "$WORK/project"
export TRTREPO_CACHE_DIR="$WORK/cache"
unset PYTHONPATH
"$WORK/venv/bin/python" - <<'PY'
import pathlib, trtrepo
where = pathlib.Path(trtrepo.__file__).resolve()
assert "site-packages" in where.parts, f"trtrepo imported from {where}, not the installed wheel"
print(f"trtrepo {trtrepo.__version__} from {where.parent}")
PY

step "trtrepo build"
"$WORK/venv/bin/trtrepo" build examples/gelu_block/model.yaml --target torch
step "trtrepo check"
"$WORK/venv/bin/trtrepo" check examples/gelu_block/model.yaml --report "$WORK/parity.json"
step "done: the installed wheel built and checked an example outside the checkout"
