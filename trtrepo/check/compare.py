"""Elementwise comparison of one served output against the eager one.

An element passes iff ``|actual - expected| <= atol + rtol * |expected|`` (numpy.isclose's rule, computed in
float64). NaN matches NaN and an infinity matches the same infinity; any other NaN/Inf disagreement is a violation
whatever the tolerances. Shapes and dtypes must agree exactly before values are compared.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputResult:
    """How one output compared.

    Attributes:
        name: Output name (the spec's).
        passed: Shapes and dtypes agree and every element is within tolerance.
        shape: Served shape.
        expected_shape: Eager shape.
        dtype: Served dtype name (numpy's; ``bfloat16`` for BF16).
        expected_dtype: Eager dtype name.
        atol: Absolute tolerance used.
        rtol: Relative tolerance used.
        max_abs_error: Largest ``|a - e|`` over elements where both are finite (0 if none).
        max_rel_error: Largest ``|a - e| / |e|`` over finite elements with ``e != 0`` (0 if none).
        worst_index: Index of the worst violation (largest excess over the allowed error; NaN/Inf mismatches
            first); without violations, the index of the largest absolute error. None for empty or mismatched
            tensors.
        violations: Number of elements outside tolerance (NaN/Inf mismatches included).
        nonfinite_mismatches: Elements where NaN/Inf placement differs.
        size: Number of elements compared.
        actual_at_worst: Served value at ``worst_index``.
        expected_at_worst: Eager value at ``worst_index``.
        message: Why it failed, in one line ('' when passed).
    """

    name: str
    passed: bool
    shape: tuple[int, ...]
    expected_shape: tuple[int, ...]
    dtype: str
    expected_dtype: str
    atol: float
    rtol: float
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] | None = None
    violations: int = 0
    nonfinite_mismatches: int = 0
    size: int = 0
    actual_at_worst: float | None = None
    expected_at_worst: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists, non-finite floats become strings)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
            elif isinstance(value, float) and not np.isfinite(value):
                out[key] = str(value)
        return out


def compare(name: str, actual: NDArray[Any], expected: NDArray[Any], atol: float, rtol: float) -> OutputResult:
    """Compare ``actual`` (served) with ``expected`` (eager) elementwise.

    Args:
        name: Output name, for the result.
        actual: What the server returned.
        expected: What eager PyTorch returned on the same inputs.
        atol: Absolute tolerance (>= 0).
        rtol: Relative tolerance (>= 0), relative to ``|expected|``.

    Returns:
        The result; ``passed`` iff shapes and dtypes agree and no element violates the tolerance.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    base: dict[str, Any] = {
        "name": name,
        "shape": tuple(int(d) for d in actual.shape),
        "expected_shape": tuple(int(d) for d in expected.shape),
        "dtype": _dtype_name(actual.dtype),
        "expected_dtype": _dtype_name(expected.dtype),
        "atol": float(atol),
        "rtol": float(rtol),
    }
    if actual.shape != expected.shape:
        return OutputResult(passed=False, message=f"shape {list(actual.shape)} != expected {list(expected.shape)}",
                            **base)
    if base["dtype"] != base["expected_dtype"]:
        return OutputResult(passed=False, message=f"dtype {base['dtype']} != expected {base['expected_dtype']}",
                            **base)
    if actual.size == 0:
        return OutputResult(passed=True, **base)

    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(e)
    same_nonfinite = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e)))
    nonfinite_bad = ~finite & ~same_nonfinite

    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.where(finite, np.abs(a - e), 0.0)
        allowed = atol + rtol * np.abs(np.where(finite, e, 0.0))
        nonzero = finite & (e != 0)
        rel_err = np.where(nonzero, abs_err / np.where(nonzero, np.abs(e), 1.0), 0.0)
    # Excess over the allowed error; NaN/Inf disagreements rank above any finite violation.
    excess = np.where(nonfinite_bad, np.inf, abs_err - allowed)
    violating = nonfinite_bad | (finite & (abs_err > allowed))
    violations = int(violating.sum())
    flat = int(np.argmax(excess)) if violations else int(np.argmax(abs_err))
    index = tuple(int(i) for i in np.unravel_index(flat, actual.shape))
    result = OutputResult(
        passed=violations == 0,
        max_abs_error=float(abs_err.max()),
        max_rel_error=float(rel_err.max()),
        worst_index=index,
        violations=violations,
        nonfinite_mismatches=int(nonfinite_bad.sum()),
        size=int(actual.size),
        actual_at_worst=float(a[index]),
        expected_at_worst=float(e[index]),
        message="" if violations == 0 else _violation_message(violations, actual.size, index, a[index], e[index],
                                                               atol, rtol),
        **base,
    )
    return result


def _violation_message(count: int, size: int, index: tuple[int, ...], a: float, e: float, atol: float,
                       rtol: float) -> str:
    where = f"[{', '.join(str(i) for i in index)}]"
    return (f"{count}/{size} elements outside atol {atol:g} + rtol {rtol:g}*|expected|; worst at {where}: "
            f"served {a:.6g} vs eager {e:.6g} (|diff| {abs(a - e):.3g})")


def _dtype_name(dtype: np.dtype[Any]) -> str:
    return str(dtype.name if hasattr(dtype, "name") else dtype)
