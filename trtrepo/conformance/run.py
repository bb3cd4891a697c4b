"""One conformance run: build what the lowerings need with trtrepo's own build code, then drive both lowerings.

1. The torch op library (CUDA where a GPU is visible: the eager reference) and the PTX: ``trtrepo.ops.build``.
2. ``aot``: :mod:`trtrepo.conformance.aot` — trtrepo's AOT lowering through the ``tensorrt.plugin`` stand-in, every
   op x dtype x case; launched with the CUDA driver API and compared with the eager op where there is a GPU.
3. ``host``: per TensorRT header folder, the plugin library of all plugin roots (``build_ops(..., tensorrt=True)``
   with ``TRTREPO_TENSORRT_INCLUDE`` set to that folder), its file checks, the conformance host built against the
   same headers, the host's IExprBuilder self-test, and the host run (:mod:`trtrepo.conformance.host`), with
   enqueue where there is a GPU.

Everything is run through the conformance host and the stand-in, not TensorRT: docs/conformance.md says what that
proves and what still needs TensorRT.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo import deps, settings
from trtrepo.conformance.cases import ShapeCase, int32_cases, profile_cases, spread_cases
from trtrepo.conformance.report import Check, Report
from trtrepo.contracts import Progress
from trtrepo.errors import MissingDependencyError, SpecError

LOGGER = logging.getLogger(__name__)

LANES = ("aot", "host")


@dataclass(frozen=True)
class Options:
    """What to run.

    Attributes:
        sources: Plugin roots (or op folders).
        headers: TensorRT include folders (each holds NvInferRuntime.h); one plugin library and host per folder.
        work: Where case files, records and data go.
        examples: model.yaml files whose models' op shapes at min/opt/max become cases.
        lanes: ``aot`` and/or ``host``.
        small: The few shapes for compute-sanitizer (no examples, no int32 edge).
        gpu: Launch / enqueue on the GPU; None: when CUDA torch sees one.
        int32: Include the int32-edge cases (2^31 elements).
        stream_gate: Check that enqueue's work waits for its stream (off under compute-sanitizer).
        build_only: Build everything (op library, PTX, plugin libraries, hosts) and check nothing.
        facts: Extra facts for the report.
    """

    sources: tuple[Path, ...]
    headers: tuple[Path, ...] = ()
    work: Path = Path("conformance_work")
    examples: tuple[Path, ...] = ()
    lanes: tuple[str, ...] = LANES
    small: bool = False
    gpu: bool | None = None
    int32: bool = True
    stream_gate: bool = True
    build_only: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _tensorrt_include(include: Path) -> Iterator[None]:
    """``TRTREPO_TENSORRT_INCLUDE`` set to ``include`` for one build (build_ops reads it when called)."""
    name = settings.TENSORRT_INCLUDE.name
    old = os.environ.get(name)
    os.environ[name] = str(include)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def collect_cases(descriptions: dict[str, Any], options: Options) -> list[ShapeCase]:
    """The spread (or small) cases of every op, the int32 edge and the examples' profile cases."""
    cases: list[ShapeCase] = []
    for desc in descriptions.values():
        cases += spread_cases(desc, small=options.small)
        if options.int32 and not options.small:
            cases += int32_cases(desc)
    if options.examples and not options.small:
        cases += profile_cases(options.examples, descriptions)
    return cases


