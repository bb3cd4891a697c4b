"""``trtrepo ops new NS::NAME``: a complete elementwise op folder that builds and passes ``trtrepo ops check`` as
written — op.yaml, a plain CUDA kernel with its CPU reference, the torch binding, the TensorRT plugin, the aten
decomposition and a README — with comments where a user changes things.

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
name: $ns::$op
schema: "$op(Tensor x, float alpha=1.0) -> Tensor"   # must equal the binding's m.def (${op}_torch.cpp)
inputs:
  - {name: x, shape: [..., D]}     # shape pattern: `trtrepo ops check` makes its test shapes from it
attributes:
  - {name: alpha, type: float, default: 1.0}
outputs:
  - {name: out, like: x}           # or a rule: {name: out, shape: "x[:-1] + [2]", dtype: x}
dtypes: [fp32, fp16, bf16]
plugin: {name: $Plugin, version: "1"}   # the TensorRT creator; its namespace is the op's ($ns)
kernel:                            # how TensorRT AOT plugins (and the launcher) launch the kernel
  source: ${op}_kernel.cu
  entries: {fp32: ${ns}_${op}_f32, fp16: ${ns}_${op}_f16, bf16: ${ns}_${op}_bf16}
  scalars:                         # int32 entry arguments, between the input and the output pointers
    - {name: n, value: "rows * cols"}
    - {name: alpha_bits, value: "float_bits(alpha)"}
  block: 256
  grid: "ceil_div(rows * cols, block)"   # grid-stride loop: any grid >= 1 is correct
decomposition: ${op}_decomp:$op    # the op in aten ops: the decompose lowering and the reference of ops check
"""

KERNEL_H = """\
// $ns::$op: out = alpha * x, computed in fp32 and rounded once. Plain C/C++ API (no torch, no TensorRT): the torch
// binding and the TensorRT plugin both call these.
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
// Launches ${ns}_${op}_{f32,f16,bf16} on `stream` with op.yaml's launch rule. cudaErrorInvalidValue when n does not
// fit int32 (the AOT entries take int32 sizes) or the dtype is unknown.
cudaError_t ${ns}_${op}_launch(const void* x, void* out, int64_t n, float alpha, TrtrepoDType dtype,
                               cudaStream_t stream);
#endif

// CPU reference in fp32 (the caller upcasts fp16/bf16 and rounds the result once, as the kernels do).
void ${ns}_${op}_cpu(const float* x, float* out, int64_t n, float alpha);
"""

KERNEL_CU = """\
// $ns::$op CUDA kernels: one source for the torch op library (through ${ns}_${op}_launch) and for TensorRT AOT plugins
// (the extern "C" entries, compiled to PTX). Entries take TensorRT's AOT order: input pointers, then op.yaml's
// kernel.scalars (int32, in order), then output pointers.
#include "${op}_kernel.h"

#include <limits.h>
#include <string.h>

#include "trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 256;  // op.yaml kernel.block

// The op's math, in fp32. Change this (and the decomposition and the CPU reference with it).
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

cudaError_t ${ns}_${op}_launch(const void* x, void* out, int64_t n, float alpha, TrtrepoDType dtype,
                               cudaStream_t stream) {
  if (n < 0 || n > INT_MAX) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  const auto count = static_cast<int32_t>(n);
  int32_t bits = 0;
  memcpy(&bits, &alpha, sizeof(bits));  // float_bits(alpha): how the AOT entries receive it
  const auto grid = static_cast<unsigned>((n + kBlock - 1) / kBlock);  // op.yaml kernel.grid
  switch (dtype) {
    case kTrtrepoF32:
      ${ns}_${op}_f32<<<grid, kBlock, 0, stream>>>(static_cast<const float*>(x), count, bits, static_cast<float*>(out));
      break;
    case kTrtrepoF16:
      ${ns}_${op}_f16<<<grid, kBlock, 0, stream>>>(static_cast<const __half*>(x), count, bits,
                                                   static_cast<__half*>(out));
      break;
    case kTrtrepoBF16:
      ${ns}_${op}_bf16<<<grid, kBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), count, bits,
                                                    static_cast<__nv_bfloat16*>(out));
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}
"""

CPU_CPP = """\
// CPU reference of $ns::$op (plain C++, fp32): the torch CPU kernel and what ops check compares with.
#include "${op}_kernel.h"

void ${ns}_${op}_cpu(const float* x, float* out, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
}
"""

TORCH_CPP = """\
// torch binding of $ns::$op: schema, CPU impl (the C++ reference) and, unless TRTREPO_CPU_ONLY, the CUDA impl (the
// launcher on torch's current stream). The schema must equal op.yaml's (`trtrepo ops check` compares them).
#include <ATen/ATen.h>
#include <torch/library.h>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "${op}_kernel.h"
#include "trtrepo_torch_common.h"

namespace {

at::Tensor ${op}_cpu(const at::Tensor& x, double alpha) {
  trtrepo_torch::check_dtype(x, "$ns::$op");
  const auto xf = x.to(at::kFloat).contiguous();
  auto out = at::empty_like(xf);
  ${ns}_${op}_cpu(xf.data_ptr<float>(), out.data_ptr<float>(), xf.numel(), static_cast<float>(alpha));
  return out.to(x.scalar_type());
}

#ifndef TRTREPO_CPU_ONLY
at::Tensor ${op}_cuda(const at::Tensor& x, double alpha) {
  trtrepo_torch::check_dtype(x, "$ns::$op");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  auto out = at::empty_like(xc);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err = ${ns}_${op}_launch(xc.data_ptr(), out.data_ptr(), xc.numel(), static_cast<float>(alpha),
                                             trtrepo_torch::dtype_of(x), stream);
  TORCH_CHECK(err == cudaSuccess, "$ns::$op: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT($ns, m) { m.def("$op(Tensor x, float alpha=1.0) -> Tensor"); }

TORCH_LIBRARY_IMPL($ns, CPU, m) { m.impl("$op", &${op}_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL($ns, CUDA, m) { m.impl("$op", &${op}_cuda); }
#endif
"""

