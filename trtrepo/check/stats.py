"""Error statistics of one served tensor against the eager one, and the pass/fail criteria ``parity.metric`` picks.

:func:`error_stats` extends the elementwise comparison of :mod:`trtrepo.check.compare` (which stays the default
verdict: every element within ``atol + rtol * |eager|``) with the distribution of the error: max/mean/median/p99 of
the absolute and relative error, the fraction of elements outside tolerance, cosine similarity and NaN/Inf counts.
All of it is computed in float64 over the elements where both tensors are finite.

NaN/Inf policy (whatever the criterion): a NaN or Inf where eager has a finite value, or a finite value where eager
has a NaN/Inf, fails; a NaN where eager has a NaN, or the same infinity, is agreement.

Criteria (``parity.metric`` / ``outputs[i].metric`` in model.yaml, :data:`trtrepo.spec.METRICS`):
``elementwise`` (the default), ``cosine: c`` (cosine similarity >= c), ``max_abs``/``mean_abs``/``p99_abs: e``
(that statistic of the absolute error <= e), ``fraction_outside: f`` (at most that fraction of the elements
outside atol/rtol).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from trtrepo.check.compare import OutputResult, compare

if TYPE_CHECKING:
    from trtrepo.spec import Metric

LOGGER = logging.getLogger(__name__)

QUANTILE = 0.99
NONFINITE_POLICY = "a NaN/Inf where eager has a finite value (or the reverse) fails"


@dataclass(frozen=True)
class ErrorStats:
    """The error distribution of one served tensor against eager, with the elementwise result it extends.

    Attributes:
        result: The elementwise comparison (verdict, worst element, violations) from :func:`compare`.
        max_abs, mean_abs, median_abs, p99_abs: Absolute error over finite elements (0 when there are none).
        max_rel, mean_rel, median_rel, p99_rel: ``|a - e| / |e|`` over finite elements with ``e != 0``.
        fraction_outside: Elements outside atol/rtol (NaN/Inf disagreements included) / elements.
        cosine: Cosine similarity over the finite elements (1.0 when both are all zero, 0.0 when one is).
        nan_served, inf_served, nan_eager, inf_eager: Non-finite counts.
        nonfinite_mismatches: Elements where the NaN/Inf placement differs (the policy fails on any).
    """

    result: OutputResult
    max_abs: float = 0.0
    mean_abs: float = 0.0
    median_abs: float = 0.0
    p99_abs: float = 0.0
    max_rel: float = 0.0
    mean_rel: float = 0.0
    median_rel: float = 0.0
    p99_rel: float = 0.0
    fraction_outside: float = 0.0
    cosine: float = 1.0
    nan_served: int = 0
    inf_served: int = 0
    nan_eager: int = 0
    inf_eager: int = 0

    @property
    def nonfinite_mismatches(self) -> int:
        """Elements where the NaN/Inf placement differs."""
        return self.result.nonfinite_mismatches

    def statistic(self, name: str) -> float:
        """The statistic a criterion reads (``cosine``, ``max_abs``, ``fraction_outside``...)."""
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the statistics, then the elementwise result's fields."""
        out: dict[str, Any] = {k: _json_float(getattr(self, k)) for k in (
            "max_abs", "mean_abs", "median_abs", "p99_abs", "max_rel", "mean_rel", "median_rel", "p99_rel",
            "fraction_outside", "cosine")}
        out.update(nan_served=self.nan_served, inf_served=self.inf_served, nan_eager=self.nan_eager,
                   inf_eager=self.inf_eager, nonfinite_mismatches=self.nonfinite_mismatches)
        out["elementwise"] = self.result.to_dict()
        return out


def error_stats(name: str, actual: NDArray[Any], expected: NDArray[Any], atol: float, rtol: float) -> ErrorStats:
    """Compare ``actual`` (served) with ``expected`` (eager) elementwise and describe the error distribution.

    Args:
        name: Output name, for the result.
        actual: The served tensor.
        expected: The eager tensor.
        atol: Absolute tolerance of the elementwise criterion.
        rtol: Relative tolerance of the elementwise criterion.

    Returns:
        The statistics; when shapes or dtypes differ only ``result`` says so (every statistic stays at its
        no-error value and ``fraction_outside`` is 1).
    """
    result = compare(name, actual, expected, atol, rtol)
    if tuple(actual.shape) != tuple(expected.shape) or result.dtype != result.expected_dtype:
        return ErrorStats(result=result, fraction_outside=1.0, cosine=0.0)
    if actual.size == 0:
        return ErrorStats(result=result)
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    finite = np.isfinite(a) & np.isfinite(e)
    abs_err = np.abs(a[finite] - e[finite])
    nonzero = e[finite] != 0
    rel_err = abs_err[nonzero] / np.abs(e[finite][nonzero])
    return ErrorStats(
        result=result,
        **_summary("abs", abs_err),
        **_summary("rel", rel_err),
        fraction_outside=result.violations / actual.size,
        cosine=cosine_similarity(a[finite], e[finite]),
        nan_served=int(np.isnan(a).sum()),
        inf_served=int(np.isinf(a).sum()),
        nan_eager=int(np.isnan(e).sum()),
        inf_eager=int(np.isinf(e).sum()),
    )


def cosine_similarity(a: NDArray[Any], b: NDArray[Any]) -> float:
    """``a·b / (|a| |b|)`` in float64; 1.0 when both are all zero, 0.0 when only one is."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / (nx * ny), -1.0, 1.0))


def judge(stats: ErrorStats, metric: Metric | None) -> tuple[bool, str]:
    """Whether ``stats`` pass under ``metric`` (None or ``elementwise``: the atol/rtol verdict), and why not.

    A shape/dtype mismatch or a NaN/Inf disagreement fails under every criterion.
    """
    result = stats.result
    if metric is None or metric.criterion == "elementwise":
        return result.passed, result.message
    if result.shape != result.expected_shape or result.dtype != result.expected_dtype:
        return False, result.message
    if stats.nonfinite_mismatches:
        return False, f"{stats.nonfinite_mismatches} NaN/Inf mismatches ({NONFINITE_POLICY})"
    value = stats.statistic(metric.criterion)
    if metric.criterion == "cosine":
        ok = value >= metric.threshold
        return ok, "" if ok else f"cosine similarity {value:.6f} < {metric.threshold:g}"
    ok = value <= metric.threshold
    return ok, "" if ok else f"{metric.criterion} {value:.3g} > {metric.threshold:g}"


def judged(stats: ErrorStats, metric: Metric | None) -> OutputResult:
    """The elementwise result with the verdict and message of ``metric`` (the same result for elementwise)."""
    import dataclasses

    passed, message = judge(stats, metric)
    if metric is None or metric.criterion == "elementwise":
        return stats.result
    return dataclasses.replace(stats.result, passed=passed, message=message)


def _summary(kind: str, values: NDArray[Any]) -> dict[str, float]:
    if values.size == 0:
        return {f"max_{kind}": 0.0, f"mean_{kind}": 0.0, f"median_{kind}": 0.0, f"p99_{kind}": 0.0}
    return {f"max_{kind}": float(values.max()), f"mean_{kind}": float(values.mean()),
            f"median_{kind}": float(np.median(values)), f"p99_{kind}": float(np.quantile(values, QUANTILE))}


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
