"""The deployment record (``trtrepo-manifest.json``): environment facts, artifact hashes and one typed
:class:`ServingRecord` per model, which serve, check and the lanes read back through
:mod:`trtrepo.repository.reader` (never by string keys).

Environment facts are cheap: package versions come from installed metadata (no import), torch is asked about CUDA
only when it is already imported (a build has imported it; ``trtrepo doctor`` asks explicitly), TensorRT is never
imported here, and the driver comes from ``nvidia-smi`` when it exists.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo.contracts import JSON, BuildFacts, Creator, IOSpec
from trtrepo.errors import TrtrepoError

LOGGER = logging.getLogger(__name__)

MANIFEST_FILENAME = "trtrepo-manifest.json"
MANIFEST_SCHEMA = 2

# distribution names whose version the manifest records (several names: whichever is installed)
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-rtx"),
    "torch_tensorrt": ("torch-tensorrt", "torch_tensorrt", "torch-tensorrt-rtx"),
    "tritonclient": ("tritonclient",),
    "nvidia_pytriton": ("nvidia-pytriton",),
    "numpy": ("numpy",),
}


def package_version(key: str) -> str | None:
    """Installed version of a package named in ``_DISTRIBUTIONS`` (``torch``, ``tensorrt``, ...), or None."""
    for dist in _DISTRIBUTIONS.get(key, (key,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def nvidia_smi() -> dict[str, str] | None:
    """GPU name, driver and compute capability from ``nvidia-smi`` (first GPU), or None where there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=15, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        LOGGER.debug("nvidia-smi failed: %s", exc)
        return None
    first = out.strip().splitlines()[0] if out.strip() else ""
    parts = [p.strip() for p in first.split(",")]
    if len(parts) < 3:
        return None
    return {"name": parts[0], "driver": parts[1], "arch": "sm_" + parts[2].replace(".", "")}


def torch_facts(import_torch: bool = False) -> dict[str, Any]:
    """torch's CUDA facts; torch is imported only when already imported or ``import_torch`` is set."""
    torch = sys.modules.get("torch")
    if torch is None and import_torch and package_version("torch") is not None:
        try:
            import torch  # type: ignore[no-redef]
        except Exception as exc:  # a broken install must not break the record
            LOGGER.debug("torch import failed: %s", exc)
            torch = None
    if torch is None:
        return {}
    facts: dict[str, Any] = {"torch_cuda": getattr(torch.version, "cuda", None)}
    try:
        available = bool(torch.cuda.is_available())
    except Exception:
        available = False
    facts["cuda_available"] = available
    if available:
        major, minor = torch.cuda.get_device_capability(0)
        facts["gpu"] = {"name": torch.cuda.get_device_name(0), "arch": f"sm_{major}{minor}"}
    return facts


