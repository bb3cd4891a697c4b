// CPU reference for silu_and_mul (plain C++, fp32): the torch CPU kernel and what ops check compares.
#include <cmath>

#include "silu_and_mul_kernel.h"

void trtrepo_silu_and_mul_cpu(const float* x, float* out, int64_t rows, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = x + r * 2 * h;
    const float* up = gate + h;
    float* o = out + r * h;
    for (int64_t c = 0; c < h; ++c) o[c] = gate[c] / (1.0f + std::exp(-gate[c])) * up[c];
  }
}
