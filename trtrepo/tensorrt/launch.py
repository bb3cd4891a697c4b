"""AOT kernel launch from op.yaml's ``kernel`` block, over symbolic shapes (for TensorRT) or concrete ints.

op.yaml (see ``trtrepo.ops.description``) gives ``block`` (int), ``grid`` (expression), ``shared_memory`` (int) and
``scalars`` (name + expression each): the int32 arguments of the kernel entry, in order. TensorRT launches an AOT
kernel as ``entry(input pointers..., scalars..., output pointers...)``, so the entries take them between the input
and the output pointers. Expressions read ``rows`` (product of all dims of the first input but the last), ``cols``
(its last dim), ``block``, ``vec`` (elements per 16-byte vector of the dtype) and the op's attributes; they may call
``ceil_div min max float_bits`` and use ``a if c else b``.

One evaluator serves both callers. The AOT plugin (``trtrepo.tensorrt.lowering``) evaluates over TensorRT's symbolic
shape expressions (``tensorrt.plugin`` ShapeExpr, resolved by TensorRT when shapes are known);
:func:`concrete_launch` evaluates the very same rule over ints, which is what the unit tests check against the C++
launcher's rule (``KernelSpec.launch``). A comparison (``if``) needs a value known at build time: over symbolic
shapes it works only when the compared dims are static in the profile.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtrepo.errors import BuildError, SpecError
from trtrepo.ops.description import DTYPE_BYTES, VECTOR_BYTES, KernelSpec, OpDescription
from trtrepo.tensorrt.opfacts import float_bits

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConcreteLaunch:
    """A launch as plain ints: what TensorRT resolves the symbolic launch to for one input shape."""

    grid: int
    block: int
    shared_memory: int
    scalars: tuple[int, ...]


@dataclass(frozen=True)
class Arith:
    """How to compute on the values of one evaluation: ints, or a symbolic expression library.

    Attributes:
        cdiv: Ceiling division.
        constant: The int a value is known to be at build time, or None (symbolic and not constant).
    """

    cdiv: Callable[[Any, Any], Any]
    constant: Callable[[Any], int | None]


INT_ARITH = Arith(cdiv=lambda a, b: -(-a // b), constant=lambda v: int(v))


def require_kernel(desc: OpDescription) -> KernelSpec:
    """The op's launch rule: its op.yaml ``kernel`` block.

    Raises:
        SpecError: The op has no kernel block (the ``aot`` lowering needs one).
    """
    if desc.kernel is None:
        raise SpecError(f"{desc.name}: op.yaml has no kernel block with block and grid; the aot lowering needs one",
                        hint="add kernel: {source, entries, scalars, block, grid} to op.yaml, or use plugin/decompose")
    return desc.kernel


def evaluate(text: str, env: Mapping[str, Any], arith: Arith) -> Any:
    """Evaluate one launch expression over ``env`` (ints or symbolic values) with ``arith``.

    Raises:
        SpecError: The expression is not in the launch expression language.
        BuildError: A comparison needs a value that is only known at run time.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise SpecError(f"launch expression {text!r} is not an expression") from None

    def known(value: Any, what: str) -> int:
        c = arith.constant(value)
        if c is None:
            raise BuildError(f"launch expression {text!r}: {what} depends on a dynamic dim",
                             hint="make that dim static in model.yaml, or write the grid without a comparison "
                             "(kernels with grid-stride loops accept any grid >= 1)")
        return c

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise SpecError(f"launch expression {text!r}: unknown name {node.id!r}")
            return env[node.id]
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return b + a if isinstance(a, int) and not isinstance(b, int) else a + b
            if isinstance(node.op, ast.Mult):
                return b * a if isinstance(a, int) and not isinstance(b, int) else a * b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.FloorDiv):
                return a // b
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = known(ev(node.left), "a comparison"), known(ev(node.comparators[0]), "a comparison")
            op = node.ops[0]
            table = {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b, ast.NotEq: a != b}
            for kind, result in table.items():
                if isinstance(op, kind):
                    return result
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            args = [ev(a) for a in node.args]
            if node.func.id == "ceil_div" and len(args) == 2:
                return arith.cdiv(args[0], args[1])
            if node.func.id == "float_bits" and len(args) == 1:
                return float_bits(float(args[0]))
            if node.func.id in ("min", "max") and args:
                values = [known(a, f"{node.func.id}()") for a in args]
                return min(values) if node.func.id == "min" else max(values)
        raise SpecError(f"launch expression {text!r}: {ast.dump(node)[:60]} is not allowed",
                        hint="use + - * //, comparisons, a if c else b, ceil_div/min/max/float_bits")

    return ev(tree)


def launch_env(desc: OpDescription, rows: Any, cols: Any, dtype: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The names launch expressions see (attributes with their op.yaml defaults where not given)."""
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"{desc.name}: AOT kernels support {', '.join(DTYPE_BYTES)}, not {dtype!r}")
    env: dict[str, Any] = {a.name: attrs.get(a.name, a.default) for a in desc.attributes}
    env.update(rows=rows, cols=cols, block=require_kernel(desc).block, vec=VECTOR_BYTES // DTYPE_BYTES[dtype])
    return env


def evaluate_launch(desc: OpDescription, env: Mapping[str, Any], arith: Arith) -> tuple[Any, int, int, list[Any]]:
    """(grid, block, shared memory, scalar args) of the op's rule over ``env``."""
    kernel = require_kernel(desc)
    grid = evaluate(kernel.grid, env, arith)
    return grid, kernel.block, kernel.shared_memory, [evaluate(s.value, env, arith) for s in kernel.scalars]


def concrete_launch(desc: OpDescription, shape: Sequence[int], dtype: str,
                    attrs: Mapping[str, Any] | None = None) -> ConcreteLaunch:
    """The launch TensorRT makes for one concrete shape of the op's first input.

    Args:
        desc: The op.
        shape: Shape of the first tensor input (at least one dim).
        dtype: trtrepo dtype of the inputs.
        attrs: Attribute values (op.yaml defaults otherwise).
    """
    if not shape:
        raise BuildError(f"{desc.name}: the first input needs at least one dim")
    rows = 1
    for d in shape[:-1]:
        rows *= int(d)
    env = launch_env(desc, rows, int(shape[-1]), dtype, attrs or {})
    grid, block, shmem, scalars = evaluate_launch(desc, env, INT_ARITH)
    return ConcreteLaunch(grid=int(grid), block=block, shared_memory=shmem, scalars=tuple(int(s) for s in scalars))
