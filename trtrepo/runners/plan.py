"""A TensorRT plan as a runner, through the TensorRT Python API (on the GPU machine: TensorRT-RTX).

Tensors are bound by name, outputs are preallocated once per set of input shapes, and every execution is enqueued
on the runner's own non-default CUDA stream (``execute_async_v3``): TensorRT warns that the default stream costs an
extra synchronisation, and a benchmark must not pay it. A plan with several optimisation profiles gets the profile
whose ranges hold the input shapes (the tightest when several do); :class:`PlanSet` does the same across several
plans (one plan per batch bucket). Optionally the execution is captured once into a CUDA graph and replayed.

TensorRT-RTX specialises dynamic-shape kernels at run time; ``kernel_specialization`` (``lazy`` / ``eager`` /
``none``) sets its runtime configuration's strategy where the bindings have one (``IRuntimeConfig``), and is
recorded as not applicable elsewhere. ``tensorrt`` is imported when the runner is activated, never before.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo import dtypes
from trtrepo.runners.base import BaseRunner, Prepared, RunnerError, Tensors, check_names, new_stream, to_torch

LOGGER = logging.getLogger(__name__)

KERNEL_SPECIALIZATIONS = ("lazy", "eager", "none")
Shape = tuple[int, ...]
ProfileRanges = dict[str, tuple[Shape, Shape, Shape]]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module; torch-tensorrt-rtx aliases the TensorRT-RTX bindings under that name on import.

    Raises:
        MissingDependencyError: Neither imports.
    """
    import importlib

    from trtrepo.deps import INSTALL_HINTS, is_installed
    from trtrepo.errors import MissingDependencyError

    try:
        return importlib.import_module("tensorrt")
    except ImportError as first:
        if is_installed("torch_tensorrt"):
            try:
                importlib.import_module("torch_tensorrt")
                return importlib.import_module("tensorrt")
            except Exception as exc:
                LOGGER.debug("tensorrt through torch_tensorrt: %s", exc)
        raise MissingDependencyError(f"running a TensorRT plan needs tensorrt ({first})",
                                     hint=INSTALL_HINTS["tensorrt"]) from None


def output_order(names: Sequence[str]) -> list[str]:
    """Outputs in forward()'s return order: by N when all are named ``outputN`` (Torch-TensorRT), else as given."""
    from trtrepo.tensorrt.engine_io import EngineTensor, order_outputs

    return [t.name for t in order_outputs([EngineTensor(n, False, "FLOAT", ()) for n in names])]


