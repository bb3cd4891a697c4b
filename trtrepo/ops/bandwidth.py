"""``trtrepo bench kernels``: memory bandwidth of each custom op's CUDA kernel, as a fraction of a device-to-device
copy of the same bytes.

Every op of the plugin roots is built into the CUDA torch op library (``trtrepo.ops.build.build_ops(with_cuda=True)``,
loaded with ``trtrepo.ops.library.load_ops``) and called through ``torch.ops.<ns>.<op>``. What it reads and writes
comes from its op.yaml, never from its name: the inputs' shapes from their shape patterns (``[..., D]``: ``rows``
leading rows, the symbols from ``cols``), the outputs' from the output rules, bytes from the dtypes. For each op,
dtype and size, three things run on the same tensors in the same process:

* the kernel (``torch.ops.<ns>.<op>``),
* two device-to-device copies moving as many bytes as the kernel reads plus writes: ``dst.copy_(src)``
  (cudaMemcpyAsync, which at >= 1 GiB may run on the copy engines: ~2.8 TB/s on an H200 against ~4.2 TB/s below)
  and an SM copy kernel (``torch.bitwise_or(src, 0, out=dst)`` on int32 views, a vectorized elementwise kernel);
  the FASTER of the two is the copy reference (both are reported),
* the eager PyTorch composition of the op (its ``decomposition`` from op.yaml).

Effective bandwidth = (bytes read + bytes written) / median time. On CUDA each timing is CUDA events around a
CUDA graph replaying the call ``inner`` times (launch overhead out of the picture for small sizes; plain
launches if capture fails), many samples, median. Goals at large (DRAM-bound) sizes: elementwise ops >= 0.85 of
the copy's bandwidth, row reductions >= 0.75; ``--goal ns::op=0.85`` states them and the summary judges them.

Run on the GPU machine (results and plots into --out)::

    trtrepo bench kernels plugin_src --out $OUT            # full sweep, ~1 min after the ~50 s op build
    trtrepo bench kernels plugin_src --out $OUT --ncu      # also one ncu --set full profile per kernel

Here (no GPU) ``--device cpu --quick`` exercises the code path with the CPU op library; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trtrepo import dtypes
from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

DTYPE_BYTES = {d: dtypes.get(d).itemsize for d in dtypes.KERNEL_NAMES}
# Elements of the op's main input (rows * cols). The launchers take int32 sizes, so 2**30 is the top; at fp32 it is a
# 4 GiB tensor (a 16 GiB working set for fused_add_rms_norm with its copy reference). Few multi-GB points on purpose.
SIZES = (2**16, 2**20, 2**24, 2**26, 2**28, 2**30)
QUICK_SIZES = (2**12, 2**16)
DEFAULT_COLS = 4096
QUICK_COLS = 256
LARGE_BYTES = 256 * 2**20  # traffic at or above this counts as DRAM-bound for the goal
MAX_ELEMENTS = 2**31 - 1
TARGET_SAMPLE_S = 2e-4  # one timed sample lasts at least this long (inner repetitions for tiny kernels)
TARGET_TOTAL_S = 0.08  # time spent per measurement
MIN_SAMPLES, MAX_SAMPLES = 5, 50
MAX_INNER = 200
CHECK_MAX_ELEMENTS = 2**24  # correctness check (kernel vs composition) only where it is cheap
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 6e-2}


# ------------------------------------------------------------------------------------------------- pure parts
def shapes_for(desc: OpDescription, rows: int, cols: int) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """(input shapes, output shapes) of one call whose first input is ``rows`` rows of ``cols``: the shape patterns
    with ``...`` = [rows] and every symbol set so that the first input's last dim is ``cols``."""
    first = desc.input_specs[0].pattern or ()
    factor = first[-1].factor if first and first[-1].symbol is not None else 1
    value = max(1, cols // factor)
    inputs = desc.input_shapes([rows], {s: value for s in desc.symbols()})
    return inputs, [tuple(s) for s in desc.output_shapes(inputs)]


def traffic_bytes(desc: OpDescription, rows: int, cols: int, dtype: str) -> tuple[int, int]:
    """(bytes read, bytes written) by one call, at the minimum possible: every input read once, every output
    written once (sizes from op.yaml)."""
    inputs, outputs = shapes_for(desc, rows, cols)
    out_dtypes = desc.output_dtypes([dtype] * len(desc.inputs))

    def size(shape: tuple[int, ...]) -> int:
        n = 1
        for d in shape:
            n *= d
        return n

    read = sum(size(s) for s in inputs) * DTYPE_BYTES[dtype]
    written = sum(size(s) * dtypes.get(k).itemsize for s, k in zip(outputs, out_dtypes, strict=True))
    return read, written


def bandwidth_gbs(nbytes: int, seconds: float) -> float:
    """Bytes per second in GB/s (1e9), 0 for a non-positive time."""
    return nbytes / seconds / 1e9 if seconds > 0 else 0.0


def copy_elements(read: int, written: int, elem_bytes: int) -> int:
    """Elements of a copy that moves ``read + written`` bytes (it reads and writes half each)."""
    return max(1, (read + written) // 2 // elem_bytes)


def size_list(quick: bool, max_gib: float | None = None, cols: int = DEFAULT_COLS,
              elem_bytes: int = 4) -> list[int]:
    """Element counts to sweep: whole rows of ``cols``, within int32 and (if given) ``max_gib`` per input tensor."""
    out = []
    for n in QUICK_SIZES if quick else SIZES:
        rows = max(1, n // cols)
        n = rows * cols
        if n > MAX_ELEMENTS:
            continue
        if max_gib is not None and n * elem_bytes > max_gib * 2**30:
            continue
        out.append(n)
    return sorted(set(out))


def plan_repetitions(estimate_s: float) -> tuple[int, int]:
    """(inner calls per sample, samples) so that a sample lasts >= TARGET_SAMPLE_S and all of them ~TARGET_TOTAL_S."""
    estimate_s = max(estimate_s, 1e-7)
    inner = min(MAX_INNER, max(1, math.ceil(TARGET_SAMPLE_S / estimate_s - 1e-9)))
    samples = int(TARGET_TOTAL_S / (inner * estimate_s))
    return inner, min(MAX_SAMPLES, max(MIN_SAMPLES, samples))


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass
class KernelResult:
    """One (op, dtype, size) measurement; times are medians in milliseconds, bandwidths in GB/s."""

    op: str
    dtype: str
    rows: int
    cols: int
    bytes_read: int
    bytes_written: int
    kernel_ms: float
    copy_ms: float
    eager_ms: float | None
    kernel_gbs: float
    copy_gbs: float
    eager_gbs: float | None
    kernel_vs_copy: float
    eager_vs_copy: float | None
    speedup_vs_eager: float | None
    cache_resident: bool
    timing: str
    max_abs_error: float | None = None
    memcpy_gbs: float | None = None  # dst.copy_(src) (cudaMemcpyAsync)
    sm_copy_gbs: float | None = None  # an elementwise copy kernel on the SMs
    copy_reference: str = "copy"  # which copy copy_gbs is: "memcpy", "sm" or "copy" (only one measured)

    @property
    def traffic(self) -> int:
        """Bytes read plus written."""
        return self.bytes_read + self.bytes_written


def copy_reference(memcpy_s: float | None, sm_copy_s: float | None) -> tuple[float, str]:
    """(seconds, name) of the faster copy: ``"memcpy"`` (``dst.copy_(src)``) or ``"sm"`` (an SM copy kernel).

    Raises:
        ValueError: Neither time is a positive number.
    """
    timed = [(t, name) for t, name in ((memcpy_s, "memcpy"), (sm_copy_s, "sm")) if t is not None and t > 0]
    if not timed:
        raise ValueError("copy_reference needs at least one positive copy time")
    return min(timed, key=lambda item: item[0])


def make_result(desc: OpDescription, dtype: str, rows: int, cols: int, kernel_s: float, copy_s: float | None,
                eager_s: float | None, l2_bytes: int, timing: str, max_abs_error: float | None = None, *,
                memcpy_s: float | None = None, sm_copy_s: float | None = None) -> KernelResult:
    """Turn median times (seconds) into a :class:`KernelResult` with bandwidths and ratios.

    The copy reference is ``copy_s`` if given, else the faster of ``memcpy_s`` and ``sm_copy_s``; the latter two are
    reported as they are.
    """
    read, written = traffic_bytes(desc, rows, cols, dtype)
    total = read + written
    reference = "copy"
    if copy_s is None:
        copy_s, reference = copy_reference(memcpy_s, sm_copy_s)
    kernel_gbs = bandwidth_gbs(total, kernel_s)
    copy_gbs = bandwidth_gbs(total, copy_s)
    eager_gbs = bandwidth_gbs(total, eager_s) if eager_s is not None else None
    return KernelResult(
        op=desc.name, dtype=dtype, rows=rows, cols=cols, bytes_read=read, bytes_written=written,
        kernel_ms=kernel_s * 1e3, copy_ms=copy_s * 1e3, eager_ms=eager_s * 1e3 if eager_s is not None else None,
        kernel_gbs=kernel_gbs, copy_gbs=copy_gbs, eager_gbs=eager_gbs,
        kernel_vs_copy=kernel_gbs / copy_gbs if copy_gbs else 0.0,
        eager_vs_copy=eager_gbs / copy_gbs if (eager_gbs is not None and copy_gbs) else None,
        speedup_vs_eager=eager_s / kernel_s if (eager_s is not None and kernel_s > 0) else None,
        cache_resident=total < 2 * l2_bytes if l2_bytes else False,
        timing=timing, max_abs_error=max_abs_error,
        memcpy_gbs=bandwidth_gbs(total, memcpy_s) if memcpy_s is not None else None,
        sm_copy_gbs=bandwidth_gbs(total, sm_copy_s) if sm_copy_s is not None else None,
        copy_reference=reference,
    )


def goal_summary(results: Sequence[KernelResult], goals: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Per op and dtype: the ratio to copy at the largest DRAM-bound size, and whether it meets the op's goal."""
    out = []
    keys = sorted({(r.op, r.dtype) for r in results}, key=lambda k: (k[0], list(DTYPE_BYTES).index(k[1])))
    for op, dtype in keys:
        rows = [r for r in results if r.op == op and r.dtype == dtype]
        large = [r for r in rows if r.traffic >= LARGE_BYTES and not r.cache_resident]
        pick = max(large or rows, key=lambda r: r.traffic)
        goal = (goals or {}).get(op)
        out.append({
            "op": op, "dtype": dtype, "traffic": pick.traffic, "kernel_vs_copy": pick.kernel_vs_copy,
            "eager_vs_copy": pick.eager_vs_copy, "speedup_vs_eager": pick.speedup_vs_eager, "goal": goal,
            "copy_gbs": pick.copy_gbs, "copy_reference": pick.copy_reference,
            "dram_bound": bool(large),
            "meets_goal": (pick.kernel_vs_copy >= goal) if (goal is not None and large) else None,
        })
    return out


def format_table(results: Sequence[KernelResult]) -> str:
    """Fixed-width table: one line per measurement."""
    headers = ("op", "dtype", "rows x cols", "traffic", "kernel ms", "kernel GB/s", "memcpy GB/s", "SM copy GB/s",
               "copy GB/s", "k/copy", "eager GB/s", "e/copy", "speedup", "L2", "max err")
    lines = [headers]
    for r in results:
        lines.append((
            r.op, r.dtype, f"{r.rows}x{r.cols}", human_bytes(r.traffic), f"{r.kernel_ms:.4f}", f"{r.kernel_gbs:.1f}",
            "-" if r.memcpy_gbs is None else f"{r.memcpy_gbs:.1f}",
            "-" if r.sm_copy_gbs is None else f"{r.sm_copy_gbs:.1f}",
            f"{r.copy_gbs:.1f}", f"{r.kernel_vs_copy:.2f}",
            "-" if r.eager_gbs is None else f"{r.eager_gbs:.1f}",
            "-" if r.eager_vs_copy is None else f"{r.eager_vs_copy:.2f}",
            "-" if r.speedup_vs_eager is None else f"{r.speedup_vs_eager:.2f}x",
            "yes" if r.cache_resident else "no",
            "-" if r.max_abs_error is None else f"{r.max_abs_error:.1e}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def format_summary(summary: Sequence[dict[str, Any]], device: str) -> str:
    """The compact end-of-run summary: one line per op and dtype."""
    lines = [f"SUMMARY bench_kernels on {device}"]
    for s in summary:
        verdict = ({True: "PASS", False: "FAIL"}[s["meets_goal"]] if s["meets_goal"] is not None
                   else "not judged (no goal given)" if s["goal"] is None else "n/a (no DRAM-bound size)")
        eager = "-" if s["eager_vs_copy"] is None else f"{s['eager_vs_copy']:.2f}"
        speed = "-" if s["speedup_vs_eager"] is None else f"{s['speedup_vs_eager']:.2f}x"
        goal = "-" if s["goal"] is None else f">= {s['goal']:.2f}"
        ref = f"; copy = {s['copy_reference']} {s['copy_gbs']:.0f} GB/s" if "copy_gbs" in s else ""
        lines.append(f"  {s['op']:<20} {s['dtype']:<5} at {human_bytes(s['traffic']):>10}: kernel/copy "
                     f"{s['kernel_vs_copy']:.2f} (goal {goal}) {verdict}; eager/copy {eager}; kernel vs eager {speed}"
                     + ref)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- measurement
class Timer:
    """Median time of a callable: CUDA events around a CUDA graph (or plain launches), or perf_counter on CPU."""

    def __init__(self, device: str, use_graphs: bool = True) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.use_graphs = use_graphs and device == "cuda"

    def sync(self) -> None:
        """Wait for the device."""
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def _once(self, fn: Callable[[], Any]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def median_seconds(self, fn: Callable[[], Any], warmup: int = 3) -> tuple[float, str]:
        """(median seconds per call, timing method)."""
        for _ in range(warmup):
            fn()
        estimate = min(self._once(fn) for _ in range(3))
        inner, samples = plan_repetitions(estimate)
        if self.device != "cuda":
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn()
                times.append((time.perf_counter() - t0) / inner)
            return statistics.median(times), "perf_counter"
        torch = self.torch
        graph = None
        if self.use_graphs:
            try:
                graph = self._capture(fn, inner)
            except Exception as exc:  # an op on the legacy stream, or an allocation pattern capture refuses
                LOGGER.warning("CUDA graph capture failed (%s); timing plain launches", str(exc).splitlines()[0])
                graph = None
                torch.cuda.synchronize()

        def run(graph: Any = graph) -> None:
            if graph is not None:
                graph.replay()
            else:
                for _ in range(inner):
                    fn()

        run()
        start = [torch.cuda.Event(enable_timing=True) for _ in range(samples)]
        end = [torch.cuda.Event(enable_timing=True) for _ in range(samples)]
        for s, e in zip(start, end, strict=True):
            s.record()
            run()
            e.record()
        torch.cuda.synchronize()
        times = [s.elapsed_time(e) / 1e3 / inner for s, e in zip(start, end, strict=True)]
        return statistics.median(times), "cuda-graph+events" if graph is not None else "cuda-events"

    def _capture(self, fn: Callable[[], Any], inner: int) -> Any:
        torch = self.torch
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as graph capture wants
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(inner):
                fn()
        torch.cuda.synchronize()
        return graph


def make_inputs(desc: OpDescription, rows: int, cols: int, dtype: Any, device: str, seed: int = 0) -> tuple[Any, ...]:
    """The op's arguments: random tensors of the pattern shapes, then the attributes' defaults."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    shapes, _ = shapes_for(desc, rows, cols)
    tensors = [torch.randn(s, dtype=dtype, device=device, generator=gen) for s in shapes]
    return (*tensors, *(a.default for a in desc.attributes if a.default is not None))


def measure_op(desc: OpDescription, dtype_name: str, rows: int, cols: int, timer: Timer, l2_bytes: int,
               eager: bool = True) -> KernelResult:
    """Time the kernel, the copy reference and the eager composition for one op, dtype and size."""
    import torch

    dtype = dtypes.to_torch(dtype_name)
    device = timer.device
    args = make_inputs(desc, rows, cols, dtype, device)
    kernel = desc.torch_op()
    decomposition = desc.load_decomposition() if (eager and desc.decomposition) else None
    error = None
    if rows * cols <= CHECK_MAX_ELEMENTS and decomposition is not None:
        got, want = kernel(*args), decomposition(*args)
        got_t = got if isinstance(got, (tuple, list)) else (got,)
        want_t = want if isinstance(want, (tuple, list)) else (want,)
        error = max(float((g.float() - w.float()).abs().max()) for g, w in zip(got_t, want_t, strict=True))
        if error > TOLERANCE[dtype_name] * 10:
            LOGGER.warning("%s %s %dx%d: kernel differs from its composition by %.3g", desc.name, dtype_name, rows,
                           cols, error)
    kernel_s, timing = timer.median_seconds(lambda: kernel(*args))
    eager_s = timer.median_seconds(lambda: decomposition(*args))[0] if decomposition is not None else None
    args = ()  # free the inputs before the copy reference allocates its pair
    read, written = traffic_bytes(desc, rows, cols, dtype_name)
    memcpy_s, sm_copy_s = _time_copies(timer, copy_elements(read, written, DTYPE_BYTES[dtype_name]) *
                                       DTYPE_BYTES[dtype_name])
    if device == "cuda":
        torch.cuda.empty_cache()
    return make_result(desc, dtype_name, rows, cols, kernel_s, None, eager_s, l2_bytes, timing, error,
                       memcpy_s=memcpy_s, sm_copy_s=sm_copy_s)


def sm_copy_words(nbytes: int) -> int:
    """int32 words of a copy of ``nbytes`` (rounded up: the SM copy runs on int32 views whatever the dtype)."""
    return max(1, -(-nbytes // 4))


def _time_copies(timer: Timer, nbytes: int) -> tuple[float, float]:
    """Median seconds of ``dst.copy_(src)`` (cudaMemcpyAsync) and of an SM copy kernel over ``nbytes``.

    Both run on one int32 pair (freed on return); the SM copy is ``torch.bitwise_or(src, 0, out=dst)``, torch's
    vectorized elementwise kernel (16-byte accesses), exact for any bits and independent of the op's dtype.
    """
    import torch

    words = sm_copy_words(nbytes)
    src = torch.randint(-2**31, 2**31 - 1, (words,), dtype=torch.int32, device=timer.device)
    dst = torch.empty_like(src)
    memcpy_s = timer.median_seconds(lambda: dst.copy_(src))[0]
    sm_copy_s = timer.median_seconds(lambda: torch.bitwise_or(src, 0, out=dst))[0]
    if not torch.equal(dst, src):
        raise RuntimeError("bench_kernels: the SM copy reference did not copy its input")
    return memcpy_s, sm_copy_s


def working_set_bytes(desc: OpDescription, rows: int, cols: int, dtype: str) -> int:
    """Peak bytes one measurement may hold: inputs, outputs, the copy pair and the composition's fp32 temporaries."""
    read, written = traffic_bytes(desc, rows, cols, dtype)
    n = rows * cols
    return read + written + (read + written) + 3 * n * 4


# -------------------------------------------------------------------------------------------------- plumbing
def load_cuda_ops(device: str, roots: Sequence[Path]) -> dict[str, OpDescription]:
    """Build (content cached) and load the op libraries of ``roots``; op name → OpDescription."""
    from trtrepo import settings
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    built = build_ops(list(roots), settings.cache_dir(), with_cuda=device == "cuda",
                      progress=lambda m: print(m, flush=True))
    load_ops(built)
    return dict(built.descriptions)


def device_facts(device: str) -> dict[str, Any]:
    """GPU name, capability, L2 size, memory, versions."""
    import torch

    facts: dict[str, Any] = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda,
                             "python": platform.python_version(), "host": platform.node()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                     memory_gib=round(props.total_memory / 2**30, 1),
                     l2_bytes=int(getattr(props, "L2_cache_size", 0) or 0), sms=props.multi_processor_count)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            facts["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                             capture_output=True, text=True, timeout=20).stdout.strip()
    else:
        facts.update(gpu=None, l2_bytes=0, cpu=platform.processor() or platform.machine(), cores=os.cpu_count())
    return facts


def write_plot(results: Sequence[KernelResult], path: Path, title: str, goals: dict[str, float] | None = None) -> bool:
    """Bandwidth ratio to copy vs bytes moved, one panel per op; kernel solid, eager dashed, goal dotted."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return False
    ops = sorted({r.op for r in results})
    fig, axes = plt.subplots(1, len(ops), figsize=(6 * len(ops), 4.5), squeeze=False)
    for ax, op in zip(axes[0], ops, strict=True):
        for dtype in DTYPE_BYTES:
            rows = sorted((r for r in results if r.op == op and r.dtype == dtype), key=lambda r: r.traffic)
            if not rows:
                continue
            xs = [r.traffic for r in rows]
            line = ax.plot(xs, [r.kernel_vs_copy for r in rows], marker="o", label=f"kernel {dtype}")
            if rows[0].eager_vs_copy is not None:
                ax.plot(xs, [r.eager_vs_copy or 0 for r in rows], marker="x", linestyle="--",
                        color=line[0].get_color(), label=f"eager {dtype}")
        if op in (goals or {}):
            goal = (goals or {})[op]
            ax.axhline(goal, linestyle=":", color="k", label=f"goal {goal:.2f}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bytes read + written per call")
        ax.set_ylabel("effective bandwidth / copy bandwidth")
        ax.set_title(op)
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def run_ncu(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Profile one large launch of each kernel with ``ncu --set full`` in a child process; save the text report."""
    ncu = shutil.which("ncu") or ("/usr/local/cuda/bin/ncu" if Path("/usr/local/cuda/bin/ncu").is_file() else None)
    if ncu is None:
        print("ncu: not found (install Nsight Compute or put ncu on PATH); skipped")
        return {"ncu": None, "skipped": "ncu not found"}
    child = [sys.executable, "-m", "trtrepo.ops.bandwidth", "--ncu-child", *map(str, args.roots), "--ops",
             ",".join(args.ops), "--ncu-dtype", args.ncu_dtype]
    names = "|".join(entry for op in args.ops for entry in (args.descs[op].kernel.entries.values()
                                                           if args.descs[op].kernel else ()))
    cmd = [ncu, "--set", "full", "-k", f"regex:{names or 'trtrepo'}", "-c", str(len(args.ops)),
           "--target-processes", "all", *child]
    print("ncu: " + " ".join(cmd), flush=True)
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ncu_timeout)
        text, code = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr.strip() else ""), proc.returncode
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text, code = f"ncu timed out after {args.ncu_timeout} s\n{partial}", -1
    report = out / "ncu_report.txt"
    report.write_text("$ " + " ".join(cmd) + "\n\n" + text)
    keys = ("Duration", "DRAM Throughput", "Memory Throughput", "Achieved Occupancy", "Registers Per Thread",
            "Compute (SM) Throughput", "L2 Hit Rate")
    picked = [line.strip() for line in text.splitlines()
              if line.strip().startswith(("==PROF==", "==ERROR==", "==WARNING==")) or any(n and n in line for n in
                                                                                          names.split("|"))
              or any(line.strip().startswith(k) for k in keys)]
    (out / "ncu_summary.txt").write_text("\n".join(picked) + "\n")
    if "ERR_NVGPUCTRPERM" in text:
        print("ncu: no permission for GPU performance counters (ERR_NVGPUCTRPERM); see ncu_report.txt")
    print(f"ncu: exit {code} in {time.time() - t0:.0f} s; {len(picked)} summary lines in ncu_summary.txt")
    return {"ncu": ncu, "exit_code": code, "report": str(report), "summary_lines": picked[:60]}


def ncu_child(args: argparse.Namespace) -> int:
    """Inside ncu: one launch of each op at a DRAM-bound size (ncu -k counts only the ops' entries)."""
    import torch

    descs = load_cuda_ops("cuda", args.roots)
    dtype = dtypes.to_torch(args.ncu_dtype)
    rows, cols = 2**26 // DEFAULT_COLS, DEFAULT_COLS
    for op in args.ops:
        inputs = make_inputs(descs[op], rows, cols, dtype, "cuda")
        descs[op].torch_op()(*inputs)
        torch.cuda.synchronize()
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="trtrepo bench kernels", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="*", type=Path, help="plugin roots (default: ./plugin_src)")
    p.add_argument("--out", type=Path, default=Path("out/bench_kernels"), help="output folder")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    p.add_argument("--quick", action="store_true", help="two small sizes only (smoke test)")
    p.add_argument("--ops", default="", help="comma-separated ns::op names (default: every op with a kernel)")
    p.add_argument("--goal", action="append", default=[], metavar="NS::OP=RATIO",
                   help="a bandwidth goal (fraction of copy) the summary judges, e.g. trtrepo::bias_gelu=0.85")
    p.add_argument("--dtypes", default="fp32,fp16,bf16", help="comma-separated dtypes")
    p.add_argument("--cols", type=int, default=None, help=f"last dim (default {DEFAULT_COLS}; quick {QUICK_COLS})")
    p.add_argument("--max-gib", type=float, default=None, help="largest main input tensor, GiB")
    p.add_argument("--no-eager", action="store_true", help="skip the eager composition")
    p.add_argument("--no-graphs", action="store_true", help="time plain launches instead of CUDA graphs")
    p.add_argument("--ncu", action="store_true", help="also profile one large launch per kernel with ncu")
    p.add_argument("--ncu-dtype", default="fp16", choices=tuple(DTYPE_BYTES))
    p.add_argument("--ncu-timeout", type=int, default=300)
    p.add_argument("--ncu-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in args.dtypes if d not in DTYPE_BYTES]
    if bad:
        p.error(f"--dtypes: unknown {bad}; choose from {', '.join(DTYPE_BYTES)}")
    args.roots = args.roots or [Path("plugin_src")]
    args.goals = {}
    for item in args.goal:
        op, _, ratio = item.partition("=")
        try:
            args.goals[op.strip()] = float(ratio)
        except ValueError:
            p.error(f"--goal: {item!r} is not NS::OP=RATIO")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep; write kernels.json, kernels.txt, kernels.png (and ncu files) into --out."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if args.ncu_child:
        return ncu_child(args)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("SKIP bench_kernels: --device cuda but torch sees no CUDA GPU")
        return 0
    if device == "cpu":
        print("NOTE: --device cpu exercises the code path only; CPU numbers are not results.")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    descs = load_cuda_ops(device, args.roots)
    args.ops = args.ops or [name for name, d in descs.items() if d.kernel is not None and d.has_patterns]
    missing = [o for o in args.ops if o not in descs]
    if missing:
        print(f"ERROR: ops {missing} not found under {', '.join(map(str, args.roots))} (found {sorted(descs)})")
        return 2
    no_pattern = [o for o in args.ops if not descs[o].has_patterns]
    if no_pattern:
        print(f"ERROR: ops {no_pattern} have inputs without a shape pattern in op.yaml: their traffic is unknown")
        return 2
    args.descs = descs
    facts = device_facts(device)
    facts["build_s"] = round(time.time() - t_start, 1)
    l2 = int(facts.get("l2_bytes") or 0)
    timer = Timer(device, use_graphs=not args.no_graphs)
    cols = args.cols or (QUICK_COLS if args.quick else DEFAULT_COLS)
    free = torch.cuda.mem_get_info()[0] if device == "cuda" else None
    results: list[KernelResult] = []
    skipped: list[str] = []
    for op in args.ops:
        for dtype in args.dtypes:
            if dtype not in descs[op].dtypes:
                skipped.append(f"{op} {dtype}: not in the op's dtypes")
                continue
            for n in size_list(args.quick, args.max_gib, cols, DTYPE_BYTES[dtype]):
                rows = n // cols
                need = working_set_bytes(descs[op], rows, cols, dtype)
                if free is not None and need > 0.85 * free:
                    skipped.append(f"{op} {dtype} {rows}x{cols}: needs ~{human_bytes(need)}, "
                                   f"{human_bytes(free)} free")
                    continue
                r = measure_op(descs[op], dtype, rows, cols, timer, l2, eager=not args.no_eager)
                results.append(r)
                print(f"{op:<20} {dtype:<5} {human_bytes(r.traffic):>10}: kernel {r.kernel_gbs:8.1f} GB/s, "
                      f"copy {r.copy_gbs:8.1f} GB/s ({r.copy_reference}; memcpy {r.memcpy_gbs or 0:.1f}, "
                      f"SM {r.sm_copy_gbs or 0:.1f}), ratio {r.kernel_vs_copy:.2f}"
                      + (f", eager ratio {r.eager_vs_copy:.2f}" if r.eager_vs_copy is not None else ""), flush=True)
    summary = goal_summary(results, args.goals)
    facts["sweep_s"] = round(time.time() - t_start - facts["build_s"], 1)
    table = format_table(results)
    label = facts.get("gpu") or f"CPU ({facts.get('cpu')})"
    data = {"schema": "trtrepo-bench-kernels/1", "environment": facts, "goals": args.goals, "large_bytes": LARGE_BYTES,
            "results": [asdict(r) | {"traffic_bytes": r.traffic} for r in results], "summary": summary,
            "skipped": skipped, "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}
    if args.ncu and device == "cuda":
        data["ncu"] = run_ncu(args, out)
    (out / "kernels.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "kernels.txt").write_text(table + "\n\n" + format_summary(summary, label) + "\n")
    plotted = write_plot(results, out / "kernels.png", f"custom kernels vs device copy — {label}", args.goals)
    print()
    print(table)
    for s in skipped:
        print(f"skipped: {s}")
    print()
    print(format_summary(summary, label))
    print(f"wrote {out / 'kernels.json'}, {out / 'kernels.txt'}" + (f", {out / 'kernels.png'}" if plotted else "")
          + f" in {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
