"""The served sweep's report: one row per (model, batch size, concurrency), as a table, JSON and back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtrepo._table import render
from trtrepo.bench.breakdown import RequestBreakdown, breakdown_table
from trtrepo.bench.stats import LatencyStats, ratio

REPORT_SCHEMA = "trtrepo-bench/1"
TOOL_PERF_ANALYZER = "perf_analyzer"
TOOL_OWN_LOOP = "trtrepo-loop"


@dataclass(frozen=True)
class BenchRow:
    """One (model, batch size, concurrency) measurement, served and eager.

    Attributes:
        model: Model name.
        batch_size: Samples per request (dim 0 of every input).
        concurrency: Requests in flight.
        client: The tool that measured the served side: ``perf_analyzer`` or ``trtrepo-loop`` (trtrepo's load
            loop; reports before this name say ``tritonclient-http``).
        served: Served request latency.
        served_ips: Served inferences (samples) per second.
        eager: Eager forward() latency on the same inputs (concurrency does not apply: one stream).
        eager_ips: Eager inferences per second (batch / mean latency).
        errors: Failed requests in the measurement.
        server_queue_ms: Average time requests waited in Triton's queue, when known.
        server_compute_ms: Average time of the backend's compute (infer), when known.
        fallback: Why perf_analyzer did not measure this row although it was in use (one line), else None.
        shared_memory: How the tensors travelled: ``none`` (in the request body), ``system`` or ``cuda``.
        breakdown: The mean request split into client total, server queue, compute input/infer/output and the
            rest (:mod:`trtrepo.bench.breakdown`), when the server's statistics were available.
    """

    model: str
    batch_size: int
    concurrency: int
    client: str
    served: LatencyStats
    served_ips: float
    eager: LatencyStats | None = None
    eager_ips: float | None = None
    errors: int = 0
    server_queue_ms: float | None = None
    server_compute_ms: float | None = None
    fallback: str | None = None
    shared_memory: str = "none"
    breakdown: RequestBreakdown | None = None

    @property
    def p50_ratio(self) -> float | None:
        """Served p50 / eager p50 (None without an eager measurement)."""
        return ratio(self.served.p50_ms, self.eager.p50_ms if self.eager else None)

    @property
    def p99_ratio(self) -> float | None:
        """Served p99 / eager p99 (None without an eager measurement)."""
        return ratio(self.served.p99_ms, self.eager.p99_ms if self.eager else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ratios included."""
        out = asdict(self)
        out["breakdown"] = self.breakdown.to_dict() if self.breakdown is not None else None
        out["p50_ratio"] = self.p50_ratio
        out["p99_ratio"] = self.p99_ratio
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BenchRow:
        """Rebuild a row from :meth:`to_dict` output."""
        values = {k: v for k, v in raw.items() if k not in ("p50_ratio", "p99_ratio")}
        values["served"] = LatencyStats(**values["served"])
        values["eager"] = LatencyStats(**values["eager"]) if values.get("eager") else None
        values["breakdown"] = RequestBreakdown.from_dict(values["breakdown"]) if values.get("breakdown") else None
        return cls(**values)


@dataclass
class BenchReport:
    """Everything one ``trtrepo bench`` run measured, and where it ran.

    Attributes:
        spec: The model.yaml path.
        url: The HTTP endpoint that was measured.
        device: Where eager ran (``cuda:0 (NVIDIA H100 ...)`` or ``cpu``).
        environment: Versions and machine facts (torch, tritonserver, GPU, CPU count, ...).
        rows: The measurements.
        notes: One-line remarks (skipped plots, fallbacks, perf_analyzer replicating one sample per batch, ...).
        plots: Paths of the PNG files written.
    """

    spec: str
    url: str
    device: str
    environment: dict[str, Any] = field(default_factory=dict)
    rows: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def table(self) -> str:
        """An aligned text table, one line per row."""
        headers = ("model", "batch", "conc", "client", "p50 ms", "p90 ms", "p99 ms", "inf/s",
                   "eager p50", "eager inf/s", "p50 x", "p99 x", "queue ms", "compute ms", "err")
        rows = [(r.model, r.batch_size, r.concurrency, r.client,
                 fmt(r.served.p50_ms), fmt(r.served.p90_ms), fmt(r.served.p99_ms), fmt(r.served_ips, 1),
                 fmt(r.eager.p50_ms if r.eager else None), fmt(r.eager_ips, 1),
                 fmt(r.p50_ratio, 2), fmt(r.p99_ratio, 2),
                 fmt(r.server_queue_ms), fmt(r.server_compute_ms), r.errors) for r in self.rows]
        return render(headers, rows, right=range(1, len(headers)))

    def breakdown_table(self) -> str:
        """Per row with a breakdown: client total, server queue, compute input/infer/output, the rest (ms)."""
        return breakdown_table(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schema": REPORT_SCHEMA,
            "spec": self.spec,
            "url": self.url,
            "device": self.device,
            "environment": self.environment,
            "rows": [r.to_dict() for r in self.rows],
            "notes": self.notes,
            "plots": self.plots,
        }

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchReport:
        """Rebuild a report from :meth:`to_dict` output (for comparing runs)."""
        return cls(spec=data["spec"], url=data["url"], device=data["device"],
                   environment=dict(data.get("environment", {})),
                   rows=[BenchRow.from_dict(raw) for raw in data.get("rows", [])],
                   notes=list(data.get("notes", [])), plots=list(data.get("plots", [])))

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (parents created)."""
        return write_json(path, self.to_json())


def fmt(value: float | None, digits: int = 3) -> str:
    """A table cell: ``value`` with ``digits`` decimals, ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def write_json(path: str | Path, text: str) -> Path:
    """Write ``text`` and a newline to ``path`` through a temporary file, so a reader never sees half a report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(target)
    return target
