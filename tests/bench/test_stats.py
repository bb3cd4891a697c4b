"""Percentiles, throughput, the load loop's accounting and Triton statistics deltas (no server needed)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from trtrepo.bench.breakdown import RequestBreakdown, breakdown_from_stats
from trtrepo.bench.load import run_load
from trtrepo.bench.stats import LatencyStats, percentile, throughput
from trtrepo.bench.timing import time_eager
from trtrepo.errors import ServeError


def test_percentile_matches_linear_interpolation() -> None:
    values = [10.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == 3.0
    # rank 0.9 * 4 = 3.6 → 4 + 0.6 * (10 - 4)
    assert percentile(values, 90) == pytest.approx(7.6)
    assert percentile([5.0], 99) == 5.0


def test_percentile_agrees_with_numpy() -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    data = rng.exponential(size=257).tolist()
    for q in (1, 50, 90, 99, 99.9):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))


@pytest.mark.parametrize("bad", [-1, 100.5])
def test_percentile_rejects_out_of_range_q(bad: float) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], bad)


def test_percentile_rejects_empty() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_throughput() -> None:
    assert throughput(200, 2.0) == 100.0
    assert throughput(0, 1.0) == 0.0
    assert throughput(5, 0.0) == 0.0


def test_latency_stats_from_seconds_converts_to_ms() -> None:
    stats = LatencyStats.from_seconds([0.001, 0.002, 0.003, 0.004])
    assert stats.count == 4
    assert stats.min_ms == pytest.approx(1.0)
    assert stats.max_ms == pytest.approx(4.0)
    assert stats.mean_ms == pytest.approx(2.5)
    assert stats.p50_ms == pytest.approx(2.5)
    assert stats.p90_ms == pytest.approx(3.7)
    assert stats.p99_ms == pytest.approx(3.97)
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])


def test_run_load_honours_request_budget_and_concurrency() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    made = []

    def factory():
        made.append(1)

        def send() -> None:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.002)
            with lock:
                in_flight -= 1

        return send

    result = run_load(factory, concurrency=4, requests=40, max_seconds=30, warmup=1)
    assert len(result.latencies_s) == 40
    assert len(made) == 4  # one client per thread
    assert peak == 4
    assert result.errors == 0
    assert all(lat >= 0.002 for lat in result.latencies_s)
    # 40 requests of >= 2 ms over 4 threads: at least 10 rounds of 2 ms, and far fewer than serial (80 ms)
    assert 0.018 <= result.wall_s < 0.5
    assert throughput(len(result.latencies_s), result.wall_s) < 4 / 0.002 * 1.05


def test_run_load_stops_at_max_seconds() -> None:
    def factory():
        return lambda: time.sleep(0.01)

    t0 = time.perf_counter()
    result = run_load(factory, concurrency=2, requests=10_000, max_seconds=0.1, warmup=0)
    assert time.perf_counter() - t0 < 1.0
    assert 4 <= len(result.latencies_s) < 100


def test_run_load_counts_failed_requests() -> None:
    counter = iter(range(10_000))
    lock = threading.Lock()

    def factory():
        def send() -> None:
            with lock:
                i = next(counter)
            if i % 3 == 0:
                raise RuntimeError("boom")

        return send

    result = run_load(factory, concurrency=1, requests=30, warmup=0)
    assert result.errors == 10
    assert len(result.latencies_s) == 20
    assert result.first_error == "RuntimeError: boom"


def test_run_load_reports_a_client_that_cannot_start() -> None:
    def factory():
        raise ConnectionRefusedError("no server on 127.0.0.1:1")

    with pytest.raises(ServeError, match=r"could not start.*ConnectionRefusedError"):
        run_load(factory, concurrency=3, requests=5)


def test_run_load_all_requests_failing_is_an_error() -> None:
    def factory():
        def send() -> None:
            raise RuntimeError("model not ready")

        return send

    with pytest.raises(ServeError, match=r"every bench request failed.*model not ready"):
        run_load(factory, concurrency=2, requests=4, warmup=0)


def test_time_eager_synchronises_each_call() -> None:
    syncs = []
    result = time_eager(lambda: time.sleep(0.001), iterations=5, warmup=2, synchronize=lambda: syncs.append(1))
    assert len(result.latencies_s) == 5
    assert len(syncs) == 1 + 5  # once after warm-up, once per timed call
    assert min(result.latencies_s) >= 0.001


def test_breakdown_from_stats_divides_by_the_requests_the_server_counted() -> None:
    def entry(count: int, queue: int, cin: int, infer: int, cout: int) -> dict[str, Any]:
        return {"inference_stats": {"success": {"count": count}, "queue": {"count": count, "ns": queue},
                                    "compute_input": {"count": count, "ns": cin},
                                    "compute_infer": {"count": count, "ns": infer},
                                    "compute_output": {"count": count, "ns": cout}}}

    before = entry(10, 1_000_000, 0, 0, 0)
    after = entry(30, 5_000_000, 2_000_000, 40_000_000, 6_000_000)
    split = breakdown_from_stats(before, after, [0.004] * 20)
    assert split is not None
    assert split.queue_ms == pytest.approx(0.2) and split.compute_input_ms == pytest.approx(0.1)
    assert split.compute_infer_ms == pytest.approx(2.0) and split.compute_output_ms == pytest.approx(0.3)
    assert split.client_ms == pytest.approx(4.0) and split.rest_ms == pytest.approx(4.0 - 2.6)
    assert split.client_requests == split.server_requests == 20
    assert RequestBreakdown.from_dict(split.to_dict()) == split
    assert breakdown_from_stats(after, after, [0.004]) is None  # nothing counted in between
    assert breakdown_from_stats(before, after, []) is None
