"""The only module that calls into Torch-TensorRT (which ships no type stubs): narrow, typed entry points.

Keeping every ``torch_tensorrt`` call here means one place to adapt when its API moves between releases (2.7 → 2.14:
``enabled_precisions`` / ``use_explicit_typing`` removed in 2.13, ``output_binding_names`` added in 2.14).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LOGGER = logging.getLogger(__name__)


class ConversionCtx(Protocol):
    """What converters use of Torch-TensorRT's ConversionContext."""

    net: Any  # tensorrt.INetworkDefinition


ConverterFn = Callable[[ConversionCtx, Any, tuple[Any, ...], dict[str, Any], str], Any]


@dataclass(frozen=True)
class InputProfile:
    """One engine input's optimization profile: full shapes (batch dim included) and the torch dtype name."""

    name: str
    min_shape: tuple[int, ...]
    opt_shape: tuple[int, ...]
    max_shape: tuple[int, ...]
    dtype: str  # torch dtype attribute name: float32, float16, bfloat16, int32, int64, bool


def torch_tensorrt_version() -> str:
    """``torch_tensorrt.__version__``."""
    import torch_tensorrt

    return str(torch_tensorrt.__version__)


def register_converter(target: Any, fn: ConverterFn) -> ConverterFn:
    """Register ``fn`` as the converter of OpOverload ``target``, dynamic shapes allowed.

    Without ``supports_dynamic_shapes=True`` Torch-TensorRT silently skips the converter when any input is dynamic
    (pytorch/TensorRT#3224) and the op then fails as unsupported.
    """
    from torch_tensorrt.dynamo.conversion import dynamo_tensorrt_converter

    decorated: ConverterFn = dynamo_tensorrt_converter(target, supports_dynamic_shapes=True)(fn)
    return decorated


def get_trt_tensor(ctx: ConversionCtx, value: Any, name: str) -> Any:
    """An ITensor for ``value`` (ITensors pass through; constants become constant layers)."""
    from torch_tensorrt.dynamo.conversion.converter_utils import get_trt_tensor as _get

    return _get(ctx, value, name)


def generate_plugin_converter(op: str) -> None:
    """Register the converter Torch-TensorRT generates for QDP plugin ``op`` (AOT implementation preferred)."""
    from torch_tensorrt.dynamo.conversion.plugins import generate_plugin_converter as _gen

    _gen(op, supports_dynamic_shapes=True, use_aot_if_available=True)


def convert_parameters() -> frozenset[str]:
    """Keyword parameters ``convert_exported_program_to_serialized_trt_engine`` accepts in this release."""
    from torch_tensorrt.dynamo import convert_exported_program_to_serialized_trt_engine as convert

    return frozenset(inspect.signature(convert).parameters)


def _arg_inputs(inputs: Sequence[InputProfile]) -> list[Any]:
    """One ``torch_tensorrt.Input`` (min/opt/max, dtype, name) per profile."""
    import torch
    import torch_tensorrt

    return [torch_tensorrt.Input(min_shape=p.min_shape, opt_shape=p.opt_shape, max_shape=p.max_shape,
                                 dtype=getattr(torch, p.dtype), name=p.name) for p in inputs]


def _accepted(fn: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``options`` that ``fn`` takes in this release; each dropped one gets a debug line."""
    import torch_tensorrt

    accepted = frozenset(inspect.signature(fn).parameters)
    kwargs = {k: v for k, v in options.items() if k in accepted}
    for k in sorted(set(options) - set(kwargs)):
        LOGGER.debug("torch_tensorrt %s %s does not take %s; not passed", torch_tensorrt.__version__,
                     getattr(fn, "__name__", "?"), k)
    return kwargs


def convert_to_engine(ep: Any, inputs: Sequence[InputProfile], options: Mapping[str, Any]) -> bytes:
    """ExportedProgram → serialized TensorRT engine (the plan) with one optimization profile.

    Args:
        ep: The ExportedProgram (custom ops already lowered or converter-backed).
        inputs: One profile per forward() argument, in order.
        options: Keyword options; those this release does not accept are dropped with a debug line.
    """
    from torch_tensorrt.dynamo import convert_exported_program_to_serialized_trt_engine as convert

    plan = convert(ep, arg_inputs=_arg_inputs(inputs), **_accepted(convert, options))
    return bytes(plan)


def compile_parameters() -> frozenset[str]:
    """Keyword parameters ``torch_tensorrt.dynamo.compile`` accepts in this release."""
    from torch_tensorrt.dynamo import compile as tt_compile

    return frozenset(inspect.signature(tt_compile).parameters)


def compile_partitioned(ep: Any, inputs: Sequence[InputProfile], options: Mapping[str, Any],
                        torch_executed_ops: Collection[Any], *, python_runtime: bool) -> Any:
    """ExportedProgram → a graph module of TensorRT engines and torch segments (``torch_tensorrt.dynamo.compile``).

    The ops in ``torch_executed_ops`` (OpOverloads) run in PyTorch; everything else Torch-TensorRT converts becomes
    TensorRT engines (``min_block_size`` 1: even one op). This is the hybrid engine of ``trtrepo bench engines``.

    Args:
        ep: The ExportedProgram.
        inputs: One profile per forward() argument, in order.
        options: Keyword options; those this release does not accept are dropped with a debug line.
        torch_executed_ops: Ops left to PyTorch (the custom ops: their own CUDA kernels run).
        python_runtime: Torch-TensorRT's Python runtime module (True) or its C++ one (False).
    """
    from torch_tensorrt.dynamo import compile as tt_compile

    kwargs = _accepted(tt_compile, options)
    kwargs.update(min_block_size=1, require_full_compilation=False, torch_executed_ops=set(torch_executed_ops),
                  use_python_runtime=python_runtime)
    return tt_compile(ep, arg_inputs=_arg_inputs(inputs), **kwargs)


def cpp_runtime_available() -> bool:
    """Whether this Torch-TensorRT build has its C++ runtime (``TorchTensorRTModule``)."""
    import torch_tensorrt

    features = getattr(torch_tensorrt, "ENABLED_FEATURES", None)
    return bool(getattr(features, "torch_tensorrt_runtime", False))

