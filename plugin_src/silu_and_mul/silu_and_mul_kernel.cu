// silu_and_mul CUDA kernels: the extern "C" entries are the op's one kernel source. trtrepo launches them by op.yaml's
// launch rule for the torch op and the TensorRT plugin (generated from op.yaml) and embeds their PTX in AOT plugins.
// Entries take only pointers and int32 scalars, in the order TensorRT launches AOT kernels: input pointers, then
// op.yaml kernel.scalars (in that order), then outputs.
#include "trtrepo_cuda_common.cuh"

namespace {

// silu(g) * u = g * u / (1 + e^-g). fp32 keeps expf and a true division (it is compared with torch's silu at 1e-5);
// fp16/bf16 use one MUFU.EX2 and one MUFU.RCP (relative error ~1e-6, far below their rounding). Large |g| stays
// finite: g -> -inf gives 2^(+inf) = inf, rcp(inf) = 0, g * 0 = -0 (torch: -0 too); g -> +inf gives g.
__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__device__ __forceinline__ float silu_mul_fast(float g, float u) {
  const float kLog2e = 1.4426950408889634f;
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(-g * kLog2e));
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return g * r * u;
}

template <typename T>
__device__ __forceinline__ float value_of(float g, float u) {
  if constexpr (sizeof(T) == 4) {
    return silu_mul(g, u);
  } else {
    return silu_mul_fast(g, u);
  }
}

// Grid-stride over the rows * h outputs. 16-byte vectors when x and out are aligned and h % VEC == 0 (then a vector
// never straddles a row, and the gate and up vectors of one output vector are both aligned): two 16-byte loads and
// one 16-byte store per VEC outputs, the traffic floor. Otherwise one element per step. Indices are 32-bit (op.yaml's scalars
// are int32: trtrepo refuses sizes that do not fit).
template <typename T>
__device__ __forceinline__ void silu_and_mul_body(const T* __restrict__ x, T* __restrict__ out, int32_t rows,
                                                  int32_t h) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (rows <= 0 || h <= 0) return;
  const uint32_t uh = static_cast<uint32_t>(h);
  const int64_t n = static_cast<int64_t>(rows) * h;
  if (h % kVec == 0 && trtrepo::is_aligned(x) && trtrepo::is_aligned(out)) {
    const int64_t nvec = n / kVec;
    for (int64_t i = tid; i < nvec; i += stride) {
      const auto e = static_cast<uint32_t>(i * kVec);
      const uint32_t r = e / uh;
      const uint32_t c = e - r * uh;
      const uint32_t gate = 2 * r * uh + c;
      float g[kVec], u[kVec];
      trtrepo::raw_to_floats<T>(trtrepo::load_raw(x + gate), g);
      trtrepo::raw_to_floats<T>(trtrepo::load_raw(x + gate + uh), u);
#pragma unroll
      for (int k = 0; k < kVec; ++k) g[k] = value_of<T>(g[k], u[k]);
      trtrepo::store_raw(out + e, trtrepo::floats_to_raw<T>(g));
    }
  } else {
    for (int64_t i = tid; i < n; i += stride) {
      const auto e = static_cast<uint32_t>(i);
      const uint32_t r = e / uh;
      const uint32_t gate = 2 * r * uh + (e - r * uh);
      out[e] = trtrepo::from_float<T>(value_of<T>(trtrepo::to_float(x[gate]), trtrepo::to_float(x[gate + uh])));
    }
  }
}


}  // namespace

// Entry order (the AOT ABI): input x; scalars rows, h; output out.
extern "C" __global__ void trtrepo_silu_and_mul_f32(const float* x, int32_t rows, int32_t h, float* out) {
  silu_and_mul_body<float>(x, out, rows, h);
}
extern "C" __global__ void trtrepo_silu_and_mul_f16(const __half* x, int32_t rows, int32_t h, __half* out) {
  silu_and_mul_body<__half>(x, out, rows, h);
}
extern "C" __global__ void trtrepo_silu_and_mul_bf16(const __nv_bfloat16* x, int32_t rows, int32_t h,
                                                     __nv_bfloat16* out) {
  silu_and_mul_body<__nv_bfloat16>(x, out, rows, h);
}
