"""A transformer MLP block at a real size: x [B, 128, 1024] fp16 → Linear 1024→4096 → trtrepo::bias_gelu → Linear
4096→1024 → trtrepo::fused_add_rms_norm with x as the residual. Output ``y`` [B, 128, 1024].

``build()`` is the model trtrepo builds (the custom ops); ``build_native()`` is the same block with the same weights
written in native aten ops (``gelu(approximate="tanh")``, ``rms_norm``): the ceiling ``trtrepo bench engines``
compares against (``--native model:build_native``). Weights come from a fixed torch.Generator seed, so every process
builds the same model.
"""

from __future__ import annotations

import torch

SEED = 2024
HIDDEN = 1024
INNER = 4096
EPS = 1e-6


class MlpBlock(torch.nn.Module):
    """y = rms_norm(down(bias_gelu(up(x))) + x) * weight; ``native`` picks aten ops instead of the custom ones."""

    def __init__(self, generator: torch.Generator, native: bool = False) -> None:
        super().__init__()
        self.native = native
        self.up = torch.nn.Linear(HIDDEN, INNER, bias=False)
        self.down = torch.nn.Linear(INNER, HIDDEN, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(torch.randn(INNER, HIDDEN, generator=generator) / HIDDEN**0.5)
            self.down.weight.copy_(torch.randn(HIDDEN, INNER, generator=generator) / INNER**0.5)
        self.gelu_bias = torch.nn.Parameter(0.1 * torch.randn(INNER, generator=generator))
        self.norm_weight = torch.nn.Parameter(1.0 + 0.1 * torch.randn(HIDDEN, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.native:
            h = torch.nn.functional.gelu(self.up(x) + self.gelu_bias, approximate="tanh")
            residual = self.down(h) + x
            return torch.nn.functional.rms_norm(residual, (HIDDEN,), self.norm_weight, EPS)
        h = torch.ops.trtrepo.bias_gelu(self.up(x), self.gelu_bias)
        out, _ = torch.ops.trtrepo.fused_add_rms_norm(self.down(h), x, self.norm_weight, EPS)
        return out


def build() -> torch.nn.Module:
    """The block with the custom ops, eval mode, deterministic weights; `trtrepo build` has loaded the ops."""
    return MlpBlock(torch.Generator().manual_seed(SEED)).eval()


def build_native() -> torch.nn.Module:
    """The same block and weights in native aten ops (no custom ops needed)."""
    return MlpBlock(torch.Generator().manual_seed(SEED), native=True).eval()
