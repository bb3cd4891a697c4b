"""Seeded input cases over a model's shape profile, as named numpy arrays.

Cases: ``min``, ``opt`` and ``max`` (every input at that profile shape), then ``parity.samples`` random cases with
each dynamic dim drawn uniformly in [min, max]. Dynamic dims that share an axis and a [min, max] range draw the
same size in one case: torch.export ties such dims (the batch dim of ``x`` and of ``residual``), and sizes the
program does not accept would test nothing. With ``max_batch_size > 0`` dim 0 never exceeds it (Triton rejects
larger requests). Ragged cases (``parity.ragged_requests``) are independent requests of different batch sizes,
sent at once so the dynamic batcher merges them.

Values: floats standard normal, integers in [0, 100), bools fair coins; bf16 values are drawn in float32 and
rounded to bf16 once, so the server and eager PyTorch see the same bits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from trtrepo import dtypes

if TYPE_CHECKING:
    import torch

    from trtrepo.spec import ModelSpec, TensorSpec

LOGGER = logging.getLogger(__name__)

INT_HIGH = 100


@dataclass(frozen=True)
class InputCase:
    """One request's inputs.

    Attributes:
        name: ``min``, ``opt``, ``max``, ``random-<i>`` or ``ragged-<i>``.
        arrays: Input name → array (bf16 as ``ml_dtypes.bfloat16``).
        group: Cases with the same non-empty group are sent concurrently (ragged batches).
    """

    name: str
    arrays: Mapping[str, NDArray[Any]]
    group: str = ""

    @property
    def shapes(self) -> dict[str, list[int]]:
        """Input name → shape."""
        return {k: list(v.shape) for k, v in self.arrays.items()}


def profile_cases(model: ModelSpec) -> list[InputCase]:
    """min/opt/max plus ``parity.samples`` random-size cases, seeded by ``parity.seed``."""
    rng = np.random.default_rng(model.parity.seed)
    cases = []
    for which in ("min", "opt", "max"):
        shapes = {t.name: _clamp_batch(getattr(t, which), model) for t in model.inputs}
        cases.append(InputCase(which, _arrays(model.inputs, shapes, rng)))
    for i in range(model.parity.samples):
        shapes = random_shapes(model, rng)
        cases.append(InputCase(f"random-{i}", _arrays(model.inputs, shapes, rng)))
    return _dedupe(cases)


def ragged_cases(model: ModelSpec) -> list[InputCase]:
    """``parity.ragged_requests`` requests of distinct batch sizes (other dims at opt) to be sent at once.

    Empty when the model does not batch (``max_batch_size`` 0) or ragged_requests is 0.
    """
    count = model.parity.ragged_requests
    limit = model.triton.max_batch_size
    if count == 0 or limit == 0:
        return []
    rng = np.random.default_rng(model.parity.seed + 7919)
    low = max(t.min[0] for t in model.inputs)
    # Keep each request small enough that several fit into one batch of max_batch_size.
    high = max(low, min(limit // 2 or 1, min(t.max[0] for t in model.inputs)))
    cases = []
    for i in range(count):
        batch = int(rng.integers(low, high + 1))
        shapes = {t.name: (batch, *t.opt[1:]) for t in model.inputs}
        cases.append(InputCase(f"ragged-{i}", _arrays(model.inputs, shapes, rng), group="ragged"))
    return cases


def random_shapes(model: ModelSpec, rng: np.random.Generator) -> dict[str, tuple[int, ...]]:
    """One random size per (axis, min, max) class of dynamic dims; static dims as declared."""
    drawn: dict[tuple[int, int, int], int] = {}
    shapes = {}
    for t in model.inputs:
        dims = []
        for axis, d in enumerate(t.shape):
            if d != -1:
                dims.append(d)
                continue
            lo, hi = t.min[axis], t.max[axis]
            if axis == 0 and model.triton.max_batch_size > 0:
                hi = min(hi, model.triton.max_batch_size)
            key = (axis, lo, hi)
            if key not in drawn:
                drawn[key] = int(rng.integers(lo, hi + 1))
            dims.append(drawn[key])
        shapes[t.name] = tuple(dims)
    return shapes


def to_torch(array: NDArray[Any], dtype: str, device: str = "cpu") -> torch.Tensor:
    """Numpy array of an input case → torch tensor of trtrepo dtype ``dtype`` (bf16 bit-exact)."""
    import torch

    if dtype == "bf16":
        bits = np.ascontiguousarray(array).view(np.uint16).astype(np.int16, copy=False)
        return torch.from_numpy(bits.copy()).view(torch.bfloat16).to(device)
    return torch.from_numpy(np.ascontiguousarray(array).copy()).to(device)


def to_numpy(tensor: Any) -> NDArray[Any]:
    """Eager output tensor → numpy (bf16 → ``ml_dtypes.bfloat16``, as tritonclient returns BF16)."""
    import torch

    value = tensor.detach().cpu().contiguous()
    if value.dtype == torch.bfloat16:
        bits = value.view(torch.int16).numpy().view(np.uint16)
        bf16 = _bfloat16()
        return np.asarray(bits.view(bf16) if bf16 is not None else value.float().numpy())
    return np.asarray(value.numpy())


def _arrays(tensors: tuple[TensorSpec, ...], shapes: Mapping[str, tuple[int, ...]],
            rng: np.random.Generator) -> dict[str, NDArray[Any]]:
    out = {}
    for t in tensors:
        shape = tuple(shapes[t.name])
        if t.dtype in ("fp32", "fp16", "bf16"):
            value = rng.standard_normal(shape, dtype=np.float32)
            if t.dtype == "fp16":
                value = value.astype(np.float16)
            elif t.dtype == "bf16":
                bf16 = _bfloat16()
                value = value.astype(bf16) if bf16 is not None else value
        elif t.dtype == "bool":
            value = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            value = rng.integers(0, INT_HIGH, shape).astype(dtypes.to_numpy(t.dtype))
        out[t.name] = value
    return out


def _clamp_batch(shape: tuple[int, ...], model: ModelSpec) -> tuple[int, ...]:
    if model.triton.max_batch_size > 0 and shape and shape[0] > model.triton.max_batch_size:
        return (model.triton.max_batch_size, *shape[1:])
    return tuple(shape)


def _dedupe(cases: list[InputCase]) -> list[InputCase]:
    """Drop cases whose shapes repeat an earlier case (a static model has one shape: min = opt = max)."""
    seen: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()
    out = []
    for case in cases:
        key = tuple(sorted((k, tuple(v.shape)) for k, v in case.arrays.items()))
        if key in seen and not case.name.startswith("random"):
            continue
        seen.add(key)
        out.append(case)
    return out


def _bfloat16() -> Any:
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes.bfloat16
