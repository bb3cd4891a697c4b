"""Example model with both custom ops: Linear → trtrepo::bias_gelu → Linear → trtrepo::fused_add_rms_norm.

Input ``x``: [B, 64] fp32, B dynamic. Output: the normalized tensor [B, 64] (the input is the residual). Weights come
from a fixed torch.Generator seed, so every process builds the same model.
"""

from __future__ import annotations

import torch

SEED = 1234
HIDDEN = 64
INNER = 128
EPS = 1e-6


class GeluBlock(torch.nn.Module):
    """y = rms_norm(up/down projection with bias_gelu between, + x) * weight."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.up = torch.nn.Linear(HIDDEN, INNER, bias=False)
        self.down = torch.nn.Linear(INNER, HIDDEN, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.randn(INNER, HIDDEN, generator=generator) / HIDDEN**0.5)
            self.down.weight.copy_(torch.randn(HIDDEN, INNER, generator=generator) / INNER**0.5)
        self.gelu_bias = torch.nn.Parameter(0.1 * torch.randn(INNER, generator=generator))
        self.norm_weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(HIDDEN, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.trtrepo.bias_gelu(self.up(x), self.gelu_bias)
        out, _ = torch.ops.trtrepo.fused_add_rms_norm(self.down(h), x, self.norm_weight, EPS)
        return out


def build() -> torch.nn.Module:
    """The model in eval mode with deterministic weights; `trtrepo build` has loaded the ops."""
    return GeluBlock(torch.Generator().manual_seed(SEED)).eval()
