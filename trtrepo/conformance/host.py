"""The conformance host: trtrepo's TensorRT plugin library driven through its IPluginV3 interface, without TensorRT.

:func:`build_host` compiles ``host/conformance_host.cpp`` (shipped with trtrepo) with trtrepo's own build steps
(:mod:`trtrepo.ops.steps`, :mod:`trtrepo.ops.toolchain`) against the same TensorRT headers as the plugin library: a
content-keyed cache folder with ``build.log`` and ``reproduce.sh``. The executable links no libnvinfer; it exports
``getPluginRegistry`` (``-rdynamic``) for the library's load-time lookup and implements the registry, logger finder
and resource context itself (``host/host_runtime.h``) and an ``IExprBuilder`` over the public ``apiv::VExprBuilder``
/ ``VDimensionExpr`` classes of NvInferImpl.h (``host/host_expr.h``), so the plugin's real getOutputShapes runs.

:func:`run_host_lane` writes a case file (per case: the creator, the plugin fields exactly as the Torch-TensorRT
converter builds them — :func:`trtrepo.tensorrt.opfacts.plugin_fields` — the dtype, the input shapes and which dims
are static), runs the host, and judges its records (:func:`judge`) against op.yaml: creator identity, field names,
output count, dtypes and shapes (``OpDescription.output_shapes``; constness from the static dims), the accepted
dtype x format combinations, the serialization round trip, clone and attachToContext. With ``enqueue`` (GPU), the
inputs are seeded tensors written to files, the host enqueues on device buffers on a non-blocking stream, and every
output is compared with the eager op (``torch.ops.<ns>.<op>`` on the CUDA op library).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo import dtypes, settings
from trtrepo._hashing import content_key, sha256_file
from trtrepo.conformance.cases import ShapeCase, with_attributes
from trtrepo.conformance.report import Check, compare, tolerance
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError, TrtrepoError
from trtrepo.ops import expr, toolchain
from trtrepo.ops.description import OpDescription
from trtrepo.ops.steps import Step, cached_build, run_steps

LOGGER = logging.getLogger(__name__)

LANE = "host"
HOST_NAME = "trtrepo_conformance_host"
HOST_SOURCE = "conformance_host.cpp"
HOST_TIMEOUT_S = 600.0
EXPORTS = ("getCreators", "setLoggerFinder")

# TensorRT's enums (NvInferRuntimeBase.h / NvInferPluginBase.h, identical in 10.x and 11.x).
TRT_DATATYPE = {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6, "BF16": 7, "INT64": 8}
PLUGIN_FIELD_TYPE = {"FLOAT16": 0, "FLOAT32": 1, "FLOAT64": 2, "INT8": 3, "INT16": 4, "INT32": 5, "CHAR": 6,
                     "DIMS": 7, "UNKNOWN": 8, "BF16": 9, "INT64": 10}
LINEAR = 0
ERROR_SEVERITY = 1  # ILogger::Severity::kERROR (kINTERNAL_ERROR is 0)


def host_dir() -> Path:
    """The host's C++ sources (package data of trtrepo.conformance)."""
    return Path(__file__).resolve().parent / "host"


def trt_datatype(dtype: str) -> int:
    """``nvinfer1::DataType`` value of a trtrepo dtype."""
    return TRT_DATATYPE[dtypes.get(dtype).tensorrt]


