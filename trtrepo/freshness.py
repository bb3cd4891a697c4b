"""Whether ``trtrepo build`` would change nothing: each model's inputs key against the one its manifest records.

A model's inputs key is a sha256 over everything its artifacts are made from that can be read without importing
torch: trtrepo's own version and sources, the installed versions of torch / TensorRT / Torch-TensorRT, the model's
entry of model.yaml (every key, as parsed), the target and the device it is exported on, the model's source files
(the ``.pt2``, or every ``*.py`` under the factory module's folder) and every file of the op folders of the spec's
plugin roots. When every model a build would make has the key its record holds, and the repository's files still
hash as its manifest says, the build stops there (``up to date``) in well under a second; ``--force`` rebuilds.

What the key cannot see: code a factory imports from outside its own folder (an installed package, a sibling
project) and files it reads at run time (weights loaded by path). Those need ``--force`` after a change, as the
``up to date`` line says.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from trtrepo import __version__
from trtrepo._hashing import content_key
from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

# A factory folder with more Python files than this is not watched (the build always runs): hashing a whole project
# tree on every build would cost more than it saves.
MAX_WATCHED_FILES = 2000
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages"}
_PACKAGES = ("torch", "tensorrt", "torch_tensorrt", "torch-tensorrt", "tensorrt_rtx", "torch-tensorrt-rtx")


def cheap_device() -> str | None:
    """``cpu`` when this machine has no NVIDIA device node (so no export can run on CUDA), else None (only torch
    can tell). Keeps the no-change build free of the torch import on CPU machines."""
    return None if glob.glob("/dev/nvidia[0-9]*") or Path("/dev/dxg").exists() else "cpu"


def inputs_key(spec: Spec, model: ModelSpec, target: str, device: str) -> str | None:
    """The model's inputs key, or None when its sources cannot be watched (too many files, unreadable)."""
    files = _source_files(spec, model)
    if files is None:
        return None
    try:
        return content_key([*_trtrepo_files(), *files, *_op_files(spec)], {
            "trtrepo": __version__,
            "packages": _versions(),
            "model": json.loads(json.dumps(dataclasses.asdict(model), default=str, sort_keys=True)),
            "plugin_sources": [str(p) for p in spec.plugin_sources],
            "target": target,
            "device": device,
        })
    except OSError as exc:  # a file vanished or cannot be read: build, and let the build say what is wrong
        LOGGER.debug("inputs key of %s: %s", model.name, exc)
        return None


def up_to_date(records: Mapping[str, Any], keys: Mapping[str, str | None], repository_ok: bool) -> bool:
    """Every model has a key, its record holds the same, and the repository's files hash as recorded."""
    if not repository_ok or not keys:
        return False
    return all(key is not None and name in records and getattr(records[name], "inputs_key", None) == key
               for name, key in keys.items())


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _trtrepo_files() -> list[tuple[str, Path]]:
    """trtrepo's own sources (an editable install changes without its version changing)."""
    root = Path(__file__).resolve().parent
    return [(f"trtrepo/{p.relative_to(root).as_posix()}", p) for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".h", ".cuh", ".cpp", ".tmpl")]


def _op_files(spec: Spec) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for index, root in enumerate(spec.plugin_sources):
        base = Path(root)
        folders = [base] if (base / "op.yaml").is_file() else sorted(
            p for p in base.iterdir() if (p / "op.yaml").is_file())
        for folder in folders:
            out += [(f"ops{index}/{f.relative_to(base).as_posix()}", f) for f in sorted(folder.rglob("*"))
                    if f.is_file() and "__pycache__" not in f.parts]
    return out


def _source_files(spec: Spec, model: ModelSpec) -> list[tuple[str, Path]] | None:
    source = model.source
    if source.exported_program is not None:
        path = Path(source.exported_program)
        path = path if path.is_absolute() else spec.root / path
        return [("source/program.pt2", path)]
    assert source.factory is not None
    module = source.factory.split(":", 1)[0]
    file = spec.root / (module.replace(".", "/") + ".py")
    folder = file.parent if file.is_file() else spec.root
    found = sorted(_python_files(folder, skip=Path(spec.repository).resolve()))
    if len(found) > MAX_WATCHED_FILES:
        LOGGER.debug("%s: %d Python files under %s: not watched", model.name, len(found), folder)
        return None
    return [(f"source/{p.relative_to(folder).as_posix()}", p) for p in found]


def _python_files(folder: Path, skip: Path) -> Iterable[Path]:
    stack = [folder]
    count = 0
    while stack and count <= MAX_WATCHED_FILES:
        current = stack.pop()
        try:
            entries = list(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                if entry.name.startswith(".") or entry.name in _SKIPPED_DIRS or entry.resolve() == skip:
                    continue
                stack.append(entry)
            elif entry.suffix == ".py" and entry.is_file():
                count += 1
                yield entry


__all__: Sequence[str] = ("cheap_device", "inputs_key", "up_to_date")
