// CPU reference of chunk_sum (fp32, summed in the kernel's order).
#include "chunk_sum_kernel.h"

void trtrepo_conf_chunk_sum_cpu(const float* x, float* out, int64_t rows, int64_t cols, int64_t k) {
  const int64_t ocols = (cols + k - 1) / k;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < ocols; ++j) {
      float s = 0.0f;
      for (int64_t c = j * k; c < (j + 1) * k && c < cols; ++c) s += x[r * cols + c];
      out[r * ocols + j] = s;
    }
  }
}
