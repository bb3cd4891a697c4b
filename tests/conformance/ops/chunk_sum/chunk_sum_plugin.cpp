// trtrepo_conf::chunk_sum as a TensorRT plugin (test op of trtrepo.conformance).
#include "chunk_sum_plugin.h"

#include <new>

#include "chunk_sum_kernel.h"

namespace trtrepo_conf {

void ChunkSumPlugin::fieldNames(std::vector<nvinfer1::PluginField>& fields) {
  fields.clear();
  fields.emplace_back("k", nullptr, nvinfer1::PluginFieldType::kINT32, 1);
}

ChunkSumPlugin* ChunkSumPlugin::create(nvinfer1::PluginFieldCollection const* fc) noexcept {
  int32_t k = kDefaultK;
  if (!trtrepo::trt::readIntField(fc, "k", k) || k < 1) {
    trtrepo::trt::logError("TrtrepoConfChunkSum: field k must be one INT32 >= 1");
    return nullptr;
  }
  return new (std::nothrow) ChunkSumPlugin(k);
}

void ChunkSumPlugin::collectFields(std::vector<nvinfer1::PluginField>& fields) noexcept {
  try {
    fields.emplace_back("k", &mK, nvinfer1::PluginFieldType::kINT32, 1);
  } catch (...) {
    trtrepo::trt::logError("TrtrepoConfChunkSum: cannot serialize fields (out of memory)");
  }
}

int32_t ChunkSumPlugin::launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
                               void* const* outputs, cudaStream_t stream) noexcept {
  TrtrepoDType dtype{};
  int64_t rows = 0;
  int64_t cols = 0;
  if (!trtrepo::trt::toTrtrepoDType(inputDesc[0].type, dtype) || !trtrepo::trt::rowsCols(inputDesc[0].dims, rows,
                                                                                          cols)) {
    trtrepo::trt::logError("TrtrepoConfChunkSum: unsupported dtype or shape of x");
    return -1;
  }
  if (rows == 0) return 0;
  cudaError_t const status = trtrepo_conf_chunk_sum_launch(inputs[0], outputs[0], rows, cols, mK, dtype, stream);
  if (status != cudaSuccess) {
    trtrepo::trt::logError(cudaGetErrorString(status));
    return -1;
  }
  return 0;
}

}  // namespace trtrepo_conf

TRTREPO_REGISTER_PLUGIN(trtrepo_conf::ChunkSumPlugin)
