"""The compilers and SDKs an op build uses: host C++ compiler, nvcc, torch's headers and libraries, CUDA
architectures, TensorRT's headers, and the headers trtrepo ships (``trtrepo/ops/include``).

Environment (``trtrepo.settings``): TRTREPO_NVCC, TRTREPO_CUDA_ARCHS, TRTREPO_TENSORRT_ROOT / TENSORRT_ROOT,
TRTREPO_TENSORRT_INCLUDE; ``CXX`` names the host compiler (default ``c++``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trtrepo import deps, settings
from trtrepo.errors import BuildError, MissingDependencyError

DEFAULT_PTX_ARCH = "80"
DEFAULT_GPU_ARCH = "90"
# torch's recent headers use C++20 (cpp_extension compiles with -std=c++20 too); plugins and kernels stay C++17.
CXX_FLAGS = ("-std=c++20", "-O3", "-fPIC", "-Wall", "-Wno-unused-function")
PLUGIN_CXX_FLAGS = ("-std=c++17", "-O3", "-fPIC", "-Wall", "-Wextra", "-fvisibility=hidden",
                    "-fvisibility-inlines-hidden")
NVCC_FLAGS = ("-std=c++17", "-O3", "--expt-relaxed-constexpr")


def include_dir() -> Path:
    """The headers every op build sees (``trtrepo_kernel_api.h``, ``trt_plugin_base.h``, ...): they ship inside the
    installed package, so an op folder outside the project needs no copies of them."""
    return Path(__file__).resolve().parent / "include"


def parse_archs(value: str) -> list[str]:
    """``"sm_80;compute_90a, 8.6"`` → ``["80", "90a", "86"]``.

    Raises:
        BuildError: An entry is not a CUDA architecture.
    """
    archs = []
    for item in re.split(r"[;,\s]+", value.strip()):
        if not item:
            continue
        m = re.fullmatch(r"(?:sm_|compute_)?(\d+)(?:\.(\d))?([af]?)", item)
        if not m:
            raise BuildError(f"{settings.CUDA_ARCHS.name}: {item!r} is not a CUDA architecture",
                             hint="use numbers like 80;90 (or sm_90, compute_90a, 9.0)")
        archs.append(m.group(1) + (m.group(2) or "") + m.group(3))
    return archs


def arch_key(arch: str) -> int:
    """The number of an architecture (``90a`` → 90), for ordering."""
    m = re.match(r"\d+", arch)
    return int(m.group(0)) if m else 0


def ptx_arch() -> str:
    """The virtual architecture PTX is generated for: the lowest of TRTREPO_CUDA_ARCHS, else 80 (PTX is
    JIT-compiled forward by the driver, so the lowest one runs everywhere)."""
    env = settings.CUDA_ARCHS.raw()
    if env and parse_archs(env):
        return min(parse_archs(env), key=arch_key)
    return DEFAULT_PTX_ARCH


def gpu_archs() -> list[str]:
    """Architectures compiled libraries hold: TRTREPO_CUDA_ARCHS, else the visible GPU's, else 90."""
    env = settings.CUDA_ARCHS.raw()
    if env and parse_archs(env):
        return parse_archs(env)
    if deps.has_cuda_torch():
        import torch

        major, minor = torch.cuda.get_device_capability()
        return [f"{major}{minor}"]
    return [DEFAULT_GPU_ARCH]


def gencode_flags(archs: list[str]) -> list[str]:
    """nvcc ``-gencode`` flags: SASS for each arch and PTX of the highest (for newer GPUs)."""
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    top = max(archs, key=arch_key)
    flags.append(f"-gencode=arch=compute_{top},code=compute_{top}")
    return flags


@functools.cache
def tool_version(tool: str) -> str:
    """``tool --version`` on one line (part of cache keys: another compiler is another build)."""
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return "absent"
    return " | ".join(line for line in out.splitlines() if line.strip())[-300:]


def cxx() -> str:
    """The host C++ compiler: ``CXX``, else ``c++``, else ``g++``."""
    return os.environ.get("CXX") or shutil.which("c++") or "g++"


