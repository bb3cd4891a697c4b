"""The runner protocol, a base class with the context-manager plumbing, and tensor conversion helpers.

Inputs and outputs are ``{name: array}``: numpy arrays or torch tensors. A runner given numpy inputs returns numpy
outputs (copied to the host); given torch tensors, it returns torch tensors where they were computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from trtrepo import dtypes
from trtrepo.errors import TrtrepoError

LOGGER = logging.getLogger(__name__)

Tensors = Mapping[str, Any]


class RunnerError(TrtrepoError):
    """A runner cannot run these inputs (names, shapes outside the plan's profiles) or its engine failed."""


class Runner(Protocol):
    """What every runner offers."""

    name: str

    def activate(self) -> None:
        """Load what the runner needs (engine, context, client); idempotent."""
        ...

    def deactivate(self) -> None:
        """Release it; idempotent."""
        ...

    def infer(self, inputs: Tensors) -> dict[str, Any]:
        """One inference: input name → array in, output name → array out (synchronous)."""
        ...

    def __enter__(self) -> Runner: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@dataclass
class Prepared:
    """One bound inference, ready to be enqueued again and again.

    Attributes:
        call: Enqueues one inference on ``stream`` (no host synchronisation); the caller makes ``stream`` current.
        outputs: The outputs of the last call (valid once ``stream`` is synchronised); the same buffers each call
            where the runner preallocates them.
        stream: The ``torch.cuda.Stream`` the work goes to; None on the CPU.
        facts: What the preparation chose (profile index, CUDA graph), for reports.
    """

    call: Callable[[], None]
    outputs: Callable[[], dict[str, Any]]
    stream: Any = None
    facts: dict[str, Any] | None = None


class DeviceRunner(Runner, Protocol):
    """A runner whose work can be bound once and enqueued repeatedly (what the engine benchmark times)."""

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind ``inputs`` (converted to device tensors) and return the call that runs them."""
        ...


class BaseRunner:
    """Context-manager plumbing and the ``infer`` built on ``prepare``; subclasses implement the ``_activate``,
    ``_deactivate`` and ``prepare`` hooks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = False

    def activate(self) -> None:
        """See :class:`Runner`."""
        if not self.active:
            self._activate()
            self.active = True

    def deactivate(self) -> None:
        """See :class:`Runner`."""
        if self.active:
            self.active = False
            self._deactivate()

    def __enter__(self) -> BaseRunner:
        self.activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.deactivate()

    def _activate(self) -> None:
        """Subclass hook."""

    def _deactivate(self) -> None:
        """Subclass hook."""

    def require_active(self) -> None:
        """Raise RunnerError unless activated."""
        if not self.active:
            raise RunnerError(f"runner {self.name!r} is not active", hint="use `with runner:` or runner.activate()")

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind inputs; subclasses implement it."""
        raise NotImplementedError

    def infer(self, inputs: Tensors) -> dict[str, Any]:
        """One synchronous inference through :meth:`prepare` (outputs copied out of reused buffers)."""
        self.require_active()
        prepared = self.prepare(inputs)
        stream = prepared.stream
        if stream is not None:
            import torch

            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                prepared.call()
            stream.synchronize()
        else:
            prepared.call()
        outputs = prepared.outputs()
        if inputs and all(is_numpy(v) for v in inputs.values()):
            return {k: to_numpy(v) for k, v in outputs.items()}
        return {k: v.clone() if hasattr(v, "clone") else v for k, v in outputs.items()}


def run_runners(runners: Sequence[Runner], inputs: Tensors) -> dict[str, dict[str, Any]]:
    """Run every runner on the same ``inputs`` (each activated for its run): runner name → its outputs.

    Raises:
        RunnerError: Two runners share a name.
    """
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise RunnerError(f"runner names must be unique, got {names}")
    results: dict[str, dict[str, Any]] = {}
    for runner in runners:
        with runner:
            results[runner.name] = runner.infer(inputs)
    return results


def check_names(runner: str, given: Sequence[str], expected: Sequence[str]) -> None:
    """Raise RunnerError unless ``given`` input names are exactly ``expected``.

    Raises:
        RunnerError: Names are missing or unknown (the message lists both).
    """
    missing = [n for n in expected if n not in given]
    unknown = [n for n in given if n not in expected]
    if missing or unknown:
        parts = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else ""]
        raise RunnerError(f"{runner}: inputs {', '.join(p for p in parts if p)}; it takes {list(expected)}")


def new_stream(device: int | None = None) -> Any:
    """A new non-default ``torch.cuda.Stream`` (on ``device``, default the current one)."""
    import torch

    stream_type: Any = torch.cuda.Stream
    return stream_type(device=device) if device is not None else stream_type()


def is_numpy(value: Any) -> bool:
    """Whether ``value`` is a numpy array."""
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "shape")


def to_torch(value: Any, device: str) -> Any:
    """A contiguous torch tensor on ``device`` (numpy arrays converted; bf16 from ml_dtypes or its uint16 bits)."""
    import torch

    if is_numpy(value):
        import numpy as np

        arr = np.ascontiguousarray(value)
        if arr.dtype.name == "bfloat16":
            tensor = torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(arr)
        value = tensor
    if not isinstance(value, torch.Tensor):
        raise RunnerError(f"expected a numpy array or torch tensor, got {type(value).__name__}")
    return value.to(device).contiguous()


def to_numpy(value: Any) -> Any:
    """A host numpy array of a torch tensor (bf16 as ml_dtypes where installed, else its uint16 bits)."""
    if is_numpy(value):
        return value
    import torch

    tensor = value.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view("uint16").view(dtypes.to_numpy("bf16"))
    return tensor.numpy()


def flatten_outputs(value: Any) -> list[Any]:
    """A module's return value (tensor, tuple, list, nested) as a flat list of tensors in order."""
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flatten_outputs(v)]
    return [value]


def name_outputs(runner: str, names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """``dict(zip(names, values))`` that insists the counts agree.

    Raises:
        RunnerError: The counts differ.
    """
    if len(names) != len(values):
        raise RunnerError(f"{runner}: produced {len(values)} outputs, expected {len(names)} ({list(names)})")
    return dict(zip(names, values, strict=True))