# ------------------------------------------------------------------------------------------------------ build
def build_host(headers: toolchain.TensorRTHeaders, cache_dir: Path, progress: Progress = LOGGER.info) -> Path:
    """Compile the conformance host against ``headers`` (cached by content: sources, headers, flags, compiler).

    Raises:
        MissingDependencyError: No CUDA toolkit headers (NvInferRuntime.h includes cuda_runtime_api.h).
        BuildError: The compile failed (the first ``file:line: error`` and the log path).
    """
    cxx = toolchain.cxx()
    cuda = toolchain.cuda_home()
    werror = ["-Werror"] if settings.plugin_werror() else []
    sources = sorted(p for p in host_dir().iterdir() if p.suffix in (".cpp", ".h"))
    flags = ("-std=c++17", "-O2", "-g", "-Wall", "-Wextra", *werror)
    cmd = (cxx, *flags, "-isystem", str(headers.include), "-isystem", str(cuda / "include"), f"-I{host_dir()}",
           str(host_dir() / HOST_SOURCE), "-o", HOST_NAME, "-rdynamic", f"-L{cuda / 'lib64'}",
           f"-Wl,-rpath,{cuda / 'lib64'}", "-lcudart", "-ldl")
    key = content_key([(f"host/{p.name}", p) for p in sources],
                      {"tensorrt": [headers.version, sha256_file(headers.include / "NvInferRuntime.h"),
                                    sha256_file(headers.include / "NvInferImpl.h")],
                       "cxx": [toolchain.tool_version(cxx), flags], "cuda": str(cuda)})
    folder = Path(cache_dir) / "conformance_host" / key[:16]
    step = Step(f"compiling {HOST_SOURCE} (TensorRT {headers.version} headers)", cmd)
    cached_build(folder, [HOST_NAME], lambda: run_steps([], [step], folder, progress), progress,
                 f"conformance host (TensorRT {headers.version} headers)")
    return folder / HOST_NAME


# ------------------------------------------------------------------------------------------------------ cases
@dataclass(frozen=True)
class HostCase:
    """One case of the case file: an op at one shape case and dtype, with its data files when enqueued."""

    id: str
    desc: OpDescription
    case: ShapeCase
    dtype: str
    fields: tuple[tuple[str, str, tuple[float | int, ...]], ...]
    inputs: tuple[Path, ...] = ()
    outputs: tuple[Path, ...] = ()


def _no_space(path: Path) -> str:
    text = str(path)
    if any(c.isspace() for c in text):
        raise TrtrepoError(f"{text}: the conformance host's case file takes paths without blanks",
                           hint="use a work folder whose path has no spaces")
    return text


def _field_value(kind: str, value: float | int) -> str:
    import numpy as np

    if kind == "FLOAT32":
        return f"{int(np.array([value], dtype=np.float32).view(np.uint32)[0]):#010x}"
    if kind == "FLOAT64":
        return f"{int(np.array([value], dtype=np.float64).view(np.uint64)[0]):#018x}"
    return str(int(value))


def case_text(library: Path, cases: Sequence[HostCase]) -> str:
    """The host's case file (line format: see ``parsePlan`` in host/conformance_host.cpp)."""
    lines = [f"library {_no_space(library)}"]
    for hc in cases:
        plugin = hc.desc.plugin
        assert plugin is not None
        lines.append(f"case {hc.id} {plugin.name} {plugin.version} {plugin.namespace or '-'} {len(hc.desc.inputs)} "
                     f"{len(hc.desc.outputs)}")
        lines.append(f"dtype {trt_datatype(hc.dtype)}")
        for name, kind, values in hc.fields:
            lines.append(f"field {name} {PLUGIN_FIELD_TYPE[kind]} {len(values)} "
                         + " ".join(_field_value(kind, v) for v in values))
        for i, (shape, static) in enumerate(zip(hc.case.shapes, hc.case.static, strict=True)):
            data = _no_space(hc.inputs[i]) if hc.inputs else "-"
            mask = "".join("1" if s else "0" for s in static)
            lines.append(" ".join(["input", str(len(shape)), *(str(d) for d in shape), mask or "-", data]))
        for i in range(len(hc.desc.outputs)):
            lines.append(f"output {_no_space(hc.outputs[i]) if hc.outputs else '-'}")
        lines.append(f"misalign {int(hc.case.misaligned)}")
        floats = [a.name for a in hc.desc.attributes if a.type == "float"]
        if floats:
            lines.append(f"probe wrongtype {floats[0]}")
        lines.append("end")
    return "\n".join(lines) + "\n"


