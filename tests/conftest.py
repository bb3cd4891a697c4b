"""Shared fixtures (keep this small: each area has its own tests/<area>/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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
