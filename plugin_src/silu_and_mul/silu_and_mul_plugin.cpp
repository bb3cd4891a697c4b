// trtrepo::silu_and_mul as a TensorRT plugin: the same kernel launcher as the torch op (silu_and_mul_kernel.h).
#include "silu_and_mul_plugin.h"

#include <new>

#include "silu_and_mul_kernel.h"

namespace trtrepo {
namespace trt {

void SiluAndMulPlugin::fieldNames(std::vector<nvinfer1::PluginField>& fields) { fields.clear(); }

SiluAndMulPlugin* SiluAndMulPlugin::create(nvinfer1::PluginFieldCollection const* fc) noexcept {
  (void)fc;  // no attributes
  return new (std::nothrow) SiluAndMulPlugin();
}

void SiluAndMulPlugin::collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept { (void)fields; }

int32_t SiluAndMulPlugin::launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                                 void* const* outputs, cudaStream_t stream) noexcept {
  TrtrepoDType dtype{};
  int64_t rows = 0;
  int64_t cols = 0;
  if (!toTrtrepoDType(inputDesc[0].type, dtype) || !rowsCols(inputDesc[0].dims, rows, cols) || cols % 2 != 0) {
    logError("TrtrepoSiluAndMul: unsupported dtype of x, or its last dim is not even");
    return -1;
  }
  if (rows == 0 || cols == 0) return 0;
  cudaError_t const status = trtrepo_silu_and_mul_launch(inputs[0], outputs[0], rows, cols / 2, dtype, stream);
  if (status != cudaSuccess) {
    logError(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

}  // namespace trt
}  // namespace trtrepo

TRTREPO_REGISTER_PLUGIN(trtrepo::trt::SiluAndMulPlugin)
