"""``trtrepo bench``: latency and throughput of the served models against eager PyTorch, in one run.

For every model and batch size the same seeded inputs go to two places: the eager module (with the custom ops
loaded, on the device the build used) and the served model, which is driven at each concurrency level either by
``perf_analyzer`` (when it is on PATH; its ``-f`` CSV is parsed) or by trtrepo's own load loop (one tritonclient
HTTP client per thread, a bounded request count and a bounded time, loopback only). A level perf_analyzer cannot
measure (no stable measurement within its trials, no CSV row, a timeout) is measured by the own load loop instead,
with one warning; each row records which tool measured it. Each row holds p50/p90/p99
latency and inferences per second of both, and the served/eager latency ratio. The report is a table, a JSON file,
and PNG plots (latency vs concurrency; parity error histogram from a ``trtrepo check`` JSON report).

What the two numbers mean differs on purpose: eager latency is one forward() on inputs already on the device
(synchronised), served latency is a whole request as a client sees it (serialisation, HTTP, queueing, copies,
the backend). The ratio is what serving costs on top of the model.

Environment:
    TRTREPO_PERF_ANALYZER: path of perf_analyzer, or ``0`` to never use it (the own load loop then runs).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import settings
from trtrepo.errors import ServeError, SpecError

if TYPE_CHECKING:
    import numpy as np

    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

ENV_PERF_ANALYZER = settings.PERF_ANALYZER.name
DEFAULT_CONCURRENCY = (1, 4, 16)
DEFAULT_REQUESTS = 200
DEFAULT_MAX_SECONDS = 20.0
DEFAULT_WARMUP = 3
DEFAULT_SEED = 0
REPORT_SCHEMA = "trtrepo-bench/1"
PERF_ANALYZER_TIMEOUT_PAD = 60.0
# perf_analyzer's default 10 % stability window fails at high concurrency on a shared loopback (seen on an H200 at
# concurrency 16: "Failed to obtain stable measurement within 5 measurement windows"); p50/p99 of 400 requests are
# still meaningful with 25 %, and more trials give it more chances before trtrepo's own loop takes over.
PA_STABILITY_PERCENTAGE = 25
PA_MAX_TRIALS = 10
TOOL_PERF_ANALYZER = "perf_analyzer"
TOOL_OWN_LOOP = "trtrepo-loop"


# ------------------------------------------------------------------------------------------------ statistics
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
        if not samples:
            raise ValueError("no latency samples")
        ms = [s * 1e3 for s in samples]
        return cls(p50_ms=percentile(ms, 50), p90_ms=percentile(ms, 90), p99_ms=percentile(ms, 99),
                   mean_ms=sum(ms) / len(ms), count=len(ms), min_ms=min(ms), max_ms=max(ms))


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

    @property
    def p50_ratio(self) -> float | None:
        """Served p50 / eager p50 (None without an eager measurement)."""
        return _ratio(self.served.p50_ms, self.eager.p50_ms if self.eager else None)

    @property
    def p99_ratio(self) -> float | None:
        """Served p99 / eager p99 (None without an eager measurement)."""
        return _ratio(self.served.p99_ms, self.eager.p99_ms if self.eager else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ratios included."""
        out = asdict(self)
        out["p50_ratio"] = self.p50_ratio
        out["p99_ratio"] = self.p99_ratio
        return out


