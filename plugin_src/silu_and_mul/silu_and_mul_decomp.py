"""trtrepo::silu_and_mul in aten ops: the ``decompose`` lowering and the pure-PyTorch reference in ops check."""

from __future__ import annotations

import torch


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """silu(x[..., :H]) * x[..., H:] computed in fp32 and rounded once to x's dtype, as the kernels do."""
    gate, up = x.float().chunk(2, dim=-1)
    return (torch.nn.functional.silu(gate) * up).to(x.dtype)
