"""Fixtures of the conformance tests: the op descriptions, TensorRT header folders (a capability probe: CI has none),
the harness CLI in a subprocess of its own (a process holds one definition of an op), and a session build cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trtrepo.ops.description import OpDescription, discover_ops

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
TEST_OPS = Path(__file__).resolve().parent / "ops"
CASES = Path(__file__).resolve().parent / "cases"
HEADERS_HINT = ("set TRTREPO_TENSORRT_INCLUDE to TensorRT's include folder, or put NVIDIA/TensorRT's include/ "
                "(tags v10.13.x and v11.x) into .trt_headers/<version>/include")

Cli = Callable[..., subprocess.CompletedProcess[str]]


def header_folders() -> list[Path]:
    """TRTREPO_TENSORRT_INCLUDE, else every .trt_headers/*/include holding NvInferRuntime.h."""
    explicit = os.environ.get("TRTREPO_TENSORRT_INCLUDE")
    if explicit and (Path(explicit) / "NvInferRuntime.h").is_file():
        return [Path(explicit)]
    return sorted(p for p in (REPO / ".trt_headers").glob("*/include") if (p / "NvInferRuntime.h").is_file())


@pytest.fixture(scope="session")
def descriptions() -> dict[str, OpDescription]:
    """The bundled ops and the conformance test op, read from their op.yaml (nothing built)."""
    return dict(discover_ops([PLUGIN_SRC, TEST_OPS]))


@pytest.fixture(scope="session")
def trt_headers() -> list[Path]:
    """The TensorRT header folders here (skips with the reason when there are none, as in CI)."""
    found = header_folders()
    if not found:
        pytest.skip(f"no TensorRT headers (NvInferRuntime.h): {HEADERS_HINT}")
    return found


@pytest.fixture(scope="session")
def conformance_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the session's harness runs (the first run compiles, the later ones hit the cache)."""
    return tmp_path_factory.mktemp("conformance_cache")


@pytest.fixture
def run_cli(conformance_cache: Path) -> Iterator[Cli]:
    """``python -m trtrepo.conformance ARGS`` in a subprocess, with -Werror and the session cache."""

    def run(*args: str | Path, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.update({"TRTREPO_CACHE_DIR": str(conformance_cache), "TRTREPO_PLUGIN_WERROR": "1",
                    "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])})
        return subprocess.run([sys.executable, "-m", "trtrepo.conformance", *map(str, args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    yield run
