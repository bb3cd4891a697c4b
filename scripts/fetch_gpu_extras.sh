#!/usr/bin/env bash
# On the CPU machine, in the project root: download the client-side wheels the GPU image lacks (Python 3.12) into
# .gpuextra/a, /b, /c (ignored by git; parts that each fit one device call next to a .devwheels stage, 64 MiB per
# call): a with .devwheels/1, b with .devwheels/2, c (cuda-bindings, only for CUDA shared memory) in a call of its
# own. On the GPU machine `bash scripts/gpu_stage_extras.sh copy .gpuextra/X` per call, then
# `bash scripts/gpu_stage_extras.sh install` installs only what the image does not have.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
grep -qx "/.gpuextra/" .git/info/exclude 2>/dev/null || echo "/.gpuextra/" >> .git/info/exclude
rm -rf .gpuextra; mkdir -p .gpuextra/a .gpuextra/b .gpuextra/c
P=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_35_x86_64
   --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q "${P[@]}" -d .gpuextra/a click geventhttpclient gevent greenlet zope.event \
  zope.interface brotli certifi urllib3 pyyaml "protobuf>=6.30,<7" pytest pluggy iniconfig pygments packaging grpcio
python3 -m pip download -q "${P[@]}" -d .gpuextra/b cuda-pathfinder
python3 -m pip download -q "${P[@]}" -d .gpuextra/c cuda-bindings==13.0.3
# perf_analyzer's wheel needs glibc 2.38 (the GPU machine has it; pip finds none without the 2_38 tag)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_38_x86_64 -d .gpuextra/b perf-analyzer==2.60.0
du -sh .gpuextra/*
