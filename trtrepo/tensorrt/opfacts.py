"""What the TensorRT lowerings need from an op description, as plain data, and the pure logic built on it.

``trtrepo.ops.description.OpDescription`` (op.yaml) is read once into :class:`OpFacts`; everything below works on
those facts with no TensorRT, so it is unit-tested on CPU: plugin field mapping (attribute type → TensorRT
``PluginFieldType`` + numpy dtype), splitting an FX node's args into tensors and attributes, dtype names, and the
``like:`` output rules.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trtrepo.errors import BuildError, SpecError

LOGGER = logging.getLogger(__name__)

# op.yaml attribute type → (TensorRT PluginFieldType member, numpy dtype). bool travels as INT32 0/1: TensorRT has
# no boolean plugin field type, and the C++ plugins read every integral field as int32.
ATTRIBUTE_FIELD_TYPES: dict[str, tuple[str, str]] = {
    "float": ("FLOAT32", "float32"),
    "int": ("INT32", "int32"),
    "bool": ("INT32", "int32"),
}

# trtrepo dtype name ↔ TensorRT DataType member name.
TRT_DATATYPES: dict[str, str] = {
    "fp32": "FLOAT",
    "fp16": "HALF",
    "bf16": "BF16",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
}

# trtrepo dtype name → the TrtrepoDType enum value of plugin_src/common/trtrepo_dtype.h.
TRTREPO_DTYPE_ENUM: dict[str, int] = {"fp32": 0, "fp16": 1, "bf16": 2}


@dataclass(frozen=True)
class AttributeFacts:
    """A non-tensor op argument: name, type (float|int|bool) and default (None = required)."""

    name: str
    type: str
    default: Any = None


@dataclass(frozen=True)
class OutputFacts:
    """An op output; ``like`` names the input whose shape and dtype it has."""

    name: str
    like: str


@dataclass(frozen=True)
class OpFacts:
    """One custom op as the TensorRT lowerings see it.

    Attributes:
        op: ``namespace::name`` (the namespace is also the TensorRT plugin namespace).
        inputs: Tensor argument names, in schema order.
        attributes: Non-tensor arguments, in schema order after the tensors.
        outputs: Outputs in order.
        dtypes: Supported trtrepo dtype names.
        plugin_name: IPluginV3 creator name (op.yaml ``plugin.name``).
        plugin_version: IPluginV3 creator version (op.yaml ``plugin.version``).
        kernel_entries: trtrepo dtype → PTX entry name (AOT).
        launch: The AOT launch rule (``block``, ``grid``, ``shared_memory``, ``scalars``), see trtrepo.tensorrt.launch.
        decomposition: ``module:callable`` in the op folder, or None.
        folder: The op folder (where the decomposition module lives), or None.
    """

    op: str
    inputs: tuple[str, ...]
    attributes: tuple[AttributeFacts, ...] = ()
    outputs: tuple[OutputFacts, ...] = ()
    dtypes: tuple[str, ...] = ("fp32", "fp16", "bf16")
    plugin_name: str = ""
    plugin_version: str = "1"
    kernel_entries: Mapping[str, str] = field(default_factory=dict)
    launch: Mapping[str, Any] = field(default_factory=dict)
    decomposition: str | None = None
    folder: str | None = None

    @property
    def namespace(self) -> str:
        """The op (and plugin) namespace."""
        return self.op.split("::", 1)[0]

    @property
    def short_name(self) -> str:
        """The op name without namespace."""
        return self.op.split("::", 1)[1]


@dataclass(frozen=True)
class PluginFieldSpec:
    """One TensorRT plugin field as plain data: ``trt.PluginField(name, np.array(values, numpy_dtype), field_type)``."""

    name: str
    field_type: str
    numpy_dtype: str
    values: tuple[float | int, ...]


# ------------------------------------------------------------------------------------------ reading descriptions
def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def op_facts(desc: Any) -> OpFacts:
    """Read an ``OpDescription`` (object or the op.yaml mapping) into :class:`OpFacts`.

    Args:
        desc: A ``trtrepo.ops.description.OpDescription`` or the parsed op.yaml mapping.

    Raises:
        SpecError: The description lacks a field the TensorRT lowerings need.
    """
    if isinstance(desc, OpFacts):
        return desc
    op = str(_get(desc, "name", "") or _get(desc, "op", ""))
    if "::" not in op:
        raise SpecError(f"op description {op!r}: name must be 'namespace::op'", hint="see docs/DESIGN.md (op.yaml)")
    inputs = tuple(str(_get(x, "name", x)) for x in (_get(desc, "inputs") or ()))
    attributes = tuple(
        AttributeFacts(name=str(_get(a, "name")), type=str(_get(a, "type", "float")), default=_get(a, "default"))
        for a in (_get(desc, "attributes") or ())
    )
    outputs = tuple(
        OutputFacts(name=str(_get(o, "name")), like=str(_get(o, "like") or (inputs[0] if inputs else "")))
        for o in (_get(desc, "outputs") or ())
    )
    plugin = _get(desc, "plugin") or {}
    kernel = _get(desc, "kernel") or {}
    launch: dict[str, Any] = {}
    for key in ("block", "grid", "shared_memory"):
        if _get(kernel, key) is not None:
            launch[key] = _get(kernel, key)
    if _get(kernel, "scalars") is not None:
        launch["scalars"] = [(str(_get(x, "name")), str(_get(x, "value"))) for x in _get(kernel, "scalars")]
    folder = _get(desc, "folder")
    decomposition = _get(desc, "decomposition")
    return OpFacts(
        op=op,
        inputs=inputs,
        attributes=attributes,
        outputs=outputs,
        dtypes=tuple(str(d) for d in (_get(desc, "dtypes") or ("fp32", "fp16", "bf16"))),
        plugin_name=str(_get(plugin, "name", "") or ""),
        plugin_version=str(_get(plugin, "version", "1") or "1"),
        kernel_entries=kernel_entries(op, _get(kernel, "entries") or _get(kernel, "entry")),
        launch=launch,
        decomposition=str(decomposition) if decomposition and not callable(decomposition) else None,
        folder=str(folder) if folder is not None else None,
    )


def kernel_entries(op: str, entry: Any) -> dict[str, str]:
    """trtrepo dtype → PTX entry name from op.yaml ``kernel.entry``.

    ``entry`` is a mapping (dtype → name), or one name: a name ending in ``_f32``/``_f16``/``_bf16`` stands for the
    family (``trtrepo_bias_gelu_f32`` → ``..._f16``, ``..._bf16``, the suffixes the kernels use).
    """
    if entry is None:
        return {}
    if isinstance(entry, Mapping):
        return {str(k): str(v) for k, v in entry.items()}
    name = str(entry)
    for suffix in ("_f32", "_f16", "_bf16"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return {"fp32": f"{stem}_f32", "fp16": f"{stem}_f16", "bf16": f"{stem}_bf16"}
    LOGGER.debug("%s: kernel.entry %r has no dtype suffix; used for every dtype", op, name)
    return {"fp32": name, "fp16": name, "bf16": name}


# ------------------------------------------------------------------------------------------ plugin fields
def attribute_values(facts: OpFacts, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every attribute's value: the given one, else the op.yaml default; BuildError when a required one is absent."""
    values: dict[str, Any] = {}
    for attr in facts.attributes:
        if attr.name in given and given[attr.name] is not None:
            values[attr.name] = given[attr.name]
        elif attr.default is not None:
            values[attr.name] = attr.default
        else:
            raise BuildError(f"{facts.op}: attribute {attr.name!r} has no value and no default in op.yaml")
    return values


