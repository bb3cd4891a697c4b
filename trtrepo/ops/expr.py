"""The one expression language of op.yaml: launch rules (``kernel.grid``, ``kernel.scalars``) and shape rules
(``outputs[].shape``), parsed once and evaluated by every layer that needs them.

An expression is a small Python expression. Its values are *scalars* (integers) or *dims* (lists of scalars: an
input's shape, a slice of it, a list literal, or two dims joined with ``+``)::

    rows * cols                     # scalars: + - * //, integer constants
    ceil_div(rows, block * vec)     # ceil_div, min, max, numel(x) (product of x's dims), float_bits(eps)
    x[:-1] + [x[-1] // 2]           # dims: an input by name, x[i] (i may be negative), x[a:b], [e, ...], +
    [x[0], w[0]]
    ceil_div(rows, 8) if cols <= 1024 else rows     # launch rules only: one comparison, a if c else b

Which names an expression may use is the caller's business (:class:`Names`): launch rules see ``rows cols block
vec``, the attributes and the inputs; shape rules see the inputs and the int attributes. Every expression is checked
when op.yaml is read: unknown names, a dims value where a scalar belongs (or the other way), a function with the
wrong number of arguments, anything outside the language — each is a ``ValueError`` whose text names the piece.

One evaluator serves every caller; what the values *are* is an :class:`Algebra`:

* :data:`INT` — Python ints (the C++ launcher's rule, ops check, benchmarks, tests).
* :func:`python_algebra` — anything with Python arithmetic, e.g. torch SymInts in a fake kernel (dynamic dims stay
  symbolic through torch.export) or TensorRT's ``tensorrt.plugin`` ShapeExprs in an AOT plugin.
* :class:`CppDimsAlgebra` — C++ source over TensorRT's ``IExprBuilder`` (a plugin's getOutputShapes).
"""

from __future__ import annotations

import ast
import difflib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

SCALAR = "scalar"
DIMS = "dims"
FUNCTIONS = ("ceil_div", "min", "max", "numel", "float_bits")
V = TypeVar("V")
L = TypeVar("L")


@dataclass(frozen=True)
class Names:
    """What an expression may refer to: scalar names, dims names (inputs), float names (for ``float_bits``)."""

    scalars: frozenset[str] = frozenset()
    dims: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()
    comparisons: bool = False

    @classmethod
    def of(cls, scalars: Iterable[str] = (), dims: Iterable[str] = (), floats: Iterable[str] = (),
           comparisons: bool = False) -> Names:
        """Names from plain iterables."""
        return cls(frozenset(scalars), frozenset(dims), frozenset(floats), comparisons)

    def all(self) -> list[str]:
        """Every known name, sorted."""
        return sorted(self.scalars | self.dims | self.floats)


@dataclass(frozen=True)
class Expr:
    """A parsed, checked expression: its text, its tree, its kind (``scalar`` or ``dims``) and the names it was
    checked against."""

    text: str
    tree: ast.expr
    kind: str
    allowed: Names

    def names(self) -> set[str]:
        """The names the expression reads."""
        found = {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}
        return found - set(FUNCTIONS)


