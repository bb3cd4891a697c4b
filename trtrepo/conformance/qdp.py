"""A stand-in of ``tensorrt.plugin`` (TensorRT's QDP module) that drives trtrepo's real AOT lowering without TensorRT.

:func:`capture` runs :func:`trtrepo.tensorrt.lowering.register_aot_plugin` unchanged with this module in place of
``tensorrt.plugin``, and keeps the two functions it registers: the output-descriptor function (``trtp.register``) and
``aot_impl`` (``trtp.aot_impl``). The harness then calls them as TensorRT does at build time: once per op, dtype and
set of static dims, with input descriptors whose ``shape_expr`` are *symbolic* — a static dim is a constant, a dynamic
dim an expression TensorRT resolves per inference — so what ``aot_impl`` returns (kernel name, PTX, launch parameters,
extra scalar arguments) is an expression tree, resolved afterwards at each concrete shape exactly as TensorRT resolves
the SymInt32 expressions of an AOT plugin when the shapes are known.

Why symbolic and not plain ints: with ints every comparison in a launch rule would pass, even one TensorRT refuses
because it depends on a dynamic dim (a BuildError of trtrepo's over real ShapeExprs), and an expression that is only
right for the shapes seen at build time would go unnoticed. The arithmetic is TensorRT's: ``+ - * //``, ``cdiv``,
``min``, ``max``, constants folded, no reflected operators (``2 - x`` fails, as on ShapeExpr; trtrepo lifts ints with
``ShapeExpr(2)``). The signatures trtrepo declares are checked against what ``tensorrt.plugin`` requires.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo import dtypes
from trtrepo.errors import TrtrepoError
from trtrepo.ops.description import OpDescription

__all__ = ["Captured", "ShapeExpr", "TensorDesc", "capture", "input_desc", "resolve"]

_LOCK = threading.Lock()
_CAPTURED: dict[str, Captured] = {}


class ShapeExpr:
    """One dim expression: a constant, input ``i``'s dim ``j`` (known at run time), or an operation on two of them."""

    __slots__ = ("args", "op", "value")

    def __init__(self, value: int | None = None, *, op: str = "const", args: tuple[Any, ...] = ()) -> None:
        if op == "const" and not isinstance(value, int):
            raise TypeError(f"ShapeExpr({value!r}): a constant must be an int")
        self.op = op
        self.value = value
        self.args = args

    @classmethod
    def dim(cls, tensor: int, index: int) -> ShapeExpr:
        """Input ``tensor``'s dim ``index``, resolved from the concrete shapes."""
        return cls(op="dim", args=(tensor, index))

    @property
    def is_constant(self) -> bool:
        """True when the value is known at build time (every leaf is a constant)."""
        if self.op == "const":
            return True
        if self.op == "dim":
            return False
        return all(a.is_constant for a in self.args)

    @property
    def is_fake(self) -> bool:
        """Never: a fake ShapeExpr is TensorRT's placeholder for data-dependent shapes, which these ops have not."""
        return False

    def constant_value(self) -> int:
        """The build-time value (only when :attr:`is_constant`)."""
        if not self.is_constant:
            raise ValueError(f"{self} is not a build-time constant")
        return self.resolve(())

    def resolve(self, shapes: Sequence[Sequence[int]]) -> int:
        """The value for concrete input shapes (``shapes[i][j]`` is input i's dim j)."""
        if self.op == "const":
            assert self.value is not None
            return self.value
        if self.op == "dim":
            tensor, index = self.args
            return int(shapes[tensor][index])
        a, b = (x.resolve(shapes) for x in self.args)
        if self.op in ("//", "cdiv") and b == 0:
            raise ZeroDivisionError(f"{self}: division by zero")
        return int(_OPS[self.op](a, b))

    def _binary(self, op: str, other: Any) -> ShapeExpr:
        if isinstance(other, bool) or not isinstance(other, (int, ShapeExpr)):
            raise TypeError(f"unsupported operand for {op}: ShapeExpr and {type(other).__name__}")
        right: ShapeExpr = other if isinstance(other, ShapeExpr) else ShapeExpr(other)
        node = ShapeExpr(op=op, args=(self, right))
        return ShapeExpr(node.resolve(())) if node.is_constant else node

    def __add__(self, other: Any) -> ShapeExpr:
        return self._binary("+", other)

    def __sub__(self, other: Any) -> ShapeExpr:
        return self._binary("-", other)

    def __mul__(self, other: Any) -> ShapeExpr:
        return self._binary("*", other)

    def __floordiv__(self, other: Any) -> ShapeExpr:
        return self._binary("//", other)

    def __repr__(self) -> str:
        if self.op == "const":
            return str(self.value)
        if self.op == "dim":
            return f"in{self.args[0]}[{self.args[1]}]"
        return f"{self.op}({self.args[0]!r}, {self.args[1]!r})" if self.op.isalpha() else \
            f"({self.args[0]!r} {self.op} {self.args[1]!r})"


