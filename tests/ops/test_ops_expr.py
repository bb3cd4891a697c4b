"""The one expression language of op.yaml (launch and shape rules): what it accepts, what it rejects, what it
computes over ints, and the C++ it writes for a plugin's getOutputShapes."""

from __future__ import annotations

import pytest

from trtrepo.ops import expr

LAUNCH = expr.Names.of(scalars=["rows", "cols", "block", "vec"], dims=["x"], floats=["eps"], comparisons=True)
SHAPE = expr.Names.of(scalars=["n"], dims=["x", "w"])


@pytest.mark.parametrize(("text", "message"), [
    ("rows / 2", "operator Div"),
    ("__import__('os')", "only the functions"),
    ("rowz * 2", "did you mean 'rows'"),
    ("rows < cols < 3", "only allowed as the condition"),
    ("1.5 * rows", "not an integer"),
    ("[rows]", "must be an integer"),
    ("eps * 2", "float attribute: pass it as float_bits"),
    ("x + 1", "arithmetic on a list of dims"),
    ("ceil_div(rows)", "ceil_div takes 2 arguments"),
    ("x[rows]", "must be an integer constant"),
])
def test_launch_rules_reject(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expr.parse(text, LAUNCH, expr.SCALAR)


@pytest.mark.parametrize(("text", "message"), [
    ("x[0]", "must be a list of dims"),
    ("x if n < 2 else w", "only allowed in launch rules"),
    ("x[::2]", "take no step"),
    ("[x[0], w]", "is a list of dims where an integer belongs"),
    ("y[:-1]", "unknown name 'y'"),
])
def test_shape_rules_reject(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expr.parse(text, SHAPE, expr.DIMS)


def test_launch_rules_evaluate_over_ints() -> None:
    env = {"rows": 10, "cols": 2000, "block": 256, "vec": 8, "eps": 1e-6, "x": [10, 2000]}

    def ev(text: str) -> int:
        return int(expr.evaluate(expr.parse(text, LAUNCH, expr.SCALAR), env))

    assert ev("ceil_div(rows, block // 32) if cols <= 1024 else rows") == 10
    assert ev("max(1, min(rows - 20, 5))") == 1
    assert ev("float_bits(eps)") == 0x358637BD
    assert ev("numel(x) // vec") == 2500
    assert ev("x[-1] - x[0]") == 1990


@pytest.mark.parametrize(("text", "shapes", "want"), [
    ("x", {"x": [2, 3, 8]}, [2, 3, 8]),
    ("x[:-1] + [2]", {"x": [2, 3, 8]}, [2, 3, 2]),
    ("x[:-1] + [x[-1] // 2]", {"x": [4, 10]}, [4, 5]),
    ("[x[0], w[0]]", {"x": [4, 10], "w": [7, 10]}, [4, 7]),
    ("x[1:] + [n]", {"x": [4, 10, 3]}, [10, 3, 6]),
])
def test_shape_rules_evaluate_over_ints(text: str, shapes: dict[str, list[int]], want: list[int]) -> None:
    env = {"x": [], "w": [], "n": 6, **shapes}
    assert expr.evaluate(expr.parse(text, SHAPE, expr.DIMS), env) == want


def test_comparison_on_a_symbolic_value_is_refused() -> None:
    rule = expr.parse("ceil_div(rows, 8) if cols <= 1024 else rows", LAUNCH, expr.SCALAR)
    algebra = expr.python_algebra(known=lambda v: None)
    with pytest.raises(expr.SymbolicValue, match="only known at run time"):
        expr.evaluate(rule, {"rows": object(), "cols": object(), "block": 256, "vec": 4}, algebra)


def test_cpp_shape_rule_uses_the_expression_builder() -> None:
    rule = expr.parse("x[:-1] + [x[-1] // 2]", SHAPE, expr.DIMS)
    code = expr.evaluate(rule, {"x": "d_x"}, expr.CppDimsAlgebra())
    assert code == ("trtrepo::trt::dimConcat(trtrepo::trt::dimSlice(d_x, trtrepo::trt::kNoBound, -1), "
                    "trtrepo::trt::DimList{b.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, "
                    "*trtrepo::trt::dimAt(d_x, -1), *b.constant(2))})")
