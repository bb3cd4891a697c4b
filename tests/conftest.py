"""Shared fixtures (keep this small: each area has its own tests/<area>/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_VARIABLE = "TRTREPO_CACHE_DIR"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One build cache for the whole session, set before any test runs (so no test's result depends on which ran
    first or on the developer's ~/.cache/trtrepo): ``TRTREPO_TEST_CACHE_DIR`` to reuse one across sessions, else a
    fresh folder. The caller's TRTREPO_CACHE_DIR is restored afterwards."""
    reuse = os.environ.get("TRTREPO_TEST_CACHE_DIR")
    cache = Path(reuse).resolve() if reuse else tmp_path_factory.mktemp("trtrepo_cache")
    cache.mkdir(parents=True, exist_ok=True)
    old = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(cache)
    yield cache
    if old is None:
        os.environ.pop(CACHE_VARIABLE, None)
    else:
        os.environ[CACHE_VARIABLE] = old


def _has_tritonserver() -> str | None:
    from trtrepo.errors import ServeError
    from trtrepo.serve import find_tritonserver

    try:
        find_tritonserver()
    except ServeError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def tritonserver_available() -> None:
    """Skip (with the reason) when no tritonserver or tritonclient is available."""
    reason = _has_tritonserver()
    if reason:
        pytest.skip(reason)
    from trtrepo import deps

    if not deps.is_installed("tritonclient"):
        pytest.skip("tritonclient is not installed")


@pytest.fixture(scope="session")
def example_build_tools() -> None:
    """Skip (saying why) where an example cannot be built: no torch, or no nvcc (the op build also makes PTX); then
    put the checkout on sys.path, since the examples' factories are ``examples.<name>.model:build``."""
    import sys

    from trtrepo import deps

    if not deps.has_torch():
        pytest.skip("torch is not installed")
    if deps.find_nvcc() is None:
        pytest.skip("nvcc not found: the op build also makes PTX")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (examples/, plugin_src/, README.md live here)."""
    return REPO_ROOT


TIER_MARKERS = ("integration", "triton", "gpu", "tensorrt", "slow")
# Fixtures that compile the op library or start processes: a test using one is integration whatever it is marked.
INTEGRATION_FIXTURES = ("built_ops", "project", "broken_root")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The unit tier (``-m unit``): every test not marked integration/triton/gpu/tensorrt/slow and using no fixture
    that compiles or starts processes."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & set(INTEGRATION_FIXTURES) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
        if not any(item.get_closest_marker(m) for m in TIER_MARKERS):
            item.add_marker(pytest.mark.unit)
