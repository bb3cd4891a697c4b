// Registration of every trtrepo TensorRT plugin creator, two ways:
//  * static: when the library is dlopen'ed (tritonserver --backend-config=tensorrt,plugins=..., LD_PRELOAD,
//    ctypes.CDLL) each creator registers itself under its own namespace. TensorRT's REGISTER_TENSORRT_PLUGIN macro
//    is not used because it registers under namespace "" (NvInferRuntime.h: registerCreator(instance, "")), and
//    the plans look creators up under "trtrepo".
//  * exported getCreators / setLoggerFinder: for IPluginRegistry::loadLibrary (trtexec --dynamicPlugins,
//    plugins serialized into version-compatible plans). Loading one library both ways registers each creator
//    twice; TensorRT logs the second and keeps the first.
#include <NvInferRuntime.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "../bias_gelu/bias_gelu_plugin.h"
#include "../fused_add_rms_norm/fused_add_rms_norm_plugin.h"
#include "trt_plugin_base.h"

namespace trtrepo {
namespace trt {
namespace {

nvinfer1::ILoggerFinder* gLoggerFinder = nullptr;
std::mutex gLoggerMutex;

// One instance per creator for the life of the library; TensorRT holds pointers to them.
BiasGeluPluginCreator gBiasGeluCreator;
FusedAddRmsNormPluginCreator gFusedAddRmsNormCreator;
nvinfer1::IPluginCreatorInterface* const gCreators[] = {&gBiasGeluCreator, &gFusedAddRmsNormCreator};

struct StaticRegistration {
  StaticRegistration() noexcept {
    nvinfer1::IPluginRegistry* registry = getPluginRegistry();
    if (registry == nullptr) return;
    for (nvinfer1::IPluginCreatorInterface* creator : gCreators) {
      auto* v3 = static_cast<nvinfer1::IPluginCreatorV3One*>(creator);
      if (!registry->registerCreator(*creator, v3->getPluginNamespace())) {
        std::fprintf(stderr, "trtrepo plugins: %s::%s v%s was already registered\n", v3->getPluginNamespace(),
                     v3->getPluginName(), v3->getPluginVersion());
      }
    }
  }
};
StaticRegistration gStaticRegistration;

}  // namespace

void logError(char const* message) noexcept {
  std::lock_guard<std::mutex> lock(gLoggerMutex);
  nvinfer1::ILogger* logger = gLoggerFinder != nullptr ? gLoggerFinder->findLogger() : nullptr;
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, message);
  } else {
    std::fprintf(stderr, "[trtrepo plugins] %s\n", message);
  }
}

bool readFloatField(nvinfer1::PluginFieldCollection const* fc, char const* name, float& out) noexcept {
  if (fc == nullptr) return true;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& field = fc->fields[i];
    if (field.name == nullptr || std::strcmp(field.name, name) != 0) continue;
    if (field.data == nullptr || field.length != 1) return false;
    if (field.type == nvinfer1::PluginFieldType::kFLOAT32) {
      out = *static_cast<float const*>(field.data);
      return true;
    }
    if (field.type == nvinfer1::PluginFieldType::kFLOAT64) {
      out = static_cast<float>(*static_cast<double const*>(field.data));
      return true;
    }
    return false;
  }
  return true;
}

}  // namespace trt
}  // namespace trtrepo

extern "C" TENSORRTAPI nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  nbCreators = static_cast<int32_t>(sizeof(trtrepo::trt::gCreators) / sizeof(trtrepo::trt::gCreators[0]));
  return trtrepo::trt::gCreators;
}

extern "C" TENSORRTAPI void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  std::lock_guard<std::mutex> lock(trtrepo::trt::gLoggerMutex);
  trtrepo::trt::gLoggerFinder = finder;
}
