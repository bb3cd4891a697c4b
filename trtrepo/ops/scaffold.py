"""``trtrepo ops new NS::NAME``: a minimal elementwise op folder that builds, passes ``trtrepo ops check`` and serves
as written — op.yaml, a plain CUDA kernel, the aten decomposition and a README (``--cpu-reference`` adds a C++ CPU
reference) — with comments where a user changes things. trtrepo generates the torch binding and the TensorRT plugin
from op.yaml at build time (trtrepo/ops/generated.py; ``trtrepo ops generate`` shows them).

The op is ``NAME(Tensor x, float alpha=1.0) -> Tensor``, ``out = alpha * x``: small enough to read at once, with one
attribute so every path a real op needs (a float attribute as a kernel scalar and a plugin field) is there.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from trtrepo.errors import SpecError

_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)")

OP_YAML = """\
# $ns::$op — out = alpha * x, elementwise. Written by `trtrepo ops new`; the op.yaml reference is plugin_src/README.md.
# trtrepo generates the torch binding and the TensorRT plugin from this file (`trtrepo ops generate $ns::$op`).
name: $ns::$op
schema: "$op(Tensor x, float alpha=1.0) -> Tensor"
inputs:
  - {name: x, shape: [..., D]}     # shape pattern: checked on every call, and `ops check` makes test shapes from it
attributes:
  - {name: alpha, type: float, default: 1.0}
outputs:
  - {name: out, like: x}           # or a rule: {name: out, shape: "x[:-1] + [2]", dtype: x}
dtypes: [fp32, fp16, bf16]
plugin: {name: $Plugin, version: "1"}   # the TensorRT creator; its namespace is the op's ($ns)
kernel:                            # how the generated binding, the generated plugin and AOT plugins launch the kernel
  source: ${op}_kernel.cu
  entries: {fp32: ${ns}_${op}_f32, fp16: ${ns}_${op}_f16, bf16: ${ns}_${op}_bf16}
  scalars:                         # int32 entry arguments, between the input and the output pointers
    - {name: n, value: "rows * cols"}
    - {name: alpha_bits, value: "float_bits(alpha)"}
  block: 256
  grid: "ceil_div(rows * cols, block)"   # grid-stride loop: any grid >= 1 is correct
${cpu_line}decomposition: ${op}_decomp:$op    # in aten ops: the decompose lowering, ops check's reference${cpu_note}
"""

KERNEL_CU = """\
// $ns::$op CUDA kernels, plain CUDA (no torch, no TensorRT): the generated torch binding and TensorRT plugin launch
// these entries with op.yaml's launch rule, and TensorRT AOT plugins embed their PTX. Entries take TensorRT's AOT
// order: input pointers, then op.yaml's kernel.scalars (int32, in order), then output pointers.
#include <cstdint>

#include "trtrepo_cuda_common.cuh"

namespace {

// The op's math, in fp32. Change this (and the decomposition${cpu_and} with it).
__device__ __forceinline__ float op_value(float x, float alpha) { return alpha * x; }

template <typename T>
__device__ __forceinline__ void body(const T* __restrict__ x, T* __restrict__ out, int32_t n, float alpha) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = trtrepo::from_float<T>(op_value(trtrepo::to_float(x[i]), alpha));
  }
}

}  // namespace

extern "C" __global__ void ${ns}_${op}_f32(const float* x, int32_t n, int32_t alpha_bits, float* out) {
  body<float>(x, out, n, __int_as_float(alpha_bits));
}
extern "C" __global__ void ${ns}_${op}_f16(const __half* x, int32_t n, int32_t alpha_bits, __half* out) {
  body<__half>(x, out, n, __int_as_float(alpha_bits));
}
extern "C" __global__ void ${ns}_${op}_bf16(const __nv_bfloat16* x, int32_t n, int32_t alpha_bits,
                                            __nv_bfloat16* out) {
  body<__nv_bfloat16>(x, out, n, __int_as_float(alpha_bits));
}
"""

CPU_CPP = """\
// CPU reference of $ns::$op (op.yaml cpu:), plain C++ in fp32 with the kernel entries' arguments: input x [n];
// scalars n, alpha_bits; output out [n]. The generated binding upcasts fp16/bf16 inputs and rounds the result once.
#include <cstdint>
#include <cstring>