_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "//": lambda a, b: a // b,
    "cdiv": lambda a, b: -(-a // b), "min": min, "max": max,
}


def _function(op: str) -> Callable[[Any, Any], ShapeExpr]:
    def apply(a: Any, b: Any) -> ShapeExpr:
        left = a if isinstance(a, ShapeExpr) else ShapeExpr(int(a))
        return left._binary(op, b)

    apply.__name__ = op
    return apply


def resolve(value: Any, shapes: Sequence[Sequence[int]]) -> int:
    """An int, a :class:`ShapeExpr` or a :class:`SymInt32` resolved at concrete input shapes."""
    if isinstance(value, SymInt32):
        value = value.expr
    if isinstance(value, ShapeExpr):
        return value.resolve(shapes)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an int or a shape expression")
    return value


class SymInt32:
    """A 32-bit scalar argument of an AOT kernel, as an expression (``trtp.SymInt32``)."""

    def __init__(self, expr: Any) -> None:
        if isinstance(expr, bool) or not isinstance(expr, (int, ShapeExpr)):
            raise TypeError(f"SymInt32({expr!r}): needs an int or a ShapeExpr")
        self.expr = expr


class SymIntExprs(list):  # type: ignore[type-arg]
    """``trtp.SymIntExprs(n)``: n slots, each set to a SymInt32."""

    def __init__(self, n: int) -> None:
        super().__init__([None] * n)


class KernelLaunchParams:
    """``trtp.KernelLaunchParams``: grid and block extents and dynamic shared memory (ints or ShapeExprs)."""

    def __init__(self) -> None:
        self.grid_x: Any = 1
        self.grid_y: Any = 1
        self.grid_z: Any = 1
        self.block_x: Any = 1
        self.block_y: Any = 1
        self.block_z: Any = 1
        self.shared_mem: Any = 0


