"""The ops step every stage shares: build the spec's plugin sources (content-cached) and load them into torch.

``trtrepo build``, ``check`` and ``bench`` all call :func:`prepare_ops` before they import a user's factory, so a
factory only ever uses ``torch.ops.<ns>.<op>`` and never needs to know where its ops or trtrepo live.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trtrepo import settings
from trtrepo.contracts import Progress
from trtrepo.errors import SpecError

if TYPE_CHECKING:
    from trtrepo.ops.build import BuiltOps
    from trtrepo.ops.description import OpDescription
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The build cache (``TRTREPO_CACHE_DIR`` or ``~/.cache/trtrepo``), created if missing."""
    path = settings.cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def describe_ops(spec: Spec, models: Sequence[ModelSpec]) -> dict[str, OpDescription]:
    """Every op of the spec's plugin sources; every op a model names under ``ops:`` must be one of them.

    Raises:
        SpecError: An op.yaml is invalid, or a model names an op no plugin source describes.
    """
    known: dict[str, OpDescription] = {}
    if spec.plugin_sources:
        from trtrepo.ops.description import discover_ops

        known = dict(discover_ops(list(spec.plugin_sources)))
    for model in models:
        for op in model.ops:
            if op not in known:
                raise SpecError(
                    f"{model.yaml_path}.ops.{op}: unknown op; known: {', '.join(sorted(known)) or '(none)'}",
                    hint="ops are described by <plugin source>/<op>/op.yaml under the spec's plugin_sources",
                )
    return known


def needs_plugin_library(models: Sequence[ModelSpec], targets: Mapping[str, str]) -> bool:
    """Whether any TensorRT model lowers an op as ``plugin`` (then the TensorRT plugin library is built too)."""
    return any(targets.get(m.name) == "tensorrt" and "plugin" in m.ops.values() for m in models)


def prepare_ops(spec: Spec, models: Sequence[ModelSpec], targets: Mapping[str, str] | None = None, *,
                progress: Progress = LOGGER.info) -> BuiltOps | None:
    """Compile the spec's plugin sources (cached by content) and load them into this process.

    Args:
        spec: The validated model.yaml.
        models: The models this run works on.
        targets: Model name → target; the TensorRT plugin library is built when a TensorRT model needs it.
        progress: One-line progress messages.

    Returns:
        The built ops, or None when the spec has no plugin sources.
    """
    if not spec.plugin_sources:
        return None
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    with_plugin = needs_plugin_library(models, targets or {})
    progress(f"ops: building {', '.join(str(p) for p in spec.plugin_sources)}"
             f"{' (with the TensorRT plugin library)' if with_plugin else ''}")
    built = build_ops(spec.plugin_sources, cache_dir(), tensorrt=with_plugin, progress=progress)
    load_ops(built)
    progress(f"ops: loaded {', '.join(sorted(built.descriptions)) or '(none)'}")
    return built
