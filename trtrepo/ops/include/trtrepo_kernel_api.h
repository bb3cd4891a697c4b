// What every <op>_kernel.h needs to declare a launcher: cudaError_t / cudaStream_t and the dtype enum.
// A CPU-only torch build defines TRTREPO_CPU_ONLY, so the kernel headers then declare only the CPU references and
// need no CUDA headers at all.
#pragma once

#include <stdint.h>

#include "trtrepo_dtype.h"

#ifndef TRTREPO_CPU_ONLY
#include <cuda_runtime_api.h>
#endif
