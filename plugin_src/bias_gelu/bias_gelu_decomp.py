"""trtrepo::bias_gelu in aten ops: the ``decompose`` lowering and the pure-PyTorch reference in tests."""

from __future__ import annotations

import torch


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(x + bias) computed in fp32 and rounded once to x's dtype, as the kernels do."""
    return torch.nn.functional.gelu(x.float() + bias.float(), approximate="tanh").to(x.dtype)
