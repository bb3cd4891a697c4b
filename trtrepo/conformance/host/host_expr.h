// The conformance host's IExprBuilder: TensorRT's public IExprBuilder / IDimensionExpr (NvInferRuntime.h) are thin
// wrappers over the abstract classes apiv::VExprBuilder / apiv::VDimensionExpr (NvInferImpl.h), so a host can give
// a plugin's getOutputShapes a builder of its own. Every expression here carries its int value (the host knows every
// input dim) and whether TensorRT would treat it as a build-time constant (only constants and operations on
// constants are). Arithmetic is exact 64-bit: an overflow, a division by zero or an unknown operation gives nullptr
// (TensorRT's documented answer to an invalid operation) and is counted.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace trtrepo_conformance {

class DimNode final : public nvinfer1::apiv::VDimensionExpr {
 public:
  DimNode(int64_t value, bool constant, bool sizeTensor) : mValue(value), mConstant(constant), mSize(sizeTensor) {}
  bool isConstant() const override { return mConstant; }
  int64_t getConstantValue() const override { return mConstant ? mValue : std::numeric_limits<int64_t>::min(); }
  bool isSizeTensor() const override { return mSize; }
  int64_t value() const { return mValue; }

 private:
  int64_t mValue;
  bool mConstant;
  bool mSize;
};

class HostDim final : public nvinfer1::IDimensionExpr {
 public:
  HostDim(int64_t value, bool constant, bool sizeTensor) : mNode(value, constant, sizeTensor) { mImpl = &mNode; }
  ~HostDim() noexcept override = default;
  int64_t value() const { return mNode.value(); }

 private:
  DimNode mNode;
};

// The value of an expression the host made; false for one it did not make (never the case in a correct plugin).
inline bool valueOf(nvinfer1::IDimensionExpr const* e, int64_t& out) {
  auto const* d = dynamic_cast<HostDim const*>(e);
  if (d == nullptr) return false;
  out = d->value();
  return true;
}

// Python's semantics for integer floor and ceiling division (TensorRT's kFLOOR_DIV / kCEIL_DIV round toward -inf /
// +inf, not toward zero as C++'s / does).
inline int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

inline int64_t ceilDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) == (b < 0))) ++q;
  return q;
}

// One operation over exact ints; false when the result is undefined (overflow, division by zero, unknown op).
inline bool apply(nvinfer1::DimensionOperation op, int64_t a, int64_t b, int64_t& out) {
  using Op = nvinfer1::DimensionOperation;
  switch (op) {
    case Op::kSUM: return !__builtin_add_overflow(a, b, &out);
    case Op::kPROD: return !__builtin_mul_overflow(a, b, &out);
    case Op::kMAX: out = a > b ? a : b; return true;
    case Op::kMIN: out = a < b ? a : b; return true;
    case Op::kSUB: return !__builtin_sub_overflow(a, b, &out);
    case Op::kEQUAL: out = a == b ? 1 : 0; return true;
    case Op::kLESS: out = a < b ? 1 : 0; return true;
    case Op::kFLOOR_DIV:
      if (b == 0 || (a == std::numeric_limits<int64_t>::min() && b == -1)) return false;
      out = floorDiv(a, b);
      return true;
    case Op::kCEIL_DIV:
      if (b == 0 || (a == std::numeric_limits<int64_t>::min() && b == -1)) return false;
      out = ceilDiv(a, b);
      return true;
  }
  return false;
}

class ExprBuilderImpl final : public nvinfer1::apiv::VExprBuilder {
 public:
  nvinfer1::IDimensionExpr const* constant(int64_t value) override { return make(value, true, false); }

  nvinfer1::IDimensionExpr const* operation(nvinfer1::DimensionOperation op, nvinfer1::IDimensionExpr const& first,
                                            nvinfer1::IDimensionExpr const& second) override {
    int64_t a = 0;
    int64_t b = 0;
    int64_t out = 0;
    if (!valueOf(&first, a) || !valueOf(&second, b) || !apply(op, a, b, out)) {
      ++mInvalid;
      return nullptr;
    }
    return make(out, first.isConstant() && second.isConstant(), false);
  }

  nvinfer1::IDimensionExpr const* declareSizeTensor(int32_t outputIndex, nvinfer1::IDimensionExpr const& opt,
                                                    nvinfer1::IDimensionExpr const& upper) override {
    int64_t o = 0;
    int64_t u = 0;
    if (!valueOf(&opt, o) || !valueOf(&upper, u)) {
      ++mInvalid;
      return nullptr;
    }
    mSizeTensors.push_back({outputIndex, o, u});
    return make(o, false, true);
  }

  // An input dim: constant when it is static (TensorRT gives static dims as constants), else symbolic.
  nvinfer1::IDimensionExpr const* input(int64_t value, bool constant) { return make(value, constant, false); }

  struct SizeTensor {
    int32_t outputIndex;
    int64_t opt;
    int64_t upper;
  };

  int32_t invalid() const { return mInvalid; }
  std::vector<SizeTensor> const& sizeTensors() const { return mSizeTensors; }

 private:
  nvinfer1::IDimensionExpr const* make(int64_t value, bool constant, bool sizeTensor) {
    mNodes.push_back(std::make_unique<HostDim>(value, constant, sizeTensor));
    return mNodes.back().get();
  }

  std::vector<std::unique_ptr<HostDim>> mNodes;
  std::vector<SizeTensor> mSizeTensors;
  int32_t mInvalid = 0;
};

class ExprBuilder final : public nvinfer1::IExprBuilder {
 public:
  explicit ExprBuilder(ExprBuilderImpl& impl) { mImpl = &impl; }
  ~ExprBuilder() noexcept override = default;
};

}  // namespace trtrepo_conformance
