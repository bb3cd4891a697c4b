// torch binding of trtrepo::silu_and_mul: schema, CPU impl (the plain C++ reference) and, unless TRTREPO_CPU_ONLY, the
// CUDA impl (the launcher of silu_and_mul_kernel.cu on torch's current stream). The schema must equal op.yaml's
// (`trtrepo ops check` compares them); the output shape is op.yaml's rule x[:-1] + [x[-1] // 2].
#include <ATen/ATen.h>
#include <torch/library.h>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "silu_and_mul_kernel.h"
#include "trtrepo_torch_common.h"

namespace {

std::vector<int64_t> check_args(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1, "trtrepo::silu_and_mul: x must have at least 1 dim, got ", x.dim());
  TORCH_CHECK(x.size(-1) % 2 == 0, "trtrepo::silu_and_mul: the last dim of x must be even (gate, up), got ",
              x.size(-1));
  trtrepo_torch::check_dtype(x, "trtrepo::silu_and_mul");
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() /= 2;
  return shape;
}

at::Tensor silu_and_mul_cpu(const at::Tensor& x) {
  const auto shape = check_args(x);
  const auto xf = x.to(at::kFloat).contiguous();
  auto out = at::empty(shape, xf.options());
  const int64_t h = shape.back();
  const int64_t rows = h == 0 ? 0 : out.numel() / h;
  trtrepo_silu_and_mul_cpu(xf.data_ptr<float>(), out.data_ptr<float>(), rows, h);
  return out.to(x.scalar_type());
}

#ifndef TRTREPO_CPU_ONLY
at::Tensor silu_and_mul_cuda(const at::Tensor& x) {
  const auto shape = check_args(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  auto out = at::empty(shape, xc.options());
  const int64_t h = shape.back();
  const int64_t rows = h == 0 ? 0 : out.numel() / h;
  if (rows == 0 || h == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err = trtrepo_silu_and_mul_launch(xc.data_ptr(), out.data_ptr(), rows, h,
                                                      trtrepo_torch::dtype_of(x), stream);
  TORCH_CHECK(err == cudaSuccess, "trtrepo::silu_and_mul: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(trtrepo, m) { m.def("silu_and_mul(Tensor x) -> Tensor"); }

TORCH_LIBRARY_IMPL(trtrepo, CPU, m) { m.impl("silu_and_mul", &silu_and_mul_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL(trtrepo, CUDA, m) { m.impl("silu_and_mul", &silu_and_mul_cuda); }
#endif
