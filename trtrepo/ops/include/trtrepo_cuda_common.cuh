// Device helpers shared by the kernels: float conversion of each element type, 16-byte vector access and warp /
// block reductions. Plain CUDA (no torch, no TensorRT): the same kernels are compiled into the torch op library and
// into PTX for TensorRT AOT plugins.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

namespace trtrepo {

template <typename T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// VEC elements of T in one 16-byte transaction (LDG.128 / STG.128).
constexpr int kVectorBytes = 16;
template <typename T> struct VecTraits { static constexpr int kVec = kVectorBytes / sizeof(T); };

template <typename T>
struct alignas(kVectorBytes) Vec {
  T v[VecTraits<T>::kVec];
};

template <typename T> __device__ __forceinline__ Vec<T> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T>*>(p);
}
template <typename T> __device__ __forceinline__ void store_vec(T* p, const Vec<T>& v) {
  *reinterpret_cast<Vec<T>*>(p) = v;
}

// The same 16 bytes as four 32-bit words (one register each; a Vec<__half> may occupy eight), with conversions of a
// whole vector to / from VEC floats: fp16/bf16 two per word (cvt.rn.{f16x2,bf16x2}.f32 rounds like from_float).
__device__ __forceinline__ uint4 load_raw(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ void store_raw(void* p, const uint4& v) { *reinterpret_cast<uint4*>(p) = v; }

template <typename T> __device__ __forceinline__ float2 word_to_float2(uint32_t w);
template <> __device__ __forceinline__ float2 word_to_float2<__half>(uint32_t w) {
  __half2 h;
  memcpy(&h, &w, sizeof(h));
  return __half22float2(h);
}
template <> __device__ __forceinline__ float2 word_to_float2<__nv_bfloat16>(uint32_t w) {
  __nv_bfloat162 h;
  memcpy(&h, &w, sizeof(h));
  return __bfloat1622float2(h);
}
template <typename T> __device__ __forceinline__ uint32_t float2_to_word(float a, float b);
template <> __device__ __forceinline__ uint32_t float2_to_word<__half>(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  uint32_t w;
  memcpy(&w, &h, sizeof(w));
  return w;
}
template <> __device__ __forceinline__ uint32_t float2_to_word<__nv_bfloat16>(float a, float b) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  uint32_t w;
  memcpy(&w, &h, sizeof(w));
  return w;
}

// f[0..VEC) = the elements of raw, as floats.
template <typename T>
__device__ __forceinline__ void raw_to_floats(const uint4& raw, float (&f)[VecTraits<T>::kVec]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
  if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int k = 0; k < 4; ++k) f[k] = __uint_as_float(w[k]);
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 p = word_to_float2<T>(w[k]);
      f[2 * k] = p.x;
      f[2 * k + 1] = p.y;
    }
  }
}

// f rounded to T (round to nearest even), packed.
template <typename T>
__device__ __forceinline__ uint4 floats_to_raw(const float (&f)[VecTraits<T>::kVec]) {
  if constexpr (sizeof(T) == 4) {
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
  } else {
    return make_uint4(float2_to_word<T>(f[0], f[1]), float2_to_word<T>(f[2], f[3]), float2_to_word<T>(f[4], f[5]),
                      float2_to_word<T>(f[6], f[7]));
  }
}

__device__ __forceinline__ bool is_aligned(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) % kVectorBytes) == 0;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the whole block; every thread gets the result. `scratch` holds one float per warp (32 max).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = (lane < warps) ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace trtrepo
