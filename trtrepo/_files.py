"""Files a user names: paths resolved with one-line errors, and Python files imported as modules.

User code lives in files beside model.yaml (factories) and in op folders (decompositions). Several of them may share
a bare module name (``model.py``), so each is imported under a unique name instead of through ``sys.path``.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from trtrepo.errors import SpecError


def shown(path: str | os.PathLike[str]) -> str:
    """A path as messages show it: as is, or quoted with escapes when it holds control characters (a NUL)."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def resolve_path(raw: str | os.PathLike[str], where: str, base: Path | None = None) -> Path:
    """``raw`` (``~`` expanded, relative to ``base``) made absolute with symlinks resolved.

    Args:
        raw: The path as the user gave it.
        where: What names it in a message: a YAML key (``repository``), an option (``--out``) or the path itself.
        base: The folder relative paths are relative to; None = the current folder.

    Raises:
        SpecError: The path holds a NUL byte, runs into a symbolic link loop, or cannot be resolved (names
            ``where`` and the path).
    """
    text = os.fspath(raw)
    named = where == shown(text)  # the path names itself (a command-line argument)
    if "\x00" in text:
        raise SpecError(f"{where}: the path contains a NUL byte" if named else f"{where}: {text!r} contains a NUL byte")
    prefix = f"{where}: " if named else f"{where}: {shown(text)}: "
    path = Path(text).expanduser()
    if base is not None:
        path = base / path
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise SpecError(f"{prefix}{os.strerror(errno.ELOOP)}") from None
    except OSError as exc:
        raise SpecError(f"{prefix}{exc.strerror}") from None


def import_file(path: Path, prefix: str = "_trtrepo_file") -> ModuleType:
    """Import ``path`` (cached in ``sys.modules`` under ``<prefix>_<hash of the resolved path>``).

    Raises:
        ImportError: The file cannot be loaded as a module.
        Exception: Whatever executing the module raises (the half-imported module is dropped).
    """
    resolved = Path(path).resolve()
    unique = f"{prefix}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:12]}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {resolved}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module
