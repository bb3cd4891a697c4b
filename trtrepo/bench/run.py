"""``trtrepo bench MODEL_YAML``: latency and throughput of the served models against eager PyTorch, in one run.

For every model and batch size the same seeded inputs go to two places: the eager module (with the custom ops
loaded, on the device the build used) and the served model, which is driven at each concurrency level either by
``perf_analyzer`` (when it is on PATH; its ``-f`` CSV is parsed) or by trtrepo's own load loop (one client per
thread, a bounded request count and a bounded time). A level perf_analyzer cannot measure (no stable measurement
within its trials, no CSV row, a timeout) is measured by the own load loop instead, with one warning; each row
records which tool measured it. The report is a table, a JSON file, and PNG plots.

What the two numbers mean differs on purpose: eager latency is one forward() on inputs already on the device
(synchronised), served latency is a whole request as a client sees it (serialisation, HTTP, queueing, copies,
the backend). The ratio is what serving costs on top of the model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes
from trtrepo.bench.breakdown import RequestBreakdown, breakdown_from_stats, settled_stats, success_count
from trtrepo.bench.inputs import batch_sizes_for, bench_inputs, numpy_inputs, wire_arrays
from trtrepo.bench.load import DEFAULT_MAX_SECONDS, DEFAULT_WARMUP, model_stats, run_load
from trtrepo.bench.perf_analyzer import (
    PERF_ANALYZER_TIMEOUT_PAD,
    PerfAnalyzerNoMeasurement,
    find_perf_analyzer,
    perf_analyzer_command,
    perf_analyzer_input_data,
    run_perf_analyzer,
)
from trtrepo.bench.plots import write_plots
from trtrepo.bench.report import TOOL_OWN_LOOP, TOOL_PERF_ANALYZER, BenchReport, BenchRow
from trtrepo.bench.stats import LatencyStats, LoadResult, throughput
from trtrepo.bench.timing import time_eager
from trtrepo.contracts import Progress
from trtrepo.errors import SpecError

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = (1, 4, 16)
DEFAULT_REQUESTS = 200


def run_bench(spec_path: str | Path, *, concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
              requests: int = DEFAULT_REQUESTS, batch_sizes: Sequence[int] | None = None,
              models: Sequence[str] | None = None, report_path: str | Path | None = None,
              plot_dir: str | Path | None = None, url_http: str | None = None,
              parity_report: str | Path | None = None, max_seconds: float = DEFAULT_MAX_SECONDS,
              eager: bool = True, repository: str | Path | None = None,
              progress: Progress = LOGGER.info, shared_memory: str = "none", protocol: str = "http",
              url_grpc: str | None = None) -> BenchReport:
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
        shared_memory: ``none``, ``system`` or ``cuda``: how request tensors travel, for perf_analyzer
            (``--shared-memory``) and the own load loop alike (:mod:`trtrepo.runners.triton_shm`; same host only).
        protocol: ``http`` or ``grpc``: what the timed requests use (server statistics are read over HTTP).
        url_grpc: ``host:port`` of the running server's gRPC endpoint (``protocol="grpc"`` with ``url_http``).

    Returns:
        The report (also written to ``report_path`` when given).

    Raises:
        SpecError: Bad model names, batch sizes or concurrency levels.
        ServeError: The server does not start, or requests fail.
        MissingDependencyError: tritonclient (own load loop) or torch (eager) is missing; ``cuda`` shared memory
            without cuda-python or a GPU.
    """
    from trtrepo.deps import require
    from trtrepo.runners.triton_shm import require_shared_memory
    from trtrepo.spec import load_spec

    spec = load_spec(spec_path)
    levels = tuple(dict.fromkeys(int(c) for c in concurrency))
    if not levels or min(levels) < 1:
        raise SpecError(f"--concurrency: levels must be integers >= 1, got {list(concurrency)}")
    if requests < 1:
        raise SpecError(f"--requests: must be >= 1, got {requests}")
    if protocol not in ("http", "grpc"):
        raise SpecError(f"--protocol: must be http or grpc, got {protocol!r}")
    if protocol == "grpc" and url_http and not url_grpc:
        raise SpecError("--protocol grpc with --url-http: give the server's --url-grpc too "
                        "(the timed requests go there; statistics are read over HTTP)")
    chosen = spec.select(models) if models else list(spec.models)
    plan = [(m, batch_sizes_for(m, batch_sizes)) for m in chosen]
    perf_analyzer = find_perf_analyzer()
    if perf_analyzer is None:
        require("tritonclient", "trtrepo bench's load loop")
    require_shared_memory(shared_memory, "trtrepo bench")

    device = "cpu"
    report = BenchReport(spec=str(spec.path), url=url_http or "", device=device)
    eager_results: dict[tuple[str, int], LoadResult] = {}
    inputs: dict[tuple[str, int], tuple[Any, ...]] = {}
    for model, sizes in plan:
        for b in sizes:
            inputs[(model.name, b)] = bench_inputs(model, b, model.parity.seed)
    if eager:
        require("torch", "eager timing in trtrepo bench")
        device = eager_device()
        from trtrepo.ops.stage import prepare_ops

        prepare_ops(spec, list(spec.models), progress=progress)
        for model, sizes in plan:
            eager_results.update(_measure_eager(spec, model, sizes, inputs, device, requests, max_seconds, progress))
    report.device = device_label(device)
    report.environment = environment(perf_analyzer=perf_analyzer, shared_memory=shared_memory)

    report.environment["protocol"] = protocol
    if url_http:
        _bench_served(report, url_http, plan, inputs, eager_results, levels, requests, max_seconds, perf_analyzer,
                      progress, shared_memory, url_grpc if protocol == "grpc" else None)
    else:
        from trtrepo.serve import TritonServer

        repo = Path(repository) if repository is not None else spec.repository
        log_path = Path(tempfile.gettempdir()) / f"trtrepo-bench-tritonserver-{os.getpid()}.log"
        progress(f"bench: starting tritonserver on {repo} (log {log_path})")
        with TritonServer(repo, log_path=log_path) as server:
            report.url = server.http_url
            _bench_served(report, server.http_url, plan, inputs, eager_results, levels, requests, max_seconds,
                          perf_analyzer, progress, shared_memory, server.grpc_url if protocol == "grpc" else None)
            server.check_alive()

    if plot_dir is not None:
        report.plots += write_plots(report, Path(plot_dir), parity_report=parity_report)
    if report_path is not None:
        report.write(report_path)
        progress(f"bench: report written to {report_path}")
    return report


