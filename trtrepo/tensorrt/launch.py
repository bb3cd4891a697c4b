"""The AOT kernel launch from op.yaml's ``kernel`` block, over TensorRT's symbolic shapes or concrete ints.

op.yaml (:mod:`trtrepo.ops.description`) gives ``block`` (int), ``grid`` (expression), ``shared_memory`` (int) and
``scalars`` (name + expression each): the int32 arguments of the kernel entry, in order. TensorRT launches an AOT
kernel as ``entry(input pointers..., scalars..., output pointers...)``. The expressions are evaluated by
:mod:`trtrepo.ops.expr`, the one evaluator of op.yaml rules: over ``tensorrt.plugin`` ShapeExprs here (the AOT plugin,
resolved by TensorRT when shapes are known) and over ints by :func:`concrete_launch` (what the C++ launcher does).
A comparison (``a if c else b``) needs a value known at build time: over symbolic shapes it works only when the
compared dims are static in the profile, and is a BuildError otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtrepo.errors import BuildError
from trtrepo.ops import expr
from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConcreteLaunch:
    """A launch as plain ints: what TensorRT resolves the symbolic launch to for one set of input shapes."""

    grid: int
    block: int
    shared_memory: int
    scalars: tuple[int, ...]


def qdp_algebra(trtp: Any) -> expr.PythonAlgebra:
    """Arithmetic over ``tensorrt.plugin`` ShapeExprs (ceil_div/min/max are its top-level functions).

    A ShapeExpr has no reflected operators (``2 - x``), so ints are lifted with ``trtp.ShapeExpr``; a value is known
    at build time when it is a constant (``is_constant`` / ``constant_value()``).
    """

    def known(value: Any) -> int | None:
        if getattr(value, "is_fake", False) or not getattr(value, "is_constant", False):
            return None
        return int(value.constant_value())

    return expr.python_algebra(cdiv=trtp.cdiv, minimum=trtp.min, maximum=trtp.max, known=known, lift=trtp.ShapeExpr)


def evaluate_launch(desc: OpDescription, input_shapes: Sequence[Any], dtype: str, attrs: Mapping[str, Any],
                    algebra: expr.Algebra[Any, Any]) -> tuple[Any, int, int, list[Any]]:
    """(grid, block, shared memory, scalar args) of the op's launch rule over ``input_shapes``.

    Raises:
        SpecError: The op has no kernel block, or the dtype is not a kernel dtype.
        BuildError: A comparison in the rule depends on a dynamic dim.
    """
    kernel = desc.require_kernel()
    env = desc.launch_env(input_shapes, dtype, attrs, algebra)
    try:
        grid = expr.evaluate(kernel.grid, env, algebra)
        scalars = [expr.evaluate(s.value, env, algebra) for s in kernel.scalars]
    except expr.SymbolicValue as exc:
        raise BuildError(f"{desc.path}: kernel launch rule: {exc}",
                         hint="make that dim static in model.yaml, or write the grid without a comparison "
                         "(kernels with grid-stride loops accept any grid >= 1)") from None
    return grid, kernel.block, kernel.shared_memory, scalars


def concrete_launch(desc: OpDescription, input_shapes: Sequence[Sequence[int]], dtype: str,
                    attrs: Mapping[str, Any] | None = None) -> ConcreteLaunch:
    """The launch TensorRT makes for concrete input shapes (one per op input).

    Raises:
        BuildError: A scalar does not fit int32 (the entries take int32 sizes: the op cannot take tensors this big).
    """
    grid, block, shmem, scalars = evaluate_launch(desc, [list(map(int, s)) for s in input_shapes], dtype,
                                                  attrs or {}, expr.INT)
    kernel = desc.require_kernel()
    for spec, value in zip(kernel.scalars, scalars, strict=True):
        if not -(2**31) <= int(value) < 2**31:
            raise BuildError(f"{desc.name}: kernel scalar {spec.name} = {value} does not fit int32 for input shapes "
                             f"{[list(s) for s in input_shapes]}", hint="the op's kernels take int32 sizes")
    if not 1 <= int(grid) < 2**31:
        raise BuildError(f"{desc.name}: grid {grid} for input shapes {[list(s) for s in input_shapes]} is not in "
                         "[1, 2^31)")
    return ConcreteLaunch(grid=int(grid), block=block, shared_memory=shmem, scalars=tuple(int(s) for s in scalars))
