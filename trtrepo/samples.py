"""Seeded sample tensors at a profile shape: what export traces with, warm-up files hold and benchmarks feed.

Floats are standard normal (drawn in float32, then cast), integers uniform in [0, 100), bools fair coins. The same
seed gives the same tensors in every process, so a warm-up file and a benchmark see the export's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes

if TYPE_CHECKING:
    from trtrepo.spec import TensorSpec

INT_HIGH = 100


def sample_inputs(tensors: Sequence[TensorSpec], which: str = "opt", device: str = "cpu", seed: int = 0,
                  batch: int | None = None) -> tuple[Any, ...]:
    """One seeded tensor per input at its ``min``/``opt``/``max`` shape.

    Args:
        tensors: The model's inputs.
        which: Profile point: ``min``, ``opt`` or ``max``.
        device: Where the tensors go.
        seed: Generator seed.
        batch: Replace dim 0 of every input by this size.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in tensors:
        shape = tuple(getattr(t, which))
        if batch is not None:
            shape = (batch, *shape[1:])
        dtype = dtypes.to_torch(t.dtype)
        if dtype.is_floating_point:
            value = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
        elif dtype == torch.bool:
            value = torch.randint(0, 2, shape, generator=gen).bool()
        else:
            value = torch.randint(0, INT_HIGH, shape, generator=gen, dtype=dtype)
        out.append(value.to(device))
    return tuple(out)
