// Shared TensorRT IPluginV3 machinery for every trtrepo op plugin: one plugin object implements IPluginV3 and its
// three capabilities (OneCore / OneBuild / OneRuntime), one creator implements IPluginCreatorV3One. An op plugin
// (plugin_src/<op>/<op>_plugin.h) supplies only its identity, its fields and the call into its kernel launcher.
// Checked against NVIDIA/TensorRT include/NvInferRuntime.h and NvInferPluginBase.h (TensorRT 10.x / 11.x).
// Nothing here throws across the TensorRT boundary: every override is noexcept and catches what it calls.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <vector>

#include "trtrepo_dtype.h"

namespace trtrepo {
namespace trt {

// Namespace of every creator: the op namespace of op.yaml (trtrepo::bias_gelu → "trtrepo").
constexpr char const* kPluginNamespace = "trtrepo";

// Logs through the ILoggerFinder TensorRT hands the library (setLoggerFinder), or stderr before that.
void logError(char const* message) noexcept;

inline bool toTrtrepoDType(nvinfer1::DataType type, TrtrepoDType& out) noexcept {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: out = kTrtrepoF32; return true;
    case nvinfer1::DataType::kHALF: out = kTrtrepoF16; return true;
    case nvinfer1::DataType::kBF16: out = kTrtrepoBF16; return true;
    default: return false;
  }
}

// rows = product of all dims but the last, cols = last dim (the launchers' contract). False for rank 0 or a
// negative (unresolved) dim.
inline bool rowsCols(nvinfer1::Dims const& dims, int64_t& rows, int64_t& cols) noexcept {
  if (dims.nbDims < 1) return false;
  rows = 1;
  for (int32_t i = 0; i + 1 < dims.nbDims; ++i) {
    if (dims.d[i] < 0) return false;
    rows *= dims.d[i];
  }
  cols = dims.d[dims.nbDims - 1];
  return cols >= 0;
}

// A float attribute from a field collection: FLOAT32 or FLOAT64, one value. Absent → `out` unchanged, true.
bool readFloatField(nvinfer1::PluginFieldCollection const* fc, char const* name, float& out) noexcept;

// Derived supplies:
//   static constexpr char const* kName, kVersion;  static constexpr int32_t kNbInputs, kNbOutputs;
//   static int32_t likeInput(int32_t output) noexcept;        // output i has the shape and dtype of this input
//   void collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept;   // attributes to serialize
//   int32_t launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
//                  cudaStream_t stream) noexcept;                                // 0 on success
template <typename Derived>
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  PluginBase() = default;
  PluginBase(PluginBase const& other) : IPluginV3(), IPluginV3OneCore(), IPluginV3OneBuild(), IPluginV3OneRuntime() {
    (void)other;  // fields are rebuilt from the derived members on demand
  }
  PluginBase& operator=(PluginBase const&) = delete;
  ~PluginBase() override = default;

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new Derived(static_cast<Derived const&>(*this));
    } catch (...) {
      logError("trtrepo plugin: clone failed (out of memory)");
      return nullptr;
    }
  }

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return Derived::kName; }
  char const* getPluginVersion() const noexcept override { return Derived::kVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override {
    (void)in;
    (void)out;
    return (nbInputs == Derived::kNbInputs && nbOutputs == Derived::kNbOutputs) ? 0 : -1;
  }

  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (nbInputs != Derived::kNbInputs || nbOutputs != Derived::kNbOutputs) return -1;
    for (int32_t i = 0; i < nbOutputs; ++i) outputTypes[i] = inputTypes[Derived::likeInput(i)];
    return 0;
  }

  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override {
    (void)shapeInputs;
    (void)nbShapeInputs;
    (void)exprBuilder;
    if (nbInputs != Derived::kNbInputs || nbOutputs != Derived::kNbOutputs) return -1;
    for (int32_t i = 0; i < nbOutputs; ++i) outputs[i] = inputs[Derived::likeInput(i)];
    return 0;
  }

  // Linear fp32/fp16/bf16, every tensor in the dtype of input 0 (the kernels take one element type).
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    TrtrepoDType dtype{};
    if (desc.format != nvinfer1::TensorFormat::kLINEAR || !toTrtrepoDType(desc.type, dtype)) return false;
    return pos == 0 || desc.type == inOut[0].desc.type;
  }

  int32_t getNbOutputs() const noexcept override { return Derived::kNbOutputs; }

  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override {
    (void)inputs;
    (void)nbInputs;
    (void)outputs;
    (void)nbOutputs;
    return 0;
  }

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override {
    (void)in;
    (void)out;
    return (nbInputs == Derived::kNbInputs && nbOutputs == Derived::kNbOutputs) ? 0 : -1;
  }

  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override {
    (void)outputDesc;
    (void)workspace;
    return static_cast<Derived*>(this)->launch(inputDesc, inputs, outputs, stream);
  }

  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override {
    (void)context;  // no per-context resources
    return clone();
  }

  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    mFields.clear();
    static_cast<Derived*>(this)->collectFields(mFields);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
    return &mFieldCollection;
  }

 private:
  std::vector<nvinfer1::PluginField> mFields;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

// Plugin supplies kName, kVersion, static void fieldNames(std::vector<nvinfer1::PluginField>&) and
// static Plugin* create(nvinfer1::PluginFieldCollection const* fc) noexcept (nullptr on invalid fields).
template <typename Plugin>
class CreatorBase : public nvinfer1::IPluginCreatorV3One {
 public:
  CreatorBase() {
    Plugin::fieldNames(mFieldNames);
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
  }

  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override {
    (void)name;
    (void)phase;  // the same object serves build and runtime: fields are identical in both phases
    return Plugin::create(fc);
  }

  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &mFieldCollection; }
  char const* getPluginName() const noexcept override { return Plugin::kName; }
  char const* getPluginVersion() const noexcept override { return Plugin::kVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

 private:
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace trt
}  // namespace trtrepo
