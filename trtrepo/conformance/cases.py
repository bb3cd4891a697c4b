"""The shapes the conformance harness runs every op at: a spread from the op's input patterns and the shapes each
op sees in the bundled example models at their profile's min, opt and max.

A case names, per input dim, whether TensorRT would see it as static (a constant in the plugin's shape expressions)
or dynamic. Spread cases make every dim but the last dynamic (the examples' profiles do the same: batch and sequence
dynamic, hidden fixed). Profile cases take it from the model exported with its dynamic dims: a dim of an op input
that is a SymInt there is dynamic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

INT32_LIMIT = 2**31

# (leading dims, last dim): odd and unit dims, the vector widths (4 fp32 / 8 fp16 elements per 16 bytes) and their
# neighbours, the rms_norm warp/block switches (128/256/512 vectors per row), many rows (grid-stride loops), one
# long row, a 3-D leading shape.
SPREAD: tuple[tuple[tuple[int, ...], int], ...] = (
    ((1,), 1), ((7,), 3), ((5,), 8), ((33,), 127), ((2, 3), 64), ((7, 5), 64), ((9,), 1024), ((9,), 1025),
    ((4,), 4096), ((3,), 8193), ((1,), 65_536), ((100_003,), 1), ((65_536,), 64), ((1_024,), 4096),
)
# A few of them again with every pointer one element past a 16-byte boundary (the kernels' scalar paths).
MISALIGNED: tuple[tuple[tuple[int, ...], int], ...] = (((7,), 3), ((5,), 8), ((9,), 1024), ((3,), 8193))
# For compute-sanitizer: every code path once, small.
SMALL: tuple[tuple[tuple[int, ...], int], ...] = (((3,), 1), ((5,), 8), ((3,), 127), ((4,), 1024), ((3,), 1025),
                                                  ((2,), 4096), ((2,), 8193))
# Float attributes at other values than their default: bit patterns that must reach the kernel unchanged (an exact
# binary fraction, a float32 subnormal, zero). Int and bool attributes at a few values.
FLOAT_VALUES: tuple[float, ...] = (1.0e-5, 0.25, 3.0e-39, 0.0)
INT_VALUES: tuple[int, ...] = (1, 3, 5)
BOOL_VALUES: tuple[bool, ...] = (False, True)
# The int32 edge: just below 2^31 elements and exactly 2^31 (run in fp16 only: 4 GiB per tensor).
INT32_DTYPES = ("fp16",)
EDGE_COLS = 1024


@dataclass(frozen=True)
class ShapeCase:
    """One set of input shapes for one op.

    Attributes:
        op: ``ns::op``.
        origin: ``spread``, ``small``, ``int32`` or ``<model.yaml>:<model>:<min|opt|max>``.
        shapes: One shape per op input.
        static: Per input, per dim: static (TensorRT gives it as a constant) or dynamic.
        attributes: Attribute values (the op.yaml default where not given).
        misaligned: Every pointer one element past an aligned address.
        model_dtype: The dtype the op runs in inside the model (profile cases), else None.
    """

    op: str
    origin: str
    shapes: tuple[tuple[int, ...], ...]
    static: tuple[tuple[bool, ...], ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    misaligned: bool = False
    model_dtype: str | None = None

    @property
    def label(self) -> str:
        """``7x5x64`` of the first input, with the attributes that differ from op.yaml and ``misaligned``."""
        text = "x".join(str(d) for d in self.shapes[0]) if self.shapes[0] else "scalar"
        attrs = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.attributes.items())
        return text + (f" {attrs}" if attrs else "") + (" misaligned" if self.misaligned else "")

    @property
    def elements(self) -> int:
        """Elements of the first input."""
        n = 1
        for d in self.shapes[0]:
            n *= d
        return n

    def signature(self) -> tuple[tuple[tuple[int | None, ...], ...], tuple[tuple[str, Any], ...]]:
        """What the build-time call of an AOT plugin depends on: the static dims' values and the attributes."""
        dims = tuple(tuple(d if s else None for d, s in zip(shape, static, strict=True))
                     for shape, static in zip(self.shapes, self.static, strict=True))
        return dims, tuple(sorted(self.attributes.items()))


