"""Read a built repository back: its manifest and every model's config.pbtxt. The one reader serve and check use.

Reading never changes the repository (it may be a read-only mount) and never imports torch or TensorRT. The model
configs are parsed with Triton's own ModelConfig protobuf (tritonclient), like they were written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo.errors import ServeError
from trtrepo.repository.config import CONFIG_FILENAME, parse_text
from trtrepo.repository.manifest import MANIFEST_FILENAME, Manifest, ManifestError, ServingRecord, load_manifest

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    """One model folder of the repository.

    Attributes:
        name: The model's name (its folder).
        folder: The model folder.
        config: Its config.pbtxt as a ``ModelConfig`` message.
        record: Its manifest record, None when the manifest does not list it (a model trtrepo did not build).
    """

    name: str
    folder: Path
    config: Any
    record: ServingRecord | None

    @property
    def is_tensorrt(self) -> bool:
        """Served by Triton's TensorRT backend (a plan)."""
        return bool(self.config.platform == "tensorrt_plan" or self.config.backend == "tensorrt")


@dataclass(frozen=True)
class RepositoryView:
    """A repository as read back: its root, manifest (None if it has none) and model folders."""

    root: Path
    manifest: Manifest | None
    models: dict[str, ModelEntry]

    def record(self, model: str) -> ServingRecord | None:
        """The manifest record of ``model``, or None."""
        return self.manifest.models.get(model) if self.manifest is not None else None

    def served_output_names(self, model: str, spec_outputs: Sequence[str]) -> list[str]:
        """Served output names in the spec's order: from the manifest record, else the spec's own names.

        Raises:
            ServeError: The record serves another number of outputs than the spec lists.
        """
        record = self.record(model)
        if record is None:
            return list(spec_outputs)
        names = [record.output_names.get(o, o) for o in spec_outputs]
        if len(record.output_names) != len(spec_outputs) or set(record.output_names) != set(spec_outputs):
            raise ServeError(f"{self.root / MANIFEST_FILENAME}: model {model!r} serves outputs "
                             f"{sorted(record.output_names)}, the spec lists {list(spec_outputs)}",
                             hint="rebuild the model with trtrepo build")
        return names


def read_manifest(root: Path) -> Manifest | None:
    """The manifest of the repository at ``root``; None when it has none.

    Raises:
        ServeError: The manifest exists but cannot be read back (names the file and why).
    """
    path = Path(root) / MANIFEST_FILENAME
    if not path.is_file():
        return None
    try:
        return load_manifest(path)
    except ManifestError as exc:
        raise ServeError(exc.message, hint=exc.hint) from None


def read_config(path: Path) -> Any:
    """A config.pbtxt as a ``ModelConfig`` message.

    Raises:
        ServeError: It cannot be read or is not a valid config.pbtxt (names the file).
    """
    from google.protobuf import text_format

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"{path}: cannot read: {exc}") from None
    try:
        return parse_text(text)
    except text_format.ParseError as exc:
        raise ServeError(f"{path}: not a valid config.pbtxt: {exc}") from None


def read_repository(root: str | Path) -> RepositoryView:
    """Read the repository at ``root``: the manifest and the config of every model folder.

    Raises:
        ServeError: ``root`` is not a folder, or its manifest or a config cannot be read.
    """
    path = Path(root).resolve()
    if not path.is_dir():
        raise ServeError(f"repository {path} does not exist", hint="run trtrepo build model.yaml first")
    manifest = read_manifest(path)
    models = {}
    for folder in sorted(p for p in path.iterdir() if (p / CONFIG_FILENAME).is_file()):
        config = read_config(folder / CONFIG_FILENAME)
        name = config.name or folder.name
        models[name] = ModelEntry(name=name, folder=folder, config=config,
                                  record=manifest.models.get(name) if manifest is not None else None)
    return RepositoryView(root=path, manifest=manifest, models=models)
