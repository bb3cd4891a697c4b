"""SwiGLU MLP block: gate/up projection (64 -> 2 x 128) → trtrepo::silu_and_mul → down projection (128 -> 64) →
trtrepo::fused_add_rms_norm with x as the residual. Input x [B, 64] fp32; output [B, 64]. Fixed-seed weights."""

from __future__ import annotations

import torch

SEED = 2024
HIDDEN = 64
INNER = 128
EPS = 1e-6


class SwigluBlock(torch.nn.Module):
    """y = rms_norm(down(silu(gate(x)) * up(x)) + x) * weight; gate and up are one projection, split by the op."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.gate_up = torch.nn.Linear(HIDDEN, 2 * INNER, bias=False)
        self.down = torch.nn.Linear(INNER, HIDDEN, bias=False)
        with torch.no_grad():
            self.gate_up.weight.copy_(torch.randn(2 * INNER, HIDDEN, generator=generator) / HIDDEN**0.5)
            self.down.weight.copy_(torch.randn(HIDDEN, INNER, generator=generator) / INNER**0.5)
        self.norm_weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(HIDDEN, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.trtrepo.silu_and_mul(self.gate_up(x))
        out, _ = torch.ops.trtrepo.fused_add_rms_norm(self.down(h), x, self.norm_weight, EPS)
        return out


def build() -> torch.nn.Module:
    """The block in eval mode with deterministic weights; `trtrepo build` has loaded the ops."""
    return SwigluBlock(torch.Generator().manual_seed(SEED)).eval()
