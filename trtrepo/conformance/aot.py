"""The AOT lowering launched as TensorRT would launch it, without TensorRT.

:func:`plan_aot` (no GPU needed) drives trtrepo's own ``register_aot_plugin`` through the ``tensorrt.plugin``
stand-in (:mod:`trtrepo.conformance.qdp`): per op, dtype and set of static dims it calls the registered descriptor
function and ``aot_impl`` once with symbolic input descriptors — what TensorRT does while building the plan — and
resolves what they return (output descriptors, kernel name, PTX, KernelLaunchParams, SymIntExprs) at every concrete
shape of the case list. Each resolved launch is checked against the PTX (the entry exists and takes input pointers,
32-bit scalars, output pointers), against trtrepo's own concrete launch rule, and at the int32 limit against
trtrepo's refusal (``trtrepo.tensorrt.launch.concrete_launch``).

:func:`run_aot` (GPU) loads the PTX bytes ``aot_impl`` returned as a module with the CUDA driver API, launches the
entry on torch tensors in TensorRT's AOT argument order — input pointers, the extra scalars, output pointers — on a
non-default stream, and compares every output with the eager op (``torch.ops.<ns>.<op>``, the CUDA op library).
Outputs live in guard-framed, NaN-poisoned buffers: a write outside an output or an element left unwritten fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo.conformance import qdp
from trtrepo.conformance.cases import INT32_DTYPES, ShapeCase, with_attributes
from trtrepo.conformance.report import Check, compare, tolerance
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError, TrtrepoError
from trtrepo.ops.build import ptx_entries
from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

LANE = "aot"
INT32 = (-(2**31), 2**31)


@dataclass(frozen=True)
class AotLaunch:
    """What the AOT plugin hands TensorRT for one case and dtype, resolved at the case's shapes.

    Attributes:
        desc: The op.
        case: The shapes (attributes filled in).
        dtype: The kernel dtype.
        entry: The kernel entry name ``aot_impl`` returned.
        ptx: The PTX bytes ``aot_impl`` returned.
        param_types: The entry's PTX parameter types, in order.
        grid: ``grid_x``; block: ``block_x``; shared_memory: ``shared_mem``; scalars: the extra scalar args.
        output_shapes: The output descriptors' shapes; output_dtypes: their dtypes (trtrepo names).
        refusal: trtrepo's refusal of the launch (its message), or None.
    """

    desc: OpDescription
    case: ShapeCase
    dtype: str
    entry: str
    ptx: bytes
    param_types: tuple[str, ...]
    grid: int
    block: int
    shared_memory: int
    scalars: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    output_dtypes: tuple[str, ...]
    refusal: str | None


def _check(desc: OpDescription, dtype: str, case: ShapeCase | None, name: str, ok: bool, detail: str = "",
           **errors: float) -> Check:
    where = "-" if case is None else f"{case.label} ({case.origin})"
    return Check(LANE, "-", desc.name, dtype, where, name, bool(ok), detail, errors.get("max_abs"),
                 errors.get("max_rel"))


def abi_ok(types: Sequence[str], n_in: int, n_scalars: int, n_out: int) -> bool:
    """TensorRT's AOT ABI: input pointers (.u64), then 32-bit scalars (.u32/.s32/.b32), then output pointers."""
    return (len(types) == n_in + n_scalars + n_out and list(types[:n_in]) == ["u64"] * n_in
            and all(t in ("u32", "s32", "b32") for t in types[n_in:n_in + n_scalars])
            and list(types[n_in + n_scalars:]) == ["u64"] * n_out)


def float_attribute_bits(value: float) -> int:
    """The float32 bit pattern of ``value`` as a signed int32, computed with numpy (independently of trtrepo)."""
    import numpy as np

    return int(np.array([value], dtype=np.float32).view(np.int32)[0])


def _trt_name(dtype_name: str) -> str:
    from trtrepo import dtypes

    return dtypes.from_tensorrt(dtype_name)


