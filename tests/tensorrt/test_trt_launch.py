"""AOT launch parameters as plain data: the symbolic rule evaluated over ints must equal the C++ launcher's rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trtrepo.errors import BuildError, SpecError
from trtrepo.ops.description import OpDescription
from trtrepo.tensorrt.launch import Arith, concrete_launch, evaluate, evaluate_launch, launch_env
from trtrepo.tensorrt.opfacts import float_bits

SHAPES = [(1, 64), (3, 64), (7, 5, 64), (32, 2048), (1, 1), (129, 4096)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_matches_op_description_launch(bias_gelu: OpDescription, rms_norm: OpDescription, shape: tuple[int, ...],
                                       dtype: str) -> None:
    for desc in (bias_gelu, rms_norm):
        assert desc.kernel is not None
        ours = concrete_launch(desc, shape, dtype)
        theirs = desc.kernel.launch(shape, dtype, {a.name: a.default for a in desc.attributes})
        assert (ours.grid, ours.block, ours.shared_memory, ours.scalars) == (
            theirs.grid, theirs.block, theirs.shared_memory, theirs.scalars)


def test_bias_gelu_known_values(bias_gelu: OpDescription) -> None:
    launch = concrete_launch(bias_gelu, (8, 128), "fp16")
    # n = 1024 elements, 8 fp16 per 16-byte vector, 256 threads: one block
    assert (launch.grid, launch.block, launch.scalars) == (1, 256, (1024, 128))
    assert concrete_launch(bias_gelu, (8, 128), "fp32").grid == 1
    assert concrete_launch(bias_gelu, (64, 1024), "fp32").grid == 64


def test_rms_norm_eps_as_bits(rms_norm: OpDescription) -> None:
    launch = concrete_launch(rms_norm, (10, 64), "fp32", {"eps": 1e-5})
    assert launch.scalars == (10, 64, float_bits(1e-5))
    assert launch.grid == 2  # one warp per row, 8 rows per 256-thread block


class Sym:
    """A stand-in for a symbolic dim expression: records arithmetic, knows its value only when constant."""

    def __init__(self, text: str, value: int | None = None) -> None:
        self.text, self.value = text, value

    def _op(self, other: object, sym: str) -> Sym:
        o = other if isinstance(other, Sym) else Sym(str(other), int(other))  # type: ignore[call-overload]
        known = None
        if self.value is not None and o.value is not None:
            known = {"+": self.value + o.value, "*": self.value * o.value, "-": self.value - o.value,
                     "//": self.value // o.value}[sym]
        return Sym(f"({self.text}{sym}{o.text})", known)

    def __add__(self, o: object) -> Sym:
        return self._op(o, "+")

    def __mul__(self, o: object) -> Sym:
        return self._op(o, "*")

    def __sub__(self, o: object) -> Sym:
        return self._op(o, "-")

    def __floordiv__(self, o: object) -> Sym:
        return self._op(o, "//")


SYM = Arith(cdiv=lambda a, b: Sym(f"cdiv({a.text if isinstance(a, Sym) else a},{b})"),
            constant=lambda v: v if isinstance(v, int) else v.value)


def test_symbolic_evaluation_keeps_dynamic_dims_symbolic(bias_gelu: OpDescription, rms_norm: OpDescription) -> None:
    rows, cols = Sym("rows"), Sym("64", 64)
    grid, block, _, scalars = evaluate_launch(bias_gelu, launch_env(bias_gelu, rows, cols, "fp16", {}), SYM)
    assert grid.text == "cdiv((rows*64),(256*8))" or grid.text.startswith("cdiv(")
    assert block == 256 and scalars[0].text == "(rows*64)"
    # the rms_norm grid compares cols: fine while cols is static in the profile ...
    grid, _, _, scalars = evaluate_launch(rms_norm, launch_env(rms_norm, rows, cols, "fp32", {}), SYM)
    assert grid.text.startswith("cdiv(rows")
    assert scalars[2] == float_bits(1e-6)
    # ... and a clear error when it is dynamic
    with pytest.raises(BuildError, match="dynamic dim"):
        evaluate_launch(rms_norm, launch_env(rms_norm, rows, Sym("cols"), "fp32", {}), SYM)


def test_expression_language_is_closed() -> None:
    ints = Arith(cdiv=lambda a, b: -(-a // b), constant=int)
    assert evaluate("ceil_div(a, 4) + max(a, 2) * 2", {"a": 9}, ints) == 3 + 18
    for bad in ("a ** 2", "__import__('os')", "a.b", "1.5"):
        with pytest.raises(SpecError):
            evaluate(bad, {"a": 2}, ints)
    with pytest.raises(SpecError, match="unknown name"):
        evaluate("b", {"a": 1}, ints)


def test_op_without_kernel_block(write_op: Callable[[str], OpDescription]) -> None:
    op = write_op('name: ns::op\nschema: "op(Tensor x) -> Tensor"\ninputs: [x]\noutputs: [{name: y, like: x}]\n'
                  "dtypes: [fp32]\n")
    assert op.kernel is None
    with pytest.raises(SpecError, match="no kernel block"):
        concrete_launch(op, (2, 2), "fp32")
