#!/usr/bin/env python3
"""Speed-up of a TensorRT plan over eager PyTorch and torch.compile: TensorRT-RTX (stand-in for TensorRT).

Datacenter TensorRT cannot be installed in this workplace; TensorRT-RTX (with torch-tensorrt-rtx) runs the same
Torch-TensorRT dynamo pipeline, so the example models are built through trtrepo's own product path — the
``tensorrt`` target (``trtrepo.targets.tensorrt_target.build_tensorrt``) with every custom op lowered by
``decompose`` — and the plan is timed in this process against, on the same GPU and the same seeded inputs:

* eager PyTorch with the custom CUDA ops (``torch.ops.trtrepo.*`` from the op library),
* ``torch.compile`` of the same module (custom ops stay opaque calls through their fake kernels),
* the plan, executed with the TensorRT(-RTX) runtime (``execute_async_v3`` on torch's current stream).

Each is timed per call with CUDA events (warm-up first, median and p90 over many calls) at a few batch sizes
(the profile's min/opt/max of dim 0 unless --batch-sizes). Everything in the output is labelled
"TensorRT-RTX (stand-in for TensorRT)": these are not datacenter TensorRT numbers.

On the GPU machine (after the device README's three staging calls and ``source .devwheels/3/env.sh``)::

    python scripts/bench_trt_rtx.py --out $OUT

Without torch_tensorrt (or without a GPU) it prints one SKIP line and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from trtrepo.bench import LatencyStats, bench_inputs  # noqa: E402  (after the sys.path line)

LOGGER = logging.getLogger("bench_trt_rtx")

LABEL = "TensorRT-RTX (stand-in for TensorRT)"
ENGINES = ("eager", "torch.compile", "plan")
ENGINE_LABELS = {"eager": "eager PyTorch (custom CUDA ops)", "torch.compile": "torch.compile",
                 "plan": LABEL}
DEFAULT_ITERATIONS = 200
DEFAULT_MAX_SECONDS = 5.0
WARMUP = 10


# ------------------------------------------------------------------------------------------------- pure parts
def default_batch_sizes(min_b: int, opt_b: int, max_b: int) -> list[int]:
    """min, opt and max of the batch dim, deduplicated and sorted."""
    return sorted({min_b, opt_b, max_b})


def pick_batch_sizes(model: Any, requested: Sequence[int] | None) -> list[int]:
    """Batch sizes for ``model``: ``requested`` within dim 0's profile, or its min/opt/max; [static] if dim 0 is fixed.

    Requested sizes outside the profile are dropped with a log line (the plan cannot run them).
    """
    dynamic = [t for t in model.inputs if t.shape and t.shape[0] == -1]
    if not dynamic:
        return [model.inputs[0].shape[0]]
    lo = max(t.min[0] for t in dynamic)
    hi = min(t.max[0] for t in dynamic)
    if not requested:
        return default_batch_sizes(lo, dynamic[0].opt[0], hi)
    keep = sorted({b for b in requested if lo <= b <= hi})
    dropped = sorted(set(requested) - set(keep))
    if dropped:
        LOGGER.warning("%s: batch sizes %s are outside the profile %d..%d; skipped", model.name, dropped, lo, hi)
    return keep


def speedup(baseline_ms: float | None, candidate_ms: float | None) -> float | None:
    """baseline / candidate (how many times faster the candidate is); None when either is missing."""
    if not baseline_ms or not candidate_ms:
        return None
    return baseline_ms / candidate_ms


def natural_key(name: str) -> tuple[Any, ...]:
    """``output10`` after ``output2``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


@dataclasses.dataclass
class Row:
    """One (model, batch) measurement; latencies are ``LatencyStats`` per engine (None = not run / failed)."""

    model: str
    batch_size: int
    input_shapes: dict[str, list[int]]
    latency: dict[str, LatencyStats | None]
    errors: dict[str, str]
    max_abs_error: dict[str, float]

    @property
    def plan_vs_eager(self) -> float | None:
        """Speed-up of the plan over eager (p50)."""
        return speedup(_p50(self.latency.get("eager")), _p50(self.latency.get("plan")))

    @property
    def plan_vs_compile(self) -> float | None:
        """Speed-up of the plan over torch.compile (p50)."""
        return speedup(_p50(self.latency.get("torch.compile")), _p50(self.latency.get("plan")))

    @property
    def compile_vs_eager(self) -> float | None:
        """Speed-up of torch.compile over eager (p50)."""
        return speedup(_p50(self.latency.get("eager")), _p50(self.latency.get("torch.compile")))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "model": self.model, "batch_size": self.batch_size, "input_shapes": self.input_shapes,
            "latency": {k: (dataclasses.asdict(v) if v else None) for k, v in self.latency.items()},
            "errors": self.errors, "max_abs_error": self.max_abs_error,
            "plan_vs_eager": self.plan_vs_eager, "plan_vs_compile": self.plan_vs_compile,
            "compile_vs_eager": self.compile_vs_eager,
        }


