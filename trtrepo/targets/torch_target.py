"""Portable ``torch`` target: the ExportedProgram itself, served by a generated Triton Python-backend model.

Version folder: ``model.pt2`` (``torch.export.save``) and ``model.py`` (trtrepo/targets/templates/
python_backend_model.py, which needs only torch, numpy and triton_python_backend_utils at serve time). The custom-op
library goes to ``<repository>/<model>/plugins/`` and config.pbtxt's ``trtrepo_op_libraries`` parameter names it
(relative to the model folder); model.py loads it before loading the program.

An op of the program whose op.yaml names no C++ CPU reference (a generated binding with CUDA only) serves on CPU
through its decomposition, behind op.yaml's input checks as the binding has them. In the version folder,
``python_ops/`` holds per such op ``<namespace>__<op>.py`` (the decomposition's file, as it is) and
``<namespace>__<op>.json`` (op, function, input checks), and ``_shape_check.py`` (trtrepo/ops/shape_check.py); the
``trtrepo_python_cpu_ops`` parameter lists the JSON files (';'-separated) and model.py registers each as its op's
CPU kernel where the loaded library has none.

With ``torch: {program: aoti}`` the version folder also holds an AOTInductor package per instance device
(``model.aoti-cpu.pt2`` / ``model.aoti-cuda.pt2``, trtrepo/targets/aoti.py), the ``trtrepo_aoti_packages``
parameter names them (``cpu=<file>;cuda=<file>``) and model.py runs the package of its instance's device instead of
the program (model.pt2 stays: it is what ``check`` and a rebuild without AOTInductor read).
"""

from __future__ import annotations

import io
import json
import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes
from trtrepo.contracts import BuildFacts, IOSpec, ModelArtifacts
from trtrepo.errors import BuildError
from trtrepo.targets.base import BuildContext

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

TARGET = "torch"
BACKEND = "python"
PROGRAM_FILE = "model.pt2"
MODEL_FILE = "model.py"
TEMPLATE = "python_backend_model.py"
PARAM_OP_LIBRARIES = "trtrepo_op_libraries"
PARAM_PROGRAM = "trtrepo_program"
PARAM_PYTHON_CPU_OPS = "trtrepo_python_cpu_ops"
PARAM_FORCE_CPU_ONLY_INPUTS = "FORCE_CPU_ONLY_INPUT_TENSORS"  # the Python backend's own parameter
PLUGINS_DIR = "plugins"  # in the model folder (trtrepo.repository.writer.PLUGINS_DIRNAME)
PYTHON_OPS_DIR = "python_ops"  # in the version folder
SHAPE_CHECK_FILE = "_shape_check.py"


def build_torch(ctx: BuildContext, model: ModelSpec, ep: Any) -> ModelArtifacts:
    """Package ``ep`` as a Python-backend model.

    Args:
        ctx: The build context; ``ctx.ops.torch_libraries`` are the op libraries model.py loads.
        model: The model's spec: input names (in forward() order) and output names come from it.
        ep: The model's ``torch.export.ExportedProgram``.

    Returns:
        The artifacts: model.pt2 + model.py, inputs/outputs read from the program, the op library.

    Raises:
        BuildError: The program's user inputs/outputs do not match the spec's counts, an output is not a tensor,
            or the program cannot be serialized.
    """
    inputs, outputs = resolve_io(model, ep)
    program = serialize_program(ep, model)
    files = {PROGRAM_FILE: program, MODEL_FILE: model_py_source()}
    libraries = _op_libraries(ctx)
    parameters = {PARAM_PROGRAM: PROGRAM_FILE}
    build = BuildFacts(options={"program": "exported"})
    if model.torch.program == "aoti":
        from trtrepo.targets.aoti import PARAM_AOTI_PACKAGES, build_packages

        packages, facts = build_packages(ctx, model, ep, program, libraries)
        files.update(packages)
        parameters[PARAM_AOTI_PACKAGES] = ";".join(f"{device}={entry['file']}"
                                                   for device, entry in facts["packages"].items())
        build = BuildFacts(seconds=sum(e["seconds"] for e in facts["packages"].values()), options=facts)
    if libraries:
        parameters[PARAM_OP_LIBRARIES] = ";".join(f"{PLUGINS_DIR}/{lib.name}" for lib in libraries)
    used = custom_ops(ep)
    python_cpu = python_cpu_ops(ctx, used)
    if python_cpu:
        files.update(python_cpu)
        parameters[PARAM_PYTHON_CPU_OPS] = ";".join(rel for rel in sorted(python_cpu) if rel.endswith(".json"))
    import torch

    LOGGER.debug("torch target %s: inputs %s outputs %s libraries %s", model.name, inputs, outputs, libraries)
    return ModelArtifacts(
        target=TARGET,
        inputs=inputs,
        outputs=outputs,
        output_names={o.name: o.name for o in outputs},
        files=files,
        backend=BACKEND,
        plugin_libraries=tuple(libraries),
        parameters=parameters,
        # Inputs in GPU memory (CUDA shared memory, another model's outputs) reach model.py there, not copied to
        # the host first; host inputs are moved by model.py, as before.
        gpu_parameters={PARAM_FORCE_CPU_ONLY_INPUTS: "no"},
        gpu_required=False,
        custom_ops=tuple(sorted(used)),
        versions={"torch": str(torch.__version__)},
        build=build,
    )