def within(shape: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> bool:
    """Whether every dim of ``shape`` lies within ``lo``..``hi`` (same rank)."""
    return len(shape) == len(lo) == len(hi) and all(a <= d <= b for d, a, b in zip(shape, lo, hi, strict=True))


def choose_profile(profiles: Sequence[ProfileRanges], shapes: Mapping[str, Sequence[int]]) -> int | None:
    """The index of the profile whose min..max holds every input shape; the tightest when several do.

    Tightest = the smallest sum over inputs and dims of (max - min); ties go to the lower index.

    Args:
        profiles: Per profile, input name → (min, opt, max).
        shapes: Input name → shape.

    Returns:
        The index, or None when no profile holds the shapes.
    """
    best: tuple[int, int] | None = None
    for index, ranges in enumerate(profiles):
        if set(ranges) != set(shapes):
            continue
        if all(within(shapes[n], lo, hi) for n, (lo, _, hi) in ranges.items()):
            width = sum(b - a for lo, _, hi in ranges.values() for a, b in zip(lo, hi, strict=True))
            if best is None or width < best[0]:
                best = (width, index)
    return None if best is None else best[1]


@dataclass
class EngineCore:
    """One deserialized engine and one execution context: what :class:`PlanRunner` and the hybrid runner share.

    Attributes:
        plan: The serialized engine.
        kernel_specialization: TensorRT-RTX strategy (``lazy``/``eager``/``none``) or None for its default.
        device: CUDA device index.
        native_cuda_graph: TensorRT-RTX only: let the runtime capture and replay the whole engine itself
            (``CudaGraphStrategy.WHOLE_GRAPH_CAPTURE``; after the shape-specialised kernels of a shape are compiled).
            Its plans built without ``REQUIRE_USER_ALLOCATION`` refuse a user's stream capture, so this is the way
            to a graphed plan there. Ignored (facts say so) where the bindings have no such strategy.
    """

    plan: bytes
    kernel_specialization: str | None = None
    device: int = 0
    native_cuda_graph: bool = False
    input_names: list[str] = field(default_factory=list, init=False)
    output_names: list[str] = field(default_factory=list, init=False)
    profiles: list[ProfileRanges] = field(default_factory=list, init=False)
    facts: dict[str, Any] = field(default_factory=dict, init=False)
    _trt: Any = field(default=None, init=False, repr=False)
    _runtime: Any = field(default=None, init=False, repr=False)
    _engine: Any = field(default=None, init=False, repr=False)
    _context: Any = field(default=None, init=False, repr=False)
    _profile: int = field(default=0, init=False, repr=False)

    def load(self) -> None:
        """Deserialize the plan and create the execution context.

        Raises:
            RunnerError: TensorRT cannot deserialize the plan, or the strategy name is unknown.
        """
        if self.kernel_specialization not in (None, *KERNEL_SPECIALIZATIONS):
            raise RunnerError(f"kernel specialization {self.kernel_specialization!r} is not one of "
                              f"{', '.join(KERNEL_SPECIALIZATIONS)}")
        trt = import_tensorrt()
        self._trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(self.plan)
        if engine is None:
            raise RunnerError("TensorRT could not deserialize the plan (built by another TensorRT version, or a "
                              "plugin creator is not loaded in this process)")
        self._engine = engine
        self.facts = {"tensorrt": str(getattr(trt, "__version__", "?")),
                      "tensorrt_module": str(getattr(trt, "__name__", "tensorrt"))}
        config = None
        if hasattr(engine, "create_runtime_config"):  # TensorRT-RTX: runtime kernel specialisation lives here
            config = engine.create_runtime_config()
            self.facts["runtime_config"] = True
            strategy_enum = getattr(trt, "DynamicShapesKernelSpecializationStrategy", None)
            if self.kernel_specialization is not None and strategy_enum is not None:
                config.dynamic_shapes_kernel_specialization_strategy = getattr(
                    strategy_enum, self.kernel_specialization.upper())
            self.facts["kernel_specialization"] = self.kernel_specialization or "default"
            if strategy_enum is None:
                self.facts["kernel_specialization"] = "not available in these bindings"
            graph_enum = getattr(trt, "CudaGraphStrategy", None)
            if self.native_cuda_graph and graph_enum is not None:
                config.cuda_graph_strategy = graph_enum.WHOLE_GRAPH_CAPTURE
                self.facts["cuda_graph_strategy"] = "whole_graph_capture"
            elif self.native_cuda_graph:
                self.facts["cuda_graph_strategy"] = "not available in these bindings"
        else:
            self.facts["runtime_config"] = False
            self.facts["kernel_specialization"] = "not applicable (not TensorRT-RTX)"
        self._context = engine.create_execution_context(config) if config is not None \
            else engine.create_execution_context()
        if self._context is None:
            raise RunnerError("TensorRT could not create an execution context for the plan")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = output_order([n for n in names if n not in self.input_names])
        self.profiles = [self._profile_ranges(p) for p in range(max(1, int(engine.num_optimization_profiles)))]
        self.facts["profiles"] = [{n: [list(s) for s in r] for n, r in ranges.items()} for ranges in self.profiles]

    def _profile_ranges(self, index: int) -> ProfileRanges:
        """Input name → (min, opt, max) of profile ``index``; a static input's own shape three times."""
        ranges: ProfileRanges = {}
        for n in self.input_names:
            static = tuple(int(d) for d in self._engine.get_tensor_shape(n))
            try:
                lo, opt, hi = (tuple(int(d) for d in dims) for dims in self._engine.get_tensor_profile_shape(n, index))
            except Exception:  # an engine built without a profile (every input static) has none to report
                lo = opt = hi = static
            if len(lo) != len(static) or any(d < 0 for d in (*lo, *hi)):
                lo = opt = hi = static
            ranges[n] = (lo, opt, hi)
        return ranges

    def unload(self) -> None:
        """Drop the context, the engine and the runtime, in that order (each refers to the next)."""
        self._context = None
        self._engine = None
        self._runtime = None

    def dtype(self, name: str) -> Any:
        """The torch dtype of tensor ``name``."""
        return dtypes.to_torch(dtypes.from_tensorrt(self._engine.get_tensor_dtype(name).name))

    def holds(self, shapes: Mapping[str, Sequence[int]]) -> bool:
        """Whether some profile (a static engine: its shapes) takes these input shapes."""
        return choose_profile(self.profiles, shapes) is not None

    def bind(self, tensors: Mapping[str, Any], stream: Any, outputs: Mapping[str, Any] | None = None
             ) -> dict[str, Any]:
        """Select the profile, set shapes and addresses, allocate the outputs; returns output name → tensor.

        ``outputs`` given (preallocated earlier for these shapes) are bound instead of new ones.

        Raises:
            RunnerError: No profile takes the shapes, TensorRT rejects a shape, or an output shape is data-dependent.
        """
        import torch

        shapes = {n: tuple(t.shape) for n, t in tensors.items()}
        if len(self.profiles) > 1:
            index = choose_profile(self.profiles, shapes)
            if index is None:
                raise RunnerError(f"no optimisation profile of the plan takes input shapes {shapes} "
                                  f"(profiles: {self.facts.get('profiles')})")
            if index != self._profile:
                if not self._context.set_optimization_profile_async(index, stream.cuda_stream):
                    raise RunnerError(f"TensorRT refused optimisation profile {index}")
                self._profile = index
        for n in self.input_names:
            if not self._context.set_input_shape(n, shapes[n]):
                raise RunnerError(f"input {n!r}: shape {list(shapes[n])} is outside the plan's profile "
                                  f"{self.facts.get('profiles')}")
            self._context.set_tensor_address(n, tensors[n].data_ptr())
        bound = {}
        for n in self.output_names:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                raise RunnerError(f"output {n!r} has a data-dependent shape {list(shape)}: not supported here")
            out = outputs[n] if outputs is not None else torch.empty(shape, dtype=self.dtype(n),
                                                                      device=f"cuda:{self.device}")
            if tuple(out.shape) != shape:
                raise RunnerError(f"output {n!r}: buffer of shape {list(out.shape)} for an output of {list(shape)}")
            self._context.set_tensor_address(n, out.data_ptr())
            bound[n] = out
        return bound

    def set_address(self, name: str, pointer: int) -> None:
        """Point tensor ``name`` at ``pointer`` (same shape as bound: the hybrid runner's per-call inputs)."""
        self._context.set_tensor_address(name, pointer)

    def enqueue(self, stream_handle: int) -> None:
        """One ``execute_async_v3`` on the raw stream handle.

        Raises:
            RunnerError: TensorRT reports the enqueue failed.
        """
        if not self._context.execute_async_v3(stream_handle):
            raise RunnerError("execute_async_v3 failed (see TensorRT's log above)")

    def capturable(self, stream_handle: int) -> bool | None:
        """Whether the context may be captured into a CUDA graph on that stream (None: the bindings cannot say)."""
        probe = getattr(self._context, "is_stream_capturable", None)
        return None if probe is None else bool(probe(stream_handle))


class PlanRunner(BaseRunner):
    """Runs one serialized TensorRT plan.

    Args:
        plan: The plan's bytes or its file.
        name: The runner's name in reports.
        kernel_specialization: TensorRT-RTX runtime strategy (``lazy``, ``eager``, ``none``); None = its default.
        cuda_graph: Capture the bound execution into a CUDA graph and replay it.
        plugin_libraries: Shared libraries to load (RTLD_GLOBAL) before deserializing: plugin creators.
        stream: A ``torch.cuda.Stream`` to run on (default: a new one on activation).
        device: CUDA device index.
    """

    def __init__(self, plan: bytes | Path, *, name: str = "plan", kernel_specialization: str | None = None,
                 cuda_graph: bool = False, plugin_libraries: Sequence[str | Path] = (), stream: Any = None,
                 device: int = 0) -> None:
        super().__init__(name)
        self.plan = plan
        self.cuda_graph = cuda_graph
        self.plugin_libraries = [Path(p) for p in plugin_libraries]
        self.stream = stream
        self.device = device
        self.kernel_specialization = kernel_specialization
        self.core: EngineCore | None = None
        self._graphs: list[Any] = []

    def _activate(self) -> None:
        import torch

        if not torch.cuda.is_available():
            from trtrepo.deps import INSTALL_HINTS
            from trtrepo.errors import MissingDependencyError

            raise MissingDependencyError(f"{self.name}: running a TensorRT plan needs CUDA torch and a GPU",
                                         hint=INSTALL_HINTS["cuda_torch"])
        trt = import_tensorrt()  # libnvinfer before the plugin libraries: they register with it when loaded
        for lib in self.plugin_libraries:
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        data = self.plan.read_bytes() if isinstance(self.plan, Path) else bytes(self.plan)
        # TensorRT-RTX captures the whole engine itself (its plans refuse a user's capture unless built with
        # REQUIRE_USER_ALLOCATION); TensorRT proper: the runner captures the enqueue (prepare).
        native = self.cuda_graph and hasattr(trt, "CudaGraphStrategy")
        self.core = EngineCore(data, self.kernel_specialization, self.device, native_cuda_graph=native)
        self.core.load()
        if self.stream is None:
            self.stream = new_stream(self.device)

    def _deactivate(self) -> None:
        self._graphs.clear()
        if self.core is not None:
            self.core.unload()
            self.core = None

    @property
    def input_names(self) -> list[str]:
        """The plan's input names (after activation)."""
        return list(self.core.input_names) if self.core else []

    @property
    def output_names(self) -> list[str]:
        """The plan's output names in engine order (after activation)."""
        return list(self.core.output_names) if self.core else []

    @property
    def facts(self) -> dict[str, Any]:
        """What the engine reported at activation (TensorRT version, profiles, kernel specialisation)."""
        return dict(self.core.facts) if self.core else {}

    def holds(self, shapes: Mapping[str, Sequence[int]]) -> bool:
        """Whether this plan takes these input shapes."""
        self.require_active()
        assert self.core is not None
        return self.core.holds(shapes)

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind ``inputs`` (copied to the GPU when needed) and preallocate the outputs.

        Raises:
            RunnerError: Input names differ from the plan's, no profile takes the shapes, or (with ``cuda_graph``)
                the context cannot be captured.
        """
        import torch

        self.require_active()
        assert self.core is not None
        core = self.core
        check_names(self.name, list(inputs), core.input_names)
        tensors = {n: to_torch(inputs[n], f"cuda:{self.device}") for n in core.input_names}
        torch.cuda.current_stream().synchronize()  # the copies above ran there; the executions run on self.stream
        stream = self.stream
        outputs = core.bind(tensors, stream)
        handle = int(stream.cuda_stream)
        facts: dict[str, Any] = {"profile": core._profile, "cuda_graph": False}

        def call() -> None:
            core.enqueue(handle)

        if self.cuda_graph and core.native_cuda_graph:
            facts["cuda_graph"] = "tensorrt-rtx whole_graph_capture"
        elif self.cuda_graph:
            call = self._capture(core, handle, call, facts)
        keep = (tensors, outputs)  # the bound addresses must stay valid while the call is used

        def read() -> dict[str, Any]:
            return dict(keep[1])

        return Prepared(call=call, outputs=read, stream=stream, facts=facts)

    def _capture(self, core: EngineCore, handle: int, call: Any, facts: dict[str, Any]) -> Any:
        import torch

        stream = self.stream
        with torch.cuda.stream(stream):
            call()  # TensorRT sets up shape-dependent state on the first enqueue: never inside the capture
        stream.synchronize()
        capturable = core.capturable(handle)
        if capturable is False:
            raise RunnerError(f"{self.name}: TensorRT says this context cannot be captured into a CUDA graph on "
                              "this stream", hint="use kernel_specialization='eager' or 'none' with TensorRT-RTX")
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            call()
        self._graphs.append(graph)
        facts["cuda_graph"] = True
        facts["capturable"] = capturable
        return graph.replay


class PlanSet(BaseRunner):
    """Several plans behind one name: each call goes to the plan whose profile takes the shapes (the tightest).

    This is how one plan per batch bucket (or one static plan per batch size) serves a dynamic batch.

    Args:
        runners: The plans, each a :class:`PlanRunner`; they share this set's stream.
        name: The set's name in reports.
    """

    def __init__(self, runners: Sequence[PlanRunner], *, name: str) -> None:
        super().__init__(name)
        if not runners:
            raise RunnerError(f"{name}: a plan set needs at least one plan")
        self.runners = list(runners)
        self.stream: Any = None

    def _activate(self) -> None:

        self.stream = new_stream()
        for r in self.runners:
            r.stream = self.stream
            r.activate()

    def _deactivate(self) -> None:
        for r in self.runners:
            r.deactivate()

    @property
    def facts(self) -> dict[str, Any]:
        """Each plan's facts, by plan name."""
        return {r.name: r.facts for r in self.runners}

    def pick(self, shapes: Mapping[str, Sequence[int]]) -> PlanRunner:
        """The plan for these shapes: the one whose ranges are tightest.

        Raises:
            RunnerError: No plan takes them.
        """
        candidates: list[ProfileRanges] = []
        owners: list[PlanRunner] = []
        for r in self.runners:
            assert r.core is not None
            for ranges in r.core.profiles:
                candidates.append(ranges)
                owners.append(r)
        index = choose_profile(candidates, shapes)
        if index is None:
            raise RunnerError(f"{self.name}: no plan takes input shapes {dict(shapes)}")
        return owners[index]

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind ``inputs`` on the plan that takes their shapes."""
        self.require_active()
        shapes = {n: tuple(getattr(v, "shape", ())) for n, v in inputs.items()}
        chosen = self.pick(shapes)
        prepared = chosen.prepare(inputs)
        prepared.facts = {**(prepared.facts or {}), "plan": chosen.name}
        return prepared
