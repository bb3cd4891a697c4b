"""Cheap capability probes and the install command for each missing piece.

Probes never import the heavy package unless asked whether it actually works (``has_cuda_torch``,
``has_tensorrt``); ``find_spec`` answers "is it installed" without the import cost.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from trtrepo.errors import MissingDependencyError

LOGGER = logging.getLogger(__name__)

NGC_PYTORCH_IMAGE = "nvcr.io/nvidia/pytorch:25.10-py3"
NGC_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.10-py3"

# What to run when a piece is missing. TensorRT cannot come from PyPI in every environment (the PyPI wheels are
# stubs that download from NVIDIA's index), so the hint names the NGC image that carries it.
INSTALL_HINTS = {
    "torch": "pip install torch",
    "cuda_torch": "pip install torch --index-url https://download.pytorch.org/whl/cu130  (needs an NVIDIA GPU)",
    "tensorrt": f"use the NGC image {NGC_PYTORCH_IMAGE} (TensorRT + Torch-TensorRT preinstalled), "
    "or pip install tensorrt --extra-index-url https://pypi.nvidia.com",
    "torch_tensorrt": f"use the NGC image {NGC_PYTORCH_IMAGE}, or pip install 'trtrepo[tensorrt]'",
    "tritonclient": "pip install 'tritonclient[http,grpc]'",
    "tritonserver": "pip install nvidia-pytriton (bundles tritonserver), or use the NGC image " + NGC_TRITON_IMAGE,
    "nvcc": "install the CUDA toolkit (nvcc), or set CUDA_HOME / TRTREPO_NVCC",
    "yaml": "pip install pyyaml",
}


def is_installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_torch() -> bool:
    """torch is installed."""
    return is_installed("torch")


@functools.cache
def has_cuda_torch() -> bool:
    """torch imports and sees a CUDA device."""
    if not has_torch():
        return False
    import torch

    return bool(torch.cuda.is_available())


@functools.cache
def has_tensorrt() -> bool:
    """The TensorRT Python package imports and can make a builder (a stub wheel cannot)."""
    if not is_installed("tensorrt"):
        return False
    try:
        trt = importlib.import_module("tensorrt")
        return hasattr(trt, "Builder") and hasattr(trt, "Logger")
    except Exception as exc:  # a broken install raises anything from ImportError to OSError
        LOGGER.debug("tensorrt import failed: %s", exc)
        return False


@functools.cache
def has_torch_tensorrt() -> bool:
    """torch_tensorrt imports (it needs CUDA torch and TensorRT)."""
    if not is_installed("torch_tensorrt"):
        return False
    try:
        importlib.import_module("torch_tensorrt")
        return True
    except Exception as exc:
        LOGGER.debug("torch_tensorrt import failed: %s", exc)
        return False


def find_nvcc() -> Path | None:
    """nvcc from TRTREPO_NVCC, CUDA_HOME, PATH or /usr/local/cuda, in that order."""
    candidates = [os.environ.get("TRTREPO_NVCC")]
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home:
        candidates.append(str(Path(cuda_home) / "bin" / "nvcc"))
    candidates += [shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def require(name: str, what: str) -> None:
    """Raise MissingDependencyError unless capability ``name`` is present.

    Args:
        name: One of the keys of INSTALL_HINTS.
        what: The stage that needs it, for the message ("the TensorRT target").
    """
    probes: dict[str, Callable[[], bool]] = {
        "torch": has_torch,
        "cuda_torch": has_cuda_torch,
        "tensorrt": has_tensorrt,
        "torch_tensorrt": has_torch_tensorrt,
        "tritonclient": lambda: is_installed("tritonclient"),
        "nvcc": lambda: find_nvcc() is not None,
        "yaml": lambda: is_installed("yaml"),
    }
    if not probes[name]():
        raise MissingDependencyError(f"{what} needs {name}, which is not available here", hint=INSTALL_HINTS[name])
