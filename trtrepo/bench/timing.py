"""How a call is timed: per-call latency, pipelined throughput and warm-up until the timings settle.

A :class:`Clock` times ``call()`` (one enqueue of one inference, no host synchronisation inside). On a GPU,
:class:`CudaClock` records CUDA events on the runner's own stream: a per-call sample is the time between an event
before and an event after one call, synchronised after each; a pipelined sample enqueues many calls between two
events and synchronises once, so the GPU never waits for the host between calls. On a CPU, :class:`HostClock`
uses ``time.perf_counter``.

Warm-up: TensorRT-RTX specialises dynamic-shape kernels at run time (per shape), caches fill, clocks ramp up. A
shape is timed only after :func:`warm_up` saw the median of consecutive windows of calls settle; what the warm-up
took (calls, seconds, the first call, each window's median) is part of the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trtrepo.bench.stats import LoadResult

DEFAULT_WARMUP = 3
DEFAULT_MAX_SECONDS = 20.0

Call = Callable[[], Any]


class Clock(Protocol):
    """Times calls; ``name`` says how (it is written into reports)."""

    name: str

    def per_call(self, call: Call, iterations: int, max_seconds: float) -> list[float]:
        """Seconds of each of up to ``iterations`` calls, each synchronised; stops after ``max_seconds``."""
        ...

    def pipelined(self, call: Call, depth: int) -> float:
        """Seconds for ``depth`` calls enqueued back to back with one synchronisation at the end."""
        ...


class HostClock:
    """``time.perf_counter`` around each call, then ``synchronize()`` (a no-op on the CPU)."""

    name = "host perf_counter"

    def __init__(self, synchronize: Callable[[], None] | None = None) -> None:
        self.synchronize = synchronize or (lambda: None)

    def per_call(self, call: Call, iterations: int, max_seconds: float) -> list[float]:
        """See :class:`Clock`."""
        samples: list[float] = []
        deadline = time.perf_counter() + max_seconds
        for _ in range(iterations):
            t0 = time.perf_counter()
            call()
            self.synchronize()
            samples.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                break
        return samples

    def pipelined(self, call: Call, depth: int) -> float:
        """See :class:`Clock`."""
        self.synchronize()
        t0 = time.perf_counter()
        for _ in range(depth):
            call()
        self.synchronize()
        return time.perf_counter() - t0


class CudaClock:
    """CUDA events recorded on ``stream`` (a ``torch.cuda.Stream``) around the calls.

    The calls must enqueue their work on ``stream`` (every trtrepo runner does: its ``stream``).
    """

    name = "CUDA events on the runner's stream"

    def __init__(self, stream: Any) -> None:
        import torch

        self.torch: Any = torch
        self.stream = stream

    def _events(self) -> tuple[Any, Any]:
        event = self.torch.cuda.Event
        return event(enable_timing=True), event(enable_timing=True)

    def per_call(self, call: Call, iterations: int, max_seconds: float) -> list[float]:
        """See :class:`Clock`."""
        samples: list[float] = []
        deadline = time.perf_counter() + max_seconds
        self.stream.synchronize()
        with self.torch.cuda.stream(self.stream):
            for _ in range(iterations):
                start, end = self._events()
                start.record(self.stream)
                call()
                end.record(self.stream)
                end.synchronize()
                samples.append(start.elapsed_time(end) / 1e3)
                if time.perf_counter() > deadline:
                    break
        return samples

    def pipelined(self, call: Call, depth: int) -> float:
        """See :class:`Clock`."""
        start, end = self._events()
        self.stream.synchronize()
        with self.torch.cuda.stream(self.stream):
            start.record(self.stream)
            for _ in range(depth):
                call()
            end.record(self.stream)
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3


@dataclass(frozen=True)
class WarmUpPolicy:
    """When a shape counts as warm.

    Attributes:
        window: Calls per window.
        tolerance: Two consecutive window medians within this relative difference = settled.
        max_calls: Give up settling after this many calls (the shape is then timed anyway, ``settled`` False).
        max_seconds: Or after this long.
    """

    window: int = 20
    tolerance: float = 0.05
    max_calls: int = 2000
    max_seconds: float = 10.0


@dataclass(frozen=True)
class WarmUp:
    """What warming one shape took.

    Attributes:
        calls: Calls made (the first included).
        seconds: Wall time of the warm-up.
        first_call_ms: The first call (TensorRT-RTX compiles specialised kernels here with the ``eager`` strategy).
        window_medians_ms: Median of each window, in order.
        settled: Whether two consecutive windows agreed within the tolerance.
    """

    calls: int
    seconds: float
    first_call_ms: float
    window_medians_ms: tuple[float, ...] = field(default_factory=tuple)
    settled: bool = False


def settled(medians: Sequence[float], tolerance: float) -> bool:
    """Whether the last two window medians agree within ``tolerance`` (relative to the earlier one)."""
    if len(medians) < 2 or medians[-2] <= 0:
        return False
    return abs(medians[-1] - medians[-2]) / medians[-2] <= tolerance


def warm_up(call: Call, clock: Clock, policy: WarmUpPolicy = WarmUpPolicy()) -> WarmUp:
    """Call until consecutive window medians settle (or the policy's bounds are reached)."""
    from trtrepo.bench.stats import percentile

    start = time.perf_counter()
    first = clock.per_call(call, 1, policy.max_seconds)[0]
    calls = 1
    medians: list[float] = []
    while calls < policy.max_calls and time.perf_counter() - start < policy.max_seconds:
        window = clock.per_call(call, policy.window, policy.max_seconds)
        calls += len(window)
        medians.append(percentile(window, 50) * 1e3)
        if settled(medians, policy.tolerance):
            break
    return WarmUp(calls=calls, seconds=time.perf_counter() - start, first_call_ms=first * 1e3,
                  window_medians_ms=tuple(medians), settled=settled(medians, policy.tolerance))


def time_eager(fn: Call, iterations: int, warmup: int = DEFAULT_WARMUP,
               synchronize: Callable[[], None] | None = None, max_seconds: float = DEFAULT_MAX_SECONDS) -> LoadResult:
    """Time ``fn()`` one call at a time on the host (``synchronize`` after each call, e.g. torch.cuda.synchronize)."""
    clock = HostClock(synchronize)
    for _ in range(warmup):
        fn()
    clock.synchronize()
    start = time.perf_counter()
    samples = clock.per_call(fn, iterations, max_seconds)
    return LoadResult(tuple(samples), time.perf_counter() - start, 0)
