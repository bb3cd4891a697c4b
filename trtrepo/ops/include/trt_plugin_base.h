// Shared TensorRT IPluginV3 machinery for every trtrepo op plugin (ships with trtrepo; on every plugin build's
// include path). One plugin object implements IPluginV3 and its three capabilities (OneCore / OneBuild / OneRuntime),
// one creator implements IPluginCreatorV3One. What op.yaml says — creator name, version and namespace, the number of
// inputs and outputs, the dtypes, the output shape and dtype rules — comes from the `Rules` class trtrepo generates
// per op (`op_rules.h`, namespace alias `trtrepo_this_op`); an op's plugin supplies only its fields and the call into
// its kernel launcher:
//
//   #include "op_rules.h"
//   class MyPlugin : public trtrepo::trt::PluginBase<MyPlugin, trtrepo_this_op::Rules> {
//     static void fieldNames(std::vector<nvinfer1::PluginField>& fields);            // the creator's field names
//     static MyPlugin* create(nvinfer1::PluginFieldCollection const* fc) noexcept;   // nullptr on invalid fields
//     void collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept;       // attributes to serialize
//     int32_t launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
//                    cudaStream_t stream) noexcept;                                  // 0 on success
//   };
//   TRTREPO_REGISTER_PLUGIN(MyPlugin)   // once, in the plugin's .cpp
//
// Checked against NVIDIA/TensorRT include/NvInferRuntime.h and NvInferPluginBase.h (TensorRT 10.x / 11.x).
// Nothing here throws across the TensorRT boundary: every override is noexcept and catches what it calls.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "trtrepo_dtype.h"
#include "trtrepo_gen.h"

namespace trtrepo {
namespace trt {

// ------------------------------------------------------------------------------------------------------- logging
// Set by the library's exported setLoggerFinder (TensorRT calls it when it loads the library); stderr before that.
inline nvinfer1::ILoggerFinder* gLoggerFinder = nullptr;
inline std::mutex gLoggerMutex;

inline void logError(char const* message) noexcept {
  std::lock_guard<std::mutex> lock(gLoggerMutex);
  nvinfer1::ILogger* logger = gLoggerFinder != nullptr ? gLoggerFinder->findLogger() : nullptr;
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, message);
  } else {
    std::fprintf(stderr, "[trtrepo plugins] %s\n", message);
  }
}

// ------------------------------------------------------------------------------------------------------- dtypes
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
inline bool readFloatField(nvinfer1::PluginFieldCollection const* fc, char const* name, float& out) noexcept {
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

// Whether a field collection holds `name`.
inline bool hasField(nvinfer1::PluginFieldCollection const* fc, char const* name) noexcept {
  if (fc == nullptr) return false;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    if (fc->fields[i].name != nullptr && std::strcmp(fc->fields[i].name, name) == 0) return true;
  }
  return false;
}

// An int attribute from a field collection: INT32 or INT64 (in int32 range), one value. Absent → `out` unchanged.
inline bool readIntField(nvinfer1::PluginFieldCollection const* fc, char const* name, int32_t& out) noexcept {
  if (fc == nullptr) return true;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& field = fc->fields[i];
    if (field.name == nullptr || std::strcmp(field.name, name) != 0) continue;
    if (field.data == nullptr || field.length != 1) return false;
    if (field.type == nvinfer1::PluginFieldType::kINT32) {
      out = *static_cast<int32_t const*>(field.data);
      return true;
    }
    if (field.type == nvinfer1::PluginFieldType::kINT64) {
      int64_t const v = *static_cast<int64_t const*>(field.data);
      if (v < INT32_MIN || v > INT32_MAX) return false;
      out = static_cast<int32_t>(v);
      return true;
    }
    return false;
  }
  return true;
}

// ------------------------------------------------------------------------------------- shape rules (IExprBuilder)
// The generated getOutputShapes of op_rules.h evaluates op.yaml's shape rule over these: an input's dims as a list,
// an element (negative indices count from the end), a slice (Python semantics), a join, the product.
using DimList = std::vector<nvinfer1::IDimensionExpr const*>;
constexpr int64_t kNoBound = trtrepo_gen::kNoBound;

