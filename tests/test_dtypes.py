"""The one dtype table: every spelling round-trips, unknown names are build errors with a suggestion."""

from __future__ import annotations

import pytest

from trtrepo import dtypes
from trtrepo.errors import BuildError


def test_every_spelling_round_trips() -> None:
    for name in dtypes.NAMES:
        d = dtypes.get(name)
        assert dtypes.from_tensorrt(d.tensorrt) == name
        assert dtypes.from_tensorrt("DataType." + d.tensorrt) == name
        assert dtypes.from_triton(d.triton) == name
        assert dtypes.from_triton(d.config) == name
    assert dtypes.get("fp16").tensorrt == "HALF" and dtypes.get("bf16").config == "TYPE_BF16"
    assert dtypes.KERNEL_NAMES == dtypes.PRECISIONS == ("fp32", "fp16", "bf16")


def test_torch_and_numpy_spellings() -> None:
    torch = pytest.importorskip("torch")
    import numpy as np

    for name in dtypes.NAMES:
        assert dtypes.from_torch(dtypes.to_torch(name)) == name
        assert dtypes.to_numpy(name).itemsize == dtypes.get(name).itemsize
    assert dtypes.to_torch("bf16") is torch.bfloat16 and dtypes.to_numpy("int64") == np.int64


def test_unknown_names_are_build_errors_with_a_suggestion() -> None:
    with pytest.raises(BuildError, match=r"'fp64' is not one of .*did you mean 'fp16'"):
        dtypes.get("fp64")
    with pytest.raises(BuildError, match="TensorRT dtype FP8 has no trtrepo dtype"):
        dtypes.from_tensorrt("FP8")
    assert dtypes.did_you_mean("float16", dtypes.NAMES) == " (did you mean 'fp16'?)"
