"""Fixtures of the build tests: a private cache and a runner of real ``trtrepo build`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from buildproc import Builds


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build-cache")


@pytest.fixture
def builds(build_cache: Path) -> Iterator[Builds]:
    runner = Builds(build_cache)
    yield runner
    runner.stop_all()
