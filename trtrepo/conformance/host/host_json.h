// One JSON object per line: what the conformance host observed. The host only records; trtrepo.conformance.host
// judges the records against op.yaml (one place decides what is right).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace trtrepo_conformance {

inline std::string quote(std::string const& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

inline std::string number(double v) {
  if (std::isnan(v)) return "NaN";  // Python's json reads NaN / Infinity
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

inline std::string number(int64_t v) { return std::to_string(v); }

class Json {
 public:
  Json& raw(char const* key, std::string const& value) {
    mBody += (mBody.empty() ? "" : ", ") + quote(key) + ": " + value;
    return *this;
  }
  Json& str(char const* key, std::string const& value) { return raw(key, quote(value)); }
  Json& str(char const* key, char const* value) { return raw(key, value == nullptr ? "null" : quote(value)); }
  Json& num(char const* key, int64_t value) { return raw(key, number(value)); }
  Json& flag(char const* key, bool value) { return raw(key, value ? "true" : "false"); }
  std::string text() const { return "{" + mBody + "}"; }

 private:
  std::string mBody;
};

template <typename T, typename F>
std::string list(std::vector<T> const& items, F&& each) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + each(items[i]);
  return out + "]";
}

// The output stream of records (a file, flushed per line so a crash keeps what came before).
class Records {
 public:
  explicit Records(std::FILE* out) : mOut(out) {}
  void emit(Json const& j) {
    std::fputs(j.text().c_str(), mOut);
    std::fputc('\n', mOut);
    std::fflush(mOut);
  }

 private:
  std::FILE* mOut;
};

}  // namespace trtrepo_conformance
