"""Bench test fixtures. Anything that loads the op library runs in a subprocess: a process may load the library from
one path only (a second copy aborts on duplicate op registration), and other test areas load their own copy."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def subprocess_env(session_cache: Path) -> dict[str, str]:
    """Environment for child processes: the repository on PYTHONPATH and one shared op cache.

    The cache is the session's (tests/conftest.py), so the CPU op library is compiled at most once (content-hash
    cache).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["TRTREPO_CACHE_DIR"] = str(session_cache)
    return env


@pytest.fixture(scope="session")
def run_python(subprocess_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_python(args, timeout)``: run ``python <args>`` in the repository root with :func:`subprocess_env`."""

    def run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=REPO, env=subprocess_env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    return run


@pytest.fixture(scope="session")
def serving_stack() -> None:
    """Skip (with the reason) unless this machine can build an example and serve it: torch, nvcc (the op build
    also makes PTX), tritonclient and a tritonserver."""
    from trtrepo import deps
    from trtrepo.errors import ServeError

    if not deps.has_torch():
        pytest.skip("torch is not installed")
    if deps.find_nvcc() is None:
        pytest.skip("nvcc not found: the op build also makes PTX")
    if not deps.is_installed("tritonclient"):
        pytest.skip("tritonclient is not installed")
    from trtrepo.serve import find_tritonserver

    try:
        find_tritonserver()
    except ServeError as exc:
        pytest.skip(f"no tritonserver: {exc}")
