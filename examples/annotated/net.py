"""The model examples/annotated/model.yaml describes: Linear → trtrepo::bias_gelu → Linear over [batch, seq, 64]."""

from __future__ import annotations

import torch

SEED = 7
HIDDEN = 64
INNER = 128


class AnnotatedBlock(torch.nn.Module):
    """A projection block whose activation is the custom op trtrepo::bias_gelu (plugin_src/bias_gelu)."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.up = torch.nn.Linear(HIDDEN, INNER, bias=False)
        self.down = torch.nn.Linear(INNER, HIDDEN)
        with torch.no_grad():
            self.up.weight.copy_(torch.randn(INNER, HIDDEN, generator=generator) / HIDDEN**0.5)
            self.down.weight.copy_(torch.randn(HIDDEN, INNER, generator=generator) / INNER**0.5)
            self.down.bias.zero_()
        self.gelu_bias = torch.nn.Parameter(0.1 * torch.randn(INNER, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.ops.trtrepo.bias_gelu(self.up(x), self.gelu_bias))


def build() -> torch.nn.Module:
    """The block in eval mode with fixed weights; `trtrepo build` has loaded the op library before calling this."""
    return AnnotatedBlock(torch.Generator().manual_seed(SEED)).eval()
