"""Shared fixtures (keep this small: each area has its own tests/<area>/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (examples/, plugin_src/, README.md live here)."""
    return REPO_ROOT
