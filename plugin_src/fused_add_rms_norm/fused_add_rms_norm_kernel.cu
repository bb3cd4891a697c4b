// fused_add_rms_norm CUDA kernels. One source for the torch op library (trtrepo_fused_add_rms_norm_launch) and for
// TensorRT AOT plugins (the extern "C" entries, compiled to PTX): entries take only pointers and int32 scalars, in the
// order TensorRT launches AOT kernels: input pointers, then the int32 scalars of op.yaml kernel.scalars (in that
// order), then output pointers. eps arrives as the int32 bit pattern of the float.
#include "fused_add_rms_norm_kernel.h"

#include <limits.h>
#include <string.h>

#include "../common/trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 256;              // op.yaml kernel.block
constexpr int kWarpsPerBlock = kBlock / 32;
constexpr int kWarpRowMaxCols = 1024;    // up to here one warp per row (<= 32 elements per lane), else a block

struct WarpReduce {
  __device__ __forceinline__ float operator()(float v) const { return trtrepo::warp_sum(v); }
};
struct BlockReduce {
  float* scratch;
  __device__ __forceinline__ float operator()(float v) const { return trtrepo::block_sum(v, scratch); }
};

// One row, worked by `nt` threads of which this is `t`. Pass 1 writes residual_out and sums its squares (of the
// rounded values, as the eager op normalizes the tensor it returns); pass 2 re-reads what this same thread wrote
// (L1/L2 hits) and writes out. Every thread of the reducing group runs the reduction, so none may leave early.
template <typename T, bool kVector, typename Reduce>
__device__ __forceinline__ void norm_row(const T* __restrict__ x, const T* __restrict__ residual,
                                         const T* __restrict__ weight, T* __restrict__ out, T* residual_out,
                                         int64_t row, int32_t cols, float eps, int t, int nt, Reduce reduce) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const int64_t base = row * cols;
  float ss = 0.0f;
  if (kVector) {
    for (int c = t * kVec; c < cols; c += nt * kVec) {
      const trtrepo::Vec<T> xv = trtrepo::load_vec(x + base + c);
      const trtrepo::Vec<T> rv = trtrepo::load_vec(residual + base + c);
      trtrepo::Vec<T> sv;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        sv.v[k] = trtrepo::from_float<T>(trtrepo::to_float(xv.v[k]) + trtrepo::to_float(rv.v[k]));
        const float s = trtrepo::to_float(sv.v[k]);
        ss += s * s;
      }
      trtrepo::store_vec(residual_out + base + c, sv);
    }
  } else {
    for (int c = t; c < cols; c += nt) {
      const T s = trtrepo::from_float<T>(trtrepo::to_float(x[base + c]) + trtrepo::to_float(residual[base + c]));
      residual_out[base + c] = s;
      const float sf = trtrepo::to_float(s);
      ss += sf * sf;
    }
  }
  const float inv = rsqrtf(reduce(ss) / static_cast<float>(cols) + eps);
  if (kVector) {
    for (int c = t * kVec; c < cols; c += nt * kVec) {
      const trtrepo::Vec<T> sv = trtrepo::load_vec(static_cast<const T*>(residual_out) + base + c);
      const trtrepo::Vec<T> wv = trtrepo::load_vec(weight + c);
      trtrepo::Vec<T> ov;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        ov.v[k] = trtrepo::from_float<T>(trtrepo::to_float(sv.v[k]) * inv * trtrepo::to_float(wv.v[k]));
      }
      trtrepo::store_vec(out + base + c, ov);
    }
  } else {
    for (int c = t; c < cols; c += nt) {
      out[base + c] = trtrepo::from_float<T>(trtrepo::to_float(residual_out[base + c]) * inv *
                                             trtrepo::to_float(weight[c]));
    }
  }
}

template <typename T, bool kVector>
__device__ __forceinline__ void rows_body(const T* x, const T* residual, const T* weight, T* out, T* residual_out,
                                          int32_t rows, int32_t cols, float eps) {
  if (cols <= kWarpRowMaxCols) {
    const int warps = blockDim.x >> 5;
    const int lane = threadIdx.x & 31;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5);
    for (int64_t row = first; row < rows; row += static_cast<int64_t>(gridDim.x) * warps) {
      norm_row<T, kVector>(x, residual, weight, out, residual_out, row, cols, eps, lane, 32, WarpReduce{});
    }
  } else {
    __shared__ float scratch[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
      norm_row<T, kVector>(x, residual, weight, out, residual_out, row, cols, eps, threadIdx.x, blockDim.x,
                           BlockReduce{scratch});
    }
  }
}

