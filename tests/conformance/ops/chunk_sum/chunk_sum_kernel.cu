// chunk_sum CUDA kernels (test op of trtrepo.conformance): one thread per output element, grid-stride.
#include "chunk_sum_kernel.h"

#include <limits.h>

#include "trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 128;  // op.yaml kernel.block

template <typename T>
__device__ __forceinline__ void chunk_sum_body(const T* __restrict__ x, int32_t rows, int32_t cols, int32_t k,
                                               T* __restrict__ out) {
  if (rows <= 0 || cols <= 0 || k <= 0) return;
  const int64_t ocols = (static_cast<int64_t>(cols) + k - 1) / k;
  const int64_t total = static_cast<int64_t>(rows) * ocols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / ocols;
    const int64_t start = (i % ocols) * k;
    const int64_t end = start + k < cols ? start + k : cols;
    float s = 0.0f;
    for (int64_t c = start; c < end; ++c) s += trtrepo::to_float(x[r * cols + c]);
    out[i] = trtrepo::from_float<T>(s);
  }
}

}  // namespace

extern "C" __global__ void trtrepo_conf_chunk_sum_f32(const float* x, int32_t rows, int32_t cols, int32_t k,
                                                      float* out) {
  chunk_sum_body<float>(x, rows, cols, k, out);
}
extern "C" __global__ void trtrepo_conf_chunk_sum_f16(const __half* x, int32_t rows, int32_t cols, int32_t k,
                                                      __half* out) {
  chunk_sum_body<__half>(x, rows, cols, k, out);
}
extern "C" __global__ void trtrepo_conf_chunk_sum_bf16(const __nv_bfloat16* x, int32_t rows, int32_t cols, int32_t k,
                                                       __nv_bfloat16* out) {
  chunk_sum_body<__nv_bfloat16>(x, rows, cols, k, out);
}

cudaError_t trtrepo_conf_chunk_sum_launch(const void* x, void* out, int64_t rows, int64_t cols, int64_t k,
                                          TrtrepoDType dtype, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || k < 1 || rows > INT_MAX || cols > INT_MAX || k > INT_MAX) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int64_t work = rows * ((cols + k - 1) / k);
  int64_t grid = (work + kBlock - 1) / kBlock;  // op.yaml kernel.grid
  grid = grid < 65535 ? grid : 65535;
  grid = grid > 1 ? grid : 1;
  const auto r = static_cast<int32_t>(rows);
  const auto c = static_cast<int32_t>(cols);
  const auto kk = static_cast<int32_t>(k);
  const auto g = static_cast<unsigned>(grid);
  switch (dtype) {
    case kTrtrepoF32:
      trtrepo_conf_chunk_sum_f32<<<g, kBlock, 0, stream>>>(static_cast<const float*>(x), r, c, kk,
                                                           static_cast<float*>(out));
      return cudaGetLastError();
    case kTrtrepoF16:
      trtrepo_conf_chunk_sum_f16<<<g, kBlock, 0, stream>>>(static_cast<const __half*>(x), r, c, kk,
                                                           static_cast<__half*>(out));
      return cudaGetLastError();
    case kTrtrepoBF16:
      trtrepo_conf_chunk_sum_bf16<<<g, kBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), r, c, kk,
                                                            static_cast<__nv_bfloat16*>(out));
      return cudaGetLastError();
  }
  return cudaErrorInvalidValue;
}
