"""trtrepo's own load loop: ``concurrency`` threads keep requests in flight, bounded in count and in time.

Used when perf_analyzer is absent or cannot measure a level; every thread has its own client (tritonclient clients
are not shared between threads). Loopback is the intended target: the caller picks the URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from trtrepo.bench.stats import LoadResult
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_SECONDS = 20.0
DEFAULT_WARMUP = 3


def run_load(worker_factory: Callable[[], Callable[[], Any]], concurrency: int, requests: int,
             max_seconds: float = DEFAULT_MAX_SECONDS, warmup: int = DEFAULT_WARMUP,
             on_timed_start: Callable[[], None] | None = None) -> LoadResult:
    """Keep ``concurrency`` requests in flight until ``requests`` are done or ``max_seconds`` pass.

    Each thread calls ``worker_factory()`` once to get its own ``send()`` (one client per thread: tritonclient
    clients are not shared between threads), sends ``warmup`` untimed requests, waits for the others, then takes
    requests from the shared budget. The wall time runs from the common start to the last completion.

    Args:
        worker_factory: Makes one thread's ``send()``; ``send()`` performs one blocking request.
        concurrency: Number of threads.
        requests: Timed requests in total (across threads).
        max_seconds: Stop taking new requests after this long.
        warmup: Untimed requests per thread before the measurement.
        on_timed_start: Called once every thread has finished its warm-up, before the clock starts (a statistics
            snapshot that must not count the warm-up).

    Raises:
        ValueError: ``concurrency`` or ``requests`` below 1.
        ServeError: A thread could not start (client creation or warm-up failed), or every request failed.
    """
    if concurrency < 1 or requests < 1:
        raise ValueError(f"concurrency and requests must be >= 1, got {concurrency}, {requests}")
    lock = threading.Lock()
    remaining = [requests]
    window = [0.0, 0.0]  # start, end of the timed part
    latencies: list[float] = []
    failures: list[str] = []
    setup_errors: list[BaseException] = []

    def mark_start() -> None:
        if on_timed_start is not None:
            try:
                on_timed_start()
            except Exception as exc:  # a failed snapshot must not stop the measurement
                LOGGER.warning("bench: before the timed requests: %s", exc)
        window[0] = time.perf_counter()

    barrier = threading.Barrier(concurrency, action=mark_start)

    def worker() -> None:
        try:
            send = worker_factory()
            for _ in range(warmup):
                send()
        except Exception as exc:
            setup_errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        deadline = window[0] + max_seconds
        while True:
            with lock:
                if remaining[0] <= 0 or time.perf_counter() > deadline:
                    break
                remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                send()
            except Exception as exc:
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
                continue
            t1 = time.perf_counter()
            with lock:
                latencies.append(t1 - t0)
                window[1] = max(window[1], t1)

    threads = [threading.Thread(target=worker, name=f"trtrepo-bench-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if setup_errors:
        exc = setup_errors[0]
        raise ServeError(f"bench client could not start: {type(exc).__name__}: {exc}".splitlines()[0],
                         hint="is the server up and the model READY? (trtrepo serve, then curl /v2/health/ready)")
    if not latencies:
        raise ServeError(f"every bench request failed ({len(failures)}): {failures[0] if failures else '?'}"
                         .splitlines()[0], hint="run trtrepo check on the same repository to see the failure")
    return LoadResult(tuple(latencies), window[1] - window[0], len(failures), failures[0] if failures else None)


def model_stats(url: str, model: str, version: int) -> dict[str, Any] | None:
    """The model's ``/v2/models/<m>/versions/<v>/stats`` entry (queue/compute totals), None if unavailable."""
    try:
        import tritonclient.http as httpclient

        stats = httpclient.InferenceServerClient(url).get_inference_statistics(model, str(version))
    except Exception as exc:  # statistics are a bonus; the measurement stands without them
        LOGGER.debug("no statistics for %s: %s", model, exc)
        return None
    entries = stats.get("model_stats", []) if isinstance(stats, dict) else []
    return dict(entries[0]) if entries else None
