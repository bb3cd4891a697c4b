"""``trtrepo check``: prove that what Triton serves equals eager PyTorch, over HTTP and gRPC.

For each model: seeded inputs over the shape profile (:mod:`trtrepo.check.inputs`), the eager module's outputs on
them (custom ops built and loaded as for the build), the same inputs sent to Triton one by one and, for batching
models, as concurrent ragged requests; every output is compared with per-output tolerances
(:mod:`trtrepo.check.tolerances`, :mod:`trtrepo.check.compare`) and reported (:mod:`trtrepo.check.report`).

Without ``url_http``/``url_grpc`` a tritonserver is started on the spec's repository (free ports, loopback) and
stopped at the end; the repository must match its manifest (:func:`trtrepo.serve.verify_repository`). Everything
that can be checked without the work is checked first: the spec, the URLs, the report path, the repository (its
manifest, every config.pbtxt, its files against the manifest) and the tritonserver binary; only then are the ops
built, the eager references computed and the server started. Every network call has a timeout, a model the server
does not have is reported at once (from the server's repository index), and an unreachable or dying server ends
the run with a ServeError, never a hang.

The report is never written into the repository it checks (a repository is immutable once built, and may be a
read-only mount): without ``report_path`` it goes to the repository's run folder under the cache
(:func:`trtrepo.serve.default_report_path`).

Environment:
    TRTREPO_CHECK_TIMEOUT: seconds per request (default 60) and, when set, for the server and model readiness
        wait too (default 180).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from trtrepo.errors import ParityError, ServeError, SpecError

if TYPE_CHECKING:
    from trtrepo.check.compare import OutputResult
    from trtrepo.check.inputs import InputCase
    from trtrepo.check.report import CaseResult, CheckReport
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.serve import TritonServer
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

DEFAULT_READY_TIMEOUT = 180.0
DEATH_GRACE_S = 2.0  # a broken connection: how long the server we started may take to be seen dead
MAX_PORT = 65535

Progress = Callable[[str], None]
Reference = tuple["InputCase", list[Any]]
T = TypeVar("T")


def run_check(
    spec_path: str | Path,
    *,
    url_http: str | None = None,
    url_grpc: str | None = None,
    protocols: Sequence[str] = ("http", "grpc"),
    models: Sequence[str] | None = None,
    report_path: str | Path | None = None,
    repository: str | Path | None = None,
    progress: Progress = LOGGER.info,
    tritonserver: str | Path | None = None,
    request_timeout: float | None = None,
    allow_modified: bool = False,
    replica_urls: tuple[Sequence[str], Sequence[str]] | None = None,
    endpoints_file: str | Path | None = None,
    ops: bool = False,
    plot: str | Path | None = None,
    shared_memory: str = "none",
) -> CheckReport:
    """Check every (or the named) model of a model.yaml against eager PyTorch.

    Args:
        spec_path: The model.yaml.
        url_http: ``host:port`` of a running server's HTTP endpoint; with ``url_grpc`` unset only HTTP is checked.
        url_grpc: ``host:port`` of a running server's gRPC endpoint.
        protocols: Which of ``http``/``grpc`` to check.
        models: Only these models.
        report_path: Write the JSON report here (default: :func:`trtrepo.serve.default_report_path` of the
            repository when the check starts the server, none otherwise). Checked for writability first.
        repository: Repository to serve when no URL is given (default: the spec's): a folder, or the URL of a
            published one (``s3://...``: verified and mirrored by :func:`trtrepo.remote.open_remote`).
        progress: Called with one line per step.
        tritonserver: tritonserver binary to start (default: see :func:`trtrepo.serve.find_tritonserver`).
        request_timeout: Seconds per request (default ``$TRTREPO_CHECK_TIMEOUT`` or 60).
        allow_modified: Serve a repository whose files differ from its manifest (warns naming them).
        replica_urls: Several replicas: repeated ``--url-http`` and repeated ``--url-grpc``, paired by position.
        endpoints_file: Several replicas: a file of ``HTTP GRPC [NAME]`` lines (:mod:`trtrepo.check.replicas`).
        ops: Also probe every custom op through Triton (:mod:`trtrepo.check.ops_report`); ``report.ops``.
        plot: With ``ops``: write the per-op error plot (PNG) here; needs matplotlib.
        shared_memory: ``none``, ``system`` or ``cuda``: how request tensors travel (:mod:`trtrepo.runners.triton_shm`;
            same host only).

    Returns:
        The report; ``report.passed`` says whether every request of every model matched.

    Raises:
        SpecError: Bad model.yaml, unknown model or protocol, a malformed URL, a report path that cannot be written.
        ServeError: The repository differs from its manifest or cannot be read, the server cannot be started or
            reached, lacks a model, a model never becomes ready, or the server dies.
    """
    from trtrepo import deps, settings
    from trtrepo.check.replicas import check_replicas, resolve_replicas
    from trtrepo.check.report import CheckReport
    from trtrepo.check.tolerances import output_tolerance
    from trtrepo.ops.stage import prepare_ops
    from trtrepo.remote import is_url, mirror_folder, parse_url
    from trtrepo.repository.reader import read_repository
    from trtrepo.runners.triton_shm import require_shared_memory
    from trtrepo.serve import TritonServer, default_report_path
    from trtrepo.spec import load_spec

    started = time.monotonic()
    spec = load_spec(spec_path)
    chosen = spec.select(list(models) if models else None)
    replicas = resolve_replicas(url_http, url_grpc, replica_urls, endpoints_file)
    if replicas:  # one replica takes the single-server path; several all serve the protocols of the first
        url_http, url_grpc = replicas[0].http, replicas[0].grpc
    protocols = _protocols(protocols, url_http, url_grpc)
    given = {p: _check_url(f"--url-{p}", url) for p, url in (("http", url_http), ("grpc", url_grpc)) if url}
    timeout = request_timeout or settings.check_timeout()
    ready_timeout = settings.check_timeout() if settings.CHECK_TIMEOUT.raw() else DEFAULT_READY_TIMEOUT
    serve_from: str | Path | None = str(repository) if is_url(repository) else None  # a published repository
    if serve_from is not None:
        repo = mirror_folder(parse_url(str(serve_from)))  # its local mirror: reports, configs, plugin libraries
    else:
        repo = Path(repository).resolve() if repository else spec.repository
    own_server = not given
    if report_path is not None:
        report_file: Path | None = writable_report_path(report_path, "--report")
    elif own_server:
        report_file = writable_report_path(default_report_path(repo), "default report")
    else:
        report_file = None
    deps.require("torch", "trtrepo check")
    deps.require("tritonclient", "trtrepo check")
    if plot is not None:
        from trtrepo.check.ops_report import require_plotting

        require_plotting()
    require_shared_memory(shared_memory, "trtrepo check")

    server: TritonServer | None = None
    if own_server:  # everything about the repository and the server, before any work
        server = TritonServer(serve_from or repo, tritonserver=tritonserver, startup_timeout=ready_timeout,
                              allow_modified=allow_modified, progress=progress).prepare()
    view = read_repository(repo) if own_server or repo.is_dir() else None
    served_names = {m.name: (view.served_output_names(m.name, [o.name for o in m.outputs]) if view is not None
                             else [o.name for o in m.outputs]) for m in chosen}

    device = "cuda" if deps.has_cuda_torch() else "cpu"
    progress(f"spec: {spec.path} ({', '.join(m.name for m in chosen)}; {', '.join(protocols)}; eager on {device})")
    prepare_ops(spec, chosen, progress=progress)
    references = {m.name: _eager_references(spec, m, device, progress) for m in chosen}

    report = CheckReport(spec=str(spec.path), environment={**_environment(device), "shared_memory": shared_memory})
    for m in chosen:
        report.tolerances[m.name] = {o.name: dict(zip(("atol", "rtol"), output_tolerance(m, o.name), strict=True))
                                     for o in m.outputs}
    if len(replicas) > 1:
        check_replicas(report, chosen, protocols, replicas, served_names, references, timeout, ready_timeout,
                       progress, shared_memory)
    else:
        _check_one(report, chosen, protocols, server, given, served_names, references, timeout, ready_timeout,
                   progress, shared_memory)
    if ops:
        from trtrepo.check.ops_report import check_ops

        report.ops = check_ops(spec, chosen, repository=repo, model_report=report, protocols=protocols, timeout=timeout,
                               ready_timeout=ready_timeout, device=device, tritonserver=tritonserver,
                               plot=Path(plot) if plot is not None else None, progress=progress)
    report.duration_s = time.monotonic() - started
    if report_file is not None:
        try:
            progress(f"report: {report.write(report_file)}")
        except OSError as exc:
            raise ServeError(f"report {report_file}: cannot write: {exc.strerror or exc}",
                             hint="pass --report PATH in a writable folder") from None
    failed = report.failures()
    progress(f"parity: {'PASS' if report.passed else 'FAIL'} ({len(report.cases) - len(failed)}/{len(report.cases)} "
             "requests matched)")
    return report


def raise_for_failure(report: CheckReport) -> None:
    """Raise ParityError naming the first failing model/output if the report did not pass."""
    if report.passed:
        return
    first = report.failures()[0] if report.failures() else None
    drift = next((m.first_drift() for m in report.ops.models if m.first_drift()), None) if report.ops else None
    if first is None and drift is not None:
        raise ParityError(f"parity: {drift.model}: op {drift.op} drifts: {drift.first_failure()}")
    if first is None and report.cases and report.ops is not None:
        raise ParityError("parity: the model matches but not every custom op was probed (see the ops table)")
    if first is None:
        raise ParityError("parity: no request was checked")
    bad = next((o for o in first.outputs if not o.passed), None)
    detail = first.error if first.error else (f"output {bad.name}: {bad.message}" if bad else "no outputs")
    raise ParityError(f"parity: {first.model} {first.protocol} {first.case}: {detail}",
                      hint=f"{len(report.failures())} of {len(report.cases)} requests failed; see the report")


def writable_report_path(path: str | Path, what: str) -> Path:
    """``path`` (absolute) once it is known that a report can be written there; nothing is created.

    The nearest existing folder above it must be a folder this process can create files in (tried with an
    unnamed temporary file, so read-only mounts and kernel file systems are caught, root or not), and ``path``
    itself, when it exists, a file that can be opened for writing.

    Args:
        path: The report file.
        what: How the caller names it in the message (``--report``).

    Raises:
        SpecError: For ``--report``: under a file, a folder, or in a folder that cannot be written.
        ServeError: The same for the default location (the cache), with a hint to pass ``--report``.
    """
    target = Path(path).expanduser().absolute()
    problem = _report_problem(target)
    if problem is None:
        return target
    if what == "--report":
        raise SpecError(f"--report {path}: {problem}", hint="give a file path in a writable folder")
    raise ServeError(f"{what} {target}: {problem}", hint="pass --report PATH, or point TRTREPO_CACHE_DIR at a "
                     "writable folder")


def _report_problem(target: Path) -> str | None:
    if target.is_dir():
        return "is a folder"
    if target.exists() or target.is_symlink():
        try:
            with open(target, "ab"):
                pass
        except OSError as exc:
            return f"cannot be written ({exc.strerror or exc})"
        return None
    folder = target.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or exc})"
    return None


# --------------------------------------------------------------------------------------------------- helpers
def _protocols(protocols: Sequence[str], url_http: str | None, url_grpc: str | None) -> list[str]:
    chosen = list(dict.fromkeys(protocols))
    for p in chosen:
        if p not in ("http", "grpc"):
            raise SpecError(f"--protocol: must be http, grpc or both, got {p!r}")
    if url_http or url_grpc:  # a server we did not start: check only the endpoints we were given
        given = [p for p, url in (("http", url_http), ("grpc", url_grpc)) if url]
        missing = [p for p in chosen if p not in given]
        if missing:
            LOGGER.warning("no URL for %s: checking %s only", ", ".join(missing), ", ".join(given))
        chosen = [p for p in chosen if p in given]
    if not chosen:
        raise SpecError("--protocol: nothing to check (give --url-http/--url-grpc for the chosen protocols)")
    return chosen


def _check_url(flag: str, url: str) -> str:
    """``host:port`` as tritonclient wants it, or a SpecError naming the flag (before any client exists)."""
    text = url.strip()
    if "://" in text:
        raise SpecError(f"{flag} {url!r}: give host:port without a scheme (e.g. 127.0.0.1:8000)")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise SpecError(f"{flag} {url!r}: must be host:port (e.g. 127.0.0.1:8000)")
    if not port.isdigit() or not 1 <= int(port) <= MAX_PORT:
        raise SpecError(f"{flag} {url!r}: port {port!r} is not a port number (1-{MAX_PORT})")
    return f"{host}:{int(port)}"


def _eager_references(spec: Spec, model: ModelSpec, device: str, progress: Progress) -> list[Reference]:
    """Every case of the model with the eager outputs (numpy) on its inputs."""
    import torch

    from trtrepo.check.inputs import profile_cases, ragged_cases, to_numpy, to_torch
    from trtrepo.export import load_module

    net = load_module(model, spec.root, device)
    cases = profile_cases(model) + ragged_cases(model)
    progress(f"eager: {model.name}: {len(cases)} cases on {device}")
    refs = []
    dtypes = {t.name: t.dtype for t in model.inputs}
    for case in cases:
        args = [to_torch(case.arrays[t.name], dtypes[t.name], device) for t in model.inputs]
        with torch.inference_mode():
            out = net(*args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(outs) != len(model.outputs):
            raise SpecError(f"{model.yaml_path}.outputs: eager forward() returned {len(outs)} tensors, the spec lists "
                            f"{len(model.outputs)}")
        refs.append((case, [to_numpy(o) for o in outs]))
    return refs


def _check_one(report: CheckReport, chosen: Sequence[ModelSpec], protocols: Sequence[str],
               server: TritonServer | None, given: dict[str, str], served_names: dict[str, list[str]],
               references: dict[str, list[Reference]], timeout: float, ready_timeout: float,
               progress: Progress, shared_memory: str = "none") -> None:
    """Every model over every protocol against one server (the one started here, or the one given)."""
    with _endpoints(server, given, progress) as endpoints:
        report.endpoints = {p: endpoints[p] for p in protocols}
        report.server_command = server.command_line if server is not None else ""
        for protocol in protocols:
            for m in chosen:
                _check_model(report, m, protocol, endpoints[protocol], served_names[m.name], references[m.name],
                             server, timeout, ready_timeout, progress, shared_memory)


@contextlib.contextmanager
def _endpoints(server: TritonServer | None, given: dict[str, str], progress: Progress) -> Iterator[dict[str, str]]:
    if server is None:
        yield given
        return
    progress(f"serve: {server.command_line}")
    progress(f"serve: log {server.log_path}")
    with server:
        progress(f"serve: ready (HTTP {server.http_url}, gRPC {server.grpc_url})")
        yield {"http": server.http_url, "grpc": server.grpc_url}


def _check_model(report: CheckReport, model: ModelSpec, protocol: str, url: str, served: list[str],
                 references: list[Reference], server: TritonServer | None, timeout: float,
                 ready_timeout: float, progress: Progress, shared_memory: str = "none") -> None:
    from trtrepo.runners.triton_client import RequestFailed, TritonClient

    started = time.monotonic()
    datatypes, singles, ragged = _split_cases(model, references)
    progress(f"check: {model.name} over {protocol} ({url}): {len(singles)} requests one by one"
             + (f", then {len(ragged)} at once (ragged batches)" if ragged else ""))
    first = len(report.cases)
    with TritonClient(protocol, url, timeout, shared_memory) as client:
        _guard(server, lambda: client.wait_model_ready(model.name, ready_timeout, progress=progress))
        for case, expected in singles:
            result = _case(model, protocol, case)
            try:
                reply = _guard(server, functools.partial(client.infer, model.name, case.arrays, served, datatypes))
            except RequestFailed as exc:
                result.error = str(exc)
            else:
                result.latency_ms = round(reply.latency_s * 1e3, 3)
                result.outputs = _compare_outputs(model, served, reply.outputs, expected)
            report.cases.append(result)
            progress(_case_line(result))
    if ragged:
        _check_ragged(report, model, protocol, url, served, ragged, datatypes, server, timeout, progress,
                      shared_memory)
    done = report.cases[first:]
    matched = sum(1 for c in done if c.passed)
    progress(f"check: {model.name} {protocol}: {matched}/{len(done)} requests matched "
             f"({time.monotonic() - started:.1f} s)")


def _split_cases(model: ModelSpec, references: list[Reference]
                 ) -> tuple[dict[str, str], list[Reference], list[Reference]]:
    """The model's input datatypes (Triton names), its single requests and its ragged burst (cases with a group)."""
    from trtrepo import dtypes

    datatypes = {t.name: dtypes.get(t.dtype).triton for t in model.inputs}
    return (datatypes, [(c, e) for c, e in references if not c.group], [(c, e) for c, e in references if c.group])


def _check_ragged(report: CheckReport, model: ModelSpec, protocol: str, url: str, served: list[str],
                  ragged: list[Reference], datatypes: dict[str, str], server: TritonServer | None, timeout: float,
                  progress: Progress, shared_memory: str = "none") -> None:
    from trtrepo.runners.triton_client import TritonClient, infer_concurrently

    with TritonClient(protocol, url, timeout) as client:
        before = _guard(server, lambda: _stable_counts(client, model.name))
    replies = _guard(server, lambda: infer_concurrently(protocol, url, model.name, [c.arrays for c, _ in ragged],
                                                        served, datatypes, timeout, shared_memory))
    for (case, expected), reply in zip(ragged, replies, strict=True):
        if isinstance(reply, ServeError):
            _guard(server, functools.partial(_raise, reply))
        result = _case(model, protocol, case)
        if isinstance(reply, Exception):
            result.error = str(reply)
        else:
            result.latency_ms = round(reply.latency_s * 1e3, 3)
            result.outputs = _compare_outputs(model, served, reply.outputs, expected)
        report.cases.append(result)
    with TritonClient(protocol, url, timeout) as client:
        after = _guard(server, lambda: _settled_counts(client, model.name, before[0] + len(ragged)))
    counts = {"requests": after[0] - before[0], "executions": after[1] - before[1]}
    report.batching.setdefault(model.name, {})[protocol] = counts
    bad = sum(1 for c in report.cases[-len(ragged):] if not c.passed)
    sizes = ",".join(str(next(iter(c.arrays.values())).shape[0]) for c, _ in ragged)
    progress(f"  {model.name} {protocol} ragged x{len(ragged)} (batch sizes {sizes}; {counts['requests']} "
             f"requests in {counts['executions']} executions): {'ok' if bad == 0 else f'{bad} FAILED'}")


def _stable_counts(client: TritonClient, model: str, wait_s: float = 2.0) -> tuple[int, int]:
    """Triton's (request, execution) counts once two reads 0.1 s apart agree.

    The last request before the burst may still be missing from the statistics (they are updated after the
    response is sent); counting it as part of the burst would report one request too many.
    """
    deadline = time.monotonic() + wait_s
    counts: tuple[int, int] = client.execution_counts(model)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = client.execution_counts(model)
        if again == counts:
            break
        counts = again
    return counts


def _settled_counts(client: TritonClient, model: str, requests: int, wait_s: float = 5.0) -> tuple[int, int]:
    """Triton's (request, execution) counts once they include ``requests``.

    The server updates its statistics after it has sent a response, so a read right after the last reply can miss
    it; wait (bounded) until the count is reached, then return whatever it says.
    """
    deadline = time.monotonic() + wait_s
    counts: tuple[int, int] = client.execution_counts(model)
    while counts[0] < requests and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = client.execution_counts(model)
    return counts


def _case(model: ModelSpec, protocol: str, case: InputCase) -> CaseResult:
    from trtrepo.check.report import CaseResult

    return CaseResult(model=model.name, protocol=protocol, case=case.name, input_shapes=case.shapes)


def _compare_outputs(model: ModelSpec, served: list[str], actual: dict[str, Any],
                     expected: list[Any]) -> list[OutputResult]:
    from trtrepo.check.compare import compare
    from trtrepo.check.stats import error_stats, judged
    from trtrepo.check.tolerances import output_metric, output_tolerance

    results = []
    for spec_out, served_name, eager in zip(model.outputs, served, expected, strict=True):
        atol, rtol = output_tolerance(model, spec_out.name)
        metric = output_metric(model, spec_out.name)  # parity.metric: another criterion than atol/rtol
        results.append(compare(spec_out.name, actual[served_name], eager, atol, rtol) if metric is None else
                       judged(error_stats(spec_out.name, actual[served_name], eager, atol, rtol), metric))
    return results


def _case_line(result: CaseResult) -> str:
    shapes = " ".join(f"{k}{v}".replace(" ", "") for k, v in result.input_shapes.items())
    if result.error:
        return f"  {result.model} {result.protocol} {result.case} {shapes}: FAILED: {result.error}"
    worst = max((o.max_abs_error for o in result.outputs), default=0.0)
    return f"  {result.model} {result.protocol} {result.case} {shapes}: {'ok' if result.passed else 'FAILED'} " \
           f"(max abs err {worst:.3g})"


def _guard(server: TritonServer | None, fn: Callable[[], T]) -> T:
    """Run ``fn``; if it fails with a ServeError and the server we started died, say so with its log."""
    try:
        return fn()
    except ServeError:
        if server is not None:
            server.check_alive(grace=DEATH_GRACE_S)
        raise


def _raise(exc: Exception) -> None:
    raise exc


def _environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    try:
        from importlib.metadata import version

        client: str | None = version("tritonclient")
    except Exception:
        client = None
    return {"torch": torch.__version__, "numpy": numpy.__version__, "tritonclient": client, "eager_device": device,
            "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name() if device == "cuda" else None}
