// CPU reference for bias_gelu (op.yaml cpu:), plain C++ in fp32 with the kernel entries' arguments: inputs x, bias;
// scalars n (= rows * cols), cols; output out. The generated binding upcasts fp16/bf16 and rounds the result once, as
// the kernels do.
#include <cmath>
#include <cstdint>

void trtrepo_bias_gelu_cpu(const float* x, const float* bias, int32_t n, int32_t cols, float* out) {
  const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  const float kKappa = 0.044715f;
  for (int32_t i = 0; i < n; ++i) {
    const float v = x[i] + bias[i % cols];
    out[i] = 0.5f * v * (1.0f + std::tanh(kBeta * (v + kKappa * v * v * v)));
  }
}