def parse(text: str, names: Names, kind: str | None = None) -> Expr:
    """Parse and check ``text``.

    Args:
        text: The expression.
        names: The names it may use.
        kind: ``scalar`` or ``dims`` when the caller needs one of them.

    Raises:
        ValueError: Not an expression of the language (the message names the offending piece).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {exc.msg}") from None
    found = _Checker(names).kind_of(tree)
    if kind is not None and found != kind:
        want = "a list of dims (e.g. x[:-1] + [2])" if kind == DIMS else "an integer (a scalar, not a list of dims)"
        raise ValueError(f"must be {want}, got {'a list of dims' if found == DIMS else 'a scalar'}")
    return Expr(text, tree, found, names)


class _Checker:
    def __init__(self, names: Names) -> None:
        self.names = names

    def unknown(self, name: str) -> ValueError:
        known = self.names.all()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return ValueError(f"unknown name {name!r}{hint}; known: {', '.join(known) or '(none)'}")

    def scalar(self, node: ast.AST) -> None:
        if self.kind_of(node) != SCALAR:
            raise ValueError(f"{ast.unparse(node)!r} is a list of dims where an integer belongs")

    def kind_of(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int):
                raise ValueError(f"constant {node.value!r} is not an integer")
            return SCALAR
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self.scalar(node.operand)
            return SCALAR
        if isinstance(node, ast.Name):
            if node.id in self.names.dims:
                return DIMS
            if node.id in self.names.scalars:
                return SCALAR
            if node.id in self.names.floats:
                raise ValueError(f"{node.id!r} is a float attribute: pass it as float_bits({node.id})")
            raise self.unknown(node.id)
        if isinstance(node, ast.BinOp):
            left, right = self.kind_of(node.left), self.kind_of(node.right)
            if isinstance(node.op, ast.Add) and left == right == DIMS:
                return DIMS
            if not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
                raise ValueError(f"operator {type(node.op).__name__} not allowed (use + - * //)")
            if DIMS in (left, right):
                raise ValueError(f"{ast.unparse(node)!r}: arithmetic on a list of dims (only + joins two lists)")
            return SCALAR
        if isinstance(node, ast.List):
            for item in node.elts:
                self.scalar(item)
            return DIMS
        if isinstance(node, ast.Subscript):
            if self.kind_of(node.value) != DIMS:
                raise ValueError(f"{ast.unparse(node)!r}: only a list of dims can be indexed")
            if isinstance(node.slice, ast.Slice):
                if node.slice.step is not None:
                    raise ValueError(f"{ast.unparse(node)!r}: slices take no step")
                for bound in (node.slice.lower, node.slice.upper):
                    if bound is not None:
                        _const_int(bound)
                return DIMS
            _const_int(node.slice)
            return SCALAR
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.IfExp):
            if not self.names.comparisons:
                raise ValueError("'a if c else b' is only allowed in launch rules")
            self.compare(node.test)
            body, other = self.kind_of(node.body), self.kind_of(node.orelse)
            if body != other:
                raise ValueError(f"{ast.unparse(node)!r}: both branches must be of one kind")
            return body
        if isinstance(node, ast.Compare):
            raise ValueError("a comparison is only allowed as the condition of 'a if c else b'")
        raise ValueError(f"{type(node).__name__} not allowed ({ast.unparse(node)!r})")

    def compare(self, node: ast.AST) -> None:
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            raise ValueError("the condition must be one comparison (< <= > >= == !=)")
        if not isinstance(node.ops[0], tuple(_COMPARE)):
            raise ValueError("the condition must be one comparison (< <= > >= == !=)")
        self.scalar(node.left)
        self.scalar(node.comparators[0])

    def call(self, node: ast.Call) -> str:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ValueError(f"only the functions {', '.join(FUNCTIONS)} may be called")
        name, args = node.func.id, node.args
        if name == "ceil_div" and len(args) != 2:
            raise ValueError("ceil_div takes 2 arguments")
        if name in ("min", "max") and len(args) < 2:
            raise ValueError(f"{name} takes at least 2 arguments")
        if name == "numel":
            if len(args) != 1 or self.kind_of(args[0]) != DIMS:
                raise ValueError("numel takes one list of dims, e.g. numel(x)")
            return SCALAR
        if name == "float_bits":
            if len(args) != 1 or not isinstance(args[0], ast.Name) or args[0].id not in self.names.floats:
                floats = ", ".join(sorted(self.names.floats)) or "(none)"
                raise ValueError(f"float_bits takes the name of one float attribute (float attributes: {floats})")
            return SCALAR
        for arg in args:
            self.scalar(arg)
        return SCALAR


def _const_int(node: ast.AST) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_const_int(node.operand)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    raise ValueError(f"index {ast.unparse(node)!r} must be an integer constant")


_COMPARE: dict[type[ast.cmpop], Callable[[int, int], bool]] = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


_COMPARE_TEXT: dict[type[ast.cmpop], str] = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
                                             ast.NotEq: "!="}


def float_bits(value: float) -> int:
    """The IEEE-754 float32 bit pattern of ``value`` as a signed int32 (how kernels receive float attributes)."""
    return int(struct.unpack("<i", struct.pack("<f", float(value)))[0])


# ------------------------------------------------------------------------------------------------- algebras
class Algebra(Generic[V, L]):
    """What the values of one evaluation are. Subclasses override the scalar operations; dims are ``L``."""

    def const(self, value: int) -> V:
        """An integer constant."""
        raise NotImplementedError

    def add(self, a: V, b: V) -> V:
        raise NotImplementedError

    def sub(self, a: V, b: V) -> V:
        raise NotImplementedError

    def mul(self, a: V, b: V) -> V:
        raise NotImplementedError

    def floordiv(self, a: V, b: V) -> V:
        raise NotImplementedError

    def ceil_div(self, a: V, b: V) -> V:
        raise NotImplementedError

    def minimum(self, a: V, b: V) -> V:
        raise NotImplementedError

    def maximum(self, a: V, b: V) -> V:
        raise NotImplementedError

    def known(self, value: V) -> int | None:
        """The int ``value`` is known to be now, or None (symbolic): comparisons need known values."""
        raise NotImplementedError

    def float_bits(self, value: Any) -> V:
        """``float_bits`` of a float attribute's value."""
        raise NotImplementedError

    def select(self, op: str, a: V, b: V, then: V, other: V) -> V | None:
        """``then if a <op> b else other`` decided at run time, or None when this algebra cannot (comparisons then
        need known values)."""
        return None

    # dims
    def index(self, dims: L, i: int) -> V:
        raise NotImplementedError

    def slice(self, dims: L, lower: int | None, upper: int | None) -> L:
        raise NotImplementedError

    def concat(self, a: L, b: L) -> L:
        raise NotImplementedError

    def make(self, items: Sequence[V]) -> L:
        raise NotImplementedError

    def numel(self, dims: L) -> V:
        raise NotImplementedError


