"""``<plugin source>/<op>/op.yaml`` → :class:`OpDescription`: what every stage needs to know about a custom op.

One file describes the op once: its torch schema, tensor inputs (with optional shape patterns) and attributes,
output shape and dtype rules (fake kernels, TensorRT output descriptors, the C++ plugin's getOutputShapes and
``trtrepo ops check`` all use them), dtypes, the TensorRT plugin creator, the CUDA kernel's AOT entries with their
launch rule, and an aten decomposition. Rules are expressions of :mod:`trtrepo.ops.expr`, checked when the file is
read. plugin_src/README.md is the reference of every key.
"""

from __future__ import annotations

import ast
import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from trtrepo import dtypes
from trtrepo.errors import SpecError
from trtrepo.ops import expr

LOGGER = logging.getLogger(__name__)

OP_FILE = "op.yaml"
SUPPORTED_DTYPES = dtypes.KERNEL_NAMES
ATTRIBUTE_TYPES = ("float", "int", "bool")
VECTOR_BYTES = 16
# Names a launch expression may read besides the op's attributes and inputs.
LAUNCH_NAMES = ("rows", "cols", "block", "vec")
ELLIPSIS = "..."

_TOP_KEYS = ("name", "schema", "inputs", "attributes", "outputs", "dtypes", "plugin", "kernel", "cpu",
             "decomposition")
_REQUIRED = ("name", "schema", "inputs", "outputs", "dtypes")
_KERNEL_KEYS = ("source", "entries", "scalars", "block", "grid", "shared_memory")
_SCHEMA_RE = re.compile(r"\s*(?P<op>[A-Za-z_]\w*)\s*\((?P<args>.*)\)\s*->\s*(?P<ret>.+?)\s*")
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Attribute:
    """A non-tensor argument of the op (passed to the plugin as a plugin field)."""

    name: str
    type: str
    default: Any = None


@dataclass(frozen=True)
class Dim:
    """One entry of an input's shape pattern: ``...`` (the leading dims every input shares), a constant, or
    ``factor * symbol`` (``D``, ``2*H``)."""

    symbol: str | None = None
    factor: int = 1
    ellipsis: bool = False

    def __str__(self) -> str:
        if self.ellipsis:
            return ELLIPSIS
        if self.symbol is None:
            return str(self.factor)
        return self.symbol if self.factor == 1 else f"{self.factor}*{self.symbol}"


@dataclass(frozen=True)
class InputSpec:
    """A tensor input and, when op.yaml gives one, its shape pattern (``[..., D]``, ``[D]``, ``[..., 2*H]``)."""

    name: str
    pattern: tuple[Dim, ...] | None = None

    def shape(self, leading: Sequence[int], symbols: Mapping[str, int]) -> tuple[int, ...]:
        """The concrete shape for these leading dims and symbol values."""
        assert self.pattern is not None
        out: list[int] = []
        for d in self.pattern:
            if d.ellipsis:
                out += list(leading)
            elif d.symbol is None:
                out.append(d.factor)
            else:
                out.append(d.factor * symbols[d.symbol])
        return tuple(out)


@dataclass(frozen=True)
class OutputRule:
    """An output: its shape rule (an expression over the inputs' shapes) and its dtype (an input's, or fixed).

    ``like: x`` in op.yaml is the rule ``shape: x, dtype: x``; ``like`` keeps that input's name.
    """

    name: str
    shape: expr.Expr
    dtype: str
    like: str | None = None

    @property
    def dtype_from_input(self) -> bool:
        """True when the dtype is an input's (not a fixed dtype name)."""
        return self.dtype not in dtypes.DTYPES


@dataclass(frozen=True)
class PluginInfo:
    """TensorRT IPluginV3 creator identity (the namespace defaults to the op's namespace)."""

    name: str
    version: str
    namespace: str


