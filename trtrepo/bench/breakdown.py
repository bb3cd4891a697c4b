"""Where a served request's time goes: Triton's statistics (queue, compute input/infer/output) against the client.

Triton's statistics extension (``/v2/models/<m>/versions/<v>/stats``) keeps, per model version, cumulative
nanoseconds and counts of each request phase. The difference of two snapshots around the timed requests, divided
by the number of requests that succeeded in between, is the server's average per request; the client's mean
latency over the same requests minus the server's phases is the rest: client work (serialisation, shared memory
copies), the network or loopback and the protocol stack (HTTP/gRPC framing, Triton's front end, response send).

The snapshots must bracket exactly the timed requests: the load loop's warm-up requests are excluded (a snapshot
is taken once all of them are counted), and Triton updates its counters after it sends a response, so each read
waits (bounded) until the count it expects is there. ``server_requests`` records what the server counted; when it
differs from ``client_requests`` (another client, or statistics that never settled) the averages still hold per
request the server saw, and the row says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from trtrepo._table import render

LOGGER = logging.getLogger(__name__)

PHASES = ("queue", "compute_input", "compute_infer", "compute_output")
SETTLE_S = 5.0


@dataclass(frozen=True)
class RequestBreakdown:
    """A served request's mean time, split by where it was spent (milliseconds).

    Attributes:
        client_ms: Mean latency the client measured (the whole request: writing inputs to reading outputs).
        queue_ms: Mean time in Triton's scheduler queue.
        compute_input_ms: Mean time the backend spent taking in the inputs (copies into the backend).
        compute_infer_ms: Mean time of the model's execution.
        compute_output_ms: Mean time the backend spent handing out the outputs.
        client_requests: Requests the client timed.
        server_requests: Successful requests the server counted over the same window.
        source: ``triton-stats`` (own load loop + the statistics extension) or ``perf_analyzer`` (its CSV).
    """

    client_ms: float
    queue_ms: float
    compute_input_ms: float
    compute_infer_ms: float
    compute_output_ms: float
    client_requests: int
    server_requests: int
    source: str = "triton-stats"

    @property
    def server_ms(self) -> float:
        """Queue plus compute input, infer and output."""
        return self.queue_ms + self.compute_input_ms + self.compute_infer_ms + self.compute_output_ms

    @property
    def rest_ms(self) -> float:
        """Client, network and protocol: the client's mean minus the server's phases."""
        return self.client_ms - self.server_ms

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the derived ``server_ms`` and ``rest_ms``."""
        out = asdict(self)
        out["server_ms"] = self.server_ms
        out["rest_ms"] = self.rest_ms
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RequestBreakdown:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**{k: v for k, v in raw.items() if k not in ("server_ms", "rest_ms")})


def breakdown_from_stats(before: Mapping[str, Any], after: Mapping[str, Any],
                         latencies_s: Sequence[float]) -> RequestBreakdown | None:
    """The breakdown of the requests between two ``model_stats`` entries, with the client's latencies.

    Args:
        before: The model version's ``model_stats`` entry before the timed requests.
        after: The same entry after them.
        latencies_s: The client's latency of each timed request (seconds).

    Returns:
        The breakdown; None when the server counted no successful request or the client timed none.
    """
    served = success_count(after) - success_count(before)
    if served <= 0 or not latencies_s:
        return None
    phases = {}
    for key in PHASES:
        ns = _ns(after, key) - _ns(before, key)
        phases[key] = max(ns, 0) / served / 1e6
    return RequestBreakdown(client_ms=sum(latencies_s) / len(latencies_s) * 1e3, queue_ms=phases["queue"],
                            compute_input_ms=phases["compute_input"], compute_infer_ms=phases["compute_infer"],
                            compute_output_ms=phases["compute_output"], client_requests=len(latencies_s),
                            server_requests=served)


def success_count(entry: Mapping[str, Any] | None) -> int:
    """Successful requests in a ``model_stats`` entry (0 for None)."""
    if not entry:
        return 0
    return int(entry.get("inference_stats", {}).get("success", {}).get("count", 0))


def _ns(entry: Mapping[str, Any], key: str) -> int:
    return int(entry.get("inference_stats", {}).get(key, {}).get("ns", 0))


def settled_stats(url: str, model: str, version: int, count: int, wait_s: float = SETTLE_S) -> dict[str, Any] | None:
    """The model's statistics once they count ``count`` successful requests (waits at most ``wait_s``).

    Triton updates the counters after the response is sent: a read right after the last reply may miss it.
    """
    from trtrepo.bench.load import model_stats

    deadline = time.monotonic() + wait_s
    entry = model_stats(url, model, version)
    while entry is not None and success_count(entry) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        entry = model_stats(url, model, version)
    return entry


def breakdown_table(rows: Sequence[Any]) -> str:
    """One line per bench row that has a breakdown: client total and its parts (ms per request)."""
    headers = ("model", "batch", "conc", "shm", "client ms", "queue", "c.input", "c.infer", "c.output", "rest",
               "rest %", "requests", "source")
    lines = []
    for r in rows:
        b: RequestBreakdown | None = getattr(r, "breakdown", None)
        if b is None:
            continue
        share = f"{100 * b.rest_ms / b.client_ms:.0f}" if b.client_ms > 0 else "-"
        counted = str(b.client_requests) if b.client_requests == b.server_requests else \
            f"{b.client_requests} (server {b.server_requests})"
        lines.append((r.model, r.batch_size, r.concurrency, getattr(r, "shared_memory", "none"),
                      f"{b.client_ms:.3f}", f"{b.queue_ms:.3f}", f"{b.compute_input_ms:.3f}",
                      f"{b.compute_infer_ms:.3f}", f"{b.compute_output_ms:.3f}", f"{b.rest_ms:.3f}", share, counted,
                      b.source))
    return render(headers, lines, right=range(1, len(headers) - 1))
