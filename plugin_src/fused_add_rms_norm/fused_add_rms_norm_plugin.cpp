// trtrepo::fused_add_rms_norm as a TensorRT plugin: the same kernel launcher as the torch op.
#include "fused_add_rms_norm_plugin.h"

#include <cmath>
#include <new>

#include "fused_add_rms_norm_kernel.h"

namespace trtrepo {
namespace trt {

void FusedAddRmsNormPlugin::fieldNames(std::vector<nvinfer1::PluginField>& fields) {
  fields.clear();
  fields.emplace_back("eps", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1);
}

FusedAddRmsNormPlugin* FusedAddRmsNormPlugin::create(nvinfer1::PluginFieldCollection const* fc) noexcept {
  float eps = kDefaultEps;
  if (!readFloatField(fc, "eps", eps) || !std::isfinite(eps) || eps < 0.0F) {
    logError("TrtrepoFusedAddRmsNorm: field eps must be one finite FLOAT32 >= 0");
    return nullptr;
  }
  return new (std::nothrow) FusedAddRmsNormPlugin(eps);
}

void FusedAddRmsNormPlugin::collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept {
  // reserve(1) in the caller's empty vector cannot fail in practice; guard anyway (no exception may escape)
  try {
    fields.emplace_back("eps", &mEps, nvinfer1::PluginFieldType::kFLOAT32, 1);
  } catch (...) {
    logError("TrtrepoFusedAddRmsNorm: cannot serialize fields (out of memory)");
  }
}

int32_t FusedAddRmsNormPlugin::launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                                      void* const* outputs, cudaStream_t stream) noexcept {
  TrtrepoDType dtype{};
  int64_t rows = 0;
  int64_t cols = 0;
  if (!toTrtrepoDType(inputDesc[0].type, dtype) || !rowsCols(inputDesc[0].dims, rows, cols)) {
    logError("TrtrepoFusedAddRmsNorm: unsupported dtype or shape of x");
    return -1;
  }
  if (inputDesc[2].dims.nbDims != 1 || inputDesc[2].dims.d[0] != cols) {
    logError("TrtrepoFusedAddRmsNorm: weight must have shape [cols]");
    return -1;
  }
  if (rows == 0) return 0;
  cudaError_t const status = trtrepo_fused_add_rms_norm_launch(inputs[0], inputs[1], inputs[2], outputs[0],
                                                               outputs[1], rows, cols, mEps, dtype, stream);
  if (status != cudaSuccess) {
    logError(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

}  // namespace trt
}  // namespace trtrepo

TRTREPO_REGISTER_PLUGIN(trtrepo::trt::FusedAddRmsNormPlugin)
