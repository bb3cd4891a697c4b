// mylab::softclip_pool: y = alpha * tanh(x / alpha) + beta over the last dim; out[r] = (mean(y[r]), max(y[r])).
#pragma once

#include "trtrepo_kernel_api.h"

#ifndef TRTREPO_CPU_ONLY
cudaError_t mylab_softclip_pool_launch(const void* x, void* out, int64_t rows, int64_t cols, float alpha, float beta,
                                       TrtrepoDType dtype, cudaStream_t stream);
#endif

void mylab_softclip_pool_cpu(const float* x, float* out, int64_t rows, int64_t cols, float alpha, float beta);