def plugin_fields(facts: OpFacts, given: Mapping[str, Any]) -> list[PluginFieldSpec]:
    """The plugin fields for ``creator.create_plugin``, one per op attribute, in op.yaml order.

    Args:
        facts: The op.
        given: Attribute values from the graph (missing ones take the op.yaml default).

    Raises:
        SpecError: An attribute type has no plugin field mapping.
        BuildError: A value does not fit its declared type.
    """
    out = []
    for attr in facts.attributes:
        value = attribute_values(facts, given)[attr.name]
        if attr.type not in ATTRIBUTE_FIELD_TYPES:
            raise SpecError(
                f"{facts.op}: attribute {attr.name!r} has type {attr.type!r}; plugin fields support "
                f"{', '.join(ATTRIBUTE_FIELD_TYPES)}"
            )
        field_type, np_dtype = ATTRIBUTE_FIELD_TYPES[attr.type]
        out.append(PluginFieldSpec(attr.name, field_type, np_dtype, (_coerce(facts, attr, value),)))
    return out


def _coerce(facts: OpFacts, attr: AttributeFacts, value: Any) -> float | int:
    if hasattr(value, "item"):  # numpy / torch scalars from the graph
        value = value.item()
    try:
        if attr.type == "float":
            return float(value)
        if attr.type == "bool":
            return int(bool(value))
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        ivalue = int(value)
    except (TypeError, ValueError):
        raise BuildError(f"{facts.op}: attribute {attr.name!r} = {value!r} is not a {attr.type}") from None
    if not -(2**31) <= ivalue < 2**31:
        raise BuildError(f"{facts.op}: attribute {attr.name!r} = {ivalue} does not fit the int32 plugin field")
    return ivalue


