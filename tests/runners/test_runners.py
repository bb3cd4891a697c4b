"""The runner protocol on the CPU: conversion, names, eager runs, profile choice, the hybrid split, what needs a GPU."""

from __future__ import annotations

import pytest

from trtrepo import deps
from trtrepo.errors import MissingDependencyError
from trtrepo.runners.base import RunnerError, check_names, flatten_outputs, name_outputs, run_runners
from trtrepo.runners.hybrid import TENSORRT, TORCH, Segment, engine_of, split_ops
from trtrepo.runners.plan import PlanRunner, PlanSet, choose_profile, within

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")


class Block(torch.nn.Module):
    def forward(self, x, y):  # type: ignore[no-untyped-def]
        return x + y, (x * y, x - y)


def test_eager_runner_numpy_in_numpy_out_and_torch_in_torch_out() -> None:
    from trtrepo.runners.eager import EagerRunner

    runner = EagerRunner(Block(), ["x", "y"], ["sum", "prod", "diff"])
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), dtype=np.float32)
    with runner:
        out = runner.infer({"y": y, "x": x})
        assert list(out) == ["sum", "prod", "diff"] and all(isinstance(v, np.ndarray) for v in out.values())
        np.testing.assert_array_equal(out["sum"], x + y)
        np.testing.assert_array_equal(out["diff"], x - y)
        tout = runner.infer({"x": torch.from_numpy(x), "y": torch.from_numpy(y)})
        assert isinstance(tout["prod"], torch.Tensor) and torch.equal(tout["prod"], torch.from_numpy(x * y))
    with pytest.raises(RunnerError, match="not active"):
        runner.infer({"x": x, "y": y})


def test_eager_runner_rejects_wrong_names() -> None:
    from trtrepo.runners.eager import EagerRunner

    with EagerRunner(Block(), ["x", "y"], ["s", "p", "d"]) as runner, \
            pytest.raises(RunnerError, match=r"eager: inputs missing \['y'\], unknown \['z'\]; it takes \['x', 'y'\]"):
        runner.infer({"x": np.zeros(1, np.float32), "z": np.zeros(1, np.float32)})


def test_run_runners_compares_like_polygraphy() -> None:
    from trtrepo.runners.eager import EagerRunner

    a = EagerRunner(Block(), ["x", "y"], ["s", "p", "d"], name="a")
    b = EagerRunner(torch.compile(Block(), backend="eager"), ["x", "y"], ["s", "p", "d"], name="b")
    inputs = {"x": np.full((2,), 3, np.float32), "y": np.full((2,), 2, np.float32)}
    results = run_runners([a, b], inputs)
    assert list(results) == ["a", "b"]
    for name in ("s", "p", "d"):
        np.testing.assert_array_equal(results["a"][name], results["b"][name])
    assert not a.active and not b.active  # each deactivated after its run
    with pytest.raises(RunnerError, match="unique"):
        run_runners([a, a], inputs)


def test_bf16_round_trip_through_numpy() -> None:
    from trtrepo.runners.base import to_numpy, to_torch

    t = torch.tensor([1.5, -2.25, 3.0e5], dtype=torch.bfloat16)
    arr = to_numpy(t)
    assert arr.dtype.itemsize == 2
    back = to_torch(arr, "cpu")
    assert back.dtype == torch.bfloat16 and torch.equal(back, t)


def test_names_and_flattening() -> None:
    check_names("r", ["a", "b"], ["b", "a"])
    with pytest.raises(RunnerError, match=r"missing \['b'\]"):
        check_names("r", ["a"], ["a", "b"])
    assert flatten_outputs((1, [2, (3,)], 4)) == [1, 2, 3, 4]
    assert name_outputs("r", ["y"], [7]) == {"y": 7}
    with pytest.raises(RunnerError, match="produced 2 outputs, expected 1"):
        name_outputs("r", ["y"], [1, 2])


PROFILES = [
    {"x": ((1, 64), (32, 64), (64, 64))},
    {"x": ((1, 64), (1, 64), (1, 64))},
    {"x": ((2, 64), (8, 64), (8, 64))},
]


def test_choose_profile_takes_the_tightest_that_holds() -> None:
    assert choose_profile(PROFILES, {"x": (1, 64)}) == 1
    assert choose_profile(PROFILES, {"x": (8, 64)}) == 2
    assert choose_profile(PROFILES, {"x": (9, 64)}) == 0
    assert choose_profile(PROFILES, {"x": (65, 64)}) is None
    assert choose_profile(PROFILES, {"x": (8, 64, 1)}) is None  # rank differs
    assert choose_profile(PROFILES, {"y": (8, 64)}) is None  # other input names
    assert within((3, 4), (1, 4), (8, 4)) and not within((3, 5), (1, 4), (8, 4))


@pytest.mark.skipif(deps.has_cuda_torch(), reason="checks the no-GPU path")
def test_plan_runner_needs_a_gpu() -> None:
    with pytest.raises(MissingDependencyError, match="running a TensorRT plan needs CUDA torch and a GPU") as info:
        PlanRunner(b"not a plan").activate()
    assert info.value.exit_code == 3
    with pytest.raises(RunnerError, match="at least one plan"):
        PlanSet([], name="s")


