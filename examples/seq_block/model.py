"""Example model with two dynamic dims: x [B, S, 64] fp32 → (out, residual_out), both [B, S, 64].

Linear → trtrepo::bias_gelu → Linear → trtrepo::fused_add_rms_norm with x as the residual; both outputs of the
norm are model outputs (a multi-output custom op end to end). Weights come from a fixed torch.Generator seed.
"""

from __future__ import annotations

import torch

SEED = 4321
HIDDEN = 64
INNER = 256
EPS = 1e-5


class SeqBlock(torch.nn.Module):
    """A transformer-MLP-like block over [B, S, HIDDEN] with an RMS-normed residual stream."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.up = torch.nn.Linear(HIDDEN, INNER, bias=False)
        self.down = torch.nn.Linear(INNER, HIDDEN, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.randn(INNER, HIDDEN, generator=generator) / HIDDEN**0.5)
            self.down.weight.copy_(torch.randn(HIDDEN, INNER, generator=generator) / INNER**0.5)
        self.gelu_bias = torch.nn.Parameter(0.1 * torch.randn(INNER, generator=generator))
        self.norm_weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(HIDDEN, generator=generator))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.ops.trtrepo.bias_gelu(self.up(x), self.gelu_bias)
        out, residual_out = torch.ops.trtrepo.fused_add_rms_norm(self.down(h), x, self.norm_weight, EPS)
        return out, residual_out


def build() -> torch.nn.Module:
    """The model in eval mode with deterministic weights; `trtrepo build` has loaded the ops."""
    return SeqBlock(torch.Generator().manual_seed(SEED)).eval()
