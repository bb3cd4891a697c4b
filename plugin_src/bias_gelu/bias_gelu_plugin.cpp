// trtrepo::bias_gelu as a TensorRT plugin: the same kernel launcher as the torch op (bias_gelu_kernel.h).
#include "bias_gelu_plugin.h"

#include <new>

#include "bias_gelu_kernel.h"

namespace trtrepo {
namespace trt {

void BiasGeluPlugin::fieldNames(std::vector<nvinfer1::PluginField>& fields) { fields.clear(); }

BiasGeluPlugin* BiasGeluPlugin::create(nvinfer1::PluginFieldCollection const* fc) noexcept {
  (void)fc;  // no attributes
  return new (std::nothrow) BiasGeluPlugin();
}

void BiasGeluPlugin::collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept { (void)fields; }

int32_t BiasGeluPlugin::launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                               void* const* outputs, cudaStream_t stream) noexcept {
  TrtrepoDType dtype{};
  int64_t rows = 0;
  int64_t cols = 0;
  if (!toTrtrepoDType(inputDesc[0].type, dtype) || !rowsCols(inputDesc[0].dims, rows, cols)) {
    logError("TrtrepoBiasGelu: unsupported dtype or shape of x");
    return -1;
  }
  if (inputDesc[1].dims.nbDims != 1 || inputDesc[1].dims.d[0] != cols) {
    logError("TrtrepoBiasGelu: bias must have shape [cols]");
    return -1;
  }
  if (rows == 0) return 0;
  cudaError_t const status = trtrepo_bias_gelu_launch(inputs[0], inputs[1], outputs[0], rows, cols, dtype, stream);
  if (status != cudaSuccess) {
    logError(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

}  // namespace trt
}  // namespace trtrepo

TRTREPO_REGISTER_PLUGIN(trtrepo::trt::BiasGeluPlugin)