def plan_aot(descriptions: Mapping[str, OpDescription], ptx: Mapping[str, Path], cases: Sequence[ShapeCase],
             progress: Progress = LOGGER.info) -> tuple[list[AotLaunch], list[Check]]:
    """Drive every op's AOT lowering at every case and dtype (CPU only); see the module docstring.

    Args:
        descriptions: op name → description (ops without a kernel block are left out).
        ptx: op name → the PTX file trtrepo built (``BuiltOps.ptx``).
        cases: The shape cases (each names its op).
        progress: One-line progress messages.

    Returns:
        The launches to run on the GPU (refused ones included, for the record) and the checks made.
    """
    from trtrepo.tensorrt.launch import concrete_launch

    launches: list[AotLaunch] = []
    checks: list[Check] = []
    for name, desc in descriptions.items():
        if desc.kernel is None:
            continue
        mine = [with_attributes(c, desc) for c in cases if c.op == name]
        if not mine:
            continue
        if name not in ptx:
            checks.append(_check(desc, "-", None, "ptx_built", False, "the build made no PTX for this op"))
            continue
        try:
            captured = qdp.capture(desc, Path(ptx[name]))
        except TrtrepoError as exc:
            checks.append(_check(desc, "-", None, "register_aot_plugin", False, str(exc)))
            continue
        checks.append(_check(desc, "-", None, "register_aot_plugin", True, "signatures as tensorrt.plugin needs"))
        text = Path(ptx[name]).read_bytes()
        entries = ptx_entries(text.decode(errors="replace"))
        progress(f"aot: {name}: {len(mine)} cases x {len(desc.dtypes)} dtypes")
        for dtype in desc.dtypes:
            groups: dict[Any, list[ShapeCase]] = {}
            for case in mine:
                if case.origin == "int32" and dtype not in INT32_DTYPES:
                    continue
                groups.setdefault(case.signature(), []).append(case)
            for group in groups.values():
                launches += _plan_group(desc, captured, dtype, group, text, entries, checks, concrete_launch)
    return launches, checks


