"""Engine metadata (plain data) → IOSpecs and the spec output name → engine name mapping."""

from __future__ import annotations

import pytest

from trtrepo.contracts import IOSpec
from trtrepo.errors import BuildError
from trtrepo.tensorrt.engine_io import EngineTensor, order_outputs, resolve_engine_io


def _engine(*outs: str) -> list[EngineTensor]:
    tensors = [EngineTensor("x", True, "HALF", (-1, 64)), EngineTensor("residual", True, "HALF", (-1, 64))]
    return tensors + [EngineTensor(n, False, "HALF", (-1, 64)) for n in outs]


def test_outputs_mapped_in_order_torch_tensorrt_names() -> None:
    io = resolve_engine_io(_engine("output1", "output0"), ["x", "residual"], ["y", "res_out"])
    assert io.output_names == {"y": "output0", "res_out": "output1"}
    assert io.outputs == (IOSpec("output0", "fp16", (-1, 64)), IOSpec("output1", "fp16", (-1, 64)))
    assert [t.name for t in io.inputs] == ["x", "residual"] and io.inputs[0].dtype == "fp16"


def test_output_index_sort_is_numeric() -> None:
    outs = [EngineTensor(f"output{i}", False, "FLOAT", (1,)) for i in (10, 2, 1)]
    assert [t.name for t in order_outputs(outs)] == ["output1", "output2", "output10"]


def test_spec_named_outputs_are_identity() -> None:
    io = resolve_engine_io(_engine("y", "res_out"), ["x", "residual"], ["y", "res_out"])
    assert io.output_names == {"y": "y", "res_out": "res_out"}


def test_input_order_follows_spec_not_engine() -> None:
    tensors = list(reversed(_engine("output0")))
    io = resolve_engine_io(tensors, ["x", "residual"], ["y"])
    assert [t.name for t in io.inputs] == ["x", "residual"]


def test_mismatches_are_build_errors() -> None:
    with pytest.raises(BuildError, match=r"do not match model\.yaml inputs"):
        resolve_engine_io(_engine("output0"), ["x", "bias"], ["y"])
    with pytest.raises(BuildError, match="engine has 2 outputs"):
        resolve_engine_io(_engine("output0", "output1"), ["x", "residual"], ["y"])
    with pytest.raises(BuildError, match="TensorRT dtype INT8 has no trtrepo dtype"):
        resolve_engine_io([EngineTensor("x", True, "INT8", (1,)), EngineTensor("output0", False, "HALF", (1,))],
                          ["x"], ["y"])
