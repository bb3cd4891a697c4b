// trtrepo's TensorRT plugin conformance host: drives a plugin library through its IPluginV3 interface the way
// TensorRT does, without TensorRT. Built by trtrepo.conformance.host (trtrepo's own build steps) against the same
// TensorRT headers as the library; links no libnvinfer.
//
//   trtrepo_conformance_host --cases CASES --records RECORDS [--enqueue [--no-stream-gate]]
//   trtrepo_conformance_host --expr-selftest OPS --records RECORDS
//
// The library is loaded with dlopen only; its creators are found through the exported getCreators (and through the
// static registration the library makes with this executable's getPluginRegistry). Per case: the creator from the
// registry, createPlugin(BUILD) from the field collection a Torch-TensorRT converter builds, then in TensorRT's order
// getNbOutputs, getOutputDataTypes, getOutputShapes (the host's IExprBuilder, host_expr.h), supportsFormatCombination
// over every dtype x format, configurePlugin, getWorkspaceSize, getFieldsToSerialize -> createPlugin(RUNTIME), clone,
// attachToContext, onShapeChange and, with --enqueue, enqueue on device buffers on a non-blocking stream (held shut
// by a host function until enqueue returned, unless --no-stream-gate: compute-sanitizer may serialize launches). Every
// observation is one JSON line in RECORDS; trtrepo.conformance.host judges them. The exit status is 0 when the host
// ran to the end (whatever the plugin did), 2 for a malformed case file, 3 when the library does not load.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host_expr.h"
#include "host_json.h"
#include "host_runtime.h"

namespace trtrepo_conformance {

HostRegistry& hostRegistry() {
  static HostRegistry registry;
  return registry;
}

}  // namespace trtrepo_conformance

// What a plugin library's static registration looks up with dlsym(RTLD_DEFAULT) (exported: -rdynamic).
extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return &trtrepo_conformance::hostRegistry(); }

