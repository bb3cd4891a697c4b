"""Session fixtures for the ops tests: one CPU build of the repository's ops into a fresh cache, loaded once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"


@pytest.fixture(scope="session")
def ops_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache for this session, also used by the stages (TRTREPO_CACHE_DIR)."""
    cache = tmp_path_factory.mktemp("trtrepo_cache")
    old = os.environ.get("TRTREPO_CACHE_DIR")
    os.environ["TRTREPO_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("TRTREPO_CACHE_DIR", None)
    else:
        os.environ["TRTREPO_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def build_stats() -> dict[str, int]:
    """Facts about the session's first build: ``first_build_compiles`` = compiler processes it started."""
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