PLUGIN_H = """\
// TensorRT IPluginV3 for $ns::$op (creator name, version and namespace: op.yaml plugin). One field, alpha (FLOAT32).
#pragma once

#include <NvInferRuntime.h>

#include <vector>

#include "op_rules.h"  // generated by trtrepo from op.yaml
#include "trt_plugin_base.h"

namespace $ns {
namespace trt {

class ${Camel}Plugin : public trtrepo::trt::PluginBase<${Camel}Plugin, trtrepo_this_op::Rules> {
 public:
  static constexpr float kDefaultAlpha = 1.0F;  // op.yaml attributes.alpha.default

  explicit ${Camel}Plugin(float alpha) noexcept : mAlpha(alpha) {}

  static void fieldNames(std::vector<nvinfer1::PluginField>& fields);
  static ${Camel}Plugin* create(nvinfer1::PluginFieldCollection const* fc) noexcept;

  void collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept;
  int32_t launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
                 cudaStream_t stream) noexcept;

 private:
  float mAlpha;
};

}  // namespace trt
}  // namespace $ns
"""

PLUGIN_CPP = """\
// $ns::$op as a TensorRT plugin: the same kernel launcher as the torch op (${op}_kernel.h).
#include "${op}_plugin.h"

#include <cmath>
#include <new>

#include "${op}_kernel.h"

namespace $ns {
namespace trt {

void ${Camel}Plugin::fieldNames(std::vector<nvinfer1::PluginField>& fields) {
  fields.clear();
  fields.emplace_back("alpha", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1);
}

${Camel}Plugin* ${Camel}Plugin::create(nvinfer1::PluginFieldCollection const* fc) noexcept {
  float alpha = kDefaultAlpha;
  if (!trtrepo::trt::readFloatField(fc, "alpha", alpha) || !std::isfinite(alpha)) {
    trtrepo::trt::logError("$Plugin: field alpha must be one finite FLOAT32");
    return nullptr;
  }
  return new (std::nothrow) ${Camel}Plugin(alpha);
}

void ${Camel}Plugin::collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept {
  try {
    fields.emplace_back("alpha", &mAlpha, nvinfer1::PluginFieldType::kFLOAT32, 1);
  } catch (...) {
    trtrepo::trt::logError("$Plugin: cannot serialize fields (out of memory)");
  }
}

int32_t ${Camel}Plugin::launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                               void* const* outputs, cudaStream_t stream) noexcept {
  TrtrepoDType dtype{};
  int64_t rows = 0;
  int64_t cols = 0;
  if (!trtrepo::trt::toTrtrepoDType(inputDesc[0].type, dtype) ||
      !trtrepo::trt::rowsCols(inputDesc[0].dims, rows, cols)) {
    trtrepo::trt::logError("$Plugin: unsupported dtype or shape of x");
    return -1;
  }
  cudaError_t const status = ${ns}_${op}_launch(inputs[0], outputs[0], rows * cols, mAlpha, dtype, stream);
  if (status != cudaSuccess) {
    trtrepo::trt::logError(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

}  // namespace trt
}  // namespace $ns

TRTREPO_REGISTER_PLUGIN($ns::trt::${Camel}Plugin)
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
| `${op}_kernel.cu` / `.h` | plain CUDA kernels (`extern "C"` entries per dtype, AOT argument order) + their launcher |
| `${op}_cpu.cpp` | the CPU reference (plain C++) |
| `${op}_torch.cpp` | the torch binding (`TORCH_LIBRARY_FRAGMENT($ns, m)`), CPU and CUDA impls |
| `${op}_plugin.h` / `.cpp` | the TensorRT IPluginV3 around the same launcher |
| `${op}_decomp.py` | the op in aten ops (decompose lowering, ops check reference) |

To make it your op: change `op_value` in the kernel, the CPU reference and the decomposition together (and the
schema in op.yaml and the binding together), then `trtrepo ops check <this root>` until it passes.
"""

FILES = {
    "op.yaml": OP_YAML, "{op}_kernel.h": KERNEL_H, "{op}_kernel.cu": KERNEL_CU, "{op}_cpu.cpp": CPU_CPP,
    "{op}_torch.cpp": TORCH_CPP, "{op}_plugin.h": PLUGIN_H, "{op}_plugin.cpp": PLUGIN_CPP,
    "{op}_decomp.py": DECOMP_PY, "README.md": README,
}


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.split("_") if part)


def new_op(name: str, root: Path) -> Path:
    """Write the op folder ``<root>/<op>`` for ``NS::NAME``.

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
    values = {"ns": ns, "op": op, "Camel": _camel(op), "Plugin": _camel(ns) + _camel(op)}
    folder.mkdir(parents=True)
    for pattern, template in FILES.items():
        (folder / pattern.format(op=op)).write_text(Template(template).substitute(values))
    return folder
