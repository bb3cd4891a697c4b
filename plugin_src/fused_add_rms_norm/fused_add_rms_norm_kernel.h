// fused_add_rms_norm: residual_out = x + residual (rounded to the dtype);
//                     out = residual_out * rsqrt(mean(residual_out^2 over the last dim) + eps) * weight.
// rows = product of all dims of x but the last, cols = last dim; weight has shape [cols]. Sums and the norm are in
// fp32; each output is rounded once. Plain C/C++ API shared by the torch binding and the TensorRT plugin.
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
// Launches trtrepo_fused_add_rms_norm_{f32,f16,bf16} on `stream` with the launch rule of op.yaml (kernel.block/grid).
// Those extern "C" entries (the AOT ABI: input pointers, int32 scalars in op.yaml kernel.scalars order, output
// pointers) are trtrepo_fused_add_rms_norm_<dtype>(const T* x, const T* residual, const T* weight, int32_t rows,
// int32_t cols, int32_t eps_bits, T* out, T* residual_out); eps_bits is the float32 bit pattern of eps.
// Returns cudaErrorInvalidValue when rows or cols do not fit int32 or dtype is unknown; otherwise the launch status.
cudaError_t trtrepo_fused_add_rms_norm_launch(const void* x, const void* residual, const void* weight, void* out,
                                              void* residual_out, int64_t rows, int64_t cols, float eps,
                                              TrtrepoDType dtype, cudaStream_t stream);
#endif

// CPU reference in fp32. residual may be NULL (read as zeros): fp16/bf16 callers pass x = the rounded x + residual.
void trtrepo_fused_add_rms_norm_cpu(const float* x, const float* residual, const float* weight, float* out,
                                    float* residual_out, int64_t rows, int64_t cols, float eps);