def test_split_ops_groups_custom_ops_apart() -> None:
    ops = ["aten.linear.default", "trtrepo.bias_gelu.default", "aten.linear.default",
           "trtrepo.fused_add_rms_norm.default", "getitem", "getitem"]
    assert split_ops(ops, {"trtrepo"}) == [
        Segment(TENSORRT, ("aten.linear.default",)), Segment(TORCH, ("trtrepo.bias_gelu.default",)),
        Segment(TENSORRT, ("aten.linear.default",)),
        Segment(TORCH, ("trtrepo.fused_add_rms_norm.default", "getitem", "getitem"))]
    assert split_ops(["aten.add.Tensor", "aten.sym_size.int", "aten.mul.Tensor"], {"trtrepo"}) == [
        Segment(TENSORRT, ("aten.add.Tensor", "aten.sym_size.int", "aten.mul.Tensor"))]
    assert split_ops([], {"trtrepo"}) == []


def test_split_of_a_real_exported_program() -> None:
    """A Python custom op, exported with torch.export: the split the hybrid engine's partition should have."""
    from trtrepo.runners.hybrid import graph_ops

    @torch.library.custom_op("h2test::double", mutates_args=())
    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @double.register_fake
    def _(x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(torch.ops.h2test.double(self.lin(x))) + 1

    ep = torch.export.export(Net(), (torch.randn(2, 8),))
    kinds = [s.kind for s in split_ops(graph_ops(ep.graph), {"h2test"})]
    assert kinds == [TENSORRT, TORCH, TENSORRT]


def test_engine_of_reads_both_torch_tensorrt_runtime_spellings() -> None:
    class PythonRuntime:  # attribute names of Torch-TensorRT 2.11's PythonTorchTensorRTModule
        def __init__(self) -> None:
            self.serialized_engine = b"plan"
            self.input_names = ["x"]
            self.output_names = ["output0"]

    class CppRuntime:  # ... and of its C++ TorchTensorRTModule
        def __init__(self) -> None:
            self.serialized_engine = bytearray(b"plan")
            self.input_binding_names = ["x"]
            self.output_binding_names = ["output0", "output1"]

    assert engine_of(PythonRuntime()) == (b"plan", ["x"], ["output0"])
    assert engine_of(CppRuntime()) == (b"plan", ["x"], ["output0", "output1"])
    assert engine_of(torch.nn.Linear(1, 1)) is None


class StandInEngine:
    """Stands in for ``tensorrt.ICudaEngine`` (not installable here) to test how profiles are read, nothing else."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], profiles: list[dict[str, list[tuple[int, ...]]]] | None):
        self.shapes = shapes
        self.profiles = profiles

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def get_tensor_profile_shape(self, name: str, index: int) -> list[tuple[int, ...]]:
        if self.profiles is None:
            raise RuntimeError("no profile")  # what an engine built without one does
        return self.profiles[index][name]


def test_profile_ranges_of_dynamic_and_static_engines() -> None:
    from trtrepo.runners.plan import EngineCore

    core = EngineCore(b"")
    core.input_names = ["x"]
    core._engine = StandInEngine({"x": (-1, 64)}, [{"x": [(1, 64), (8, 64), (32, 64)]}])
    assert core._profile_ranges(0) == {"x": ((1, 64), (8, 64), (32, 64))}
    core._engine = StandInEngine({"x": (4, 64)}, None)
    assert core._profile_ranges(0) == {"x": ((4, 64), (4, 64), (4, 64))}
    core._engine = StandInEngine({"x": (4, 64)}, [{"x": [(), (), ()]}])  # empty dims: also static
    assert core._profile_ranges(0) == {"x": ((4, 64), (4, 64), (4, 64))}


def test_output_order_follows_torch_tensorrt_names() -> None:
    from trtrepo.runners.plan import output_order

    assert output_order(["output10", "output2", "output0"]) == ["output0", "output2", "output10"]
    assert output_order(["y", "residual"]) == ["y", "residual"]


def test_native_cuda_graph_sets_the_tensorrt_rtx_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for the TensorRT-RTX bindings (TensorRT cannot run here; the GPU run proves the real one):
    ``native_cuda_graph`` must reach the runtime config as WHOLE_GRAPH_CAPTURE, and say so in the facts."""
    import types

    from trtrepo.runners import plan as plan_module

    class Config:
        cuda_graph_strategy = "DISABLED"

    config = Config()

    class Engine(StandInEngine):
        num_io_tensors = 0
        num_optimization_profiles = 1

        def create_runtime_config(self) -> Config:
            return config

        def create_execution_context(self, _config: Config) -> object:
            return object()

    fake = types.SimpleNamespace(
        Logger=type("Logger", (), {"WARNING": 0, "__init__": lambda self, level: None}),
        Runtime=lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda data: Engine({}, None)),
        CudaGraphStrategy=types.SimpleNamespace(WHOLE_GRAPH_CAPTURE="WHOLE_GRAPH_CAPTURE"),
        DynamicShapesKernelSpecializationStrategy=types.SimpleNamespace(EAGER="EAGER"),
        TensorIOMode=types.SimpleNamespace(INPUT="INPUT"))
    monkeypatch.setattr(plan_module, "import_tensorrt", lambda: fake)
    core = plan_module.EngineCore(b"plan", "eager", native_cuda_graph=True)
    core.load()
    assert config.cuda_graph_strategy == "WHOLE_GRAPH_CAPTURE"
    assert core.facts["cuda_graph_strategy"] == "whole_graph_capture"
    config.cuda_graph_strategy = "DISABLED"
    plain = plan_module.EngineCore(b"plan", "eager")
    plain.load()
    assert config.cuda_graph_strategy == "DISABLED" and "cuda_graph_strategy" not in plain.facts
