"""The three lowerings of a custom op for TensorRT, chosen per op in model.yaml (``ops: {ns::op: lowering}``).

* ``plugin`` — one generic Torch-TensorRT converter per op: look the IPluginV3 creator up in TensorRT's plugin
  registry (op.yaml ``plugin`` name/version, namespace = op namespace), build its fields from the op attributes,
  ``create_plugin(..., TensorRTPhase.BUILD)`` and ``add_plugin_v3``. The C++ plugin library is dlopen'ed first;
  the plan then needs that library at serve time.
* ``aot`` — a TensorRT AOT QDP plugin (``tensorrt.plugin``): output descriptors from op.yaml's output rules, the PTX
  compiled from the op's CUDA source, launch parameters from op.yaml's kernel rule over symbolic shapes. The
  kernel is embedded in the plan: nothing to load at serve time.
* ``decompose`` — the op folder's aten decomposition applied with ``ExportedProgram.run_decompositions({op: fn})``.
  Chosen over re-tracing the model because it works on the program already exported (dynamic dims and their
  constraints kept, no second run of user code, .pt2 sources included) and its result is checked: no node of a
  decomposed op may be left before conversion.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trtrepo.errors import BuildError
from trtrepo.ops.description import OpDescription
from trtrepo.tensorrt.opfacts import plugin_fields, require_plugin, split_args

LOGGER = logging.getLogger(__name__)

LOWERINGS = ("plugin", "aot", "decompose")

# Ops whose converter / QDP definition is registered in this process (registries are process-global).
_PLUGIN_CONVERTERS: set[str] = set()
_AOT_PLUGINS: dict[str, Path] = {}
_LOADED_LIBRARIES: set[str] = set()


# ------------------------------------------------------------------------------------------------ plugin
def load_plugin_library(path: Path) -> None:
    """Make the C++ creators of ``path`` visible to TensorRT in this process (once per library).

    The library registers its creators itself when dlopen'ed (as in tritonserver's TensorRT backend), so it is
    loaded with ``ctypes.CDLL``; ``IPluginRegistry.load_library`` would call its ``getCreators`` on top and register
    every creator a second time.
    """
    import ctypes

    key = str(Path(path).resolve())
    if key in _LOADED_LIBRARIES:
        return
    if not Path(key).is_file():
        raise BuildError(f"TensorRT plugin library {key} does not exist",
                         hint="build it with TensorRT headers present (cmake target trtrepo_trt_plugins)")
    try:
        ctypes.CDLL(key, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise BuildError(f"cannot load TensorRT plugin library {key}: {exc}",
                         hint="the library must be built against this TensorRT and CUDA") from None
    _LOADED_LIBRARIES.add(key)


def create_plugin(desc: OpDescription, attrs: Mapping[str, Any], layer_name: str) -> Any:
    """Find the op's IPluginV3 creator and create a plugin for ``attrs`` (the BUILD phase instance).

    Raises:
        BuildError: op.yaml has no plugin block, no creator with the op's name/version/namespace is registered, or
            creation failed.
    """
    import numpy as np
    import tensorrt as trt

    info = require_plugin(desc)
    registry = trt.get_plugin_registry()
    creator = registry.get_creator(info.name, info.version, info.namespace)
    if creator is None:
        raise BuildError(
            f"{desc.name}: no TensorRT plugin creator {info.namespace}::{info.name} v{info.version} is registered",
            hint="the plugin library was not loaded, or op.yaml plugin name/version differ from the C++ creator",
        )
    fields = [
        trt.PluginField(f.name, np.array(f.values, dtype=np.dtype(f.numpy_dtype)), getattr(trt.PluginFieldType,
                                                                                            f.field_type))
        for f in plugin_fields(desc, attrs)
    ]
    collection = trt.PluginFieldCollection(fields)
    plugin = creator.create_plugin(layer_name, collection, trt.TensorRTPhase.BUILD)
    if plugin is None:
        raise BuildError(f"{desc.name}: creator {info.name} refused fields "
                         f"{[f.name for f in fields]} (see the TensorRT log)")
    return plugin


def plugin_converter(desc: OpDescription) -> Callable[..., Any]:
    """The Torch-TensorRT converter body for ``desc`` (plain function; registration is separate)."""

    def convert(ctx: Any, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        from trtrepo.tensorrt import tt_adapter

        tensors, attrs = split_args(desc, args, kwargs)
        itensors = [tt_adapter.get_trt_tensor(ctx, t, f"{name}_{n}") for t, n in zip(tensors, desc.inputs,
                                                                                      strict=True)]
        plugin = create_plugin(desc, attrs, name)
        if not hasattr(ctx.net, "add_plugin_v3"):
            raise BuildError(f"{desc.name}: this TensorRT has no plugin layers (INetworkDefinition.add_plugin_v3)",
                             hint="TensorRT-RTX cannot build plugin lowerings; use decompose, or datacenter TensorRT")
        layer = ctx.net.add_plugin_v3(itensors, [], plugin)
        if layer is None:
            raise BuildError(f"{desc.name}: add_plugin_v3 failed for node {name}")
        layer.name = f"{desc.name}:{name}"
        outputs = [layer.get_output(i) for i in range(len(desc.outputs))]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    convert.__name__ = f"convert_{desc.namespace}_{desc.op_name}_plugin"
    return convert


def register_plugin_converter(desc: OpDescription, torch_op: Any) -> None:
    """Register the generic plugin converter for ``torch_op`` (``torch.ops.<ns>.<op>.default``), once per op."""
    from trtrepo.tensorrt import tt_adapter

    if desc.name in _PLUGIN_CONVERTERS:
        return
    tt_adapter.register_converter(torch_op, plugin_converter(desc))
    _PLUGIN_CONVERTERS.add(desc.name)


# ------------------------------------------------------------------------------------------------ aot (QDP)
def qdp_signatures(desc: OpDescription, tensor_desc: Any, launch_params: Any, sym_exprs: Any
                   ) -> tuple[inspect.Signature, inspect.Signature]:
    """The signatures ``tensorrt.plugin`` requires of the register and aot_impl functions of ``desc``.

    register: ``(x: TensorDesc, ..., eps: float, ...) -> Tuple[TensorDesc, ...]``;
    aot_impl: ``(x, ..., eps, ..., outputs, tactic) -> Tuple[str|bytes, str|bytes, KernelLaunchParams, SymExprs]``.
    """
    py_types = {"float": float, "int": int, "bool": bool}
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    tensors = [inspect.Parameter(n, kind, annotation=tensor_desc) for n in desc.inputs]
    attrs = [inspect.Parameter(a.name, kind, annotation=py_types[a.type]) for a in desc.attributes]
    n_out = len(desc.outputs)
    out_tuple = typing.Tuple[tuple([tensor_desc] * n_out)]  # type: ignore[valid-type]  # noqa: UP006
    register_sig = inspect.Signature([*tensors, *attrs], return_annotation=out_tuple)
    impl_sig = inspect.Signature(
        [*(p.replace(annotation=inspect.Parameter.empty) for p in (*tensors, *attrs)),
         inspect.Parameter("outputs", kind, annotation=out_tuple), inspect.Parameter("tactic", kind, annotation=int)],
        return_annotation=typing.Tuple[typing.Union[str, bytes], typing.Union[str, bytes],  # noqa: UP006, UP007
                                       launch_params, sym_exprs],
    )
    return register_sig, impl_sig


def trt_dtype_name(dtype: Any) -> str:
    """trtrepo dtype of a ``trt.DataType`` (as QDP TensorDescs carry them)."""
    from trtrepo import dtypes

    return dtypes.from_tensorrt(getattr(dtype, "name", str(dtype)))


def register_aot_plugin(desc: OpDescription, ptx_path: Path) -> None:
    """Define ``desc.name`` as a TensorRT QDP plugin with an AOT implementation, and its generated converter.

    The output descriptors come from op.yaml's output rules (``like:`` keeps the input's descriptor; ``shape:`` is
    evaluated over the inputs' ShapeExprs), the launch from its kernel block: the same rules the fake kernel, the
    C++ plugin and ``trtrepo ops check`` use.

    Args:
        desc: The op (needs ``kernel`` entries and launch rule in op.yaml).
        ptx_path: PTX of the op's CUDA source holding every dtype entry (trtrepo.ops.build).
    """
    import tensorrt as trt
    import tensorrt.plugin as trtp

    from trtrepo import dtypes
    from trtrepo.tensorrt import tt_adapter
    from trtrepo.tensorrt.launch import evaluate_launch, qdp_algebra

    defined = _AOT_PLUGINS.get(desc.name)
    if defined is not None:
        if defined != ptx_path:
            raise BuildError(f"{desc.name}: AOT plugin already defined in this process with {defined}",
                             hint="build models that use different PTX of one op in separate processes")
        return
    ptx = Path(ptx_path).read_bytes()
    attr_names = [a.name for a in desc.attributes]
    n_in = len(desc.inputs)
    entries = desc.require_kernel().entries
    register_sig, impl_sig = qdp_signatures(desc, trtp.TensorDesc, trtp.KernelLaunchParams, trtp.SymIntExprs)
    algebra = qdp_algebra(trtp)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        names = [*desc.inputs, *attr_names]
        bound = dict(zip(names, args, strict=False))
        bound.update({k: v for k, v in kwargs.items() if k in names})
        return [bound[n] for n in desc.inputs], {a: bound.get(a) for a in attr_names}

    def describe(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        descs, values = bind(args, kwargs)
        shapes = desc.output_shapes([list(d.shape_expr) for d in descs], values, algebra)
        out = []
        for rule, shape in zip(desc.outputs, shapes, strict=True):
            if rule.like is not None:
                out.append(descs[desc.inputs.index(rule.like)].like())
                continue
            kind = (descs[desc.inputs.index(rule.dtype)].dtype if rule.dtype_from_input
                    else getattr(trt.DataType, dtypes.get(rule.dtype).tensorrt))
            out.append(trtp.from_shape_expr(tuple(shape), dtype=kind))
        return tuple(out)

    def aot_impl(*args: Any) -> tuple[bytes, bytes, Any, Any]:
        descs, values = list(args[:n_in]), dict(zip(attr_names, args[n_in:n_in + len(attr_names)], strict=True))
        dtype = trt_dtype_name(descs[0].dtype)
        if dtype not in entries:
            raise BuildError(f"{desc.name}: op.yaml kernel.entries has no {dtype} entry")
        grid, block, shmem, scalars = evaluate_launch(desc, [list(d.shape_expr) for d in descs], dtype, values,
                                                      algebra)
        params = trtp.KernelLaunchParams()
        params.grid_x = grid
        params.block_x = block
        params.shared_mem = shmem
        # TensorRT passes these to the entry after the input pointers and before the output pointers, in this
        # order: op.yaml kernel.scalars order, which is the entries' parameter order.
        extra = trtp.SymIntExprs(len(scalars))
        for i, s in enumerate(scalars):
            extra[i] = trtp.SymInt32(s)
        return entries[dtype].encode(), ptx, params, extra

    describe.__signature__ = register_sig  # type: ignore[attr-defined]
    aot_impl.__signature__ = impl_sig  # type: ignore[attr-defined]
    trtp.register(desc.name)(describe)
    trtp.aot_impl(desc.name)(aot_impl)
    tt_adapter.generate_plugin_converter(desc.name)
    _AOT_PLUGINS[desc.name] = ptx_path


# ------------------------------------------------------------------------------------------------ decompose
def decompose(ep: Any, table: Mapping[Any, Callable[..., Any]]) -> Any:
    """Replace every node of the ops in ``table`` (OpOverload → aten function) by its decomposition.

    Raises:
        BuildError: torch could not apply a decomposition, or a node of a decomposed op is left.
    """
    if not table:
        return ep
    names = sorted(str(op) for op in table)
    try:
        lowered = ep.run_decompositions(dict(table))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(f"decomposing {', '.join(names)} failed: {first}",
                         hint="the op folder's decomposition must take the op's arguments and use aten ops") from exc
    left = remaining_ops(lowered, table)
    if left:
        raise BuildError(f"decompose lowering left {', '.join(sorted(left))} in the graph",
                         hint="check the decomposition in op.yaml (decomposition: module:function)")
    return lowered


def remaining_ops(ep: Any, ops: Iterable[Any]) -> set[str]:
    """Names of the ``ops`` (OpOverloads) still called by ``ep``'s graph."""
    wanted = {str(op) for op in ops}
    return {str(n.target) for n in ep.graph.nodes if n.op == "call_function" and str(n.target) in wanted}


def custom_ops_in(ep: Any, namespaces: Sequence[str]) -> list[str]:
    """``ns::op`` of every call in ``ep`` to an op in ``namespaces`` (what needs a lowering), in graph order."""
    found: list[str] = []
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        ns = getattr(node.target, "namespace", None)
        if ns in namespaces:
            name = f"{ns}::{node.target._schema.name.split('::', 1)[-1]}"
            if name not in found:
                found.append(name)
    return found
