"""The contract between the build orchestrator and the targets (``torch``, ``tensorrt``).

A target is a function registered with :func:`register_target`. It gets the build context, the model's spec and
its ExportedProgram, and returns :class:`ModelArtifacts`: the files of the version folder, the resolved input and
output tensors (read from what was built, never assumed) and the plugin libraries the model needs at serve time.
The repository writer turns that into config.pbtxt and the folder layout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.errors import SpecError

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class IOSpec:
    """A resolved model input or output: trtrepo dtype name and full shape (batch dim included, -1 = dynamic)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass
class ModelArtifacts:
    """What a target produced for one model version.

    Attributes:
        target: ``torch`` or ``tensorrt``.
        inputs: Inputs as the built artifact names them.
        outputs: Outputs as the built artifact names them (the spec's output names, in order).
        files: Relative path inside ``<model>/<version>/`` → file content.
        backend: Triton backend (``python``) or None.
        platform: Triton platform (``tensorrt_plan``) or None.
        default_model_filename: config.pbtxt default_model_filename, if not the backend's default.
        plugin_libraries: Built libraries the model needs at serve time; the writer copies each into the
            model's ``<model>/plugins/`` and records the model-relative path.
        parameters: Extra config.pbtxt parameters (string → string).
        gpu_required: True when the artifact only runs on a GPU (a TensorRT plan); ``kind: auto`` instance groups
            then become KIND_GPU.
        record: Target-specific facts for the manifest (lowering per op, engine TensorRT version, ...).
    """

    target: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    files: dict[str, bytes] = field(default_factory=dict)
    backend: str | None = None
    platform: str | None = None
    default_model_filename: str | None = None
    plugin_libraries: tuple[Path, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    gpu_required: bool = False
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildContext:
    """Shared state of one build.

    Attributes:
        spec: The validated model.yaml.
        ops: The built custom ops (``trtrepo.ops.build.BuiltOps``); None when the spec builds no plugin sources.
        cache_dir: Content-hash cache of compiled ops, timing caches, exported programs.
        log_dir: Where stage logs go (kept beside the artifacts, copied into each model's ``<model>/logs/``).
        device: ``cuda`` when CUDA torch sees a GPU, else ``cpu``: where export and eager references run.
        progress: Callback for one-line progress messages.
    """

    spec: Spec
    ops: Any
    cache_dir: Path
    log_dir: Path
    device: str = "cpu"
    progress: Callable[[str], None] = LOGGER.info


TargetFn = Callable[[BuildContext, "ModelSpec", Any], ModelArtifacts]
_TARGETS: dict[str, TargetFn] = {}


def register_target(name: str) -> Callable[[TargetFn], TargetFn]:
    """Decorator: register ``fn(ctx, model, exported_program) -> ModelArtifacts`` as target ``name``."""

    def wrap(fn: TargetFn) -> TargetFn:
        _TARGETS[name] = fn
        return fn

    return wrap


def get_target(name: str) -> TargetFn:
    """The registered target ``name`` (importing the target modules on first use)."""
    import trtrepo.targets.tensorrt_target
    import trtrepo.targets.torch_target  # noqa: F401  (registers "torch")

    if name not in _TARGETS:
        raise SpecError(f"target: unknown target {name!r}", hint=f"known targets: {', '.join(sorted(_TARGETS))}")
    return _TARGETS[name]