inline DimList dims(nvinfer1::DimsExprs const& e) { return DimList(e.d, e.d + (e.nbDims > 0 ? e.nbDims : 0)); }

inline nvinfer1::IDimensionExpr const* dimAt(DimList const& l, int64_t i) {
  int64_t const n = static_cast<int64_t>(l.size());
  if (i < 0) i += n;
  return (i >= 0 && i < n) ? l[static_cast<size_t>(i)] : nullptr;
}

inline DimList dimSlice(DimList const& l, int64_t lo, int64_t hi) { return trtrepo_gen::slice_of(l, lo, hi); }

inline DimList dimConcat(DimList a, DimList const& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline nvinfer1::IDimensionExpr const* dimNumel(DimList const& l, nvinfer1::IExprBuilder& b) {
  nvinfer1::IDimensionExpr const* out = b.constant(1);
  for (auto const* d : l) out = b.operation(nvinfer1::DimensionOperation::kPROD, *out, *d);
  return out;
}

inline bool toDimsExprs(DimList const& l, nvinfer1::DimsExprs& out) noexcept {
  if (l.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS)) return false;
  out.nbDims = static_cast<int32_t>(l.size());
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i] == nullptr) return false;
    out.d[i] = l[i];
  }
  return true;
}

// ------------------------------------------------------------------------------------------------------- plugin
template <typename Derived, typename Rules>
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

  // IPluginV3OneCore: identity from op.yaml
  char const* getPluginName() const noexcept override { return Rules::kName; }
  char const* getPluginVersion() const noexcept override { return Rules::kVersion; }
  char const* getPluginNamespace() const noexcept override { return Rules::kNamespace; }

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override {
    (void)in;
    (void)out;
    return (nbInputs == Rules::kNbInputs && nbOutputs == Rules::kNbOutputs) ? 0 : -1;
  }

  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (nbInputs != Rules::kNbInputs || nbOutputs != Rules::kNbOutputs) return -1;
    return Rules::outputTypes(inputTypes, outputTypes);
  }

  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override {
    (void)shapeInputs;
    (void)nbShapeInputs;
    if (nbInputs != Rules::kNbInputs || nbOutputs != Rules::kNbOutputs) return -1;
    try {
      return Rules::outputShapes(static_cast<Derived const&>(*this), inputs, outputs, exprBuilder);
    } catch (...) {
      logError("trtrepo plugin: getOutputShapes failed (out of memory)");
      return -1;
    }
  }

  // Linear layout; every input in a dtype op.yaml lists and in the dtype of input 0 (the kernels take one element
  // type); each output in the dtype its op.yaml rule gives for those inputs (an input's, or a fixed one). TensorRT
  // asks in increasing pos, so the inputs' types are settled when an output is asked about.
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
    if (nbInputs != Rules::kNbInputs || nbOutputs != Rules::kNbOutputs) return false;
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR) return false;
    if (pos < nbInputs) return Rules::supportsType(desc.type) && (pos == 0 || desc.type == inOut[0].desc.type);
    nvinfer1::DataType in[Rules::kNbInputs];
    nvinfer1::DataType out[Rules::kNbOutputs];
    for (int32_t i = 0; i < Rules::kNbInputs; ++i) in[i] = inOut[i].desc.type;
    if (Rules::outputTypes(in, out) != 0) return false;
    return desc.type == out[pos - nbInputs];
  }

  int32_t getNbOutputs() const noexcept override { return Rules::kNbOutputs; }

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
    return (nbInputs == Rules::kNbInputs && nbOutputs == Rules::kNbOutputs) ? 0 : -1;
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

// ------------------------------------------------------------------------------------------------------ creator
template <typename Plugin, typename Rules>
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
  char const* getPluginName() const noexcept override { return Rules::kName; }
  char const* getPluginVersion() const noexcept override { return Rules::kVersion; }
  char const* getPluginNamespace() const noexcept override { return Rules::kNamespace; }

 private:
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace trt
}  // namespace trtrepo
