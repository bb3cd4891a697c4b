// CPU reference for bias_gelu (plain C++, fp32): the torch CPU kernel and the check against the CUDA kernel.
#include <cmath>

#include "bias_gelu_kernel.h"

void trtrepo_bias_gelu_cpu(const float* x, const float* bias, float* out, int64_t rows, int64_t cols) {
  const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  const float kKappa = 0.044715f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* outr = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = xr[c] + bias[c];
      outr[c] = 0.5f * v * (1.0f + std::tanh(kBeta * (v + kKappa * v * v * v)));
    }
  }
}