def run_conformance(options: Options, progress: Progress = LOGGER.info) -> Report:
    """Build and run everything ``options`` asks for; see the module docstring.

    Raises:
        SpecError: An unknown lane, or an op.yaml / model.yaml is invalid.
        MissingDependencyError: torch, nvcc, or a header folder without NvInferRuntime.h.
        BuildError: A build failed.
    """
    unknown = [lane for lane in options.lanes if lane not in LANES]
    if unknown:
        raise SpecError(f"--lanes: {', '.join(unknown)} not one of {', '.join(LANES)}")
    deps.require("torch", "the conformance harness")
    import torch

    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    for include in options.headers:
        if not (Path(include) / "NvInferRuntime.h").is_file():
            raise MissingDependencyError(f"{include}: no NvInferRuntime.h (TensorRT's include folder)",
                                         hint="pass the include/ folder of a TensorRT install or of "
                                         "NVIDIA/TensorRT's repository")
    gpu = torch.cuda.is_available() if options.gpu is None else options.gpu
    cache = settings.cache_dir()
    start = time.monotonic()
    report = Report()
    report.facts.update(options.facts)
    report.facts.update({"torch": str(torch.__version__), "cuda": torch.version.cuda, "gpu": gpu,
                         "device": torch.cuda.get_device_name() if gpu else None,
                         "sources": [str(s) for s in options.sources], "lanes": list(options.lanes),
                         "small": options.small, "scope": "run through the conformance host and a tensorrt.plugin "
                         "stand-in, not TensorRT (docs/conformance.md)"})
    built = build_ops(list(options.sources), cache, with_cuda=gpu, progress=progress)
    if options.build_only:
        from trtrepo.conformance.host import build_host
        from trtrepo.ops import toolchain

        for include in options.headers:
            with _tensorrt_include(Path(include)):
                build_ops(list(options.sources), cache, with_cuda=gpu, tensorrt=True, progress=progress)
            headers = toolchain.TensorRTHeaders(Path(include).resolve(), toolchain.header_version(Path(include)))
            build_host(headers, cache, progress)
        report.facts["build_only"] = True
        report.facts["seconds"] = round(time.monotonic() - start, 1)
        return report
    load_ops(built)
    cases = collect_cases(dict(built.descriptions), options)
    report.facts["ops"] = sorted(built.descriptions)
    report.facts["shape_cases"] = len(cases)
    report.facts["build_s"] = round(time.monotonic() - start, 1)

    if "aot" in options.lanes:
        from trtrepo.conformance.aot import plan_aot, run_aot

        launches, checks = plan_aot(built.descriptions, built.ptx, cases, progress)
        report.extend(checks)
        report.facts["aot_launches_planned"] = sum(1 for launch in launches if launch.refusal is None)
        if gpu:
            report.extend(run_aot(launches, progress))
        else:
            report.skipped.append("aot launches on the GPU: no CUDA GPU visible (planning and PTX checks ran)")

    if "host" in options.lanes:
        if not options.headers:
            report.skipped.append("host lane: no TensorRT header folder given (--headers)")
        for include in options.headers:
            checks, facts = _host_lane(options, Path(include), built.descriptions, cases, gpu, progress)
            report.extend(checks)
            report.facts.setdefault("host", {})[facts["tensorrt"]] = facts
        if gpu and not options.stream_gate:
            report.skipped.append("enqueue_on_given_stream: the stream gate is off (--no-stream-gate)")
    report.facts["seconds"] = round(time.monotonic() - start, 1)
    return report


def _host_lane(options: Options, include: Path, descriptions: Any, cases: Sequence[ShapeCase], gpu: bool,
               progress: Progress) -> tuple[list[Check], dict[str, Any]]:
    from trtrepo.conformance.host import build_host, expr_selftest, library_checks, run_host_lane
    from trtrepo.ops import toolchain
    from trtrepo.ops.build import build_ops

    version = toolchain.header_version(include)
    progress(f"host: TensorRT {version} headers ({include})")
    with _tensorrt_include(include):
        built = build_ops(list(options.sources), settings.cache_dir(), with_cuda=gpu, tensorrt=True,
                          progress=progress)
    assert built.trt_plugin_library is not None
    headers = toolchain.TensorRTHeaders(include.resolve(), version)
    host = build_host(headers, settings.cache_dir(), progress)
    work = options.work / f"host-{version}"
    checks = library_checks(built.trt_plugin_library, descriptions, version)
    checks += expr_selftest(host, work, version)
    checks += run_host_lane(descriptions, built.trt_plugin_library, host, version, cases, work, enqueue=gpu,
                            stream_gate=options.stream_gate, progress=progress)
    facts = {"tensorrt": version, "headers": str(include.resolve()), "plugin_library": str(built.trt_plugin_library),
             "host": str(host), "werror": settings.plugin_werror(), "enqueue": gpu}
    return checks, facts