def _plan_group(desc: OpDescription, captured: qdp.Captured, dtype: str, group: Sequence[ShapeCase], ptx: bytes,
                entries: Mapping[str, list[str]], checks: list[Check],
                concrete_launch: Callable[..., Any]) -> list[AotLaunch]:
    """One build-time call of the plugin (one set of static dims), resolved at every case of the group."""
    first = group[0]
    descs = [qdp.input_desc(i, s, st, dtype) for i, (s, st) in enumerate(zip(first.shapes, first.static,
                                                                           strict=True))]
    attrs = [first.attributes[a.name] for a in desc.attributes]
    try:
        outputs = captured.describe(*descs, *attrs)
        entry_raw, code, params, extra = captured.aot_impl(*descs, *attrs, outputs, 0)
    except (TrtrepoError, BuildError, TypeError, ValueError) as exc:
        for case in group:
            checks.append(_check(desc, dtype, case, "aot_impl", False, f"{type(exc).__name__}: {exc}"))
        return []
    kernel = desc.require_kernel()
    entry = entry_raw.decode() if isinstance(entry_raw, bytes) else str(entry_raw)
    code_bytes = code if isinstance(code, bytes) else str(code).encode()
    types = tuple(entries.get(entry, ()))
    ok_entry = entry == kernel.entries[dtype] and entry in entries
    ok_ptx = code_bytes == ptx
    ok_abi = abi_ok(types, len(desc.inputs), len(extra), len(desc.outputs)) and len(extra) == len(kernel.scalars)
    out: list[AotLaunch] = []
    for case in group:
        checks.append(_check(desc, dtype, case, "aot_impl_kernel", ok_entry and ok_ptx,
                             f"entry {entry!r} (op.yaml {kernel.entries[dtype]!r}), PTX "
                             f"{'is' if ok_ptx else 'is NOT'} the built file"))
        checks.append(_check(desc, dtype, case, "ptx_abi", ok_abi,
                             f".param {' '.join(types) or '(entry missing)'} for {len(desc.inputs)} inputs, "
                             f"{len(extra)} scalars, {len(desc.outputs)} outputs"))
        shapes = [list(s) for s in case.shapes]
        try:
            grid = qdp.resolve(params.grid_x, shapes)
            block = qdp.resolve(params.block_x, shapes)
            shmem = qdp.resolve(params.shared_mem, shapes)
            scalars = tuple(qdp.resolve(s, shapes) for s in extra)
            out_shapes = tuple(tuple(qdp.resolve(d, shapes) for d in o.shape_expr) for o in outputs)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            checks.append(_check(desc, dtype, case, "resolve", False, f"{type(exc).__name__}: {exc}"))
            continue
        out_dtypes = tuple(_trt_name(o.dtype.name) for o in outputs)
        want_shapes = tuple(tuple(int(d) for d in s) for s in desc.output_shapes(shapes, case.attributes))
        want_dtypes = tuple(desc.output_dtypes([dtype] * len(desc.inputs)))
        checks.append(_check(desc, dtype, case, "output_descriptors",
                             out_shapes == want_shapes and out_dtypes == want_dtypes,
                             f"{out_shapes} {out_dtypes}, op.yaml {want_shapes} {want_dtypes}"))
        refusal: str | None = None
        rule: Any = None
        try:
            rule = concrete_launch(desc, case.shapes, dtype, case.attributes)
        except BuildError as exc:
            refusal = str(exc)
        fits = all(INT32[0] <= s < INT32[1] for s in scalars) and 1 <= grid < INT32[1]
        if not fits:
            ok = refusal is not None and "does not fit int32" in refusal
            checks.append(_check(desc, dtype, case, "int32_refusal", ok,
                                 refusal or f"trtrepo did not refuse scalars {scalars} (grid {grid})"))
        elif refusal is not None:
            checks.append(_check(desc, dtype, case, "int32_refusal", False,
                                 f"refused although every scalar fits int32 ({scalars}, grid {grid}): {refusal}"))
        else:
            same = (grid, block, shmem, scalars) == (rule.grid, rule.block, rule.shared_memory, rule.scalars)
            checks.append(_check(desc, dtype, case, "launch_matches_rule", same,
                                 f"grid {grid} block {block} shmem {shmem} scalars {scalars}; concrete rule "
                                 f"grid {rule.grid} scalars {rule.scalars}"))
        for spec, value in zip(kernel.scalars, scalars, strict=False):
            text = spec.value.text.replace(" ", "")
            for attr in desc.attributes:
                if attr.type == "float" and text == f"float_bits({attr.name})":
                    bits = float_attribute_bits(float(case.attributes[attr.name]))
                    checks.append(_check(desc, dtype, case, "float_attribute_bits", value == bits,
                                         f"{spec.name} = {value:#010x}, float32({case.attributes[attr.name]!r}) "
                                         f"= {bits:#010x}"))
        if ok_entry and ok_abi:
            out.append(AotLaunch(desc, case, dtype, entry, code_bytes, types, grid, block, shmem, scalars,
                                 out_shapes, out_dtypes, refusal))
    return out


