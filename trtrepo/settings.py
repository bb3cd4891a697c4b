"""Every ``TRTREPO_*`` environment variable, its default and what it does: the only module that reads them.

Values are read when asked for (not at import), so a test or a wrapper script can set a variable and see it take
effect. ``trtrepo doctor`` lists them (:func:`describe`). A malformed value is a :class:`SpecError` naming the
variable and what it accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trtrepo.errors import SpecError


@dataclass(frozen=True)
class Setting:
    """One environment variable trtrepo reads."""

    name: str
    default: str
    help: str

    def raw(self) -> str | None:
        """The variable's value, None when unset or empty."""
        value = os.environ.get(self.name)
        return value if value else None


CACHE_DIR = Setting("TRTREPO_CACHE_DIR", "$XDG_CACHE_HOME/trtrepo or ~/.cache/trtrepo",
                    "build cache: compiled ops, PTX, plugin libraries, timing caches, the assembled backend folder, "
                    "mirrors of published repositories (remote/) "
                    "(entries are keyed by content: one cache serves every spec and process)")
TRITONSERVER = Setting("TRTREPO_TRITONSERVER", "tritonserver on PATH, then the nvidia-pytriton wheel's",
                       "the tritonserver binary that serve, check and bench start")
MODEL_PYTHONPATH = Setting("TRTREPO_PYTHONPATH", "set by trtrepo for the server it starts",
                           "folders the generated model.py puts first on sys.path (the server's stub ignores "
                           "PYTHONPATH)")
NVCC = Setting("TRTREPO_NVCC", "CUDA_HOME/bin/nvcc, nvcc on PATH, /usr/local/cuda/bin/nvcc", "the CUDA compiler")
CUDA_ARCHS = Setting("TRTREPO_CUDA_ARCHS", "the visible GPU's; else 90 (library) and 80 (PTX)",
                     "CUDA architectures, e.g. 80;90 (also sm_90, compute_90a, 9.0)")
BUILD_JOBS = Setting("TRTREPO_BUILD_JOBS", "the CPU count", "parallel compiler processes")
TENSORRT_ROOT = Setting("TRTREPO_TENSORRT_ROOT", "TENSORRT_ROOT, /usr/local/tensorrt, /opt/tensorrt, /usr",
                        "where TensorRT is installed (include/NvInfer.h, lib/libnvinfer.so)")
TENSORRT_INCLUDE = Setting("TRTREPO_TENSORRT_INCLUDE", "the include folder of the TensorRT install",
                           "a folder holding NvInferRuntime.h: enough to compile the plugin library (it links no "
                           "libnvinfer)")
PLUGIN_WERROR = Setting("TRTREPO_PLUGIN_WERROR", "0", "1: compile the TensorRT plugin library with -Werror")
TRT_OPT_LEVEL = Setting("TRTREPO_TRT_OPT_LEVEL", "Torch-TensorRT's", "TensorRT builder optimization level (0-5)")
CHECK_TIMEOUT = Setting("TRTREPO_CHECK_TIMEOUT", "60", "seconds per request and for model readiness in check")
PERF_ANALYZER = Setting("TRTREPO_PERF_ANALYZER", "perf_analyzer on PATH",
                        "perf_analyzer for bench, or 0 to always use trtrepo's own load loop")
LOCK_TIMEOUT = Setting("TRTREPO_LOCK_TIMEOUT", "300",
                       "seconds a build waits for another build writing the same repository before it gives up")
SWAP = Setting("TRTREPO_SWAP", "exchange",
               "how a build puts the new repository in place: exchange (one renameat2 RENAME_EXCHANGE; the two-rename "
               "scheme where the filesystem lacks it) or rename (always the two-rename scheme: for filesystems whose "
               "exchange misbehaves, and for its tests)")
DEBUG_PAUSE = Setting("TRTREPO_DEBUG_PAUSE", "unset",
                      "debugging and fault tests only: POINT or POINT:SECONDS makes the repository writer print "
                      "'debug: paused at POINT (pid N)' to stderr and sleep there (without SECONDS until killed, at "
                      "most 600 s; SIGUSR1 ends it early); points: locked, staged, aside (rename scheme only), swapped")

