"""Error statistics (check/stats.py), the criteria parity.metric picks, and the --ops report's verdicts (no server)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from trtrepo import deps
from trtrepo.check.compare import compare
from trtrepo.check.ops_report import ModelOps, OpResult, OpsReport, ProbeCall, require_plotting
from trtrepo.check.stats import cosine_similarity, error_stats, judge, judged
from trtrepo.check.tolerances import output_metric
from trtrepo.cli import main
from trtrepo.errors import MissingDependencyError
from trtrepo.spec import Metric, parse_spec


def test_distribution_statistics_of_known_errors() -> None:
    expected = np.ones(100, dtype=np.float32)
    actual = expected.copy()
    actual[:10] += np.float32(0.5)  # 10 elements off by 0.5, 90 exact
    s = error_stats("y", actual, expected, 1e-4, 1e-4)
    assert s.max_abs == pytest.approx(0.5) and s.mean_abs == pytest.approx(0.05) and s.median_abs == 0.0
    assert s.p99_abs == pytest.approx(0.5) and s.max_rel == pytest.approx(0.5)
    assert s.fraction_outside == pytest.approx(0.1) and s.result.violations == 10
    assert s.result.worst_index == (0,) and not s.result.passed
    assert s.cosine == pytest.approx(105 / (10 * np.sqrt(10 * 1.5**2 + 90)))  # a·e / (|a| |e|)
    assert s.nan_served == s.inf_served == s.nan_eager == s.inf_eager == 0


def test_worst_index_is_where_the_largest_violation_is() -> None:
    expected = np.zeros((3, 4), dtype=np.float32)
    actual = expected.copy()
    actual[2, 1] = 3.0
    actual[0, 0] = 1.0
    s = error_stats("y", actual, expected, 0.1, 0.0)
    assert s.result.worst_index == (2, 1) and s.max_abs == 3.0


def test_cosine_edge_cases() -> None:
    z = np.zeros(4)
    assert cosine_similarity(z, z) == 1.0
    assert cosine_similarity(z, np.ones(4)) == 0.0
    assert cosine_similarity(np.ones(4), -np.ones(4)) == -1.0


def test_nan_where_eager_has_none_fails_every_criterion() -> None:
    expected = np.ones(1000, dtype=np.float32)
    actual = expected.copy()
    actual[7] = np.nan
    s = error_stats("y", actual, expected, 1e-4, 1e-4)
    assert s.nan_served == 1 and s.nan_eager == 0 and s.nonfinite_mismatches == 1
    assert s.cosine == 1.0  # the finite elements agree; the NaN alone must fail it
    for metric in (None, Metric("cosine", 0.9), Metric("max_abs", 1.0), Metric("fraction_outside", 0.5)):
        passed, message = judge(s, metric)
        assert not passed and message, metric
    both = error_stats("y", actual, actual.copy(), 0.0, 0.0)  # NaN where eager has NaN agrees
    assert both.nonfinite_mismatches == 0 and judge(both, Metric("cosine", 0.999))[0]


def test_shape_mismatch_fails_with_the_elementwise_message() -> None:
    s = error_stats("y", np.zeros(3, np.float32), np.zeros(4, np.float32), 1e-4, 1e-4)
    assert s.fraction_outside == 1.0 and not judge(s, Metric("cosine", 0.0))[0]
    assert "shape" in judge(s, Metric("cosine", 0.0))[1]


def test_a_metric_can_pass_what_elementwise_fails_and_the_reverse() -> None:
    rng = np.random.default_rng(0)
    expected = rng.standard_normal(4096).astype(np.float32)
    actual = expected + np.float32(1e-3) * rng.standard_normal(4096).astype(np.float32)
    s = error_stats("y", actual, expected, 1e-4, 1e-4)
    assert not s.result.passed  # elementwise at fp32 defaults fails
    assert judge(s, Metric("cosine", 0.999))[0]
    assert not judge(s, Metric("cosine", 0.9999999))[0]
    assert "cosine similarity" in judge(s, Metric("cosine", 0.9999999))[1]
    assert not judge(s, Metric("max_abs", 1e-4))[0] and judge(s, Metric("p99_abs", 1e-2))[0]
    replaced = judged(s, Metric("cosine", 0.999))
    assert replaced.passed and replaced.max_abs_error == s.result.max_abs_error
    assert judged(s, None) is s.result and judged(s, Metric()) is s.result


def _model(tmp_path: Path, parity: str = "", outputs: str = "[y, {name: z, metric: {max_abs: 0.5}}]") -> object:
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    raw = f"""
models:
  - name: m
    source: m:build
    inputs: [{{name: x, shape: [2]}}]
    outputs: {outputs}
    {parity}
