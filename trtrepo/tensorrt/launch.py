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


PROFILE_POINTS = ("min", "opt", "max")


@dataclass(frozen=True)
class OpCallShapes:
    """One custom-op call of an exported program with its input shapes at one profile point of the model."""

    op: str
    point: str
    shapes: tuple[tuple[int, ...], ...]
    static: tuple[tuple[bool, ...], ...]  # per input, per dim: static in the program (TensorRT sees a constant)
    attributes: dict[str, Any]
    dtype: str


def op_calls_at_profile(ep: Any, model: Any, descriptions: Mapping[str, OpDescription],
                        points: Sequence[str] = PROFILE_POINTS) -> list[OpCallShapes]:
    """Every call of a described op in ``ep`` with its input shapes at the model's profile points.

    The program is exported with the model's dynamic dims; each op input's dims are expressions of the model's input
    dims, evaluated at model.yaml's ``min``/``opt``/``max`` of each input.
    """
    import torch

    from trtrepo import dtypes

    names = {t.name for t in model.inputs}
    user_inputs = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in names]
    namespaces = {d.namespace for d in descriptions.values()}
    out: list[OpCallShapes] = []
    for node in ep.graph.nodes:
        target = node.target
        if node.op != "call_function" or getattr(target, "namespace", None) not in namespaces:
            continue
        desc = descriptions.get(f"{target.namespace}::{target._schema.name.split('::', 1)[-1]}")
        if desc is None:
            continue
        vals = [a.meta["val"] for a in node.args if isinstance(a, torch.fx.Node)]
        extra = list(node.args[len(desc.inputs):])
        attrs = {a.name: v for a, v in zip(desc.attributes, extra, strict=False)}
        attrs.update({k: v for k, v in node.kwargs.items() if k in {a.name for a in desc.attributes}})
        static = tuple(tuple(isinstance(d, int) for d in v.shape) for v in vals)
        for point in points:
            bindings = _profile_bindings(user_inputs, model, point)
            shapes = tuple(tuple(_dim_value(d, bindings) for d in v.shape) for v in vals)
            out.append(OpCallShapes(desc.name, point, shapes, static, attrs, dtypes.from_torch(vals[0].dtype)))
    return out


def _profile_bindings(placeholders: Sequence[Any], model: Any, point: str) -> dict[Any, int]:
    """Symbol → value for the model's inputs at a profile point."""
    out: dict[Any, int] = {}
    by_name = {t.name: t for t in model.inputs}
    for node in placeholders:
        spec = by_name[node.name]
        shape = getattr(spec, point) or spec.shape
        for dim, value in zip(node.meta["val"].shape, shape, strict=True):
            if not isinstance(dim, int):
                out[dim.node.expr] = int(value)
    return out


def _dim_value(dim: Any, bindings: Mapping[Any, int]) -> int:
    if isinstance(dim, int):
        return dim
    return int(dim.node.expr.xreplace(dict(bindings)))


def check_profile_launches(ep: Any, model: Any, descriptions: Mapping[str, OpDescription],
                           ops: Sequence[str]) -> int:
    """Refuse at build time a profile the kernels of ``ops`` cannot take: every call's launch at the profile's min,
    opt and max must have int32 scalars and a grid in [1, 2^31) (at run time TensorRT would launch it anyway, or the
    plugin would fail its enqueue). Returns the number of launches checked.

    Raises:
        BuildError: Naming the model's YAML key, the op, the profile point and what does not fit.
    """
    checked = 0
    for call in op_calls_at_profile(ep, model, {k: v for k, v in descriptions.items() if k in ops}):
        if any(0 in s for s in call.shapes):
            continue  # an empty tensor: nothing is launched
        try:
            concrete_launch(descriptions[call.op], call.shapes, call.dtype, call.attributes)
        except BuildError as exc:
            raise BuildError(f"{model.yaml_path}.inputs: at the profile's {call.point} {exc.message}",
                             hint="lower the profile's max, or lower the op as decompose") from None
        checked += 1
    return checked