def _pattern_case(desc: OpDescription, origin: str, leading: Sequence[int], last: int,
                  attributes: Mapping[str, Any] | None = None, misaligned: bool = False) -> ShapeCase:
    symbols = {s: last for s in desc.symbols()}
    shapes = tuple(tuple(s) for s in desc.input_shapes(leading, symbols))
    # The last dim static, the others dynamic: the examples' profiles (hidden fixed, batch and sequence dynamic).
    static = tuple(tuple(j == len(s) - 1 for j in range(len(s))) for s in shapes)
    return ShapeCase(desc.name, origin, shapes, static, dict(attributes or {}), misaligned)


def spread_cases(desc: OpDescription, *, small: bool = False) -> list[ShapeCase]:
    """The shape spread of one op (needs shape patterns on every input; none otherwise, with a log line).

    Args:
        desc: The op.
        small: The few shapes for compute-sanitizer instead of the full spread.
    """
    if not desc.has_patterns:
        LOGGER.warning("%s: no shape patterns on its inputs in op.yaml: no spread cases", desc.name)
        return []
    if small:
        return [_pattern_case(desc, "small", lead, last) for lead, last in SMALL]
    out = [_pattern_case(desc, "spread", lead, last) for lead, last in SPREAD]
    out += [_pattern_case(desc, "spread", lead, last, misaligned=True) for lead, last in MISALIGNED]
    values: dict[str, tuple[Any, ...]] = {"float": FLOAT_VALUES, "int": INT_VALUES, "bool": BOOL_VALUES}
    for attr in desc.attributes:
        for value in values[attr.type]:
            out.append(_pattern_case(desc, "spread", (33,), 127, {attr.name: value}))
    return out


def int32_cases(desc: OpDescription) -> list[ShapeCase]:
    """The first input at 2^31 - 2048 elements and at exactly 2^31: where a kernel scalar does not fit int32
    trtrepo must refuse the launch; where every scalar fits, the launch must compute the right answer."""
    if not desc.has_patterns:
        return []
    width = _pattern_case(desc, "int32", (1,), EDGE_COLS).shapes[0][-1]  # the first input's last dim (2*H: 2048)
    rows = INT32_LIMIT // width
    return [_pattern_case(desc, "int32", (rows - max(1, 2048 // width),), EDGE_COLS),
            _pattern_case(desc, "int32", (rows,), EDGE_COLS)]


# ------------------------------------------------------------------------------------------------ profile cases
def profile_cases(spec_paths: Iterable[Path], descriptions: Mapping[str, OpDescription]) -> list[ShapeCase]:
    """The op shapes of every model of these model.yaml files at its profile's min, opt and max.

    Each model is exported once with its dynamic dims (what ``trtrepo build`` hands Torch-TensorRT); each call of a
    described op in the graph gives the op's input shapes as expressions of the model's input dims, evaluated at the
    three profile points. The op library must be loaded. A model that calls an op not in ``descriptions`` is skipped
    (with a log line).
    """
    from trtrepo.export import export_model
    from trtrepo.spec import load_spec

    out: list[ShapeCase] = []
    namespaces = {d.namespace for d in descriptions.values()}
    for path in spec_paths:
        spec = load_spec(path)
        for model in spec.models:
            unknown = sorted(op for op in model.ops if op not in descriptions)
            if unknown:
                LOGGER.warning("%s: model %s uses %s, not built here: no profile cases", path, model.name,
                               ", ".join(unknown))
                continue
            ep = export_model(model, spec.root)
            out += _cases_of_program(ep, model, path, descriptions, namespaces)
    return out


def _cases_of_program(ep: Any, model: Any, path: Path, descriptions: Mapping[str, OpDescription],
                      namespaces: set[str]) -> list[ShapeCase]:
    from trtrepo.tensorrt.launch import op_calls_at_profile

    described = {k: v for k, v in descriptions.items() if v.namespace in namespaces}
    return [ShapeCase(call.op, f"{path}:{model.name}:{call.point}", call.shapes, call.static, call.attributes,
                      model_dtype=call.dtype) for call in op_calls_at_profile(ep, model, described)]


def with_attributes(case: ShapeCase, desc: OpDescription) -> ShapeCase:
    """The case with every attribute's value filled in (op.yaml defaults where absent)."""
    return replace(case, attributes=desc.attribute_values(case.attributes))
