// TensorRT IPluginV3 for trtrepo::fused_add_rms_norm (creator TrtrepoFusedAddRmsNorm v1, namespace trtrepo).
// Inputs x, residual [..., cols], weight [cols]; outputs out and residual_out like x; field eps (FLOAT32).
// Calls trtrepo_fused_add_rms_norm_launch.
#pragma once

#include <NvInferRuntime.h>

#include <vector>

#include "../common/trt_plugin_base.h"

namespace trtrepo {
namespace trt {

class FusedAddRmsNormPlugin : public PluginBase<FusedAddRmsNormPlugin> {
 public:
  static constexpr char const* kName = "TrtrepoFusedAddRmsNorm";
  static constexpr char const* kVersion = "1";
  static constexpr int32_t kNbInputs = 3;
  static constexpr int32_t kNbOutputs = 2;
  static constexpr float kDefaultEps = 1.0e-6F;  // op.yaml attributes.eps.default

  explicit FusedAddRmsNormPlugin(float eps) noexcept : mEps(eps) {}

  static int32_t likeInput(int32_t output) noexcept;
  static void fieldNames(std::vector<nvinfer1::PluginField>& fields);
  static FusedAddRmsNormPlugin* create(nvinfer1::PluginFieldCollection const* fc) noexcept;

  void collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept;
  int32_t launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
                 cudaStream_t stream) noexcept;

 private:
  float mEps;
};

using FusedAddRmsNormPluginCreator = CreatorBase<FusedAddRmsNormPlugin>;

}  // namespace trt
}  // namespace trtrepo