def host_cases(descriptions: Mapping[str, OpDescription], cases: Sequence[ShapeCase]) -> list[HostCase]:
    """One host case per op with a plugin block, shape case (int32-edge cases left out) and op dtype."""
    from trtrepo.tensorrt.opfacts import plugin_fields

    out: list[HostCase] = []
    for case in cases:
        desc = descriptions.get(case.op)
        if desc is None or desc.plugin is None or case.origin == "int32":
            continue
        full = with_attributes(case, desc)
        fields = tuple((f.name, f.field_type, tuple(f.values)) for f in plugin_fields(desc, full.attributes))
        for dtype in desc.dtypes:
            out.append(HostCase(f"c{len(out)}", desc, full, dtype, fields))
    return out


def run_host(host: Path, case_file: Path, records: Path, *, enqueue: bool, stream_gate: bool = True,
             timeout: float = HOST_TIMEOUT_S) -> tuple[int, list[dict[str, Any]], str]:
    """Run the host; returns its exit status, its records and the tail of its stderr.

    Raises:
        BuildError: The host did not finish within ``timeout``.
    """
    cmd = [str(host), "--cases", str(case_file), "--records", str(records), *(["--enqueue"] if enqueue else []),
           *([] if stream_gate else ["--no-stream-gate"])]
    # Kernels load when the library loads, not at their first launch: a lazy load (CUDA's default since 12.2) waits
    # for the context, so the first launch of each kernel entry behind the closed stream gate blocked until the gate
    # timed out (20 s; seen on the H200 for exactly the first case of each dtype entry, 9 of 174 cases, reported as
    # "not stream-ordered"). TensorRT's own first enqueue never runs behind such a gate.
    env = {**os.environ, "CUDA_MODULE_LOADING": "EAGER"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise BuildError(f"the conformance host did not finish in {timeout:.0f} s: {' '.join(cmd)}") from None
    return proc.returncode, read_records(records), (proc.stderr or "")[-2000:]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The host's JSON lines (a torn last line, from a crash, is dropped)."""
    out: list[dict[str, Any]] = []
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


# ------------------------------------------------------------------------------------------------------ judge
class _Tracked:
    """An int and whether TensorRT would call it a build-time constant (for the expected output constness)."""

    def __init__(self, value: int, const: bool) -> None:
        self.value, self.const = value, const

    def _op(self, other: Any, fn: Any) -> _Tracked:
        o = other if isinstance(other, _Tracked) else _Tracked(int(other), True)
        return _Tracked(int(fn(self.value, o.value)), self.const and o.const)

    def __add__(self, o: Any) -> _Tracked:
        return self._op(o, lambda a, b: a + b)

    def __sub__(self, o: Any) -> _Tracked:
        return self._op(o, lambda a, b: a - b)

    def __mul__(self, o: Any) -> _Tracked:
        return self._op(o, lambda a, b: a * b)

    def __floordiv__(self, o: Any) -> _Tracked:
        return self._op(o, lambda a, b: a // b)


_TRACKED = expr.python_algebra(cdiv=lambda a, b: a._op(b, lambda x, y: -(-x // y)),
                               minimum=lambda a, b: a._op(b, min), maximum=lambda a, b: a._op(b, max),
                               known=lambda v: v.value if v.const else None, lift=lambda v: _Tracked(v, True))


def expected_shapes(desc: OpDescription, case: ShapeCase, symbolic: bool) -> tuple[list[list[int]], list[list[int]]]:
    """(shapes, constness 0/1) of every output by op.yaml's rule, as the plugin's getOutputShapes must give them."""
    inputs = [[_Tracked(d, s or not symbolic) for d, s in zip(shape, static, strict=True)]
              for shape, static in zip(case.shapes, case.static, strict=True)]
    shapes = desc.output_shapes(inputs, case.attributes, _TRACKED)
    values = [[d.value if isinstance(d, _Tracked) else int(d) for d in s] for s in shapes]
    const = [[int(d.const) if isinstance(d, _Tracked) else 1 for d in s] for s in shapes]
    return values, const


def _field_triples(fields: Any) -> list[tuple[str, int, tuple[Any, ...]]]:
    """(name, type, bits-or-values) of a recorded field collection (floats compared by their bits)."""
    out = []
    for f in fields or []:
        values = tuple(f["bits"]) if f["type"] == PLUGIN_FIELD_TYPE["FLOAT32"] else tuple(f["values"])
        out.append((f["name"], int(f["type"]), values))
    return out


def _given_triples(hc: HostCase) -> list[tuple[str, int, tuple[Any, ...]]]:
    import numpy as np

    out = []
    for name, kind, values in hc.fields:
        if kind == "FLOAT32":
            vals: tuple[Any, ...] = tuple(int(b) for b in np.array(values, dtype=np.float32).view(np.uint32))
        else:
            vals = tuple(values)
        out.append((name, PLUGIN_FIELD_TYPE[kind], vals))
    return out


def _identity(desc: OpDescription) -> list[str]:
    assert desc.plugin is not None
    return [desc.plugin.name, desc.plugin.version, desc.plugin.namespace]


def judge_load(records: Sequence[dict[str, Any]], descriptions: Mapping[str, OpDescription], tensorrt: str
               ) -> list[Check]:
    """The library-level facts: dlopen, the static registration, getCreators / setLoggerFinder, duplicates."""

    def check(name: str, ok: bool, detail: str = "") -> Check:
        return Check(LANE, tensorrt, "-", "-", "-", name, bool(ok), detail)

    load = next((r for r in records if r.get("event") == "load"), None)
    if load is None:
        return [check("dlopen", False, "the host wrote no load record")]
    if not load.get("loaded"):
        return [check("dlopen", False, f"dlopen failed: {load.get('dlerror')}")]
    want = sorted(tuple(_identity(d)) for d in descriptions.values() if d.plugin is not None)
    static = load["static_registrations"]
    got_static = sorted((r["name"], r["version"], r["namespace"]) for r in static)
    exported = load.get("exported", [])
    got_exported = sorted((r["name"], r["version"], r["namespace"]) for r in exported)
    done = next((r for r in records if r.get("event") == "done"), {})
    return [
        check("dlopen", True, load["library"]),
        check("static_registration", got_static == want and all(r["accepted"] and r["kind"] == "PLUGIN CREATOR_V3ONE"
                                                                and r["namespace_argument"] == r["namespace"]
                                                                for r in static),
              f"registered {got_static} at load time through the host's getPluginRegistry; op.yaml {want}"),
        check("exports_getCreators", bool(load.get("getCreators")) and load.get("getCreators_count") == len(want),
              f"getCreators found: {load.get('getCreators')}, count {load.get('getCreators_count')}"),
        check("exports_setLoggerFinder", bool(load.get("setLoggerFinder"))),
        check("getCreators_creators", got_exported == want and all(r["same_object_as_static"] for r in exported),
              f"{got_exported}; the same objects as registered statically: "
              f"{all(r['same_object_as_static'] for r in exported)}"),
        check("duplicate_registration_refused", not any(r["registered_again"] for r in exported),
              "loadLibrary's registration after the static one is a duplicate (TensorRT keeps the first)"),
        check("no_legacy_registry_calls", load.get("legacy_registry_calls") == 0 and load.get("loadLibrary_calls") == 0,
              f"IPluginCreator (V2) calls {load.get('legacy_registry_calls')}, loadLibrary calls "
              f"{load.get('loadLibrary_calls')}"),
        check("host_finished", done.get("cases") is not None, f"cases run: {done.get('cases')}"),
    ]


def judge(records: Sequence[dict[str, Any]], cases: Sequence[HostCase], tensorrt: str, *, enqueue: bool
          ) -> list[Check]:
    """Judge the per-case records of one host run (see the module docstring)."""
    by_case: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        if "case" in r:
            by_case.setdefault(r["case"], {}).setdefault(r["event"], []).append(r)
    out: list[Check] = []
    for hc in cases:
        out += _judge_case(hc, by_case.get(hc.id, {}), tensorrt, enqueue)
    return out


def _judge_case(hc: HostCase, ev: Mapping[str, list[dict[str, Any]]], tensorrt: str, enqueue: bool) -> list[Check]:
    desc, case = hc.desc, hc.case
    where = f"{case.label} ({case.origin})"
    out: list[Check] = []

    def check(name: str, ok: bool, detail: str = "", **errors: float) -> None:
        out.append(Check(LANE, tensorrt, desc.name, hc.dtype, where, name, bool(ok), detail, errors.get("max_abs"),
                         errors.get("max_rel")))

    def one(event: str) -> dict[str, Any] | None:
        items = ev.get(event, [])
        return items[0] if items else None

    identity = _identity(desc)
    creator = one("creator")
    if creator is None or not creator["found"]:
        check("creator_registered", False, f"no creator {identity} in the host's registry")
        return out
    check("creator_registered", creator["exported"] and creator["interface"] == ["PLUGIN CREATOR_V3ONE", 1, 0],
          f"{identity} {creator['interface']}, in getCreators: {creator['exported']}")
    names = [(f["name"], f["type"]) for f in creator.get("field_names") or []]
    want_names = [(n, PLUGIN_FIELD_TYPE[k]) for n, k, _ in hc.fields]
    check("field_names", names == want_names, f"{names}; the converter passes {want_names}")
    created = one("create")
    if created is None or not created["ok"]:
        check("create_build", False, "createPlugin(BUILD) returned nullptr for the converter's fields")
        return out
    check("create_build", True)
    probe = one("probe")
    if probe is not None:
        check("refuses_wrong_field_type", probe["refused"] and probe["logged"] >= 1,
              f"{probe['field']} as INT32: refused {probe['refused']}, {probe['logged']} message(s) through the "
              "host's logger")
    caps = one("capabilities")
    want_caps = {"plugin": ["PLUGIN", 1, 0], "core": ["PLUGIN_V3ONE_CORE", 1, 0],
                 "build": ["PLUGIN_V3ONE_BUILD", 1, 0], "runtime": ["PLUGIN_V3ONE_RUNTIME", 1, 0]}
    caps_ok = caps is not None and all(caps[k] == v for k, v in want_caps.items()) and caps["identity"] == identity
    check("capabilities", caps_ok, f"{caps}" if not caps_ok else f"V3One core/build/runtime, {identity}")
    if not caps_ok:
        return out
    nb = one("nb_outputs")
    check("nb_outputs", nb is not None and nb["value"] == len(desc.outputs),
          f"{nb and nb['value']}; op.yaml {len(desc.outputs)}")
    types = one("output_types")
    want_types = [trt_datatype(d) for d in desc.output_dtypes([hc.dtype] * len(desc.inputs))]
    check("output_dtypes", types is not None and types["rc"] == 0 and types["types"] == want_types,
          f"{types and types['types']} rc {types and types['rc']}; op.yaml {want_types}")
    for shapes in ev.get("output_shapes", []):
        symbolic = shapes["mode"] == "symbolic"
        want, const = expected_shapes(desc, case, symbolic)
        ok = shapes["rc"] == 0 and shapes["shapes"] == want and shapes["invalid_operations"] == 0 \
            and shapes["size_tensors"] == 0 and shapes["constant"] == const
        check(f"output_shapes[{shapes['mode']}]", ok,
              f"{shapes['shapes']} constant {shapes['constant']} rc {shapes['rc']} invalid ops "
              f"{shapes['invalid_operations']}; op.yaml {want} constant {const}")
    formats = one("formats")
    if formats is not None:
        n_in, n = len(desc.inputs), len(desc.inputs) + len(desc.outputs)
        # inputs: one op.yaml dtype, all alike (the kernels take one element type); outputs: op.yaml's dtype rule
        want_acc = {(0, -1, trt_datatype(d), LINEAR) for d in desc.dtypes}
        for d in desc.dtypes:
            outs = desc.output_dtypes([d] * n_in)
            want_acc |= {(p, trt_datatype(d), trt_datatype(d if p < n_in else outs[p - n_in]), LINEAR)
                         for p in range(1, n)}
        got_acc = {tuple(a) for a in formats["accepted"]}
        extra, missing = sorted(got_acc - want_acc), sorted(want_acc - got_acc)
        check("supports_format_combination", not extra and not missing and not formats["out_of_range_accepted"],
              f"{formats['queries']} queries over {formats['dtypes']} dtypes x {formats['formats']} formats; "
              f"accepted beyond op.yaml (pos, dtype of pos 0, dtype, format): {extra}; refused: {missing}; "
              f"pos {n} accepted: {formats['out_of_range_accepted']}")
    configure = one("configure")
    check("configure_plugin", configure is not None and configure["rc"] == 0,
          f"rc {configure and configure['rc']}")
    check("workspace_size", configure is not None and configure["workspace"] == 0,
          f"{configure and configure['workspace']} bytes (trtrepo's plugins use none)")
    given = _given_triples(hc)
    runtime = one("runtime")
    if runtime is None:
        check("serialize_round_trip", False, "no runtime record")
        return out
    serialized = _field_triples(runtime["serialized"])
    check("fields_to_serialize", serialized == given, f"{serialized}; created from {given}")
    check("create_runtime", runtime["ok"] and runtime.get("identity") == identity,
          f"createPlugin(RUNTIME) from the serialized fields: {runtime['ok']}")
    if runtime["ok"]:
        check("serialize_round_trip", _field_triples(runtime["fields"]) == serialized,
              f"runtime instance serializes {_field_triples(runtime['fields'])}")
    for event in ("clone", "attach"):
        rec = one(event)
        ok = rec is not None and rec["ok"] and rec["distinct"] and rec["identity"] == identity \
            and _field_triples(rec["fields"]) == serialized
        check("clone" if event == "clone" else "attach_to_context", ok, f"{rec}" if not ok else "a distinct copy, "
              "same identity and fields")
    shape = one("shape_change")
    check("on_shape_change", shape is not None and shape["rc"] == 0, f"rc {shape and shape['rc']}")
    probe_logs = probe["logged"] if probe is not None else 0
    errors = [r for r in ev.get("log", []) if r["severity"] <= ERROR_SEVERITY]
    check("no_errors_logged", len(errors) == probe_logs,
          "; ".join(r["message"] for r in errors) or "none (besides the probe's)")
    if enqueue:
        rec = one("enqueue")
        if rec is None or not rec["ran"]:
            check("enqueue", False, f"{rec and rec.get('why')}")
            return out
        ok = rec["rc"] == 0 and rec["launch_error"] == "no error" and rec["error_after_sync"] == "no error" \
            and not rec["host_error"]
        check("enqueue", ok, f"rc {rec['rc']}, {rec['launch_error']} / {rec['error_after_sync']} {rec['host_error']}")
        if rec["stream_ordered"] is not None:
            check("enqueue_on_given_stream", rec["stream_ordered"] and not rec["gate_timed_out"],
                  "the work waited for the given (held) non-blocking stream" if rec["stream_ordered"] else
                  "outputs were written before the given stream was released")
        check("no_write_outside_outputs", rec["guards_intact"] and rec["inputs_unchanged"],
              f"guards intact {rec['guards_intact']}, inputs unchanged {rec['inputs_unchanged']}")
    return out


def compare_outputs(hc: HostCase, expected: Sequence[Any], tensorrt: str) -> list[Check]:
    """Each enqueued output (the host's output files) against the eager op's output."""
    import torch

    out = []
    tol = tolerance(hc.dtype)
    where = f"{hc.case.label} ({hc.case.origin})"
    for rule, path, want in zip(hc.desc.outputs, hc.outputs, expected, strict=True):
        name = f"matches_eager[{rule.name}]"
        if not path.is_file():
            out.append(Check(LANE, tensorrt, hc.desc.name, hc.dtype, where, name, False, "no output file"))
            continue
        raw = bytearray(path.read_bytes())
        kind = dtypes.to_torch(hc.dtype)
        if len(raw) != want.numel() * want.element_size():
            out.append(Check(LANE, tensorrt, hc.desc.name, hc.dtype, where, name, False,
                             f"{len(raw)} bytes, the eager output has {want.numel() * want.element_size()}"))
            continue
        got = torch.frombuffer(raw, dtype=torch.uint8).view(kind).reshape(want.shape) if raw else \
            torch.empty(want.shape, dtype=kind)
        ok, max_abs, max_rel, detail = compare(got, want.cpu(), tol["rtol"], tol["atol"])
        out.append(Check(LANE, tensorrt, hc.desc.name, hc.dtype, where, name, ok, detail, max_abs, max_rel))
    return out


# ------------------------------------------------------------------------------------------- the library file
def library_checks(library: Path, descriptions: Mapping[str, OpDescription], tensorrt: str) -> list[Check]:
    """What the library file itself must be: exports only getCreators / setLoggerFinder, needs no libnvinfer."""

    def check(name: str, ok: bool, detail: str) -> Check:
        return Check("library", tensorrt, "-", "-", library.name, name, bool(ok), detail)

    out = []
    nm, readelf = shutil.which("nm"), shutil.which("readelf")
    if nm is None or readelf is None:
        return [check("binutils", False, "nm / readelf (binutils) not found: the exports cannot be read")]
    symbols = subprocess.run([nm, "-D", "--defined-only", str(library)], capture_output=True, text=True,
                             timeout=60, check=False).stdout
    defined = sorted({line.split()[-1] for line in symbols.splitlines()
                      if len(line.split()) >= 3 and line.split()[1] in "TDBVWRiu"})
    out.append(check("exports", defined == sorted(EXPORTS), f"defined dynamic symbols: {defined}"))
    dynamic = subprocess.run([readelf, "-d", str(library)], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    needed = [line.split("[")[-1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    out.append(check("links_no_tensorrt", not any("nvinfer" in n for n in needed), f"NEEDED: {needed}"))
    return out


# ------------------------------------------------------------------------------------------- expression builder
EXPR_VALUES = (-7, -3, -1, 0, 1, 2, 3, 7, 64, 2**31 - 1, 2**31, 2**40, 2**62, -(2**63), 2**63 - 1)
DIMENSION_OPERATIONS = ("kSUM", "kPROD", "kMAX", "kMIN", "kSUB", "kEQUAL", "kLESS", "kFLOOR_DIV", "kCEIL_DIV")


def _reference(op: str, a: int, b: int) -> int | None:
    """Python's exact result of a DimensionOperation, or None where it is undefined for int64."""
    if op in ("kFLOOR_DIV", "kCEIL_DIV") and b == 0:
        return None
    value = {"kSUM": lambda: a + b, "kPROD": lambda: a * b, "kMAX": lambda: max(a, b), "kMIN": lambda: min(a, b),
             "kSUB": lambda: a - b, "kEQUAL": lambda: int(a == b), "kLESS": lambda: int(a < b),
             "kFLOOR_DIV": lambda: a // b, "kCEIL_DIV": lambda: -(-a // b)}[op]()
    return value if -(2**63) <= value < 2**63 else None


def expr_selftest(host: Path, work: Path, tensorrt: str) -> list[Check]:
    """The host's IExprBuilder against Python integer semantics for every DimensionOperation over a value grid
    (negatives, zero, int32 and int64 edges): exact value, nullptr where undefined, constness propagated."""
    work.mkdir(parents=True, exist_ok=True)
    values = [v for v in EXPR_VALUES if -(2**63) <= v < 2**63]
    lines = [f"{i} {a} {b}" for i, _ in enumerate(DIMENSION_OPERATIONS) for a in values for b in values]
    (work / "expr_ops.txt").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(host), "--expr-selftest", str(work / "expr_ops.txt"), "--records",
                           str(work / "expr_records.jsonl")], capture_output=True, text=True, timeout=120, check=False)
    records = read_records(work / "expr_records.jsonl")
    if proc.returncode != 0 or len(records) != len(lines):
        return [Check("expr", tensorrt, "-", "-", "-", "expr_builder", False,
                      f"exit {proc.returncode}, {len(records)}/{len(lines)} records: {proc.stderr[-300:]}")]
    wrong = []
    for r in records:
        op = DIMENSION_OPERATIONS[r["op"]]
        want = _reference(op, r["a"], r["b"])
        ok = (r["ok"] == (want is not None) and (want is None or (r["value"] == want and r["constant"]
                                                                  and r["constant_value"] == want))
              and r["symbolic_ok"] == r["ok"] and (want is None or (r["symbolic_value"] == want
                                                                    and not r["symbolic_constant"])))
        if not ok:
            wrong.append(f"{op}({r['a']}, {r['b']}) = {r['value'] if r['ok'] else 'nullptr'}, want {want}")
    return [Check("expr", tensorrt, "-", "-", f"{len(records)} operations", "expr_builder", not wrong,
                  "; ".join(wrong[:5]) or "exact int64 semantics; nullptr on overflow and division by zero; "
                  "constant only when both operands are")]


# ------------------------------------------------------------------------------------------------------ lane
def run_host_lane(descriptions: Mapping[str, OpDescription], library: Path, host: Path, tensorrt: str,
                  cases: Sequence[ShapeCase], work: Path, *, enqueue: bool, stream_gate: bool = True,
                  progress: Progress = LOGGER.info) -> list[Check]:
    """Write the cases (with seeded inputs and eager outputs when ``enqueue``), run the host, judge everything.

    Args:
        descriptions: op name → description (ops with a plugin block are run).
        library: The plugin library built against ``tensorrt``'s headers.
        host: The conformance host built against the same headers.
        tensorrt: The header version (for the report).
        cases: The shape cases.
        work: A folder for the case file, the records and the data files (created).
        enqueue: Run enqueue on the GPU and compare with the eager op (needs CUDA torch and a GPU).
        stream_gate: Hold the enqueue stream shut until enqueue returned, to see the work wait for it (off under
            compute-sanitizer, which may serialize launches).
        progress: One-line progress messages.
    """
    work.mkdir(parents=True, exist_ok=True)
    planned = host_cases(descriptions, cases)
    expected: dict[str, list[Any]] = {}
    if enqueue:
        planned, expected = _with_data(planned, work / "data", progress)
    (work / "cases.txt").write_text(case_text(library, planned))
    progress(f"host {tensorrt}: {len(planned)} cases{' with enqueue' if enqueue else ''}")
    rc, records, stderr = run_host(host, work / "cases.txt", work / "records.jsonl", enqueue=enqueue,
                                   stream_gate=stream_gate)
    checks = [Check(LANE, tensorrt, "-", "-", "-", "host_exit", rc == 0, f"exit {rc}: {stderr.strip()[-300:]}")]
    checks += judge_load(records, descriptions, tensorrt)
    checks += judge(records, planned, tensorrt, enqueue=enqueue)
    if enqueue:
        for hc in planned:
            checks += compare_outputs(hc, expected[hc.id], tensorrt)
    return checks


def _with_data(planned: Sequence[HostCase], data: Path, progress: Progress) -> tuple[list[HostCase],
                                                                                     dict[str, list[Any]]]:
    import torch

    from trtrepo.conformance.tensors import eager, make_inputs

    data.mkdir(parents=True, exist_ok=True)
    out: list[HostCase] = []
    expected: dict[str, list[Any]] = {}
    progress(f"host: writing inputs and eager outputs of {len(planned)} cases")
    for hc in planned:
        inputs = make_inputs(hc.desc, hc.case, hc.dtype, "cuda")
        files = []
        for i, t in enumerate(inputs):
            path = data / f"{hc.id}_in{i}.bin"
            t.contiguous().cpu().view(torch.uint8).numpy().tofile(path)
            files.append(path)
        expected[hc.id] = [t.cpu() for t in eager(hc.desc, inputs, hc.case.attributes)]
        outs = tuple(data / f"{hc.id}_out{i}.bin" for i in range(len(hc.desc.outputs)))
        out.append(HostCase(hc.id, hc.desc, hc.case, hc.dtype, hc.fields, tuple(files), outs))
    torch.cuda.synchronize()
    return out, expected
