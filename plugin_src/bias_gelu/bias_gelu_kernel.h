// bias_gelu: out = gelu_tanh(x + bias), bias broadcast over the last dim, computed in fp32 and rounded once.
// rows = product of all dims of x but the last, cols = last dim; bias has shape [cols]. Plain C/C++ API: the torch
// binding and the TensorRT plugin both call these; no torch or TensorRT types.
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
// Launches trtrepo_bias_gelu_{f32,f16,bf16} on `stream` with the launch rule of op.yaml (kernel.block/grid).
// Those extern "C" entries (the AOT ABI: input pointers, int32 scalars in op.yaml kernel.scalars order, output
// pointers) are trtrepo_bias_gelu_<dtype>(const T* x, const T* bias, int32_t n, int32_t cols, T* out).
// Returns cudaErrorInvalidValue when rows * cols does not fit int32 (the AOT entries take int32 sizes) or dtype is
// unknown; otherwise the launch status.
cudaError_t trtrepo_bias_gelu_launch(const void* x, const void* bias, void* out, int64_t rows, int64_t cols,
                                     TrtrepoDType dtype, cudaStream_t stream);
#endif

// CPU reference in fp32 (callers upcast fp16/bf16 and round the result once, as the kernels do).
void trtrepo_bias_gelu_cpu(const float* x, const float* bias, float* out, int64_t rows, int64_t cols);
