"""``trtrepo bench engines MODEL_YAML``: every way this machine can run the model, side by side in one process.

Engines (``trtrepo bench engines X --engines list``), each a runner from :mod:`trtrepo.runners`:

* ``eager`` — eager PyTorch with the custom CUDA kernels (the baseline every ratio divides by);
  ``eager-native`` — the same block written in native aten ops (``--native``);
* ``compile`` — ``torch.compile`` of the eager module (the custom ops stay opaque calls); ``compile-graphs`` — its
  ``reduce-overhead`` mode (CUDA graphs; GPU only);
* ``plan-<lowering>-<profile>`` — TensorRT plans built through the tensorrt target: lowering ``decompose`` (the
  custom ops lowered to aten) or ``native`` (the ``--native`` block: the ceiling); profile ``dynamic`` (model.yaml's
  min/opt/max), ``static`` (one plan per measured batch size) or ``buckets`` (one tight plan per batch bucket). With
  ``--cuda-graphs`` each also as ``...-graph`` (the execution captured once, replayed);
* ``hybrid-tt`` / ``hybrid-tt-cpp`` — ``torch_tensorrt.dynamo.compile`` with the custom ops left to their kernels,
  run by Torch-TensorRT's Python / C++ runtime module; ``hybrid-lean`` (and ``hybrid-lean-graph``) — the same
  partition run by :class:`trtrepo.runners.hybrid.HybridRunner`.

What is measured, per model, batch size and engine, after a check that the engine's outputs match eager (max abs
error against the precision's tolerance) and a warm-up until timings settle (recorded: TensorRT-RTX specialises
kernels per shape at run time): ``runs`` times, engines in a rotating order, per-call latency (CUDA events around
each call on the runner's own non-default stream, synchronised each call; p50/p90/p99) and pipelined time per call
(``pipeline`` calls enqueued back to back, one synchronisation). Ratios to eager are taken within each run, then
summarised over runs (median and range): ratios measured side by side, never absolute times against a threshold.

Profiles: Torch-TensorRT 2.11–2.13 (the GPU machine has torch-tensorrt-rtx 2.11) builds one optimisation profile per
plan; several profiles per plan (``torch_tensorrt.Input(profiles=[...])``) exist only from 2.14 (its main branch,
2026-08). So ``buckets`` is one tight plan per bucket behind a :class:`trtrepo.runners.plan.PlanSet`; the plan runner
already picks among several profiles of one plan when a plan has them.

On a machine without CUDA the CPU engines (eager, eager-native, compile) run with a host clock and every GPU engine
is listed as skipped with the reason. Results: ``engines.json``, ``engines.txt`` and ``engines.png`` under ``out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo._table import render
from trtrepo.bench.engine_report import (
    BASELINE,
    CANDIDATE,
    REFERENCE,
    SERVED_TENSORRT,
    SERVED_TORCH,
    EngineResult,
    EngineRun,
    EnginesReport,
    EngineStatus,
)
from trtrepo.bench.inputs import profile_batch_sizes
from trtrepo.bench.stats import LatencyStats
from trtrepo.bench.timing import WarmUp, WarmUpPolicy
from trtrepo.contracts import Progress
from trtrepo.errors import MissingDependencyError, SpecError

if TYPE_CHECKING:
    from trtrepo.ops.build import BuiltOps
    from trtrepo.runners.base import DeviceRunner
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

PROFILES = ("dynamic", "static", "buckets")
LOWERINGS = ("decompose", "native")
KERNEL_SPECIALIZATION_NOTE = ("TensorRT-RTX specialises dynamic-shape kernels at run time; every shape was warmed up "
                              "until two consecutive window medians agreed before it was timed")

# Capabilities an engine may need.
CUDA = "cuda"
TORCH_TENSORRT = "torch_tensorrt"
NATIVE = "native"
CPP_RUNTIME = "cpp_runtime"



# ------------------------------------------------------------------------------------------ options and plan
@dataclass(frozen=True)
class EngineOptions:
    """What ``trtrepo bench engines`` runs and how (the CLI's options).

    Attributes:
        engines: Engine names to run; None = every engine that can run here (within ``profiles``/``cuda_graphs``).
        require: Engines that must run: one that cannot is an error (exit 3), not a skip.
        profiles: Plan profiles to build when ``engines`` is None.
        buckets: Upper bounds of the batch buckets (default: the batch sizes and the profile's max).
        native: ``module:factory`` of the model in native aten ops, beside model.yaml.
        runs: Repeated measurements (the spread).
        iterations: Timed per-call samples per run.
        pipeline: Calls per pipelined sample.
        max_seconds: Bound on each per-call measurement.
        kernel_specialization: TensorRT-RTX dynamic-shape kernel strategy (None: its default).
        cuda_graphs: Include the ``-graph`` engines when ``engines`` is None.
        warmup: When a shape counts as warm.
    """

    engines: Sequence[str] | None = None
    require: Sequence[str] = ()
    profiles: Sequence[str] = PROFILES
    buckets: Sequence[int] | None = None
    native: str | None = None
    runs: int = 3
    iterations: int = 200
    pipeline: int = 64
    max_seconds: float = 5.0
    kernel_specialization: str | None = "eager"
    cuda_graphs: bool = True
    warmup: WarmUpPolicy = field(default_factory=WarmUpPolicy)

    def validate(self) -> None:
        """Raise SpecError naming the option that is invalid."""
        for name, value in (("--runs", self.runs), ("--iterations", self.iterations), ("--pipeline", self.pipeline)):
            if value < 1:
                raise SpecError(f"{name}: must be >= 1, got {value}")
        unknown = [p for p in self.profiles if p not in PROFILES]
        if unknown:
            raise SpecError(f"--profiles: {unknown} not among {', '.join(PROFILES)}")
        if self.buckets is not None and (not self.buckets or min(self.buckets) < 1):
            raise SpecError(f"--buckets: positive integers, got {list(self.buckets)}")
        if self.max_seconds <= 0 or self.warmup.max_seconds <= 0:
            raise SpecError("--max-seconds and --warmup-seconds: must be > 0")
        if self.native is not None and ":" not in self.native:
            raise SpecError(f"--native: {self.native!r} is not module:factory (e.g. model:build_native)")


@dataclass(frozen=True)
class Capabilities:
    """What this process can run."""

    cuda: bool
    torch_tensorrt: bool
    cpp_runtime: bool
    native: bool

    def missing(self, needs: Sequence[str]) -> str | None:
        """Why an engine needing ``needs`` cannot run here, or None."""
        reasons = {
            CUDA: (self.cuda, "needs CUDA torch and a GPU"),
            TORCH_TENSORRT: (self.torch_tensorrt, "needs torch_tensorrt + TensorRT (GPU machine: TensorRT-RTX staged, "
                                                  "see scripts/lanes/env.sh)"),
            CPP_RUNTIME: (self.cpp_runtime, "this Torch-TensorRT build has no C++ runtime"),
            NATIVE: (self.native, "needs --native MODULE:FACTORY (the block in native aten ops)"),
        }
        for need in needs:
            ok, why = reasons[need]
            if not ok:
                return why
        return None


@dataclass(frozen=True)
class EngineKind:
    """One engine: its name, what it is, what it needs, what it stands for, and how its runner is built."""

    name: str
    help: str
    needs: tuple[str, ...]
    serves_as: str
    build: Callable[[EngineContext, EngineKind], DeviceRunner]
    lowering: str | None = None
    profile: str | None = None
    graph: bool = False


ENGINES: dict[str, EngineKind] = {}


def engine(name: str, help: str, needs: Sequence[str] = (), serves_as: str = REFERENCE, *,
           lowering: str | None = None, profile: str | None = None, graph: bool = False
           ) -> Callable[[Callable[[EngineContext, EngineKind], DeviceRunner]],
                         Callable[[EngineContext, EngineKind], DeviceRunner]]:
    """Register the decorated runner builder as engine ``name`` (registration order = report order)."""

    def register(build: Callable[[EngineContext, EngineKind], DeviceRunner]
                 ) -> Callable[[EngineContext, EngineKind], DeviceRunner]:
        if name in ENGINES:
            raise ValueError(f"engine {name!r} registered twice")
        ENGINES[name] = EngineKind(name, help, tuple(needs), serves_as, build, lowering, profile, graph)
        return build

    return register


@dataclass(frozen=True)
class Choice:
    """An engine chosen for this run, and why it will not run (``skip``), if it will not."""

    kind: EngineKind
    skip: str | None = None


def select_engines(options: EngineOptions, caps: Capabilities,
                   registry: Mapping[str, EngineKind] | None = None) -> list[Choice]:
    """The engines of this run, in registry order, each with the reason it is skipped (None: it runs).

    Without ``options.engines``: every engine, except plan profiles not in ``options.profiles`` and ``-graph``
    engines without ``options.cuda_graphs``. Named engines run whatever the profile options say.

    Raises:
        SpecError: An unknown engine name (with the closest known one).
        MissingDependencyError: An engine in ``options.require`` cannot run here (the message says why).
    """
    kinds = dict(ENGINES if registry is None else registry)
    for name in [*(options.engines or []), *options.require]:
        if name not in kinds:
            from trtrepo.dtypes import did_you_mean

            raise SpecError(f"--engines: unknown engine {name!r}{did_you_mean(name, list(kinds))}",
                            hint="`trtrepo bench engines MODEL_YAML --engines list` lists them")
    required = set(options.require)
    chosen = []
    for kind in kinds.values():
        if options.engines is not None:
            keep = kind.name in set(options.engines) | required
        else:
            keep = kind.name in required or (
                (kind.profile is None or kind.profile in options.profiles) and (options.cuda_graphs or not kind.graph))
        if keep:
            chosen.append(Choice(kind, caps.missing(kind.needs)))
    blocked = [f"{c.kind.name} ({c.skip})" for c in chosen if c.skip and c.kind.name in required]
    if blocked:
        raise MissingDependencyError(f"required engines cannot run here: {'; '.join(blocked)}",
                                     hint="run on the GPU machine with TensorRT-RTX staged (scripts/gpu_all.sh)")
    return chosen


def buckets_for(lo: int, hi: int, batch_sizes: Sequence[int], tops: Sequence[int] | None = None
                ) -> list[tuple[int, int]]:
    """Batch buckets covering ``lo``..``hi``: each bucket runs from the previous top + 1 to its own top.

    Args:
        lo: The profile's min batch.
        hi: The profile's max batch.
        batch_sizes: The measured batch sizes (the default tops: each is then the top, and the opt, of its bucket).
        tops: Explicit bucket tops instead.

    Returns:
        ``(min, max)`` per bucket, ascending; the last one ends at ``hi``.
    """
    edges = sorted({t for t in (tops if tops else batch_sizes) if lo <= t <= hi} | {hi})
    out, start = [], lo
    for top in edges:
        if top >= start:
            out.append((start, top))
            start = top + 1
    return out


def with_batch_range(model: ModelSpec, lo: int, opt: int, hi: int) -> ModelSpec:
    """``model`` with dim 0 of every dynamic-batch input limited to ``lo``..``hi`` (static when ``lo == hi``)."""
    inputs = []
    for t in model.inputs:
        if not t.shape or t.shape[0] != -1:
            inputs.append(t)
            continue
        shape = (lo, *t.shape[1:]) if lo == hi else t.shape
        inputs.append(dataclasses.replace(t, shape=shape, min=(lo, *t.min[1:]), opt=(opt, *t.opt[1:]),
                                          max=(hi, *t.max[1:])))
    return dataclasses.replace(model, inputs=tuple(inputs))


def batch_range(model: ModelSpec) -> tuple[int, int, int]:
    """(min, opt, max) of dim 0 over the dynamic-batch inputs; the static batch three times when none is dynamic."""
    dynamic = [t for t in model.inputs if t.shape and t.shape[0] == -1]
    if not dynamic:
        b = model.inputs[0].shape[0]
        return b, b, b
    lo, hi = max(t.min[0] for t in dynamic), min(t.max[0] for t in dynamic)
    return lo, min(max(dynamic[0].opt[0], lo), hi), hi


# --------------------------------------------------------------------------------------------- build context
@dataclass
class EngineContext:
    """What engine builders share for one model: the spec, the eager module, built plans and programs."""

    spec: Spec
    model: ModelSpec
    built: BuiltOps | None
    device: str
    options: EngineOptions
    out: Path
    batch_sizes: tuple[int, ...]
    progress: Progress
    eager_module: Any = None
    _native_module: Any = None
    _plans: dict[tuple[Any, ...], bytes] = field(default_factory=dict)
    _partitioned: dict[bool, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def input_names(self) -> list[str]:
        """forward()'s argument names."""
        return [t.name for t in self.model.inputs]

    @property
    def output_names(self) -> list[str]:
        """The spec's output names."""
        return [o.name for o in self.model.outputs]

    def native_model(self) -> ModelSpec:
        """The spec's model with the ``--native`` factory and no custom ops."""
        assert self.options.native is not None
        source = dataclasses.replace(self.model.source, factory=self.options.native, exported_program=None)
        return dataclasses.replace(self.model, source=source, ops={})

    def native_module(self) -> Any:
        """The ``--native`` module, loaded once."""
        if self._native_module is None:
            from trtrepo.export import load_module

            self._native_module = load_module(self.native_model(), self.spec.root, self.device)
        return self._native_module

    def program(self, lowering: str, lo: int, opt: int, hi: int) -> Any:
        """A fresh ExportedProgram for this batch range: of the ``--native`` model (``native``) or of the spec's.

        Not cached: the plan build and Torch-TensorRT's compile each transform the program they are given.
        """
        from trtrepo.export import export_model

        base = self.native_model() if lowering == "native" else self.model
        return export_model(with_batch_range(base, lo, opt, hi), self.spec.root, self.device)

    def plan(self, lowering: str, lo: int, opt: int, hi: int) -> bytes:
        """A plan through the tensorrt target (every custom op ``decompose``d, or the native block), cached."""
        key = (lowering, lo, opt, hi)
        if key not in self._plans:
            from trtrepo.ops.stage import cache_dir
            from trtrepo.targets.base import BuildContext
            from trtrepo.targets.tensorrt_target import PLAN_FILE, build_tensorrt

            if lowering == "native":
                model = with_batch_range(self.native_model(), lo, opt, hi)
            else:
                ops = {op: "decompose" for op in (self.built.descriptions if self.built else {})}
                model = dataclasses.replace(with_batch_range(self.model, lo, opt, hi), ops=ops)
            # one build log per plan (<name>.tensorrt.log under out/logs)
            model = dataclasses.replace(model, name=f"{self.model.name}-{lowering}-b{lo}-{hi}")
            ctx = BuildContext(spec=self.spec, ops=self.built, cache_dir=cache_dir(), log_dir=self.out / "logs",
                               device=self.device, progress=self.progress)
            start = time.monotonic()
            artifacts = build_tensorrt(ctx, model, self.program(lowering, lo, opt, hi))
            self._plans[key] = artifacts.files[PLAN_FILE]
            self.facts.setdefault("plan_builds", []).append(
                {"lowering": lowering, "batch": [lo, opt, hi], "seconds": round(time.monotonic() - start, 1),
                 "bytes": len(self._plans[key]), "versions": artifacts.versions})
        return self._plans[key]

    def partitioned(self, python_runtime: bool) -> Any:
        """The custom-op program compiled by Torch-TensorRT with the custom ops left to torch (the hybrid)."""
        if python_runtime not in self._partitioned:
            import torch

            from trtrepo.ops.stage import cache_dir
            from trtrepo.runners.hybrid import split_ops
            from trtrepo.tensorrt import tt_adapter
            from trtrepo.tensorrt.plan import build_options, input_profiles

            lo, opt, hi = batch_range(self.model)
            ep = self.program("custom", lo, opt, hi)
            descriptions = self.built.descriptions if self.built else {}
            custom = [d.torch_op() for d in descriptions.values()]
            namespaces = {d.namespace for d in descriptions.values()}
            from trtrepo.runners.hybrid import graph_ops

            self.facts["hybrid_expected_segments"] = [
                {"kind": s.kind, "ops": list(s.ops)} for s in split_ops(graph_ops(ep.graph), namespaces)]
            timing = cache_dir() / "tensorrt" / "timing.cache"
            timing.parent.mkdir(parents=True, exist_ok=True)
            options = build_options(tt_adapter.compile_parameters(), self.model.precision, timing)
            if "enabled_precisions" in options:
                options["enabled_precisions"] = {getattr(torch, d) for d in options["enabled_precisions"]}
            start = time.monotonic()
            self._partitioned[python_runtime] = tt_adapter.compile_partitioned(
                ep, input_profiles(self.model.inputs), options, custom, python_runtime=python_runtime)
            self.facts.setdefault("hybrid_builds", []).append(
                {"python_runtime": python_runtime, "seconds": round(time.monotonic() - start, 1)})
        return self._partitioned[python_runtime]


# ----------------------------------------------------------------------------------------------- the engines
def _eager_runner(ctx: EngineContext, kind: EngineKind, module: Any) -> DeviceRunner:
    from trtrepo.runners.eager import EagerRunner

    return EagerRunner(module, ctx.input_names, ctx.output_names, device=ctx.device, name=kind.name)


@engine("eager", "eager PyTorch with the custom CUDA kernels (the baseline)", serves_as=SERVED_TORCH)
def _eager(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    return _eager_runner(ctx, kind, ctx.eager_module)


@engine("eager-native", "eager PyTorch, the block in native aten ops (--native)", (NATIVE,))
def _eager_native(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    return _eager_runner(ctx, kind, ctx.native_module())


@engine("compile", "torch.compile of the eager module (dynamic shapes; custom ops stay opaque)")
def _compile(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    import torch

    return _eager_runner(ctx, kind, torch.compile(ctx.eager_module, dynamic=True))


@engine("compile-graphs", "torch.compile mode=reduce-overhead (CUDA graphs per shape)", (CUDA,))
def _compile_graphs(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    import torch

    return _eager_runner(ctx, kind, torch.compile(ctx.eager_module, mode="reduce-overhead", dynamic=False))


def _plan_engine(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    from trtrepo.runners.plan import PlanRunner, PlanSet

    assert kind.lowering is not None
    lo, opt, hi = batch_range(ctx.model)
    if kind.profile == "dynamic":
        ranges = [(lo, opt, hi)]
    elif kind.profile == "static":
        ranges = [(b, b, b) for b in ctx.batch_sizes]
    else:
        ranges = [(a, b, b) for a, b in buckets_for(lo, hi, ctx.batch_sizes, ctx.options.buckets)]
    plans = [PlanRunner(ctx.plan(kind.lowering, *r), name=f"{kind.name}[{r[0]}..{r[2]}]", cuda_graph=kind.graph,
                        kernel_specialization=ctx.options.kernel_specialization) for r in ranges]
    return plans[0] if len(plans) == 1 and kind.profile == "dynamic" else PlanSet(plans, name=kind.name)


for _lowering in LOWERINGS:
    for _profile in PROFILES:
        for _graph in (False, True):
            engine(f"plan-{_lowering}-{_profile}{'-graph' if _graph else ''}",
                   f"TensorRT plan, {'custom ops lowered by decompose' if _lowering == 'decompose' else 'native block'}"
                   f", {_profile} profile{', in a CUDA graph' if _graph else ''}",
                   (CUDA, TORCH_TENSORRT, *((NATIVE,) if _lowering == "native" else ())),
                   SERVED_TENSORRT if _lowering == "decompose" else REFERENCE,
                   lowering=_lowering, profile=_profile, graph=_graph)(_plan_engine)


@engine("hybrid-tt", "Torch-TensorRT compile, custom ops left to their kernels, its Python runtime",
        (CUDA, TORCH_TENSORRT), CANDIDATE)
def _hybrid_tt(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    return _eager_runner(ctx, kind, ctx.partitioned(python_runtime=True))


@engine("hybrid-tt-cpp", "the same, Torch-TensorRT's C++ runtime", (CUDA, TORCH_TENSORRT, CPP_RUNTIME), CANDIDATE)
def _hybrid_tt_cpp(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    return _eager_runner(ctx, kind, ctx.partitioned(python_runtime=False))


def _hybrid_lean(ctx: EngineContext, kind: EngineKind) -> DeviceRunner:
    from trtrepo.runners.hybrid import HybridRunner

    return HybridRunner(ctx.partitioned(python_runtime=True), ctx.input_names, ctx.output_names, name=kind.name,
                        cuda_graph=kind.graph, kernel_specialization=ctx.options.kernel_specialization)


engine("hybrid-lean", "the same partition, trtrepo's lean runner (engines on one stream, outputs preallocated)",
       (CUDA, TORCH_TENSORRT), CANDIDATE)(_hybrid_lean)
engine("hybrid-lean-graph", "the lean hybrid with the whole call captured in one CUDA graph",
       (CUDA, TORCH_TENSORRT), CANDIDATE, graph=True)(_hybrid_lean)


def describe_engines() -> str:
    """The engine table (``--engines list``)."""
    return render(("engine", "needs", "stands for", "what"),
                  [(k.name, ",".join(k.needs) or "-", k.serves_as, k.help) for k in ENGINES.values()])


# ------------------------------------------------------------------------------------------------ the driver
def capabilities(native: bool) -> Capabilities:
    """What this process can run (imports torch_tensorrt only on a CUDA machine)."""
    from trtrepo import deps

    cuda = deps.has_cuda_torch()
    tt = cuda and deps.has_torch_tensorrt()
    cpp = False
    if tt:
        from trtrepo.tensorrt import tt_adapter

        cpp = tt_adapter.cpp_runtime_available()
    return Capabilities(cuda=cuda, torch_tensorrt=tt, cpp_runtime=cpp, native=native)


def run_engines(spec_path: str | Path, options: EngineOptions, *, out: str | Path, models: Sequence[str] | None = None,
                batch_sizes: Sequence[int] | None = None, progress: Progress = LOGGER.info) -> EnginesReport:
    """Measure every selected engine side by side (see the module docstring).

    Args:
        spec_path: The model.yaml.
        options: Which engines and how.
        out: Folder for engines.json/.txt/.png and the plan build logs.
        models: Model names (default: all).
        batch_sizes: Batch sizes (default: min, opt and max of dim 0).
        progress: One-line progress messages.

    Returns:
        The report (also written under ``out``).

    Raises:
        SpecError: Bad options, model names or batch sizes.
        MissingDependencyError: torch is missing, or a ``require``d engine cannot run here.
    """
    from trtrepo.bench.run import device_label, eager_device, environment
    from trtrepo.deps import require
    from trtrepo.export import load_module
    from trtrepo.ops.stage import prepare_ops
    from trtrepo.spec import load_spec

    options.validate()
    require("torch", "trtrepo bench engines")
    spec = load_spec(spec_path)
    chosen_models = spec.select(models) if models else list(spec.models)
    caps = capabilities(options.native is not None)
    choices = select_engines(options, caps)
    device = eager_device()
    out_dir = Path(out)
    report = EnginesReport(spec=str(spec.path), device=device_label(device),
                           clock="CUDA events on each runner's own stream" if device == "cuda" else "host perf_counter",
                           options=_options_dict(options),
                           roles={k.name: (k.serves_as, k.lowering) for k in ENGINES.values()})
    report.environment = environment(**_engine_versions(caps))
    if caps.torch_tensorrt:
        report.notes.append(KERNEL_SPECIALIZATION_NOTE)
    if not caps.cuda:
        report.notes.append("no CUDA GPU here: GPU engines are listed as skipped; CPU times use the host clock")
    built = prepare_ops(spec, chosen_models, progress=progress)
    for model in chosen_models:
        sizes = profile_batch_sizes(model, batch_sizes)
        ctx = EngineContext(spec=spec, model=model, built=built, device=device, options=options, out=out_dir,
                            batch_sizes=sizes, progress=progress)
        ctx.eager_module = load_module(model, spec.root, device)
        with ctx.exits:
            _bench_model(report, ctx, choices)
        report.facts[model.name] = ctx.facts
    report.write(out_dir)
    progress(f"engines: wrote {', '.join(report.files)}")
    return report


def _engine_versions(caps: Capabilities) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if caps.torch_tensorrt:
        from trtrepo.runners.plan import import_tensorrt
        from trtrepo.tensorrt import tt_adapter

        trt = import_tensorrt()
        out.update(tensorrt_runtime=str(getattr(trt, "__version__", "?")),
                   torch_tensorrt_runtime=tt_adapter.torch_tensorrt_version(), tensorrt_cpp_runtime=caps.cpp_runtime)
    return out


def _options_dict(options: EngineOptions) -> dict[str, Any]:
    d = dataclasses.asdict(options)
    d["warmup"] = dataclasses.asdict(options.warmup)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _bench_model(report: EnginesReport, ctx: EngineContext, choices: Sequence[Choice]) -> None:
    import torch

    statuses: list[EngineStatus] = []
    runners: dict[str, DeviceRunner] = {}
    for choice in choices:
        status = EngineStatus(choice.kind.name, choice.kind.help, choice.kind.serves_as, skipped=choice.skip)
        statuses.append(status)
        if choice.skip:
            continue
        start = time.monotonic()
        try:
            ctx.progress(f"engines: {ctx.model.name}: building {choice.kind.name}")
            runner = choice.kind.build(ctx, choice.kind)
            ctx.exits.enter_context(_activated(runner))
            runners[choice.kind.name] = runner
            status.facts = dict(getattr(runner, "facts", {}) or {})
        except Exception as exc:  # one engine that cannot be built must not stop the others: it is reported
            LOGGER.debug("building %s failed", choice.kind.name, exc_info=True)
            status.error = _one_line(exc)
            ctx.progress(f"engines: {ctx.model.name}: {choice.kind.name} failed: {status.error}")
        status.build_s = round(time.monotonic() - start, 1)
    report.engines[ctx.model.name] = statuses
    if BASELINE not in runners:
        raise SpecError(f"{ctx.model.yaml_path}: the eager baseline did not run",
                        hint="every ratio divides by eager; do not filter it out with --engines")
    from trtrepo.bench.inputs import bench_inputs
    from trtrepo.check.tolerances import default_tolerance

    atol, rtol = default_tolerance(ctx.model.precision)
    module32 = _fp32_module(ctx)
    for b in ctx.batch_sizes:
        tensors = bench_inputs(ctx.model, b, ctx.model.parity.seed)
        inputs = dict(zip(ctx.input_names, tensors, strict=True))
        reference = runners[BASELINE].infer(inputs)
        truth = _fp32_reference(ctx, module32, inputs)
        eager_floor = None if truth is None else _max_error(reference, truth)
        prepared: dict[str, Any] = {}
        results: dict[str, EngineResult] = {}
        for name, runner in runners.items():
            result = EngineResult(ctx.model.name, name, b)
            results[name] = result
            report.results.append(result)
            try:
                p = runner.prepare(inputs)
                result.facts = dict(p.facts or {})
                _run_once(p)
                errors = [float((got.float() - ref.float()).abs().max()) for got, ref in
                          zip(p.outputs().values(), reference.values(), strict=True)]
                result.max_abs_error = max(errors) if errors else None
                result.parity_ok = all(bool(torch.allclose(got.float(), ref.float(), atol=atol, rtol=rtol))
                                       for got, ref in zip(p.outputs().values(), reference.values(), strict=True))
                if truth is not None and eager_floor is not None:
                    result.max_abs_error_fp32 = _max_error(p.outputs(), truth)
                    result.eager_error_fp32 = eager_floor
                    if not result.parity_ok and result.max_abs_error_fp32 <= FLOOR_FACTOR * eager_floor:
                        result.parity_ok = True  # as close to the fp32 truth as eager itself: not a mismatch
                        result.parity_basis = f"fp32 reference (within {FLOOR_FACTOR:g}x eager's own error)"
                result.warmup = _warm(p, ctx.options)
                prepared[name] = p
            except Exception as exc:  # reported per engine and batch; the other engines go on
                LOGGER.debug("%s at batch %d failed", name, b, exc_info=True)
                result.error = _one_line(exc)
                ctx.progress(f"engines: {ctx.model.name} batch {b}: {name} failed: {result.error}")
        for run in range(ctx.options.runs):
            names = list(prepared)
            order = names[run % len(names):] + names[: run % len(names)] if names else []
            for name in order:
                try:
                    results[name].runs.append(_measure(prepared[name], ctx.options))
                except Exception as exc:  # as above: the engine stops, the run goes on
                    LOGGER.debug("%s run %d failed", name, run, exc_info=True)
                    results[name].error = _one_line(exc)
                    prepared.pop(name)
        for name, result in results.items():
            if result.p50 is not None:
                up = report.speedup(result)
                ctx.progress(f"engines: {ctx.model.name} batch {b} {name}: p50 {result.p50.text(4)} ms"
                             + (f", {up.text(2, 'x')} eager" if up and name != BASELINE else ""))


# An engine that misses eager's elementwise tolerance still matches when its error against an fp32 run of the same
# model is within this factor of eager's own error against it (both round the same math differently at fp16).
FLOOR_FACTOR = 2.0


def _fp32_module(ctx: EngineContext) -> Any:
    """An fp32 copy of the eager model (the custom kernels have fp32 variants), made once per model; None for fp32
    models or when it cannot be made (the engines are then judged against eager alone)."""
    import copy

    if ctx.model.precision == "fp32" or ctx.eager_module is None:
        return None
    try:
        return copy.deepcopy(ctx.eager_module).float()
    except Exception as exc:  # the user's model may not copy or cast: say so and go on
        LOGGER.info("%s: no fp32 reference (%s)", ctx.model.name, _one_line(exc))
        return None


def _fp32_reference(ctx: EngineContext, module: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """``module`` (:func:`_fp32_module`) on the floating inputs cast to fp32; None when there is none or it fails."""
    import torch

    if module is None:
        return None
    try:
        args = [t.float() if torch.is_tensor(t) and t.is_floating_point() else t for t in inputs.values()]
        with torch.inference_mode():
            out = module(*[a.to(ctx.device) if torch.is_tensor(a) else a for a in args])
    except Exception as exc:  # the user's model may not run in fp32: say so and go on
        LOGGER.info("%s: no fp32 reference (%s)", ctx.model.name, _one_line(exc))
        return None
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return dict(zip(ctx.output_names, outs, strict=False))


def _max_error(got: dict[str, Any], truth: dict[str, Any]) -> float:
    """The largest elementwise |got - truth| over the outputs (in output order)."""
    return max(float((g.float().to(t.device) - t.float()).abs().max())
               for g, t in zip(got.values(), truth.values(), strict=False))


@contextlib.contextmanager
def _activated(runner: Any) -> Iterator[Any]:
    runner.activate()
    try:
        yield runner
    finally:
        runner.deactivate()


def _clock(prepared: Any) -> Any:
    from trtrepo.bench.timing import CudaClock, HostClock

    return CudaClock(prepared.stream) if prepared.stream is not None else HostClock()


def _run_once(prepared: Any) -> None:
    if prepared.stream is None:
        prepared.call()
        return
    import torch

    with torch.cuda.stream(prepared.stream):
        prepared.call()
    prepared.stream.synchronize()


def _warm(prepared: Any, options: EngineOptions) -> WarmUp:
    from trtrepo.bench.timing import warm_up

    return warm_up(prepared.call, _clock(prepared), options.warmup)


def _measure(prepared: Any, options: EngineOptions) -> EngineRun:
    clock = _clock(prepared)
    # re-warm after the other engines ran (caches, clocks), as many calls as one warm-up window at most
    clock.per_call(prepared.call, min(options.warmup.window, options.iterations), options.max_seconds)
    samples = clock.per_call(prepared.call, options.iterations, options.max_seconds)
    pipelined = clock.pipelined(prepared.call, options.pipeline)
    return EngineRun(latency=LatencyStats.from_seconds(samples), pipelined_ms=pipelined / options.pipeline * 1e3)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300]
