"""Input cases over the shape profile: min/opt/max, random sizes in range, tied dims, batch limits, seeds, bf16."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from trtrepo.check.inputs import profile_cases, ragged_cases, to_numpy, to_torch
from trtrepo.spec import parse_spec

SPEC = """
models:
  - name: m
    source: m:build
    inputs:
      - {name: x, shape: [-1, -1, 64], min: [1, 4, 64], opt: [4, 16, 64], max: [16, 128, 64]}
      - {name: mask, dtype: bool, shape: [-1, -1], min: [1, 4], opt: [4, 16], max: [16, 128]}
      - {name: ids, dtype: int64, shape: [-1, 3], min: [1, 3], opt: [4, 3], max: [16, 3]}
    outputs: [y]
    triton: {max_batch_size: 8}
    parity: {samples: 6, seed: 3, ragged_requests: 5}
"""


@pytest.fixture
def model(tmp_path):
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    return parse_spec(yaml.safe_load(SPEC), tmp_path / "model.yaml").models[0]


def test_min_opt_max_then_random_cases(model) -> None:
    cases = profile_cases(model)
    names = [c.name for c in cases]
    assert names == ["min", "opt", "max"] + [f"random-{i}" for i in range(6)]
    by = {c.name: c for c in cases}
    assert by["min"].shapes == {"x": [1, 4, 64], "mask": [1, 4], "ids": [1, 3]}
    assert by["opt"].shapes == {"x": [4, 16, 64], "mask": [4, 16], "ids": [4, 3]}
    # max batch is 16 in the profile but Triton accepts at most max_batch_size 8
    assert by["max"].shapes == {"x": [8, 128, 64], "mask": [8, 128], "ids": [8, 3]}


def test_random_sizes_in_range_and_tied_across_inputs(model) -> None:
    for case in profile_cases(model)[3:]:
        x, mask, ids = (case.arrays[k] for k in ("x", "mask", "ids"))
        assert 1 <= x.shape[0] <= 8 and 4 <= x.shape[1] <= 128 and x.shape[2] == 64
        assert mask.shape == x.shape[:2]  # same axis and range: the same size
        assert ids.shape == (x.shape[0], 3)


def test_dtypes_and_seeded_values(model) -> None:
    a, b = profile_cases(model), profile_cases(model)
    for ca, cb in zip(a, b, strict=True):
        for k in ca.arrays:
            np.testing.assert_array_equal(ca.arrays[k], cb.arrays[k])
    case = a[1]
    assert case.arrays["x"].dtype == np.float32
    assert case.arrays["mask"].dtype == np.bool_
    assert case.arrays["ids"].dtype == np.int64 and case.arrays["ids"].min() >= 0


def test_ragged_cases_fit_the_batcher(model) -> None:
    cases = ragged_cases(model)
    assert len(cases) == 5 and all(c.group == "ragged" for c in cases)
    sizes = [c.arrays["x"].shape[0] for c in cases]
    assert all(1 <= s <= 4 for s in sizes)  # at most max_batch_size // 2, so several share one batch
    assert all(c.shapes["x"][1:] == [16, 64] for c in cases)  # other dims at opt: batchable together


def test_no_ragged_without_batching(tmp_path) -> None:
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    raw = yaml.safe_load(SPEC.replace("triton: {max_batch_size: 8}", "triton: {max_batch_size: 0}"))
    model = parse_spec(raw, tmp_path / "model.yaml").models[0]
    assert ragged_cases(model) == []
    assert profile_cases(model)[2].shapes["x"] == [16, 128, 64]  # no batch limit without batching


def test_static_model_has_one_profile_case(tmp_path) -> None:
    (tmp_path / "m.py").write_text("def build():\n    pass\n")
    raw = yaml.safe_load("models: [{name: s, source: 'm:build', inputs: [{name: x, shape: [2, 3]}], outputs: [y],"
                         " parity: {samples: 2}}]")
    cases = profile_cases(parse_spec(raw, tmp_path / "model.yaml").models[0])
    assert [c.name for c in cases] == ["min", "random-0", "random-1"]


def test_bf16_round_trip_is_bit_exact() -> None:
    torch = pytest.importorskip("torch")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = np.array([1.0, -2.5, 3.140625, 1e-3], dtype=np.float32).astype(ml_dtypes.bfloat16)
    t = to_torch(values, "bf16")
    assert t.dtype == torch.bfloat16
    np.testing.assert_array_equal(t.float().numpy(), values.astype(np.float32))
    back = to_numpy(t)
    assert back.dtype == ml_dtypes.bfloat16 and np.array_equal(back.view(np.uint16), values.view(np.uint16))
