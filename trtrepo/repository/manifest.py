"""The deployment record (``trtrepo-manifest.json``): environment facts and artifact hashes.

Environment facts are cheap: package versions come from installed metadata (no import), torch is asked about CUDA
only when it is already imported (a build has imported it; ``trtrepo doctor`` asks explicitly), TensorRT is never
imported here, and the driver comes from ``nvidia-smi`` when it exists.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)

MANIFEST_FILENAME = "trtrepo-manifest.json"
MANIFEST_SCHEMA = 1

# distribution names whose version the manifest records (several names: whichever is installed)
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-rtx"),
    "torch_tensorrt": ("torch-tensorrt", "torch_tensorrt", "torch-tensorrt-rtx"),
    "tritonclient": ("tritonclient",),
    "nvidia_pytriton": ("nvidia-pytriton",),
    "numpy": ("numpy",),
}


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """Relative posix path → sha256 of every regular file under ``root`` (sorted; symlinks by their target text).

    Args:
        root: The folder.
        skip: Relative paths (files or folders) to leave out.
    """
    skipped = set(skip)
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skipped or any(rel.startswith(s + "/") for s in skipped):
            continue
        if path.is_symlink():
            out[rel] = "symlink:" + os.readlink(path)
        elif path.is_file():
            out[rel] = sha256_file(path)
    return out


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
    env.update(torch_facts(import_torch))
    smi = nvidia_smi()
    if smi is not None:
        gpu = dict(env.get("gpu") or {})
        gpu.setdefault("name", smi["name"])
        gpu.setdefault("arch", smi["arch"])
        gpu["driver"] = smi["driver"]
        env["gpu"] = gpu
    return env


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest as stable, indented JSON."""
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


def read_manifest(repository: Path) -> dict[str, Any] | None:
    """The manifest of an existing repository, or None when it has none or it is unreadable."""
    path = repository / MANIFEST_FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        LOGGER.warning("%s: unreadable manifest (%s); treating the folder as not written by trtrepo", path, exc)
        return None
    return data if isinstance(data, dict) else None