namespace trtrepo_conformance {
namespace {

using nvinfer1::DataType;
using nvinfer1::PluginFieldType;
using nvinfer1::TensorFormat;

constexpr size_t kPad = 256;             // guard bytes before and after every device buffer
constexpr unsigned char kGuard = 0xA5;   // guard byte
constexpr unsigned char kPoison = 0xFF;  // unwritten output bytes (NaN in fp32, fp16 and bf16)
constexpr int kGateTimeoutMs = 20000;

struct Field {
  std::string name;
  int32_t type = 0;
  std::vector<float> f32;
  std::vector<double> f64;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  int32_t length = 0;
};

struct Tensor {
  std::vector<int64_t> dims;
  std::string staticMask;  // '1' per static dim
  std::string path;        // raw bytes ("-": none)
};

struct Case {
  std::string id, name, version, ns;
  int32_t nbInputs = 0, nbOutputs = 0;
  int32_t dtype = 0;
  std::vector<Field> fields;
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;  // paths the enqueued outputs are written to
  bool misalign = false;
  std::string probe;  // "wrongtype <field>": createPlugin must refuse that float field given as INT32
};

struct Plan {
  std::string library;
  std::vector<Case> cases;
};

[[noreturn]] void malformed(int line, std::string const& why) {
  std::fprintf(stderr, "conformance host: case file line %d: %s\n", line, why.c_str());
  std::exit(2);
}

Field parseField(std::istringstream& in, int line) {
  Field f;
  int32_t count = 0;
  if (!(in >> f.name >> f.type >> count) || count < 0) malformed(line, "field NAME TYPE COUNT VALUES...");
  f.length = count;
  for (int32_t i = 0; i < count; ++i) {
    std::string v;
    if (!(in >> v)) malformed(line, "field: fewer values than COUNT");
    // Floats travel as their bit patterns (hex): exact, subnormals included.
    try {
      switch (static_cast<PluginFieldType>(f.type)) {
        case PluginFieldType::kFLOAT32: {
          auto const bits = static_cast<uint32_t>(std::stoul(v, nullptr, 16));
          float x = 0.0F;
          std::memcpy(&x, &bits, sizeof(x));
          f.f32.push_back(x);
          break;
        }
        case PluginFieldType::kFLOAT64: {
          auto const bits = static_cast<uint64_t>(std::stoull(v, nullptr, 16));
          double x = 0.0;
          std::memcpy(&x, &bits, sizeof(x));
          f.f64.push_back(x);
          break;
        }
        case PluginFieldType::kINT32: f.i32.push_back(static_cast<int32_t>(std::stol(v))); break;
        case PluginFieldType::kINT64: f.i64.push_back(std::stoll(v)); break;
        default: malformed(line, "field: types FLOAT32, FLOAT64, INT32, INT64 only");
      }
    } catch (std::exception const&) {
      malformed(line, "field: value " + v + " does not parse");
    }
  }
  return f;
}

Plan parsePlan(char const* path) {
  std::ifstream file(path);
  if (!file) malformed(0, std::string("cannot read ") + path);
  Plan plan;
  std::string text;
  int line = 0;
  Case* current = nullptr;
  while (std::getline(file, text)) {
    ++line;
    std::istringstream in(text);
    std::string key;
    if (!(in >> key) || key[0] == '#') continue;
    if (key == "library") {
      in >> plan.library;
    } else if (key == "case") {
      plan.cases.emplace_back();
      current = &plan.cases.back();
      if (!(in >> current->id >> current->name >> current->version >> current->ns >> current->nbInputs >>
            current->nbOutputs)) {
        malformed(line, "case ID NAME VERSION NAMESPACE NB_INPUTS NB_OUTPUTS");
      }
      if (current->ns == "-") current->ns.clear();
    } else if (current == nullptr) {
      malformed(line, key + " outside a case");
    } else if (key == "dtype") {
      in >> current->dtype;
    } else if (key == "field") {
      current->fields.push_back(parseField(in, line));
    } else if (key == "input") {
      Tensor t;
      int32_t rank = 0;
      if (!(in >> rank) || rank < 0 || rank > nvinfer1::Dims::MAX_DIMS) malformed(line, "input RANK DIMS MASK PATH");
      t.dims.resize(static_cast<size_t>(rank));
      for (auto& d : t.dims) {
        if (!(in >> d)) malformed(line, "input: fewer dims than RANK");
      }
      if (!(in >> t.staticMask >> t.path)) malformed(line, "input: a static mask and a path");
      if (t.staticMask == "-") t.staticMask.clear();  // rank 0
      if (t.staticMask.size() != static_cast<size_t>(rank)) {
        malformed(line, "input: a static mask of RANK characters and a path");
      }
      current->inputs.push_back(t);
    } else if (key == "output") {
      std::string p;
      in >> p;
      current->outputs.push_back(p);
    } else if (key == "misalign") {
      int v = 0;
      in >> v;
      current->misalign = v != 0;
    } else if (key == "probe") {
      std::string kind, field;
      in >> kind >> field;
      current->probe = field;
    } else if (key == "end") {
      current = nullptr;
    } else {
      malformed(line, "unknown key " + key);
    }
  }
  return plan;
}

// ------------------------------------------------------------------------------------------------------ helpers
std::vector<nvinfer1::PluginField> toPluginFields(std::vector<Field> const& fields) {
  std::vector<nvinfer1::PluginField> out;
  for (auto const& f : fields) {
    void const* data = nullptr;
    switch (static_cast<PluginFieldType>(f.type)) {
      case PluginFieldType::kFLOAT32: data = f.f32.data(); break;
      case PluginFieldType::kFLOAT64: data = f.f64.data(); break;
      case PluginFieldType::kINT32: data = f.i32.data(); break;
      case PluginFieldType::kINT64: data = f.i64.data(); break;
      default: break;
    }
    out.emplace_back(f.name.c_str(), data, static_cast<PluginFieldType>(f.type), f.length);
  }
  return out;
}

// A field collection as JSON: name, type, length and the values (floats also as their bits).
std::string fieldsJson(nvinfer1::PluginFieldCollection const* fc) {
  if (fc == nullptr) return "null";
  std::string out = "[";
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    Json j;
    j.str("name", f.name).num("type", static_cast<int32_t>(f.type)).num("length", f.length);
    std::string values = "[";
    std::string bits = "[";
    for (int32_t k = 0; f.data != nullptr && k < f.length; ++k) {
      std::string const sep = k ? ", " : "";
      switch (f.type) {
        case PluginFieldType::kFLOAT32: {
          float const v = static_cast<float const*>(f.data)[k];
          uint32_t b = 0;
          std::memcpy(&b, &v, sizeof(b));
          values += sep + number(static_cast<double>(v));
          bits += sep + number(static_cast<int64_t>(b));
          break;
        }
        case PluginFieldType::kFLOAT64: values += sep + number(static_cast<double const*>(f.data)[k]); break;
        case PluginFieldType::kINT32:
          values += sep + number(static_cast<int64_t>(static_cast<int32_t const*>(f.data)[k]));
          break;
        case PluginFieldType::kINT64: values += sep + number(static_cast<int64_t const*>(f.data)[k]); break;
        case PluginFieldType::kINT8:
          values += sep + number(static_cast<int64_t>(static_cast<int8_t const*>(f.data)[k]));
          break;
        case PluginFieldType::kINT16:
          values += sep + number(static_cast<int64_t>(static_cast<int16_t const*>(f.data)[k]));
          break;
        default: values += sep + "null"; break;
      }
    }
    j.raw("values", values + "]").raw("bits", bits + "]").flag("data", f.data != nullptr);
    out += (i ? ", " : "") + j.text();
  }
  return out + "]";
}

std::string interfaceJson(nvinfer1::IVersionedInterface const* v) {
  if (v == nullptr) return "null";
  nvinfer1::InterfaceInfo const info = v->getInterfaceInfo();
  return "[" + quote(info.kind != nullptr ? info.kind : "") + ", " + number(static_cast<int64_t>(info.major)) + ", " +
         number(static_cast<int64_t>(info.minor)) + "]";
}

bool kindIs(nvinfer1::IVersionedInterface const* v, char const* kind) {
  if (v == nullptr) return false;
  nvinfer1::InterfaceInfo const info = v->getInterfaceInfo();
  return info.kind != nullptr && std::strcmp(info.kind, kind) == 0 && info.major == 1;
}

struct Capabilities {
  nvinfer1::IPluginV3OneCore* core = nullptr;
  nvinfer1::IPluginV3OneBuild* build = nullptr;
  nvinfer1::IPluginV3OneRuntime* runtime = nullptr;
};

// The capability interfaces, accepted only when they name themselves as the V3One versions (TensorRT's check).
Capabilities capabilities(nvinfer1::IPluginV3* p) {
  Capabilities c;
  auto* core = p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE);
  auto* build = p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD);
  auto* runtime = p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME);
  if (kindIs(core, "PLUGIN_V3ONE_CORE")) c.core = static_cast<nvinfer1::IPluginV3OneCore*>(core);
  if (kindIs(build, "PLUGIN_V3ONE_BUILD")) c.build = static_cast<nvinfer1::IPluginV3OneBuild*>(build);
  if (kindIs(runtime, "PLUGIN_V3ONE_RUNTIME")) c.runtime = static_cast<nvinfer1::IPluginV3OneRuntime*>(runtime);
  return c;
}