def resolve_io(model: ModelSpec, ep: Any) -> tuple[tuple[IOSpec, ...], tuple[IOSpec, ...]]:
    """Inputs and outputs as the program has them: dtype and shape from the node metas, -1 for symbolic dims.

    Inputs are the program's user inputs (not parameters, buffers or constants) named by the spec's inputs in
    order; outputs are its user outputs named by the spec's outputs in order.
    """
    signature = ep.graph_signature
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    user_inputs = [placeholders[name] for name in signature.user_inputs if name in placeholders]
    if len(user_inputs) != len(model.inputs):
        raise BuildError(f"{model.yaml_path}.inputs: the program takes {len(user_inputs)} tensor inputs "
                         f"({[n.name for n in user_inputs]}), the spec lists {len(model.inputs)}")
    output_node = next(n for n in ep.graph.nodes if n.op == "output")
    flat = list(output_node.args[0]) if isinstance(output_node.args[0], (tuple, list)) else [output_node.args[0]]
    n_user = len(signature.user_outputs)
    user_outputs = flat[len(flat) - n_user:] if n_user else []
    if len(user_outputs) != len(model.outputs):
        raise BuildError(f"{model.yaml_path}.outputs: the program returns {len(user_outputs)} outputs, the spec "
                         f"lists {len(model.outputs)} ({[o.name for o in model.outputs]})",
                         hint="list one output per tensor forward() returns, in order")
    inputs = tuple(_io(spec.name, node, f"{model.yaml_path}.inputs[{i}]")
                   for i, (spec, node) in enumerate(zip(model.inputs, user_inputs, strict=True)))
    outputs = tuple(_io(spec.name, node, f"{model.yaml_path}.outputs[{i}]")
                    for i, (spec, node) in enumerate(zip(model.outputs, user_outputs, strict=True)))
    return inputs, outputs


def _io(name: str, node: Any, where: str) -> IOSpec:
    import torch

    value = node.meta.get("val") if hasattr(node, "meta") else None
    if not isinstance(value, torch.Tensor):
        raise BuildError(f"{where}: {name!r} is not a tensor in the exported program ({type(value).__name__})",
                         hint="forward() must take and return tensors only")
    shape = tuple(int(d) if isinstance(d, int) else -1 for d in value.shape)
    return IOSpec(name=name, dtype=dtypes.from_torch(value.dtype), shape=shape)


def serialize_program(ep: Any, model: ModelSpec) -> bytes:
    """``torch.export.save`` into bytes."""
    import torch

    buffer = io.BytesIO()
    try:
        torch.export.save(ep, buffer)
    except Exception as exc:
        raise BuildError(f"{model.yaml_path}: cannot serialize the exported program of {model.name!r}: {exc}") \
            from exc
    return buffer.getvalue()


def model_py_source() -> bytes:
    """The generated model.py: the template, with a header saying where it came from."""
    text = resources.files("trtrepo.targets.templates").joinpath(TEMPLATE).read_text()
    header = "# Generated by trtrepo (torch target). Edits are lost on the next `trtrepo build`.\n"
    return (header + text).encode()


def custom_ops(ep: Any) -> set[str]:
    """``namespace::name`` of every op in the program outside torch's own namespaces."""
    found = set()
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        namespace = getattr(node.target, "namespace", None)
        if namespace and namespace not in ("aten", "prim", "prims", "_operator", "higher_order"):
            found.add(f"{namespace}::{node.target._opname if hasattr(node.target, '_opname') else node.target}")
    return found


def python_cpu_ops(ctx: BuildContext, used: set[str]) -> dict[str, bytes]:
    """The ``python_ops/`` files for the program's ops whose CPU kernel is their decomposition (this process
    registered it: the op library has none), version-folder path → contents; empty when there are none."""
    from trtrepo.ops.library import python_cpu_ops as registered

    if ctx.ops is None:
        return {}
    found: dict[str, bytes] = {}
    on_python = registered()
    for name in sorted(used & on_python):
        desc = ctx.ops.descriptions.get(name)
        if desc is None or desc.decomposition is None:
            continue
        module_name, func = desc.decomposition.split(":", 1)
        source = desc.folder / f"{module_name}.py"
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise BuildError(f"{desc.path}: decomposition: cannot read {source}: {exc.strerror}") from exc
        stem = f"{PYTHON_OPS_DIR}/{desc.namespace}__{desc.op_name}"
        found[f"{stem}.py"] = data
        entry = {**desc.input_checks(), "file": f"{desc.namespace}__{desc.op_name}.py", "function": func}
        found[f"{stem}.json"] = (json.dumps(entry, indent=1, sort_keys=True) + "\n").encode()
    if found:
        found[f"{PYTHON_OPS_DIR}/{SHAPE_CHECK_FILE}"] = resources.files("trtrepo.ops").joinpath(
            "shape_check.py").read_bytes()
    return found


def _op_libraries(ctx: BuildContext) -> list[Path]:
    if ctx.ops is None:
        return []
    paths = [Path(lib.path) for lib in ctx.ops.torch_libraries]
    for path in paths:
        if not path.is_file():
            raise BuildError(f"op library {path} does not exist", hint="the op build did not produce it; see its log")
    return paths
