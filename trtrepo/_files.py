"""Import a Python file as a module, once per process, under a name derived from its path.

User code lives in files beside model.yaml (factories) and in op folders (decompositions). Several of them may share
a bare module name (``model.py``), so each is imported under a unique name instead of through ``sys.path``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


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