def _measure_eager(spec: Spec, model: ModelSpec, sizes: Sequence[int],
                   inputs: Mapping[tuple[str, int], tuple[Any, ...]], device: str, requests: int,
                   max_seconds: float, progress: Progress) -> dict[tuple[str, int], LoadResult]:
    import torch

    from trtrepo.export import load_module
    from trtrepo.runners.eager import EagerRunner

    net = load_module(model, spec.root, device)
    sync = torch.cuda.synchronize if device == "cuda" else None
    out = {}
    runner = EagerRunner(net, [t.name for t in model.inputs], [o.name for o in model.outputs], device=device)
    with runner:
        for b in sizes:
            prepared = runner.prepare(dict(zip(runner.input_names, inputs[(model.name, b)], strict=True)))
            call = prepared.call
            if prepared.stream is not None:
                stream = prepared.stream

                def call(stream: Any = stream, inner: Callable[[], None] = prepared.call) -> None:
                    with torch.cuda.stream(stream):
                        inner()

            result = time_eager(call, requests, synchronize=sync, max_seconds=max_seconds)
            stats = LatencyStats.from_seconds(result.latencies_s)
            progress(f"bench: eager {model.name} batch {b} on {device}: p50 {stats.p50_ms:.3f} ms")
            out[(model.name, b)] = result
    return out


