// bias_gelu CUDA kernels: the extern "C" entries are the op's one kernel source. trtrepo launches them by op.yaml's
// launch rule for the torch op and the TensorRT plugin (generated from op.yaml) and embeds their PTX in AOT plugins.
// Entries take only pointers and int32 scalars, in the order TensorRT launches AOT kernels: input pointers, then the
// int32 scalars of op.yaml kernel.scalars (in that order), then output pointers.
#include "trtrepo_cuda_common.cuh"

namespace {

__device__ __forceinline__ float gelu_tanh(float v) {
  const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  const float kKappa = 0.044715f;
  return 0.5f * v * (1.0f + tanhf(kBeta * (v + kKappa * v * v * v)));
}

// The same function as v * sigmoid(2u) = v / (1 + 2^(-2u log2 e)), u = sqrt(2/pi) (v + 0.044715 v^3): one MUFU.EX2
// and one MUFU.RCP and ~8 FP32 instructions, against ~30 for tanhf (fp16/bf16 at 8 elements per 16-byte vector were
// ALU-bound with tanhf). Relative error ~1e-6, far below the fp16/bf16 rounding; fp32 keeps tanhf. Large |v| stays
// finite: v -> -inf gives 2^(+inf) = inf, 1 / inf = 0, v * 0 = -0 (as tanhf's 0.5 v (1 - 1)); v -> +inf gives v.
__device__ __forceinline__ float gelu_tanh_fast(float v) {
  const float kA = -2.0f * 0.7978845608028654f * 1.4426950408889634f;  // -2 sqrt(2/pi) log2(e)
  const float kB = kA * 0.044715f;
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(v * fmaf(kB, v * v, kA)));
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return v * r;
}

// Computed in fp32 and rounded once to T (the op's definition; its aten decomposition does the same).
template <typename T>
__device__ __forceinline__ float gelu_of(float v) {
  if constexpr (sizeof(T) == 4) {
    return gelu_tanh(v);
  } else {
    return gelu_tanh_fast(v);
  }
}

// Grid-stride over n elements. 16-byte vectors when every pointer is aligned and cols % VEC == 0 (then a vector never
// straddles a row and the bias vector is aligned too); otherwise one element per step. The test is uniform over the
// grid, so no warp diverges on it. Indices fit int32 (n does); the bias column is a 32-bit remainder.
template <typename T>
__device__ __forceinline__ void bias_gelu_body(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ out,
                                               int32_t n, int32_t cols) {
  constexpr int kVec = trtrepo::VecTraits<T>::kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n <= 0 || cols <= 0) return;
  if (cols % kVec == 0 && trtrepo::is_aligned(x) && trtrepo::is_aligned(bias) && trtrepo::is_aligned(out)) {
    const int64_t nvec = n / kVec;
    for (int64_t i = tid; i < nvec; i += stride) {
      const auto e = static_cast<uint32_t>(i * kVec);
      float xf[kVec], bf[kVec];
      trtrepo::raw_to_floats<T>(trtrepo::load_raw(x + e), xf);
      trtrepo::raw_to_floats<T>(trtrepo::load_raw(bias + e % static_cast<uint32_t>(cols)), bf);
#pragma unroll
      for (int k = 0; k < kVec; ++k) xf[k] = gelu_of<T>(xf[k] + bf[k]);
      trtrepo::store_raw(out + e, trtrepo::floats_to_raw<T>(xf));
    }
  } else {
    for (int64_t i = tid; i < n; i += stride) {
      const auto e = static_cast<uint32_t>(i);
      out[e] = trtrepo::from_float<T>(gelu_of<T>(trtrepo::to_float(x[e]) +
                                                 trtrepo::to_float(bias[e % static_cast<uint32_t>(cols)])));
    }
  }
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
