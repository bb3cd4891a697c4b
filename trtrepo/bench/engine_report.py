"""The engine benchmark's report: per engine and batch size its runs, warm-up and parity; ratios to eager within
each run; table, summary, JSON and plot. Filled by :func:`trtrepo.bench.engines.run_engines`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo._table import render
from trtrepo.bench.report import fmt, write_json
from trtrepo.bench.stats import LatencyStats, Spread, ratio, throughput
from trtrepo.bench.timing import WarmUp

ENGINES_SCHEMA = "trtrepo-bench-engines/1"
BASELINE = "eager"

# What an engine stands for when choosing what to ship.
SERVED_TORCH = "torch target (served today)"
SERVED_TENSORRT = "tensorrt target"
CANDIDATE = "candidate (not served yet)"
REFERENCE = "reference (not deployable)"


@dataclass(frozen=True)
class EngineRun:
    """One run of one engine at one batch size."""

    latency: LatencyStats
    pipelined_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"latency": dataclasses.asdict(self.latency), "pipelined_ms": self.pipelined_ms}


@dataclass
class EngineResult:
    """One engine at one batch size: its runs, warm-up, parity against eager, or the error that stopped it."""

    model: str
    engine: str
    batch_size: int
    runs: list[EngineRun] = field(default_factory=list)
    warmup: WarmUp | None = None
    max_abs_error: float | None = None
    parity_ok: bool | None = None
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    max_abs_error_fp32: float | None = None  # against an fp32 run of the eager model (fp16/bf16 models)
    eager_error_fp32: float | None = None  # eager's own error against that fp32 run: the noise floor
    parity_basis: str = "eager (elementwise atol/rtol)"

    @property
    def p50(self) -> Spread | None:
        """Per-call p50 (ms) over the runs."""
        return Spread.of([r.latency.p50_ms for r in self.runs]) if self.runs else None

    @property
    def p90(self) -> Spread | None:
        """Per-call p90 (ms) over the runs."""
        return Spread.of([r.latency.p90_ms for r in self.runs]) if self.runs else None

    @property
    def pipelined(self) -> Spread | None:
        """Pipelined ms per call over the runs."""
        return Spread.of([r.pipelined_ms for r in self.runs]) if self.runs else None

    def throughput(self) -> float | None:
        """Samples per second at the median pipelined time per call."""
        spread = self.pipelined
        return throughput(self.batch_size, spread.median / 1e3) if spread else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"model": self.model, "engine": self.engine, "batch_size": self.batch_size,
                "runs": [r.to_dict() for r in self.runs],
                "p50_ms": _spread_dict(self.p50), "p90_ms": _spread_dict(self.p90),
                "pipelined_ms": _spread_dict(self.pipelined), "throughput_per_s": self.throughput(),
                "warmup": dataclasses.asdict(self.warmup) if self.warmup else None,
                "max_abs_error": self.max_abs_error, "parity_ok": self.parity_ok, "error": self.error,
                "max_abs_error_fp32": self.max_abs_error_fp32, "eager_error_fp32": self.eager_error_fp32,
                "parity_basis": self.parity_basis, "facts": self.facts}


def _spread_dict(s: Spread | None) -> dict[str, Any] | None:
    return None if s is None else {"median": s.median, "low": s.low, "high": s.high, "runs": s.runs,
                                   "relative_spread": s.relative}


def run_ratios(baseline: EngineResult | None, other: EngineResult, pipelined: bool = False) -> Spread | None:
    """Speed-up of ``other`` over ``baseline`` within each run (baseline time / other time), over the runs."""
    if baseline is None or not baseline.runs or not other.runs:
        return None
    values = []
    for b, o in zip(baseline.runs, other.runs, strict=False):
        r = ratio(b.pipelined_ms, o.pipelined_ms) if pipelined else ratio(b.latency.p50_ms, o.latency.p50_ms)
        if r is not None:
            values.append(r)
    return Spread.of(values) if values else None


@dataclass
class EngineStatus:
    """An engine of this run: skipped (why), failed to build (why), or built (how long, what it reported)."""

    name: str
    help: str
    serves_as: str
    skipped: str | None = None
    error: str | None = None
    build_s: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class EnginesReport:
    """Everything one ``trtrepo bench engines`` run measured.

    ``roles`` maps an engine name to what it stands for (``SERVED_TORCH``...) and its plan lowering (``native`` for the
    native-aten ceiling, else None); engines not listed count as references.
    """

    spec: str
    device: str
    clock: str
    environment: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    engines: dict[str, list[EngineStatus]] = field(default_factory=dict)
    results: list[EngineResult] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    roles: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def role(self, engine: str) -> tuple[str, str | None]:
        """(what ``engine`` stands for, its plan lowering)."""
        return self.roles.get(engine, (REFERENCE, None))

    def result(self, model: str, engine_name: str, batch: int) -> EngineResult | None:
        """The result of one engine at one batch size, if measured."""
        for r in self.results:
            if (r.model, r.engine, r.batch_size) == (model, engine_name, batch):
                return r
        return None

    def speedup(self, r: EngineResult, pipelined: bool = False) -> Spread | None:
        """``r``'s speed-up over eager in the same runs."""
        return run_ratios(self.result(r.model, BASELINE, r.batch_size), r, pipelined)

    def table(self) -> str:
        """One line per (model, batch, engine): p50 and pipelined times with their run range, ratios to eager."""
        rows = []
        for r in self.results:
            if r.error:
                rows.append((r.model, r.batch_size, r.engine, "failed", "-", "-", "-", "-", "-", "-", "-",
                             r.error[:60]))
                continue
            up, up_pipe = self.speedup(r), self.speedup(r, pipelined=True)
            warm = f"{r.warmup.calls}/{r.warmup.seconds:.1f}s{'' if r.warmup.settled else '!'}" if r.warmup else "-"
            rows.append((r.model, r.batch_size, r.engine, r.p50.text(4) if r.p50 else "-",
                         fmt(r.p90.median if r.p90 else None, 4), r.pipelined.text(4) if r.pipelined else "-",
                         fmt(r.throughput(), 0), up.text(2, "x") if up else "-",
                         up_pipe.text(2, "x") if up_pipe else "-",
                         "-" if r.max_abs_error is None else f"{r.max_abs_error:.1e}"
                         + ("" if r.parity_ok in (None, True) else " MISMATCH"),
                         "-" if r.max_abs_error_fp32 is None else f"{r.max_abs_error_fp32:.1e}", warm))
        return render(("model", "batch", "engine", "p50 ms (runs)", "p90 ms", "pipelined ms (runs)", "samples/s",
                       "x eager p50", "x eager pipe", "max|err| vs eager", "vs fp32", "warm-up"), rows, right=(1, 6))

    def summary(self) -> str:
        """Per model and batch: the fastest engine of each kind of deployment, as a ratio to eager."""
        lines = [f"SUMMARY engines on {self.device} ({self.clock}); speed-up = eager p50 / engine p50, median of "
                 f"{self.options.get('runs')} runs (range)"]
        skipped = [f"{s.name} ({s.skipped})" for ss in self.engines.values() for s in ss if s.skipped]
        for key in sorted({(r.model, r.batch_size) for r in self.results}):
            measured = [r for r in self.results if (r.model, r.batch_size) == key and r.runs and r.parity_ok
                        is not False]
            parts = []
            for group in (SERVED_TORCH, SERVED_TENSORRT, CANDIDATE, REFERENCE):
                members = [r for r in measured if self.role(r.engine)[0] == group and r.engine != BASELINE]
                if not members:
                    continue
                best = min(members, key=lambda r: r.p50.median if r.p50 else float("inf"))
                up = self.speedup(best)
                parts.append(f"{group.split(' (')[0]}: {best.engine} {up.text(2, 'x') if up else '-'}")
            deployable = [r for r in measured if self.role(r.engine)[0] in (SERVED_TENSORRT, CANDIDATE)]
            ceiling = [r for r in measured if self.role(r.engine)[1] == "native"]
            if deployable and ceiling:
                best = min(deployable, key=lambda r: r.p50.median if r.p50 else float("inf"))
                top = min(ceiling, key=lambda r: r.p50.median if r.p50 else float("inf"))
                vs = run_ratios(top, best)
                parts.append(f"{best.engine} vs {top.engine}: {vs.text(2, 'x') if vs else '-'}")
            lines.append(f"  {key[0]} batch {key[1]}: " + "; ".join(parts))
        if skipped:
            lines.append(f"  skipped: {', '.join(skipped)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (every run's numbers, the spreads, the ratios)."""
        results = []
        for r in self.results:
            entry = r.to_dict()
            entry["speedup_p50"] = _spread_dict(self.speedup(r))
            entry["speedup_pipelined"] = _spread_dict(self.speedup(r, pipelined=True))
            results.append(entry)
        return {"schema": ENGINES_SCHEMA, "spec": self.spec, "device": self.device, "clock": self.clock,
                "environment": self.environment, "options": self.options,
                "engines": {m: [dataclasses.asdict(s) for s in ss] for m, ss in self.engines.items()},
                "results": results, "facts": self.facts, "notes": self.notes, "files": self.files}

    def write(self, out: Path) -> list[str]:
        """engines.json, engines.txt and engines.png (when matplotlib is there) under ``out``."""
        from trtrepo.bench.plots import bar_plot

        out.mkdir(parents=True, exist_ok=True)
        written = [str(write_json(out / "engines.json", json.dumps(self.to_dict(), indent=2, default=str)))]
        (out / "engines.txt").write_text(self.table() + "\n\n" + self.summary() + "\n")
        written.append(str(out / "engines.txt"))
        panels: dict[str, dict[str, list[tuple[int, float, float, float]]]] = {}
        for r in self.results:
            up = self.speedup(r)
            if up is not None:
                panels.setdefault(f"{r.model}: speed-up over eager (p50 per call)", {}).setdefault(
                    r.engine, []).append((r.batch_size, up.median, up.low, up.high))
        plot = bar_plot(out / "engines.png", f"trtrepo bench engines — {self.device}", panels,
                        "eager p50 / engine p50 (higher is faster)") if panels else None
        if plot:
            written.append(plot)
        self.files = written
        return written
