"""What the TensorRT lowerings add to an op description: pure logic over ``OpDescription``, no TensorRT needed.

``trtrepo.ops.description`` is the only reader of op.yaml; everything here takes its
:class:`~trtrepo.ops.description.OpDescription` and is unit-tested on CPU: plugin field mapping (attribute type →
TensorRT ``PluginFieldType`` + numpy dtype), the plugin creator an op needs and splitting an FX node's args into
tensors and attributes. dtype names: :mod:`trtrepo.dtypes`; output rules: ``OpDescription.output_shapes``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtrepo.contracts import Creator
from trtrepo.errors import BuildError, SpecError
from trtrepo.ops.description import Attribute, OpDescription, PluginInfo

LOGGER = logging.getLogger(__name__)

# op.yaml attribute type → (TensorRT PluginFieldType member, numpy dtype). bool travels as INT32 0/1: TensorRT has
# no boolean plugin field type, and the C++ plugins read every integral field as int32.
ATTRIBUTE_FIELD_TYPES: dict[str, tuple[str, str]] = {
    "float": ("FLOAT32", "float32"),
    "int": ("INT32", "int32"),
    "bool": ("INT32", "int32"),
}

@dataclass(frozen=True)
class PluginFieldSpec:
    """One TensorRT plugin field as plain data: ``trt.PluginField(name, np.array(values, numpy_dtype), field_type)``."""

    name: str
    field_type: str
    numpy_dtype: str
    values: tuple[float | int, ...]


# ------------------------------------------------------------------------------------------ plugin creator
def creators_from_ops(ops: Iterable[OpDescription]) -> list[Creator]:
    """The creators a plugin library built from these op descriptions registers (op.yaml ``plugin`` blocks)."""
    return sorted(Creator(d.plugin.name, d.plugin.version, d.plugin.namespace) for d in ops if d.plugin is not None)


def require_plugin(desc: OpDescription) -> PluginInfo:
    """The op's IPluginV3 creator (op.yaml ``plugin``), which the ``plugin`` lowering needs.

    Raises:
        BuildError: op.yaml has no ``plugin`` block.
    """
    if desc.plugin is None:
        raise BuildError(f"{desc.name}: plugin lowering, but {desc.path} has no plugin block",
                         hint="add plugin: {name, version} to op.yaml, or lower the op with aot or decompose")
    return desc.plugin


# ------------------------------------------------------------------------------------------ plugin fields
def attribute_values(desc: OpDescription, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every attribute's value: the given one, else the op.yaml default; BuildError when a required one is absent."""
    values = desc.attribute_values(given)
    for name, value in values.items():
        if value is None:
            raise BuildError(f"{desc.name}: attribute {name!r} has no value and no default in op.yaml")
    return values


def plugin_fields(desc: OpDescription, given: Mapping[str, Any]) -> list[PluginFieldSpec]:
    """The plugin fields for ``creator.create_plugin``, one per op attribute, in op.yaml order.

    Args:
        desc: The op.
        given: Attribute values from the graph (missing ones take the op.yaml default).

    Raises:
        SpecError: An attribute type has no plugin field mapping.
        BuildError: A value does not fit its declared type.
    """
    out = []
    for attr in desc.attributes:
        value = attribute_values(desc, given)[attr.name]
        if attr.type not in ATTRIBUTE_FIELD_TYPES:
            raise SpecError(
                f"{desc.name}: attribute {attr.name!r} has type {attr.type!r}; plugin fields support "
                f"{', '.join(ATTRIBUTE_FIELD_TYPES)}"
            )
        field_type, np_dtype = ATTRIBUTE_FIELD_TYPES[attr.type]
        out.append(PluginFieldSpec(attr.name, field_type, np_dtype, (_coerce(desc, attr, value),)))
    return out


def _coerce(desc: OpDescription, attr: Attribute, value: Any) -> float | int:
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
        raise BuildError(f"{desc.name}: attribute {attr.name!r} = {value!r} is not a {attr.type}") from None
    if not -(2**31) <= ivalue < 2**31:
        raise BuildError(f"{desc.name}: attribute {attr.name!r} = {ivalue} does not fit the int32 plugin field")
    return ivalue


def split_args(desc: OpDescription, args: Sequence[Any], kwargs: Mapping[str, Any]
               ) -> tuple[list[Any], dict[str, Any]]:
    """Split an FX node's ``args``/``kwargs`` into the tensor inputs (in order) and the attribute values.

    Torch-TensorRT hands converters the node's positional args first (tensors, then attributes in schema order) and
    keyword args as given; attributes left out take the op.yaml default.

    Raises:
        BuildError: A tensor input is missing or an argument is unknown.
    """
    n = len(desc.inputs)
    tensors = list(args[:n])
    for name in desc.inputs[len(tensors):]:
        if name not in kwargs:
            raise BuildError(f"{desc.name}: tensor input {name!r} is missing from the graph node")
        tensors.append(kwargs[name])
    extra = list(args[n:])
    if len(extra) > len(desc.attributes):
        raise BuildError(f"{desc.name}: {len(args)} positional args, but op.yaml declares "
                         f"{n} inputs and {len(desc.attributes)} attributes")
    given = {attr.name: value for attr, value in zip(desc.attributes, extra, strict=False)}
    known = set(desc.inputs) | {a.name for a in desc.attributes}
    for key, value in kwargs.items():
        if key not in known:
            raise BuildError(f"{desc.name}: unknown argument {key!r}", hint=f"op.yaml declares {sorted(known)}")
        if key not in desc.inputs:
            given[key] = value
    return tensors, attribute_values(desc, given)


# ------------------------------------------------------------------------------------------ dtypes and shapes
