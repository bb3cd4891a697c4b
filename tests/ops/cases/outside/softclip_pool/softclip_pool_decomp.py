"""mylab::softclip_pool in aten ops (the decompose lowering and the ops check reference)."""

from __future__ import annotations

import torch


def softclip_pool(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """(mean, max) over the last dim of alpha * tanh(x / alpha) + beta, in fp32, rounded once."""
    y = alpha * torch.tanh(x.float() / alpha) + beta
    return torch.stack([y.mean(dim=-1), y.amax(dim=-1)], dim=-1).to(x.dtype)
