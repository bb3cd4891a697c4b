"""One-op probe models: each custom op of a model, alone, built and served as the model is (``check --ops``).

A probe is a tiny ``nn.Module`` that calls the op with the tensors it is given and the attributes it was called with
in the model (constants of the probe); it is exported with a dynamic dim wherever the captured calls
(:mod:`trtrepo.check.capture`) differ in size (min..max of what was seen), built with the model's target and the
op's lowering (the served model's manifest record says which; the spec where there is none) and written into a
repository of its own by :func:`trtrepo.repository.writer.write_repository`, as ``trtrepo build`` writes one. That
repository lives in the cache (the run folder of the model's repository), never inside the user's repository, and
is removed after the run.

The probes load the op library the served model loads (its ``<model>/plugins/`` files, per the manifest): what is
probed is the op as it is served, not a fresh build of the sources. Where the served repository has no record of
the model's libraries, the probes load the libraries built from the spec's plugin sources (the report says so).

A probe that cannot be built and served here is reported as not served, with the reason: the tensorrt target
without TensorRT / Torch-TensorRT (every lowering: plugin, aot, decompose).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.contracts import Progress

if TYPE_CHECKING:
    from trtrepo.check.capture import OpCall
    from trtrepo.ops.description import OpDescription
    from trtrepo.repository.manifest import ServingRecord
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

PROBE_PREFIX = "probe"
PROBE_FOLDER_PREFIX = "probes-"
MAX_NAME = 128  # trtrepo.spec's model names
OUTPUT_PREFIX = "output_"  # probe outputs: output_<op output name>, never an input's name


@dataclass(frozen=True)
class Probe:
    """A probe model to build and serve.

    Attributes:
        op: ``namespace::name``.
        model: The model it was captured in.
        name: The probe model's name in the probe repository.
        spec: Its model spec (inputs with the captured shape ranges, outputs, target, lowering).
        target: ``torch`` or ``tensorrt``.
        lowering: The op's TensorRT lowering (``plugin``, ``aot``, ``decompose``); ``-`` for the torch target.
        layout: Per schema argument: ``("input", name)`` or ``("const", value)``.
        output_names: The probe's outputs, in the op's order.
        calls: The captured calls it is sent.
    """

    op: str
    model: str
    name: str
    spec: ModelSpec
    target: str
    lowering: str
    layout: tuple[tuple[str, Any], ...]
    output_names: tuple[str, ...]
    calls: tuple[OpCall, ...]


@dataclass(frozen=True)
class NotServed:
    """An op whose probe cannot be served here, and why."""

    op: str
    target: str
    lowering: str
    reason: str


@dataclass(frozen=True)
class ProbeRepository:
    """The written probe repository.

    Attributes:
        root: The repository folder.
        probes: Probe model name → its probe.
        library: Where the probes' op libraries came from (``served repository <path>`` or ``plugin sources``).
    """

    root: Path
    probes: dict[str, Probe]
    library: str


def probe_name(model: str, op: str) -> str:
    """``probe__<model>__<namespace>__<op>`` (a valid model name, at most 128 characters)."""
    raw = f"{PROBE_PREFIX}__{model}__{op.replace('::', '__')}"
    return re.sub(r"[^A-Za-z0-9_\-]", "_", raw)[:MAX_NAME]


def plan_probes(model: ModelSpec, calls: Mapping[str, Sequence[OpCall]], ops: Mapping[str, OpDescription],
                record: ServingRecord | None) -> list[Probe | NotServed]:
    """One probe (or the reason there is none) per captured op of ``model``, in the order of ``calls``.

    Args:
        model: The model the ops were captured in.
        calls: Op → its captured calls (graph order).
        ops: The op descriptions (output names).
        record: The served model's manifest record (its target and lowerings), None where the repository has none.
    """
    from trtrepo import deps

    target = record.target if record is not None else _spec_target(model)
    out: list[Probe | NotServed] = []
    for op, op_calls in calls.items():
        lowering = (record.lowerings.get(op) if record is not None and record.lowerings else None) or \
            (model.lowering(op) if target == "tensorrt" else "-")
        if target == "tensorrt" and not (deps.has_tensorrt() and deps.has_torch_tensorrt()):
            missing = "TensorRT" if not deps.has_tensorrt() else "Torch-TensorRT"
            out.append(NotServed(op, target, lowering, f"not served here: the tensorrt target ({lowering} lowering) "
                                 f"needs {missing}, which is not available here"))
            continue
        out.append(_probe(model, op, list(op_calls), ops[op], target, lowering))
    return out


def _spec_target(model: ModelSpec) -> str:
    from trtrepo.build import resolve_target
    from trtrepo.errors import MissingDependencyError

    try:
        return resolve_target(model, None)
    except MissingDependencyError:
        return "tensorrt"


def _probe(model: ModelSpec, op: str, calls: list[OpCall], desc: OpDescription, target: str,
           lowering: str) -> Probe:
    from trtrepo.spec import OutputSpec, TensorSpec, TritonSpec, Warmup

    first = calls[0]
    inputs = []
    for i, (name, dtype) in enumerate(zip(first.input_names, first.dtypes, strict=True)):
        shapes = [tuple(c.inputs[i].shape) for c in calls]
        lo = tuple(min(s[a] for s in shapes) for a in range(len(shapes[0])))
        hi = tuple(max(s[a] for s in shapes) for a in range(len(shapes[0])))
        shape = tuple(-1 if lo[a] != hi[a] else lo[a] for a in range(len(lo)))
        inputs.append(TensorSpec(name=name, dtype=dtype, shape=shape, min=lo, opt=shapes[0], max=hi))
    names = [o.name for o in desc.outputs] if len(desc.outputs) == len(first.outputs) else \
        [f"{i}" for i in range(len(first.outputs))]
    outputs = tuple(OutputSpec(name=f"{OUTPUT_PREFIX}{n}") for n in names)
    layout = tuple(("input", name) if name in first.input_names else ("const", first.attributes.get(name))
                   for name in _schema_arguments(op))
    name = probe_name(model.name, op)
    triton = TritonSpec(max_batch_size=0, instance_groups=model.triton.instance_groups,
                        warmup=Warmup(enabled=False))
    spec = dataclasses.replace(model, name=name, version=1, inputs=tuple(inputs), outputs=outputs,
                               target=target, ops={op: lowering} if target == "tensorrt" else {}, triton=triton,
                               yaml_path=f"probe {op} of {model.yaml_path}")
    return Probe(op=op, model=model.name, name=name, spec=spec, target=target, lowering=lowering, layout=layout,
                 output_names=tuple(o.name for o in outputs), calls=tuple(calls))


def _schema_arguments(op: str) -> list[str]:
    import torch

    ns, name = op.split("::", 1)
    return [a.name for a in getattr(getattr(torch.ops, ns), name).default._schema.arguments]


def export_probe(probe: Probe, device: str = "cpu") -> Any:
    """The probe module, exported with its inputs' dynamic dims (torch.export.ExportedProgram).

    Raises:
        ExportError: torch.export refused the probe (one line naming the op).
    """
    import torch

    from trtrepo.export import ExportError, dynamic_shapes, quiet_torch, trace_shape
    from trtrepo.samples import sample_inputs

    net = _probe_module(probe.op, probe.layout)
    traced = tuple(dataclasses.replace(t, opt=trace_shape(t)) for t in probe.spec.inputs)
    args = sample_inputs(traced, "opt", device)
    shapes = dynamic_shapes(probe.spec.inputs)
    with quiet_torch() as noise:
        try:
            return torch.export.export(net, args, dynamic_shapes=(tuple(shapes[t.name] for t in probe.spec.inputs),))
        except Exception as exc:
            noise.show()
            raise ExportError(f"probe of {probe.op}: torch.export failed: {str(exc).strip().splitlines()[0]}") from exc


def _probe_module(op: str, layout: tuple[tuple[str, Any], ...]) -> Any:
    import torch

    ns, name = op.split("::", 1)
    overload = getattr(getattr(torch.ops, ns), name).default

    class OpProbe(torch.nn.Module):
        """Calls one custom op: tensors from the inputs, attributes as captured."""

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
            given = iter(tensors)
            args = [next(given) if kind == "input" else value for kind, value in layout]
            out = overload(*args)
            return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return OpProbe().eval()


def write_probe_repository(spec: Spec, probes: Sequence[Probe], folder: Path, *, served: Path | None,
                           records: Mapping[str, ServingRecord | None], device: str,
                           progress: Progress = LOGGER.info) -> ProbeRepository:
    """Build every probe with its target and write them into ``folder`` (a new repository).

    Args:
        spec: The user's spec (its plugin sources).
        probes: The probes.
        folder: The probe repository (must not exist).
        served: The served repository, whose op libraries the probes load (None: the plugin sources' build).
        records: Model name → its record in the served repository (its plugin libraries), None where it has none.
        device: ``cpu`` or ``cuda``.
        progress: One line per step.
    """
    from trtrepo.build import build_log_dir
    from trtrepo.ops.stage import cache_dir, prepare_ops
    from trtrepo.repository.manifest import environment
    from trtrepo.repository.writer import write_repository
    from trtrepo.spec import Spec as SpecType
    from trtrepo.targets.base import BuildContext, get_target

    probe_spec = SpecType(path=folder.parent / "probes.yaml", repository=folder, plugin_sources=spec.plugin_sources,
                          models=tuple(p.spec for p in probes))
    _write_record(probe_spec.path, spec, probes)
    targets = {p.name: p.target for p in probes}
    ops = prepare_ops(probe_spec, list(probe_spec.models), targets, progress=progress)
    origins: set[str] = set()
    with build_log_dir(cache_dir() / "logs") as log_dir:
        ctx = BuildContext(spec=probe_spec, ops=ops, cache_dir=cache_dir(), log_dir=log_dir, device=device,
                           progress=progress)
        built = {}
        for probe in probes:
            progress(f"probe: {probe.op} ({probe.target}{'' if probe.lowering == '-' else ', ' + probe.lowering}; "
                     f"{len(probe.calls)} captured call{'s' if len(probe.calls) != 1 else ''})")
            artifacts = get_target(probe.target)(ctx, probe.spec, export_probe(probe, device))
            artifacts, origin = _served_libraries(artifacts, served, probe, records.get(probe.model))
            origins.add(origin)
            built[probe.name] = (probe.spec, artifacts)
        write_repository(probe_spec, built, folder, ops=ops, environment=environment(), device=device,
                         log_dir=log_dir, where="probe repository", progress=progress)
    return ProbeRepository(root=folder, probes={p.name: p for p in probes}, library=", ".join(sorted(origins)))


def _write_record(path: Path, spec: Spec, probes: Sequence[Probe]) -> None:
    """``probes.yaml`` beside the probe repository: what each probe is (the manifest records its hash as the spec's)."""
    import yaml

    doc = {"probes_of": str(spec.path), "probes": [
        {"name": p.name, "op": p.op, "model": p.model, "target": p.target, "lowering": p.lowering,
         "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "min": list(t.min),
                     "max": list(t.max)} for t in p.spec.inputs],
         "attributes": {name: repr(value) for name, (kind, value) in zip(_schema_arguments(p.op), p.layout,
                                                                           strict=True) if kind == "const"},
         "outputs": list(p.output_names)} for p in probes]}
    path.write_text("# The one-op probe models of trtrepo check --ops (a record, not a model.yaml).\n"
                    + yaml.safe_dump(doc, sort_keys=False))


def _served_libraries(artifacts: Any, served: Path | None, probe: Probe,
                      record: ServingRecord | None) -> tuple[Any, str]:
    """The artifacts with the served model's op libraries in place of the fresh build's (same file names)."""
    own = {Path(p).name: Path(p) for p in artifacts.plugin_libraries}
    if served is None or record is None or not record.plugin_libraries:
        return artifacts, "plugin sources"
    files = [served / probe.model / rel for rel in record.plugin_libraries]
    if not all(f.is_file() for f in files) or {f.name for f in files} != set(own):
        return artifacts, "plugin sources"
    return dataclasses.replace(artifacts, plugin_libraries=tuple(files)), f"served repository {served}"


@contextlib.contextmanager
def probe_folder(repository: Path, keep: bool = False) -> Iterator[Path]:
    """A fresh ``probes-<pid>-<token>/repo`` under the served repository's run folder in the cache; removed after
    (unless ``keep``)."""
    from trtrepo.serve.logs import run_folder

    parent = run_folder(repository) / f"{PROBE_FOLDER_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    parent.mkdir(parents=True)
    try:
        yield parent / "repo"
    finally:
        if not keep:
            shutil.rmtree(parent, ignore_errors=True)
