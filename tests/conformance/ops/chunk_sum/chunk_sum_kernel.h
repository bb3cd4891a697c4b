// chunk_sum: out[r, j] = sum of x[r, j*k .. min((j+1)*k, cols)) in fp32, rounded once (test op of trtrepo.conformance).
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
// Launches trtrepo_conf_chunk_sum_<dtype>(const T* x, int32_t rows, int32_t cols, int32_t k, T* out) with op.yaml's
// launch rule. cudaErrorInvalidValue when a size does not fit int32, k < 1 or the dtype is unknown.
cudaError_t trtrepo_conf_chunk_sum_launch(const void* x, void* out, int64_t rows, int64_t cols, int64_t k,
                                          TrtrepoDType dtype, cudaStream_t stream);
#endif

void trtrepo_conf_chunk_sum_cpu(const float* x, float* out, int64_t rows, int64_t cols, int64_t k);