ALL: tuple[Setting, ...] = (CACHE_DIR, TRITONSERVER, MODEL_PYTHONPATH, NVCC, CUDA_ARCHS, BUILD_JOBS, TENSORRT_ROOT,
                            TENSORRT_INCLUDE, PLUGIN_WERROR, TRT_OPT_LEVEL, CHECK_TIMEOUT, PERF_ANALYZER, LOCK_TIMEOUT,
                            SWAP, DEBUG_PAUSE)

DEFAULT_CHECK_TIMEOUT = 60.0
DEFAULT_LOCK_TIMEOUT = 300.0
SWAP_MODES = ("exchange", "rename")
DEBUG_PAUSE_POINTS = ("locked", "staged", "aside", "swapped")
DEBUG_PAUSE_LONGEST = 600.0


def cache_dir() -> Path:
    """The build cache root (:data:`CACHE_DIR`), absolute; not created here."""
    env = CACHE_DIR.raw()
    if env:
        return Path(env).expanduser().resolve()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser().resolve() / "trtrepo"


def build_jobs() -> int:
    """Parallel compiler processes (:data:`BUILD_JOBS`), at least 1."""
    value = BUILD_JOBS.raw()
    if value is None:
        return max(1, os.cpu_count() or 1)
    return _positive_int(BUILD_JOBS, value)


def check_timeout() -> float:
    """Seconds per check request and readiness wait (:data:`CHECK_TIMEOUT`)."""
    value = CHECK_TIMEOUT.raw()
    if value is None:
        return DEFAULT_CHECK_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise SpecError(f"{CHECK_TIMEOUT.name}: must be a positive number of seconds, got {value!r}")
    return seconds


def plugin_werror() -> bool:
    """Whether plugin sources compile with -Werror (:data:`PLUGIN_WERROR`)."""
    value = PLUGIN_WERROR.raw()
    if value not in (None, "0", "1"):
        raise SpecError(f"{PLUGIN_WERROR.name}: must be 0 or 1, got {value!r}")
    return value == "1"


def lock_timeout() -> float:
    """Seconds a build waits for the repository lock (:data:`LOCK_TIMEOUT`); 0 = do not wait."""
    value = LOCK_TIMEOUT.raw()
    if value is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise SpecError(f"{LOCK_TIMEOUT.name}: must be a number of seconds >= 0, got {value!r}")
    return seconds


def swap_mode() -> str:
    """``exchange`` or ``rename`` (:data:`SWAP`)."""
    value = SWAP.raw() or SWAP_MODES[0]
    if value not in SWAP_MODES:
        raise SpecError(f"{SWAP.name}: must be one of {', '.join(SWAP_MODES)}, got {value!r}")
    return value


def debug_pause() -> tuple[str, float] | None:
    """(point, seconds) of :data:`DEBUG_PAUSE`, None when unset; without seconds the pause is the longest one."""
    value = DEBUG_PAUSE.raw()
    if value is None:
        return None
    point, _, seconds_text = value.partition(":")
    try:
        seconds = float(seconds_text) if seconds_text else DEBUG_PAUSE_LONGEST
    except ValueError:
        seconds = -1.0
    if point not in DEBUG_PAUSE_POINTS or not 0 <= seconds <= DEBUG_PAUSE_LONGEST:
        raise SpecError(f"{DEBUG_PAUSE.name}: must be POINT or POINT:SECONDS (points: "
                        f"{', '.join(DEBUG_PAUSE_POINTS)}; at most {DEBUG_PAUSE_LONGEST:g} s), got {value!r}")
    return point, seconds


def trt_opt_level() -> int | None:
    """The TensorRT builder optimization level (:data:`TRT_OPT_LEVEL`), None for the default."""
    value = TRT_OPT_LEVEL.raw()
    if value is None:
        return None
    if value not in {"0", "1", "2", "3", "4", "5"}:
        raise SpecError(f"{TRT_OPT_LEVEL.name}: must be 0-5, got {value!r}")
    return int(value)


def perf_analyzer() -> str | None:
    """:data:`PERF_ANALYZER` as given (``0`` disables perf_analyzer), None when unset."""
    return PERF_ANALYZER.raw()


def describe() -> list[tuple[str, str | None, str, str]]:
    """(name, current value, default, what it does) of every setting, for ``trtrepo doctor``."""
    return [(s.name, s.raw(), s.default, s.help) for s in ALL]


def _positive_int(setting: Setting, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise SpecError(f"{setting.name}: must be a positive integer, got {value!r}")
    return number