def environment(import_torch: bool = False) -> dict[str, Any]:
    """Versions and hardware facts for the manifest.

    Args:
        import_torch: Import torch to ask about CUDA even when nothing imported it yet.
    """
    from trtrepo import __version__

    env: dict[str, Any] = {
        "trtrepo": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for key in _DISTRIBUTIONS:
        env[key] = package_version(key)
    # an NGC container names its release (``25.10``); the serving image must be of the same one (TensorRT plans)
    release = os.environ.get("NVIDIA_PYTORCH_VERSION") or os.environ.get("NVIDIA_TRITON_SERVER_VERSION")
    if release:
        env["ngc_release"] = release
    env.update(torch_facts(import_torch))
    smi = nvidia_smi()
    if smi is not None:
        gpu = dict(env.get("gpu") or {})
        gpu.setdefault("name", smi["name"])
        gpu.setdefault("arch", smi["arch"])
        gpu["driver"] = smi["driver"]
        env["gpu"] = gpu
    return env




class ManifestError(TrtrepoError):
    """A manifest that cannot be read back: not JSON, not this schema, or a field of the wrong shape."""


@dataclass(frozen=True)
class ServingRecord:
    """One model of the repository as served: what serve, check and the lanes need to know about it.

    Attributes:
        target: ``torch`` or ``tensorrt``.
        version: The version folder built.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        platform: config.pbtxt platform (``tensorrt_plan``) or None.
        backend: config.pbtxt backend (``python``) or None.
        inputs: Served inputs (names, dtypes, full shapes with -1 for dynamic dims).
        outputs: Served outputs, in the spec's output order.
        output_names: Spec output name → served tensor name (a plan names its outputs ``output0``…).
        plugin_libraries: Libraries the model needs at serve time, relative to its model folder.
        custom_ops: ``ns::op`` of every custom op the exported program calls.
        lowerings: Custom op → its TensorRT lowering (``plugin``, ``aot``, ``decompose``); empty for torch.
        required_creators: Plugin creators the plan needs at serve time (ops lowered ``plugin``).
        library_creators: Library file name → creators it registers (from the op descriptions it was built from).
        versions: Versions that built the artifact (``torch``, ``tensorrt``, ``torch_tensorrt``) where they matter.
        export_device: ``cuda`` or ``cpu``: where the program was exported.
        build: How the target built it.
        files: Repository-relative path → sha256 of every file of the model folder (logs excluded).
        spec: The model.yaml this model was built from.
        inputs_key: What it was built from (:mod:`trtrepo.freshness`); a build with the same key changes nothing.
    """

    target: str
    version: int
    precision: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    output_names: dict[str, str]
    platform: str | None = None
    backend: str | None = None
    plugin_libraries: tuple[str, ...] = ()
    custom_ops: tuple[str, ...] = ()
    lowerings: dict[str, str] = field(default_factory=dict)
    required_creators: tuple[Creator, ...] = ()
    library_creators: dict[str, tuple[Creator, ...]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    export_device: str = "cpu"
    build: BuildFacts = field(default_factory=BuildFacts)
    files: dict[str, str] = field(default_factory=dict)
    spec: str = ""
    inputs_key: str | None = None

    def served_output_names(self) -> list[str]:
        """The served output names in the spec's output order."""
        return list(self.output_names.values())

    def to_dict(self) -> dict[str, JSON]:
        """JSON form (one entry of the manifest's ``models``)."""
        return {
            "target": self.target,
            "version": self.version,
            "precision": self.precision,
            "platform": self.platform,
            "backend": self.backend,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "output_names": dict(self.output_names),
            "plugin_libraries": list(self.plugin_libraries),
            "custom_ops": list(self.custom_ops),
            "lowerings": dict(self.lowerings),
            "required_creators": [c.to_dict() for c in self.required_creators],
            "library_creators": {lib: [c.to_dict() for c in cs] for lib, cs in sorted(self.library_creators.items())},
            "versions": dict(self.versions),
            "export_device": self.export_device,
            "build": self.build.to_dict(),
            "files": dict(sorted(self.files.items())),
            "spec": self.spec,
            "inputs_key": self.inputs_key,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ServingRecord:
        """Inverse of :meth:`to_dict`.

        Raises:
            ManifestError: A field is missing or of the wrong shape.
        """
        try:
            return cls(
                target=str(raw["target"]),
                version=int(raw["version"]),
                precision=str(raw["precision"]),
                platform=raw.get("platform"),
                backend=raw.get("backend"),
                inputs=tuple(IOSpec.from_dict(t) for t in raw["inputs"]),
                outputs=tuple(IOSpec.from_dict(t) for t in raw["outputs"]),
                output_names={str(k): str(v) for k, v in dict(raw["output_names"]).items()},
                plugin_libraries=tuple(str(p) for p in raw.get("plugin_libraries", ())),
                custom_ops=tuple(str(o) for o in raw.get("custom_ops", ())),
                lowerings={str(k): str(v) for k, v in dict(raw.get("lowerings") or {}).items()},
                required_creators=tuple(Creator.from_dict(c) for c in raw.get("required_creators", ())),
                library_creators={str(lib): tuple(Creator.from_dict(c) for c in cs)
                                  for lib, cs in dict(raw.get("library_creators") or {}).items()},
                versions={str(k): str(v) for k, v in dict(raw.get("versions") or {}).items()},
                export_device=str(raw.get("export_device", "cpu")),
                build=BuildFacts.from_dict(raw.get("build") or {}),
                files={str(k): str(v) for k, v in dict(raw.get("files") or {}).items()},
                spec=str(raw.get("spec", "")),
                inputs_key=str(raw["inputs_key"]) if raw.get("inputs_key") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"model record is malformed ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class OpsRecord:
    """The custom ops the last build compiled."""

    ops: tuple[str, ...]
    with_cuda: bool
    hashes: dict[str, str]

    def to_dict(self) -> dict[str, JSON]:
        """JSON form."""
        return {"ops": list(self.ops), "with_cuda": self.with_cuda, "hashes": dict(self.hashes)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> OpsRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(str(o) for o in raw.get("ops", ())), bool(raw.get("with_cuda")),
                   {str(k): str(v) for k, v in dict(raw.get("hashes") or {}).items()})


@dataclass(frozen=True)
class Manifest:
    """``trtrepo-manifest.json``: the deployment record of a whole repository.

    Attributes:
        environment: Versions and hardware facts of the machine that last built it (:func:`environment`).
        spec_path: The model.yaml of the last build.
        spec_sha256: Its sha256.
        device: ``cuda`` or ``cpu``: where the last build ran.
        ops: The custom ops the last build compiled, or None.
        plugins: Repository-relative path of every per-model library copy → sha256.
        models: Model name → its serving record (models kept from earlier builds included).
        schema: :data:`MANIFEST_SCHEMA`.
    """

    environment: dict[str, JSON]
    spec_path: str
    spec_sha256: str
    device: str
    models: dict[str, ServingRecord]
    ops: OpsRecord | None = None
    plugins: dict[str, str] = field(default_factory=dict)
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> dict[str, JSON]:
        """JSON form."""
        return {
            "schema": self.schema,
            "environment": dict(self.environment),
            "spec": {"path": self.spec_path, "sha256": self.spec_sha256},
            "device": self.device,
            "ops": self.ops.to_dict() if self.ops is not None else None,
            "plugins": dict(sorted(self.plugins.items())),
            "models": {name: rec.to_dict() for name, rec in sorted(self.models.items())},
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Manifest:
        """Inverse of :meth:`to_dict`.

        Raises:
            ManifestError: Not a mapping, another schema, or a malformed field (the message names the model).
        """
        if not isinstance(raw, Mapping):
            raise ManifestError(f"must be a JSON object, got {type(raw).__name__}")
        if raw.get("schema") != MANIFEST_SCHEMA:
            raise ManifestError(f"schema {raw.get('schema')!r}, this trtrepo reads schema {MANIFEST_SCHEMA}")
        models = {}
        for name, entry in dict(raw.get("models") or {}).items():
            try:
                models[str(name)] = ServingRecord.from_dict(entry)
            except ManifestError as exc:
                raise ManifestError(f"models.{name}: {exc}") from None
        spec = raw.get("spec") or {}
        ops = raw.get("ops")
        return cls(environment=dict(raw.get("environment") or {}), spec_path=str(spec.get("path", "")),
                   spec_sha256=str(spec.get("sha256", "")), device=str(raw.get("device", "cpu")), models=models,
                   ops=OpsRecord.from_dict(ops) if isinstance(ops, Mapping) else None,
                   plugins={str(k): str(v) for k, v in dict(raw.get("plugins") or {}).items()})


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write the manifest as stable, indented JSON."""
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True, default=str) + "\n")


def load_manifest(path: Path) -> Manifest:
    """Read one manifest file.

    Raises:
        ManifestError: Unreadable, not JSON, or not this schema (the message starts with the path).
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ManifestError(f"{path}: not JSON: {exc}") from None
    try:
        return Manifest.from_dict(data)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}", hint="rebuild the repository with trtrepo build") from None
