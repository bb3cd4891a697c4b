"""The hybrid engine: TensorRT engines for what converts, the custom ops left to their own CUDA kernels.

Torch-TensorRT partitions the exported program (``torch_executed_ops`` = the custom ops): the result is an fx
``GraphModule`` whose children are TensorRT engines (``_run_on_acc_*``) and torch graphs (``_run_on_gpu_*``, where
the custom ops run). Torch-TensorRT's own runtime modules add per-call work (shape checks, output allocation, stream
juggling) that at these sizes outweighs what TensorRT saves. :class:`HybridRunner` keeps the partition and runs it
leanly: each engine child is replaced by a lean module (one execution context, shapes set only when they change,
outputs preallocated per shape, enqueued on the caller's stream), everything runs on one stream, and optionally the
whole call is captured into one CUDA graph.

:func:`split_ops` is the pure part: which op runs where, the segments a partition is expected to have.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from trtrepo.runners.base import (
    BaseRunner,
    Prepared,
    RunnerError,
    Tensors,
    check_names,
    flatten_outputs,
    name_outputs,
    new_stream,
    to_torch,
)
from trtrepo.runners.plan import EngineCore, import_tensorrt

LOGGER = logging.getLogger(__name__)

TENSORRT = "tensorrt"
TORCH = "torch"
# Shape bookkeeping and tuple indexing: never a segment of their own (Torch-TensorRT folds them into a neighbour).
PASSIVE_OPS = frozenset({"getitem", "aten.sym_size.int", "aten.sym_numel.default", "aten.sym_stride.int"})
WARM_CALLS = 3


@dataclass(frozen=True)
class Segment:
    """A maximal run of ops that execute in one place: ``tensorrt`` (an engine) or ``torch`` (custom kernels)."""

    kind: str
    ops: tuple[str, ...] = field(default_factory=tuple)


def op_namespace(op: str) -> str:
    """``trtrepo`` of ``trtrepo.bias_gelu.default`` (or of ``trtrepo::bias_gelu``)."""
    return op.replace("::", ".").split(".", 1)[0]


def split_ops(ops: Sequence[str], custom_namespaces: Collection[str]) -> list[Segment]:
    """Group a program's ops, in order, into segments: custom ops stay in torch, everything else goes to TensorRT.

    Args:
        ops: The program's call_function targets as strings (``aten.linear.default``, ``trtrepo.bias_gelu.default``,
            ``getitem``), in graph order.
        custom_namespaces: Op namespaces of the custom ops (``trtrepo``).

    Returns:
        The segments in order; passive ops (tuple indexing, shape queries) join the segment before them.
    """
    segments: list[Segment] = []
    for op in ops:
        if op in PASSIVE_OPS:
            if segments:
                segments[-1] = Segment(segments[-1].kind, (*segments[-1].ops, op))
            continue
        kind = TORCH if op_namespace(op) in custom_namespaces else TENSORRT
        if segments and segments[-1].kind == kind:
            segments[-1] = Segment(kind, (*segments[-1].ops, op))
        else:
            segments.append(Segment(kind, (op,)))
    return segments


def graph_ops(graph: Any) -> list[str]:
    """The call_function targets of an fx graph as strings, in order (``getitem`` for tuple indexing)."""
    out = []
    for node in graph.nodes:
        if node.op == "call_function":
            name = getattr(node.target, "__name__", "") if callable(node.target) and not hasattr(
                node.target, "_schema") else ""
            out.append(name if name == "getitem" else str(node.target))
    return out


def engine_of(module: Any) -> tuple[bytes, list[str], list[str]] | None:
    """(serialized engine, input names, output names) of a Torch-TensorRT runtime module; None for anything else.

    Torch-TensorRT's Python runtime names them ``input_names``/``output_names``, its C++ runtime module
    ``input_binding_names``/``output_binding_names``; both keep ``serialized_engine``.
    """
    data = getattr(module, "serialized_engine", None)
    if data is None:
        return None
    inputs = getattr(module, "input_names", None) or getattr(module, "input_binding_names", None)
    outputs = getattr(module, "output_names", None) or getattr(module, "output_binding_names", None)
    if inputs is None or outputs is None:
        return None
    return bytes(data), list(inputs), list(outputs)


def compiled_segments(graph_module: Any) -> list[Segment]:
    """The segments of a Torch-TensorRT compiled graph module, in call order: engines and torch children."""
    children = dict(graph_module.named_children())
    segments = []
    for node in graph_module.graph.nodes:
        if node.op == "call_module" and node.target in children:
            child = children[node.target]
            if engine_of(child) is not None:
                segments.append(Segment(TENSORRT, (str(node.target),)))
            else:
                segments.append(Segment(TORCH, tuple(graph_ops(child.graph)) if hasattr(child, "graph") else ()))
    return segments


def _lean_engine(core: EngineCore, inputs: list[str], outputs: list[str]) -> Any:
    """A torch module running ``core`` on torch's current stream; outputs preallocated per input shapes."""
    import torch

    class LeanEngine(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.by_shape: dict[tuple[tuple[int, ...], ...], dict[str, Any]] = {}
            self.bound_shapes: tuple[tuple[int, ...], ...] | None = None
            self.calls = 0

        def forward(self, *args: Any) -> Any:
            stream = torch.cuda.current_stream()
            tensors = [a if a.is_contiguous() else a.contiguous() for a in args]
            shapes = tuple(tuple(t.shape) for t in tensors)
            if shapes != self.bound_shapes:
                named = dict(zip(inputs, tensors, strict=True))
                self.by_shape[shapes] = core.bind(named, stream, self.by_shape.get(shapes))
                self.bound_shapes = shapes
            else:
                for n, t in zip(inputs, tensors, strict=True):
                    core.set_address(n, t.data_ptr())
            core.enqueue(int(stream.cuda_stream))
            self.calls += 1
            result = [self.by_shape[shapes][n] for n in outputs]
            return result[0] if len(result) == 1 else tuple(result)

    return LeanEngine()


class HybridRunner(BaseRunner):
    """Runs a Torch-TensorRT partitioned graph module with lean engines on one stream.

    Args:
        graph_module: What ``torch_tensorrt.dynamo.compile`` returned (custom ops left to torch).
        input_names: forward()'s argument names, in order.
        output_names: Names for the flattened outputs, in order.
        name: The runner's name in reports.
        cuda_graph: Capture the whole call (engines and custom kernels) into one CUDA graph and replay it.
        kernel_specialization: TensorRT-RTX runtime strategy for every engine (see :mod:`trtrepo.runners.plan`).
    """

    def __init__(self, graph_module: Any, input_names: Sequence[str], output_names: Sequence[str], *,
                 name: str = "hybrid-lean", cuda_graph: bool = False, kernel_specialization: str | None = None) -> None:
        super().__init__(name)
        self.source = graph_module
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.cuda_graph = cuda_graph
        self.kernel_specialization = kernel_specialization
        self.stream: Any = None
        self.lean: Any = None
        self.cores: list[EngineCore] = []
        self.segments: list[Segment] = []
        self._graphs: list[Any] = []

    def _activate(self) -> None:
        import torch

        if not torch.cuda.is_available():
            from trtrepo.deps import INSTALL_HINTS
            from trtrepo.errors import MissingDependencyError

            raise MissingDependencyError(f"{self.name}: the hybrid engine needs CUDA torch and a GPU",
                                         hint=INSTALL_HINTS["cuda_torch"])
        gm = self.source
        self.segments = compiled_segments(gm)
        swapped: dict[str, Any] = {}
        # TensorRT-RTX refuses a user's capture of its engines (plans built without REQUIRE_USER_ALLOCATION): there
        # each engine graphs itself (WHOLE_GRAPH_CAPTURE) and the custom ops between them run eagerly.
        native = self.cuda_graph and hasattr(import_tensorrt(), "CudaGraphStrategy")
        for child_name, child in gm.named_children():
            found = engine_of(child)
            if found is None:
                continue
            plan, ins, outs = found
            core = EngineCore(plan, self.kernel_specialization, torch.cuda.current_device(), native_cuda_graph=native)
            core.load()
            check_names(f"{self.name}/{child_name}", core.input_names, ins)
            self.cores.append(core)
            swapped[child_name] = _lean_engine(core, ins, outs)
        if not swapped:
            raise RunnerError(f"{self.name}: the compiled module has no TensorRT engine (nothing converted?)")
        targets: dict[str, Any] = {}
        for node in gm.graph.nodes:
            if node.op in ("call_module", "get_attr"):
                key = str(node.target)
                targets[key] = swapped[key] if key in swapped else functools.reduce(getattr, key.split("."), gm)
        self.lean = torch.fx.GraphModule(targets, gm.graph)
        self.stream = new_stream()

    def _deactivate(self) -> None:
        self._graphs.clear()
        self.lean = None
        for core in self.cores:
            core.unload()
        self.cores.clear()

    @property
    def facts(self) -> dict[str, Any]:
        """The partition and each engine's facts."""
        return {"segments": [{"kind": s.kind, "ops": list(s.ops)} for s in self.segments],
                "engines": [c.facts for c in self.cores], "cuda_graph": self.cuda_graph}

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind ``inputs``; with ``cuda_graph`` the call is warmed up on the stream and captured.

        Raises:
            RunnerError: Input names differ, or an engine rejects the shapes.
        """
        import torch

        self.require_active()
        check_names(self.name, list(inputs), self.input_names)
        args = tuple(to_torch(inputs[n], "cuda") for n in self.input_names)
        torch.cuda.current_stream().synchronize()
        lean = self.lean
        last: list[Any] = []

        def call() -> None:
            with torch.inference_mode():
                last[:] = [lean(*args)]

        facts: dict[str, Any] = {"cuda_graph": False}
        if self.cuda_graph and self.cores and all(core.native_cuda_graph for core in self.cores):
            facts["cuda_graph"] = "per engine (tensorrt-rtx whole_graph_capture); custom ops eager"
        elif self.cuda_graph:
            with torch.cuda.stream(self.stream):
                for _ in range(WARM_CALLS):  # engines bind their shapes, custom ops allocate: before the capture
                    call()
            self.stream.synchronize()
            handle = int(self.stream.cuda_stream)
            if any(core.capturable(handle) is False for core in self.cores):
                raise RunnerError(f"{self.name}: TensorRT says an engine cannot be captured into a CUDA graph on this "
                                  "stream", hint="use kernel_specialization='eager' or 'none' with TensorRT-RTX")
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph, stream=self.stream):
                last[:] = [lean(*args)]
            self._graphs.append(graph)
            facts["cuda_graph"] = True
            call = graph.replay

        def outputs() -> dict[str, Any]:
            if not last:
                raise RuntimeError(f"{self.name}: outputs() before the first call")
            return name_outputs(self.name, self.output_names, flatten_outputs(last[0]))

        return Prepared(call=call, outputs=outputs, stream=self.stream, facts=facts)