def split_args(facts: OpFacts, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Split an FX node's ``args``/``kwargs`` into the tensor inputs (in order) and the attribute values.

    Torch-TensorRT hands converters the node's positional args first (tensors, then attributes in schema order) and
    keyword args as given; attributes left out take the op.yaml default.

    Raises:
        BuildError: A tensor input is missing or an argument is unknown.
    """
    n = len(facts.inputs)
    tensors = list(args[:n])
    for name in facts.inputs[len(tensors):]:
        if name not in kwargs:
            raise BuildError(f"{facts.op}: tensor input {name!r} is missing from the graph node")
        tensors.append(kwargs[name])
    extra = list(args[n:])
    if len(extra) > len(facts.attributes):
        raise BuildError(f"{facts.op}: {len(args)} positional args, but op.yaml declares "
                         f"{n} inputs and {len(facts.attributes)} attributes")
    given = {attr.name: value for attr, value in zip(facts.attributes, extra, strict=False)}
    known = set(facts.inputs) | {a.name for a in facts.attributes}
    for key, value in kwargs.items():
        if key not in known:
            raise BuildError(f"{facts.op}: unknown argument {key!r}", hint=f"op.yaml declares {sorted(known)}")
        if key not in facts.inputs:
            given[key] = value
    return tensors, attribute_values(facts, given)


# ------------------------------------------------------------------------------------------ dtypes and shapes
def trt_datatype_name(dtype: str) -> str:
    """trtrepo dtype name → TensorRT ``DataType`` member name."""
    try:
        return TRT_DATATYPES[dtype]
    except KeyError:
        raise BuildError(f"dtype {dtype!r} has no TensorRT mapping",
                         hint=f"use one of {', '.join(TRT_DATATYPES)}") from None


def dtype_from_trt(member: str) -> str:
    """TensorRT ``DataType`` member name (``HALF`` or ``DataType.HALF``) → trtrepo dtype name."""
    short = member.rsplit(".", 1)[-1]
    for name, trt_name in TRT_DATATYPES.items():
        if trt_name == short:
            return name
    raise BuildError(f"engine tensor dtype {member} has no Triton mapping in trtrepo",
                     hint=f"model inputs and outputs must be one of {', '.join(TRT_DATATYPES)}")


def output_rules(facts: OpFacts) -> list[int]:
    """For each output, the index of the input it is ``like:`` (same shape and dtype)."""
    indices = []
    for out in facts.outputs:
        if out.like not in facts.inputs:
            raise SpecError(f"{facts.op}: outputs.{out.name}.like names {out.like!r}, not one of its inputs "
                            f"{list(facts.inputs)}")
        indices.append(facts.inputs.index(out.like))
    return indices


def output_shapes(facts: OpFacts, input_shapes: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Concrete output shapes from concrete input shapes, by the ``like:`` rules (what getOutputShapes computes)."""
    if len(input_shapes) != len(facts.inputs):
        raise BuildError(f"{facts.op}: {len(input_shapes)} input shapes for {len(facts.inputs)} inputs")
    return [tuple(input_shapes[i]) for i in output_rules(facts)]


def float_bits(value: float) -> int:
    """The IEEE-754 float32 bit pattern of ``value`` as a signed int32 (how AOT kernels receive float attributes)."""
    return int(struct.unpack("<i", struct.pack("<f", float(value)))[0])
