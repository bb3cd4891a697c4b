"""``plugin_src/<op>/op.yaml`` → :class:`OpDescription`: what every stage needs to know about a custom op.

One file describes the op once: its torch schema, tensor inputs and attributes, output shape rules (for fake
kernels and TensorRT output descriptors), dtypes, TensorRT plugin creator, the CUDA kernel's AOT entries with the
launch rule the launcher uses, and an aten decomposition. Launch rules are small integer expressions (see
:func:`evaluate`) so that an AOT plugin can rebuild them from symbolic shapes; they are validated at load time.
"""

from __future__ import annotations

import ast
import difflib
import logging
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from trtrepo.errors import SpecError

LOGGER = logging.getLogger(__name__)

OP_FILE = "op.yaml"
SUPPORTED_DTYPES = ("fp32", "fp16", "bf16")
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
ATTRIBUTE_TYPES = ("float", "int", "bool")
VECTOR_BYTES = 16
# Names a launch expression may read besides the op's attributes.
EXPR_NAMES = ("rows", "cols", "block", "vec")
EXPR_FUNCS = ("ceil_div", "min", "max", "float_bits")

_TOP_KEYS = ("name", "schema", "inputs", "attributes", "outputs", "dtypes", "plugin", "kernel", "decomposition")
_REQUIRED = ("name", "schema", "inputs", "outputs", "dtypes")
_KERNEL_KEYS = ("source", "entries", "scalars", "block", "grid", "shared_memory")
_SCHEMA_RE = re.compile(r"^\s*(?P<op>[A-Za-z_]\w*)\s*\((?P<args>.*)\)\s*->\s*(?P<ret>.+?)\s*$")


@dataclass(frozen=True)
class Attribute:
    """A non-tensor argument of the op (passed to the plugin as a plugin field)."""

    name: str
    type: str
    default: Any = None


@dataclass(frozen=True)
class OutputRule:
    """An output: ``like`` names the input whose shape and dtype it has."""

    name: str
    like: str


@dataclass(frozen=True)
class PluginInfo:
    """TensorRT IPluginV3 creator identity; the namespace is the op's namespace."""

    name: str
    version: str
    namespace: str


@dataclass(frozen=True)
class KernelScalar:
    """An int32 argument of the kernel entry (after the pointers) and the expression giving its value."""

    name: str
    value: str


@dataclass(frozen=True)
class LaunchConfig:
    """A concrete launch: entry name, grid/block (x only), dynamic shared memory and the int32 scalar args."""

    entry: str
    grid: int
    block: int
    shared_memory: int
    scalars: tuple[int, ...]