"""
    return parse_spec(yaml.safe_load(raw), tmp_path / "model.yaml").models[0]


def test_metric_precedence_output_over_parity_over_elementwise(tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert output_metric(model, "y") is None  # type: ignore[arg-type]
    assert output_metric(model, "z") == Metric("max_abs", 0.5)  # type: ignore[arg-type]
    model = _model(tmp_path, parity="parity: {metric: {cosine: 0.999}}")
    assert output_metric(model, "y") == Metric("cosine", 0.999)  # type: ignore[arg-type]
    assert output_metric(model, "z") == Metric("max_abs", 0.5)  # type: ignore[arg-type]
    model = _model(tmp_path, parity="parity: {metric: elementwise}")
    assert output_metric(model, "y") == Metric()  # type: ignore[arg-type]


def _op(op: str, position: int, passed: bool | None) -> OpResult:
    """An op result with one probe request (passed None: not served)."""
    result = OpResult(model="m", op=op, position=position, target="torch", lowering="-", calls_seen=3, captured=1,
                      outputs=["output_out"], atol=1e-4, rtol=1e-4)
    if passed is None:
        result.target, result.lowering = "tensorrt", "plugin"
        result.not_served = "not served here: the tensorrt target (plugin lowering) needs TensorRT"
        return result
    expected = np.ones(8, np.float32)
    actual = expected if passed else expected + np.float32(0.25)
    stats = error_stats("output_out", actual, expected, 1e-4, 1e-4)
    result.calls.append(ProbeCall("http", "min", [[8]], [stats], [stats.result]))
    return result


def test_first_drift_is_the_earliest_failing_op_in_graph_order() -> None:
    model = ModelOps(model="m", precision="fp32", ops=[_op("ns::a", 1, True), _op("ns::b", 2, False),
                                                       _op("ns::c", 3, False)],
                     measured={"y": {"max_abs_error": 0.3, "passed": False}},
                     noise_floor={"y": {"rerun": {"max_abs": 0.0}}})
    report = OpsReport(models=[model])
    assert model.first_drift() is not None and model.first_drift().op == "ns::b"  # type: ignore[union-attr]
    assert not report.passed
    table = report.table()
    assert table.index("ns::a") < table.index("ns::b") < table.index("ns::c")
    assert "first op that drifts: m: ns::b (#2; http min output output_out: 8/8 elements outside" in table
    assert "noise floor m y: measured max abs 0.3; eager rerun 0" in table
    assert table.endswith("ops: FAIL (2 of 3 ops)")
    data = report.to_dict()
    assert data["models"][0]["first_drift"]["op"] == "ns::b" and data["models"][0]["order"] == ["ns::a", "ns::b",
                                                                                                  "ns::c"]


def test_not_served_is_reported_per_op_and_is_not_a_pass() -> None:
    report = OpsReport(models=[ModelOps(model="m", precision="fp32",
                                        ops=[_op("ns::a", 1, True), _op("ns::b", 2, None)],
                                        measured={"y": {"max_abs_error": 0.0, "passed": True}})])
    assert not report.passed and report.models[0].first_drift() is None
    table = report.table()
    assert "m ns::b: not served here: the tensorrt target (plugin lowering) needs TensorRT" in table
    assert "first op that drifts: m: none of the ops served here" in table
    assert table.endswith("ops: NOT PROVEN (1 of 2 ops not served here)")
    assert report.to_dict()["models"][0]["ops"][1]["status"] == "not served"
    passing = OpsReport(models=[ModelOps(model="m", precision="fp32", ops=[_op("ns::a", 1, True)])])
    assert passing.passed and passing.table().endswith("ops: PASS (1 ops, 1 probe requests)")
    nothing = OpsReport(models=[ModelOps(model="m", precision="fp32")])
    assert nothing.passed and "(no custom op calls captured)" in nothing.table()
    assert nothing.table().endswith("ops: PASS (the models call no custom op of the spec's plugin sources)")


def test_tensorrt_probe_without_tensorrt_is_not_served(tmp_path: Path) -> None:
    if deps.has_tensorrt() and deps.has_torch_tensorrt():
        pytest.skip("TensorRT and Torch-TensorRT are installed: the probe would be built")
    from trtrepo.check.op_probe import NotServed, plan_probes, probe_name
    from trtrepo.repository.manifest import ServingRecord

    model = _model(tmp_path)
    record = ServingRecord(target="tensorrt", version=1, precision="fp32", platform="tensorrt_plan", backend="",
                           inputs=(), outputs=(), output_names={}, lowerings={"trtrepo::bias_gelu": "aot"})
    (plan,) = plan_probes(model, {"trtrepo::bias_gelu": []}, {}, record)  # type: ignore[arg-type]
    assert isinstance(plan, NotServed) and plan.lowering == "aot"
    assert plan.reason.startswith("not served here: the tensorrt target (aot lowering) needs TensorRT")
    assert probe_name("m", "trtrepo::bias_gelu") == "probe__m__trtrepo__bias_gelu"


def test_plot_without_ops_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "model.yaml"), "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs --ops" in capsys.readouterr().err


def test_plot_without_matplotlib_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an environment without matplotlib imports
    with pytest.raises(MissingDependencyError, match="--plot needs matplotlib") as info:
        require_plotting()
    assert info.value.exit_code == 3 and "trtrepo[plots]" in (info.value.hint or "")


def test_compare_is_the_elementwise_verdict_of_the_stats() -> None:
    a, e = np.array([1.0, 2.0], np.float32), np.array([1.0, 2.5], np.float32)
    assert error_stats("y", a, e, 0.1, 0.0).result == compare("y", a, e, 0.1, 0.0)
