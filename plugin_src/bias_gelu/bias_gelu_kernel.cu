// bias_gelu CUDA kernels. One source for the torch op library (through trtrepo_bias_gelu_launch) and for TensorRT
// AOT plugins (the extern "C" entries, compiled to PTX): entries take only pointers and int32 scalars, in the order
// TensorRT launches AOT kernels: input pointers, then the int32 scalars of op.yaml kernel.scalars (in that order),
// then output pointers.
#include "bias_gelu_kernel.h"

#include <limits.h>

#include "../common/trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 256;  // op.yaml kernel.block

__device__ __forceinline__ float gelu_tanh(float v) {
  const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  const float kKappa = 0.044715f;
  return 0.5f * v * (1.0f + tanhf(kBeta * (v + kKappa * v * v * v)));
}

// Computed in fp32 and rounded once to T (the op's definition; its aten decomposition does the same).
template <typename T>
__device__ __forceinline__ T bias_gelu_one(T x, T b) {
  return trtrepo::from_float<T>(gelu_tanh(trtrepo::to_float(x) + trtrepo::to_float(b)));
}

// Grid-stride over n elements. 16-byte vectors when every pointer is aligned and cols % VEC == 0 (then a vector never
// straddles a row and the bias vector is aligned too); otherwise one element per step. The test is uniform over the
// grid, so no warp diverges on it.
template <typename T>
__device__ __forceinline__ void bias_gelu_body(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ out,
                                               int32_t n, int32_t cols) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (cols > 0 && cols % kVec == 0 && trtrepo::is_aligned(x) && trtrepo::is_aligned(bias) &&
      trtrepo::is_aligned(out)) {
    const int64_t nvec = n / kVec;
    for (int64_t i = tid; i < nvec; i += stride) {
      const int64_t e = i * kVec;
      const trtrepo::Vec<T> xv = trtrepo::load_vec(x + e);
      const trtrepo::Vec<T> bv = trtrepo::load_vec(bias + (e % cols));
      trtrepo::Vec<T> ov;
#pragma unroll
      for (int k = 0; k < kVec; ++k) ov.v[k] = bias_gelu_one(xv.v[k], bv.v[k]);
      trtrepo::store_vec(out + e, ov);
    }
  } else {
    for (int64_t i = tid; i < n; i += stride) out[i] = bias_gelu_one(x[i], bias[i % cols]);
  }
}

template <typename T>
cudaError_t launch(const void* x, const void* bias, void* out, int32_t n, int32_t cols, cudaStream_t stream,
                   void (*entry)(const T*, const T*, int32_t, int32_t, T*)) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  if (n == 0) return cudaSuccess;
  const int64_t grid = trtrepo::ceil_div(n, static_cast<int64_t>(kBlock) * kVec);  // op.yaml kernel.grid
  entry<<<static_cast<unsigned>(grid), kBlock, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(bias), n,
                                                           cols, static_cast<T*>(out));
  return cudaGetLastError();
}

}  // namespace

// Entry order (the AOT ABI): inputs x, bias; scalars n, cols; output out.
extern "C" __global__ void trtrepo_bias_gelu_f32(const float* x, const float* bias, int32_t n, int32_t cols,
                                                 float* out) {
  bias_gelu_body<float>(x, bias, out, n, cols);
}
extern "C" __global__ void trtrepo_bias_gelu_f16(const __half* x, const __half* bias, int32_t n, int32_t cols,
                                                 __half* out) {
  bias_gelu_body<__half>(x, bias, out, n, cols);
}
extern "C" __global__ void trtrepo_bias_gelu_bf16(const __nv_bfloat16* x, const __nv_bfloat16* bias, int32_t n,
                                                  int32_t cols, __nv_bfloat16* out) {
  bias_gelu_body<__nv_bfloat16>(x, bias, out, n, cols);
}

cudaError_t trtrepo_bias_gelu_launch(const void* x, const void* bias, void* out, int64_t rows, int64_t cols,
                                     TrtrepoDType dtype, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || rows * cols > INT_MAX) return cudaErrorInvalidValue;
  const auto n = static_cast<int32_t>(rows * cols);
  const auto c = static_cast<int32_t>(cols);
  switch (dtype) {
    case kTrtrepoF32: return launch<float>(x, bias, out, n, c, stream, trtrepo_bias_gelu_f32);
    case kTrtrepoF16: return launch<__half>(x, bias, out, n, c, stream, trtrepo_bias_gelu_f16);
    case kTrtrepoBF16: return launch<__nv_bfloat16>(x, bias, out, n, c, stream, trtrepo_bias_gelu_bf16);
  }
  return cudaErrorInvalidValue;
}
