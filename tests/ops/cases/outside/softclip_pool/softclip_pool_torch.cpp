// torch binding of mylab::softclip_pool: out [..., 2] from x [..., D] (op.yaml's shape rule x[:-1] + [2]).
#include <ATen/ATen.h>
#include <torch/library.h>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "softclip_pool_kernel.h"
#include "trtrepo_torch_common.h"

namespace {

std::vector<int64_t> out_shape(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) > 0, "mylab::softclip_pool: x needs a non-empty last dim");
  trtrepo_torch::check_dtype(x, "mylab::softclip_pool");
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = 2;
  return shape;
}

at::Tensor softclip_pool_cpu(const at::Tensor& x, double alpha, double beta) {
  const auto shape = out_shape(x);
  const auto xf = x.to(at::kFloat).contiguous();
  auto out = at::empty(shape, xf.options());
  const int64_t cols = x.size(-1);
  mylab_softclip_pool_cpu(xf.data_ptr<float>(), out.data_ptr<float>(), xf.numel() / cols, cols,
                          static_cast<float>(alpha), static_cast<float>(beta));
  return out.to(x.scalar_type());
}

#ifndef TRTREPO_CPU_ONLY
at::Tensor softclip_pool_cuda(const at::Tensor& x, double alpha, double beta) {
  const auto shape = out_shape(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  auto out = at::empty(shape, xc.options());
  const int64_t cols = x.size(-1);
  const cudaError_t err = mylab_softclip_pool_launch(
      xc.data_ptr(), out.data_ptr(), xc.numel() / cols, cols, static_cast<float>(alpha), static_cast<float>(beta),
      trtrepo_torch::dtype_of(x), c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
  TORCH_CHECK(err == cudaSuccess, "mylab::softclip_pool: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(mylab, m) { m.def("softclip_pool(Tensor x, float alpha, float beta) -> Tensor"); }

TORCH_LIBRARY_IMPL(mylab, CPU, m) { m.impl("softclip_pool", &softclip_pool_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL(mylab, CUDA, m) { m.impl("softclip_pool", &softclip_pool_cuda); }
#endif
