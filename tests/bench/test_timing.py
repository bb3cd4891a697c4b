"""Spreads over runs, ratios, and the warm-up rule (a scripted clock stands in for time: nothing here is timed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from trtrepo.bench.stats import LatencyStats, Spread, ratio
from trtrepo.bench.timing import HostClock, WarmUpPolicy, settled, warm_up


class ScriptedClock:
    """Returns the given per-call latencies (seconds) in order, and counts the calls it was asked to make."""

    name = "scripted"

    def __init__(self, latencies: Sequence[float]) -> None:
        self.latencies = list(latencies)
        self.calls = 0

    def per_call(self, call: Callable[[], Any], iterations: int, max_seconds: float) -> list[float]:
        out = []
        for _ in range(iterations):
            call()
            out.append(self.latencies[min(self.calls, len(self.latencies) - 1)])
            self.calls += 1
        return out

    def pipelined(self, call: Callable[[], Any], depth: int) -> float:
        return sum(self.per_call(call, depth, 1.0))


def test_spread_of_runs() -> None:
    s = Spread.of([0.30, 0.25, 0.27])
    assert (s.median, s.low, s.high, s.runs) == (0.27, 0.25, 0.30, 3)
    assert s.relative == pytest.approx(0.05 / 0.27)
    assert s.text(2, "x") == "0.27x (0.25–0.30)"
    assert Spread.of([2.0]).text(1) == "2.0"
    with pytest.raises(ValueError, match="no runs"):
        Spread.of([])


def test_ratio() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def test_latency_stats_from_ms() -> None:
    stats = LatencyStats.from_ms([1.0, 2.0, 3.0])
    assert (stats.p50_ms, stats.min_ms, stats.max_ms, stats.count) == (2.0, 1.0, 3.0, 3)


def test_settled_rule() -> None:
    assert not settled([1.0], 0.05)
    assert settled([1.0, 1.04], 0.05)
    assert not settled([1.0, 1.2], 0.05)
    assert not settled([0.0, 0.0], 0.05)


def test_warm_up_runs_until_two_windows_agree() -> None:
    # first call 50 ms (kernel specialisation), then a slow window, a faster one, and two that agree
    script = [0.050] + [0.004] * 10 + [0.002] * 10 + [0.001] * 10 + [0.00101] * 10 + [0.009] * 100
    clock = ScriptedClock(script)
    calls: list[int] = []
    record = warm_up(lambda: calls.append(1), clock, WarmUpPolicy(window=10, tolerance=0.05, max_calls=1000))
    assert record.first_call_ms == pytest.approx(50.0)
    assert record.window_medians_ms == pytest.approx((4.0, 2.0, 1.0, 1.01))
    assert record.settled and record.calls == 41 == len(calls)


def test_warm_up_gives_up_at_max_calls_and_says_so() -> None:
    doubling = ScriptedClock([0.001, *[0.001 * 2**k for k in range(12) for _ in range(5)]])  # never settles
    record = warm_up(lambda: None, doubling, WarmUpPolicy(window=5, tolerance=0.01, max_calls=31))
    assert not record.settled and record.calls == 31 == doubling.calls
    assert len(record.window_medians_ms) == 6


def test_host_clock_counts_calls_and_synchronises() -> None:
    synced: list[int] = []
    calls: list[int] = []
    clock = HostClock(lambda: synced.append(1))
    samples = clock.per_call(lambda: calls.append(1), 7, max_seconds=60)
    assert len(samples) == 7 == len(calls) == len(synced) and all(s >= 0 for s in samples)
    total = clock.pipelined(lambda: calls.append(1), 5)
    assert total >= 0 and len(calls) == 12 and len(synced) == 9  # one sync before, one after the pipelined calls
