"""What a TensorRT install can say about a plugin library (needs TensorRT).

The pure plugin checks (clashes, missing creators, version mismatches, launch flags) are in
:mod:`trtrepo.repository.plugins`; this module only asks TensorRT itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trtrepo.contracts import Creator
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)


def creators_in_library(path: str | Path) -> list[Creator]:
    """Load a plugin library into this process's TensorRT registry and list the creators it added.

    Raises:
        MissingDependencyError: TensorRT is not installed.
        ServeError: TensorRT cannot load the library.
    """
    from trtrepo.deps import require

    require("tensorrt", "reading the creators of a plugin library")
    import tensorrt as trt

    registry = trt.get_plugin_registry()

    def current() -> set[Creator]:
        return {Creator(str(c.name), str(c.plugin_version), str(c.plugin_namespace)) for c in registry.all_creators}

    before = current()
    try:
        registry.load_library(str(path))
    except Exception as exc:  # pybind raises RuntimeError/TypeError for a missing symbol or bad file
        raise ServeError(f"TensorRT cannot load plugin library {path}: {exc}",
                         hint="the library must export getCreators (see plugin_src/common/trt_plugin_registry.cpp)"
                         ) from None
    return sorted(current() - before)
