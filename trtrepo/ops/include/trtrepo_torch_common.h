// Helpers for the torch bindings (torch headers allowed here, never in kernels): dtype checks and mapping.
#pragma once

#include <ATen/ATen.h>

#include "trtrepo_dtype.h"

namespace trtrepo_torch {

inline void check_dtype(const at::Tensor& t, const char* op) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kHalf || s == at::kBFloat16, op,
              ": dtype must be float32, float16 or bfloat16 (op.yaml dtypes), got ", s);
}

inline TrtrepoDType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf: return kTrtrepoF16;
    case at::kBFloat16: return kTrtrepoBF16;
    default: return kTrtrepoF32;
  }
}

}  // namespace trtrepo_torch
