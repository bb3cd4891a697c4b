"""``trtrepo bench soak MODEL_YAML`` (also ``trtrepo bench MODEL_YAML --soak``): sustained load, optionally with faults.

The plain soak sends ``requests`` good requests from ``concurrency`` threads (one client each, batch sizes in
rotation) to a served model on loopback, bounded by ``max_seconds``, and compares every ``check_every``-th answer
with eager PyTorch. It passes when every request completed, none failed and no answer differed.

The fault soak (``faults``) adds, in the same run:

* **restarts**: the server trtrepo started is killed (``restart_mode`` ``kill``, the default: SIGKILL of its process
  group, in-flight requests die) or stopped (``graceful``) and started again, ``restarts`` times spread over the run;
* **malformed requests** interleaved with the good ones (every ``bad_every``-th request): an unknown input name, a
  wrong datatype, a wrong rank and, for a batching model, a batch above ``max_batch_size``.

What counts, honestly:

* A good request that fails because the server cannot be reached (a transport error: refused, reset, timed out) is
  retried with a short back-off on a fresh connection until it is answered, for at most :data:`RETRY_BUDGET_S`
  seconds. It is then ``retried`` (counted apart, with every failed attempt in ``unavailable_attempts``); it is
  ``lost`` only if no attempt succeeded within the budget. Transport failures are also split by *when* they
  happened: inside a restart window (from the stop to :data:`RESTART_GRACE_S` after READY) they are expected; outside
  one (``transport_errors_outside_restart``) they fail the soak.
* A good request the server answers with an error is a failure (``good_failed``), never retried.
* A malformed request must come back as a **clean error**: the server answers (no transport failure once it is up),
  with a one-line message naming what is wrong (the unknown input name, the sent datatype, the input whose shape is
  wrong, the batch size), and the server keeps answering good requests. Accepted ones (``bad_accepted``) and errors
  that do not name the problem (``bad_unclear``) fail the soak.

Everything is bounded: the number of requests, ``max_seconds`` for the run, the retry budget per request, the
server's startup timeout per restart. The server listens on 127.0.0.1 only; a fault soak never targets a server it
did not start (``url`` and ``faults`` exclude each other).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo._table import render
from trtrepo.bench.report import fmt, write_json
from trtrepo.bench.stats import LatencyStats
from trtrepo.contracts import Progress
from trtrepo.errors import ServeError, SpecError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

SOAK_SCHEMA = "trtrepo-soak/1"
RETRY_BUDGET_S = 180.0
RESTART_GRACE_S = 2.0
BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)
REQUEST_TIMEOUT_S = 30.0
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# How tritonserver answers while it shuts down or before its models are loaded again (seen with 2.51).
UNAVAILABLE_MARKERS = ("shutting down", "server is stopping", "not ready", "unavailable", "exiting",
                       "is not found", "unknown model")

RESTART_MODES = ("kill", "graceful")

WRONG_NAME = "wrong-name"
WRONG_DTYPE = "wrong-dtype"
WRONG_RANK = "wrong-rank"
BATCH_TOO_LARGE = "batch-too-large"


@dataclass(frozen=True)
class SoakOptions:
    """What one soak does (the CLI's options).

    Attributes:
        model: Model name (default: the spec's first).
        repository: Repository to serve (default: the spec's).
        url: ``host:port`` of a running server; trtrepo starts one on loopback when None.
        protocol: ``http`` or ``grpc``.
        requests: Good requests in total.
        concurrency: Client threads.
        batch_sizes: Batch sizes in rotation (clipped to ``max_batch_size``).
        max_seconds: No new request starts after this long.
        check_every: Compare every Nth answer with eager PyTorch.
        faults: Restart the server and interleave malformed requests.
        bad_every: With ``faults``: one malformed request per this many good ones.
        restarts: With ``faults``: how many times the server is restarted.
        restart_mode: ``kill`` (SIGKILL of the server's process group: in-flight requests die with it) or
            ``graceful`` (SIGINT: tritonserver drains what is in flight, and may answer new requests meanwhile).
    """

    model: str | None = None
    repository: Path | None = None
    url: str | None = None
    protocol: str = "grpc"
    requests: int = 10000
    concurrency: int = 16
    batch_sizes: Sequence[int] = (1, 2, 4, 8)
    max_seconds: float = 900.0
    check_every: int = 50
    faults: bool = False
    bad_every: int = 10
    restarts: int = 1
    restart_mode: str = "kill"

    def validate(self) -> None:
        """Raise SpecError (exit 2) naming the option that is out of range."""
        for name, value, low in (("--requests", self.requests, 1), ("--concurrency", self.concurrency, 1),
                                 ("--check-every", self.check_every, 1), ("--bad-every", self.bad_every, 2),
                                 ("--restarts", self.restarts, 0)):
            if value < low:
                raise SpecError(f"{name}: must be >= {low}, got {value}")
        if self.max_seconds <= 0:
            raise SpecError(f"--max-seconds: must be > 0, got {self.max_seconds}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise SpecError(f"--batch-sizes: positive integers, got {list(self.batch_sizes)}")
        if self.restart_mode not in RESTART_MODES:
            raise SpecError(f"--restart-mode: {self.restart_mode!r} is not one of {', '.join(RESTART_MODES)}")
        if self.protocol not in ("http", "grpc"):
            raise SpecError(f"--protocol: {self.protocol!r} is not one of http, grpc")
        if self.faults and self.url:
            raise SpecError("--faults restarts the server: trtrepo must start it (drop --url)",
                            hint="a fault soak only targets a server it started on 127.0.0.1")
        if self.url and self.url.rsplit(":", 1)[0] not in LOOPBACK:
            raise SpecError(f"--url: {self.url} is not a loopback address; a soak targets 127.0.0.1 only")


@dataclass
class BadKind:
    """Outcomes of one kind of malformed request."""

    sent: int = 0
    clean: int = 0
    accepted: int = 0
    unclear: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Restart:
    """One server restart: when (good requests completed), how long the server was down, whether it came back."""

    after_requests: int
    down_s: float
    ok: bool
    error: str | None = None


@dataclass
class SoakReport:
    """What one soak saw; :attr:`passed` is the verdict and :meth:`problems` says why not."""

    model: str
    protocol: str
    concurrency: int
    batch_sizes: list[int]
    requested: int
    faults: bool
    completed: int = 0
    good_failed: int = 0
    lost: int = 0
    retried: int = 0
    unavailable_attempts: int = 0
    transport_errors_outside_restart: int = 0
    outputs_checked: int = 0
    mismatches: int = 0
    error_samples: list[str] = field(default_factory=list)
    mismatch_samples: list[str] = field(default_factory=list)
    bad: dict[str, BadKind] = field(default_factory=dict)
    restarts: list[Restart] = field(default_factory=list)
    wall_s: float = 0.0
    latency: LatencyStats | None = None
    stopped_by_time_limit: bool = False
    server_alive_at_end: bool | None = None
    server_command: str = ""
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput_rps(self) -> float | None:
        """Completed good requests per second."""
        return round(self.completed / self.wall_s, 1) if self.wall_s else None

    def problems(self) -> list[str]:
        """One line per reason the soak did not pass (empty: it passed)."""
        out = []
        if self.completed != self.requested:
            out.append(f"{self.completed}/{self.requested} good requests completed"
                       + (" (time limit)" if self.stopped_by_time_limit else ""))
        for what, count in (("good requests failed", self.good_failed), ("good requests lost", self.lost),
                            ("answers differed from eager", self.mismatches),
                            ("transport errors outside a restart", self.transport_errors_outside_restart)):
            if count:
                out.append(f"{count} {what}")
        for kind, stats in self.bad.items():
            if stats.accepted:
                out.append(f"{stats.accepted} {kind} requests were accepted")
            if stats.unclear:
                out.append(f"{stats.unclear} {kind} errors do not name the problem")
        out += [f"restart after {r.after_requests} requests failed: {r.error}" for r in self.restarts if not r.ok]
        if self.server_alive_at_end is False:
            out.append("the server died")
        return out

    @property
    def passed(self) -> bool:
        """No problem at all."""
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schema": SOAK_SCHEMA, "model": self.model, "protocol": self.protocol, "concurrency": self.concurrency,
            "batch_sizes": self.batch_sizes, "faults": self.faults, "requested": self.requested,
            "completed": self.completed, "good_failed": self.good_failed, "lost": self.lost,
            "retried": self.retried, "unavailable_attempts": self.unavailable_attempts,
            "transport_errors_outside_restart": self.transport_errors_outside_restart,
            "outputs_checked": self.outputs_checked, "mismatches": self.mismatches,
            "error_samples": self.error_samples, "mismatch_samples": self.mismatch_samples,
            "bad": {k: vars(v) for k, v in self.bad.items()},
            "restarts": [vars(r) for r in self.restarts],
            "wall_s": round(self.wall_s, 2), "throughput_rps": self.throughput_rps,
            "latency_ms": vars(self.latency) if self.latency else None,
            "stopped_by_time_limit": self.stopped_by_time_limit, "server_alive_at_end": self.server_alive_at_end,
            "server_command": self.server_command, "environment": self.environment,
            "passed": self.passed, "problems": self.problems(),
        }

    def table(self) -> str:
        """Counts, bad-request outcomes and latency as aligned text, then the verdict."""
        lat = self.latency
        counts = render(
            ("protocol", "requests", "completed", "failed", "lost", "retried", "checked", "mismatches", "wall s",
             "req/s", "p50 ms", "p99 ms"),
            [(self.protocol, self.requested, self.completed, self.good_failed, self.lost, self.retried,
              self.outputs_checked, self.mismatches, fmt(self.wall_s, 1), fmt(self.throughput_rps, 1),
              fmt(lat.p50_ms if lat else None), fmt(lat.p99_ms if lat else None))], right=range(1, 12))
        parts = [counts]
        if self.bad:
            parts.append(render(("malformed", "sent", "clean errors", "accepted", "unclear"),
                                [(k, v.sent, v.clean, v.accepted, v.unclear) for k, v in self.bad.items()],
                                right=(1, 2, 3, 4)))
        if self.restarts:
            parts.append(render(("restart after", "down s", "ok"),
                                [(r.after_requests, fmt(r.down_s, 1), "yes" if r.ok else f"no: {r.error}")
                                 for r in self.restarts], right=(0, 1)))
        problems = self.problems()
        parts.append("soak: PASS" if not problems else "soak: FAIL — " + "; ".join(problems))
        return "\n\n".join(parts)

    def markdown(self, command: str) -> str:
        """A Markdown summary (docs/soak.md's tables) ending with the command that reproduces it."""
        lat = self.latency
        env = self.environment
        lines = [f"# Soak: {self.model} over {self.protocol}", "",
                 f"{self.concurrency} concurrent clients, batch sizes {self.batch_sizes} in rotation, "
                 f"{'with' if self.faults else 'without'} faults. Machine: {env.get('platform', '?')}, "
                 f"{env.get('cpu_count', '?')} CPUs, torch {env.get('torch', '?')}.", "",
                 "| requests | completed | failed | lost | retried | checked | mismatches | wall (s) | req/s |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                 f"| {self.requested} | {self.completed} | {self.good_failed} | {self.lost} | {self.retried} | "
                 f"{self.outputs_checked} | {self.mismatches} | {self.wall_s:.2f} | {self.throughput_rps} |", ""]
        if lat is not None:
            lines += ["| round trip (ms) | mean | p50 | p90 | p99 | max |", "| --- | --- | --- | --- | --- | --- |",
                      f"| {self.protocol} | {lat.mean_ms:.2f} | {lat.p50_ms:.2f} | {lat.p90_ms:.2f} | "
                      f"{lat.p99_ms:.2f} | {fmt(lat.max_ms, 2)} |", ""]
        if self.bad:
            lines += ["| malformed request | sent | clean errors | accepted | unclear |",
                      "| --- | --- | --- | --- | --- |"]
            lines += [f"| {k} | {v.sent} | {v.clean} | {v.accepted} | {v.unclear} |" for k, v in self.bad.items()]
            lines.append("")
        if self.restarts:
            when = ", ".join(f"after {r.after_requests} requests, down {r.down_s:.1f} s" for r in self.restarts)
            lines += [f"Restarts: {when}; {self.unavailable_attempts} attempts failed while the server was down, "
                      f"{self.retried} requests needed a retry.", ""]
        lines += [f"Verdict: {'PASS' if self.passed else 'FAIL: ' + '; '.join(self.problems())}.", "",
                  f"Reproduce: `{command}`", ""]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------- pure helpers
def restart_points(requests: int, restarts: int) -> list[int]:
    """Completed-request counts at which the server is restarted: spread evenly, none at 0 or at the end."""
    if restarts <= 0:
        return []
    return sorted({max(1, min(requests - 1, round(requests * (k + 1) / (restarts + 1)))) for k in range(restarts)})


def bad_kinds(model: ModelSpec) -> list[str]:
    """The malformed requests this model can be sent (a batch too large only for a batching model)."""
    kinds = [WRONG_NAME, WRONG_DTYPE, WRONG_RANK]
    if model.triton.max_batch_size > 0:
        kinds.append(BATCH_TOO_LARGE)
    return kinds


def bad_request(kind: str, model: ModelSpec, arrays: Mapping[str, NDArray[Any]],
                datatypes: Mapping[str, str]) -> tuple[dict[str, NDArray[Any]], dict[str, str], str]:
    """A malformed request built from good ``arrays``: (inputs, datatypes, the word its error must name).

    Raises:
        ValueError: An unknown kind.
    """
    import numpy as np

    first = model.inputs[0].name
    inputs = dict(arrays)
    types = dict(datatypes)
    if kind == WRONG_NAME:
        wrong = f"{first}_unknown"
        inputs[wrong] = inputs.pop(first)
        types[wrong] = types.pop(first)
        return inputs, types, wrong
    if kind == WRONG_DTYPE:
        floating = np.issubdtype(np.asarray(inputs[first]).dtype, np.floating) or types[first] in ("BF16", "FP16")
        sent = "FP64" if floating else "FP32"
        inputs[first] = np.asarray(inputs[first]).astype(np.float64 if floating else np.float32)
        types[first] = sent
        return inputs, types, sent
    if kind == WRONG_RANK:
        inputs[first] = np.asarray(inputs[first])[..., np.newaxis]
        return inputs, types, first
    if kind == BATCH_TOO_LARGE:
        size = model.triton.max_batch_size + 1
        inputs = {k: np.repeat(np.asarray(v)[:1], size, axis=0) for k, v in inputs.items()}
        return inputs, types, "batch"
    raise ValueError(f"unknown malformed request kind {kind!r}")


def unavailable_answer(message: str) -> bool:
    """Whether an error answer means "the server is going down or not up yet" rather than "this request is bad"."""
    text = message.lower()
    return any(m in text for m in UNAVAILABLE_MARKERS)


def names_problem(message: str, word: str) -> bool:
    """Whether an error message is clean: one line that names ``word`` (case-insensitive)."""
    return "\n" not in message.strip() and word.lower() in message.lower()


def kill_server(server: Any) -> None:
    """SIGKILL the server and everything it started (its Python backend stubs), as a crash would.

    ``TritonServer`` starts tritonserver in a session of its own, so its process group is the server's.
    """
    import os
    import signal

    kill = getattr(server, "kill", None)
    if callable(kill):
        kill()
        return
    process = getattr(server, "process", None)
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(30)


class RestartWindows:
    """When the server was (being) restarted: failures then are expected, elsewhere they are not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: list[list[float]] = []

    def begin(self, now: float) -> None:
        """A restart starts (the stop is about to be sent)."""
        with self._lock:
            self._windows.append([now, float("inf")])

    def end(self, now: float, grace: float = RESTART_GRACE_S) -> None:
        """The server is READY again; stale connections may still fail for ``grace`` seconds."""
        with self._lock:
            self._windows[-1][1] = now + grace

    def covers(self, t: float) -> bool:
        """Whether ``t`` falls inside a restart window."""
        with self._lock:
            return any(a <= t <= b for a, b in self._windows)


# ---------------------------------------------------------------------------------------------------- the soak
def run_soak(spec_path: str | Path, options: SoakOptions, *, report_path: str | Path | None = None,
             markdown_path: str | Path | None = None, progress: Progress = LOGGER.info) -> SoakReport:
    """Soak a served model (see the module docstring for what is counted and when it passes).

    Args:
        spec_path: The model.yaml the repository was built from.
        options: What to do.
        report_path: Where to write the JSON report.
        markdown_path: Where to write the Markdown summary.
        progress: One-line progress messages.

    Returns:
        The report (``passed`` says whether the soak passed).

    Raises:
        SpecError: Invalid options or model name.
        ServeError: The server does not start, or the repository cannot be read.
        MissingDependencyError: tritonclient or torch is missing.
    """
    from trtrepo.bench.run import environment
    from trtrepo.deps import require
    from trtrepo.repository.reader import read_repository
    from trtrepo.spec import load_spec

    options.validate()
    require("tritonclient", "trtrepo bench soak")
    require("torch", "trtrepo bench soak (eager references)")
    spec = load_spec(spec_path)
    model = spec.select([options.model])[0] if options.model else spec.models[0]
    repository = Path(options.repository or spec.repository).resolve()
    sizes = [s for s in options.batch_sizes if not model.triton.max_batch_size or s <= model.triton.max_batch_size]
    sizes = sizes or [1]
    spec_outputs = [o.name for o in model.outputs]
    # served names come from the repository's manifest (a plan names its outputs output0...); a server at --url
    # whose repository is not here is asked for the spec's names
    served = read_repository(repository).served_output_names(model.name, spec_outputs) \
        if not options.url or repository.is_dir() else spec_outputs
    pool, references = _pool(spec, model, sizes, progress)
    report = SoakReport(model=model.name, protocol=options.protocol, concurrency=options.concurrency,
                        batch_sizes=sizes, requested=options.requests, faults=options.faults)
    report.environment = environment()
    if options.faults:
        report.bad = {k: BadKind() for k in bad_kinds(model)}
    if options.url:
        _soak(report, options, model, served, pool, references, endpoint=[options.url], server=None,
              progress=progress)
    else:
        from trtrepo.serve import TritonServer

        server = TritonServer(repository)
        progress(f"soak: starting tritonserver on {repository}")
        server.start()
        try:
            report.server_command = server.command_line
            endpoint = [_url(server, options.protocol)]
            _soak(report, options, model, served, pool, references, endpoint=endpoint, server=server,
                  progress=progress)
            report.server_alive_at_end = server.is_alive()
        finally:
            server.stop()
    if report_path is not None:
        write_json(report_path, json.dumps(report.to_dict(), indent=2))
        progress(f"soak: report written to {report_path}")
    if markdown_path is not None:
        target = Path(markdown_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report.markdown(_command(spec_path, options)))
    return report


def _url(server: Any, protocol: str) -> str:
    return str(server.http_url if protocol == "http" else server.grpc_url)


def _command(spec_path: str | Path, o: SoakOptions) -> str:
    parts = ["trtrepo bench soak", str(spec_path), f"--protocol {o.protocol}", f"--requests {o.requests}",
             f"--concurrency {o.concurrency}", f"--batch-sizes {','.join(map(str, o.batch_sizes))}"]
    if o.faults:
        parts += ["--faults", f"--bad-every {o.bad_every}", f"--restarts {o.restarts}"]
    return " ".join(parts)


def _pool(spec: Any, model: ModelSpec, sizes: Sequence[int], progress: Progress
          ) -> tuple[list[dict[str, NDArray[Any]]], list[list[NDArray[Any]]]]:
    """One seeded input set per batch size (as the client sends it) and eager PyTorch's outputs for each."""
    import torch

    from trtrepo.bench.inputs import bench_inputs, numpy_inputs
    from trtrepo.bench.run import eager_device
    from trtrepo.export import load_module
    from trtrepo.ops.stage import prepare_ops
    from trtrepo.runners.base import flatten_outputs, to_numpy

    prepare_ops(spec, [model], progress=progress)
    device = eager_device()
    net = load_module(model, spec.root, device)
    pool, refs = [], []
    for b in sizes:
        tensors = bench_inputs(model, b, model.parity.seed) if model.triton.max_batch_size else bench_inputs(
            model, model.inputs[0].opt[0], model.parity.seed)
        pool.append(numpy_inputs(model, tensors))
        with torch.inference_mode():
            out = net(*[t.to(device) for t in tensors])
        refs.append([to_numpy(o) for o in flatten_outputs(out)])
    progress(f"soak: {len(pool)} input sets, eager references on {device}")
    return pool, refs


def _soak(report: SoakReport, options: SoakOptions, model: ModelSpec, served: list[str],
          pool: list[dict[str, NDArray[Any]]], references: list[list[NDArray[Any]]], *, endpoint: list[str],
          server: Any, progress: Progress) -> None:
    from trtrepo import dtypes
    from trtrepo.check.compare import compare
    from trtrepo.check.tolerances import output_tolerance
    from trtrepo.runners.triton_client import RequestFailed, TritonClient

    datatypes = {t.name: dtypes.get(t.dtype).triton for t in model.inputs}
    kinds = list(report.bad)
    lock = threading.Lock()
    next_index = [0]
    done = [0]
    latencies: list[float] = []
    windows = RestartWindows()
    stop = threading.Event()
    start = time.monotonic()
    deadline = start + options.max_seconds
    hard_deadline = deadline + RETRY_BUDGET_S

    def note_error(text: str) -> None:
        with lock:
            if len(report.error_samples) < 8:
                report.error_samples.append(text[:300])

    def transport_failure(at: float) -> None:
        with lock:
            report.unavailable_attempts += 1
            if not windows.covers(at):
                report.transport_errors_outside_restart += 1

    class Connection:
        """A worker's client, recreated after a transport failure (and when the server's URL changes)."""

        def __init__(self) -> None:
            self.url = ""
            self.client: Any = None

        def get(self) -> Any:
            if self.client is None or self.url != endpoint[0]:
                self.close()
                self.url = endpoint[0]
                self.client = TritonClient(options.protocol, self.url, timeout=REQUEST_TIMEOUT_S)
            return self.client

        def close(self) -> None:
            if self.client is not None:
                self.client.close()
                self.client = None

    def send(conn: Connection, inputs: Mapping[str, Any], types: Mapping[str, str]) -> tuple[str, Any, int]:
        """(outcome, result or message, failed attempts); outcome ``ok``, ``failed`` (answered with an error) or
        ``lost``. Transport failures, and "shutting down" answers inside a restart window, are retried."""
        first_failure: float | None = None
        attempt = 0
        while True:
            try:
                return "ok", conn.get().infer(model.name, inputs, served, types), attempt
            except RequestFailed as exc:
                now = time.monotonic()
                if not (windows.covers(now) and unavailable_answer(str(exc))):
                    return "failed", str(exc), attempt
                message = str(exc)
                transport_failure(now)
            except ServeError as exc:
                now = time.monotonic()
                message = exc.message
                transport_failure(now)
                conn.close()
            first_failure = first_failure if first_failure is not None else now
            if now - first_failure > RETRY_BUDGET_S or now > hard_deadline or stop.is_set():
                return "lost", message, attempt + 1
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    def send_bad(conn: Connection, index: int) -> None:
        kind = kinds[index % len(kinds)]
        inputs, types, word = bad_request(kind, model, pool[index % len(pool)], datatypes)
        outcome, value, _ = send(conn, inputs, types)
        with lock:
            stats = report.bad[kind]
            stats.sent += 1
            if outcome == "ok":
                stats.accepted += 1
                stats.samples.append(f"accepted: {kind}")
            elif outcome == "failed" and names_problem(value, word):
                stats.clean += 1
                if len(stats.samples) < 2:
                    stats.samples.append(value[:300])
            else:
                stats.unclear += 1
                stats.samples.append(f"{outcome}: {value}"[:300])

    def send_good(conn: Connection, index: int) -> None:
        k = index % len(pool)
        outcome, value, failed_attempts = send(conn, pool[k], datatypes)
        if failed_attempts and outcome == "ok":
            with lock:
                report.retried += 1
        if outcome == "lost":
            with lock:
                report.lost += 1
            note_error(f"lost request {index}: {value}")
            return
        if outcome == "failed":
            with lock:
                report.good_failed += 1
            note_error(f"request {index}: {value}")
            return
        with lock:
            latencies.append(float(value.latency_s))
            done[0] += 1
        if index % options.check_every == 0:
            for spec_out, name, expected in zip(model.outputs, served, references[k], strict=True):
                atol, rtol = output_tolerance(model, spec_out.name)
                result = compare(spec_out.name, value.outputs[name], expected, atol, rtol)
                with lock:
                    report.outputs_checked += 1
                    if not result.passed:
                        report.mismatches += 1
                        if len(report.mismatch_samples) < 5:
                            report.mismatch_samples.append(f"request {index}: {result.message}")

    def worker() -> None:
        conn = Connection()
        try:
            while not stop.is_set():
                with lock:
                    index = next_index[0]
                    if index >= options.requests:
                        return
                    if time.monotonic() > deadline:
                        report.stopped_by_time_limit = True
                        return
                    next_index[0] += 1
                if kinds and index % options.bad_every == options.bad_every - 1:
                    send_bad(conn, index // options.bad_every)
                send_good(conn, index)
        finally:
            conn.close()

    def supervisor() -> None:
        for point in restart_points(options.requests, options.restarts if options.faults else 0):
            while not stop.is_set() and done[0] < point and any(t.is_alive() for t in threads):
                time.sleep(0.02)
            if stop.is_set() or not any(t.is_alive() for t in threads):
                return
            at = done[0]
            progress(f"soak: restarting the server after {at} good requests")
            t0 = time.monotonic()
            windows.begin(t0)
            try:
                if options.restart_mode == "kill":
                    kill_server(server)
                server.stop()
                server.start()
                endpoint[0] = _url(server, options.protocol)
                windows.end(time.monotonic())
                report.restarts.append(Restart(after_requests=at, down_s=time.monotonic() - t0, ok=True))
            except ServeError as exc:
                windows.end(time.monotonic())
                report.restarts.append(Restart(after_requests=at, down_s=time.monotonic() - t0, ok=False,
                                               error=exc.message))
                stop.set()
                return

    threads = [threading.Thread(target=worker, name=f"trtrepo-soak-{n}", daemon=True)
               for n in range(options.concurrency)]
    progress(f"soak: {options.requests} requests, {options.concurrency} clients, {options.protocol} "
             f"{endpoint[0]}{' with faults' if options.faults else ''}")
    for t in threads:
        t.start()
    watcher = threading.Thread(target=supervisor, name="trtrepo-soak-restarts", daemon=True)
    if server is not None and options.faults:
        watcher.start()
    for t in threads:
        t.join()
    stop.set()
    if watcher.is_alive():
        watcher.join()
    report.wall_s = time.monotonic() - start
    report.completed = done[0]
    report.latency = LatencyStats.from_seconds(latencies) if latencies else None
    progress(f"soak: {report.completed}/{report.requested} completed in {report.wall_s:.1f} s")
