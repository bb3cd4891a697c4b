"""Default parity tolerances by model precision, and how the spec overrides them.

Why these numbers (README "Parity tolerances" has the long form): an element passes iff
``|served - eager| <= atol + rtol * |eager|``.

- fp32 — atol 1e-4, rtol 1e-4. Served and eager run the same math in a different order (batched GEMMs pick other
  kernels, TensorRT fuses layers): that moves fp32 results by ~1e-6 relative (unit roundoff 6e-8 times a few
  hundred accumulations). 1e-4 leaves ~100x margin yet catches any real bug (a wrong bias, a wrong op, a dtype
  slip). TF32 matmuls (10-bit mantissa, ~5e-4 relative) do NOT fit: keep TF32 off for fp32 parity or set
  ``parity.atol/rtol`` to ~2e-3.
- fp16 — atol 1e-2, rtol 1e-2. Unit roundoff 4.9e-4; a GELU block rounds each intermediate once more, and an
  fp16 engine may accumulate in fp16: ~10-20 ulp of drift on O(1) values. Polygraphy's 1e-5 default fails healthy
  fp16 engines (NVIDIA/TensorRT#2709); 1e-2 does not, and still flags a wrong op (errors of O(0.1-1)).
- bf16 — atol 5e-2, rtol 5e-2. Unit roundoff 3.9e-3 (8x fp16's): the same ~10-ulp budget.
Integer and bool outputs use these numbers too; any non-zero integer difference exceeds atol < 1 unless the value
is large (use ``outputs[i].atol: 0`` for exactness).

Precedence for one output: ``outputs[i].atol/rtol`` > ``parity.atol/rtol`` > the precision default; the criterion
(:mod:`trtrepo.check.stats`) likewise: ``outputs[i].metric`` > ``parity.metric`` > elementwise atol/rtol.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trtrepo.spec import Metric, ModelSpec

LOGGER = logging.getLogger(__name__)

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "fp32": (1e-4, 1e-4),
    "fp16": (1e-2, 1e-2),
    "bf16": (5e-2, 5e-2),
}


def default_tolerance(precision: str) -> tuple[float, float]:
    """``(atol, rtol)`` for a model precision (``fp32``/``fp16``/``bf16``)."""
    return DEFAULT_TOLERANCES[precision]


def output_tolerance(model: ModelSpec, output: str) -> tuple[float, float]:
    """``(atol, rtol)`` for one output: output override, then model parity setting, then precision default.

    atol and rtol are resolved separately (an output may override only rtol).
    """
    atol, rtol = default_tolerance(model.precision)
    if model.parity.atol is not None:
        atol = model.parity.atol
    if model.parity.rtol is not None:
        rtol = model.parity.rtol
    for spec in model.outputs:
        if spec.name == output:
            atol = spec.atol if spec.atol is not None else atol
            rtol = spec.rtol if spec.rtol is not None else rtol
    return atol, rtol


def output_metric(model: ModelSpec, output: str) -> Metric | None:
    """The criterion of one output: ``outputs[i].metric`` > ``parity.metric`` > None (elementwise atol/rtol)."""
    for spec in model.outputs:
        if spec.name == output and spec.metric is not None:
            return spec.metric
    return model.parity.metric
