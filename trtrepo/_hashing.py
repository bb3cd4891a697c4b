"""sha256 of bytes, files, folders and build inputs: the one place trtrepo hashes anything.

Content keys (:func:`content_key`) name files by their path relative to a root, never by absolute path, so an
identical copy of a plugin folder elsewhere hits the same cache entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
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
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skipped or any(rel.startswith(s + "/") for s in skipped):
            continue
        if path.is_symlink():
            out[rel] = "symlink:" + os.readlink(path)
        elif path.is_file():
            out[rel] = sha256_file(path)
    return out


def content_key(files: Iterable[tuple[str, Path]], extra: object = None) -> str:
    """sha256 over ``extra`` (JSON) and each ``(name, file)``: the name as given (a relative path), then the bytes.

    Two trees with the same relative names and bytes get the same key wherever they live.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, path in sorted(set(files)):
        digest.update(name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()