def _bench_served(report: BenchReport, url: str, plan: Sequence[tuple[ModelSpec, tuple[int, ...]]],
                  inputs: Mapping[tuple[str, int], tuple[Any, ...]],
                  eager_results: Mapping[tuple[str, int], LoadResult], levels: Sequence[int], requests: int,
                  max_seconds: float, perf_analyzer: str | None, progress: Progress,
                  shared_memory: str = "none", grpc_url: str | None = None) -> None:
    """Every level of every model's batch sizes; the timed requests go to ``grpc_url`` over gRPC when given, else
    over HTTP to ``url`` (the statistics are always read from ``url``)."""
    report.environment.update(server_facts(url))
    for model, sizes in plan:
        for b in sizes:
            eager_result = eager_results.get((model.name, b))
            eager_stats = LatencyStats.from_seconds(eager_result.latencies_s) if eager_result else None
            eager_ips = throughput(b, eager_stats.mean_ms / 1e3) if eager_stats else None
            arrays = numpy_inputs(model, inputs[(model.name, b)])
            for c in levels:
                row = measure_level(perf_analyzer, url, model, b, c, arrays, requests, max_seconds, shared_memory,
                                    grpc_url)
                row = replace(row, eager=eager_stats, eager_ips=eager_ips)
                split = row.breakdown
                progress(f"bench: {model.name} batch {b} concurrency {c}: p50 {row.served.p50_ms:.3f} ms, "
                         f"{row.served_ips:.1f} inf/s ({row.client}"
                         + (f", shared memory {shared_memory}" if shared_memory != "none" else "") + ")"
                         + (f"; mean {split.client_ms:.3f} ms = queue {split.queue_ms:.3f} + compute "
                            f"{split.compute_input_ms:.3f}/{split.compute_infer_ms:.3f}/{split.compute_output_ms:.3f}"
                            f" + rest {split.rest_ms:.3f}" if split else ""))
                report.rows.append(row)
    if perf_analyzer is not None and any(m.triton.max_batch_size > 0 for m, _ in plan):
        report.notes.append("perf_analyzer repeats the first sample of each input -b times for batching models")
    fallbacks = [r for r in report.rows if r.fallback]
    if fallbacks:
        report.notes.append(f"{len(fallbacks)} level(s) measured by {TOOL_OWN_LOOP} because perf_analyzer gave no "
                            f"measurement (see each row's fallback)")


def measure_level(perf_analyzer: str | None, url: str, model: ModelSpec, batch: int, concurrency: int,
                  arrays: Mapping[str, Any], requests: int, max_seconds: float,
                  shared_memory: str = "none", grpc_url: str | None = None) -> BenchRow:
    """Measure one load level with perf_analyzer when given, else (or when it gives no measurement) the own loop.

    The timed requests go over gRPC to ``grpc_url`` when given, else over HTTP to ``url`` (statistics: ``url``).

    An unstable or missing perf_analyzer measurement logs one warning and falls back to trtrepo's load loop; the
    row's ``fallback`` says why. Other perf_analyzer failures raise.

    Raises:
        ServeError: perf_analyzer failed for another reason, or the own loop's requests all failed.
    """
    if perf_analyzer is None:
        return _level_own_loop(url, model, batch, concurrency, arrays, requests, max_seconds, shared_memory,
                               grpc_url)
    try:
        return _level_perf_analyzer(perf_analyzer, url, model, batch, concurrency, arrays, requests, max_seconds,
                                    shared_memory, grpc_url)
    except PerfAnalyzerNoMeasurement as exc:
        LOGGER.warning("%s batch %d concurrency %d: %s; measuring this level with %s instead", model.name, batch,
                       concurrency, exc.message, TOOL_OWN_LOOP)
        row = _level_own_loop(url, model, batch, concurrency, arrays, requests, max_seconds, shared_memory,
                              grpc_url)
        return replace(row, fallback=exc.message)


def triton_datatypes(model: ModelSpec) -> dict[str, str]:
    """Input name → Triton datatype."""
    return {t.name: dtypes.get(t.dtype).triton for t in model.inputs}


def _level_own_loop(url: str, model: ModelSpec, batch: int, concurrency: int, arrays: Mapping[str, Any],
                    requests: int, max_seconds: float, shared_memory: str = "none",
                    grpc_url: str | None = None) -> BenchRow:
    from trtrepo.runners.triton import TritonRunner

    output_names = [o.name for o in model.outputs]
    runners: list[TritonRunner] = []
    lock = threading.Lock()

    def factory() -> Callable[[], Any]:
        runner = TritonRunner(grpc_url or url, model.name, output_names, protocol="grpc" if grpc_url else "http",
                              datatypes=triton_datatypes(model), shared_memory=shared_memory)
        with lock:
            runners.append(runner)
        runner.activate()  # one per thread: tritonclient clients are not thread-safe

        def send() -> Any:
            return runner.infer(arrays)

        return send

    before = model_stats(url, model.name, model.version)
    window: list[dict[str, Any] | None] = [None]

    def snapshot() -> None:  # every warm-up request is answered: wait until the server counted them all
        window[0] = settled_stats(url, model.name, model.version, success_count(before) + concurrency * DEFAULT_WARMUP)

    try:
        result = run_load(factory, concurrency, requests, max_seconds, on_timed_start=snapshot)
    finally:  # unregisters and frees shared memory regions, closes connections
        for runner in runners:
            runner.deactivate()
    start = window[0]
    after = settled_stats(url, model.name, model.version, success_count(start) + len(result.latencies_s)) \
        if start is not None else None
    split = breakdown_from_stats(start, after, result.latencies_s) if start is not None and after is not None \
        else None
    if result.errors:
        LOGGER.warning("%s: %d requests failed, first: %s", model.name, result.errors, result.first_error)
    return BenchRow(model=model.name, batch_size=batch, concurrency=concurrency, client=TOOL_OWN_LOOP,
                    served=LatencyStats.from_seconds(result.latencies_s),
                    served_ips=throughput(len(result.latencies_s) * batch, result.wall_s), errors=result.errors,
                    server_queue_ms=split.queue_ms if split else None,
                    server_compute_ms=split.compute_infer_ms if split else None,
                    shared_memory=shared_memory, breakdown=split)


