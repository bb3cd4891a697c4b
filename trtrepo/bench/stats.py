"""Numbers every benchmark reports: percentiles, latency summaries, throughput, ratios and the spread of runs.

Pure Python (no numpy, no torch): the served sweep, the engine benchmark and the soak all summarise here, so a p50
means the same thing in every report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def throughput(inferences: int, seconds: float) -> float:
    """Inferences per second; 0 when nothing ran or no time passed."""
    return inferences / seconds if seconds > 0 and inferences > 0 else 0.0


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``; None when either is missing or ``den`` is 0."""
    if num is None or not den:
        return None
    return num / den


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary in milliseconds; ``count``, ``min_ms``, ``max_ms`` are None when the source lacks them."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    count: int | None = None
    min_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> LatencyStats:
        """Summarise per-request latencies given in seconds.

        Raises:
            ValueError: No samples.
        """
        return cls.from_ms([s * 1e3 for s in samples])

    @classmethod
    def from_ms(cls, ms: Sequence[float]) -> LatencyStats:
        """Summarise latencies given in milliseconds.

        Raises:
            ValueError: No samples.
        """
        if not ms:
            raise ValueError("no latency samples")
        return cls(p50_ms=percentile(ms, 50), p90_ms=percentile(ms, 90), p99_ms=percentile(ms, 99),
                   mean_ms=sum(ms) / len(ms), count=len(ms), min_ms=min(ms), max_ms=max(ms))


@dataclass(frozen=True)
class LoadResult:
    """Raw outcome of one measurement: per-call latencies (s), the measured wall time (s), failures."""

    latencies_s: tuple[float, ...]
    wall_s: float
    errors: int
    first_error: str | None = None


@dataclass(frozen=True)
class Spread:
    """How one number varied over several runs: median, min, max and (max - min) / median.

    Attributes:
        median: Median over the runs.
        low: Smallest value.
        high: Largest value.
        runs: How many runs.
    """

    median: float
    low: float
    high: float
    runs: int

    @property
    def relative(self) -> float:
        """(high - low) / median: 0.2 means the runs spread over 20 % of the median."""
        return (self.high - self.low) / self.median if self.median else 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (one per run).

        Raises:
            ValueError: No values.
        """
        if not values:
            raise ValueError("spread of no runs")
        return cls(median=float(statistics.median(values)), low=float(min(values)), high=float(max(values)),
                   runs=len(values))

    def text(self, digits: int = 3, unit: str = "") -> str:
        """``0.104 (0.101–0.110)``: median and range."""
        if self.runs == 1:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f})"
