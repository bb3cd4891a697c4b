"""The contract between the build orchestrator and the targets (``torch``, ``tensorrt``), and the table of targets.

A target is a function ``build(ctx, model, exported_program) ->`` :class:`~trtrepo.contracts.ModelArtifacts`: the
files of the version folder, the resolved input and output tensors (read from what was built, never assumed), the
plugin libraries the model needs at serve time and the typed facts the manifest records. The repository writer turns
that into config.pbtxt, the folder layout and the model's :class:`~trtrepo.repository.manifest.ServingRecord`.

The table names each target's module and function as text and imports it on first use: this module imports no
target, so targets can import it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from trtrepo.contracts import ModelArtifacts, Progress
from trtrepo.errors import SpecError

if TYPE_CHECKING:
    from trtrepo.ops.build import BuiltOps
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

TARGETS: dict[str, str] = {
    "torch": "trtrepo.targets.torch_target:build_torch",
    "tensorrt": "trtrepo.targets.tensorrt_target:build_tensorrt",
}


@dataclass
class BuildContext:
    """Shared state of one build.

    Attributes:
        spec: The validated model.yaml.
        ops: The built custom ops; None when the spec builds no plugin sources.
        cache_dir: Content-hash cache of compiled ops, timing caches, exported programs.
        log_dir: Where stage logs go (copied into each model's ``<model>/logs/``).
        device: ``cuda`` when CUDA torch sees a GPU, else ``cpu``: where export and eager references run.
        progress: Callback for one-line progress messages.
    """

    spec: Spec
    ops: BuiltOps | None
    cache_dir: Path
    log_dir: Path
    device: str = "cpu"
    progress: Progress = LOGGER.info


TargetFn = Callable[[BuildContext, "ModelSpec", Any], ModelArtifacts]


def get_target(name: str) -> TargetFn:
    """The target ``name``, imported on first use.

    Raises:
        SpecError: No such target.
    """
    if name not in TARGETS:
        raise SpecError(f"target: unknown target {name!r}", hint=f"known targets: {', '.join(sorted(TARGETS))}")
    module, function = TARGETS[name].split(":")
    return cast(TargetFn, getattr(importlib.import_module(module), function))
