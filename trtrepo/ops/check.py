"""``trtrepo ops check``: prove that each op of a plugin root keeps the promises of its op.yaml.

For every op, every declared dtype and a spread of shapes made from the inputs' shape patterns (odd, large,
misaligned and non-contiguous ones):

* ``schema`` — the schema the binding registered (defaults included) equals op.yaml's ``schema``;
* ``abi`` — each PTX ``.entry`` takes op.yaml's inputs (pointers), then its ``kernel.scalars`` (int32), then its
  outputs (pointers): TensorRT's AOT argument order;
* ``fake`` — the fake kernel (generated from the rule, or a hand-written C++ Meta kernel) gives the rule's shapes;
* ``rule`` — the kernel's real outputs have the rule's shapes and dtypes;
* ``numerics`` — the kernel equals the op's decomposition within a precision-aware tolerance (both compute in fp32
  and round once: fp32 1e-5, fp16/bf16 one ulp of the dtype);
* ``opcheck`` — ``torch.library.opcheck`` (registration, fake kernel and dispatch consistency);
* ``sanitize`` (``--sanitize``, CUDA) — the whole check again under compute-sanitizer memcheck, 0 errors.

A JSON report for machines, a table for people; every failure names the op, the case and the worst error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtrepo import _table, dtypes, settings
from trtrepo.contracts import Progress
from trtrepo.errors import MissingDependencyError, SpecError
from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

REPORT_SCHEMA = "trtrepo-ops-check/1"
CHECKS = ("schema", "sources", "abi", "fake", "rule", "numerics", "opcheck", "sanitize")
PASS, FAIL, SKIP = "pass", "fail", "skip"
# (leading dims, symbol value, layout): small, odd, rank 1, a long odd row, many rows; then layouts
_CASES_COMMON: list[tuple[list[int], int, str]] = [
    ([], 7, "contiguous"), ([1], 1, "contiguous"), ([5], 64, "contiguous"), ([2, 3], 7, "contiguous"),
    ([3], 1031, "contiguous"), ([257], 64, "contiguous"), ([4], 64, "misaligned"), ([6], 33, "non-contiguous"),
]
_LARGE = {"cpu": ([64], 4099), "cuda": ([2048], 4096)}
_ATTRIBUTE_SAMPLES = {"float": 0.5, "int": 2, "bool": True}


@dataclass
class CheckResult:
    """One check of one op on one case.

    Attributes:
        op: ``ns::op``.
        check: One of :data:`CHECKS`.
        case: What was checked (``fp16 x[2, 3, 7] misaligned``, an entry name, ...).
        status: ``pass``, ``fail`` or ``skip``.
        message: Why it failed or was skipped ('' when it passed).
        worst: The worst error seen (numerics: max |kernel - decomposition| over the allowed), else None.
    """

    op: str
    check: str
    case: str
    status: str
    message: str = ""
    worst: float | None = None


@dataclass
class OpsCheckReport:
    """Everything one ``trtrepo ops check`` run found."""

    roots: list[str]
    device: str
    results: list[CheckResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Something was checked and nothing failed."""
        return any(r.status == PASS for r in self.results) and not self.failures()

    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [r for r in self.results if r.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"schema": REPORT_SCHEMA, "roots": self.roots, "device": self.device, "passed": self.passed,
                "environment": self.environment, "duration_s": round(self.duration_s, 3),
                "summary": self._summary(), "results": [asdict(r) for r in self.results]}

    def write(self, path: str | Path) -> Path:
        """Write the JSON report (parent folders created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return target

    def _summary(self) -> list[dict[str, Any]]:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.results:
            row = rows.setdefault((r.op, r.check), {"op": r.op, "check": r.check, PASS: 0, FAIL: 0, SKIP: 0,
                                                    "worst": None})
            row[r.status] += 1
            if r.worst is not None:
                row["worst"] = max(row["worst"] or 0.0, r.worst)
        return list(rows.values())

    def table(self) -> str:
        """One row per op × check, then every failure spelled out, then the verdict."""
        rows = []
        for row in self._summary():
            state = "FAIL" if row[FAIL] else ("ok" if row[PASS] else "skip")
            worst = "-" if row["worst"] is None else f"{row['worst']:.3g}"
            rows.append((row["op"], row["check"], row[PASS], row[FAIL], row[SKIP], worst, state))
        lines = [_table.render(("op", "check", "pass", "fail", "skip", "worst", "ok"), rows, right=(2, 3, 4, 5))]
        for r in self.results:
            if r.status == FAIL:
                lines.append(f"FAIL {r.op} {r.check} {r.case}: {r.message}")
        skipped = {(r.op, r.check, r.message) for r in self.results if r.status == SKIP}
        lines += [f"skip {op} {check}: {why}" for op, check, why in sorted(skipped)]
        total = len(self.results)
        lines.append(f"ops check: {'PASS' if self.passed else 'FAIL'} ({total - len(self.failures())}/{total} checks "
                     f"passed or skipped, {len(self.failures())} failed; device {self.device})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
def tolerance(dtype: str) -> tuple[float, float]:
    """(atol, rtol) of kernel vs decomposition: both compute in fp32 and round once. fp32: summation order and libm
    differ by a few ulp (1e-5); fp16/bf16: the rounded results differ by at most one ulp of the dtype."""
    import torch

    if dtype == "fp32":
        return 1e-5, 1e-5
    eps = float(torch.finfo(dtypes.to_torch(dtype)).eps)
    return eps, eps


def cases(desc: OpDescription, device: str) -> list[tuple[list[int], dict[str, int], str]]:
    """(leading dims, symbol values, layout) of every shape case of ``desc`` on ``device``."""
    spread = list(_CASES_COMMON)
    lead, value = _LARGE.get(device, _LARGE["cpu"])
    spread.append((lead, value, "contiguous"))
    symbols = sorted(desc.symbols())
    return [(list(leading), {s: v for s in symbols}, layout) for leading, v, layout in spread]


def _make(shape: Sequence[int], dtype: str, device: str, layout: str, gen: Any) -> Any:
    import torch

    kind = dtypes.to_torch(dtype)
    numel = 1
    for d in shape:
        numel *= d
    if layout == "misaligned":  # the data starts one element past a 16-byte boundary
        buffer = torch.randn(numel + 1, generator=gen).to(kind).to(device)
        return buffer[1:].view(*shape)
    if layout == "non-contiguous" and shape:
        if len(shape) >= 2:
            base = torch.randn(*reversed(list(shape)), generator=gen).to(kind).to(device)
            return base.permute(*reversed(range(len(shape))))
        return torch.randn(2 * shape[0], generator=gen).to(kind).to(device)[::2]
    return torch.randn(*shape, generator=gen).to(kind).to(device)


def _attributes(desc: OpDescription) -> dict[str, Any]:
    return {a.name: a.default if a.default is not None else _ATTRIBUTE_SAMPLES[a.type] for a in desc.attributes}


def _case_name(dtype: str, desc: OpDescription, shapes: Sequence[Sequence[int]], layout: str) -> str:
    text = " ".join(f"{n}{list(s)}".replace(" ", "") for n, s in zip(desc.inputs, shapes, strict=True))
    return f"{dtype} {text}" + ("" if layout == "contiguous" else f" {layout}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]


# ---------------------------------------------------------------------------------------------------------------
def check_schema(desc: OpDescription) -> CheckResult:
    """The registered schema (the binding's ``m.def``) against op.yaml's, defaults included."""
    import torch

    try:
        registered = str(desc.torch_op()._schema)
    except AttributeError:
        return CheckResult(desc.name, "schema", "registered", FAIL, "the op library does not define this op")
    declared = str(torch._C.parse_schema(f"{desc.namespace}::{desc.schema}"))
    if registered == declared:
        return CheckResult(desc.name, "schema", "registered", PASS)
    return CheckResult(desc.name, "schema", "registered", FAIL,
                       f"the binding registers {registered!r}, {desc.path} declares {declared!r}")


def check_sources(desc: OpDescription) -> list[CheckResult]:
    """Which binding and plugin the op builds with: generated from op.yaml, or hand-written. A hand-written plugin is
    compared with what would be generated: it must read and write every op.yaml attribute as a plugin field (its
    name, version, namespace, input/output counts come from the generated op_rules.h; its schema is ``schema``'s
    check)."""
    from trtrepo.ops.build import hand_binding, hand_plugin, plugin_files

    results = [CheckResult(desc.name, "sources", "binding", PASS,
                           "hand-written (*_torch.cpp)" if hand_binding(desc) else "generated from op.yaml")]
    if desc.plugin is None and hand_plugin(desc):
        results.append(CheckResult(desc.name, "sources", "plugin", FAIL,
                                   f"{', '.join(f.name for f in plugin_files(desc))} is a TensorRT plugin but op.yaml "
                                   "names none: add plugin: {name: <creator name>, version: \"1\"}"))
    elif desc.plugin is None:
        results.append(CheckResult(desc.name, "sources", "plugin", SKIP, "op.yaml names no plugin"))
    elif not hand_plugin(desc):
        results.append(CheckResult(desc.name, "sources", "plugin", PASS, "generated from op.yaml"))
    else:
        files = plugin_files(desc)
        text = "\n".join(f.read_text(errors="replace") for f in files)
        missing = [a.name for a in desc.attributes if f'"{a.name}"' not in text]
        names = ", ".join(f.name for f in files)
        if missing:
            results.append(CheckResult(
                desc.name, "sources", "plugin", FAIL,
                f"{names} never names the field(s) {', '.join(missing)}: op.yaml's attributes are the plugin's "
                "fields, and the generated plugin reads and serializes each (`trtrepo ops generate` shows it)"))
        else:
            results.append(CheckResult(desc.name, "sources", "plugin", PASS, f"hand-written ({names}); fields "
                                       f"{', '.join(a.name for a in desc.attributes) or 'none'}"))
    return results


def check_abi(desc: OpDescription, ptx: Path | None) -> list[CheckResult]:
    """Each entry's PTX parameters: input pointers, int32 scalars, output pointers (TensorRT's AOT order)."""
    from trtrepo.ops.build import ptx_entries

    if desc.kernel is None:
        return [CheckResult(desc.name, "abi", "kernel", SKIP, "op.yaml has no kernel block")]
    if ptx is None:
        return [CheckResult(desc.name, "abi", "kernel", SKIP, "no PTX was built (nvcc missing)")]
    entries = ptx_entries(ptx.read_text())
    n_in, n_scalar, n_out = len(desc.inputs), len(desc.kernel.scalars), len(desc.outputs)
    want = ["pointer"] * n_in + ["int32"] * n_scalar + ["pointer"] * n_out
    out = []
    for entry in sorted(desc.kernel.entries.values()):
        params = entries.get(entry)
        if params is None:
            out.append(CheckResult(desc.name, "abi", entry, FAIL, f"entry {entry} is not in the PTX"))
            continue
        got = ["pointer" if t in ("u64", "b64", "s64") else ("int32" if t in ("u32", "s32", "b32") else t)
               for t in params]
        if got == want:
            out.append(CheckResult(desc.name, "abi", entry, PASS))
            continue
        names = [*desc.inputs, *(s.name for s in desc.kernel.scalars), *(o.name for o in desc.outputs)]
        out.append(CheckResult(
            desc.name, "abi", entry, FAIL,
            f"PTX parameters {got} but op.yaml gives ({', '.join(names)}) = {want}: TensorRT launches AOT kernels "
            "with the input pointers, then kernel.scalars (int32), then the output pointers"))
    return out


def check_case(desc: OpDescription, dtype: str, leading: list[int], symbols: dict[str, int], layout: str,
               device: str, seed: int) -> list[CheckResult]:
    """``rule``, ``fake`` and ``numerics`` on one case."""
    import torch

    from trtrepo.ops.trace import KernelContractError, check_outputs

    shapes = desc.input_shapes(leading, symbols)
    name = _case_name(dtype, desc, shapes, layout)
    gen = torch.Generator().manual_seed(seed)
    inputs = [_make(s, dtype, device, layout, gen) for s in shapes]
    attrs = _attributes(desc)
    op = desc.torch_op()
    args = [*inputs, *(attrs[a.name] for a in desc.attributes)]
    results = []
    try:
        with torch.inference_mode():
            got = op(*args)
    except Exception as exc:
        return [CheckResult(desc.name, "rule", name, FAIL, f"the kernel raised {type(exc).__name__}: "
                                                           f"{_first_line(exc)}")]
    outs = list(got) if isinstance(got, (tuple, list)) else [got]
    try:
        check_outputs(desc, inputs, attrs, got)
        results.append(CheckResult(desc.name, "rule", name, PASS))
    except KernelContractError as exc:
        results.append(CheckResult(desc.name, "rule", name, FAIL, exc.message))
    results.append(_check_fake(desc, op, args, inputs, attrs, name))
    results += _check_numerics(desc, args, outs, dtype, name)
    return results


def _check_fake(desc: OpDescription, op: Any, args: list[Any], inputs: list[Any], attrs: dict[str, Any],
                name: str) -> CheckResult:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    want = desc.output_shapes([list(t.shape) for t in inputs], attrs)
    try:
        with FakeTensorMode() as mode:
            fake_args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
            fake = op(*fake_args)
    except Exception as exc:
        return CheckResult(desc.name, "fake", name, FAIL, f"the fake kernel raised {type(exc).__name__}: "
                                                          f"{_first_line(exc)}")
    got = [list(t.shape) for t in (fake if isinstance(fake, (tuple, list)) else [fake])]
    if got != [list(s) for s in want]:
        from trtrepo.ops.library import has_meta_kernel

        which = "the C++ Meta kernel" if has_meta_kernel(desc.name) else "the fake kernel"
        return CheckResult(desc.name, "fake", name, FAIL, f"{which} gives {got}, the rule gives "
                                                          f"{[list(s) for s in want]}")
    return CheckResult(desc.name, "fake", name, PASS)


def served_by_decomposition(name: str) -> bool:
    """Whether the op's CPU kernel is its decomposition registered from Python (no C++ CPU reference)."""
    from trtrepo.ops.library import python_cpu_ops

    return name in python_cpu_ops()