def _level_perf_analyzer(binary: str, url: str, model: ModelSpec, batch: int, concurrency: int,
                         arrays: Mapping[str, Any], requests: int, max_seconds: float,
                         shared_memory: str = "none", grpc_url: str | None = None) -> BenchRow:
    batched = model.triton.max_batch_size > 0
    output_bytes = _output_bytes(url, model, arrays) if shared_memory != "none" else None
    with tempfile.TemporaryDirectory(prefix="trtrepo-pa-") as tmp:
        data_path = Path(tmp) / "input.json"
        data_path.write_text(json.dumps(perf_analyzer_input_data(wire_arrays(model, arrays), triton_datatypes(model),
                                                                 batched)))
        csv_path = Path(tmp) / "perf.csv"
        cmd = perf_analyzer_command(binary, model.name, model.version, grpc_url or url, concurrency, batch, batched,
                                    data_path, csv_path, requests, shared_memory=shared_memory,
                                    output_bytes=output_bytes, protocol="grpc" if grpc_url else "http")
        pa = run_perf_analyzer(cmd, csv_path, timeout=max_seconds * 3 + PERF_ANALYZER_TIMEOUT_PAD)
    split = None
    if pa.server_queue_ms is not None and pa.server_compute_ms is not None:
        split = RequestBreakdown(client_ms=pa.latency.mean_ms, queue_ms=pa.server_queue_ms,
                                 compute_input_ms=pa.server_compute_input_ms or 0.0,
                                 compute_infer_ms=pa.server_compute_ms,
                                 compute_output_ms=pa.server_compute_output_ms or 0.0, client_requests=requests,
                                 server_requests=requests, source=TOOL_PERF_ANALYZER)
    return BenchRow(model=model.name, batch_size=batch, concurrency=concurrency, client=TOOL_PERF_ANALYZER,
                    served=pa.latency, served_ips=pa.inferences_per_second, server_queue_ms=pa.server_queue_ms,
                    server_compute_ms=pa.server_compute_ms, shared_memory=shared_memory, breakdown=split)


def _output_bytes(url: str, model: ModelSpec, arrays: Mapping[str, Any]) -> int:
    """The largest output of one request on ``arrays`` (bytes): perf_analyzer's ``--output-shared-memory-size``."""
    from trtrepo.runners.triton_client import TritonClient

    with TritonClient("http", url) as client:
        reply = client.infer(model.name, arrays, [o.name for o in model.outputs], triton_datatypes(model))
    return max((int(v.nbytes) for v in reply.outputs.values()), default=1)


# ----------------------------------------------------------------------------------------------- environment
def eager_device() -> str:
    """``cuda`` when CUDA torch sees a GPU, else ``cpu``."""
    from trtrepo.deps import has_cuda_torch

    return "cuda" if has_cuda_torch() else "cpu"


def device_label(device: str) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``."""
    if device != "cuda":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"


def environment(**extra: Any) -> dict[str, Any]:
    """The manifest's environment facts (``trtrepo.repository.manifest.environment``) plus bench's own."""
    from trtrepo.repository.manifest import environment as facts

    env = facts(import_torch=True)
    env.update({"cpu_count": os.cpu_count(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    env.update(extra)
    return env


def server_facts(url: str) -> dict[str, Any]:
    """The server's version (``/v2`` metadata) and URL; only the URL when it does not answer."""
    try:
        import tritonclient.http as httpclient

        meta = httpclient.InferenceServerClient(url).get_server_metadata()
        return {"tritonserver": meta.get("version"), "server_url": url}
    except Exception as exc:
        LOGGER.debug("no server metadata from %s: %s", url, exc)
        return {"server_url": url}
