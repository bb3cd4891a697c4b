"""The tensorrt.plugin stand-in: TensorRT's ShapeExpr arithmetic (symbolic where a dim is dynamic, folded where it is
static, no reflected operators), and trtrepo's real register_aot_plugin captured through it without leaking the
stand-in into sys.modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trtrepo.conformance import qdp
from trtrepo.conformance.qdp import ShapeExpr
from trtrepo.errors import TrtrepoError
from trtrepo.ops.description import OpDescription


@pytest.fixture
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh process: no AOT plugin defined yet, nothing captured (both registries are process-global)."""
    from trtrepo.tensorrt import lowering

    monkeypatch.setattr(lowering, "_AOT_PLUGINS", {})
    monkeypatch.setattr(qdp, "_CAPTURED", {})


def test_static_dims_fold_dynamic_dims_stay_symbolic() -> None:
    rows, cols = ShapeExpr.dim(0, 0), ShapeExpr(64)
    assert (cols * 2 + 1).is_constant and (cols * 2 + 1).constant_value() == 129
    n = rows * cols
    assert not n.is_constant
    assert n.resolve([[5, 64]]) == 320
    grid = qdp._function("cdiv")(n, 256)
    assert grid.resolve([[5, 64]]) == 2 and grid.resolve([[4, 64]]) == 1
    assert qdp._function("max")(rows, 3).resolve([[1, 64]]) == 3
    assert qdp._function("min")(rows, 3).resolve([[7, 64]]) == 3
    with pytest.raises(ValueError, match="not a build-time constant"):
        n.constant_value()


def test_no_reflected_operators_as_on_tensorrt_shapeexpr() -> None:
    with pytest.raises(TypeError):
        _ = 2 - ShapeExpr.dim(0, 0)  # type: ignore[operator]
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = ShapeExpr(2) * 1.5
    with pytest.raises(TypeError):
        ShapeExpr(1.0)  # type: ignore[arg-type]


def test_floor_division_by_zero_is_refused() -> None:
    with pytest.raises(ZeroDivisionError):
        (ShapeExpr.dim(0, 0) // ShapeExpr.dim(0, 1)).resolve([[3, 0]])


def test_resolve_accepts_ints_exprs_and_symints() -> None:
    assert qdp.resolve(7, []) == 7
    assert qdp.resolve(qdp.SymInt32(ShapeExpr.dim(0, 1)), [[2, 9]]) == 9
    with pytest.raises(TypeError):
        qdp.resolve(True, [])


@pytest.mark.usefixtures("fresh_process_state")
def test_capture_runs_trtreppos_lowering_and_restores_modules(tmp_path: Path,
                                                              descriptions: dict[str, OpDescription]) -> None:
    before = {name: sys.modules.get(name) for name in ("tensorrt", "tensorrt.plugin")}
    ptx = tmp_path / "op.ptx"
    ptx.write_text("// ptx")
    desc = descriptions["trtrepo::fused_add_rms_norm"]
    captured = qdp.capture(desc, ptx)
    assert {name: sys.modules.get(name) for name in ("tensorrt", "tensorrt.plugin")} == before
    assert captured.op == desc.name and qdp.capture(desc, ptx) is captured  # one definition per process

    descs = [qdp.input_desc(i, s, st, "fp16") for i, (s, st) in
             enumerate(zip([(8, 64), (8, 64), (64,)], [(False, True), (False, True), (True,)], strict=True))]
    outs = captured.describe(*descs, 1e-5)
    entry, code, params, extra = captured.aot_impl(*descs, 1e-5, outs, 0)
    assert entry == b"trtrepo_fused_add_rms_norm_f16" and code == b"// ptx"
    assert [qdp.resolve(s, [[8, 64], [8, 64], [64]]) for s in extra][:2] == [8, 64]
    assert not params.grid_x.is_constant  # rows is dynamic: TensorRT resolves the grid per inference
    assert qdp.resolve(params.grid_x, [[17, 64], [17, 64], [64]]) == 3  # 8 rows per block at cols = 64 fp16


@pytest.mark.usefixtures("fresh_process_state")
def test_a_second_op_description_of_one_op_is_refused(tmp_path: Path, descriptions: dict[str, OpDescription]) -> None:
    first, second = tmp_path / "a.ptx", tmp_path / "b.ptx"
    first.write_text("// a")
    second.write_text("// b")
    desc = descriptions["trtrepo::bias_gelu"]
    qdp.capture(desc, first)
    with pytest.raises(TrtrepoError, match="one op description per op and process"):
        qdp.capture(desc, second)


@pytest.mark.usefixtures("fresh_process_state")
def test_comparison_on_a_dynamic_dim_fails_as_on_tensorrt(tmp_path: Path,
                                                          descriptions: dict[str, OpDescription]) -> None:
    from trtrepo.errors import BuildError

    ptx = tmp_path / "op.ptx"
    ptx.write_text("// ptx")
    desc = descriptions["trtrepo::fused_add_rms_norm"]
    captured = qdp.capture(desc, ptx)
    dynamic = [qdp.input_desc(i, s, [False] * len(s), "fp32") for i, s in enumerate([(8, 64), (8, 64), (64,)])]
    with pytest.raises(BuildError, match="depends on a dim only known at run time"):
        captured.aot_impl(*dynamic, 1e-6, captured.describe(*dynamic, 1e-6), 0)
