// Host helpers of the C++ that trtrepo generates from op.yaml (launchers, torch bindings, TensorRT plugins): the
// op.yaml expression language over int64_t and std::vector<int64_t> dims (Python semantics: floor division, negative
// indices, slices), float_bits, and elements per 16-byte vector. Plain C++17: no CUDA, torch or TensorRT.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "trtrepo_dtype.h"

namespace trtrepo_gen {

constexpr int64_t kNoBound = std::numeric_limits<int64_t>::min();

inline int64_t floordiv(int64_t a, int64_t b) {
  if (b == 0) throw std::domain_error("division by zero in an op.yaml rule");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return -floordiv(-a, b); }

inline int64_t at(std::vector<int64_t> const& d, int64_t i) {
  int64_t const n = static_cast<int64_t>(d.size());
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw std::out_of_range("an op.yaml rule indexes past the rank of an input");
  return d[static_cast<size_t>(i)];
}

// l[lo:hi] with Python's slice bounds (negative from the end, clamped; kNoBound = open), for any list of dims:
// ints here, TensorRT's IDimensionExpr pointers in trt_plugin_base.h.
template <typename List>
List slice_of(List const& l, int64_t lo, int64_t hi) {
  int64_t const n = static_cast<int64_t>(l.size());
  auto clamp = [n](int64_t v, int64_t dflt) {
    if (v == kNoBound) return dflt;
    if (v < 0) v += n;
    return v < 0 ? int64_t{0} : (v > n ? n : v);
  };
  int64_t const a = clamp(lo, 0);
  int64_t const b = clamp(hi, n);
  return a < b ? List(l.begin() + a, l.begin() + b) : List();
}

inline std::vector<int64_t> slice(std::vector<int64_t> const& d, int64_t lo, int64_t hi) { return slice_of(d, lo, hi); }

inline std::vector<int64_t> cat(std::vector<int64_t> a, std::vector<int64_t> const& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline int64_t numel(std::vector<int64_t> const& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

inline int32_t float_bits(double value) {
  float const f = static_cast<float>(value);
  int32_t bits = 0;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

inline int64_t vec_of(TrtrepoDType dtype) { return 16 / trtrepo_dtype_size(dtype); }

inline std::string dims_text(std::vector<int64_t> const& d) {
  std::string out = "[";
  for (size_t i = 0; i < d.size(); ++i) out += (i ? ", " : "") + std::to_string(d[i]);
  return out + "]";
}

}  // namespace trtrepo_gen