@dataclass(frozen=True)
class KernelSpec:
    """The CUDA kernel as TensorRT AOT plugins see it.

    Attributes:
        source: The .cu file (absolute).
        entries: dtype name → ``extern "C" __global__`` entry name.
        scalars: The entry's int32 arguments, in order; the entry takes the input pointers, then these, then the
            output pointers (TensorRT's AOT kernel ABI).
        block: Threads per block (x).
        grid: Expression of the grid size (x).
        shared_memory: Dynamic shared memory in bytes.
    """

    source: Path
    entries: Mapping[str, str]
    scalars: tuple[KernelScalar, ...]
    block: int
    grid: str
    shared_memory: int = 0

    def env(self, shape: Iterable[int], dtype: str, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Values the expressions see for a first input of ``shape`` and ``dtype``."""
        dims = list(shape)
        if not dims:
            raise ValueError("the first input of a custom op needs at least one dim")
        cols = int(dims[-1])
        rows = 1
        for d in dims[:-1]:
            rows *= int(d)
        env: dict[str, Any] = dict(attributes or {})
        env.update(rows=rows, cols=cols, block=self.block, vec=VECTOR_BYTES // DTYPE_BYTES[dtype])
        return env

    def launch(self, shape: Iterable[int], dtype: str, attributes: Mapping[str, Any] | None = None) -> LaunchConfig:
        """The launch the C++ launcher makes for a first input of ``shape`` (what an AOT plugin must reproduce)."""
        env = self.env(shape, dtype, attributes)
        return LaunchConfig(
            entry=self.entries[dtype],
            grid=int(evaluate(self.grid, env)),
            block=self.block,
            shared_memory=self.shared_memory,
            scalars=tuple(int(evaluate(s.value, env)) for s in self.scalars),
        )


@dataclass(frozen=True)
class OpDescription:
    """One custom op, from its op.yaml.

    Attributes:
        name: ``namespace::op`` (the torch op; the namespace is also the TensorRT plugin namespace).
        schema: Torch schema without the namespace, e.g. ``bias_gelu(Tensor x, Tensor bias) -> Tensor``.
        inputs: Tensor arguments, in schema order.
        attributes: Non-tensor arguments, in schema order.
        outputs: One rule per returned tensor.
        dtypes: Supported dtype names (``fp32``, ``fp16``, ``bf16``).
        plugin: TensorRT plugin creator, or None if the op has no plugin.
        kernel: AOT kernel description, or None.
        decomposition: ``module:function`` in the op folder implementing the op with aten ops, or None.
        folder: The op folder.
        path: The op.yaml file.
    """

    name: str
    schema: str
    inputs: tuple[str, ...]
    attributes: tuple[Attribute, ...]
    outputs: tuple[OutputRule, ...]
    dtypes: tuple[str, ...]
    plugin: PluginInfo | None
    kernel: KernelSpec | None
    decomposition: str | None
    folder: Path
    path: Path
    sources: tuple[Path, ...] = field(default=())

    @property
    def namespace(self) -> str:
        """``trtrepo`` of ``trtrepo::bias_gelu``."""
        return self.name.split("::", 1)[0]

    @property
    def op_name(self) -> str:
        """``bias_gelu`` of ``trtrepo::bias_gelu``."""
        return self.name.split("::", 1)[1]

    def torch_op(self) -> Any:
        """The loaded ``torch.ops.<ns>.<op>.default`` overload (the op library must be loaded)."""
        import torch

        return getattr(getattr(torch.ops, self.namespace), self.op_name).default

    def load_decomposition(self) -> Callable[..., Any]:
        """Import the decomposition callable from the op folder.

        Raises:
            SpecError: The op has none, or it cannot be imported.
        """
        if self.decomposition is None:
            raise SpecError(f"{self.path}: decomposition: {self.name} declares none")
        from trtrepo._files import import_file

        module_name, func = self.decomposition.split(":", 1)
        file = self.folder / f"{module_name}.py"
        try:
            module = import_file(file, prefix=f"trtrepo_opdecomp_{self.namespace}_{self.op_name}")
        except Exception as exc:
            raise SpecError(f"{self.path}: decomposition: importing {file} failed: {exc}") from exc
        fn = getattr(module, func, None)
        if not callable(fn):
            raise SpecError(f"{self.path}: decomposition: {module_name}.py has no function {func!r}")
        return cast(Callable[..., Any], fn)


# ---------------------------------------------------------------------------------------------------------------
# launch expressions


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _float_bits(x: float) -> int:
    return int(struct.unpack("<i", struct.pack("<f", float(x)))[0])


_FUNCS: dict[str, Callable[..., int]] = {"ceil_div": _ceil_div, "min": min, "max": max, "float_bits": _float_bits}
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


def parse_expression(expr: str, names: Iterable[str]) -> ast.expr:
    """Parse a launch expression, allowing only integer arithmetic (``+ - * //``), comparisons, ``a if c else b``,
    the functions ``ceil_div min max float_bits``, integer constants and ``names``.

    Raises:
        ValueError: Anything else (the message names the offending piece).
    """
    allowed = set(names)
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {exc.msg}") from None

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise ValueError(f"operator {type(node.op).__name__} not allowed (use + - * //)")
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
                raise ValueError("only single comparisons (< <= > >= == !=) are allowed")
            check(node.left)
            check(node.comparators[0])
        elif isinstance(node, ast.IfExp):
            check(node.test)
            check(node.body)
            check(node.orelse)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
                raise ValueError(f"only the functions {', '.join(EXPR_FUNCS)} may be called")
            for a in node.args:
                check(a)
        elif isinstance(node, ast.Name):
            if node.id not in allowed:
                hint = difflib.get_close_matches(node.id, sorted(allowed), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(f"unknown name {node.id!r}{extra}; known: {', '.join(sorted(allowed))}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int) or isinstance(node.value, bool):
                raise ValueError(f"constant {node.value!r} is not an integer")
        else:
            raise ValueError(f"{type(node).__name__} not allowed")

    check(tree)
    return tree


def evaluate(expr: str, env: Mapping[str, Any]) -> int:
    """Evaluate a launch expression (see :func:`parse_expression`) with ``env``'s values."""
    tree = parse_expression(expr, env.keys())

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            return _CMPOPS[type(node.ops[0])](ev(node.left), ev(node.comparators[0]))
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCS[node.func.id](*(ev(a) for a in node.args))
        if isinstance(node, ast.Name):
            return env[node.id]
        assert isinstance(node, ast.Constant)
        return node.value

    return cast(int, ev(tree))


# ---------------------------------------------------------------------------------------------------------------
# loading


def _err(path: Path, key: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError(f"{path}: {key}: {message}", hint=hint)


def _check_keys(path: Path, where: str, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
            raise _err(path, f"{where}{key}", "unknown key", hint)


def _as_list(path: Path, key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(path, key, f"must be a list, got {type(value).__name__}")
    return value


def _split_args(args: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in args:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_schema(path: Path, schema: str) -> tuple[str, list[tuple[str, str, str | None]], int]:
    """Split a torch schema into (op name, [(type, name, default)], number of returned tensors).

    Raises:
        SpecError: The schema is not ``op(Type name[=default], ...) -> Ret``.
    """
    m = _SCHEMA_RE.match(schema)
    if not m:
        raise _err(path, "schema", f"{schema!r} is not 'op(Type name, ...) -> Ret'",
                   "example: \"bias_gelu(Tensor x, Tensor bias) -> Tensor\"")
    args = []
    for part in _split_args(m.group("args")):
        decl, _, default = part.partition("=")
        bits = decl.split()
        if len(bits) != 2:
            raise _err(path, "schema", f"argument {part!r} is not 'Type name'")
        args.append((bits[0], bits[1], default.strip() or None))
    ret = m.group("ret").strip()
    n_ret = len(_split_args(ret[1:-1])) if ret.startswith("(") else 1
    return m.group("op"), args, n_ret


def load_op_description(path: Path | str) -> OpDescription:
    """Read and validate one op.yaml.

    Args:
        path: The op.yaml file (its folder is the op folder).

    Raises:
        SpecError: Unreadable YAML or an invalid field; the message names the file and the key.
    """
    import yaml

    path = Path(path).resolve()
    folder = path.parent
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: must be a mapping of the keys {', '.join(_TOP_KEYS)}")
    _check_keys(path, "", data, _TOP_KEYS)
    for key in _REQUIRED:
        if key not in data:
            raise _err(path, key, "missing (required)")

    name = data["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*::[A-Za-z_]\w*", name):
        raise _err(path, "name", f"{name!r} must be 'namespace::op'", "e.g. trtrepo::bias_gelu")
    namespace, op_name = name.split("::")

    schema = data["schema"]
    if not isinstance(schema, str):
        raise _err(path, "schema", "must be a string")
    schema_op, schema_args, n_ret = parse_schema(path, schema)
    if schema_op != op_name:
        raise _err(path, "schema", f"names op {schema_op!r} but name is {name!r}")

    inputs = tuple(str(i) for i in _as_list(path, "inputs", data["inputs"]))
    tensor_args = [n for t, n, _ in schema_args if t.startswith("Tensor")]
    if list(inputs) != tensor_args:
        raise _err(path, "inputs", f"{list(inputs)} must list the schema's Tensor arguments in order: {tensor_args}")
    if not inputs:
        raise _err(path, "inputs", "an op needs at least one tensor input")

    attributes = []
    schema_attrs = [(t, n, d) for t, n, d in schema_args if not t.startswith("Tensor")]
    raw_attrs = _as_list(path, "attributes", data.get("attributes"))
    for i, a in enumerate(raw_attrs):
        key = f"attributes[{i}]"
        if not isinstance(a, dict):
            raise _err(path, key, "must be a mapping {name, type, default}")
        _check_keys(path, f"{key}.", a, ("name", "type", "default"))
        if "name" not in a or "type" not in a:
            raise _err(path, key, "needs name and type")
        if a["type"] not in ATTRIBUTE_TYPES:
            raise _err(path, f"{key}.type", f"{a['type']!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
        attributes.append(Attribute(str(a["name"]), str(a["type"]), a.get("default")))
    if [(a.type, a.name) for a in attributes] != [(t, n) for t, n, _ in schema_attrs]:
        raise _err(path, "attributes", f"{[(a.name, a.type) for a in attributes]} must match the schema's non-tensor "
                   f"arguments in order: {[(n, t) for t, n, _ in schema_attrs]}")

    outputs = []
    raw_outputs = _as_list(path, "outputs", data["outputs"])
    for i, o in enumerate(raw_outputs):
        key = f"outputs[{i}]"
        if not isinstance(o, dict) or "name" not in o or "like" not in o:
            raise _err(path, key, "must be a mapping {name, like: <input>}")
        _check_keys(path, f"{key}.", o, ("name", "like"))
        if o["like"] not in inputs:
            raise _err(path, f"{key}.like", f"{o['like']!r} is not an input; inputs: {', '.join(inputs)}")
        outputs.append(OutputRule(str(o["name"]), str(o["like"])))
    if len(outputs) != n_ret:
        raise _err(path, "outputs", f"{len(outputs)} rules but the schema returns {n_ret} tensors")

    dtypes = tuple(str(d) for d in _as_list(path, "dtypes", data["dtypes"]))
    for d in dtypes:
        if d not in SUPPORTED_DTYPES:
            raise _err(path, "dtypes", f"{d!r} is not one of {', '.join(SUPPORTED_DTYPES)}")
    if not dtypes:
        raise _err(path, "dtypes", "must name at least one dtype")

    plugin = None
    if data.get("plugin") is not None:
        p = data["plugin"]
        if not isinstance(p, dict) or "name" not in p or "version" not in p:
            raise _err(path, "plugin", "must be a mapping {name, version}")
        _check_keys(path, "plugin.", p, ("name", "version"))
        plugin = PluginInfo(str(p["name"]), str(p["version"]), namespace)

    kernel = None
    if data.get("kernel") is not None:
        kernel = _load_kernel(path, data["kernel"], dtypes, [a.name for a in attributes])

    decomposition = data.get("decomposition")
    if decomposition is not None:
        if not isinstance(decomposition, str) or not re.fullmatch(r"\w+:\w+", decomposition):
            raise _err(path, "decomposition", f"{decomposition!r} must be 'module:function'")
        module_file = folder / f"{decomposition.split(':')[0]}.py"
        if not module_file.is_file():
            raise _err(path, "decomposition", f"{module_file} does not exist")

    sources = tuple(sorted(p for p in folder.iterdir() if p.suffix in (".cu", ".cpp", ".h", ".cuh")))
    return OpDescription(name=name, schema=schema, inputs=inputs, attributes=tuple(attributes),
                         outputs=tuple(outputs), dtypes=dtypes, plugin=plugin, kernel=kernel,
                         decomposition=decomposition, folder=folder, path=path, sources=sources)


def _load_kernel(path: Path, k: Any, dtypes: tuple[str, ...], attribute_names: list[str]) -> KernelSpec:
    if not isinstance(k, dict):
        raise _err(path, "kernel", "must be a mapping {source, entries, scalars, block, grid, shared_memory}")
    _check_keys(path, "kernel.", k, _KERNEL_KEYS)
    for key in ("source", "entries", "block", "grid"):
        if key not in k:
            raise _err(path, f"kernel.{key}", "missing (required)")
    source = path.parent / str(k["source"])
    if not source.is_file():
        raise _err(path, "kernel.source", f"{source} does not exist")
    entries = k["entries"]
    if not isinstance(entries, dict) or set(entries) != set(dtypes):
        raise _err(path, "kernel.entries", f"must map every dtype ({', '.join(dtypes)}) to an entry name")
    for d, e in entries.items():
        if not isinstance(e, str) or not re.fullmatch(r"[A-Za-z_]\w*", e):
            raise _err(path, f"kernel.entries.{d}", f"{e!r} is not a C identifier")
    block = k["block"]
    if not isinstance(block, int) or isinstance(block, bool) or not 32 <= block <= 1024 or block % 32:
        raise _err(path, "kernel.block", f"{block!r} must be a multiple of 32 in [32, 1024]")
    shared = k.get("shared_memory", 0)
    if not isinstance(shared, int) or shared < 0:
        raise _err(path, "kernel.shared_memory", f"{shared!r} must be a non-negative integer")
    names = list(EXPR_NAMES) + attribute_names
    grid = str(k["grid"])
    try:
        parse_expression(grid, names)
    except ValueError as exc:
        raise _err(path, "kernel.grid", str(exc)) from None
    scalars = []
    for i, s in enumerate(_as_list(path, "kernel.scalars", k.get("scalars"))):
        key = f"kernel.scalars[{i}]"
        if not isinstance(s, dict) or "name" not in s or "value" not in s:
            raise _err(path, key, "must be a mapping {name, value}")
        _check_keys(path, f"{key}.", s, ("name", "value"))
        try:
            parse_expression(str(s["value"]), names)
        except ValueError as exc:
            raise _err(path, f"{key}.value", str(exc)) from None
        scalars.append(KernelScalar(str(s["name"]), str(s["value"])))
    return KernelSpec(source=source, entries=dict(entries), scalars=tuple(scalars), block=block, grid=grid,
                      shared_memory=shared)


def discover_ops(dirs: Iterable[Path | str]) -> dict[str, OpDescription]:
    """Every op under ``dirs``: each dir is an op folder (holds op.yaml) or a plugin_src root (its subfolders are).

    Returns:
        op name (``ns::op``) → description, sorted by name.

    Raises:
        SpecError: A dir does not exist, an op.yaml is invalid, or two op.yaml files declare the same op.
    """
    found: dict[str, OpDescription] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise SpecError(f"{d}: plugin source folder does not exist")
        files = [d / OP_FILE] if (d / OP_FILE).is_file() else sorted(d.glob(f"*/{OP_FILE}"))
        for f in files:
            desc = load_op_description(f)
            if desc.name in found:
                raise SpecError(f"{f}: name: {desc.name} is already declared by {found[desc.name].path}",
                                hint="op names must be unique across plugin_src folders")
            found[desc.name] = desc
    return dict(sorted(found.items()))