class DataType:
    """A ``tensorrt.DataType`` member (only its name is read)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"DataType.{self.name}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class _DataTypes:
    def __getattr__(self, name: str) -> DataType:
        if name.startswith("_"):
            raise AttributeError(name)
        return DataType(name)


class TensorDesc:
    """``trtp.TensorDesc``: a dtype and a shape of :class:`ShapeExpr` (``shape_expr``)."""

    def __init__(self, dtype: DataType, shape_expr: Sequence[ShapeExpr]) -> None:
        self.dtype = dtype
        self.shape_expr = list(shape_expr)

    @property
    def ndim(self) -> int:
        """The rank."""
        return len(self.shape_expr)

    def like(self) -> TensorDesc:
        """A descriptor of the same dtype and shape (``TensorDesc.like``)."""
        return TensorDesc(self.dtype, self.shape_expr)


def from_shape_expr(shape: Sequence[Any], dtype: DataType) -> TensorDesc:
    """``trtp.from_shape_expr``: a descriptor from dim expressions (ints are constants)."""
    return TensorDesc(dtype, [d if isinstance(d, ShapeExpr) else ShapeExpr(int(d)) for d in shape])


def input_desc(tensor: int, shape: Sequence[int], static: Sequence[bool], dtype: str) -> TensorDesc:
    """The descriptor TensorRT hands the plugin for input ``tensor``: static dims constant, the others symbolic."""
    exprs = [ShapeExpr(int(d)) if s else ShapeExpr.dim(tensor, j) for j, (d, s) in enumerate(zip(shape, static,
                                                                                                  strict=True))]
    return TensorDesc(DataType(dtypes.get(dtype).tensorrt), exprs)


@dataclass(frozen=True)
class Captured:
    """What ``register_aot_plugin`` registered for one op: its descriptor function and its ``aot_impl``."""

    op: str
    description: Path
    ptx: Path
    describe: Callable[..., Any]
    aot_impl: Callable[..., Any]


def _modules(registered: dict[str, Any]) -> tuple[types.ModuleType, types.ModuleType]:
    trtp = types.ModuleType("tensorrt.plugin")
    trtp.__doc__ = "trtrepo.conformance stand-in of tensorrt.plugin"

    def decorator(kind: str) -> Callable[[str], Callable[[Callable[..., Any]], Callable[..., Any]]]:
        def for_op(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            def keep(fn: Callable[..., Any]) -> Callable[..., Any]:
                registered[kind] = fn
                registered[f"{kind}:name"] = name
                return fn
            return keep
        return for_op

    names: dict[str, Any] = {
        "ShapeExpr": ShapeExpr, "SymInt32": SymInt32, "SymIntExprs": SymIntExprs,
        "KernelLaunchParams": KernelLaunchParams, "TensorDesc": TensorDesc, "from_shape_expr": from_shape_expr,
        "cdiv": _function("cdiv"), "min": _function("min"), "max": _function("max"),
        "register": decorator("register"), "aot_impl": decorator("aot_impl"),
    }
    for key, value in names.items():
        setattr(trtp, key, value)
    trt = types.ModuleType("tensorrt")
    trt.__doc__ = "trtrepo.conformance stand-in of tensorrt (DataType and the plugin module only)"
    trt.DataType = _DataTypes()  # type: ignore[attr-defined]
    trt.plugin = trtp  # type: ignore[attr-defined]
    return trt, trtp


@contextlib.contextmanager
def _standing_in(registered: dict[str, Any]) -> Iterator[None]:
    from trtrepo.tensorrt import tt_adapter

    trt, trtp = _modules(registered)
    saved = {name: sys.modules.get(name) for name in ("tensorrt", "tensorrt.plugin")}
    converter = tt_adapter.generate_plugin_converter
    sys.modules["tensorrt"] = trt
    sys.modules["tensorrt.plugin"] = trtp
    # Torch-TensorRT's generated converter is the step after the QDP definition; it needs torch_tensorrt.
    tt_adapter.generate_plugin_converter = lambda op: registered.setdefault("converter", op)
    try:
        yield
    finally:
        tt_adapter.generate_plugin_converter = converter
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _check_signatures(desc: OpDescription, describe: Callable[..., Any], aot_impl: Callable[..., Any]) -> None:
    """What ``tensorrt.plugin`` requires: tensors annotated TensorDesc, attributes float/int/bool, a tuple of one
    TensorDesc per output; aot_impl takes the same arguments plus ``outputs`` and ``tactic``."""
    kinds = {"float": float, "int": int, "bool": bool}
    sig = inspect.signature(describe)
    want = [*desc.inputs, *(a.name for a in desc.attributes)]
    if list(sig.parameters) != want:
        raise TrtrepoError(f"{desc.name}: register signature {list(sig.parameters)}, tensorrt.plugin needs {want}")
    for name in desc.inputs:
        if sig.parameters[name].annotation is not TensorDesc:
            raise TrtrepoError(f"{desc.name}: register parameter {name} is not annotated TensorDesc")
    for attr in desc.attributes:
        if sig.parameters[attr.name].annotation is not kinds[attr.type]:
            raise TrtrepoError(f"{desc.name}: register parameter {attr.name} is not annotated {attr.type}")
    ret = typing.get_args(sig.return_annotation)
    if list(ret) != [TensorDesc] * len(desc.outputs):
        raise TrtrepoError(f"{desc.name}: register returns {sig.return_annotation}, needs a Tuple of "
                           f"{len(desc.outputs)} TensorDesc")
    impl = list(inspect.signature(aot_impl).parameters)
    if impl != [*want, "outputs", "tactic"]:
        raise TrtrepoError(f"{desc.name}: aot_impl signature {impl}, tensorrt.plugin needs "
                           f"{[*want, 'outputs', 'tactic']}")


def capture(desc: OpDescription, ptx: Path) -> Captured:
    """Run trtrepo's ``register_aot_plugin(desc, ptx)`` against the stand-in and return what it registered.

    One op description per op name and process (trtrepo's lowering keeps one QDP definition per op per process).

    Raises:
        TrtrepoError: The op was captured before from another op.yaml or PTX, trtrepo registered nothing (it had
            defined the op in this process already), or its signatures are not what tensorrt.plugin requires.
    """
    from trtrepo.tensorrt.lowering import register_aot_plugin

    with _LOCK:
        known = _CAPTURED.get(desc.name)
        if known is not None:
            if (known.description, known.ptx) != (desc.path, Path(ptx)):
                raise TrtrepoError(f"{desc.name}: this process already drove the AOT lowering of {known.description} "
                                   f"({known.ptx}); one op description per op and process",
                                   hint="run the harness for another plugin root in a fresh process")
            return known
        registered: dict[str, Any] = {}
        with _standing_in(registered):
            register_aot_plugin(desc, Path(ptx))
        if "register" not in registered or "aot_impl" not in registered:
            raise TrtrepoError(f"{desc.name}: register_aot_plugin registered nothing: the op's AOT plugin was already "
                               "defined in this process", hint="run the harness in a fresh process")
        for kind in ("register", "aot_impl"):
            if registered.get(f"{kind}:name") != desc.name:
                raise TrtrepoError(f"{desc.name}: trtp.{kind} was called for {registered.get(f'{kind}:name')!r}")
        if registered.get("converter") != desc.name:
            raise TrtrepoError(f"{desc.name}: the generated converter was asked for {registered.get('converter')!r}")
        _check_signatures(desc, registered["register"], registered["aot_impl"])
        captured = Captured(desc.name, desc.path, Path(ptx), registered["register"], registered["aot_impl"])
        _CAPTURED[desc.name] = captured
        return captured