void ${ns}_${op}_cpu(const float* x, int32_t n, int32_t alpha_bits, float* out) {
  float alpha = 0.0f;
  std::memcpy(&alpha, &alpha_bits, sizeof(alpha));
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}
"""

DECOMP_PY = '''\
"""$ns::$op in aten ops: the ``decompose`` lowering and the reference ``trtrepo ops check`` compares the kernels
with."""

from __future__ import annotations

import torch


def $op(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """alpha * x in fp32, rounded once to x's dtype (as the kernels do)."""
    return (alpha * x.float()).to(x.dtype)
'''

README = """\
# $ns::$op

`out = alpha * x`, elementwise; fp32, fp16, bf16. Written by `trtrepo ops new $ns::$op`.

| file | what it is |
| --- | --- |
| `op.yaml` | the op: schema, input shape pattern, output rule, dtypes, plugin creator, kernel launch rule |
| `${op}_kernel.cu` | plain CUDA kernels: `extern "C"` entries per dtype, in TensorRT's AOT argument order |
${cpu_row}| `${op}_decomp.py` | the op in aten ops (decompose lowering, ops check's reference${cpu_serves}) |

trtrepo generates the torch binding (schema, CUDA/CPU/Meta impls, input checks from the shape pattern) and the
TensorRT IPluginV3 plugin (fields, output rules, enqueue) from op.yaml when it builds; `trtrepo ops generate
$ns::$op --out DIR` writes them out to read. A `${op}_torch.cpp` or `${op}_plugin.cpp` in this folder replaces the
generated one.

To make it your op: change `op_value` in the kernel and the decomposition${cpu_and} together (and the schema,
inputs and kernel scalars in op.yaml with them), then `trtrepo ops check <this root>` until it passes.
"""

def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.split("_") if part)


def new_op(name: str, root: Path, cpu_reference: bool = False) -> Path:
    """Write the op folder ``<root>/<op>`` for ``NS::NAME``: op.yaml, the kernel, the decomposition, a README, and
    with ``cpu_reference`` a C++ CPU reference (else the decomposition serves the op on CPU).

    Raises:
        SpecError: ``name`` is not ``namespace::op`` (C identifiers), or the folder exists already.
    """
    m = _NAME.fullmatch(name)
    if not m:
        raise SpecError(f"ops new: {name!r} must be 'namespace::op' (letters, digits and _, e.g. mylab::scale)")
    ns, op = m.groups()
    folder = Path(root) / op
    if folder.exists():
        raise SpecError(f"ops new: {folder} exists already", hint="choose another name or --dir; nothing was written")
    values = {
        "ns": ns, "op": op, "Plugin": _camel(ns) + _camel(op),
        "cpu_line": f"cpu: {ns}_{op}_cpu                  # the C++ CPU reference ({op}_cpu.cpp)\n"
                    if cpu_reference else "",
        "cpu_note": "" if cpu_reference else "; it also serves the op on CPU",
        "cpu_and": " and the CPU reference" if cpu_reference else "",
        "cpu_row": f"| `{op}_cpu.cpp` | the CPU reference (plain C++, fp32) |\n" if cpu_reference else "",
        "cpu_serves": "" if cpu_reference else ", the CPU kernel",
    }
    files = {"op.yaml": OP_YAML, f"{op}_kernel.cu": KERNEL_CU, f"{op}_decomp.py": DECOMP_PY, "README.md": README}
    if cpu_reference:
        files[f"{op}_cpu.cpp"] = CPU_CPP
    folder.mkdir(parents=True)
    for file_name, template in files.items():
        (folder / file_name).write_text(Template(template).substitute(values))
    return folder
