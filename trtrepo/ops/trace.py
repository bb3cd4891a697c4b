"""Watch the custom-op calls of an eager run: each output checked against the op's op.yaml rules, and (when asked)
the calls recorded — inputs, attributes, outputs — for per-op parity.

A user's kernel that returns another shape or dtype than its op.yaml promises makes the *next* layer fail with an
unrelated message (or worse, passes and serves garbage). Run eager code inside :class:`OpWatch` and that kernel is
named instead: ``trtrepo::x returned out [3, 4] but its rule (op.yaml outputs[0].shape: x[:-1] + [2]) gives [3, 2]``,
a :class:`KernelContractError` (a user error, exit 1). It is a torch dispatch mode, so it needs no change to the
user's model and sees every call, however the model reaches the op.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtrepo import dtypes
from trtrepo.errors import BuildError
from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)


class KernelContractError(BuildError):
    """A custom op's kernel returned outputs that disagree with its op.yaml rules (the op's author must fix one)."""


@dataclass
class OpCall:
    """One recorded call of a custom op (tensors detached and moved to the CPU)."""

    op: str
    inputs: list[Any]
    attributes: dict[str, Any]
    outputs: list[Any]

    @property
    def key(self) -> tuple[str, tuple[tuple[int, ...], ...], tuple[str, ...]]:
        """(op, input shapes, input dtypes): calls with the same key test the same thing."""
        return (self.op, tuple(tuple(t.shape) for t in self.inputs),
                tuple(str(t.dtype) for t in self.inputs))


def bind(desc: OpDescription, schema_names: Sequence[str], args: Sequence[Any],
         kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The tensor inputs (in op.yaml order) and the attribute values of one call."""
    bound = dict(zip(schema_names, args, strict=False))
    bound.update(kwargs)
    return [bound[n] for n in desc.inputs], desc.attribute_values({a.name: bound.get(a.name) for a in desc.attributes})


def check_outputs(desc: OpDescription, inputs: Sequence[Any], attributes: Mapping[str, Any], outputs: Any) -> None:
    """Raise KernelContractError unless ``outputs`` (a tensor or a tuple) have the shapes and dtypes of the rules."""
    outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    shapes = f"for inputs {', '.join(f'{n} {list(t.shape)}' for n, t in zip(desc.inputs, inputs, strict=True))}"
    if len(outs) != len(desc.outputs):
        raise KernelContractError(f"{desc.name} returned {len(outs)} tensors but {desc.path} declares "
                                  f"{len(desc.outputs)} outputs {shapes}")
    want_shapes = desc.output_shapes([list(t.shape) for t in inputs], attributes)
    want_dtypes = desc.output_dtypes([dtypes.from_torch(t.dtype) for t in inputs])
    for i, (rule, out, shape, kind) in enumerate(zip(desc.outputs, outs, want_shapes, want_dtypes, strict=True)):
        got = list(out.shape)
        if got != list(shape):
            raise KernelContractError(
                f"{desc.name} returned {rule.name} of shape {got} but its rule (op.yaml outputs[{i}].shape: "
                f"{rule.shape.text}) gives {list(shape)} {shapes}",
                hint=f"fix the kernel or the rule in {desc.path}; `trtrepo ops check` compares them")
        if dtypes.from_torch(out.dtype) != kind:
            raise KernelContractError(
                f"{desc.name} returned {rule.name} as {dtypes.from_torch(out.dtype)} but op.yaml outputs[{i}].dtype "
                f"({rule.dtype}) gives {kind} {shapes}", hint=f"fix the kernel or the rule in {desc.path}")


def _detached(value: Any) -> Any:
    import torch

    return value.detach().to("cpu", copy=True) if isinstance(value, torch.Tensor) else value


def op_watch(descriptions: Mapping[str, OpDescription], *, record: int = 0) -> Any:
    """A context manager (torch dispatch mode) checking — and with ``record`` > 0 recording — custom-op calls.

    Args:
        descriptions: op name → description: the ops to watch.
        record: Keep at most this many calls per distinct (op, input shapes, dtypes); 0 records nothing.

    Returns:
        The mode; after the ``with`` block its ``calls`` holds the recorded :class:`OpCall` in call order.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpWatch(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's class is untyped
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.calls: list[OpCall] = []
            self.counts: dict[str, int] = {}
            self._seen: dict[tuple[Any, ...], int] = {}

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = getattr(getattr(func, "_schema", None), "name", None)
            desc = descriptions.get(name) if name else None
            if desc is None:
                return out
            self.counts[desc.name] = self.counts.get(desc.name, 0) + 1
            inputs, attributes = bind(desc, [a.name for a in func._schema.arguments], args, kwargs)
            check_outputs(desc, inputs, attributes, out)
            if record:
                outs = list(out) if isinstance(out, (tuple, list)) else [out]
                call = OpCall(desc.name, [_detached(t) for t in inputs], dict(attributes),
                              [_detached(o) for o in outs])
                if self._seen.get(call.key, 0) < record:
                    self._seen[call.key] = self._seen.get(call.key, 0) + 1
                    self.calls.append(call)
            return out

    return OpWatch()
