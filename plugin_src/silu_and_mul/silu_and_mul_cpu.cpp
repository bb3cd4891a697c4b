// CPU reference for silu_and_mul (op.yaml cpu:), plain C++ in fp32 with the kernel entries' arguments: input x
// [rows, 2h]; scalars rows, h; output out [rows, h].
#include <cmath>
#include <cstdint>

void trtrepo_silu_and_mul_cpu(const float* x, int32_t rows, int32_t h, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = x + r * 2 * h;
    const float* up = gate + h;
    float* o = out + r * h;
    for (int64_t c = 0; c < h; ++c) o[c] = gate[c] / (1.0f + std::exp(-gate[c])) * up[c];
  }
}
