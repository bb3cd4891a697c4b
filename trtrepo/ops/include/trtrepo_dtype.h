// Element types shared by the CUDA launchers, the torch binding and the TensorRT plugins.
// Plain C/C++: no CUDA, torch or TensorRT headers, so every layer can include it.
#pragma once

#include <stdint.h>

enum TrtrepoDType { kTrtrepoF32 = 0, kTrtrepoF16 = 1, kTrtrepoBF16 = 2 };

// Bytes per element (0 for an unknown value, which launchers reject).
inline int trtrepo_dtype_size(TrtrepoDType dtype) {
  switch (dtype) {
    case kTrtrepoF32: return 4;
    case kTrtrepoF16: return 2;
    case kTrtrepoBF16: return 2;
  }
  return 0;
}
