"""Seeded input tensors for a shape case, the eager op's outputs, and output buffers framed by guard bytes."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtrepo import dtypes
from trtrepo.conformance.cases import ShapeCase
from trtrepo.ops.description import OpDescription

GUARD_BYTES = 256
GUARD = 0xA5
POISON = 0xFF  # NaN in fp32, fp16 and bf16: an output element nobody wrote never matches


def seed_of(case: ShapeCase, dtype: str) -> int:
    """A seed per op, case and dtype (stable across processes: no Python hash)."""
    return zlib.crc32(f"{case.op}|{case.origin}|{case.label}|{dtype}".encode())


def make_inputs(desc: OpDescription, case: ShapeCase, dtype: str, device: str) -> list[Any]:
    """One seeded standard-normal tensor per op input (misaligned: one element past an aligned allocation)."""
    import torch

    kind = dtypes.to_torch(dtype)
    gen = torch.Generator(device=device).manual_seed(seed_of(case, dtype))
    out = []
    for shape in case.shapes:
        n = 1
        for d in shape:
            n *= d
        values = torch.randn(n + int(case.misaligned), generator=gen, device=device, dtype=torch.float32).to(kind)
        out.append((values[1:] if case.misaligned else values).view(shape))
    return out


def eager(desc: OpDescription, inputs: Sequence[Any], attributes: Mapping[str, Any]) -> list[Any]:
    """The op's outputs from ``torch.ops.<ns>.<op>`` (attributes in schema order)."""
    result = desc.torch_op()(*inputs, *(attributes[a.name] for a in desc.attributes))
    return list(result) if isinstance(result, (tuple, list)) else [result]


@dataclass
class GuardedOutput:
    """An output tensor inside a byte buffer whose head and tail are guard bytes; the tensor starts poisoned."""

    buffer: Any
    tensor: Any
    offset: int
    nbytes: int

    def guards_intact(self) -> bool:
        """Whether nothing was written before or after the tensor."""
        import torch

        head = self.buffer[:self.offset]
        tail = self.buffer[self.offset + self.nbytes:]
        return bool(torch.all(head == GUARD)) and bool(torch.all(tail == GUARD))


def guarded_output(shape: Sequence[int], dtype: str, device: str, misaligned: bool) -> GuardedOutput:
    """A poisoned output tensor of ``shape`` inside guard bytes (misaligned: one element past an aligned start)."""
    import torch

    item = dtypes.get(dtype).itemsize
    n = 1
    for d in shape:
        n *= d
    offset = GUARD_BYTES + (item if misaligned else 0)
    buffer = torch.full((offset + n * item + GUARD_BYTES,), GUARD, dtype=torch.uint8, device=device)
    region = buffer[offset:offset + n * item]
    region.fill_(POISON)
    tensor = region.view(dtypes.to_torch(dtype)).view(tuple(shape))
    return GuardedOutput(buffer, tensor, offset, n * item)