class PythonAlgebra(Algebra[Any, list[Any]]):
    """Values with Python arithmetic (ints, torch SymInts, tensorrt.plugin ShapeExprs); dims are Python lists.

    Args:
        cdiv: Ceiling division (default ``-(-a // b)``).
        minimum: Two-value min (default ``min``).
        maximum: Two-value max (default ``max``).
        known: The int a value is known to be, or None (default ``int(v)``).
        lift: Turns an int into a value (for ``int - value`` where values lack reflected operators).
    """

    def __init__(self, cdiv: Callable[[Any, Any], Any] | None = None, minimum: Callable[[Any, Any], Any] = min,
                 maximum: Callable[[Any, Any], Any] = max, known: Callable[[Any], int | None] | None = None,
                 lift: Callable[[int], Any] | None = None) -> None:
        self._cdiv = cdiv or (lambda a, b: -(-a // b))
        self._min = minimum
        self._max = maximum
        self._known = known or (lambda v: int(v))
        self._lift = lift or (lambda v: v)

    def _both(self, a: Any, b: Any) -> tuple[Any, Any]:
        if isinstance(a, int) and not isinstance(b, int):
            return self._lift(a), b
        return a, b

    def const(self, value: int) -> Any:
        return value

    def add(self, a: Any, b: Any) -> Any:
        a, b = self._both(a, b)
        return a + b

    def sub(self, a: Any, b: Any) -> Any:
        a, b = self._both(a, b)
        return a - b

    def mul(self, a: Any, b: Any) -> Any:
        a, b = self._both(a, b)
        return a * b

    def floordiv(self, a: Any, b: Any) -> Any:
        a, b = self._both(a, b)
        return a // b

    def ceil_div(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            return -(-a // b)
        return self._cdiv(*self._both(a, b))

    def minimum(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        return self._min(*self._both(a, b))

    def maximum(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            return max(a, b)
        return self._max(*self._both(a, b))

    def known(self, value: Any) -> int | None:
        return int(value) if isinstance(value, int) else self._known(value)

    def float_bits(self, value: Any) -> Any:
        return float_bits(float(value))

    def index(self, dims: list[Any], i: int) -> Any:
        return dims[i]

    def slice(self, dims: list[Any], lower: int | None, upper: int | None) -> list[Any]:
        return list(dims[lower:upper])

    def concat(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [*a, *b]

    def make(self, items: Sequence[Any]) -> list[Any]:
        return list(items)

    def numel(self, dims: list[Any]) -> Any:
        out: Any = 1
        for d in dims:
            out = self.mul(out, d)
        return out


INT = PythonAlgebra()
"""Plain Python ints."""


def python_algebra(**kwargs: Any) -> PythonAlgebra:
    """A :class:`PythonAlgebra` (see its arguments)."""
    return PythonAlgebra(**kwargs)


class SymbolicValue(Exception):
    """A comparison needed a value that is only known at run time (a dynamic dim)."""


def evaluate(expr: Expr, env: Mapping[str, Any], algebra: Algebra[Any, Any] = INT) -> Any:
    """Evaluate a parsed expression.

    Args:
        expr: From :func:`parse`.
        env: Name → value: scalars and dims (``L``) in the algebra's types; float attributes as Python floats.
        algebra: What the values are.

    Raises:
        SymbolicValue: A comparison needs a dynamic value.
        KeyError: A name the expression uses is missing from ``env`` (a bug of the caller: parse checked names).
    """

    checker = _Checker(expr.allowed)

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return algebra.const(int(cast(int, node.value)))
        if isinstance(node, ast.UnaryOp):
            return algebra.sub(algebra.const(0), ev(node.operand))
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                if checker.kind_of(node.left) == DIMS:
                    return algebra.concat(a, b)
                return algebra.add(a, b)
            if isinstance(node.op, ast.Sub):
                return algebra.sub(a, b)
            if isinstance(node.op, ast.Mult):
                return algebra.mul(a, b)
            return algebra.floordiv(a, b)
        if isinstance(node, ast.List):
            return algebra.make([ev(e) for e in node.elts])
        if isinstance(node, ast.Subscript):
            dims = ev(node.value)
            if isinstance(node.slice, ast.Slice):
                lower = _const_int(node.slice.lower) if node.slice.lower is not None else None
                upper = _const_int(node.slice.upper) if node.slice.upper is not None else None
                return algebra.slice(dims, lower, upper)
            return algebra.index(dims, _const_int(node.slice))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            fn = node.func.id
            if fn == "float_bits":
                assert isinstance(node.args[0], ast.Name)
                return algebra.float_bits(env[node.args[0].id])
            if fn == "numel":
                return algebra.numel(ev(node.args[0]))
            args = [ev(a) for a in node.args]
            if fn == "ceil_div":
                return algebra.ceil_div(args[0], args[1])
            out = args[0]
            for a in args[1:]:
                out = algebra.minimum(out, a) if fn == "min" else algebra.maximum(out, a)
            return out
        if isinstance(node, ast.IfExp):
            test = node.test
            assert isinstance(test, ast.Compare)
            a, b = ev(test.left), ev(test.comparators[0])
            left, right = algebra.known(a), algebra.known(b)
            if left is None or right is None:
                if type(algebra).select is Algebra.select:  # decided here or nowhere
                    raise SymbolicValue(f"{ast.unparse(test)!r} depends on a dim only known at run time")
                return algebra.select(_COMPARE_TEXT[type(test.ops[0])], a, b, ev(node.body), ev(node.orelse))
            return ev(node.body) if _COMPARE[type(test.ops[0])](left, right) else ev(node.orelse)
        raise AssertionError(f"unchecked node {ast.dump(node)}")  # parse() admits nothing else

    return ev(expr.tree)


# ------------------------------------------------------------------------------------------------ C++ output
class CppDimsAlgebra(Algebra[str, str]):
    """C++ source over TensorRT's ``IExprBuilder`` (``b``): scalars are ``IDimensionExpr const*`` expressions,
    dims are ``trtrepo::trt::DimList`` expressions (helpers in ``trt_plugin_base.h``).

    Used for a plugin's getOutputShapes, so comparisons (build-time values) are not available.
    """

    def const(self, value: int) -> str:
        return f"b.constant({value})"

    def _op(self, op: str, a: str, b: str) -> str:
        return f"b.operation(nvinfer1::DimensionOperation::{op}, *{a}, *{b})"

    def add(self, a: str, b: str) -> str:
        return self._op("kSUM", a, b)

    def sub(self, a: str, b: str) -> str:
        return self._op("kSUB", a, b)

    def mul(self, a: str, b: str) -> str:
        return self._op("kPROD", a, b)

    def floordiv(self, a: str, b: str) -> str:
        return self._op("kFLOOR_DIV", a, b)

    def ceil_div(self, a: str, b: str) -> str:
        return self._op("kCEIL_DIV", a, b)

    def minimum(self, a: str, b: str) -> str:
        return self._op("kMIN", a, b)

    def maximum(self, a: str, b: str) -> str:
        return self._op("kMAX", a, b)

    def known(self, value: str) -> int | None:
        return None

    def float_bits(self, value: Any) -> str:
        raise SymbolicValue("float_bits is not available in shape rules")

    def index(self, dims: str, i: int) -> str:
        return f"trtrepo::trt::dimAt({dims}, {i})"

    def slice(self, dims: str, lower: int | None, upper: int | None) -> str:
        lo = "trtrepo::trt::kNoBound" if lower is None else str(lower)
        hi = "trtrepo::trt::kNoBound" if upper is None else str(upper)
        return f"trtrepo::trt::dimSlice({dims}, {lo}, {hi})"

    def concat(self, a: str, b: str) -> str:
        return f"trtrepo::trt::dimConcat({a}, {b})"

    def make(self, items: Sequence[str]) -> str:
        return "trtrepo::trt::DimList{" + ", ".join(items) + "}"

    def numel(self, dims: str) -> str:
        return f"trtrepo::trt::dimNumel({dims}, b)"


class CppIntAlgebra(Algebra[str, str]):
    """Host C++ source over ``int64_t`` (scalars) and ``std::vector<int64_t>`` (dims), with the helpers of
    ``trtrepo_gen.h``: what the generated launcher, torch binding and plugin compute at run time. Comparisons are
    decided at run time (``?:``)."""

    def const(self, value: int) -> str:
        return f"int64_t{{{value}}}"

    def add(self, a: str, b: str) -> str:
        return f"({a} + {b})"

    def sub(self, a: str, b: str) -> str:
        return f"({a} - {b})"

    def mul(self, a: str, b: str) -> str:
        return f"({a} * {b})"

    def floordiv(self, a: str, b: str) -> str:
        return f"trtrepo_gen::floordiv({a}, {b})"

    def ceil_div(self, a: str, b: str) -> str:
        return f"trtrepo_gen::ceil_div({a}, {b})"

    def minimum(self, a: str, b: str) -> str:
        return f"std::min<int64_t>({a}, {b})"

    def maximum(self, a: str, b: str) -> str:
        return f"std::max<int64_t>({a}, {b})"

    def known(self, value: str) -> int | None:
        return None

    def float_bits(self, value: Any) -> str:
        return f"int64_t{{trtrepo_gen::float_bits({value})}}"

    def select(self, op: str, a: str, b: str, then: str, other: str) -> str:
        return f"(({a}) {op} ({b}) ? {then} : {other})"

    def index(self, dims: str, i: int) -> str:
        return f"trtrepo_gen::at({dims}, {i})"

    def slice(self, dims: str, lower: int | None, upper: int | None) -> str:
        lo = "trtrepo_gen::kNoBound" if lower is None else str(lower)
        hi = "trtrepo_gen::kNoBound" if upper is None else str(upper)
        return f"trtrepo_gen::slice({dims}, {lo}, {hi})"

    def concat(self, a: str, b: str) -> str:
        return f"trtrepo_gen::cat({a}, {b})"

    def make(self, items: Sequence[str]) -> str:
        return "std::vector<int64_t>{" + ", ".join(items) + "}"

    def numel(self, dims: str) -> str:
        return f"trtrepo_gen::numel({dims})"