def _check_numerics(desc: OpDescription, args: list[Any], outs: list[Any], dtype: str,
                    name: str) -> list[CheckResult]:
    import torch

    if desc.decomposition is None:
        return [CheckResult(desc.name, "numerics", name, SKIP, "op.yaml names no decomposition to compare with")]
    if args and args[0].device.type == "cpu" and served_by_decomposition(desc.name):
        why = "the CPU kernel is the decomposition (op.yaml names no C++ CPU reference): --device cuda checks the " \
              "kernel"
        return [CheckResult(desc.name, "numerics", name, SKIP, why)]
    try:
        with torch.inference_mode():
            ref = desc.load_decomposition()(*args)
    except SpecError as exc:
        return [CheckResult(desc.name, "numerics", name, FAIL, exc.message)]
    except Exception as exc:
        return [CheckResult(desc.name, "numerics", name, FAIL, f"the decomposition raised {type(exc).__name__}: "
                                                               f"{_first_line(exc)}")]
    refs = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if len(refs) != len(outs):
        return [CheckResult(desc.name, "numerics", name, FAIL,
                            f"the decomposition returns {len(refs)} tensors, the kernel {len(outs)}")]
    results = []
    for rule, got, want in zip(desc.outputs, outs, refs, strict=True):
        case = f"{name} -> {rule.name}"
        if list(got.shape) != list(want.shape) or got.dtype != want.dtype:
            results.append(CheckResult(desc.name, "numerics", case, FAIL,
                                       f"kernel gives {list(got.shape)} {got.dtype}, the decomposition "
                                       f"{list(want.shape)} {want.dtype}"))
            continue
        atol, rtol = tolerance(dtypes.from_torch(got.dtype) if got.is_floating_point() else "fp32")
        a, e = got.detach().double().cpu(), want.detach().double().cpu()
        err = (a - e).abs()
        allowed = atol + rtol * e.abs()
        bad = ~(err <= allowed) & ~(a.isnan() & e.isnan())
        if bool(bad.any()):
            index = [int(i) for i in (bad.nonzero()[0])]
            results.append(CheckResult(
                desc.name, "numerics", case, FAIL,
                f"{int(bad.sum())}/{err.numel()} elements differ from the decomposition beyond atol {atol:g} + rtol "
                f"{rtol:g}; worst max |diff| {float(err.max()):.3g}; first at {index}: kernel "
                f"{float(a[tuple(index)]):.6g}, decomposition {float(e[tuple(index)]):.6g}", float(err.max())))
        else:
            results.append(CheckResult(desc.name, "numerics", case, PASS, worst=float(err.max()) if err.numel()
                                       else 0.0))
    return results