std::string identityJson(nvinfer1::IPluginV3OneCore const* core) {
  if (core == nullptr) return "null";
  auto s = [](char const* v) { return quote(v != nullptr ? v : ""); };
  return "[" + s(core->getPluginName()) + ", " + s(core->getPluginVersion()) + ", " + s(core->getPluginNamespace()) +
         "]";
}

nvinfer1::Dims toDims(std::vector<int64_t> const& dims, std::string const* mask = nullptr) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    d.d[i] = (mask != nullptr && (*mask)[i] != '1') ? -1 : dims[i];
  }
  return d;
}

int64_t numel(std::vector<int64_t> const& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

size_t elementSize(int32_t dtype) {
  switch (static_cast<DataType>(dtype)) {
    case DataType::kFLOAT: return 4;
    case DataType::kHALF: return 2;
    case DataType::kBF16: return 2;
    default: return 0;
  }
}

std::string dimsJson(std::vector<std::vector<int64_t>> const& shapes) {
  return list(shapes, [](std::vector<int64_t> const& s) { return list(s, [](int64_t v) { return number(v); }); });
}

class Runner {
 public:
  Runner(Records& records, HostLoggerFinder& finder, bool enqueue, bool gate)
      : mRecords(records), mFinder(finder), mEnqueue(enqueue), mGate(gate) {}

  void run(Case const& c, std::vector<nvinfer1::IPluginCreatorInterface*> const& exported) {
    mCase = &c;
    runCase(c, exported);
    flushLog();
  }

  void flushLog() {
    for (auto const& m : mFinder.logger.messages) {
      mRecords.emit(Json().str("event", "log").str("case", mCase != nullptr ? mCase->id : "").num("severity",
                                                                                                   m.severity)
                        .str("message", m.text));
    }
    mFinder.logger.messages.clear();
  }

 private:
  Json event(char const* name) const { return Json().str("event", name).str("case", mCase->id); }

  void runCase(Case const& c, std::vector<nvinfer1::IPluginCreatorInterface*> const& exported) {
    auto* found = hostRegistry().getCreator(c.name.c_str(), c.version.c_str(), c.ns.c_str());
    bool inExported = false;
    for (auto* e : exported) inExported = inExported || e == found;
    Json creator = event("creator");
    creator.flag("found", found != nullptr).flag("exported", inExported).raw("interface", interfaceJson(found));
    if (found == nullptr || !identify(*found).v3one) {
      mRecords.emit(creator);
      return;
    }
    auto* v3 = static_cast<nvinfer1::IPluginCreatorV3One*>(found);
    creator.raw("field_names", fieldsJson(v3->getFieldNames()));
    mRecords.emit(creator);

    // The converter's field collection: one field per attribute (trtrepo.tensorrt.opfacts.plugin_fields).
    std::vector<nvinfer1::PluginField> fields = toPluginFields(c.fields);
    nvinfer1::PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    std::string const layer = "conformance_" + c.id;
    nvinfer1::IPluginV3* plugin = v3->createPlugin(layer.c_str(), &fc, nvinfer1::TensorRTPhase::kBUILD);
    mRecords.emit(event("create").str("phase", "BUILD").flag("ok", plugin != nullptr));
    if (!c.probe.empty()) probe(c, *v3);
    if (plugin == nullptr) return;
    Capabilities caps = capabilities(plugin);
    mRecords.emit(event("capabilities").raw("plugin", interfaceJson(plugin))
                      .raw("core", interfaceJson(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE)))
                      .raw("build", interfaceJson(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD)))
                      .raw("runtime",
                           interfaceJson(plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME)))
                      .raw("identity", identityJson(caps.core)));
    if (caps.core == nullptr || caps.build == nullptr || caps.runtime == nullptr) {
      delete plugin;
      return;
    }
    buildPhase(c, caps, *v3, layer, plugin);
    delete plugin;
  }

  // createPlugin must refuse a float attribute given as an INT32 field, and say why through the logger.
  void probe(Case const& c, nvinfer1::IPluginCreatorV3One& creator) {
    std::vector<Field> bad = c.fields;
    for (auto& f : bad) {
      if (f.name == c.probe) {
        f.type = static_cast<int32_t>(PluginFieldType::kINT32);
        f.i32.assign(static_cast<size_t>(f.length), 1);
      }
    }
    size_t const before = mFinder.logger.messages.size();
    std::vector<nvinfer1::PluginField> fields = toPluginFields(bad);
    nvinfer1::PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    nvinfer1::IPluginV3* p = creator.createPlugin("conformance_probe", &fc, nvinfer1::TensorRTPhase::kBUILD);
    mRecords.emit(event("probe").str("field", c.probe).flag("refused", p == nullptr)
                      .num("logged", static_cast<int64_t>(mFinder.logger.messages.size() - before)));
    delete p;
  }

  void buildPhase(Case const& c, Capabilities const& caps, nvinfer1::IPluginCreatorV3One& creator,
                  std::string const& layer, nvinfer1::IPluginV3* plugin) {
    int32_t const nIn = static_cast<int32_t>(c.inputs.size());
    int32_t const nbOutputs = caps.build->getNbOutputs();
    mRecords.emit(event("nb_outputs").num("value", nbOutputs));
    if (nbOutputs < 0 || nbOutputs > 64) return;
    auto const nOut = static_cast<size_t>(nbOutputs);

    std::vector<DataType> inTypes(c.inputs.size(), static_cast<DataType>(c.dtype));
    std::vector<DataType> outTypes(nOut, DataType::kINT8);  // a type no op here produces: an unset output shows
    int32_t const typesRc = caps.build->getOutputDataTypes(outTypes.data(), nbOutputs, inTypes.data(), nIn);
    mRecords.emit(event("output_types").num("rc", typesRc).raw("types", list(outTypes, [](DataType t) {
      return number(static_cast<int64_t>(t));
    })));

    std::vector<std::vector<int64_t>> outShapes;
    bool const shapesOk = outputShapes(c, caps, nOut, true, &outShapes) && outputShapes(c, caps, nOut, false, nullptr);

    formats(c, caps, nOut);

    std::vector<nvinfer1::DynamicPluginTensorDesc> inDyn(c.inputs.size());
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      inDyn[i].desc.dims = toDims(c.inputs[i].dims, &c.inputs[i].staticMask);
      inDyn[i].desc.type = static_cast<DataType>(c.dtype);
      inDyn[i].desc.format = TensorFormat::kLINEAR;
      inDyn[i].desc.scale = 1.0F;
      inDyn[i].min = inDyn[i].max = inDyn[i].opt = toDims(c.inputs[i].dims);
    }
    std::vector<nvinfer1::DynamicPluginTensorDesc> outDyn(nOut);
    for (size_t i = 0; i < nOut && shapesOk; ++i) {
      outDyn[i].desc.dims = toDims(outShapes[i]);
      outDyn[i].desc.type = outTypes[i];
      outDyn[i].desc.format = TensorFormat::kLINEAR;
      outDyn[i].desc.scale = 1.0F;
      outDyn[i].min = outDyn[i].max = outDyn[i].opt = toDims(outShapes[i]);
    }
    int32_t const configRc = caps.build->configurePlugin(inDyn.data(), nIn, outDyn.data(), nbOutputs);
    size_t const workspace = caps.build->getWorkspaceSize(inDyn.data(), nIn, outDyn.data(), nbOutputs);
    mRecords.emit(event("configure").num("rc", configRc).num("workspace", static_cast<int64_t>(workspace)));

    // Serialization round trip: the fields a plan would hold, then the runtime instance made from them.
    nvinfer1::PluginFieldCollection const* serialized = caps.runtime->getFieldsToSerialize();
    std::string const buildFields = fieldsJson(serialized);
    nvinfer1::IPluginV3* runtime = creator.createPlugin(layer.c_str(), serialized, nvinfer1::TensorRTPhase::kRUNTIME);
    Json rt = event("runtime").raw("serialized", buildFields).flag("ok", runtime != nullptr);
    if (runtime == nullptr) {
      mRecords.emit(rt);
      return;
    }
    Capabilities const rtCaps = capabilities(runtime);
    rt.raw("identity", identityJson(rtCaps.core))
        .raw("fields", rtCaps.runtime ? fieldsJson(rtCaps.runtime->getFieldsToSerialize()) : "null");
    mRecords.emit(rt);

    nvinfer1::IPluginV3* cloned = runtime->clone();
    Capabilities const clCaps = cloned ? capabilities(cloned) : Capabilities{};
    mRecords.emit(event("clone").flag("ok", cloned != nullptr).flag("distinct", cloned != runtime)
                      .raw("identity", identityJson(clCaps.core))
                      .raw("fields", clCaps.runtime ? fieldsJson(clCaps.runtime->getFieldsToSerialize()) : "null"));

    HostResourceContext context;
    nvinfer1::IPluginV3* attached = rtCaps.runtime ? rtCaps.runtime->attachToContext(&context) : nullptr;
    Capabilities const atCaps = attached ? capabilities(attached) : Capabilities{};
    mRecords.emit(event("attach").flag("ok", attached != nullptr).flag("distinct", attached != runtime)
                      .raw("identity", identityJson(atCaps.core))
                      .raw("fields", atCaps.runtime ? fieldsJson(atCaps.runtime->getFieldsToSerialize()) : "null"));

    if (atCaps.runtime != nullptr && shapesOk) {
      std::vector<nvinfer1::PluginTensorDesc> inDesc(c.inputs.size());
      std::vector<nvinfer1::PluginTensorDesc> outDesc(nOut);
      for (size_t i = 0; i < c.inputs.size(); ++i) {
        inDesc[i] = {toDims(c.inputs[i].dims), static_cast<DataType>(c.dtype), TensorFormat::kLINEAR, 1.0F};
      }
      for (size_t i = 0; i < nOut; ++i) outDesc[i] = {toDims(outShapes[i]), outTypes[i], TensorFormat::kLINEAR, 1.0F};
      int32_t const shapeRc = atCaps.runtime->onShapeChange(inDesc.data(), nIn, outDesc.data(), nbOutputs);
      mRecords.emit(event("shape_change").num("rc", shapeRc));
      if (mEnqueue && shapeRc == 0) enqueue(c, *atCaps.runtime, inDesc, outDesc, outShapes, workspace);
    }
    delete attached;
    delete cloned;
    delete runtime;
    (void)plugin;
  }

  // getOutputShapes over the host's IExprBuilder. symbolic: dynamic input dims are non-constant expressions (as
  // TensorRT gives them); else every input dim is a constant.
  bool outputShapes(Case const& c, Capabilities const& caps, size_t nOut, bool symbolic,
                    std::vector<std::vector<int64_t>>* result) {
    ExprBuilderImpl impl;
    ExprBuilder builder(impl);
    std::vector<nvinfer1::DimsExprs> in(c.inputs.size());
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      in[i].nbDims = static_cast<int32_t>(c.inputs[i].dims.size());
      for (size_t j = 0; j < c.inputs[i].dims.size(); ++j) {
        in[i].d[j] = impl.input(c.inputs[i].dims[j], !symbolic || c.inputs[i].staticMask[j] == '1');
      }
    }
    std::vector<nvinfer1::DimsExprs> out(nOut);
    for (auto& o : out) o.nbDims = -1;
    int32_t const rc = caps.build->getOutputShapes(in.data(), static_cast<int32_t>(in.size()), nullptr, 0, out.data(),
                                                   static_cast<int32_t>(nOut), builder);
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::vector<int64_t>> constant;
    bool ok = rc == 0;
    for (auto const& o : out) {
      std::vector<int64_t> s;
      std::vector<int64_t> k;
      for (int32_t j = 0; j < o.nbDims && j < nvinfer1::Dims::MAX_DIMS; ++j) {
        int64_t v = -1;
        ok = valueOf(o.d[j], v) && ok;
        s.push_back(v);
        k.push_back(o.d[j] != nullptr && o.d[j]->isConstant() ? 1 : 0);
      }
      ok = ok && o.nbDims >= 0;
      shapes.push_back(s);
      constant.push_back(k);
    }
    mRecords.emit(event("output_shapes").str("mode", symbolic ? "symbolic" : "constant").num("rc", rc)
                      .raw("shapes", dimsJson(shapes)).raw("constant", dimsJson(constant))
                      .num("invalid_operations", impl.invalid())
                      .num("size_tensors", static_cast<int64_t>(impl.sizeTensors().size())));
    if (result != nullptr) *result = shapes;
    return ok;
  }

  // supportsFormatCombination as TensorRT asks it: position by position, the positions before it already chosen.
  // Position 0 over every dtype x format; each later position over every dtype x format with the earlier positions
  // set to each accepted linear dtype of position 0. Records what was accepted.
  void formats(Case const& c, Capabilities const& caps, size_t nOut) {
    int32_t const nIn = static_cast<int32_t>(c.inputs.size());
    int32_t const total = nIn + static_cast<int32_t>(nOut);
    int32_t const nTypes = nvinfer1::EnumMax<DataType>();
    int32_t const nFormats = nvinfer1::EnumMax<TensorFormat>();
    std::vector<nvinfer1::DynamicPluginTensorDesc> io(static_cast<size_t>(total));
    for (int32_t i = 0; i < total; ++i) {
      std::vector<int64_t> const& dims = c.inputs[static_cast<size_t>(i < nIn ? i : 0)].dims;
      io[static_cast<size_t>(i)].desc.dims = io[static_cast<size_t>(i)].min = io[static_cast<size_t>(i)].max =
          io[static_cast<size_t>(i)].opt = toDims(dims);
      io[static_cast<size_t>(i)].desc.scale = 1.0F;
    }
    int64_t queries = 0;
    std::vector<std::string> accepted;
    auto ask = [&](int32_t pos, int32_t prefix) {
      for (int32_t t = 0; t < nTypes; ++t) {
        for (int32_t f = 0; f < nFormats; ++f) {
          io[static_cast<size_t>(pos)].desc.type = static_cast<DataType>(t);
          io[static_cast<size_t>(pos)].desc.format = static_cast<TensorFormat>(f);
          ++queries;
          if (caps.build->supportsFormatCombination(pos, io.data(), nIn, static_cast<int32_t>(nOut))) {
            accepted.push_back("[" + number(static_cast<int64_t>(pos)) + ", " + number(static_cast<int64_t>(prefix)) +
                               ", " + number(static_cast<int64_t>(t)) + ", " + number(static_cast<int64_t>(f)) + "]");
          }
        }
      }
    };
    ask(0, -1);
    std::vector<int32_t> firsts;
    for (int32_t t = 0; t < nTypes; ++t) {
      io[0].desc.type = static_cast<DataType>(t);
      io[0].desc.format = TensorFormat::kLINEAR;
      if (caps.build->supportsFormatCombination(0, io.data(), nIn, static_cast<int32_t>(nOut))) firsts.push_back(t);
    }
    for (int32_t t0 : firsts) {
      for (int32_t pos = 1; pos < total; ++pos) {
        for (int32_t q = 0; q < pos; ++q) {
          io[static_cast<size_t>(q)].desc.type = static_cast<DataType>(t0);
          io[static_cast<size_t>(q)].desc.format = TensorFormat::kLINEAR;
        }
        ask(pos, t0);
      }
    }
    bool const outOfRange = caps.build->supportsFormatCombination(total, io.data(), nIn, static_cast<int32_t>(nOut));
    mRecords.emit(event("formats").num("dtypes", nTypes).num("formats", nFormats).num("queries", queries)
                      .raw("accepted", list(accepted, [](std::string const& s) { return s; }))
                      .flag("out_of_range_accepted", outOfRange));
  }

  static void CUDART_CB waitForGate(void* gate) {
    auto* flag = static_cast<std::atomic<int>*>(gate);
    auto const start = std::chrono::steady_clock::now();
    while (flag->load() == 0) {
      if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(kGateTimeoutMs)) {
        flag->store(2);  // the gate timed out: enqueue waited for its own stream (it must not synchronize)
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // enqueue on device buffers framed by guard bytes, outputs poisoned with NaN, on a non-blocking stream held shut
  // by a host function until enqueue returned: work that does not wait for that stream is caught writing early.
  void enqueue(Case const& c, nvinfer1::IPluginV3OneRuntime& rt, std::vector<nvinfer1::PluginTensorDesc> const& inDesc,
               std::vector<nvinfer1::PluginTensorDesc> const& outDesc, std::vector<std::vector<int64_t>> const& shapes,
               size_t workspaceSize) {
    Json rec = event("enqueue");
    size_t const elem = elementSize(c.dtype);
    if (elem == 0 || c.outputs.size() != shapes.size() || c.inputs.empty()) {
      mRecords.emit(rec.flag("ran", false).str("why", "no data files for this case or an unsupported dtype"));
      return;
    }
    size_t const offset = c.misalign ? elem : 0;
    std::vector<void*> allocations;
    std::vector<std::vector<unsigned char>> hostIn;
    std::vector<void const*> inPtrs;
    std::vector<void*> outPtrs;
    std::vector<size_t> outBytes;
    std::string error;
    auto check = [&](cudaError_t e, char const* what) {
      if (e != cudaSuccess && error.empty()) error = std::string(what) + ": " + cudaGetErrorString(e);
      return e == cudaSuccess;
    };
    auto alloc = [&](size_t bytes) -> unsigned char* {
      void* base = nullptr;
      if (!check(cudaMalloc(&base, bytes + 2 * kPad + offset), "cudaMalloc")) return nullptr;
      allocations.push_back(base);
      check(cudaMemset(base, kGuard, bytes + 2 * kPad + offset), "cudaMemset");
      return static_cast<unsigned char*>(base) + kPad + offset;
    };
    for (auto const& t : c.inputs) {
      std::ifstream file(t.path, std::ios::binary);
      std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      if (bytes.size() != static_cast<size_t>(numel(t.dims)) * elem) {
        error = "input file " + t.path + " has " + std::to_string(bytes.size()) + " bytes, the shape needs " +
                std::to_string(static_cast<size_t>(numel(t.dims)) * elem);
      }
      unsigned char* p = alloc(bytes.size());
      if (p != nullptr) check(cudaMemcpy(p, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
      inPtrs.push_back(p);
      hostIn.push_back(std::move(bytes));
    }
    for (auto const& s : shapes) {
      size_t const bytes = static_cast<size_t>(numel(s)) * elem;
      unsigned char* p = alloc(bytes);
      if (p != nullptr) check(cudaMemset(p, kPoison, bytes), "cudaMemset");
      outPtrs.push_back(p);
      outBytes.push_back(bytes);
    }
    void* workspace = nullptr;
    if (workspaceSize > 0 && check(cudaMalloc(&workspace, workspaceSize), "cudaMalloc workspace")) {
      allocations.push_back(workspace);
    }
    cudaStream_t stream = nullptr;
    cudaStream_t side = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    if (!error.empty()) {
      mRecords.emit(rec.flag("ran", false).str("why", error));
      release(allocations, stream, side);
      return;
    }

    std::atomic<int> gate{0};
    if (mGate) check(cudaLaunchHostFunc(stream, waitForGate, &gate), "cudaLaunchHostFunc");
    int32_t const rc = rt.enqueue(inDesc.data(), outDesc.data(), inPtrs.data(), outPtrs.data(), workspace, stream);
    cudaError_t const launch = cudaGetLastError();
    // While the stream is shut, the legacy default stream and a side stream see the outputs still poisoned.
    bool early = false;
    if (mGate && !outBytes.empty() && outBytes[0] > 0) {
      std::vector<unsigned char> probe(outBytes[0]);
      check(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize(0)");
      check(cudaMemcpyAsync(probe.data(), outPtrs[0], probe.size(), cudaMemcpyDeviceToHost, side), "cudaMemcpyAsync");
      check(cudaStreamSynchronize(side), "cudaStreamSynchronize(side)");
      for (unsigned char b : probe) early = early || b != kPoison;
    }
    int expected = 0;
    bool const gateTimedOut = !gate.compare_exchange_strong(expected, 1) && expected == 2;
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize(stream)");
    cudaError_t const after = cudaGetLastError();

    bool guards = true;
    std::vector<std::string> written;
    for (size_t i = 0; i < outPtrs.size() && error.empty(); ++i) {
      std::vector<unsigned char> all(outBytes[i] + 2 * kPad + offset);
      check(cudaMemcpy(all.data(), static_cast<unsigned char*>(outPtrs[i]) - kPad - offset, all.size(),
                       cudaMemcpyDeviceToHost),
            "cudaMemcpy output");
      for (size_t k = 0; k < kPad + offset; ++k) guards = guards && all[k] == kGuard;
      for (size_t k = kPad + offset + outBytes[i]; k < all.size(); ++k) guards = guards && all[k] == kGuard;
      std::ofstream file(c.outputs[i], std::ios::binary);
      file.write(reinterpret_cast<char const*>(all.data() + kPad + offset), static_cast<std::streamsize>(outBytes[i]));
      written.push_back(c.outputs[i]);
    }
    bool inputsKept = true;
    for (size_t i = 0; i < inPtrs.size() && error.empty(); ++i) {
      std::vector<unsigned char> back(hostIn[i].size());
      check(cudaMemcpy(back.data(), inPtrs[i], back.size(), cudaMemcpyDeviceToHost), "cudaMemcpy input");
      inputsKept = inputsKept && back == hostIn[i];
    }
    rec.flag("ran", true).num("rc", rc).str("launch_error", cudaGetErrorString(launch))
        .str("error_after_sync", cudaGetErrorString(after))
        .raw("stream_ordered", mGate ? (early ? "false" : "true") : "null")
        .flag("gate_timed_out", gateTimedOut).flag("guards_intact", guards).flag("inputs_unchanged", inputsKept)
        .flag("misaligned", c.misalign).str("host_error", error)
        .raw("outputs", list(written, [](std::string const& s) { return quote(s); }));
    mRecords.emit(rec);
    release(allocations, stream, side);
  }

  static void release(std::vector<void*> const& allocations, cudaStream_t stream, cudaStream_t side) {
    for (void* p : allocations) cudaFree(p);
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (side != nullptr) cudaStreamDestroy(side);
  }

  Records& mRecords;
  HostLoggerFinder& mFinder;
  bool mEnqueue;
  bool mGate;
  Case const* mCase = nullptr;
};

// --expr-selftest: each line "OP A B"; the host's builder evaluates it with both operands constant and with the
// first symbolic, so the judge can compare values and constness with Python's integer semantics.
int exprSelftest(char const* path, Records& records) {
  std::ifstream file(path);
  if (!file) malformed(0, std::string("cannot read ") + path);
  int32_t op = 0;
  int64_t a = 0;
  int64_t b = 0;
  while (file >> op >> a >> b) {
    ExprBuilderImpl impl;
    ExprBuilder builder(impl);
    auto const dop = static_cast<nvinfer1::DimensionOperation>(op);
    nvinfer1::IDimensionExpr const* constant = builder.operation(dop, *builder.constant(a), *builder.constant(b));
    nvinfer1::IDimensionExpr const* symbolic = builder.operation(dop, *impl.input(a, false), *builder.constant(b));
    int64_t v = 0;
    bool const ok = valueOf(constant, v);
    int64_t w = 0;
    bool const symOk = valueOf(symbolic, w);
    Json j;
    j.str("event", "expr").num("op", op).num("a", a).num("b", b).flag("ok", ok).num("value", ok ? v : 0)
        .flag("constant", ok && constant->isConstant())
        .num("constant_value", ok ? constant->getConstantValue() : 0)
        .flag("symbolic_ok", symOk).num("symbolic_value", symOk ? w : 0)
        .flag("symbolic_constant", symOk && symbolic->isConstant())
        .num("symbolic_constant_value", symOk ? symbolic->getConstantValue() : 0);
    records.emit(j);
  }
  return 0;
}

using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*)(int32_t&);
using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);

int run(Plan const& plan, Records& records, bool enqueue, bool gate) {
  records.emit(Json().str("event", "host").str("tensorrt", std::to_string(NV_TENSORRT_MAJOR) + "." +
                                                               std::to_string(NV_TENSORRT_MINOR) + "." +
                                                               std::to_string(NV_TENSORRT_PATCH))
                   .num("dtypes", nvinfer1::EnumMax<DataType>()).num("formats", nvinfer1::EnumMax<TensorFormat>())
                   .flag("enqueue", enqueue));
  if (enqueue) {
    int devices = 0;
    cudaError_t const e = cudaGetDeviceCount(&devices);
    records.emit(Json().str("event", "cuda").num("devices", devices).str("status", cudaGetErrorString(e)));
    if (e != cudaSuccess || devices == 0) return 4;
    cudaSetDevice(0);
  }
  // dlopen only: TensorRT's backend loads plugin libraries RTLD_NOW | RTLD_LOCAL.
  void* handle = dlopen(plan.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  char const* why = handle == nullptr ? dlerror() : nullptr;
  HostRegistry& registry = hostRegistry();
  auto const staticRegs = registry.registrations;
  Json load;
  load.str("event", "load").str("library", plan.library).flag("loaded", handle != nullptr).str("dlerror", why);
  load.raw("static_registrations", list(staticRegs, [](HostRegistry::Registration const& r) {
    return Json().str("kind", r.id.kind).str("name", r.id.name).str("version", r.id.version)
        .str("namespace", r.id.ns).str("namespace_argument", r.ns).flag("accepted", r.accepted).text();
  }));
  if (handle == nullptr) {
    records.emit(load);
    return 3;
  }
  auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
  auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
  load.flag("getCreators", getCreators != nullptr).flag("setLoggerFinder", setLoggerFinder != nullptr);
  HostLoggerFinder finder;
  if (setLoggerFinder != nullptr) setLoggerFinder(&finder);
  std::vector<nvinfer1::IPluginCreatorInterface*> exported;
  if (getCreators != nullptr) {
    int32_t n = -1;
    nvinfer1::IPluginCreatorInterface* const* list = getCreators(n);
    for (int32_t i = 0; list != nullptr && i < n; ++i) exported.push_back(list[i]);
    load.num("getCreators_count", n);
  }
  // What IPluginRegistry::loadLibrary then does: register each exported creator under its own namespace (the
  // static registration came first, so TensorRT keeps those and refuses these as duplicates).
  std::vector<std::string> exportedJson;
  for (auto* creator : exported) {
    CreatorId const id = identify(*creator);
    bool same = false;
    for (auto const& r : staticRegs) same = same || r.creator == creator;
    bool const accepted = registry.registerCreator(*creator, id.ns.c_str());
    exportedJson.push_back(Json().str("kind", id.kind).str("name", id.name).str("version", id.version)
                               .str("namespace", id.ns).flag("same_object_as_static", same)
                               .flag("registered_again", accepted).text());
  }
  load.raw("exported", list(exportedJson, [](std::string const& s) { return s; }))
      .num("legacy_registry_calls", registry.legacyCalls)
      .num("loadLibrary_calls", static_cast<int64_t>(registry.loadLibraryCalls.size()));
  records.emit(load);

  Runner runner(records, finder, enqueue, gate);
  for (auto const& c : plan.cases) runner.run(c, exported);
  records.emit(Json().str("event", "done").num("cases", static_cast<int64_t>(plan.cases.size()))
                   .num("logger_finder_calls", finder.calls));
  return 0;
}

}  // namespace
}  // namespace trtrepo_conformance

int main(int argc, char** argv) {
  char const* cases = nullptr;
  char const* records = nullptr;
  char const* selftest = nullptr;
  bool enqueue = false;
  bool gate = true;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    if (a == "--cases" && i + 1 < argc) {
      cases = argv[++i];
    } else if (a == "--records" && i + 1 < argc) {
      records = argv[++i];
    } else if (a == "--expr-selftest" && i + 1 < argc) {
      selftest = argv[++i];
    } else if (a == "--enqueue") {
      enqueue = true;
    } else if (a == "--no-stream-gate") {
      gate = false;
    } else {
      std::fprintf(stderr, "usage: %s (--cases FILE [--enqueue [--no-stream-gate]] | --expr-selftest FILE) "
                   "--records FILE\n", argv[0]);
      return 2;
    }
  }
  if (records == nullptr || (cases == nullptr) == (selftest == nullptr)) {
    std::fprintf(stderr, "usage: %s (--cases FILE [--enqueue] | --expr-selftest FILE) --records FILE\n", argv[0]);
    return 2;
  }
  std::FILE* out = std::fopen(records, "w");
  if (out == nullptr) {
    std::fprintf(stderr, "conformance host: cannot write %s\n", records);
    return 2;
  }
  trtrepo_conformance::Records sink(out);
  int const rc = selftest != nullptr ? trtrepo_conformance::exprSelftest(selftest, sink)
                                     : trtrepo_conformance::run(trtrepo_conformance::parsePlan(cases), sink, enqueue,
                                                                gate);
  std::fclose(out);
  return rc;
}
