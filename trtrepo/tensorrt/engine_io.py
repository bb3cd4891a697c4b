"""Engine I/O read back from a plan, and the pure step "engine metadata → IOSpecs + output name mapping".

config.pbtxt must name tensors as the ENGINE names them. Torch-TensorRT (2.7–2.13) names inputs after forward()'s
arguments and outputs ``output0``, ``output1``, … in return order; 2.14 can take the spec's names
(``output_binding_names``). Either way the names come from the plan, never from assumption, and the spec's output
names are mapped onto them in order (recorded as ``record["output_names"]``: spec name → engine name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from trtrepo import dtypes
from trtrepo.contracts import IOSpec
from trtrepo.errors import BuildError

LOGGER = logging.getLogger(__name__)

_OUTPUT_INDEX = re.compile(r"^output(\d+)$")


@dataclass(frozen=True)
class EngineTensor:
    """One engine I/O tensor as plain data (what ICudaEngine reports)."""

    name: str
    is_input: bool
    dtype: str  # TensorRT DataType member name, e.g. "HALF"
    shape: tuple[int, ...]  # -1 = dynamic


@dataclass(frozen=True)
class EngineIO:
    """Resolved engine I/O: IOSpecs in the spec's order and the spec output name → engine name mapping."""

    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    output_names: dict[str, str]


def resolve_engine_io(tensors: Sequence[EngineTensor], input_names: Sequence[str],
                      output_names: Sequence[str], model: str = "model") -> EngineIO:
    """Match the engine's tensors to the spec: inputs by name, outputs in order.

    Args:
        tensors: The engine's I/O tensors in engine index order.
        input_names: The spec's input names (the engine must have exactly these).
        output_names: The spec's output names, in the order forward() returns them.
        model: Model name, for messages.

    Raises:
        BuildError: The engine's inputs differ from the spec's, or the output counts differ.
    """
    engine_inputs = {t.name: t for t in tensors if t.is_input}
    missing = [n for n in input_names if n not in engine_inputs]
    extra = [n for n in engine_inputs if n not in input_names]
    if missing or extra:
        raise BuildError(
            f"{model}: engine inputs {sorted(engine_inputs)} do not match model.yaml inputs {list(input_names)}",
            hint="model.yaml input names must be forward()'s argument names",
        )
    outs = order_outputs([t for t in tensors if not t.is_input])
    if len(outs) != len(output_names):
        raise BuildError(
            f"{model}: engine has {len(outs)} outputs {[t.name for t in outs]}, model.yaml names "
            f"{len(output_names)} {list(output_names)}",
            hint="list one model.yaml output per tensor forward() returns, in return order",
        )
    inputs = tuple(_io(engine_inputs[n]) for n in input_names)
    outputs = tuple(_io(t) for t in outs)
    mapping = {spec: t.name for spec, t in zip(output_names, outs, strict=True)}
    return EngineIO(inputs=inputs, outputs=outputs, output_names=mapping)


def order_outputs(outputs: Sequence[EngineTensor]) -> list[EngineTensor]:
    """Outputs in forward()'s return order: by N when all are named ``outputN``, else in engine order."""
    if outputs and all(_OUTPUT_INDEX.match(t.name) for t in outputs):
        return sorted(outputs, key=lambda t: int(_OUTPUT_INDEX.match(t.name).group(1)))  # type: ignore[union-attr]
    return list(outputs)


def _io(t: EngineTensor) -> IOSpec:
    return IOSpec(name=t.name, dtype=dtypes.from_tensorrt(t.dtype), shape=tuple(int(d) for d in t.shape))


def read_engine_tensors(plan: bytes) -> list[EngineTensor]:
    """Deserialize ``plan`` with TensorRT and list its I/O tensors (needs TensorRT and a GPU).

    Plugin creators the plan uses must already be registered in this process (loaded libraries / QDP definitions).

    Raises:
        MissingDependencyError: TensorRT is not installed.
        BuildError: TensorRT cannot deserialize the plan.
    """
    from trtrepo.deps import require

    require("tensorrt", "reading a TensorRT plan")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise BuildError("TensorRT could not deserialize the plan it just built",
                         hint="see the TensorRT build log; a plugin creator may be missing in this process")
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        tensors.append(EngineTensor(
            name=name,
            is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
            dtype=engine.get_tensor_dtype(name).name,
            shape=tuple(int(d) for d in engine.get_tensor_shape(name)),
        ))
    return tensors
