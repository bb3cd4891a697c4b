// fused_add_rms_norm CUDA kernels: the extern "C" entries are the op's one kernel source. trtrepo launches them by
// op.yaml's launch rule for the torch op and the TensorRT plugin (generated from op.yaml) and embeds their PTX in AOT
// plugins. Entries take only pointers and int32 scalars, in the order TensorRT launches AOT kernels: input pointers,
// then the int32 scalars of op.yaml kernel.scalars (in that order), then output pointers. eps arrives as the int32
// bit pattern of the float.
//
// Work split: a row is worked by a group of threads_per_row threads (32, 64, 128 or 256: the fewest that hold the row
// in at most kVecPerThread 16-byte vectors each), so a 256-thread block works 256 / group rows at once; op.yaml
// kernel.grid states the same rule. On the vector path with such a row (cols <= 1024 vectors), each thread issues all
// its loads of x and residual first, keeps residual_out in registers (packed) across the reduction, then reads weight
// (L1 hits: every row reads it) and writes out: x, residual, out and residual_out cross memory exactly once and a row
// costs one DRAM round trip plus one reduction. Longer rows and the scalar path loop over the row twice, re-reading
// the residual_out this thread wrote.
#include "trtrepo_cuda_common.cuh"

namespace {

constexpr int kBlock = 256;        // op.yaml kernel.block
constexpr int kVecPerThread = 4;   // 16-byte vectors of a row one thread keeps in registers

// Threads per row for a row of `vecs` 16-byte vectors (op.yaml kernel.grid: rows per block = kBlock / this).
__host__ __device__ constexpr int threads_per_row(int64_t vecs) {
  return vecs <= 32 * kVecPerThread ? 32 : vecs <= 64 * kVecPerThread ? 64 : vecs <= 128 * kVecPerThread ? 128 : 256;
}

// Sum over the group of `nt` consecutive threads this thread belongs to (nt: 32, or a multiple of 32 that divides
// blockDim.x); every thread of the group gets the same bits. Every thread of the block calls it (a barrier when
// nt > 32). `scratch` holds 2 x 32 floats; callers alternate `parity` between calls, so one barrier per call is enough:
// a buffer is rewritten only after the next call's barrier, which every thread reaches after reading it.
__device__ __forceinline__ float group_sum(float v, int nt, float* scratch, int parity) {
  v = trtrepo::warp_sum(v);
  if (nt <= 32) return v;
  const int warp = threadIdx.x >> 5;
  float* buf = scratch + parity * 32;
  if ((threadIdx.x & 31) == 0) buf[warp] = v;
  __syncthreads();
  const int warps = nt >> 5;
  const int first = warp - warp % warps;
  float s = 0.0f;
  for (int k = 0; k < warps; ++k) s += buf[first + k];
  return s;
}

// Rows of at most kTPR * kVecPerThread vectors, all pointers 16-byte aligned and cols % VEC == 0. Row-blocks of
// kBlock / kTPR rows, grid-stride; the loop condition is uniform over the block (the barrier in group_sum).
template <typename T, int kTPR>
__device__ __forceinline__ void rows_cached(const T* __restrict__ x, const T* __restrict__ residual,
                                            const T* __restrict__ weight, T* __restrict__ out,
                                            T* __restrict__ residual_out, int32_t rows, int32_t cols, float eps,
                                            float* scratch) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  constexpr int kRows = kBlock / kTPR;
  const int g = threadIdx.x / kTPR;
  const int t = threadIdx.x % kTPR;
  int parity = 0;
  for (int64_t rb = blockIdx.x; rb * kRows < rows; rb += gridDim.x, parity ^= 1) {
    const int64_t row = rb * kRows + g;
    const bool active = row < rows;
    // This thread's vectors of the row: t * kVec + j * kStride for j < kVecPerThread (compile-time offsets from one
    // address per tensor).
    constexpr int kStride = kTPR * kVec;
    const int64_t first = row * cols + t * kVec;
    const int left = cols - t * kVec;  // columns from this thread's first one to the row end
    uint4 sv[kVecPerThread], rv[kVecPerThread];  // packed words: 4 registers per vector whatever T
#pragma unroll
    for (int j = 0; j < kVecPerThread; ++j) {
      if (active && j * kStride < left) {
        sv[j] = trtrepo::load_raw(x + first + j * kStride);
        rv[j] = trtrepo::load_raw(residual + first + j * kStride);
      }
    }
    // residual_out, rounded to T (kept packed in sv); the norm is of the rounded values (what the op returns).
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kVecPerThread; ++j) {
      if (active && j * kStride < left) {
        float a[kVec], b[kVec];
        trtrepo::raw_to_floats<T>(sv[j], a);
        trtrepo::raw_to_floats<T>(rv[j], b);
#pragma unroll
        for (int k = 0; k < kVec; ++k) a[k] += b[k];
        sv[j] = trtrepo::floats_to_raw<T>(a);
        trtrepo::raw_to_floats<T>(sv[j], a);
#pragma unroll
        for (int k = 0; k < kVec; ++k) ss += a[k] * a[k];
        trtrepo::store_raw(residual_out + first + j * kStride, sv[j]);
      }
    }
    const float inv = rsqrtf(group_sum(ss, kTPR, scratch, parity) / static_cast<float>(cols) + eps);
#pragma unroll
    for (int j = 0; j < kVecPerThread; ++j) {
      if (active && j * kStride < left) {
        // weight after the reduction: every row of the SM reads it, so an L1 hit, and no registers held across
        float s[kVec], w[kVec];
        trtrepo::raw_to_floats<T>(sv[j], s);
        trtrepo::raw_to_floats<T>(trtrepo::load_raw(weight + t * kVec + j * kStride), w);
#pragma unroll
        for (int k = 0; k < kVec; ++k) s[k] = s[k] * inv * w[k];
        trtrepo::store_raw(out + first + j * kStride, trtrepo::floats_to_raw<T>(s));
      }
    }
  }
}

