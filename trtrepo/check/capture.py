"""Every custom-op call of an eager forward, with its tensors: the material of the per-op probes (``check --ops``).

The model runs eagerly, unchanged, on the check's seeded cases (:func:`trtrepo.check.inputs.profile_cases`) under a
``TorchDispatchMode`` that sees each op call after autograd and before the kernel; calls of the ops the spec's plugin
sources describe are recorded: the tensor arguments (numpy, bf16 bit-exact), the other arguments by their schema
names (the op's attributes) and the outputs. Calls are kept per op, deduplicated by input shapes, dtypes and
attributes, at most ``limit`` per op (the first ones seen); ``total`` counts every call. Ops are ordered by their
first call, which is the graph order of an eager forward (the order ``torch.export`` writes the nodes in).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from numpy.typing import NDArray

if TYPE_CHECKING:
    from trtrepo.check.inputs import InputCase
    from trtrepo.ops.description import OpDescription
    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

DEFAULT_CALLS_PER_OP = 4

CallKey = tuple[tuple[tuple[int, ...], ...], tuple[str, ...], tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class OpCall:
    """One recorded call of a custom op.

    Attributes:
        op: ``namespace::name``.
        case: The model input case it was seen in (``min``, ``random-0``...).
        input_names: The op's tensor arguments (schema names), in order.
        inputs: Their values.
        dtypes: Their trtrepo dtype names.
        attributes: The non-tensor arguments by schema name (``eps``).
        outputs: The eager op's outputs, in order.
    """

    op: str
    case: str
    input_names: tuple[str, ...]
    inputs: tuple[NDArray[Any], ...]
    dtypes: tuple[str, ...]
    attributes: Mapping[str, Any]
    outputs: tuple[NDArray[Any], ...]

    @property
    def shapes(self) -> list[list[int]]:
        """Input shapes, in order."""
        return [list(a.shape) for a in self.inputs]

    def key(self) -> CallKey:
        """What makes two calls the same probe request: shapes, dtypes and attributes."""
        return (tuple(tuple(a.shape) for a in self.inputs), self.dtypes,
                tuple(sorted((k, repr(v)) for k, v in self.attributes.items())))


@dataclass
class Capture:
    """The recorded calls of one model.

    Attributes:
        model: The model's name.
        order: Custom ops in graph order (first call).
        calls: Op → its distinct calls (at most the limit).
        total: Op → how many times it was called over all cases.
    """

    model: str
    order: list[str] = field(default_factory=list)
    calls: dict[str, list[OpCall]] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)


def capture_op_calls(net: Any, model: ModelSpec, ops: Mapping[str, OpDescription], cases: Sequence[InputCase],
                     device: str = "cpu", limit: int = DEFAULT_CALLS_PER_OP) -> Capture:
    """Run ``net`` on every case and record its calls of ``ops``.

    Args:
        net: The eager module (ops loaded).
        model: Its spec (input names and dtypes).
        ops: The custom ops to record, by ``namespace::name``.
        cases: Input cases.
        device: Where the inputs go.
        limit: Distinct calls kept per op.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from trtrepo.check.inputs import to_torch

    capture = Capture(model=model.name)
    seen: dict[str, set[CallKey]] = {}
    current = [""]

    def record(func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], out: Any) -> None:
        name = str(func._schema.name)
        if name not in ops:
            return
        capture.total[name] = capture.total.get(name, 0) + 1
        if name not in capture.order:
            capture.order.append(name)
        call = _op_call(name, func._schema, args, kwargs, out, current[0])
        keys = seen.setdefault(name, set())
        if call.key() in keys or len(keys) >= limit:
            return
        keys.add(call.key())
        capture.calls.setdefault(name, []).append(call)

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: Mapping[str, Any] | None = None) -> Any:
            out = func(*args, **(kwargs or {}))
            record(func, args, kwargs or {}, out)
            return out

    dtypes = {t.name: t.dtype for t in model.inputs}
    for case in cases:
        current[0] = case.name
        inputs = [to_torch(case.arrays[t.name], dtypes[t.name], device) for t in model.inputs]
        with torch.inference_mode(), _Recorder():
            net(*inputs)
    LOGGER.debug("captured %s", {op: len(c) for op, c in capture.calls.items()})
    return capture


def run_op(call: OpCall, device: str = "cpu", dtype: str | None = None) -> list[NDArray[Any]]:
    """Run the eager op again on a recorded call's inputs (float inputs cast to ``dtype`` when given)."""
    import torch

    from trtrepo import dtypes as dt
    from trtrepo.check.inputs import to_numpy, to_torch

    ns, name = call.op.split("::", 1)
    overload = getattr(getattr(torch.ops, ns), name).default
    tensors = {}
    for arg, array, kind in zip(call.input_names, call.inputs, call.dtypes, strict=True):
        value = to_torch(array, kind, device)
        if dtype is not None and value.is_floating_point():
            value = value.to(dt.to_torch(dtype))
        tensors[arg] = value
    args = [tensors[a.name] if a.name in tensors else call.attributes.get(a.name)
            for a in overload._schema.arguments]
    with torch.inference_mode():
        out = overload(*args)
    return [to_numpy(o) for o in _flat(out)]


def _op_call(name: str, schema: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], out: Any,
             case: str) -> OpCall:
    import torch

    from trtrepo import dtypes as dt
    from trtrepo.check.inputs import to_numpy

    names, values, kinds = [], [], []
    attributes: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        value = args[i] if i < len(args) else kwargs.get(arg.name, arg.default_value)
        if isinstance(value, torch.Tensor):
            names.append(arg.name)
            values.append(to_numpy(value))
            kinds.append(dt.from_torch(value.dtype))
        else:
            attributes[arg.name] = value
    outputs = tuple(to_numpy(o) for o in _flat(out))
    return OpCall(op=name, case=case, input_names=tuple(names), inputs=tuple(values), dtypes=tuple(kinds),
                  attributes=attributes, outputs=outputs)


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


