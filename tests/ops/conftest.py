"""Session fixtures for the ops tests: one CPU build of the repository's ops into a fresh cache, loaded once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"


@pytest.fixture(scope="session")
def ops_cache(session_cache: Path) -> Path:
    """The session's build cache (tests/conftest.py), also used by the stages (TRTREPO_CACHE_DIR)."""
    return session_cache


@pytest.fixture(scope="session")
def build_stats() -> dict[str, int]:
    """Facts about the session's first build of plugin_src here: ``first_build_compiles`` = compiler processes it
    started (0 when an earlier test of the session built the same sources into the shared session cache), and
    ``session_compiles`` = compiler processes this process started so far (that earlier build included)."""
    return {}


@pytest.fixture(scope="session")
def built_ops(ops_cache: Path, build_stats: dict[str, int]):  # -> BuiltOps
    """The CPU op library (+ PTX) built once per session and loaded into this process."""
    if not deps.has_torch():
        pytest.skip("torch is not installed")
    if deps.find_nvcc() is None:
        pytest.skip("nvcc not found: the build also makes PTX")
    from trtrepo.ops import build
    from trtrepo.ops.library import load_ops

    before = build.compile_count()
    built = build.build_ops([PLUGIN_SRC], ops_cache, with_cuda=None)  # CUDA too where CUDA torch sees a GPU
    build_stats["first_build_compiles"] = build.compile_count() - before
    build_stats["session_compiles"] = build.compile_count()
    load_ops(built)
    return built


@pytest.fixture
def write_op(tmp_path: Path) -> Callable[[str], object]:
    """Write an op.yaml (no kernel block) into a fresh folder under tmp_path and load it."""
    from trtrepo.ops.description import load_op_description

    count = iter(range(1000))

    def write(text: str) -> object:
        folder = tmp_path / f"op{next(count)}"
        folder.mkdir()
        (folder / "op.yaml").write_text(text)
        return load_op_description(folder / "op.yaml")

    return write
