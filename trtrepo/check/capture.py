"""Every custom-op call of an eager forward, with its tensors: the material of the per-op probes (``check --ops``).

The model runs eagerly, unchanged, on the check's seeded cases (:func:`trtrepo.check.inputs.profile_cases`) under
the torch dispatch mode of :func:`trtrepo.ops.trace.op_watch`, which sees each op call however the model reaches it;
calls of the ops the spec's plugin sources describe are recorded: the tensor arguments (numpy, bf16 bit-exact), the
other arguments by their schema names (the op's attributes) and the outputs. Calls are kept per op, deduplicated by
input shapes and dtypes, at most ``limit`` per op (the first ones seen); ``total`` counts every call. Ops are ordered
by their first call, which is the graph order of an eager forward (the order ``torch.export`` writes the nodes in).
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
    """Run ``net`` on every case and record its calls of ``ops`` (through :func:`trtrepo.ops.trace.op_watch`, which
    also holds each output to its op.yaml rule).

    Args:
        net: The eager module (ops loaded).
        model: Its spec (input names and dtypes).
        ops: The custom ops to record, by ``namespace::name``.
        cases: Input cases.
        device: Where the inputs go.
        limit: Distinct calls kept per op.

    Raises:
        KernelContractError: An op returned outputs its op.yaml rules do not give.
    """
    import torch

    from trtrepo.check.inputs import to_torch
    from trtrepo.ops.trace import op_watch

    capture = Capture(model=model.name)
    seen: dict[str, set[CallKey]] = {}
    dtypes = {t.name: t.dtype for t in model.inputs}
    for case in cases:
        inputs = [to_torch(case.arrays[t.name], dtypes[t.name], device) for t in model.inputs]
        watch = op_watch(ops, record=1)
        with torch.inference_mode(), watch:
            net(*inputs)
        for op, count in watch.counts.items():
            capture.total[op] = capture.total.get(op, 0) + count
        for watched in watch.calls:
            if watched.op not in capture.order:
                capture.order.append(watched.op)
            call = _op_call(watched, ops[watched.op], case.name)
            keys = seen.setdefault(call.op, set())
            if call.key() in keys or len(keys) >= limit:
                continue
            keys.add(call.key())
            capture.calls.setdefault(call.op, []).append(call)
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


def _op_call(watched: Any, desc: OpDescription, case: str) -> OpCall:
    from trtrepo import dtypes as dt
    from trtrepo.check.inputs import to_numpy

    return OpCall(op=watched.op, case=case, input_names=tuple(desc.inputs),
                  inputs=tuple(to_numpy(t) for t in watched.inputs),
                  dtypes=tuple(dt.from_torch(t.dtype) for t in watched.inputs), attributes=dict(watched.attributes),
                  outputs=tuple(to_numpy(o) for o in watched.outputs))


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