@dataclass(frozen=True)
class KernelScalar:
    """An int32 argument of the kernel entry (after the input pointers) and the expression giving its value."""

    name: str
    value: expr.Expr


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
    """The CUDA kernel as TensorRT AOT plugins (and the launchers) launch it.

    Attributes:
        source: The .cu file (absolute).
        entries: dtype name → ``extern "C" __global__`` entry name.
        scalars: The entry's int32 arguments, in order; the entry takes the input pointers, then these, then the
            output pointers (TensorRT's AOT kernel ABI).
        block: Threads per block (x).
        grid: The grid size (x).
        shared_memory: Dynamic shared memory in bytes.
    """

    source: Path
    entries: Mapping[str, str]
    scalars: tuple[KernelScalar, ...]
    block: int
    grid: expr.Expr
    shared_memory: int = 0


@dataclass(frozen=True)
class OpDescription:
    """One custom op, from its op.yaml.

    Attributes:
        name: ``namespace::op`` (the torch op; the namespace is also the default TensorRT plugin namespace).
        schema: Torch schema without the namespace, e.g. ``bias_gelu(Tensor x, Tensor bias) -> Tensor``.
        inputs: Tensor argument names, in schema order.
        attributes: Non-tensor arguments, in schema order.
        outputs: One rule per returned tensor.
        dtypes: Supported dtype names (``fp32``, ``fp16``, ``bf16``).
        plugin: TensorRT plugin creator, or None if the op has no plugin.
        kernel: AOT kernel description, or None.
        decomposition: ``module:function`` in the op folder implementing the op with aten ops, or None.
        folder: The op folder.
        path: The op.yaml file.
        input_specs: The inputs with their shape patterns (None where op.yaml gives none).
        cpu: The C++ CPU reference the generated binding calls (a function of the op folder's .cpp files taking the
            kernel entries' arguments in fp32), or None.
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
    input_specs: tuple[InputSpec, ...] = field(default=())
    cpu: str | None = None

    @property
    def namespace(self) -> str:
        """``trtrepo`` of ``trtrepo::bias_gelu``."""
        return self.name.split("::", 1)[0]

    @property
    def op_name(self) -> str:
        """``bias_gelu`` of ``trtrepo::bias_gelu``."""
        return self.name.split("::", 1)[1]

    @property
    def has_patterns(self) -> bool:
        """Whether every input has a shape pattern (``ops check`` and the kernel benchmark need them)."""
        return bool(self.input_specs) and all(i.pattern is not None for i in self.input_specs)

    def input_shapes(self, leading: Sequence[int], symbols: Mapping[str, int]) -> list[tuple[int, ...]]:
        """Concrete input shapes from the shape patterns: ``...`` = ``leading``, each symbol its value.

        Raises:
            SpecError: An input has no shape pattern, or a symbol has no value.
        """
        if not self.has_patterns:
            missing = [i.name for i in self.input_specs if i.pattern is None] or list(self.inputs)
            raise SpecError(f"{self.path}: inputs: {', '.join(missing)} need a shape pattern (e.g. "
                            "{name: x, shape: [..., D]}) for this", hint="see plugin_src/README.md, op.yaml inputs")
        needed = sorted(self.symbols() - set(symbols))
        if needed:
            raise SpecError(f"{self.name}: no value for the shape symbols {', '.join(needed)}")
        return [spec.shape(leading, symbols) for spec in self.input_specs]

    def symbols(self) -> set[str]:
        """The symbols (``D``, ``H``) of the inputs' shape patterns."""
        return {d.symbol for s in self.input_specs for d in (s.pattern or ()) if d.symbol is not None}

    def torch_op(self) -> Any:
        """The loaded ``torch.ops.<ns>.<op>.default`` overload (the op library must be loaded)."""
        import torch

        return getattr(getattr(torch.ops, self.namespace), self.op_name).default

    def attribute_values(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every attribute's value: the given one, else its op.yaml default (None where it has none)."""
        given = given or {}
        return {a.name: given[a.name] if given.get(a.name) is not None else a.default for a in self.attributes}

    def output_shapes(self, input_shapes: Sequence[Any], attributes: Mapping[str, Any] | None = None,
                      algebra: expr.Algebra[Any, Any] = expr.INT) -> list[Any]:
        """Each output's shape by its rule, from the inputs' shapes (in the algebra's types; ints by default).

        Raises:
            SpecError: The rule does not fit these shapes (an index past the rank), naming the op and the output.
        """
        if len(input_shapes) != len(self.inputs):
            raise SpecError(f"{self.path}: {self.name} takes {len(self.inputs)} inputs, got {len(input_shapes)} "
                            "shapes")
        env: dict[str, Any] = {n: list(s) if not isinstance(s, str) else s
                               for n, s in zip(self.inputs, input_shapes, strict=True)}
        for attr, value in self.attribute_values(attributes).items():
            if value is not None and self._attribute(attr).type != "float":
                env[attr] = algebra.const(int(value))
        out = []
        for i, rule in enumerate(self.outputs):
            try:
                shape = expr.evaluate(rule.shape, env, algebra)
            except IndexError:
                raise SpecError(f"{self.path}: outputs[{i}].shape: {rule.shape.text!r} indexes past the rank of "
                                f"the input shapes {[list(s) for s in input_shapes]}") from None
            out.append(tuple(shape) if isinstance(shape, list) else shape)
        return out

    def output_dtypes(self, input_dtypes: Sequence[str]) -> list[str]:
        """Each output's dtype (trtrepo names) from the inputs' dtypes."""
        by_name = dict(zip(self.inputs, input_dtypes, strict=True))
        return [by_name[o.dtype] if o.dtype_from_input else o.dtype for o in self.outputs]

    def launch_env(self, input_shapes: Sequence[Any], dtype: str, attributes: Mapping[str, Any] | None = None,
                   algebra: expr.Algebra[Any, Any] = expr.INT) -> dict[str, Any]:
        """The names the kernel's launch expressions see (``rows cols block vec``, attributes, inputs).

        ``rows`` is the product of the first input's dims but the last, ``cols`` its last dim.
        """
        kernel = self.require_kernel()
        if dtype not in dtypes.KERNEL_NAMES:
            raise SpecError(f"{self.name}: kernels take {', '.join(dtypes.KERNEL_NAMES)}, not {dtype!r}")
        first = list(input_shapes[0])
        if not first:
            raise SpecError(f"{self.name}: the first input ({self.inputs[0]}) needs at least one dim")
        env: dict[str, Any] = dict(zip(self.inputs, (list(s) for s in input_shapes), strict=True))
        for name, value in self.attribute_values(attributes).items():
            attr = self._attribute(name)
            env[name] = float(value) if attr.type == "float" else algebra.const(int(value))
        env["cols"] = algebra.index(first, -1)
        env["rows"] = algebra.numel(algebra.slice(first, None, -1))
        env["block"] = algebra.const(kernel.block)
        env["vec"] = algebra.const(VECTOR_BYTES // dtypes.get(dtype).itemsize)
        return env

    def launch(self, input_shapes: Sequence[Sequence[int]], dtype: str,
               attributes: Mapping[str, Any] | None = None) -> LaunchConfig:
        """The launch for concrete input shapes: what the C++ launcher does and an AOT plugin must reproduce."""
        kernel = self.require_kernel()
        env = self.launch_env([list(map(int, s)) for s in input_shapes], dtype, attributes)
        return LaunchConfig(entry=kernel.entries[dtype], grid=int(expr.evaluate(kernel.grid, env)),
                            block=kernel.block, shared_memory=kernel.shared_memory,
                            scalars=tuple(int(expr.evaluate(s.value, env)) for s in kernel.scalars))

    def input_checks(self) -> dict[str, Any]:
        """op.yaml's input checks as plain data for :func:`trtrepo.ops.shape_check.checked` (JSON-ready):
        ``{"op", "inputs": [[name, pattern or None]], "dtypes": {torch name: op.yaml name}}``."""
        def entry(d: Dim) -> Any:
            if d.ellipsis:
                return ELLIPSIS
            return d.factor if d.symbol is None else [d.factor, d.symbol]

        inputs = [[s.name, None if s.pattern is None else [entry(d) for d in s.pattern]] for s in self.input_specs]
        return {"op": self.name, "inputs": inputs, "dtypes": {dtypes.get(d).torch: d for d in self.dtypes}}

    def checked_decomposition(self) -> Callable[..., Any]:
        """The decomposition behind op.yaml's input checks (dtypes, shape patterns), as the generated binding has
        them: what serves the op on CPU when op.yaml names no C++ CPU reference."""
        from trtrepo.ops import shape_check

        checks = self.input_checks()
        return shape_check.checked(checks["op"], checks["inputs"], checks["dtypes"], self.load_decomposition())

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

    def require_kernel(self) -> KernelSpec:
        """The op's kernel block.

        Raises:
            SpecError: op.yaml has none.
        """
        if self.kernel is None:
            raise SpecError(f"{self.path}: {self.name} has no kernel block (source, entries, scalars, block, grid)",
                            hint="the aot lowering and launch rules need it; add kernel: to op.yaml")
        return self.kernel

    def _attribute(self, name: str) -> Attribute:
        return next(a for a in self.attributes if a.name == name)



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


def _parse(path: Path, key: str, text: Any, names: expr.Names, kind: str) -> expr.Expr:
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise _err(path, key, f"must be an expression (a string), got {type(text).__name__}")
    try:
        return expr.parse(str(text), names, kind)
    except ValueError as exc:
        raise _err(path, key, str(exc)) from None


def _pattern(path: Path, key: str, raw: Any) -> tuple[Dim, ...]:
    items = _as_list(path, key, raw)
    dims: list[Dim] = []
    for j, item in enumerate(items):
        where = f"{key}[{j}]"
        if item == ELLIPSIS or item is Ellipsis:
            if j != 0:
                raise _err(path, where, "'...' (the shared leading dims) may only come first")
            dims.append(Dim(ellipsis=True))
        elif isinstance(item, int) and not isinstance(item, bool):
            if item < 1:
                raise _err(path, where, f"{item} must be a positive dim")
            dims.append(Dim(factor=item))
        elif isinstance(item, str) and _IDENT.fullmatch(item.strip()):
            dims.append(Dim(symbol=item.strip()))
        elif isinstance(item, str) and (m := re.fullmatch(r"\s*(\d+)\s*\*\s*([A-Za-z_]\w*)\s*", item)):
            dims.append(Dim(symbol=m.group(2), factor=int(m.group(1))))
        else:
            raise _err(path, where, f"{item!r} must be '...', a positive integer, a name (D) or N*name (2*H)")
    return tuple(dims)


def _inputs(path: Path, raw: Any, tensor_args: list[str]) -> tuple[InputSpec, ...]:
    specs = []
    for i, item in enumerate(_as_list(path, "inputs", raw)):
        if isinstance(item, str):
            specs.append(InputSpec(item))
            continue
        if not isinstance(item, dict) or "name" not in item:
            raise _err(path, f"inputs[{i}]", "must be a name or a mapping {name, shape: [..., D]}")
        _check_keys(path, f"inputs[{i}].", item, ("name", "shape"))
        pattern = _pattern(path, f"inputs[{i}].shape", item["shape"]) if "shape" in item else None
        specs.append(InputSpec(str(item["name"]), pattern))
    names = [s.name for s in specs]
    if names != tensor_args:
        raise _err(path, "inputs", f"{names} must list the schema's Tensor arguments in order: {tensor_args}")
    if not specs:
        raise _err(path, "inputs", "an op needs at least one tensor input")
    return tuple(specs)


def _default_matches(schema_default: str | None, default: Any, kind: str) -> bool:
    if schema_default is None:
        return default is None
    if default is None:
        return False
    try:
        value = ast.literal_eval({"True": "True", "False": "False", "true": "True",
                                  "false": "False"}.get(schema_default, schema_default))
    except (ValueError, SyntaxError):
        return False
    if kind == "float":
        return isinstance(value, (int, float)) and float(value) == float(default)
    return bool(value == default)


def _attributes(path: Path, raw: Any, schema_attrs: list[tuple[str, str, str | None]]) -> tuple[Attribute, ...]:
    attributes = []
    for i, a in enumerate(_as_list(path, "attributes", raw)):
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
    for i, (attr, (_, _, schema_default)) in enumerate(zip(attributes, schema_attrs, strict=True)):
        if not _default_matches(schema_default, attr.default, attr.type):
            raise _err(path, f"attributes[{i}].default",
                       f"{attr.default!r} differs from the schema's default {schema_default or '(none)'}",
                       hint="op.yaml's default and the schema's (the binding registers the schema) must agree")
    return tuple(attributes)


def _outputs(path: Path, raw: Any, inputs: tuple[str, ...], attributes: tuple[Attribute, ...],
             n_ret: int) -> tuple[OutputRule, ...]:
    names = expr.Names.of(scalars=[a.name for a in attributes if a.type != "float"], dims=inputs)
    outputs = []
    for i, o in enumerate(_as_list(path, "outputs", raw)):
        key = f"outputs[{i}]"
        if not isinstance(o, dict) or "name" not in o:
            raise _err(path, key, "must be a mapping {name, like: <input>} or {name, shape: <rule>, dtype: ...}")
        _check_keys(path, f"{key}.", o, ("name", "like", "shape", "dtype"))
        if "like" in o:
            if "shape" in o or "dtype" in o:
                raise _err(path, key, "give like: <input>, or shape: and dtype:, not both")
            if o["like"] not in inputs:
                raise _err(path, f"{key}.like", f"{o['like']!r} is not an input; inputs: {', '.join(inputs)}")
            like = str(o["like"])
            outputs.append(OutputRule(str(o["name"]), expr.parse(like, names, expr.DIMS), like, like))
            continue
        if "shape" not in o or "dtype" not in o:
            raise _err(path, key, "needs like: <input>, or both shape: <rule> and dtype: <input or dtype>",
                       hint="e.g. {name: out, shape: \"x[:-1] + [2]\", dtype: x}")
        shape = _parse(path, f"{key}.shape", o["shape"], names, expr.DIMS)
        dtype = str(o["dtype"])
        if dtype not in inputs and dtype not in dtypes.DTYPES:
            raise _err(path, f"{key}.dtype", f"{dtype!r} is neither an input ({', '.join(inputs)}) nor a dtype "
                       f"({', '.join(dtypes.NAMES)}){dtypes.did_you_mean(dtype, [*inputs, *dtypes.NAMES])}")
        outputs.append(OutputRule(str(o["name"]), shape, dtype))
    if len(outputs) != n_ret:
        raise _err(path, "outputs", f"{len(outputs)} rules but the schema returns {n_ret} tensors")
    return tuple(outputs)


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
    m = _SCHEMA_RE.fullmatch(schema)
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
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
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

    tensor_args = [n for t, n, _ in schema_args if t.startswith("Tensor")]
    input_specs = _inputs(path, data["inputs"], tensor_args)
    inputs = tuple(s.name for s in input_specs)
    attributes = _attributes(path, data.get("attributes"),
                             [(t, n, d) for t, n, d in schema_args if not t.startswith("Tensor")])
    outputs = _outputs(path, data["outputs"], inputs, attributes, n_ret)

    op_dtypes = tuple(str(d) for d in _as_list(path, "dtypes", data["dtypes"]))
    for d in op_dtypes:
        if d not in SUPPORTED_DTYPES:
            raise _err(path, "dtypes", f"{d!r} is not one of {', '.join(SUPPORTED_DTYPES)}"
                       f"{dtypes.did_you_mean(d, SUPPORTED_DTYPES)}")
    if not op_dtypes:
        raise _err(path, "dtypes", "must name at least one dtype")

    plugin = None
    if data.get("plugin") is not None:
        p = data["plugin"]
        if not isinstance(p, dict) or "name" not in p or "version" not in p:
            raise _err(path, "plugin", "must be a mapping {name, version[, namespace]}")
        _check_keys(path, "plugin.", p, ("name", "version", "namespace"))
        for key in ("name", "namespace"):
            if key in p and not _IDENT.fullmatch(str(p[key])):
                raise _err(path, f"plugin.{key}", f"{p[key]!r} must be an identifier (letters, digits, _)")
        plugin = PluginInfo(str(p["name"]), str(p["version"]), str(p.get("namespace", namespace)))

    kernel = None
    if data.get("kernel") is not None:
        kernel = _load_kernel(path, data["kernel"], op_dtypes, inputs, attributes)

    cpu = data.get("cpu")
    if cpu is not None:
        if not isinstance(cpu, str) or not _IDENT.fullmatch(cpu):
            raise _err(path, "cpu", f"{cpu!r} must be the name of a C++ function (the CPU reference)")
        if kernel is None:
            raise _err(path, "cpu", "the CPU reference takes the kernel entries' arguments: op.yaml needs a kernel "
                       "block")

    decomposition = data.get("decomposition")
    if decomposition is not None:
        if not isinstance(decomposition, str) or not re.fullmatch(r"\w+:\w+", decomposition):
            raise _err(path, "decomposition", f"{decomposition!r} must be 'module:function'")
        module_file = folder / f"{decomposition.split(':')[0]}.py"
        if not module_file.is_file():
            raise _err(path, "decomposition", f"{module_file} does not exist")

    return OpDescription(name=name, schema=schema, inputs=inputs, attributes=attributes, outputs=outputs,
                         dtypes=op_dtypes, plugin=plugin, kernel=kernel, decomposition=decomposition, folder=folder,
                         path=path, input_specs=input_specs, cpu=cpu)


def launch_names(inputs: Iterable[str], attributes: Iterable[Attribute]) -> expr.Names:
    """The names a launch expression may use."""
    attributes = list(attributes)
    return expr.Names.of(scalars=[*LAUNCH_NAMES, *(a.name for a in attributes if a.type != "float")], dims=inputs,
                         floats=[a.name for a in attributes if a.type == "float"], comparisons=True)


def _load_kernel(path: Path, k: Any, op_dtypes: tuple[str, ...], inputs: tuple[str, ...],
                 attributes: tuple[Attribute, ...]) -> KernelSpec:
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
    if not isinstance(entries, dict) or set(entries) != set(op_dtypes):
        raise _err(path, "kernel.entries", f"must map every dtype ({', '.join(op_dtypes)}) to an entry name")
    for d, e in entries.items():
        if not isinstance(e, str) or not _IDENT.fullmatch(e):
            raise _err(path, f"kernel.entries.{d}", f"{e!r} is not a C identifier")
    block = k["block"]
    if not isinstance(block, int) or isinstance(block, bool) or not 32 <= block <= 1024 or block % 32:
        raise _err(path, "kernel.block", f"{block!r} must be a multiple of 32 in [32, 1024]")
    shared = k.get("shared_memory", 0)
    if not isinstance(shared, int) or isinstance(shared, bool) or shared < 0:
        raise _err(path, "kernel.shared_memory", f"{shared!r} must be a non-negative integer")
    names = launch_names(inputs, attributes)
    grid = _parse(path, "kernel.grid", k["grid"], names, expr.SCALAR)
    scalars = []
    for i, s in enumerate(_as_list(path, "kernel.scalars", k.get("scalars"))):
        key = f"kernel.scalars[{i}]"
        if not isinstance(s, dict) or "name" not in s or "value" not in s:
            raise _err(path, key, "must be a mapping {name, value}")
        _check_keys(path, f"{key}.", s, ("name", "value"))
        scalars.append(KernelScalar(str(s["name"]), _parse(path, f"{key}.value", s["value"], names, expr.SCALAR)))
    return KernelSpec(source=source, entries=dict(entries), scalars=tuple(scalars), block=block, grid=grid,
                      shared_memory=shared)


def discover_ops(dirs: Iterable[Path | str]) -> dict[str, OpDescription]:
    """Every op under ``dirs``: each dir is an op folder (holds op.yaml) or a plugin root (its subfolders are).

    Returns:
        op name (``ns::op``) → description, sorted by name.

    Raises:
        SpecError: A dir does not exist, an op.yaml is invalid, or two op.yaml files declare the same op (naming
            both folders).
    """
    found: dict[str, OpDescription] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise SpecError(f"{d}: plugin source folder does not exist")
        files = [d / OP_FILE] if (d / OP_FILE).is_file() else sorted(d.glob(f"*/{OP_FILE}"))
        for f in files:
            desc = load_op_description(f)
            if desc.name in found and found[desc.name].path != desc.path:
                raise SpecError(f"{f}: name: {desc.name} is already declared by {found[desc.name].path}",
                                hint=f"two op folders declare one op: {found[desc.name].folder} and {desc.folder}; "
                                "op names must be unique across plugin sources")
            found[desc.name] = desc
    return dict(sorted(found.items()))