// The vector path needs every row start 16-byte aligned: all pointers aligned and cols % VEC == 0. The test is
// uniform over the grid.
template <typename T>
__device__ __forceinline__ void fused_add_rms_norm_body(const T* x, const T* residual, const T* weight, T* out,
                                                        T* residual_out, int32_t rows, int32_t cols,
                                                        int32_t eps_bits) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const float eps = __int_as_float(eps_bits);
  if (cols > 0 && cols % kVec == 0 && trtrepo::is_aligned(x) && trtrepo::is_aligned(residual) &&
      trtrepo::is_aligned(weight) && trtrepo::is_aligned(out) && trtrepo::is_aligned(residual_out)) {
    rows_body<T, true>(x, residual, weight, out, residual_out, rows, cols, eps);
  } else {
    rows_body<T, false>(x, residual, weight, out, residual_out, rows, cols, eps);
  }
}

template <typename T>
cudaError_t launch(const void* x, const void* residual, const void* weight, void* out, void* residual_out,
                   int32_t rows, int32_t cols, int32_t eps_bits, cudaStream_t stream,
                   void (*entry)(const T*, const T*, const T*, int32_t, int32_t, int32_t, T*, T*)) {
  if (rows == 0) return cudaSuccess;
  // op.yaml kernel.grid: a warp per row packs kWarpsPerBlock rows in a block; otherwise a block per row.
  const int64_t grid = cols <= kWarpRowMaxCols ? trtrepo::ceil_div(rows, kWarpsPerBlock) : rows;
  entry<<<static_cast<unsigned>(grid), kBlock, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(residual), static_cast<const T*>(weight), rows, cols, eps_bits,
      static_cast<T*>(out), static_cast<T*>(residual_out));
  return cudaGetLastError();
}

}  // namespace

// Entry order (the AOT ABI): inputs x, residual, weight; scalars rows, cols, eps_bits; outputs out, residual_out.
extern "C" __global__ void trtrepo_fused_add_rms_norm_f32(const float* x, const float* residual, const float* weight,
                                                          int32_t rows, int32_t cols, int32_t eps_bits, float* out,
                                                          float* residual_out) {
  fused_add_rms_norm_body<float>(x, residual, weight, out, residual_out, rows, cols, eps_bits);
}
extern "C" __global__ void trtrepo_fused_add_rms_norm_f16(const __half* x, const __half* residual,
                                                          const __half* weight, int32_t rows, int32_t cols,
                                                          int32_t eps_bits, __half* out, __half* residual_out) {
  fused_add_rms_norm_body<__half>(x, residual, weight, out, residual_out, rows, cols, eps_bits);
}
extern "C" __global__ void trtrepo_fused_add_rms_norm_bf16(const __nv_bfloat16* x, const __nv_bfloat16* residual,
                                                           const __nv_bfloat16* weight, int32_t rows, int32_t cols,
                                                           int32_t eps_bits, __nv_bfloat16* out,
                                                           __nv_bfloat16* residual_out) {
  fused_add_rms_norm_body<__nv_bfloat16>(x, residual, weight, out, residual_out, rows, cols, eps_bits);
}

cudaError_t trtrepo_fused_add_rms_norm_launch(const void* x, const void* residual, const void* weight, void* out,
                                              void* residual_out, int64_t rows, int64_t cols, float eps,
                                              TrtrepoDType dtype, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || rows > INT_MAX || cols > INT_MAX || rows * cols > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  int32_t eps_bits;
  memcpy(&eps_bits, &eps, sizeof(eps_bits));
  const auto r = static_cast<int32_t>(rows);
  const auto c = static_cast<int32_t>(cols);
  switch (dtype) {
    case kTrtrepoF32:
      return launch<float>(x, residual, weight, out, residual_out, r, c, eps_bits, stream,
                           trtrepo_fused_add_rms_norm_f32);
    case kTrtrepoF16:
      return launch<__half>(x, residual, weight, out, residual_out, r, c, eps_bits, stream,
                            trtrepo_fused_add_rms_norm_f16);
    case kTrtrepoBF16:
      return launch<__nv_bfloat16>(x, residual, weight, out, residual_out, r, c, eps_bits, stream,
                                   trtrepo_fused_add_rms_norm_bf16);
  }
  return cudaErrorInvalidValue;
}
