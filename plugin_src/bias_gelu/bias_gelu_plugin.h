// TensorRT IPluginV3 for trtrepo::bias_gelu (creator TrtrepoBiasGelu v1, namespace trtrepo — op.yaml plugin).
// Inputs x [..., cols] and bias [cols]; output like x. No attributes. Calls trtrepo_bias_gelu_launch.
#pragma once

#include <NvInferRuntime.h>

#include <vector>

#include "../common/trt_plugin_base.h"

namespace trtrepo {
namespace trt {

class BiasGeluPlugin : public PluginBase<BiasGeluPlugin> {
 public:
  static constexpr char const* kName = "TrtrepoBiasGelu";
  static constexpr char const* kVersion = "1";
  static constexpr int32_t kNbInputs = 2;
  static constexpr int32_t kNbOutputs = 1;

  static int32_t likeInput(int32_t output) noexcept;
  static void fieldNames(std::vector<nvinfer1::PluginField>& fields);
  static BiasGeluPlugin* create(nvinfer1::PluginFieldCollection const* fc) noexcept;

  void collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept;
  int32_t launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
                 cudaStream_t stream) noexcept;
};

using BiasGeluPluginCreator = CreatorBase<BiasGeluPlugin>;

}  // namespace trt
}  // namespace trtrepo