def check_opcheck(desc: OpDescription, dtype: str, device: str) -> CheckResult:
    """``torch.library.opcheck`` on one small case."""
    import torch

    shapes = desc.input_shapes([3], {s: 8 for s in desc.symbols()})
    gen = torch.Generator().manual_seed(7)
    attrs = _attributes(desc)
    args = [*(_make(s, dtype, device, "contiguous", gen) for s in shapes), *(attrs[a.name] for a in desc.attributes)]
    try:
        torch.library.opcheck(desc.torch_op(), tuple(args))
    except Exception as exc:
        return CheckResult(desc.name, "opcheck", dtype, FAIL, _first_line(exc))
    return CheckResult(desc.name, "opcheck", dtype, PASS)


def check_op(desc: OpDescription, ptx: Path | None, device: str,
             progress: Progress = LOGGER.info) -> list[CheckResult]:
    """Every check of one op (the op library must be loaded)."""
    results = [check_schema(desc), *check_sources(desc), *check_abi(desc, ptx)]
    if results[0].message == "the op library does not define this op":
        return results
    if not desc.has_patterns:
        missing = ", ".join(i.name for i in desc.input_specs if i.pattern is None)
        results.append(CheckResult(desc.name, "rule", "cases", FAIL,
                                   f"inputs {missing} have no shape pattern in {desc.path}: ops check makes its cases "
                                   "from them (e.g. {name: x, shape: [..., D]})"))
        return results
    for d_index, dtype in enumerate(desc.dtypes):
        progress(f"ops check: {desc.name} {dtype}")
        for i, (leading, symbols, layout) in enumerate(cases(desc, device)):
            results += check_case(desc, dtype, leading, symbols, layout, device, seed=100 * d_index + i)
        results.append(check_opcheck(desc, dtype, device))
    return results