def _ratio(num: float, den: float | None) -> float | None:
    return num / den if den else None


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
        """A fixed-width text table, one line per row."""
        headers = ("model", "batch", "conc", "client", "p50 ms", "p90 ms", "p99 ms", "inf/s",
                   "eager p50", "eager inf/s", "p50 x", "p99 x", "queue ms", "compute ms", "err")
        lines = [headers]
        for r in self.rows:
            lines.append((
                r.model, str(r.batch_size), str(r.concurrency), r.client,
                _fmt(r.served.p50_ms), _fmt(r.served.p90_ms), _fmt(r.served.p99_ms), _fmt(r.served_ips, 1),
                _fmt(r.eager.p50_ms if r.eager else None), _fmt(r.eager_ips, 1),
                _fmt(r.p50_ratio, 2), _fmt(r.p99_ratio, 2),
                _fmt(r.server_queue_ms), _fmt(r.server_compute_ms), str(r.errors),
            ))
        widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
        text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                          for i, (cell, w) in enumerate(zip(line, widths, strict=True))) for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)

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
        rows = []
        for raw in data.get("rows", []):
            values = {k: v for k, v in raw.items() if k not in ("p50_ratio", "p99_ratio")}
            values["served"] = LatencyStats(**values["served"])
            values["eager"] = LatencyStats(**values["eager"]) if values.get("eager") else None
            rows.append(BenchRow(**values))
        return cls(spec=data["spec"], url=data["url"], device=data["device"],
                   environment=dict(data.get("environment", {})), rows=rows, notes=list(data.get("notes", [])),
                   plots=list(data.get("plots", [])))

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` (parents created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json() + "\n")
        return target


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


# -------------------------------------------------------------------------------------------- load generation
@dataclass(frozen=True)
class LoadResult:
    """Raw outcome of one load level: per-request latencies (s), the measured wall time (s), failures."""

    latencies_s: tuple[float, ...]
    wall_s: float
    errors: int
    first_error: str | None = None


def run_load(worker_factory: Callable[[], Callable[[], Any]], concurrency: int, requests: int,
             max_seconds: float = DEFAULT_MAX_SECONDS, warmup: int = DEFAULT_WARMUP) -> LoadResult:
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

    Raises:
        ServeError: A thread could not start (client creation or warm-up failed), or every request failed.
    """
    if concurrency < 1 or requests < 1:
        raise ValueError(f"concurrency and requests must be >= 1, got {concurrency}, {requests}")
    lock = threading.Lock()
    state: dict[str, Any] = {"remaining": requests, "start": 0.0, "end": 0.0}
    latencies: list[float] = []
    failures: list[str] = []
    setup_errors: list[BaseException] = []

    def mark_start() -> None:
        state["start"] = time.perf_counter()

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
        deadline = state["start"] + max_seconds
        while True:
            with lock:
                if state["remaining"] <= 0 or time.perf_counter() > deadline:
                    break
                state["remaining"] -= 1
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
                state["end"] = max(state["end"], t1)

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
    wall = state["end"] - state["start"]
    return LoadResult(tuple(latencies), wall, len(failures), failures[0] if failures else None)


def server_stats_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Average queue and compute-infer time (ms) per request between two Triton statistics snapshots.

    Args:
        before: ``model_stats[i]`` of ``/v2/models/<m>/stats`` (tritonclient ``get_inference_statistics``) taken
            before the measurement.
        after: The same entry afterwards.

    Returns:
        (queue_ms, compute_ms); None where no request was counted.
    """
    out: list[float | None] = []
    for key in ("queue", "compute_infer"):
        b = before.get("inference_stats", {}).get(key, {})
        a = after.get("inference_stats", {}).get(key, {})
        count = int(a.get("count", 0)) - int(b.get("count", 0))
        ns = int(a.get("ns", 0)) - int(b.get("ns", 0))
        out.append(ns / count / 1e6 if count > 0 else None)
    return out[0], out[1]


# ------------------------------------------------------------------------------------------------ perf_analyzer
def find_perf_analyzer() -> str | None:
    """perf_analyzer from ``$TRTREPO_PERF_ANALYZER`` or PATH; None when absent or disabled (``=0``)."""
    value = settings.perf_analyzer()
    if value == "0":
        return None
    if value:
        return value if Path(value).is_file() and os.access(value, os.X_OK) else None
    return shutil.which("perf_analyzer")


@dataclass(frozen=True)
class PerfAnalyzerRow:
    """One concurrency level of a perf_analyzer CSV, latencies converted to milliseconds."""

    concurrency: int
    inferences_per_second: float
    latency: LatencyStats
    server_queue_ms: float | None
    server_compute_ms: float | None


# Columns whose sum is the average request latency when the CSV has no "Avg latency" column (older releases).
_PA_COMPONENTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
                  "Server Compute Infer", "Server Compute Output", "Server Compute", "Client Recv")


def parse_perf_analyzer_csv(text: str) -> list[PerfAnalyzerRow]:
    """Parse perf_analyzer's ``-f`` CSV (latencies in microseconds), rows sorted by concurrency.

    Raises:
        ServeError: The header lacks the concurrency, throughput or percentile columns.
    """
    reader = csv.DictReader(io.StringIO(text.strip()))
    fields = set(reader.fieldnames or ())
    needed = ("Concurrency", "Inferences/Second", "p50 latency", "p90 latency", "p99 latency")
    missing = [c for c in needed if c not in fields]
    if missing:
        raise ServeError(f"perf_analyzer CSV lacks columns {missing} (has {sorted(fields)})",
                         hint=f"set {ENV_PERF_ANALYZER}=0 to use trtrepo's own load loop")
    rows = []
    for raw in reader:
        if not raw.get("Concurrency"):
            continue

        def us(col: str, raw: dict[str, str] = raw) -> float | None:
            value = raw.get(col)
            return float(value) / 1e3 if value not in (None, "") else None

        mean = us("Avg latency")
        if mean is None:
            parts = [us(c) for c in _PA_COMPONENTS if c in fields]
            mean = sum(p for p in parts if p is not None)
        stats = LatencyStats(p50_ms=us("p50 latency") or 0.0, p90_ms=us("p90 latency") or 0.0,
                             p99_ms=us("p99 latency") or 0.0, mean_ms=mean)
        rows.append(PerfAnalyzerRow(
            concurrency=int(float(raw["Concurrency"])),
            inferences_per_second=float(raw["Inferences/Second"]),
            latency=stats,
            server_queue_ms=us("Server Queue"),
            server_compute_ms=us("Server Compute Infer") if "Server Compute Infer" in fields else us("Server Compute"),
        ))
    return sorted(rows, key=lambda r: r.concurrency)


def perf_analyzer_input_data(arrays: Mapping[str, Any], triton_dtypes: Mapping[str, str],
                             batched: bool) -> dict[str, Any]:
    """perf_analyzer ``--input-data`` JSON holding the given tensors as base64 bytes.

    For a batching model (max_batch_size > 0) perf_analyzer takes one sample (no batch dim) and repeats it ``-b``
    times, so the first sample of each input is sent.

    Args:
        arrays: Input name → numpy array (batch dim included). BF16 inputs are given as the uint16 bit pattern.
        triton_dtypes: Input name → Triton datatype (``FP32``, ``BF16``, ...), for the record only.
        batched: True for a batching model.
    """
    entry = {}
    for name, arr in arrays.items():
        sample = arr[0] if batched else arr
        entry[name] = {"b64": base64.b64encode(sample.tobytes()).decode("ascii"), "shape": list(sample.shape)}
        LOGGER.debug("perf_analyzer input %s: %s %s", name, triton_dtypes.get(name), list(sample.shape))
    return {"data": [entry]}


def perf_analyzer_command(binary: str, model: str, version: int, url: str, concurrency: int, batch_size: int,
                          batched: bool, input_data: Path, csv_path: Path, requests: int) -> list[str]:
    """The perf_analyzer command line for one concurrency level."""
    cmd = [binary, "-m", model, "-x", str(version), "-u", url, "-i", "http",
           f"--concurrency-range={concurrency}:{concurrency}", f"--input-data={input_data}",
           "--measurement-mode=count_windows", f"--measurement-request-count={requests}",
           f"--stability-percentage={PA_STABILITY_PERCENTAGE}", f"--max-trials={PA_MAX_TRIALS}", "-f", str(csv_path)]
    if batched:
        cmd += ["-b", str(batch_size)]
    return cmd


class PerfAnalyzerNoMeasurement(ServeError):
    """perf_analyzer ran but gave no usable measurement (unstable, no CSV row, timed out): measure another way."""


_UNSTABLE = re.compile(r"failed to obtain stable measurement[^\n]*", re.IGNORECASE)


def perf_analyzer_unstable(output: str) -> str | None:
    """The line of perf_analyzer's output saying it could not stabilise the measurement, or None.

    perf_analyzer 2.60 prints ``Failed to obtain stable measurement within 5 measurement windows for concurrency 16.
    Please try to increase the --measurement-request-count.`` and may still exit 0.
    """
    match = _UNSTABLE.search(output)
    return match.group(0).strip() if match else None


def perf_analyzer_result(returncode: int, output: str, csv_text: str | None, command: str) -> PerfAnalyzerRow:
    """Decide what one perf_analyzer run measured.

    Args:
        returncode: Its exit status.
        output: Its stdout and stderr.
        csv_text: The ``-f`` CSV it wrote, None if it wrote none.
        command: The command line, for the reproduce hint.

    Returns:
        The measured row.

    Raises:
        PerfAnalyzerNoMeasurement: It could not stabilise, or exited 0 without a CSV row (the level can be
            measured by the own load loop).
        ServeError: It failed otherwise (bad arguments, model unknown, server unreachable): a real error.
    """
    hint = f"reproduce: {command}; or set {ENV_PERF_ANALYZER}=0"
    unstable = perf_analyzer_unstable(output)
    if unstable:
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer: {unstable} (exit {returncode})", hint=hint)
    rows = parse_perf_analyzer_csv(csv_text) if csv_text and csv_text.strip() else []
    if returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise ServeError(f"perf_analyzer failed (exit {returncode}): {tail}", hint=hint)
    if not rows:
        tail = " | ".join(output.strip().splitlines()[-2:]) or "no output"
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer exited 0 without a measurement ({tail})", hint=hint)
    return rows[0]


def run_perf_analyzer(cmd: list[str], csv_path: Path, timeout: float) -> PerfAnalyzerRow:
    """Run one perf_analyzer command (:func:`perf_analyzer_command`) and read its ``-f`` CSV at ``csv_path``.

    Raises:
        PerfAnalyzerNoMeasurement: No usable measurement (see :func:`perf_analyzer_result`) or a timeout.
        ServeError: perf_analyzer failed otherwise.
    """
    LOGGER.info("running: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer did not finish in {timeout:.0f} s",
                                        hint=f"reproduce: {' '.join(cmd)}") from None
    output = "\n".join(part for part in (proc.stdout, proc.stderr) if part)
    csv_text = csv_path.read_text() if csv_path.is_file() else None
    return perf_analyzer_result(proc.returncode, output, csv_text, " ".join(cmd))


# ------------------------------------------------------------------------------------------------ inputs / eager
def batch_sizes_for(model: ModelSpec, requested: Sequence[int] | None) -> tuple[int, ...]:
    """The batch sizes to measure for ``model``: ``requested`` validated, or the opt batch of its profile.

    A batch size sets dim 0 of every input whose dim 0 is dynamic; it must lie within every such input's min..max
    and, for a batching model, not exceed ``max_batch_size``.

    Raises:
        SpecError: A batch size the model cannot take (message names the input and its range).
    """
    dynamic = [t for t in model.inputs if t.shape and t.shape[0] == -1]
    default = dynamic[0].opt[0] if dynamic else model.inputs[0].shape[0]
    if not requested:
        return (default,)
    max_batch = model.triton.max_batch_size
    for b in requested:
        if not dynamic and b != default:
            raise SpecError(f"{model.yaml_path}.inputs: batch size {b} impossible, dim 0 is static ({default})",
                            hint="make dim 0 dynamic (-1 with min/opt/max) or drop --batch-size")
        for t in dynamic:
            if not t.min[0] <= b <= t.max[0]:
                raise SpecError(f"{model.yaml_path}.inputs.{t.name}: batch size {b} is outside dim 0 range "
                                f"{t.min[0]}..{t.max[0]}", hint="pick batch sizes within the profile's min..max")
        if max_batch and b > max_batch:
            raise SpecError(f"{model.yaml_path}.triton.max_batch_size: batch size {b} is above {max_batch}")
    return tuple(dict.fromkeys(requested))


def bench_inputs(model: ModelSpec, batch_size: int, seed: int = DEFAULT_SEED) -> tuple[Any, ...]:
    """Seeded inputs (CPU torch tensors) at the opt shape with dim 0 set to ``batch_size`` where it is dynamic."""
    from trtrepo.samples import sample_inputs

    tensors = tuple(
        replace(t, opt=(batch_size, *t.opt[1:])) if t.shape and t.shape[0] == -1 else t for t in model.inputs
    )
    return sample_inputs(tensors, "opt", "cpu", seed)


def time_eager(fn: Callable[[], Any], iterations: int, warmup: int = DEFAULT_WARMUP,
               synchronize: Callable[[], None] | None = None, max_seconds: float = DEFAULT_MAX_SECONDS) -> LoadResult:
    """Time ``fn()`` one call at a time (``synchronize`` after each call, e.g. torch.cuda.synchronize)."""
    sync = synchronize or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    start = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - start > max_seconds:
            break
    return LoadResult(tuple(samples), time.perf_counter() - start, 0)


def _eager_device() -> str:
    from trtrepo.deps import has_cuda_torch

    return "cuda" if has_cuda_torch() else "cpu"


# --------------------------------------------------------------------------------------------------- the sweep
def run_bench(spec_path: str | Path, *, concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
              requests: int = DEFAULT_REQUESTS, batch_sizes: Sequence[int] | None = None,
              models: Sequence[str] | None = None, report_path: str | Path | None = None,
              plot_dir: str | Path | None = None, url_http: str | None = None,
              parity_report: str | Path | None = None, max_seconds: float = DEFAULT_MAX_SECONDS,
              eager: bool = True, repository: str | Path | None = None,
              progress: Callable[[str], None] = LOGGER.info) -> BenchReport:
    """Measure the served models of a built repository against eager PyTorch.

    Args:
        spec_path: The model.yaml whose repository was built (``trtrepo build``).
        concurrency: Concurrency levels to sweep.
        requests: Timed requests per level (and eager iterations per batch size).
        batch_sizes: Batch sizes (dim 0) to measure; default: each model's opt batch.
        models: Model names to measure; default: all models of the spec.
        report_path: Where to write the JSON report.
        plot_dir: Where to write PNG plots (needs matplotlib; skipped with a note otherwise).
        url_http: ``host:port`` of a running server; default: start tritonserver on the spec's repository.
        parity_report: A ``trtrepo check`` JSON report whose errors are plotted as a histogram.
        max_seconds: Upper bound on the time of each load level and each eager measurement.
        eager: Also time eager PyTorch (the ratio columns need it).
        repository: Serve this repository instead of the spec's ``repository:`` (a ``trtrepo build --out``).
        progress: Callback for one-line progress messages.

    Returns:
        The report (also written to ``report_path`` when given).

    Raises:
        SpecError: Bad model names, batch sizes or concurrency levels.
        ServeError: The server does not start, or requests fail.
        MissingDependencyError: tritonclient (own load loop) or torch (eager) is missing.
    """
    from trtrepo.deps import require
    from trtrepo.spec import load_spec

    spec = load_spec(spec_path)
    levels = tuple(dict.fromkeys(int(c) for c in concurrency))
    if not levels or min(levels) < 1:
        raise SpecError(f"--concurrency: levels must be integers >= 1, got {list(concurrency)}")
    if requests < 1:
        raise SpecError(f"--requests: must be >= 1, got {requests}")
    chosen = [spec.model(m) for m in models] if models else list(spec.models)
    plan = [(m, batch_sizes_for(m, batch_sizes)) for m in chosen]
    perf_analyzer = find_perf_analyzer()
    if perf_analyzer is None:
        require("tritonclient", "trtrepo bench's load loop")

    device = "cpu"
    report = BenchReport(spec=str(spec.path), url=url_http or "", device=device)
    eager_results: dict[tuple[str, int], LoadResult] = {}
    inputs: dict[tuple[str, int], tuple[Any, ...]] = {}
    for model, sizes in plan:
        for b in sizes:
            inputs[(model.name, b)] = bench_inputs(model, b, model.parity.seed)
    if eager:
        require("torch", "eager timing in trtrepo bench")
        device = _eager_device()
        from trtrepo.ops.stage import prepare_ops

        prepare_ops(spec, list(spec.models), progress=progress)
        for model, sizes in plan:
            eager_results.update(_measure_eager(spec, model, sizes, inputs, device, requests, max_seconds, progress))
    report.device = _device_label(device)
    report.environment = _environment(perf_analyzer)

    if url_http:
        _bench_served(report, url_http, plan, inputs, eager_results, levels, requests, max_seconds, perf_analyzer,
                      progress)
    else:
        from trtrepo.serve import TritonServer

        repo = Path(repository) if repository is not None else spec.repository
        log_path = Path(tempfile.gettempdir()) / f"trtrepo-bench-tritonserver-{os.getpid()}.log"
        progress(f"bench: starting tritonserver on {repo} (log {log_path})")
        with TritonServer(repo, log_path=log_path) as server:
            report.url = server.http_url
            _bench_served(report, server.http_url, plan, inputs, eager_results, levels, requests, max_seconds,
                          perf_analyzer, progress)
            server.check_alive()

    if plot_dir is not None:
        report.plots += write_plots(report, Path(plot_dir), parity_report=parity_report)
    if report_path is not None:
        report.write(report_path)
        progress(f"bench: report written to {report_path}")
    return report


def _measure_eager(spec: Spec, model: ModelSpec, sizes: Sequence[int],
                   inputs: Mapping[tuple[str, int], tuple[Any, ...]], device: str, requests: int,
                   max_seconds: float, progress: Callable[[str], None]) -> dict[tuple[str, int], LoadResult]:
    import torch

    from trtrepo.export import load_module

    net = load_module(model, spec.root, device)
    sync = torch.cuda.synchronize if device == "cuda" else None
    out = {}
    for b in sizes:
        args = tuple(t.to(device) for t in inputs[(model.name, b)])

        def call(args: tuple[Any, ...] = args) -> Any:
            with torch.inference_mode():
                return net(*args)

        result = time_eager(call, requests, synchronize=sync, max_seconds=max_seconds)
        stats = LatencyStats.from_seconds(result.latencies_s)
        progress(f"bench: eager {model.name} batch {b} on {device}: p50 {stats.p50_ms:.3f} ms")
        out[(model.name, b)] = result
    return out


def _bench_served(report: BenchReport, url: str, plan: Sequence[tuple[ModelSpec, tuple[int, ...]]],
                  inputs: Mapping[tuple[str, int], tuple[Any, ...]],
                  eager_results: Mapping[tuple[str, int], LoadResult], levels: Sequence[int], requests: int,
                  max_seconds: float, perf_analyzer: str | None, progress: Callable[[str], None]) -> None:
    report.environment.update(_server_facts(url))
    for model, sizes in plan:
        for b in sizes:
            eager_result = eager_results.get((model.name, b))
            eager_stats = LatencyStats.from_seconds(eager_result.latencies_s) if eager_result else None
            eager_ips = throughput(b, eager_stats.mean_ms / 1e3) if eager_stats else None
            arrays = _numpy_inputs(model, inputs[(model.name, b)])
            for c in levels:
                row = measure_level(perf_analyzer, url, model, b, c, arrays, requests, max_seconds)
                row = replace(row, eager=eager_stats, eager_ips=eager_ips)
                progress(f"bench: {model.name} batch {b} concurrency {c}: p50 {row.served.p50_ms:.3f} ms, "
                         f"{row.served_ips:.1f} inf/s ({row.client})")
                report.rows.append(row)
    if perf_analyzer is not None and any(m.triton.max_batch_size > 0 for m, _ in plan):
        report.notes.append("perf_analyzer repeats the first sample of each input -b times for batching models")
    fallbacks = [r for r in report.rows if r.fallback]
    if fallbacks:
        report.notes.append(f"{len(fallbacks)} level(s) measured by {TOOL_OWN_LOOP} because perf_analyzer gave no "
                            f"measurement (see each row's fallback)")


def measure_level(perf_analyzer: str | None, url: str, model: ModelSpec, batch: int, concurrency: int,
                  arrays: Mapping[str, Any], requests: int, max_seconds: float) -> BenchRow:
    """Measure one load level with perf_analyzer when given, else (or when it gives no measurement) the own loop.

    An unstable or missing perf_analyzer measurement logs one warning and falls back to trtrepo's load loop; the
    row's ``fallback`` says why. Other perf_analyzer failures raise.

    Raises:
        ServeError: perf_analyzer failed for another reason, or the own loop's requests all failed.
    """
    if perf_analyzer is None:
        return _level_own_loop(url, model, batch, concurrency, arrays, requests, max_seconds)
    try:
        return _level_perf_analyzer(perf_analyzer, url, model, batch, concurrency, arrays, requests, max_seconds)
    except PerfAnalyzerNoMeasurement as exc:
        LOGGER.warning("%s batch %d concurrency %d: %s; measuring this level with %s instead", model.name, batch,
                       concurrency, exc.message, TOOL_OWN_LOOP)
        row = _level_own_loop(url, model, batch, concurrency, arrays, requests, max_seconds)
        return replace(row, fallback=exc.message)


def _numpy_inputs(model: ModelSpec, tensors: tuple[Any, ...]) -> dict[str, np.ndarray]:
    """Input name → numpy array as the client sends it (``trtrepo.check.inputs.to_numpy``: bf16 as ml_dtypes)."""
    from trtrepo.check.inputs import to_numpy

    return {spec_t.name: to_numpy(tensor) for spec_t, tensor in zip(model.inputs, tensors, strict=True)}


def _triton_dtype(name: str) -> str:
    from trtrepo import dtypes

    return dtypes.get(name).triton


def _level_own_loop(url: str, model: ModelSpec, batch: int, concurrency: int, arrays: Mapping[str, Any],
                    requests: int, max_seconds: float) -> BenchRow:
    from trtrepo.check.client import TritonClient

    datatypes = {t.name: _triton_dtype(t.dtype) for t in model.inputs}
    output_names = [o.name for o in model.outputs]

    def factory() -> Callable[[], Any]:
        client = TritonClient("http", url)  # one per thread: tritonclient clients are not thread-safe

        def send() -> Any:
            return client.infer(model.name, arrays, output_names, datatypes)

        return send

    before = _model_stats(url, model)
    result = run_load(factory, concurrency, requests, max_seconds)
    after = _model_stats(url, model)
    queue_ms, compute_ms = server_stats_delta(before, after) if before and after else (None, None)
    if result.errors:
        LOGGER.warning("%s: %d requests failed, first: %s", model.name, result.errors, result.first_error)
    return BenchRow(model=model.name, batch_size=batch, concurrency=concurrency, client=TOOL_OWN_LOOP,
                    served=LatencyStats.from_seconds(result.latencies_s),
                    served_ips=throughput(len(result.latencies_s) * batch, result.wall_s), errors=result.errors,
                    server_queue_ms=queue_ms, server_compute_ms=compute_ms)


def _model_stats(url: str, model: ModelSpec) -> dict[str, Any] | None:
    """The model's ``/v2/models/<m>/versions/<v>/stats`` entry (queue/compute totals), None if unavailable."""
    try:
        import tritonclient.http as httpclient

        stats = httpclient.InferenceServerClient(url).get_inference_statistics(model.name, str(model.version))
    except Exception as exc:  # statistics are a bonus; the measurement stands without them
        LOGGER.debug("no statistics for %s: %s", model.name, exc)
        return None
    entries = stats.get("model_stats", []) if isinstance(stats, dict) else []
    return entries[0] if entries else None


def _level_perf_analyzer(binary: str, url: str, model: ModelSpec, batch: int, concurrency: int,
                         arrays: Mapping[str, Any], requests: int, max_seconds: float) -> BenchRow:
    batched = model.triton.max_batch_size > 0
    with tempfile.TemporaryDirectory(prefix="trtrepo-pa-") as tmp:
        data_path = Path(tmp) / "input.json"
        wire = {}
        for t in model.inputs:
            arr = arrays[t.name]
            # perf_analyzer reads raw bytes: bf16 must be the 2-byte pattern (ml_dtypes arrays already are)
            wire[t.name] = _bf16_bits(arr) if t.dtype == "bf16" and arr.dtype.itemsize == 4 else arr
        dtypes = {t.name: _triton_dtype(t.dtype) for t in model.inputs}
        data_path.write_text(json.dumps(perf_analyzer_input_data(wire, dtypes, batched)))
        csv_path = Path(tmp) / "perf.csv"
        cmd = perf_analyzer_command(binary, model.name, model.version, url, concurrency, batch, batched, data_path,
                                    csv_path, requests)
        pa = run_perf_analyzer(cmd, csv_path, timeout=max_seconds * 3 + PERF_ANALYZER_TIMEOUT_PAD)
    return BenchRow(model=model.name, batch_size=batch, concurrency=concurrency, client=TOOL_PERF_ANALYZER,
                    served=pa.latency, served_ips=pa.inferences_per_second, server_queue_ms=pa.server_queue_ms,
                    server_compute_ms=pa.server_compute_ms)


def _bf16_bits(arr: Any) -> Any:
    """float32 array → the uint16 bit pattern of its bfloat16 rounding (what goes on the wire)."""
    import torch

    return torch.from_numpy(arr.astype("float32")).to(torch.bfloat16).view(torch.int16).numpy().view("uint16")


# ----------------------------------------------------------------------------------------------- environment
def _device_label(device: str) -> str:
    if device != "cuda":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"


def _environment(perf_analyzer: str | None) -> dict[str, Any]:
    from trtrepo import __version__ as trtrepo_version  # type: ignore[attr-defined]

    env: dict[str, Any] = {
        "trtrepo": trtrepo_version,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "perf_analyzer": perf_analyzer,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name()
            env["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    except ImportError:
        pass
    return env


def _server_facts(url: str) -> dict[str, Any]:
    try:
        import tritonclient.http as httpclient

        meta = httpclient.InferenceServerClient(url).get_server_metadata()
        return {"tritonserver": meta.get("version"), "server_url": url}
    except Exception as exc:
        LOGGER.debug("no server metadata from %s: %s", url, exc)
        return {"server_url": url}


# ------------------------------------------------------------------------------------------------------ plots
def write_plots(report: BenchReport, out_dir: Path, parity_report: str | Path | None = None) -> list[str]:
    """PNG plots: served (and eager) p50/p99 latency vs concurrency per model and batch; parity error histogram.

    Returns the written paths; without matplotlib nothing is written and a note says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note = "plots skipped: matplotlib is not installed (pip install 'trtrepo[plots]')"
        LOGGER.warning(note)
        report.notes.append(note)
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    groups: dict[tuple[str, int], list[BenchRow]] = {}
    for row in report.rows:
        groups.setdefault((row.model, row.batch_size), []).append(row)
    if groups:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (model, batch), rows in sorted(groups.items()):
            rows = sorted(rows, key=lambda r: r.concurrency)
            xs = [r.concurrency for r in rows]
            line = ax.plot(xs, [r.served.p50_ms for r in rows], marker="o", label=f"{model} b{batch} served p50")
            ax.plot(xs, [r.served.p99_ms for r in rows], marker="x", linestyle="--", color=line[0].get_color(),
                    label=f"{model} b{batch} served p99")
            if rows[0].eager is not None:
                ax.axhline(rows[0].eager.p50_ms, linestyle=":", color=line[0].get_color(),
                           label=f"{model} b{batch} eager p50")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"trtrepo bench — {report.device}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        path = out_dir / "bench_latency.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if parity_report is not None:
        errors = parity_errors(json.loads(Path(parity_report).read_text()))
        if errors:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            positive = [e for e in errors if e > 0]
            floor = min(positive) if positive else 1e-12
            values = [math.log10(max(e, floor)) for e in errors]
            ax.hist(values, bins=min(50, max(5, len(values) // 2)))
            ax.set_xlabel("log10(max abs error) per compared output")
            ax.set_ylabel("count")
            ax.set_title(f"parity errors ({len(errors)} comparisons) — {Path(parity_report).name}")
            path = out_dir / "parity_errors.png"
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(str(path))
        else:
            report.notes.append(f"parity histogram skipped: no error values found in {parity_report}")
    return written


_ERROR_KEYS = ("max_abs_error", "max_abs_err", "abs_error", "max_abs")


def parity_errors(data: Any) -> list[float]:
    """Every per-comparison absolute error found in a ``trtrepo check`` JSON report (searched recursively)."""
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _ERROR_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append(float(value))
                else:
                    walk(value)
        elif isinstance(node, Iterable) and not isinstance(node, (str, bytes)):
            for item in node:
                walk(item)

    walk(data)
    return [e for e in found if math.isfinite(e)]
