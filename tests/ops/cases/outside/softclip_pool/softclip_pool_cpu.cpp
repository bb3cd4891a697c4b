// CPU reference of mylab::softclip_pool (plain C++, fp32).
#include <cmath>
#include <limits>

#include "softclip_pool_kernel.h"

void mylab_softclip_pool_cpu(const float* x, float* out, int64_t rows, int64_t cols, float alpha, float beta) {
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0.0f;
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < cols; ++c) {
      const float y = alpha * std::tanh(x[r * cols + c] / alpha) + beta;
      sum += y;
      best = std::fmax(best, y);
    }
    out[2 * r] = sum / static_cast<float>(cols);
    out[2 * r + 1] = best;
  }
}
