// torch binding of trtrepo::bias_gelu: schema, CPU impl (the plain C++ reference) and, unless TRTREPO_CPU_ONLY, the
// CUDA impl (the launcher of bias_gelu_kernel.cu on torch's current stream). The schema must equal op.yaml's (a test
// compares them). Fake (shape) kernels: see plugin_src/README.md.
#include <torch/library.h>
#include <ATen/ATen.h>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "trtrepo_torch_common.h"
#include "bias_gelu_kernel.h"

namespace {

void check_args(const at::Tensor& x, const at::Tensor& bias) {
  TORCH_CHECK(x.dim() >= 1, "trtrepo::bias_gelu: x must have at least 1 dim, got ", x.dim());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(-1), "trtrepo::bias_gelu: bias must have shape [",
              x.size(-1), "] (the last dim of x), got ", bias.sizes());
  TORCH_CHECK(bias.scalar_type() == x.scalar_type(), "trtrepo::bias_gelu: bias dtype ", bias.scalar_type(),
              " differs from x dtype ", x.scalar_type());
  trtrepo_torch::check_dtype(x, "trtrepo::bias_gelu");
  TORCH_CHECK(bias.device() == x.device(), "trtrepo::bias_gelu: x and bias must be on the same device");
}

at::Tensor bias_gelu_cpu(const at::Tensor& x, const at::Tensor& bias) {
  check_args(x, bias);
  const auto xf = x.to(at::kFloat).contiguous();
  const auto bf = bias.to(at::kFloat).contiguous();
  auto out = at::empty_like(xf);
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  trtrepo_bias_gelu_cpu(xf.data_ptr<float>(), bf.data_ptr<float>(), out.data_ptr<float>(), rows, cols);
  return out.to(x.scalar_type());
}

#ifndef TRTREPO_CPU_ONLY
at::Tensor bias_gelu_cuda(const at::Tensor& x, const at::Tensor& bias) {
  check_args(x, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  const auto bc = bias.contiguous();
  auto out = at::empty_like(xc);
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  if (rows == 0 || cols == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err = trtrepo_bias_gelu_launch(xc.data_ptr(), bc.data_ptr(), out.data_ptr(), rows, cols,
                                                   trtrepo_torch::dtype_of(x), stream);
  TORCH_CHECK(err == cudaSuccess, "trtrepo::bias_gelu: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(trtrepo, m) { m.def("bias_gelu(Tensor x, Tensor bias) -> Tensor"); }

TORCH_LIBRARY_IMPL(trtrepo, CPU, m) { m.impl("bias_gelu", &bias_gelu_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL(trtrepo, CUDA, m) { m.impl("bias_gelu", &bias_gelu_cuda); }
#endif
