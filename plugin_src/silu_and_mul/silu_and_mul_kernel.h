// silu_and_mul: out[..., c] = silu(x[..., c]) * x[..., H + c] for c < H, x [..., 2H], out [..., H]; computed in fp32
// and rounded once. rows = product of all dims of x but the last, h = H. Plain C/C++ API: the torch binding and the
// TensorRT plugin both call these; no torch or TensorRT types.
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
// Launches trtrepo_silu_and_mul_{f32,f16,bf16} on `stream` with op.yaml's launch rule. Those extern "C" entries (the
// AOT ABI: input pointers, int32 scalars in op.yaml kernel.scalars order, output pointers) are
// trtrepo_silu_and_mul_<dtype>(const T* x, int32_t rows, int32_t h, T* out). Returns cudaErrorInvalidValue when
// rows * 2h does not fit int32 (the AOT entries take int32 sizes) or dtype is unknown; otherwise the launch status.
cudaError_t trtrepo_silu_and_mul_launch(const void* x, void* out, int64_t rows, int64_t h, TrtrepoDType dtype,
                                        cudaStream_t stream);
#endif

// CPU reference in fp32 (callers upcast fp16/bf16 and round the result once, as the kernels do).
void trtrepo_silu_and_mul_cpu(const float* x, float* out, int64_t rows, int64_t h);
