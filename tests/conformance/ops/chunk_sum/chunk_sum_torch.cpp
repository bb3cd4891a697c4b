// torch binding of trtrepo_conf::chunk_sum (test op of trtrepo.conformance).
#include <torch/library.h>
#include <ATen/ATen.h>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "trtrepo_torch_common.h"
#include "chunk_sum_kernel.h"

namespace {

at::Tensor empty_out(const at::Tensor& x, int64_t k, at::ScalarType type) {
  auto sizes = x.sizes().vec();
  sizes.back() = (sizes.back() + k - 1) / k;
  return at::empty(sizes, x.options().dtype(type));
}

void check_args(const at::Tensor& x, int64_t k) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) >= 1, "trtrepo_conf::chunk_sum: x needs a last dim >= 1");
  TORCH_CHECK(k >= 1, "trtrepo_conf::chunk_sum: k must be >= 1, got ", k);
  trtrepo_torch::check_dtype(x, "trtrepo_conf::chunk_sum");
}

at::Tensor chunk_sum_cpu(const at::Tensor& x, int64_t k) {
  check_args(x, k);
  const auto xf = x.to(at::kFloat).contiguous();
  auto out = empty_out(x, k, at::kFloat);
  const int64_t cols = x.size(-1);
  trtrepo_conf_chunk_sum_cpu(xf.data_ptr<float>(), out.data_ptr<float>(), x.numel() / cols, cols, k);
  return out.to(x.scalar_type());
}

#ifndef TRTREPO_CPU_ONLY
at::Tensor chunk_sum_cuda(const at::Tensor& x, int64_t k) {
  check_args(x, k);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  auto out = empty_out(x, k, x.scalar_type());
  const int64_t cols = x.size(-1);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err = trtrepo_conf_chunk_sum_launch(xc.data_ptr(), out.data_ptr(), x.numel() / cols, cols, k,
                                                        trtrepo_torch::dtype_of(x), stream);
  TORCH_CHECK(err == cudaSuccess, "trtrepo_conf::chunk_sum: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(trtrepo_conf, m) { m.def("chunk_sum(Tensor x, int k=2) -> Tensor"); }

TORCH_LIBRARY_IMPL(trtrepo_conf, CPU, m) { m.impl("chunk_sum", &chunk_sum_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL(trtrepo_conf, CUDA, m) { m.impl("chunk_sum", &chunk_sum_cuda); }
#endif
