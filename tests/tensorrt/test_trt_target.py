"""The TensorRT target where TensorRT is absent, plan build options, and the decompose lowering (real torch)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from trtrepo import deps
from trtrepo.errors import BuildError, MissingDependencyError, SpecError
from trtrepo.ops.description import OpDescription
from trtrepo.tensorrt.plan import build_options, input_profiles, precision_options


@pytest.mark.skipif(deps.has_tensorrt() and deps.has_torch_tensorrt(), reason="TensorRT is installed here")
def test_target_without_tensorrt_stops_before_writing(tmp_path: Path) -> None:
    from trtrepo.spec import load_spec
    from trtrepo.targets.base import BuildContext, get_target

    spec_file = tmp_path / "model.yaml"
    spec_file.write_text("models:\n  - name: m\n    source: m.pt2\n    inputs: [{name: x, shape: [1, 4]}]\n"
                         "    outputs: [y]\n")
    (tmp_path / "m.pt2").write_bytes(b"")
    spec = load_spec(spec_file)
    ctx = BuildContext(spec=spec, ops=None, cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")
    with pytest.raises(MissingDependencyError) as info:
        get_target("tensorrt")(ctx, spec.models[0], None)
    missing = "tensorrt" if not deps.has_tensorrt() else "torch_tensorrt"
    assert str(info.value) == f"the TensorRT target needs {missing}, which is not available here"
    assert "nvcr.io/nvidia/pytorch" in (info.value.hint or "")
    assert info.value.exit_code == 3
    assert not (tmp_path / "cache").exists() and not (tmp_path / "logs").exists()


def test_precision_options_per_release() -> None:
    old = {"enabled_precisions", "use_explicit_typing", "timing_cache_path"}
    assert precision_options(old, "fp16") == {"use_explicit_typing": True, "enabled_precisions": ("float32",)}
    assert precision_options({"timing_cache_path"}, "bf16") == {}
    with pytest.raises(SpecError):
        precision_options(old, "int8")


def test_build_options_only_what_the_release_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = {"min_block_size", "require_full_compilation", "timing_cache_path", "output_binding_names",
                "optimization_level"}
    monkeypatch.setenv("TRTREPO_TRT_OPT_LEVEL", "3")
    opts = build_options(accepted, "fp16", tmp_path / "t.cache", ("y", "z"))
    assert opts == {"min_block_size": 1, "require_full_compilation": True,
                    "timing_cache_path": str(tmp_path / "t.cache"), "optimization_level": 3,
                    "output_binding_names": ("y", "z")}
    monkeypatch.setenv("TRTREPO_TRT_OPT_LEVEL", "9")
    with pytest.raises(SpecError, match="TRTREPO_TRT_OPT_LEVEL"):
        build_options(accepted, "fp16", tmp_path / "t.cache")


def test_input_profiles_from_spec(tmp_path: Path) -> None:
    from trtrepo.spec import load_spec

    spec_file = tmp_path / "model.yaml"
    spec_file.write_text("models:\n  - name: m\n    source: m.pt2\n    precision: fp16\n"
                         "    inputs: [{name: x, dtype: fp16, shape: [-1, 64], min: [1, 64], opt: [8, 64], "
                         "max: [32, 64]}]\n    outputs: [y]\n")
    (tmp_path / "m.pt2").write_bytes(b"")
    (profile,) = input_profiles(load_spec(spec_file).models[0].inputs)
    assert (profile.name, profile.dtype) == ("x", "float16")
    assert (profile.min_shape, profile.opt_shape, profile.max_shape) == ((1, 64), (8, 64), (32, 64))


def test_qdp_signatures_match_tensorrt_plugin_schema(rms_norm: OpDescription) -> None:
    from trtrepo.tensorrt.lowering import qdp_signatures

    class TensorDesc: ...

    class KernelLaunchParams: ...

    class SymIntExprs: ...

    register, impl = qdp_signatures(rms_norm, TensorDesc, KernelLaunchParams, SymIntExprs)
    assert list(register.parameters) == ["x", "residual", "weight", "eps"]
    assert register.parameters["eps"].annotation is float
    assert register.parameters["x"].annotation is TensorDesc
    assert register.return_annotation.__args__ == (TensorDesc, TensorDesc)
    # tensorrt.plugin's aot_impl validator compares exactly this string
    assert f"({', '.join(impl.parameters)})" == "(x, residual, weight, eps, outputs, tactic)"
    assert impl.return_annotation.__args__[2:] == (KernelLaunchParams, SymIntExprs)
    assert impl.parameters["tactic"].annotation is int


@pytest.fixture(scope="module")
def toy_op() -> tuple[object, object]:
    torch = pytest.importorskip("torch")

    @torch.library.custom_op("trtrepo_test::scale_add", mutates_args=(),
                             schema="(Tensor x, Tensor y, float alpha=2.0) -> Tensor")
    def scale_add(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        return x * alpha + y

    @scale_add.register_fake
    def _(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        return torch.empty_like(x)

    def decomposition(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        return torch.ops.aten.add.Tensor(torch.ops.aten.mul.Tensor(x, alpha), y)

    return torch.ops.trtrepo_test.scale_add.default, decomposition


def _export(torch: object, alpha: float) -> object:
    import torch as t

    class Net(t.nn.Module):
        def forward(self, x: t.Tensor, y: t.Tensor) -> t.Tensor:
            return t.relu(t.ops.trtrepo_test.scale_add(x, y, alpha))

    batch = t.export.Dim("batch", min=1, max=64)
    args = (t.randn(4, 8), t.randn(4, 8))
    return t.export.export(Net(), args, dynamic_shapes={"x": {0: batch}, "y": {0: batch}})


def test_decompose_removes_the_op_and_keeps_results(toy_op: tuple[object, object]) -> None:
    import torch

    from trtrepo.tensorrt.lowering import custom_ops_in, decompose, remaining_ops

    op, fn = toy_op
    ep = _export(torch, 0.5)
    assert custom_ops_in(ep, ["trtrepo_test"]) == ["trtrepo_test::scale_add"]
    lowered = decompose(ep, {op: fn})
    assert remaining_ops(lowered, [op]) == set() and custom_ops_in(lowered, ["trtrepo_test"]) == []
    for batch in (1, 5, 64):  # dynamic dim survives the decomposition
        x, y = torch.randn(batch, 8), torch.randn(batch, 8)
        torch.testing.assert_close(lowered.module()(x, y), torch.relu(x * 0.5 + y))


def test_decompose_failure_is_a_build_error(toy_op: tuple[object, object]) -> None:
    import torch

    from trtrepo.tensorrt.lowering import decompose

    op, _ = toy_op

    def broken(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
        raise RuntimeError("no such aten op")

    with pytest.raises(BuildError, match=r"decomposing trtrepo_test\.scale_add\.default failed: no such aten op"):
        decompose(_export(torch, 1.0), {op: broken})


def test_real_decompositions_load(bias_gelu: OpDescription) -> None:
    fn = bias_gelu.load_decomposition()
    assert callable(fn) and list(inspect.signature(fn).parameters) == list(bias_gelu.inputs)


@pytest.mark.parametrize(("precision", "disabled"), [("fp32", True), ("fp16", False), ("bf16", False)])
def test_tf32_off_for_fp32_models(tmp_path: Path, precision: str, disabled: bool) -> None:
    # fp32 plans must mean IEEE fp32 like eager PyTorch: with TF32 tactics the GPU lane drifted ~1e-3 from eager.
    opts = build_options({"disable_tf32", "timing_cache_path"}, precision, tmp_path / "t.cache")
    assert opts["disable_tf32"] is disabled