def _p50(stats: LatencyStats | None) -> float | None:
    return stats.p50_ms if stats else None


def format_table(rows: Sequence[Row]) -> str:
    """Fixed-width table: p50 (p90) ms per engine and the speed-ups."""
    headers = ("model", "batch", "eager ms", "compile ms", "plan ms (TRT-RTX)", "plan/eager", "plan/compile",
               "max |plan-eager|")

    def cell(stats: LatencyStats | None, error: str | None) -> str:
        if stats is None:
            return "failed" if error else "-"
        return f"{stats.p50_ms:.4f} ({stats.p90_ms:.4f})"

    def x(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    lines = [headers]
    for r in rows:
        err = r.max_abs_error.get("plan")
        lines.append((r.model, str(r.batch_size), cell(r.latency.get("eager"), r.errors.get("eager")),
                      cell(r.latency.get("torch.compile"), r.errors.get("torch.compile")),
                      cell(r.latency.get("plan"), r.errors.get("plan")), x(r.plan_vs_eager), x(r.plan_vs_compile),
                      "-" if err is None else f"{err:.2e}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def format_summary(rows: Sequence[Row], device: str) -> str:
    """The compact end-of-run summary, one line per model and batch (p50 latencies)."""
    lines = [f"SUMMARY bench_trt_rtx on {device} — plan = {LABEL}; p50 latency per call"]
    for r in rows:
        parts = []
        for engine in ENGINES:
            stats = r.latency.get(engine)
            missing = "failed" if engine in r.errors else "-"
            parts.append(f"{engine} {stats.p50_ms:.4f} ms" if stats else f"{engine} {missing}")
        sp = [f"plan vs eager {r.plan_vs_eager:.2f}x" if r.plan_vs_eager else None,
              f"plan vs compile {r.plan_vs_compile:.2f}x" if r.plan_vs_compile else None]
        lines.append(f"  {r.model} b{r.batch_size}: " + ", ".join(parts) + "; " + ", ".join(s for s in sp if s))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- measurement
def time_cuda(fn: Callable[[], Any], iterations: int, max_seconds: float, warmup: int = WARMUP) -> LatencyStats:
    """Per-call latency with CUDA events around each call (inputs already on the GPU), after ``warmup`` calls."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    deadline = time.perf_counter() + max_seconds
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
        if time.perf_counter() > deadline:
            break
    return LatencyStats.from_seconds(samples)


class PlanRunner:
    """Runs a serialized TensorRT(-RTX) plan on torch CUDA tensors (one execution context, torch's stream)."""

    def __init__(self, plan: bytes) -> None:
        import tensorrt as trt
        import torch

        self.trt, self.torch = trt, torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise RuntimeError("deserialize_cuda_engine returned None (plan from another TensorRT version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = sorted((n for n in names if n not in self.inputs), key=natural_key)
        self._bound: tuple[Any, ...] | None = None
        self._out: list[Any] = []

    def _torch_dtype(self, name: str) -> Any:
        trt, torch = self.trt, self.torch
        table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
                 trt.DataType.BOOL: torch.bool}
        for attr, dtype in (("BF16", torch.bfloat16), ("INT64", torch.int64)):
            if hasattr(trt.DataType, attr):
                table[getattr(trt.DataType, attr)] = dtype
        return table[self.engine.get_tensor_dtype(name)]

    def bind(self, inputs: Sequence[Any], input_names: Sequence[str]) -> None:
        """Set shapes and addresses for ``inputs`` (named like forward()'s arguments) and allocate outputs."""
        by_name = dict(zip(input_names, inputs, strict=True))
        for name in self.inputs:
            t = by_name[name].contiguous()
            by_name[name] = t
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        self._out = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out = self.torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
            self.context.set_tensor_address(name, out.data_ptr())
            self._out.append(out)
        self._bound = tuple(by_name.values())  # keep the input tensors alive while bound

    def run(self) -> list[Any]:
        """Enqueue one execution on torch's current stream; returns the output tensors (valid after sync)."""
        if not self.context.execute_async_v3(self.torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("execute_async_v3 failed")
        return self._out


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    return [value]


def build_plan_for(spec: Any, model: Any, built_ops: Any, out: Path, progress: Callable[[str], None]) -> bytes:
    """The model's plan through trtrepo's tensorrt target, every custom op lowered by ``decompose``."""
    from trtrepo.export import export_model
    from trtrepo.ops.stage import cache_dir
    from trtrepo.targets.base import BuildContext
    from trtrepo.targets.tensorrt_target import PLAN_FILE, build_tensorrt

    decomposed = dataclasses.replace(model, ops={op: "decompose" for op in built_ops.descriptions})
    ep = export_model(decomposed, spec.root, "cuda")
    ctx = BuildContext(spec=spec, ops=built_ops, cache_dir=cache_dir(), log_dir=out / "logs", device="cuda",
                       progress=progress)
    artifacts = build_tensorrt(ctx, decomposed, ep)
    progress(f"{model.name}: lowerings {artifacts.lowerings}, TensorRT {artifacts.versions.get('tensorrt')}, "
             f"torch_tensorrt {artifacts.versions.get('torch_tensorrt')}")
    return artifacts.files[PLAN_FILE]


def bench_model(spec: Any, model: Any, built_ops: Any, args: argparse.Namespace,
                progress: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    """All batch sizes of one model: eager, torch.compile and the plan on the same inputs."""
    import torch

    from trtrepo.export import load_module

    facts: dict[str, Any] = {"model": model.name, "spec": str(spec.path), "precision": model.precision}
    net = load_module(model, spec.root, "cuda")
    compiled = None
    if not args.no_compile:
        try:
            compiled = torch.compile(net, dynamic=True)
        except Exception as exc:  # torch.compile itself rarely fails here; the first call does
            facts["compile_error"] = str(exc).splitlines()[0]
    runner = None
    t0 = time.time()
    try:
        runner = PlanRunner(build_plan_for(spec, model, built_ops, args.out, progress))
        facts["plan_build_s"] = round(time.time() - t0, 1)
    except Exception as exc:
        facts["plan_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        progress(f"{model.name}: plan build failed: {facts['plan_error']}")
    names = [t.name for t in model.inputs]
    rows = []
    for b in pick_batch_sizes(model, args.batch_sizes):
        inputs = tuple(t.cuda() for t in bench_inputs(model, b, model.parity.seed))
        latency: dict[str, LatencyStats | None] = {e: None for e in ENGINES}
        errors: dict[str, str] = {}
        max_err: dict[str, float] = {}
        def call_eager(inputs: tuple[Any, ...] = inputs) -> Any:
            return net(*inputs)

        def call_compiled(inputs: tuple[Any, ...] = inputs) -> Any:
            return compiled(*inputs) if compiled is not None else None

        with torch.inference_mode():
            reference = [t.float() for t in _flatten(net(*inputs))]
            latency["eager"] = time_cuda(call_eager, args.iterations, args.max_seconds)
            if compiled is not None:
                try:
                    got = [t.float() for t in _flatten(compiled(*inputs))]
                    max_err["torch.compile"] = max(float((g - r).abs().max()) for g, r in zip(got, reference,
                                                                                            strict=True))
                    latency["torch.compile"] = time_cuda(call_compiled, args.iterations, args.max_seconds)
                except Exception as exc:
                    errors["torch.compile"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if runner is not None:
                try:
                    runner.bind(inputs, names)
                    got = [t.float() for t in runner.run()]
                    torch.cuda.synchronize()
                    max_err["plan"] = max(float((g - r).abs().max()) for g, r in zip(got, reference, strict=True))
                    latency["plan"] = time_cuda(runner.run, args.iterations, args.max_seconds)
                except Exception as exc:
                    errors["plan"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            elif "plan_error" in facts:
                errors["plan"] = facts["plan_error"]
        row = Row(model=model.name, batch_size=b, input_shapes={n: list(t.shape) for n, t in zip(names, inputs,
                                                                                              strict=True)},
                  latency=latency, errors=errors, max_abs_error=max_err)
        progress(format_summary([row], "").splitlines()[1].strip())
        rows.append(row)
    return rows, facts


def write_plot(rows: Sequence[Row], path: Path, title: str) -> bool:
    """Grouped bars: p50 latency per batch size for eager / torch.compile / plan, one panel per model."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed")
        return False
    models = list(dict.fromkeys(r.model for r in rows))
    if not models:
        return False
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    width = 0.8 / len(ENGINES)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in rows if r.model == model]
        for k, engine in enumerate(ENGINES):
            xs = [i + (k - 1) * width for i in range(len(mine))]
            ys = [(r.latency.get(engine).p50_ms if r.latency.get(engine) else 0.0) for r in mine]  # type: ignore[union-attr]
            ax.bar(xs, ys, width=width, label=ENGINE_LABELS[engine])
        ax.set_xticks(range(len(mine)), [f"b{r.batch_size}" for r in mine])
        ax.set_ylabel("p50 latency per call (ms)")
        ax.set_title(model)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("specs", nargs="*", type=Path, help="model.yaml files (default: examples/*/model.yaml)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out/bench_trt_rtx")))
    p.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",") if x.strip()], default=None,
                   help="comma-separated; default: the profile's min/opt/max of dim 0")
    p.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="per engine and batch size")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; writes trt_rtx.json, trt_rtx.txt and trt_rtx.png into --out."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    # One op library per process: every build in it must find the same cached .so.
    os.environ.setdefault("TRTREPO_CACHE_DIR", str(REPO / ".trtrepo_cache"))
    from trtrepo import deps

    if not deps.has_cuda_torch():
        print("SKIP bench_trt_rtx: torch sees no CUDA GPU (needs CUDA torch on a GPU machine)")
        return 0
    if not deps.has_torch_tensorrt():
        print("SKIP bench_trt_rtx: torch_tensorrt is not importable (stage torch-tensorrt-rtx + TensorRT-RTX: "
              "device README, then source .devwheels/3/env.sh)")
        return 0
    import torch

    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops
    from trtrepo.ops.stage import cache_dir
    from trtrepo.spec import load_spec

    specs = args.specs or sorted((REPO / "examples").glob("*/model.yaml"))
    if not specs:
        print("ERROR: no model.yaml given and none under examples/*/")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    def progress(msg: str) -> None:
        print(msg, flush=True)

    rows: list[Row] = []
    models_facts = []
    wanted = {m.strip() for m in args.models.split(",")} if args.models else None
    for spec_path in specs:
        spec = load_spec(spec_path)
        built = build_ops(spec.plugin_sources, cache_dir(), with_cuda=True, progress=progress) \
            if spec.plugin_sources else None
        if built is not None:
            load_ops(built)
        for model in spec.models:
            if wanted is not None and model.name not in wanted:
                continue
            model_rows, facts = bench_model(spec, model, built, args, progress)
            rows += model_rows
            models_facts.append(facts)
    import tensorrt
    import torch_tensorrt

    device = torch.cuda.get_device_name()
    env = {"gpu": device, "capability": ".".join(map(str, torch.cuda.get_device_capability())),
           "torch": torch.__version__, "cuda": torch.version.cuda, "torch_tensorrt": torch_tensorrt.__version__,
           "tensorrt": getattr(tensorrt, "__version__", "?"), "tensorrt_module": getattr(tensorrt, "__file__", "?"),
           "python": platform.python_version(), "seconds": round(time.time() - t_start, 1)}
    data = {"schema": "trtrepo-bench-trt-rtx/1", "label": LABEL, "environment": env, "models": models_facts,
            "rows": [r.to_dict() for r in rows], "iterations": args.iterations,
            "timing": "CUDA events per call, median (p50) and p90, inputs resident on the GPU"}
    (args.out / "trt_rtx.json").write_text(json.dumps(data, indent=2) + "\n")
    table = format_table(rows)
    summary = format_summary(rows, device)
    (args.out / "trt_rtx.txt").write_text(f"{LABEL}\n{table}\n\n{summary}\n")
    plotted = write_plot(rows, args.out / "trt_rtx.png", f"{LABEL} vs eager vs torch.compile — {device}")
    print()
    print(table)
    print()
    print(summary)
    print(f"wrote {args.out / 'trt_rtx.json'}, {args.out / 'trt_rtx.txt'}"
          + (f", {args.out / 'trt_rtx.png'}" if plotted else "") + f" in {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
