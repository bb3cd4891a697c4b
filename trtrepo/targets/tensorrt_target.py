"""TensorRT target: lower each custom op (plugin / aot / decompose), build the plan, read its I/O back.

Where TensorRT or Torch-TensorRT is missing, the target stops before it writes anything with one line naming what
is missing and how to get it (``trtrepo.deps.INSTALL_HINTS``: the NGC PyTorch image).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.contracts import BuildFacts, Creator, ModelArtifacts
from trtrepo.errors import BuildError
from trtrepo.targets.base import BuildContext

if TYPE_CHECKING:
    from trtrepo.ops.description import OpDescription
    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

PLAN_FILE = "model.plan"
PLATFORM = "tensorrt_plan"


def choose_lowerings(model: ModelSpec, found: Sequence[str]) -> dict[str, str]:
    """op → lowering for every custom op in the program (model.yaml ``ops:``, else the default ``decompose``).

    Ops named in model.yaml that the program never calls are logged and left out.
    """
    lowerings = {op: model.lowering(op) for op in found}
    for op in model.ops:
        if op not in lowerings:
            LOGGER.warning("%s.ops.%s: the exported program does not call this op; its lowering is unused",
                           model.yaml_path, op)
    return lowerings


def required_creators(lowerings: Mapping[str, str], descriptions: Mapping[str, OpDescription]
                      ) -> tuple[Creator, ...]:
    """The plugin creators the plan needs at serve time (ops lowered as ``plugin``)."""
    from trtrepo.tensorrt.opfacts import require_plugin

    out = []
    for op, lowering in sorted(lowerings.items()):
        if lowering == "plugin":
            info = require_plugin(descriptions[op])
            out.append(Creator(info.name, info.version, info.namespace))
    return tuple(out)


def build_tensorrt(ctx: BuildContext, model: ModelSpec, ep: Any) -> ModelArtifacts:
    """Build ``model`` as a TensorRT plan for Triton's TensorRT backend.

    Args:
        ctx: The build context; ``ctx.ops`` is the ``BuiltOps`` of the spec's plugin sources (or None).
        model: The model's spec.
        ep: Its ExportedProgram (the custom op library already loaded).

    Raises:
        MissingDependencyError: TensorRT or Torch-TensorRT is missing (nothing written).
        BuildError: A lowering, the plan build or the engine read-back failed.
    """
    from trtrepo import deps

    deps.require("tensorrt", "the TensorRT target")
    deps.require("torch_tensorrt", "the TensorRT target")
    import tensorrt as trt

    from trtrepo.tensorrt import lowering as low
    from trtrepo.tensorrt import tt_adapter
    from trtrepo.tensorrt.engine_io import read_engine_tensors, resolve_engine_io
    from trtrepo.tensorrt.opfacts import creators_from_ops
    from trtrepo.tensorrt.plan import build_plan

    descriptions: Mapping[str, OpDescription] = dict(ctx.ops.descriptions) if ctx.ops is not None else {}
    namespaces = sorted({d.namespace for d in descriptions.values()})
    lowerings = choose_lowerings(model, low.custom_ops_in(ep, namespaces))
    ctx.progress(f"{model.name}: TensorRT lowerings {lowerings or '(no custom ops)'}")

    table = {descriptions[op].torch_op(): descriptions[op].load_decomposition()
             for op, how in lowerings.items() if how == "decompose"}
    kernels = [op for op, how in lowerings.items() if how in ("plugin", "aot")]
    if kernels:
        from trtrepo.tensorrt.launch import check_profile_launches

        checked = check_profile_launches(ep, model, descriptions, kernels)
        ctx.progress(f"{model.name}: {checked} kernel launches fit the profile (min, opt, max)")
    ep = low.decompose(ep, table)
    plugin_libraries: tuple[Path, ...] = ()
    for op, how in sorted(lowerings.items()):
        if how == "plugin":
            library = ctx.ops.trt_plugin_library if ctx.ops is not None else None
            if library is None:
                raise BuildError(f"{model.yaml_path}.ops.{op}: plugin lowering, but no TensorRT plugin library "
                                 "was built", hint="the build asks trtrepo.ops.build for it when a model uses plugin")
            low.load_plugin_library(Path(library))
            low.register_plugin_converter(descriptions[op], descriptions[op].torch_op())
            plugin_libraries = (Path(library),)
        elif how == "aot":
            ptx = ctx.ops.ptx.get(op) if ctx.ops is not None else None
            if ptx is None:
                raise BuildError(f"{model.yaml_path}.ops.{op}: aot lowering, but the op has no PTX",
                                 hint="give the op a kernel block in op.yaml (source, entries, block, grid)")
            low.register_aot_plugin(descriptions[op], Path(ptx))

    result = build_plan(ep, model, ctx.cache_dir, ctx.log_dir)
    io = resolve_engine_io(read_engine_tensors(result.plan), [t.name for t in model.inputs],
                           [o.name for o in model.outputs], model.name)
    ctx.progress(f"{model.name}: plan {len(result.plan)} bytes in {result.seconds:.1f}s (log {result.log_path})")
    return ModelArtifacts(
        target="tensorrt",
        inputs=io.inputs,
        outputs=io.outputs,
        output_names=dict(io.output_names),
        files={PLAN_FILE: result.plan},
        platform=PLATFORM,
        plugin_libraries=plugin_libraries,
        gpu_required=True,
        custom_ops=tuple(sorted(lowerings)),
        lowerings=dict(lowerings),
        required_creators=required_creators(lowerings, descriptions),
        library_creators=({plugin_libraries[0].name: tuple(creators_from_ops(descriptions.values()))}
                          if plugin_libraries else {}),
        versions={"tensorrt": str(trt.__version__), "torch_tensorrt": tt_adapter.torch_tensorrt_version()},
        build=BuildFacts(log=result.log_path.name, seconds=round(result.seconds, 3),
                         options={k: (list(v) if isinstance(v, (set, tuple)) else v)
                                  for k, v in result.options.items()}),
    )
