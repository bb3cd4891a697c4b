"""Plain data shared by several stages (targets, TensorRT, repository, serve, check): no logic, no heavy imports.

It sits below every stage so that none of them has to import another stage for a type: a target returns
:class:`ModelArtifacts`, the repository writer takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]
"""One-line progress messages of a long step (the CLI prints them to stderr)."""

JSON = Any
"""A value that ``json.dumps`` writes as is."""


@dataclass(frozen=True)
class IOSpec:
    """A resolved model input or output: trtrepo dtype name and full shape (batch dim included, -1 = dynamic)."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, JSON]:
        """JSON form (the manifest)."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IOSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(str(raw["name"]), str(raw["dtype"]), tuple(int(d) for d in raw["shape"]))


@dataclass(frozen=True, order=True)
class Creator:
    """A TensorRT plugin creator's identity: what a plan looks up and what a plugin library registers."""

    name: str
    version: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.namespace}::{self.name} v{self.version}"

    def to_dict(self) -> dict[str, str]:
        """JSON form (the manifest)."""
        return {"name": self.name, "version": self.version, "namespace": self.namespace}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Creator:
        """Inverse of :meth:`to_dict`."""
        return cls(str(raw["name"]), str(raw["version"]), str(raw.get("namespace", "")))


@dataclass(frozen=True)
class BuildFacts:
    """How a target built the model (diagnostics for people; no code decides on them).

    Attributes:
        log: The target's build log (kept in ``<model>/logs/``), by name.
        seconds: Wall time of the target's build step.
        options: Options the target passed its builder (Torch-TensorRT keyword arguments).
    """

    log: str | None = None
    seconds: float | None = None
    options: dict[str, JSON] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSON]:
        """JSON form."""
        return {"log": self.log, "seconds": self.seconds, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BuildFacts:
        """Inverse of :meth:`to_dict`."""
        seconds = raw.get("seconds")
        return cls(log=raw.get("log"), seconds=float(seconds) if seconds is not None else None,
                   options=dict(raw.get("options") or {}))


@dataclass
class ModelArtifacts:
    """What a target produced for one model version.

    Attributes:
        target: ``torch`` or ``tensorrt``.
        inputs: Inputs as the built artifact names them.
        outputs: Outputs as the built artifact names them, in the spec's output order.
        output_names: Spec output name → served tensor name.
        files: Relative path inside ``<model>/<version>/`` → file content.
        backend: Triton backend (``python``) or None.
        platform: Triton platform (``tensorrt_plan``) or None.
        default_model_filename: config.pbtxt default_model_filename, if not the backend's default.
        plugin_libraries: Built libraries the model needs at serve time; the writer copies each into the
            model's ``<model>/plugins/`` and records the model-relative path.
        parameters: Extra config.pbtxt parameters (string → string).
        gpu_parameters: config.pbtxt parameters set only when an instance group is KIND_GPU (the Python backend's
            ``FORCE_CPU_ONLY_INPUT_TENSORS: no``, which lets inputs stay on the GPU).
        gpu_required: True when the artifact only runs on a GPU (a TensorRT plan); ``kind: auto`` instance groups
            then become KIND_GPU.
        custom_ops: ``ns::op`` of every custom op the program calls.
        lowerings: Custom op → TensorRT lowering (tensorrt target).
        required_creators: Plugin creators the artifact needs at serve time.
        library_creators: Library file name → creators it registers.
        versions: Versions that built the artifact (``torch``, ``tensorrt``, ``torch_tensorrt``).
        build: How the target built it (log, seconds, options).
        inputs_key: What it was built from (:mod:`trtrepo.freshness`), set by the build, not the target.
    """

    target: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    output_names: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    backend: str | None = None
    platform: str | None = None
    default_model_filename: str | None = None
    plugin_libraries: tuple[Path, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    gpu_parameters: dict[str, str] = field(default_factory=dict)
    gpu_required: bool = False
    custom_ops: tuple[str, ...] = ()
    lowerings: dict[str, str] = field(default_factory=dict)
    required_creators: tuple[Creator, ...] = ()
    library_creators: dict[str, tuple[Creator, ...]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    build: BuildFacts = field(default_factory=BuildFacts)
    inputs_key: str | None = None
