"""Fixtures of the TensorRT tests: the real op descriptions of plugin_src, read into OpFacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.tensorrt.opfacts import OpFacts, op_facts

TOP = Path(__file__).resolve().parents[2]
PLUGIN_SRC = TOP / "plugin_src"


def _load(op: str) -> OpFacts:
    from trtrepo.ops.description import load_op_description

    return op_facts(load_op_description(PLUGIN_SRC / op / "op.yaml"))


@pytest.fixture(scope="session")
def bias_gelu() -> OpFacts:
    return _load("bias_gelu")


@pytest.fixture(scope="session")
def rms_norm() -> OpFacts:
    return _load("fused_add_rms_norm")