def sanitize(roots: Sequence[Path], progress: Progress) -> CheckResult:
    """The whole check on CUDA again under compute-sanitizer memcheck (a child process)."""
    from trtrepo.ops import toolchain

    tool = shutil.which("compute-sanitizer") or str(toolchain.cuda_home() / "bin" / "compute-sanitizer")
    if not Path(tool).is_file():
        return CheckResult("*", "sanitize", "memcheck", FAIL, "compute-sanitizer not found (CUDA toolkit bin/)")
    cmd = [tool, "--tool", "memcheck", "--error-exitcode", "9", sys.executable, "-m", "trtrepo", "ops", "check",
           *map(str, roots), "--device", "cuda"]
    progress(f"ops check: {' '.join(cmd)}")
    env = dict(os.environ, PYTORCH_NO_CUDA_MEMORY_CACHING="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    summary = re.search(r"ERROR SUMMARY: (\d+) error", done.stdout + done.stderr)
    errors = int(summary.group(1)) if summary else None
    if done.returncode == 0 and errors == 0:
        return CheckResult("*", "sanitize", "memcheck", PASS, worst=0.0)
    tail = [ln for ln in (done.stdout + done.stderr).splitlines() if "=========" in ln][:5]
    return CheckResult("*", "sanitize", "memcheck", FAIL,
                       f"exit {done.returncode}, {errors if errors is not None else 'unknown'} memcheck errors: "
                       f"{' | '.join(tail)}", worst=float(errors or 0))


def run_ops_check(roots: Iterable[Path | str], *, device: str = "cpu", report_path: str | Path | None = None,
                  sanitize_run: bool = False, progress: Progress = LOGGER.info,
                  select: Callable[[OpDescription], bool] | None = None) -> OpsCheckReport:
    """Build and load the ops of ``roots`` and check every op (see the module docstring).

    Args:
        roots: Plugin roots or op folders.
        device: ``cpu`` (the CPU kernels) or ``cuda`` (the CUDA kernels; needs CUDA torch and a GPU).
        report_path: Write the JSON report here.
        sanitize_run: Also run the CUDA check under compute-sanitizer memcheck.
        progress: One-line progress messages.
        select: Check only the ops this returns True for.

    Raises:
        SpecError: Unknown device, or an op.yaml is invalid.
        MissingDependencyError: CUDA was asked for and is not there.
        BuildError: The ops do not compile.
    """
    from trtrepo import deps
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    if device not in ("cpu", "cuda"):
        raise SpecError(f"--device: must be cpu or cuda, got {device!r}")
    if device == "cuda" and not deps.has_cuda_torch():
        raise MissingDependencyError("ops check --device cuda needs CUDA torch and a GPU",
                                     hint=deps.INSTALL_HINTS["cuda_torch"])
    if sanitize_run and device != "cuda":
        raise SpecError("--sanitize: compute-sanitizer checks CUDA kernels: use it with --device cuda")
    started = time.monotonic()
    paths = [Path(r).resolve() for r in roots]
    built = build_ops(paths, settings.cache_dir(), with_cuda=device == "cuda", progress=progress)
    load_ops(built)
    report = OpsCheckReport(roots=[str(p) for p in paths], device=device, environment=_environment(device))
    for name, desc in built.descriptions.items():
        if select is not None and not select(desc):
            continue
        report.results += check_op(desc, built.ptx.get(name), device, progress)
    if sanitize_run:
        report.results.append(sanitize(paths, progress))
    report.duration_s = time.monotonic() - started
    if report_path is not None:
        progress(f"report: {report.write(report_path)}")
    return report


def _environment(device: str) -> dict[str, Any]:
    import torch

    return {"torch": str(torch.__version__), "cuda": torch.version.cuda, "device": device,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None}
