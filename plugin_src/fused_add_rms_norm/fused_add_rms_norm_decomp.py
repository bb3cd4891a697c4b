"""trtrepo::fused_add_rms_norm in aten ops: the ``decompose`` lowering and the pure-PyTorch reference in tests."""

from __future__ import annotations

import torch


def fused_add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                       eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, residual_out): the sum is rounded to x's dtype, the norm is taken of that rounded sum in fp32."""
    residual_out = (x.float() + residual.float()).to(x.dtype)
    r = residual_out.float()
    out = r * torch.rsqrt(r.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.float()
    return out.to(x.dtype), residual_out
