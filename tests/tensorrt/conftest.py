"""Fixtures of the TensorRT tests: the real op descriptions of plugin_src, and small op.yaml files of one's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from trtrepo.ops.description import OpDescription, load_op_description

TOP = Path(__file__).resolve().parents[2]
PLUGIN_SRC = TOP / "plugin_src"


@pytest.fixture(scope="session")
def bias_gelu() -> OpDescription:
    return load_op_description(PLUGIN_SRC / "bias_gelu" / "op.yaml")


@pytest.fixture(scope="session")
def rms_norm() -> OpDescription:
    return load_op_description(PLUGIN_SRC / "fused_add_rms_norm" / "op.yaml")


@pytest.fixture
def write_op(tmp_path: Path) -> Callable[[str], OpDescription]:
    """Write an op.yaml (no kernel block) into a fresh folder under tmp_path and load it."""
    count = iter(range(1000))

    def write(text: str) -> OpDescription:
        folder = tmp_path / f"op{next(count)}"
        folder.mkdir()
        (folder / "op.yaml").write_text(text)
        return load_op_description(folder / "op.yaml")

    return write
