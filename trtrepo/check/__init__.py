"""``trtrepo check``: prove that what Triton serves equals eager PyTorch, over HTTP and gRPC.

For each model: seeded inputs over the shape profile (:mod:`trtrepo.check.inputs`), the eager module's outputs on
them (custom ops built and loaded as for the build), the same inputs sent to Triton one by one and, for batching
models, as concurrent ragged requests; every output is compared with per-output tolerances
(:mod:`trtrepo.check.tolerances`, :mod:`trtrepo.check.compare`) and reported (:mod:`trtrepo.check.report`).

Without ``url_http``/``url_grpc`` a tritonserver is started on the spec's repository (free ports, loopback) and
stopped at the end. Every network call has a timeout: an unreachable or dying server ends the run with a
ServeError, never a hang.

Environment:
    TRTREPO_CHECK_TIMEOUT: seconds per request and for model readiness (default 60 / 180).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.errors import ParityError, ServeError, SpecError

if TYPE_CHECKING:
    from trtrepo.check.client import TritonClient
    from trtrepo.check.inputs import InputCase
    from trtrepo.check.report import CaseResult, CheckReport
    from trtrepo.serve import TritonServer
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

DEFAULT_READY_TIMEOUT = 180.0

Progress = Callable[[str], None]


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
) -> CheckReport:
    """Check every (or the named) model of a model.yaml against eager PyTorch.

    Args:
        spec_path: The model.yaml.
        url_http: ``host:port`` of a running server's HTTP endpoint; with ``url_grpc`` unset only HTTP is checked.
        url_grpc: ``host:port`` of a running server's gRPC endpoint.
        protocols: Which of ``http``/``grpc`` to check.
        models: Only these models.
        report_path: Write the JSON report here (default ``<repository>/parity-report.json`` when the check starts
            the server, none otherwise).
        repository: Repository to serve when no URL is given (default: the spec's).
        progress: Called with one line per step.
        tritonserver: tritonserver binary to start (default: see :func:`trtrepo.serve.find_tritonserver`).
        request_timeout: Seconds per request (default ``$TRTREPO_CHECK_TIMEOUT`` or 60).

    Returns:
        The report; ``report.passed`` says whether every request of every model matched.

    Raises:
        SpecError: Bad model.yaml, unknown model or protocol.
        ServeError: The server cannot be started or reached, a model never becomes ready, or the server dies.
    """
    from trtrepo import deps, settings
    from trtrepo.check.report import CheckReport
    from trtrepo.ops.stage import prepare_ops
    from trtrepo.repository.reader import read_repository
    from trtrepo.spec import load_spec

    started = time.monotonic()
    spec = load_spec(spec_path)
    chosen = spec.select(list(models) if models else None)
    protocols = _protocols(protocols, url_http, url_grpc)
    timeout = request_timeout or settings.check_timeout()
    ready_timeout = max(DEFAULT_READY_TIMEOUT, timeout)
    deps.require("torch", "trtrepo check")
    deps.require("tritonclient", "trtrepo check")
    device = "cuda" if deps.has_cuda_torch() else "cpu"

    progress(f"spec: {spec.path} ({', '.join(m.name for m in chosen)}; {', '.join(protocols)}; eager on {device})")
    prepare_ops(spec, chosen, progress=progress)
    repo = Path(repository).resolve() if repository else spec.repository
    view = read_repository(repo) if repo.is_dir() else None
    served_names = {m.name: (view.served_output_names(m.name, [o.name for o in m.outputs]) if view is not None
                             else [o.name for o in m.outputs]) for m in chosen}
    references = {m.name: _eager_references(spec, m, device, progress) for m in chosen}

    report = CheckReport(spec=str(spec.path), environment=_environment(device))
    for m in chosen:
        from trtrepo.check.tolerances import output_tolerance

        report.tolerances[m.name] = {o.name: dict(zip(("atol", "rtol"), output_tolerance(m, o.name), strict=True))
                                     for o in m.outputs}
    with _endpoints(repo, url_http, url_grpc, tritonserver, progress) as (endpoints, server):
        report.endpoints = {p: endpoints[p] for p in protocols}
        report.server_command = server.command_line if server is not None else ""
        for protocol in protocols:
            for m in chosen:
                _check_model(report, m, protocol, endpoints[protocol], served_names[m.name], references[m.name],
                             server, timeout, ready_timeout, progress)
    report.duration_s = time.monotonic() - started
    if report_path is None and url_http is None and url_grpc is None:
        report_path = repo / "parity-report.json"
    if report_path is not None:
        progress(f"report: {report.write(report_path)}")
    failed = report.failures()
    progress(f"parity: {'PASS' if report.passed else 'FAIL'} ({len(report.cases) - len(failed)}/{len(report.cases)} "
             "requests matched)")
    return report


def raise_for_failure(report: CheckReport) -> None:
    """Raise ParityError naming the first failing model/output if the report did not pass."""
    if report.passed:
        return
    first = report.failures()[0] if report.failures() else None
    if first is None:
        raise ParityError("parity: no request was checked")
    bad = next((o for o in first.outputs if not o.passed), None)
    detail = first.error if first.error else (f"output {bad.name}: {bad.message}" if bad else "no outputs")
    raise ParityError(f"parity: {first.model} {first.protocol} {first.case}: {detail}",
                      hint=f"{len(report.failures())} of {len(report.cases)} requests failed; see the report")


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


def _eager_references(spec: Spec, model: ModelSpec, device: str,
                      progress: Progress) -> list[tuple[InputCase, list[Any]]]:
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


@contextlib.contextmanager
def _endpoints(repository: Path, url_http: str | None, url_grpc: str | None, tritonserver: str | Path | None,
               progress: Progress) -> Iterator[tuple[dict[str, str], TritonServer | None]]:
    if url_http or url_grpc:
        yield {k: v for k, v in (("http", url_http), ("grpc", url_grpc)) if v}, None
        return
    from trtrepo.serve import TritonServer

    if not repository.is_dir():
        raise ServeError(f"repository {repository} does not exist", hint="run trtrepo build model.yaml first")
    server = TritonServer(repository, tritonserver=tritonserver, startup_timeout=DEFAULT_READY_TIMEOUT)
    progress(f"serve: {server.command_line}")
    progress(f"serve: log {server.log_path}")
    with server:
        progress(f"serve: ready (HTTP {server.http_url}, gRPC {server.grpc_url})")
        yield {"http": server.http_url, "grpc": server.grpc_url}, server


def _check_model(report: CheckReport, model: ModelSpec, protocol: str, url: str, served: list[str],
                 references: list[tuple[InputCase, list[Any]]], server: TritonServer | None, timeout: float,
                 ready_timeout: float, progress: Progress) -> None:
    from trtrepo import dtypes
    from trtrepo.check.client import RequestFailed, TritonClient, infer_concurrently

    datatypes = {t.name: dtypes.get(t.dtype).triton for t in model.inputs}
    with TritonClient(protocol, url, timeout) as client:
        _guard(server, lambda: client.wait_model_ready(model.name, ready_timeout))
        singles = [(c, e) for c, e in references if not c.group]
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
    ragged = [(c, e) for c, e in references if c.group]
    if ragged:
        with TritonClient(protocol, url, timeout) as client:
            before = _guard(server, lambda: client.execution_counts(model.name))
        replies = _guard(server, lambda: infer_concurrently(protocol, url, model.name, [c.arrays for c, _ in ragged],
                                                            served, datatypes, timeout))
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


def _compare_outputs(model: ModelSpec, served: list[str], actual: dict[str, Any], expected: list[Any]) -> list[Any]:
    from trtrepo.check.compare import compare
    from trtrepo.check.tolerances import output_tolerance

    results = []
    for spec_out, served_name, eager in zip(model.outputs, served, expected, strict=True):
        atol, rtol = output_tolerance(model, spec_out.name)
        results.append(compare(spec_out.name, actual[served_name], eager, atol, rtol))
    return results


def _case_line(result: CaseResult) -> str:
    shapes = " ".join(f"{k}{v}".replace(" ", "") for k, v in result.input_shapes.items())
    if result.error:
        return f"  {result.model} {result.protocol} {result.case} {shapes}: FAILED: {result.error}"
    worst = max((o.max_abs_error for o in result.outputs), default=0.0)
    return f"  {result.model} {result.protocol} {result.case} {shapes}: {'ok' if result.passed else 'FAILED'} " \
           f"(max abs err {worst:.3g})"


def _guard(server: TritonServer | None, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; if it fails with a ServeError and the server we started died, say so with its log."""
    try:
        return fn()
    except ServeError:
        if server is not None and not server.is_alive():
            server.check_alive()
        raise


def _raise(exc: Exception) -> None:
    raise exc


def _environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    try:
        from importlib.metadata import version

        client = version("tritonclient")
    except Exception:
        client = None
    return {"torch": torch.__version__, "numpy": numpy.__version__, "tritonclient": client, "eager_device": device,
            "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name() if device == "cuda" else None}
