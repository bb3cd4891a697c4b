"""``trtrepo check --ops``: per-custom-op parity through Triton, the first op that drifts, and the noise floor.

For each model: the eager model runs on the check's seeded cases with its custom-op calls recorded
(:mod:`trtrepo.check.capture`); each op gets a one-op probe model built with the model's target and lowering and
served by a tritonserver of its own (:mod:`trtrepo.check.op_probe`); every captured call is sent over HTTP and gRPC
and the probe's outputs are compared with the eager op's (:mod:`trtrepo.check.stats`: the model's tolerances and
``parity.metric``). Ops are reported in graph order; the first one whose probe fails is *the first op that
drifts*.

Noise floor, next to the measured error: the eager model run twice on the same inputs (eager is deterministic on
CPU: 0 unless a kernel is not), and the eager model at fp32 against the model's precision (what rounding alone
moves, for fp16/bf16 models); per op the same two for the op alone on its captured inputs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from trtrepo.check.compare import OutputResult
from trtrepo.check.stats import ErrorStats, error_stats, judged
from trtrepo.contracts import Progress
from trtrepo.errors import MissingDependencyError

if TYPE_CHECKING:
    from trtrepo.check.capture import Capture, OpCall
    from trtrepo.check.op_probe import NotServed, Probe
    from trtrepo.check.report import CheckReport
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.spec import Metric, ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

OPS_SCHEMA = "trtrepo-ops-parity/1"
PLOT_HINT = "pip install 'trtrepo[plots]' (matplotlib)"
STAT_KEYS = ("max_abs", "mean_abs", "median_abs", "p99_abs", "max_rel", "p99_rel", "cosine", "fraction_outside")


@dataclass
class ProbeCall:
    """One captured call sent to a probe over one protocol.

    Attributes:
        protocol: ``http`` or ``grpc``.
        case: The model case the call was captured in.
        shapes: Its input shapes.
        stats: Per probe output, the error statistics against the eager op.
        results: Per probe output, the verdict under the model's criterion.
        error: The request's error, '' when it succeeded.
    """

    protocol: str
    case: str
    shapes: list[list[int]]
    stats: list[ErrorStats] = field(default_factory=list)
    results: list[OutputResult] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        """The request succeeded and every output passed."""
        return not self.error and bool(self.results) and all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"protocol": self.protocol, "case": self.case, "shapes": self.shapes, "passed": self.passed,
                "error": self.error,
                "outputs": [{**s.to_dict(), "name": r.name, "passed": r.passed, "message": r.message}
                            for s, r in zip(self.stats, self.results, strict=True)]}


@dataclass
class OpResult:
    """One custom op of one model: how its probe compared, in graph order.

    Attributes:
        model: The model.
        op: ``namespace::name``.
        position: 1-based place in graph order (first call).
        target: The probe's target.
        lowering: The op's TensorRT lowering, ``-`` for the torch target.
        calls_seen: How many times the model called the op over the cases.
        captured: Distinct calls kept (probe requests per protocol).
        probe: The probe model's name ('' when not served).
        not_served: Why the probe could not be served here ('' when it was).
        calls: Every probe request.
        outputs: The probe's output names.
        atol: Tolerance used.
        rtol: Tolerance used.
        metric: The criterion (``elementwise`` or ``<statistic> <bound>``).
        noise: Per output: ``rerun`` and ``fp32`` max abs error of the eager op on its captured inputs.
    """

    model: str
    op: str
    position: int
    target: str
    lowering: str
    calls_seen: int
    captured: int
    probe: str = ""
    not_served: str = ""
    calls: list[ProbeCall] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    atol: float = 0.0
    rtol: float = 0.0
    metric: str = "elementwise"
    noise: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``pass``, ``FAIL`` or ``not served``."""
        if self.not_served:
            return "not served"
        return "pass" if self.calls and all(c.passed for c in self.calls) else "FAIL"

    def worst(self) -> list[tuple[str, ErrorStats | None, OutputResult | None]]:
        """Per output: the worst request's statistics (failures first, then the largest absolute error)."""
        out = []
        for i, name in enumerate(self.outputs):
            best: tuple[ErrorStats, OutputResult] | None = None
            for call in self.calls:
                if i >= len(call.stats):
                    continue
                item = (call.stats[i], call.results[i])
                if best is None or _rank(item) > _rank(best):
                    best = item
            out.append((name, best[0] if best else None, best[1] if best else None))
        return out

    def first_failure(self) -> str:
        """One line: the first failing request and why ('' when none failed)."""
        for call in self.calls:
            if call.error:
                return f"{call.protocol} {call.case}: {call.error}"
            for result in call.results:
                if not result.passed:
                    return f"{call.protocol} {call.case} output {result.name}: {result.message}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"model": self.model, "op": self.op, "position": self.position, "status": self.status,
                "target": self.target, "lowering": self.lowering, "probe": self.probe, "not_served": self.not_served,
                "calls_seen": self.calls_seen, "captured": self.captured, "atol": self.atol, "rtol": self.rtol,
                "metric": self.metric, "noise": self.noise,
                "worst": {name: (s.to_dict() if s else None) for name, s, _ in self.worst()},
                "calls": [c.to_dict() for c in self.calls]}


