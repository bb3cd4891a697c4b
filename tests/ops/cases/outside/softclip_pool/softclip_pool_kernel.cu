// mylab::softclip_pool CUDA kernels: one thread per row (a user's first kernel, not a fast one).
#include "softclip_pool_kernel.h"

#include <limits.h>
#include <string.h>

#include "trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 128;  // op.yaml kernel.block

template <typename T>
__device__ void body(const T* x, int32_t rows, int32_t cols, float alpha, float beta, T* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float sum = 0.0f;
  float best = -INFINITY;
  for (int32_t c = 0; c < cols; ++c) {
    const float y = alpha * tanhf(trtrepo::to_float(x[r * cols + c]) / alpha) + beta;
    sum += y;
    best = fmaxf(best, y);
  }
  out[2 * r] = trtrepo::from_float<T>(sum / static_cast<float>(cols));
  out[2 * r + 1] = trtrepo::from_float<T>(best);
}

}  // namespace

extern "C" __global__ void mylab_softclip_pool_f32(const float* x, int32_t rows, int32_t cols, int32_t alpha_bits,
                                                   int32_t beta_bits, float* out) {
  body<float>(x, rows, cols, __int_as_float(alpha_bits), __int_as_float(beta_bits), out);
}
extern "C" __global__ void mylab_softclip_pool_f16(const __half* x, int32_t rows, int32_t cols, int32_t alpha_bits,
                                                   int32_t beta_bits, __half* out) {
  body<__half>(x, rows, cols, __int_as_float(alpha_bits), __int_as_float(beta_bits), out);
}
extern "C" __global__ void mylab_softclip_pool_bf16(const __nv_bfloat16* x, int32_t rows, int32_t cols,
                                                    int32_t alpha_bits, int32_t beta_bits, __nv_bfloat16* out) {
  body<__nv_bfloat16>(x, rows, cols, __int_as_float(alpha_bits), __int_as_float(beta_bits), out);
}

cudaError_t mylab_softclip_pool_launch(const void* x, void* out, int64_t rows, int64_t cols, float alpha, float beta,
                                       TrtrepoDType dtype, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || rows * cols > INT_MAX) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  int32_t a = 0, b = 0;
  memcpy(&a, &alpha, sizeof(a));
  memcpy(&b, &beta, sizeof(b));
  const auto r = static_cast<int32_t>(rows);
  const auto c = static_cast<int32_t>(cols);
  const auto grid = static_cast<unsigned>((rows + kBlock - 1) / kBlock);  // op.yaml kernel.grid
  switch (dtype) {
    case kTrtrepoF32:
      mylab_softclip_pool_f32<<<grid, kBlock, 0, stream>>>(static_cast<const float*>(x), r, c, a, b,
                                                           static_cast<float*>(out));
      break;
    case kTrtrepoF16:
      mylab_softclip_pool_f16<<<grid, kBlock, 0, stream>>>(static_cast<const __half*>(x), r, c, a, b,
                                                           static_cast<__half*>(out));
      break;
    case kTrtrepoBF16:
      mylab_softclip_pool_bf16<<<grid, kBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), r, c, a, b,
                                                            static_cast<__nv_bfloat16*>(out));
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}
