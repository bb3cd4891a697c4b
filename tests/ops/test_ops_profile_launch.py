"""A profile the kernels cannot take is refused when the TensorRT target builds (plugin and aot lowerings), naming
the op, the profile point and the scalar, instead of launching with a wrapped int32 at run time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from trtrepo.errors import BuildError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.integration


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1024))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.trtrepo.silu_and_mul(torch.ops.trtrepo.bias_gelu(x, self.bias))


def _model(max_rows: int) -> SimpleNamespace:
    x = SimpleNamespace(name="x", shape=[-1, 1024], min=[1, 1024], opt=[8, 1024], max=[max_rows, 1024])
    return SimpleNamespace(name="m", yaml_path=Path("model.yaml").as_posix() + ":models[0]", inputs=[x])


def _program() -> object:
    from torch.export import Dim

    return torch.export.export(_Block(), (torch.randn(4, 1024),), dynamic_shapes={"x": {0: Dim("b", max=2**22)}})


def test_profile_launches_fit_or_are_refused(built_ops) -> None:
    from trtrepo.tensorrt.launch import check_profile_launches, op_calls_at_profile

    ep = _program()
    calls = op_calls_at_profile(ep, _model(64), built_ops.descriptions)
    assert [(c.op, c.point, c.shapes) for c in calls] == [
        ("trtrepo::bias_gelu", "min", ((1, 1024), (1024,))), ("trtrepo::bias_gelu", "opt", ((8, 1024), (1024,))),
        ("trtrepo::bias_gelu", "max", ((64, 1024), (1024,))),
        ("trtrepo::silu_and_mul", "min", ((1, 1024),)), ("trtrepo::silu_and_mul", "opt", ((8, 1024),)),
        ("trtrepo::silu_and_mul", "max", ((64, 1024),))]
    assert check_profile_launches(ep, _model(64), built_ops.descriptions, ["trtrepo::bias_gelu"]) == 3
    # 2^21 rows of 1024: bias_gelu's n = rows * cols = 2^31 does not fit its int32 scalar; silu_and_mul's
    # rows * h = 2^30 does
    assert check_profile_launches(ep, _model(2**21), built_ops.descriptions, ["trtrepo::silu_and_mul"]) == 3
    with pytest.raises(BuildError, match=r"model.yaml:models\[0\].inputs: at the profile's max trtrepo::bias_gelu: "
                                         r"kernel scalar n = 2147483648 does not fit int32"):
        check_profile_launches(ep, _model(2**21), built_ops.descriptions, ["trtrepo::bias_gelu"])