@dataclass
class ModelOps:
    """The ops of one model, in graph order, with the model's noise floor and measured error.

    Attributes:
        model: The model.
        precision: Its precision.
        ops: Its custom ops in graph order.
        noise_floor: Per output: ``rerun`` and (fp16/bf16 models) ``fp32`` statistics of eager against eager.
        measured: Per output: the model check's worst max abs/rel error and verdict.
    """

    model: str
    precision: str
    ops: list[OpResult] = field(default_factory=list)
    noise_floor: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def model_passed(self) -> bool:
        """Every measured output passed the model check."""
        return all(m.get("passed", False) for m in self.measured.values())

    def first_drift(self) -> OpResult | None:
        """The earliest op in graph order whose probe failed."""
        return next((o for o in self.ops if o.status == "FAIL"), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        drift = self.first_drift()
        return {"model": self.model, "precision": self.precision, "model_passed": self.model_passed,
                "first_drift": None if drift is None else {"op": drift.op, "position": drift.position,
                                                           "detail": drift.first_failure()},
                "order": [o.op for o in self.ops], "noise_floor": self.noise_floor, "measured": self.measured,
                "ops": [o.to_dict() for o in self.ops]}


@dataclass
class OpsReport:
    """Everything ``check --ops`` found.

    Attributes:
        models: Per model, its ops.
        library: Where the probes' op libraries came from.
        server_command: The probe server's command line ('' when no probe was served).
        plot: The plot written ('' when none).
    """

    models: list[ModelOps] = field(default_factory=list)
    library: str = ""
    server_command: str = ""
    plot: str = ""

    @property
    def ops(self) -> list[OpResult]:
        """Every op of every model."""
        return [o for m in self.models for o in m.ops]

    @property
    def passed(self) -> bool:
        """Every op was served and every probe passed (not served is not a pass; no custom op: nothing failed)."""
        return all(o.status == "pass" for o in self.ops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"schema": OPS_SCHEMA, "passed": self.passed, "library": self.library,
                "server_command": self.server_command, "plot": self.plot,
                "models": [m.to_dict() for m in self.models]}

    def table(self) -> str:
        """Ops in graph order with their statistics, the noise floor, the first op that drifts, a verdict."""
        from trtrepo._table import render

        header = ("model", "#", "op", "served as", "kept/seen", "output", "max abs", "p99 abs", "max rel", "cosine",
                  "outside", "nan/inf", "noise rerun/fp32", "ok")
        rows: list[tuple[str, ...]] = []
        for m in self.models:
            for o in m.ops:
                served_as = o.target + ("" if o.lowering == "-" else f"/{o.lowering}")
                calls = f"{o.captured}/{o.calls_seen}"
                if o.not_served:
                    rows.append((m.model, str(o.position), o.op, served_as, calls, "-", "-", "-", "-", "-", "-", "-",
                                 "-", "not served"))
                    continue
                for name, s, r in o.worst():
                    noise = o.noise.get(name, {})
                    floor = f"{noise.get('rerun', 0.0):.2g}/{noise.get('fp32', 0.0):.2g}"
                    if s is None or r is None:
                        rows.append((m.model, str(o.position), o.op, served_as, calls, name, "-", "-", "-", "-", "-",
                                     "-", floor, "FAIL"))
                        continue
                    rows.append((m.model, str(o.position), o.op, served_as, calls, name, f"{s.max_abs:.3g}",
                                 f"{s.p99_abs:.3g}", f"{s.max_rel:.3g}", f"{s.cosine:.6f}",
                                 f"{s.fraction_outside:.2%}", f"{s.nan_served}/{s.inf_served}", floor,
                                 "ok" if r.passed else "FAIL"))
        lines = [render(header, rows)] if rows else ["(no custom op calls captured)"]
        for m in self.models:
            for name, eager in m.noise_floor.items():
                measured = m.measured.get(name, {})
                parts = [f"rerun {eager['rerun']['max_abs']:.3g}"]
                if "fp32" in eager:
                    parts.append(f"fp32 vs {m.precision} {eager['fp32']['max_abs']:.3g}")
                got = f"{measured['max_abs_error']:.3g}" if "max_abs_error" in measured else "-"
                lines.append(f"noise floor {m.model} {name}: measured max abs {got}; eager {', '.join(parts)}")
            drift = m.first_drift()
            if drift is not None:
                lines.append(f"first op that drifts: {m.model}: {drift.op} (#{drift.position}; "
                             f"{drift.first_failure()})")
            elif m.ops:
                lines.append(f"first op that drifts: {m.model}: none"
                             + ("" if all(o.status == "pass" for o in m.ops) else " of the ops served here")
                             + ("" if m.model_passed else " (the model fails: the error is outside the custom ops, "
                                "or in an op not served here)"))
            for o in m.ops:
                if o.not_served:
                    lines.append(f"{m.model} {o.op}: {o.not_served}")
        failed = [o for o in self.ops if o.status == "FAIL"]
        unserved = [o for o in self.ops if o.not_served]
        if not self.ops:
            lines.append("ops: PASS (the models call no custom op of the spec's plugin sources)")
        elif self.passed:
            lines.append(f"ops: PASS ({len(self.ops)} ops, {sum(len(o.calls) for o in self.ops)} probe requests)")
        elif failed:
            lines.append(f"ops: FAIL ({len(failed)} of {len(self.ops)} ops)")
        else:
            lines.append(f"ops: NOT PROVEN ({len(unserved)} of {len(self.ops)} ops not served here)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the stage
def require_plotting() -> None:
    """MissingDependencyError (exit 3) unless matplotlib imports: checked before any work when ``--plot`` is given."""
    from trtrepo import deps

    if not deps.is_installed("matplotlib"):
        raise MissingDependencyError("--plot needs matplotlib, which is not installed", hint=PLOT_HINT)


def check_ops(spec: Spec, models: Sequence[ModelSpec], *, repository: Path, model_report: CheckReport,
              protocols: Sequence[str], timeout: float, ready_timeout: float, device: str = "cpu",
              tritonserver: str | Path | None = None, plot: Path | None = None,
              progress: Progress = LOGGER.info) -> OpsReport:
    """Probe every custom op of ``models`` through a tritonserver of its own and report them in graph order.

    Args:
        spec: The validated model.yaml (ops already built and loaded).
        models: The models checked.
        repository: The served repository (its manifest gives target, lowerings and op libraries; may be absent).
        model_report: The model check's report (the measured error next to the noise floor).
        protocols: ``http`` and/or ``grpc``.
        timeout: Seconds per request.
        ready_timeout: Seconds for the probe server and its models to become ready.
        device: Where eager runs.
        tritonserver: tritonserver binary (default: :func:`trtrepo.serve.find_tritonserver`).
        plot: Write the per-op error plot here (PNG).
        progress: One line per step.

    Raises:
        ServeError: The probe server cannot start, a probe never becomes ready, or the server dies.
        BuildError: A probe cannot be exported or built.
    """
    from trtrepo.check.capture import capture_op_calls
    from trtrepo.check.inputs import profile_cases
    from trtrepo.check.op_probe import NotServed, plan_probes
    from trtrepo.export import load_module
    from trtrepo.ops.stage import describe_ops
    from trtrepo.repository.reader import read_repository

    descriptions = describe_ops(spec, models)
    view = read_repository(repository) if repository.is_dir() else None
    records = {m.name: view.record(m.name) if view is not None else None for m in models}
    report = OpsReport()
    probes: list[Probe] = []
    for model in models:
        net = load_module(model, spec.root, device)
        cases = profile_cases(model)
        capture = capture_op_calls(net, model, descriptions, cases, device)
        progress(f"ops: {model.name}: {len(capture.order)} custom ops in graph order "
                 f"({', '.join(capture.order) or 'none'})")
        entry = ModelOps(model=model.name, precision=model.precision,
                         noise_floor=_model_noise(net, spec, model, cases, device),
                         measured=_measured(model_report, model.name))
        plans = plan_probes(model, {op: capture.calls[op] for op in capture.order}, descriptions,
                            records[model.name])
        for position, plan in enumerate(plans, start=1):
            entry.ops.append(_op_entry(model, capture, plan, position, device))
            if not isinstance(plan, NotServed):
                probes.append(plan)
        report.models.append(entry)
    if probes:
        _serve_probes(report, spec, probes, repository if view is not None else None, records, protocols, timeout,
                      ready_timeout, device, tritonserver, progress)
    if plot is not None:
        report.plot = str(write_plot(report, plot))
        progress(f"ops: plot {report.plot}")
    return report


def _op_entry(model: ModelSpec, capture: Capture, plan: Probe | NotServed, position: int, device: str) -> OpResult:
    from trtrepo.check.op_probe import NotServed
    from trtrepo.check.tolerances import output_tolerance

    atol, rtol = output_tolerance(model, "")
    calls = capture.calls[plan.op]
    entry = OpResult(model=model.name, op=plan.op, position=position, target=plan.target, lowering=plan.lowering,
                     calls_seen=capture.total[plan.op], captured=len(calls), atol=atol, rtol=rtol,
                     metric=_metric_text(model.parity.metric))
    if isinstance(plan, NotServed):
        entry.not_served = plan.reason
        entry.outputs = [str(i) for i in range(len(calls[0].outputs))]
    else:
        entry.probe = plan.name
        entry.outputs = list(plan.output_names)
    entry.noise = _op_noise(calls, entry.outputs, device)
    return entry


def _serve_probes(report: OpsReport, spec: Spec, probes: list[Probe], served: Path | None,
                  records: dict[str, Any], protocols: Sequence[str], timeout: float, ready_timeout: float,
                  device: str, tritonserver: str | Path | None, progress: Progress) -> None:
    from trtrepo.check.op_probe import probe_folder, write_probe_repository
    from trtrepo.check.tolerances import output_metric
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.serve import TritonServer, new_log_path

    entries = {(o.model, o.op): o for o in report.ops}
    models = {m.name: m for m in spec.models}
    with probe_folder(served or spec.repository) as folder:
        progress(f"ops: probe repository {folder} ({len(probes)} probes)")
        built = write_probe_repository(spec, probes, folder, served=served, records=records, device=device,
                                       progress=progress)
        report.library = built.library
        # the log goes beside the served repository's server logs (kept and pruned there), not into the probe folder
        server = TritonServer(folder, tritonserver=tritonserver, startup_timeout=ready_timeout, progress=progress,
                              log_path=new_log_path(served or spec.repository))
        server.prepare()
        report.server_command = server.command_line
        progress(f"ops: serve: {server.command_line}")
        progress(f"ops: serve: log {server.log_path}")
        with server:
            for protocol in protocols:
                url = server.http_url if protocol == "http" else server.grpc_url
                with TritonClient(protocol, url, timeout) as client:
                    for probe in probes:
                        entry = entries[(probe.model, probe.op)]
                        client.wait_model_ready(probe.name, ready_timeout)
                        sent = [_send(client, probe, call, protocol, entry.atol, entry.rtol,
                                      output_metric(models[probe.model], "")) for call in probe.calls]
                        entry.calls += sent
                        progress(f"  {probe.model} {probe.op} {protocol}: {sum(c.passed for c in sent)}/{len(sent)} "
                                 "requests matched")


def _send(client: TritonClient, probe: Probe, call: OpCall, protocol: str, atol: float, rtol: float,
          metric: Metric | None) -> ProbeCall:
    """One captured call to its probe; the outputs compared with the eager op's."""
    from trtrepo.dtypes import get
    from trtrepo.runners.triton_client import RequestFailed

    result = ProbeCall(protocol=protocol, case=call.case, shapes=call.shapes)
    datatypes = {t.name: get(t.dtype).triton for t in probe.spec.inputs}
    try:
        reply = client.infer(probe.name, dict(zip(call.input_names, call.inputs, strict=True)),
                             list(probe.output_names), datatypes)
    except RequestFailed as exc:
        result.error = str(exc)
        return result
    for name, expected in zip(probe.output_names, call.outputs, strict=True):
        stats = error_stats(name, reply.outputs[name], expected, atol, rtol)
        result.stats.append(stats)
        result.results.append(judged(stats, metric))
    return result


# ---------------------------------------------------------------------------------------------- noise floor
def _model_noise(net: Any, spec: Spec, model: ModelSpec, cases: Sequence[Any],
                 device: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per output: eager against eager again (``rerun``) and, for fp16/bf16, fp32 eager against it (``fp32``)."""
    from trtrepo.check.tolerances import output_tolerance
    from trtrepo.export import load_module

    first = _forward(net, model, cases, device)
    again = _forward(net, model, cases, device)
    wide = None
    if model.precision != "fp32":
        fp32 = dataclasses.replace(model, precision="fp32")
        wide = _forward(load_module(fp32, spec.root, device), model, cases, device, as_fp32=True)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, spec_out in enumerate(model.outputs):
        atol, rtol = output_tolerance(model, spec_out.name)
        floor = {"rerun": _summary([error_stats(spec_out.name, b[i], a[i], atol, rtol)
                                    for a, b in zip(first, again, strict=True)])}
        if wide is not None:
            floor["fp32"] = _summary([error_stats(spec_out.name, _f32(a[i]), _f32(w[i]), atol, rtol)
                                      for a, w in zip(first, wide, strict=True)])
        out[spec_out.name] = floor
    return out


def _forward(net: Any, model: ModelSpec, cases: Sequence[Any], device: str,
             as_fp32: bool = False) -> list[list[NDArray[Any]]]:
    import torch

    from trtrepo.check.inputs import to_numpy, to_torch

    outs = []
    for case in cases:
        args = [to_torch(case.arrays[t.name], t.dtype, device) for t in model.inputs]
        if as_fp32:
            args = [a.float() if a.is_floating_point() else a for a in args]
        with torch.inference_mode():
            out = net(*args)
        outs.append([to_numpy(o) for o in (out if isinstance(out, (tuple, list)) else [out])])
    return outs


def _op_noise(calls: Sequence[OpCall], outputs: Sequence[str], device: str) -> dict[str, dict[str, float]]:
    """Per op output: max abs error of the eager op rerun, and of the op at fp32, on the captured inputs."""
    from trtrepo.check.capture import run_op

    noise: dict[str, dict[str, float]] = {name: {"rerun": 0.0, "fp32": 0.0} for name in outputs}
    for call in calls:
        again = run_op(call, device)
        wide = run_op(call, device, dtype="fp32")
        for name, eager, a, w in zip(outputs, call.outputs, again, wide, strict=True):
            noise[name]["rerun"] = max(noise[name]["rerun"], _max_abs(a, eager))
            noise[name]["fp32"] = max(noise[name]["fp32"], _max_abs(w, eager))
    return noise


def _max_abs(a: NDArray[Any], b: NDArray[Any]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    return float(np.abs(x[finite] - y[finite]).max()) if finite.any() else 0.0


def _f32(a: NDArray[Any]) -> NDArray[Any]:
    return np.asarray(a, dtype=np.float32) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a


def _summary(stats: list[ErrorStats]) -> dict[str, Any]:
    worst = max(stats, key=lambda s: s.max_abs) if stats else None
    if worst is None:
        return {k: 0.0 for k in STAT_KEYS}
    return {k: float(getattr(worst, k)) for k in STAT_KEYS}


def _measured(report: CheckReport, model: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (name, output), result in report.worst().items():
        if name == model:
            passed = all(o.passed for c in report.cases if c.model == model for o in c.outputs if o.name == output)
            out[output] = {"max_abs_error": result.max_abs_error, "max_rel_error": result.max_rel_error,
                           "passed": passed and not any(c.error for c in report.cases if c.model == model)}
    return out


def _metric_text(metric: Metric | None) -> str:
    if metric is None or metric.criterion == "elementwise":
        return "elementwise"
    return f"{metric.criterion} {'>=' if metric.criterion == 'cosine' else '<='} {metric.threshold:g}"


def _rank(item: tuple[ErrorStats, OutputResult]) -> tuple[int, float]:
    return (0 if item[1].passed else 1, item[0].max_abs)


# --------------------------------------------------------------------------------------------------- plot
def write_plot(report: OpsReport, path: Path) -> Path:
    """A PNG per model row: per op (graph order) the worst max abs error of its probe, its eager noise floor (op at
    fp32) and the tolerance.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    from trtrepo.bench.plots import pyplot

    plt = pyplot()
    if plt is None:
        raise MissingDependencyError("--plot needs matplotlib, which is not installed", hint=PLOT_HINT)
    models = [m for m in report.models if m.ops] or report.models
    fig, axes = plt.subplots(len(models) or 1, 1, figsize=(8, 3.2 * max(1, len(models))), squeeze=False)
    for ax, m in zip(axes[:, 0], models, strict=False):
        labels, errors, floors, colors = [], [], [], []
        for o in m.ops:
            for name, s, r in o.worst():
                labels.append(f"{o.position}. {o.op.split('::')[-1]}:{name.removeprefix('output_')}")
                errors.append(max(s.max_abs, 1e-12) if s is not None else np.nan)
                floors.append(max(o.noise.get(name, {}).get("fp32", 0.0), 1e-12))
                colors.append("tab:grey" if o.not_served else ("tab:red" if r is None or not r.passed else
                                                               "tab:blue"))
        xs = np.arange(len(labels))
        ax.bar(xs, errors, color=colors, label="probe max abs error (red: fails)")
        ax.plot(xs, floors, "k_", markersize=20, label="eager noise floor (op at fp32)")
        if m.ops:
            ax.axhline(m.ops[0].atol, color="tab:green", linestyle="--", label=f"atol {m.ops[0].atol:g}")
        ax.set_yscale("log")
        ax.set_xticks(xs, labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{m.model} ({m.precision}): per-op error through Triton, graph order")
        ax.legend(fontsize=7)
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