def nvcc() -> Path:
    """nvcc.

    Raises:
        MissingDependencyError: It is not found.
    """
    found = deps.find_nvcc()
    if found is None:
        raise MissingDependencyError("building CUDA kernels needs nvcc, which was not found",
                                     hint=deps.INSTALL_HINTS["nvcc"])
    return found


@functools.cache
def cuda_home() -> Path:
    """The CUDA toolkit folder (its ``include/`` and ``lib64/``): CUDA_HOME / CUDA_PATH, nvcc's grandparent (nvcc
    resolved through links), else /usr/local/cuda.

    Raises:
        MissingDependencyError: No folder holding ``include/cuda_runtime_api.h`` is found.
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    compiler = deps.find_nvcc()
    if compiler is not None:
        candidates += [str(compiler.resolve().parent.parent), str(compiler.parent.parent)]
    candidates.append("/usr/local/cuda")
    for c in candidates:
        if c and (Path(c) / "include" / "cuda_runtime_api.h").is_file():
            return Path(c)
    raise MissingDependencyError("the CUDA toolkit's headers (include/cuda_runtime_api.h) were not found",
                                 hint="set CUDA_HOME to the CUDA toolkit folder")


@dataclass(frozen=True)
class TorchFacts:
    """What compiling against this torch needs."""

    version: str
    cuda: str | None
    cxx11_abi: int
    include: tuple[str, ...]
    lib: tuple[str, ...]


@functools.cache
def torch_facts() -> TorchFacts:
    """torch's version, CUDA, C++ ABI and its include / library folders (from ``torch.utils.cpp_extension``)."""
    import torch
    from torch.utils import cpp_extension

    return TorchFacts(version=str(torch.__version__), cuda=torch.version.cuda,
                      cxx11_abi=int(torch._C._GLIBCXX_USE_CXX11_ABI),
                      include=tuple(cpp_extension.include_paths()), lib=tuple(cpp_extension.library_paths()))


@dataclass(frozen=True)
class TensorRTHeaders:
    """A folder holding ``NvInferRuntime.h`` and the TensorRT version it declares."""

    include: Path
    version: str


def header_version(include: Path) -> str:
    """``major.minor.patch`` of the TensorRT headers in ``include`` (NvInferVersion.h; macros resolved: 10.x and
    11.x define NV_TENSORRT_MAJOR as TRT_MAJOR_ENTERPRISE), or ``unknown``."""
    path = Path(include) / "NvInferVersion.h"
    text = path.read_text(errors="replace") if path.is_file() else ""
    defines = dict(re.findall(r"^\s*#define\s+(\w+)\s+(\w+)", text, re.M))

    def value(name: str) -> str | None:
        current: str | None = name
        for _ in range(5):  # a macro naming a macro naming a number
            if current is None or current.isdigit():
                break
            current = defines.get(current)
        return current if current is not None and current.isdigit() else None

    parts = [value(f"NV_TENSORRT_{k}") for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(p for p in parts if p is not None) if all(parts) else "unknown"


def find_tensorrt_headers() -> TensorRTHeaders | None:
    """TensorRT's headers: TRTREPO_TENSORRT_INCLUDE, then ``include/`` of TRTREPO_TENSORRT_ROOT, TENSORRT_ROOT,
    /usr/local/tensorrt, /opt/tensorrt, /usr (NGC images: /usr/include/x86_64-linux-gnu); None if absent.

    The plugin library links no TensorRT library: the headers are all it needs to build.
    """
    candidates: list[Path] = []
    explicit = settings.TENSORRT_INCLUDE.raw()
    if explicit:
        candidates.append(Path(explicit))
    for root in (settings.TENSORRT_ROOT.raw(), os.environ.get("TENSORRT_ROOT"), "/usr/local/tensorrt",
                 "/opt/tensorrt", "/usr"):
        if root:
            base = Path(root)
            candidates += [base / "include", base / "include" / "x86_64-linux-gnu",
                           base / "include" / "aarch64-linux-gnu"]
    for inc in candidates:
        if (inc / "NvInferRuntime.h").is_file():
            return TensorRTHeaders(inc.resolve(), header_version(inc))
    return None
