"""What every benchmark feeds: the batch sizes a model can take and seeded inputs at those sizes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trtrepo.errors import SpecError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

DEFAULT_SEED = 0


def dynamic_batch_inputs(model: ModelSpec) -> list[Any]:
    """The model's inputs whose dim 0 is dynamic (-1)."""
    return [t for t in model.inputs if t.shape and t.shape[0] == -1]


def batch_sizes_for(model: ModelSpec, requested: Sequence[int] | None) -> tuple[int, ...]:
    """The batch sizes to measure for ``model``: ``requested`` validated, or the opt batch of its profile.

    A batch size sets dim 0 of every input whose dim 0 is dynamic; it must lie within every such input's min..max
    and, for a batching model, not exceed ``max_batch_size``.

    Raises:
        SpecError: A batch size the model cannot take (message names the input and its range).
    """
    dynamic = dynamic_batch_inputs(model)
    default = dynamic[0].opt[0] if dynamic else model.inputs[0].shape[0]
    if not requested:
        return (default,)
    max_batch = model.triton.max_batch_size
    for b in requested:
        if not dynamic and b != default:
            raise SpecError(f"{model.yaml_path}.inputs: batch size {b} impossible, dim 0 is static ({default})",
                            hint="make dim 0 dynamic (-1 with min/opt/max) or drop --batch-sizes")
        for t in dynamic:
            if not t.min[0] <= b <= t.max[0]:
                raise SpecError(f"{model.yaml_path}.inputs.{t.name}: batch size {b} is outside dim 0 range "
                                f"{t.min[0]}..{t.max[0]}", hint="pick batch sizes within the profile's min..max")
        if max_batch and b > max_batch:
            raise SpecError(f"{model.yaml_path}.triton.max_batch_size: batch size {b} is above {max_batch}")
    return tuple(dict.fromkeys(requested))


def profile_batch_sizes(model: ModelSpec, requested: Sequence[int] | None) -> tuple[int, ...]:
    """``requested`` (validated as :func:`batch_sizes_for`), or the min, opt and max of dim 0's profile.

    Raises:
        SpecError: A requested batch size the model cannot take.
    """
    if requested:
        return tuple(sorted(batch_sizes_for(model, requested)))
    dynamic = dynamic_batch_inputs(model)
    if not dynamic:
        return (model.inputs[0].shape[0],)
    lo = max(t.min[0] for t in dynamic)
    hi = min(t.max[0] for t in dynamic)
    return tuple(sorted({lo, min(max(dynamic[0].opt[0], lo), hi), hi}))


def bench_inputs(model: ModelSpec, batch_size: int, seed: int = DEFAULT_SEED) -> tuple[Any, ...]:
    """Seeded inputs (CPU torch tensors) at the opt shape with dim 0 set to ``batch_size`` where it is dynamic."""
    from trtrepo.samples import sample_inputs

    tensors = tuple(
        replace(t, opt=(batch_size, *t.opt[1:])) if t.shape and t.shape[0] == -1 else t for t in model.inputs
    )
    return sample_inputs(tensors, "opt", "cpu", seed)


def numpy_inputs(model: ModelSpec, tensors: Sequence[Any]) -> dict[str, NDArray[Any]]:
    """Input name → numpy array as the client sends it (``trtrepo.check.inputs.to_numpy``: bf16 as ml_dtypes)."""
    from trtrepo.check.inputs import to_numpy

    return {spec_t.name: to_numpy(tensor) for spec_t, tensor in zip(model.inputs, tensors, strict=True)}


def wire_arrays(model: ModelSpec, arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Arrays as raw bytes go on the wire: bf16 as its uint16 bit pattern (ml_dtypes arrays already are)."""
    out = {}
    for t in model.inputs:
        arr = arrays[t.name]
        out[t.name] = bf16_bits(arr) if t.dtype == "bf16" and arr.dtype.itemsize == 4 else arr
    return out


def bf16_bits(arr: Any) -> Any:
    """float32 array → the uint16 bit pattern of its bfloat16 rounding."""
    import torch

    return torch.from_numpy(arr.astype("float32")).to(torch.bfloat16).view(torch.int16).numpy().view("uint16")
