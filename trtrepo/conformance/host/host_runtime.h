// What a TensorRT plugin library needs from TensorRT itself, provided by the conformance host instead of libnvinfer:
// the plugin registry (the executable exports getPluginRegistry, linked with -rdynamic, so the library's
// dlsym(RTLD_DEFAULT, "getPluginRegistry") finds it when it is dlopen'ed), a logger finder for the library's
// setLoggerFinder, and the resource context of attachToContext. Every call is recorded for the judge.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace trtrepo_conformance {

// The identity of a creator, read through its versioned interface as TensorRT does (no RTTI across the library).
struct CreatorId {
  std::string kind;
  std::string name;
  std::string version;
  std::string ns;
  bool v3one = false;
};

inline CreatorId identify(nvinfer1::IPluginCreatorInterface const& creator) {
  CreatorId id;
  nvinfer1::InterfaceInfo const info = creator.getInterfaceInfo();
  id.kind = info.kind != nullptr ? info.kind : "";
  id.v3one = id.kind == "PLUGIN CREATOR_V3ONE" && info.major == 1;
  if (id.v3one) {
    auto const& c = static_cast<nvinfer1::IPluginCreatorV3One const&>(creator);
    id.name = c.getPluginName() != nullptr ? c.getPluginName() : "";
    id.version = c.getPluginVersion() != nullptr ? c.getPluginVersion() : "";
    id.ns = c.getPluginNamespace() != nullptr ? c.getPluginNamespace() : "";
  }
  return id;
}

class HostRegistry final : public nvinfer1::IPluginRegistry {
 public:
  struct Registration {
    nvinfer1::IPluginCreatorInterface* creator;
    CreatorId id;
    std::string ns;  // the namespace argument of registerCreator
    bool accepted;
  };

  bool registerCreator(nvinfer1::IPluginCreatorInterface& creator,
                       nvinfer1::AsciiChar const* const pluginNamespace) noexcept override {
    CreatorId const id = identify(creator);
    std::string const ns = pluginNamespace != nullptr ? pluginNamespace : "";
    // TensorRT keys creators by (name, version, namespace argument) and keeps the first of a duplicate.
    bool const accepted = id.v3one && find(id.name.c_str(), id.version.c_str(), ns.c_str()) == nullptr;
    registrations.push_back({&creator, id, ns, accepted});
    if (accepted) mCreators.push_back(&creator);
    return accepted;
  }

  nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override {
    if (numCreators != nullptr) *numCreators = static_cast<int32_t>(mCreators.size());
    return mCreators.data();
  }

  nvinfer1::IPluginCreatorInterface* getCreator(nvinfer1::AsciiChar const* const pluginName,
                                                nvinfer1::AsciiChar const* const pluginVersion,
                                                nvinfer1::AsciiChar const* const pluginNamespace) noexcept override {
    return find(pluginName, pluginVersion, pluginNamespace);
  }

  bool deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept override {
    for (auto it = mCreators.begin(); it != mCreators.end(); ++it) {
      if (*it == &creator) {
        mCreators.erase(it);
        return true;
      }
    }
    return false;
  }

  void setErrorRecorder(nvinfer1::IErrorRecorder* const recorder) noexcept override { mRecorder = recorder; }
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return mRecorder; }
  bool isParentSearchEnabled() const override { return false; }
  void setParentSearchEnabled(bool const enabled) override { (void)enabled; }
  // The host loads the library itself (dlopen + getCreators): a library that calls loadLibrary is recorded.
  PluginLibraryHandle loadLibrary(nvinfer1::AsciiChar const* pluginPath) noexcept override {
    loadLibraryCalls.push_back(pluginPath != nullptr ? pluginPath : "");
    return nullptr;
  }
  void deregisterLibrary(PluginLibraryHandle handle) noexcept override { (void)handle; }
  nvinfer1::IPluginResource* acquirePluginResource(nvinfer1::AsciiChar const* key,
                                                   nvinfer1::IPluginResource* resource) noexcept override {
    (void)key;
    (void)resource;
    ++resourceCalls;
    return nullptr;
  }
  int32_t releasePluginResource(nvinfer1::AsciiChar const* key) noexcept override {
    (void)key;
    ++resourceCalls;
    return -1;
  }
  nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override {
    return getAllCreators(numCreators);
  }

#if NV_TENSORRT_MAJOR < 11
  // TensorRT 10's IPluginCreator (V2) overloads: a V3 library must never call them; a call is recorded.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  bool registerCreator(nvinfer1::IPluginCreator& creator,
                       nvinfer1::AsciiChar const* const pluginNamespace) noexcept override {
    (void)creator;
    (void)pluginNamespace;
    ++legacyCalls;
    return false;
  }
  nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const numCreators) const noexcept override {
    if (numCreators != nullptr) *numCreators = 0;
    return nullptr;
  }
  nvinfer1::IPluginCreator* getPluginCreator(nvinfer1::AsciiChar const* const pluginName,
                                             nvinfer1::AsciiChar const* const pluginVersion,
                                             nvinfer1::AsciiChar const* const pluginNamespace) noexcept override {
    (void)pluginName;
    (void)pluginVersion;
    (void)pluginNamespace;
    ++legacyCalls;
    return nullptr;
  }
  bool deregisterCreator(nvinfer1::IPluginCreator const& creator) noexcept override {
    (void)creator;
    ++legacyCalls;
    return false;
  }
#pragma GCC diagnostic pop
#endif

  std::vector<Registration> registrations;
  std::vector<std::string> loadLibraryCalls;
  int32_t legacyCalls = 0;
  int32_t resourceCalls = 0;

 private:
  nvinfer1::IPluginCreatorInterface* find(char const* name, char const* version, char const* ns) const {
    if (name == nullptr || version == nullptr) return nullptr;
    std::string const space = ns != nullptr ? ns : "";
    for (auto const& r : registrations) {
      if (r.accepted && r.id.name == name && r.id.version == version && r.ns == space) {
        for (auto* c : mCreators) {
          if (c == r.creator) return c;
        }
      }
    }
    return nullptr;
  }

  std::vector<nvinfer1::IPluginCreatorInterface*> mCreators;
  nvinfer1::IErrorRecorder* mRecorder = nullptr;
};

class HostLogger final : public nvinfer1::ILogger {
 public:
  struct Message {
    int32_t severity;
    std::string text;
  };
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    try {
      messages.push_back({static_cast<int32_t>(severity), msg != nullptr ? msg : ""});
    } catch (...) {
    }
  }
  std::vector<Message> messages;
};

class HostLoggerFinder final : public nvinfer1::ILoggerFinder {
 public:
  nvinfer1::ILogger* findLogger() override {
    ++calls;
    return &logger;
  }
  HostLogger logger;
  int32_t calls = 0;
};

// TensorRT hands attachToContext its allocator and error recorder; the plugins here use neither (TensorRT 11 also
// passes null cuDNN/cuBLAS handles), so the host's context has none.
class HostResourceContext final : public nvinfer1::IPluginResourceContext {
 public:
  nvinfer1::IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
  ~HostResourceContext() noexcept override = default;
};

HostRegistry& hostRegistry();

}  // namespace trtrepo_conformance