// Any row length, groups of `nt` threads (blockDim.x / nt rows per block): pass 1 writes residual_out and sums its
// squares, pass 2 re-reads what this same thread wrote (L1/L2 hits) and writes out. kVector: 16-byte vectors.
// residual_out is __restrict__ although read back: both accesses go through that same pointer.
template <typename T, bool kVector>
__device__ __forceinline__ void rows_looped(const T* __restrict__ x, const T* __restrict__ residual,
                                            const T* __restrict__ weight, T* __restrict__ out,
                                            T* __restrict__ residual_out, int32_t rows, int32_t cols, float eps,
                                            int nt, float* scratch) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const int per_block = blockDim.x / nt;
  const int g = threadIdx.x / nt;
  const int t = threadIdx.x % nt;
  int parity = 0;
  for (int64_t rb = blockIdx.x; rb * per_block < rows; rb += gridDim.x, parity ^= 1) {
    const int64_t row = rb * per_block + g;
    const bool active = row < rows;
    const int64_t base = row * cols;
    float ss = 0.0f;
    if (active) {
      if (kVector) {
#pragma unroll 4
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
    }
    const float inv = rsqrtf(group_sum(ss, nt, scratch, parity) / static_cast<float>(cols) + eps);
    if (!active) continue;
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
}

// The vector path needs every row start 16-byte aligned: all pointers aligned and cols % VEC == 0. Every branch below
// is uniform over the grid. With a block other than kBlock (not what op.yaml states; launch bounds allow at most kBlock)
// a whole block works each row.
template <typename T>
__device__ __forceinline__ void fused_add_rms_norm_body(const T* x, const T* residual, const T* weight, T* out,
                                                        T* residual_out, int32_t rows, int32_t cols,
                                                        int32_t eps_bits) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  __shared__ float scratch[64];
  if (rows <= 0 || cols <= 0) return;
  const float eps = __int_as_float(eps_bits);
  const bool vector = cols % kVec == 0 && trtrepo::is_aligned(x) && trtrepo::is_aligned(residual) &&
                      trtrepo::is_aligned(weight) && trtrepo::is_aligned(out) && trtrepo::is_aligned(residual_out);
  if (blockDim.x != kBlock) {
    if (vector) {
      rows_looped<T, true>(x, residual, weight, out, residual_out, rows, cols, eps, blockDim.x, scratch);
    } else {
      rows_looped<T, false>(x, residual, weight, out, residual_out, rows, cols, eps, blockDim.x, scratch);
    }
    return;
  }
  const int nt = threads_per_row((static_cast<int64_t>(cols) + kVec - 1) / kVec);
  if (vector && cols <= kBlock * kVecPerThread * kVec) {
    if (nt == 32) {
      rows_cached<T, 32>(x, residual, weight, out, residual_out, rows, cols, eps, scratch);
    } else if (nt == 64) {
      rows_cached<T, 64>(x, residual, weight, out, residual_out, rows, cols, eps, scratch);
    } else if (nt == 128) {
      rows_cached<T, 128>(x, residual, weight, out, residual_out, rows, cols, eps, scratch);
    } else {
      rows_cached<T, 256>(x, residual, weight, out, residual_out, rows, cols, eps, scratch);
    }
  } else if (vector) {
    rows_looped<T, true>(x, residual, weight, out, residual_out, rows, cols, eps, kBlock, scratch);
  } else {
    rows_looped<T, false>(x, residual, weight, out, residual_out, rows, cols, eps, nt, scratch);
  }
}


}  // namespace

// The entries declared once more with launch bounds (a kBlock-thread block, 4 blocks per SM: at most 64 registers,
// 1024 threads per SM; without it fp32 takes 70 registers and 3 blocks). Same names and parameters (the AOT ABI).
extern "C" {
__global__ void __launch_bounds__(kBlock, 4) trtrepo_fused_add_rms_norm_f32(const float*, const float*, const float*,
                                                                            int32_t, int32_t, int32_t, float*, float*);
__global__ void __launch_bounds__(kBlock, 4) trtrepo_fused_add_rms_norm_f16(const __half*, const __half*,
                                                                            const __half*, int32_t, int32_t, int32_t,
                                                                            __half*, __half*);
__global__ void __launch_bounds__(kBlock, 4) trtrepo_fused_add_rms_norm_bf16(const __nv_bfloat16*,
                                                                             const __nv_bfloat16*,
                                                                             const __nv_bfloat16*, int32_t, int32_t,
                                                                             int32_t, __nv_bfloat16*, __nv_bfloat16*);
}

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