# ------------------------------------------------------------------------------------------------------ GPU
def run_aot(launches: Sequence[AotLaunch], progress: Progress = LOGGER.info, *, device: str = "cuda",
            driver: Any = None) -> list[Check]:
    """Launch every planned, unrefused launch on the GPU and compare with the eager op (see the module docstring).

    Args:
        launches: From :func:`plan_aot`.
        progress: One-line progress messages.
        device: ``cuda``; ``cpu`` only with a stand-in ``driver`` (the harness's own tests of this plumbing).
        driver: The CUDA driver (:class:`trtrepo.conformance.driver.Driver`, made here when None).

    Raises:
        MissingDependencyError: No CUDA driver / CUDA torch.
    """
    import torch

    from trtrepo import deps
    from trtrepo.conformance.driver import Arg, Driver, DriverError
    from trtrepo.conformance.tensors import eager, guarded_output, make_inputs

    deps.require("torch", "the AOT launches")
    cuda = device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            from trtrepo.errors import MissingDependencyError

            raise MissingDependencyError("the AOT launches need a CUDA GPU visible to torch",
                                         hint=deps.INSTALL_HINTS.get("cuda_torch"))
        torch.zeros(1, device="cuda")  # torch's context first: the driver then finds it current
    if driver is None:
        driver = Driver()
    modules: dict[bytes, int] = {}
    functions: dict[tuple[int, str], int] = {}
    checks: list[Check] = []
    todo = [launch for launch in launches if launch.refusal is None]
    for index, launch in enumerate(todo):
        desc, case, dtype = launch.desc, launch.case, launch.dtype
        if index % 25 == 0:
            progress(f"aot: launch {index + 1}/{len(todo)}: {desc.name} {dtype} {case.label}")
        try:
            if launch.ptx not in modules:
                modules[launch.ptx] = driver.load_ptx(launch.ptx)
            key = (modules[launch.ptx], launch.entry)
            if key not in functions:
                functions[key] = driver.function(*key)
            inputs = make_inputs(desc, case, dtype, device)
            outputs = [guarded_output(s, d, device, case.misaligned)
                       for s, d in zip(launch.output_shapes, launch.output_dtypes, strict=True)]
            # TensorRT's AOT order: input pointers, the extra scalars, output pointers
            args = [*(t.data_ptr() for t in inputs), *launch.scalars, *(o.tensor.data_ptr() for o in outputs)]
            stream = torch.cuda.Stream() if cuda else None  # type: ignore[no-untyped-call]
            if stream is not None:
                stream.wait_stream(torch.cuda.current_stream())
            driver.launch(functions[key], launch.grid, launch.block, launch.shared_memory,
                          stream.cuda_stream if stream is not None else 0,
                          [Arg(t, int(v)) for t, v in zip(launch.param_types, args, strict=True)])
            if stream is not None:
                stream.synchronize()
        except (DriverError, RuntimeError) as exc:
            checks.append(_check(desc, dtype, case, "launch", False, f"{type(exc).__name__}: {exc}"))
            continue
        note = ""
        try:
            want = eager(desc, inputs, case.attributes)
        except RuntimeError as exc:
            if case.origin != "int32" or desc.decomposition is None:
                checks.append(_check(desc, dtype, case, "eager", False, f"{type(exc).__name__}: {exc}"))
                continue
            # The op's own launcher refuses this size (rows * cols > INT_MAX) although the AOT entry took it:
            # judge the AOT result against the aten decomposition instead, and say so.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            note = f" (vs the aten decomposition: the eager op refuses this size: {first[:120]})"
            result = desc.load_decomposition()(*inputs, *(case.attributes[a.name] for a in desc.attributes))
            want = list(result) if isinstance(result, (tuple, list)) else [result]
        if cuda:
            torch.cuda.synchronize()
        tol = tolerance(dtype)
        for rule, got, ref in zip(desc.outputs, outputs, want, strict=True):
            ok, max_abs, max_rel, detail = compare(got.tensor, ref, tol["rtol"], tol["atol"])
            detail += note
            checks.append(_check(desc, dtype, case, f"matches_eager[{rule.name}]", ok, detail, max_abs=max_abs,
                                 max_rel=max_rel))
        guards = all(o.guards_intact() for o in outputs)
        checks.append(_check(desc, dtype, case, "no_write_outside_outputs", guards,
                             "guard bytes intact" if guards else "bytes before or after an output were written"))
        del inputs, outputs, want
        if cuda and case.elements > 1 << 26:
            torch.cuda.empty_cache()
    for module in modules.values():
        driver.unload(module)
    return checks
