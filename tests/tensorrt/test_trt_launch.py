"""The AOT launch over symbolic shapes (what an AOT plugin hands TensorRT) and over ints (what the launcher does):
one evaluator, so the symbolic result must resolve to the concrete one; comparisons need static dims; int32 limits
are refused, never wrapped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from trtrepo.errors import BuildError, SpecError
from trtrepo.ops import expr
from trtrepo.ops.description import OpDescription
from trtrepo.ops.expr import float_bits
from trtrepo.tensorrt.launch import concrete_launch, evaluate_launch

SHAPES = [(1, 64), (3, 64), (7, 5, 64), (32, 2048), (1, 1), (129, 4096)]


def shapes_of(desc: OpDescription, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return desc.input_shapes(shape[:-1], {"D": shape[-1]})


class Sym:
    """A stand-in for a symbolic dim: records arithmetic, knows its value (for the check) and whether it is static."""

    def __init__(self, text: str, value: int, static: bool = False) -> None:
        self.text, self.value, self.static = text, value, static

    def _op(self, other: Any, sym: str) -> Sym:
        o = other if isinstance(other, Sym) else Sym(str(other), int(other), True)
        value = {"+": self.value + o.value, "*": self.value * o.value, "-": self.value - o.value,
                 "//": self.value // o.value}[sym]
        return Sym(f"({self.text}{sym}{o.text})", value, self.static and o.static)

    def __add__(self, o: Any) -> Sym:
        return self._op(o, "+")

    def __mul__(self, o: Any) -> Sym:
        return self._op(o, "*")

    def __sub__(self, o: Any) -> Sym:
        return self._op(o, "-")

    def __floordiv__(self, o: Any) -> Sym:
        return self._op(o, "//")


def _cdiv(a: Any, b: Any) -> Sym:
    a = a if isinstance(a, Sym) else Sym(str(a), a, True)
    b = b if isinstance(b, Sym) else Sym(str(b), b, True)
    return Sym(f"cdiv({a.text},{b.text})", -(-a.value // b.value), a.static and b.static)


SYM = expr.python_algebra(cdiv=_cdiv, known=lambda v: v.value if v.static else None,
                          lift=lambda v: Sym(str(v), v, True))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_symbolic_launch_resolves_to_the_concrete_one(bias_gelu: OpDescription, rms_norm: OpDescription,
                                                     shape: tuple[int, ...], dtype: str) -> None:
    for desc in (bias_gelu, rms_norm):
        concrete = concrete_launch(desc, shapes_of(desc, shape), dtype)
        # batch dims dynamic, the last dim static (rms_norm's grid compares it)
        symbolic = [[Sym(f"d{i}", d, static=(i == len(s) - 1)) for i, d in enumerate(s)] for s in
                    shapes_of(desc, shape)]
        grid, block, shmem, scalars = evaluate_launch(desc, symbolic, dtype, {}, SYM)
        def value(v):
            return (v.value if isinstance(v, Sym) else v)
        assert (value(grid), block, shmem, tuple(value(s) for s in scalars)) == (
            concrete.grid, concrete.block, concrete.shared_memory, concrete.scalars)


def test_bias_gelu_known_values(bias_gelu: OpDescription) -> None:
    launch = concrete_launch(bias_gelu, [(8, 128), (128,)], "fp16")
    # n = 1024 elements, 8 fp16 per 16-byte vector, 256 threads: one block
    assert (launch.grid, launch.block, launch.scalars) == (1, 256, (1024, 128))
    assert concrete_launch(bias_gelu, [(64, 1024), (1024,)], "fp32").grid == 64


def test_rms_norm_eps_as_bits(rms_norm: OpDescription) -> None:
    launch = concrete_launch(rms_norm, [(10, 64), (10, 64), (64,)], "fp32", {"eps": 1e-5})
    assert launch.scalars == (10, 64, float_bits(1e-5))
    assert launch.grid == 2  # one warp per row, 8 rows per 256-thread block


def test_comparison_on_a_dynamic_dim_is_a_build_error(rms_norm: OpDescription) -> None:
    dynamic = [[Sym("b", 4), Sym("c", 64)], [Sym("b", 4), Sym("c", 64)], [Sym("c", 64)]]
    with pytest.raises(BuildError, match="depends on a dim only known at run time"):
        evaluate_launch(rms_norm, dynamic, "fp32", {}, SYM)


def test_int32_sizes_are_refused_not_wrapped(bias_gelu: OpDescription) -> None:
    rows = 2**31 // 1024 + 1  # rows * cols = 2^31 + 1024 elements: n does not fit the entry's int32
    with pytest.raises(BuildError, match=r"kernel scalar n = 2147484672 does not fit int32"):
        concrete_launch(bias_gelu, [(rows, 1024), (1024,)], "fp32")
    assert concrete_launch(bias_gelu, [(2**31 // 1024 - 1, 1024), (1024,)], "fp32").scalars[0] < 2**31


def test_op_without_kernel_block(write_op: Callable[[str], OpDescription]) -> None:
    op = write_op('name: ns::op\nschema: "op(Tensor x) -> Tensor"\ninputs: [x]\noutputs: [{name: y, like: x}]\n'
                  "dtypes: [fp32]\n")
    assert op.kernel is None
    with pytest.raises(SpecError, match="no kernel block"):
        concrete_launch(op, [(2, 2)], "fp32")
