// torch binding of trtrepo::fused_add_rms_norm: schema, CPU impl (the plain C++ reference) and, unless
// TRTREPO_CPU_ONLY, the CUDA impl (the launcher of fused_add_rms_norm_kernel.cu on torch's current stream). The
// schema must equal op.yaml's (a test compares them).
#include <torch/library.h>
#include <ATen/ATen.h>

#include <tuple>

#ifndef TRTREPO_CPU_ONLY
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "trtrepo_torch_common.h"
#include "fused_add_rms_norm_kernel.h"

namespace {

constexpr const char* kOp = "trtrepo::fused_add_rms_norm";

void check_args(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight) {
  TORCH_CHECK(x.dim() >= 1, kOp, ": x must have at least 1 dim, got ", x.dim());
  TORCH_CHECK(residual.sizes() == x.sizes(), kOp, ": residual shape ", residual.sizes(), " differs from x shape ",
              x.sizes());
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1), kOp, ": weight must have shape [", x.size(-1),
              "] (the last dim of x), got ", weight.sizes());
  TORCH_CHECK(residual.scalar_type() == x.scalar_type() && weight.scalar_type() == x.scalar_type(), kOp,
              ": x, residual and weight must share one dtype, got ", x.scalar_type(), ", ", residual.scalar_type(),
              ", ", weight.scalar_type());
  trtrepo_torch::check_dtype(x, kOp);
  TORCH_CHECK(residual.device() == x.device() && weight.device() == x.device(), kOp,
              ": x, residual and weight must be on the same device");
}

std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm_cpu(const at::Tensor& x, const at::Tensor& residual,
                                                          const at::Tensor& weight, double eps) {
  check_args(x, residual, weight);
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  const auto wf = weight.to(at::kFloat).contiguous();
  at::Tensor res_out;
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(at::kFloat));
  if (x.scalar_type() == at::kFloat) {
    const auto xc = x.contiguous();
    const auto rc = residual.contiguous();
    res_out = at::empty_like(xc);
    trtrepo_fused_add_rms_norm_cpu(xc.data_ptr<float>(), rc.data_ptr<float>(), wf.data_ptr<float>(),
                                   out.data_ptr<float>(), res_out.data_ptr<float>(), rows, cols,
                                   static_cast<float>(eps));
    return {out, res_out};
  }
  // fp16/bf16: residual_out is rounded to the dtype and the norm is taken of those rounded values, as on the GPU.
  const auto sum = (x.to(at::kFloat) + residual.to(at::kFloat)).to(x.scalar_type());
  const auto sf = sum.to(at::kFloat).contiguous();
  auto scratch = at::empty_like(sf);
  trtrepo_fused_add_rms_norm_cpu(sf.data_ptr<float>(), nullptr, wf.data_ptr<float>(), out.data_ptr<float>(),
                                 scratch.data_ptr<float>(), rows, cols, static_cast<float>(eps));
  return {out.to(x.scalar_type()), sum.contiguous()};
}

#ifndef TRTREPO_CPU_ONLY
std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm_cuda(const at::Tensor& x, const at::Tensor& residual,
                                                           const at::Tensor& weight, double eps) {
  check_args(x, residual, weight);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto xc = x.contiguous();
  const auto rc = residual.contiguous();
  const auto wc = weight.contiguous();
  auto out = at::empty_like(xc);
  auto res_out = at::empty_like(xc);
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  if (rows == 0 || cols == 0) return {out, res_out};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err =
      trtrepo_fused_add_rms_norm_launch(xc.data_ptr(), rc.data_ptr(), wc.data_ptr(), out.data_ptr(),
                                        res_out.data_ptr(), rows, cols, static_cast<float>(eps),
                                        trtrepo_torch::dtype_of(x), stream);
  TORCH_CHECK(err == cudaSuccess, kOp, ": CUDA launch failed: ", cudaGetErrorString(err));
  return {out, res_out};
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(trtrepo, m) {
  m.def("fused_add_rms_norm(Tensor x, Tensor residual, Tensor weight, float eps=1e-06) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(trtrepo, CPU, m) { m.impl("fused_add_rms_norm", &fused_add_rms_norm_cpu); }

#ifndef TRTREPO_CPU_ONLY
TORCH_LIBRARY_IMPL(trtrepo, CUDA, m) { m.impl("fused_add_rms_norm", &fused_add_rms_norm_cuda); }
#endif
