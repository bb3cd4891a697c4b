"""compare(): the tolerance rule, shapes/dtypes, worst-violation index, NaN/Inf; tolerances precedence."""

from __future__ import annotations

import numpy as np
import pytest

from trtrepo.check.compare import compare
from trtrepo.check.tolerances import DEFAULT_TOLERANCES, output_tolerance
from trtrepo.spec import parse_spec


def test_identical_arrays_pass_with_zero_error() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    r = compare("y", a, a.copy(), 1e-4, 1e-4)
    assert r.passed and r.violations == 0 and r.max_abs_error == 0.0 and r.size == 12


def test_boundary_is_inclusive_and_rtol_scales_with_expected() -> None:
    expected = np.array([0.0, 100.0], dtype=np.float64)
    # allowed: atol 0.1 at 0; 0.1 + 0.01*100 = 1.1 at 100
    assert compare("y", expected + np.array([0.1, 1.1]), expected, 0.1, 0.01).passed
    r = compare("y", expected + np.array([0.1, 1.2]), expected, 0.1, 0.01)
    assert not r.passed and r.violations == 1 and r.worst_index == (1,)


def test_reports_worst_violation_index_values_and_errors() -> None:
    expected = np.zeros((2, 3), dtype=np.float32)
    actual = expected.copy()
    actual[0, 1] = 0.5
    actual[1, 2] = 2.0
    r = compare("out", actual, expected, 1e-3, 0.0)
    assert not r.passed
    assert r.violations == 2
    assert r.worst_index == (1, 2)
    assert r.max_abs_error == pytest.approx(2.0)
    assert r.actual_at_worst == pytest.approx(2.0) and r.expected_at_worst == 0.0
    assert "2/6 elements" in r.message and "[1, 2]" in r.message


def test_relative_error_ignores_zero_expected() -> None:
    r = compare("y", np.array([1.0, 2.2]), np.array([0.0, 2.0]), 10.0, 0.0)
    assert r.passed and r.max_rel_error == pytest.approx(0.1)


def test_shape_and_dtype_mismatch_fail() -> None:
    r = compare("y", np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), 1.0, 1.0)
    assert not r.passed and "shape [2, 3] != expected [3, 2]" in r.message
    r = compare("y", np.zeros(3, np.float16), np.zeros(3, np.float32), 1.0, 1.0)
    assert not r.passed and "dtype float16 != expected float32" in r.message


def test_nan_and_inf_rules() -> None:
    e = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert compare("y", e.copy(), e, 0.0, 0.0).passed  # same non-finite pattern matches
    r = compare("y", np.array([np.nan, np.inf, np.inf, 1.0]), e, 1e9, 1e9)  # -inf vs +inf: no tolerance helps
    assert not r.passed and r.nonfinite_mismatches == 1 and r.worst_index == (2,)
    r = compare("y", np.array([np.nan, np.inf, -np.inf, np.nan]), e, 1e9, 1e9)
    assert not r.passed and r.worst_index == (3,)
    assert r.to_dict()["actual_at_worst"] == "nan"


def test_bool_and_int_outputs_compare_exactly_below_one() -> None:
    assert compare("m", np.array([True, False]), np.array([True, False]), 1e-4, 1e-4).passed
    assert not compare("m", np.array([True, True]), np.array([True, False]), 1e-4, 1e-4).passed
    assert not compare("c", np.array([3], np.int64), np.array([4], np.int64), 1e-4, 1e-4).passed


def test_empty_arrays_pass() -> None:
    assert compare("y", np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), 0.0, 0.0).passed


def _model(tmp_path, parity: str = "", outputs: str = "[y, {name: z, rtol: 0.5}]", precision: str = "fp16"):
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    raw = f"""
models:
  - name: m
    source: m:build
    precision: {precision}
    inputs: [{{name: x, shape: [2]}}]
    outputs: {outputs}
    {parity}
"""
    import yaml

    return parse_spec(yaml.safe_load(raw), tmp_path / "model.yaml").models[0]


def test_tolerance_precedence(tmp_path) -> None:
    model = _model(tmp_path)
    assert output_tolerance(model, "y") == DEFAULT_TOLERANCES["fp16"]
    assert output_tolerance(model, "z") == (DEFAULT_TOLERANCES["fp16"][0], 0.5)
    model = _model(tmp_path, parity="parity: {atol: 0.25}")
    assert output_tolerance(model, "y") == (0.25, DEFAULT_TOLERANCES["fp16"][1])
    assert output_tolerance(model, "z") == (0.25, 0.5)


def test_default_tolerances_order() -> None:
    assert DEFAULT_TOLERANCES["fp32"] < DEFAULT_TOLERANCES["fp16"] < DEFAULT_TOLERANCES["bf16"]
