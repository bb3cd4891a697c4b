"""The engine benchmark's pure parts: which engines run, batch buckets and ranges, ratios within runs, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtrepo.bench.engine_report import EngineResult, EngineRun, EnginesReport, EngineStatus, run_ratios
from trtrepo.bench.engines import (
    ENGINES,
    Capabilities,
    EngineOptions,
    batch_range,
    buckets_for,
    describe_engines,
    select_engines,
    with_batch_range,
)
from trtrepo.bench.stats import LatencyStats
from trtrepo.bench.timing import WarmUp
from trtrepo.errors import MissingDependencyError, SpecError
from trtrepo.spec import parse_spec

CPU = Capabilities(cuda=False, torch_tensorrt=False, cpp_runtime=False, native=False)
GPU = Capabilities(cuda=True, torch_tensorrt=True, cpp_runtime=False, native=True)


def _model(tmp_path: Path, dim0: int = -1):
    (tmp_path / "net.py").write_text("def build():\n    raise NotImplementedError\n")
    x = {"name": "x", "dtype": "fp16", "shape": [dim0, -1, 64], "min": [1, 1, 64], "opt": [8, 32, 64],
         "max": [64, 128, 64]}
    if dim0 != -1:
        x = {"name": "x", "dtype": "fp16", "shape": [dim0, 16, 64]}
    raw = {"models": [{"name": "m", "source": "net:build", "precision": "fp16", "inputs": [x], "outputs": ["y"]}]}
    return parse_spec(raw, tmp_path / "model.yaml").models[0]


def test_every_engine_is_listed_once_and_described() -> None:
    text = describe_engines()
    for name in ENGINES:
        assert f"\n{name} " in text
    assert {"eager", "compile", "plan-decompose-dynamic", "plan-native-buckets-graph", "hybrid-tt", "hybrid-lean",
            "hybrid-lean-graph"} <= set(ENGINES)


def test_cpu_selection_runs_cpu_engines_and_says_why_the_others_cannot() -> None:
    chosen = {c.kind.name: c.skip for c in select_engines(EngineOptions(), CPU)}
    assert chosen["eager"] is None and chosen["compile"] is None
    assert chosen["eager-native"] == "needs --native MODULE:FACTORY (the block in native aten ops)"
    assert chosen["plan-decompose-dynamic"] == "needs CUDA torch and a GPU"
    assert chosen["hybrid-lean-graph"] == "needs CUDA torch and a GPU"


def test_gpu_selection_filters_profiles_and_graphs() -> None:
    options = EngineOptions(profiles=["dynamic"], cuda_graphs=False)
    chosen = {c.kind.name: c.skip for c in select_engines(options, GPU)}
    assert "plan-decompose-dynamic" in chosen and "plan-native-dynamic" in chosen
    assert not [n for n in chosen if n.endswith("-static") or n.endswith("-buckets") or n.endswith("-graph")]
    assert chosen["hybrid-tt-cpp"] == "this Torch-TensorRT build has no C++ runtime"
    assert all(skip is None for name, skip in chosen.items() if name != "hybrid-tt-cpp")


def test_named_engines_run_whatever_the_profile_options_say() -> None:
    options = EngineOptions(engines=["eager", "plan-decompose-static-graph"], profiles=["dynamic"],
                            cuda_graphs=False)
    assert [c.kind.name for c in select_engines(options, GPU)] == ["eager", "plan-decompose-static-graph"]


def test_unknown_engine_suggests_the_closest() -> None:
    with pytest.raises(SpecError, match=r"unknown engine 'hybrid-lena' \(did you mean 'hybrid-lean'\?\)"):
        select_engines(EngineOptions(engines=["eager", "hybrid-lena"]), GPU)


def test_required_engine_that_cannot_run_is_exit_3() -> None:
    with pytest.raises(MissingDependencyError, match=r"plan-decompose-dynamic \(needs CUDA torch and a GPU\)") as info:
        select_engines(EngineOptions(engines=["eager"], require=["plan-decompose-dynamic"]), CPU)
    assert info.value.exit_code == 3
    # satisfied requirements are simply run
    names = [c.kind.name for c in select_engines(EngineOptions(engines=["eager"], require=["hybrid-lean"]), GPU)]
    assert names == ["eager", "hybrid-lean"]


@pytest.mark.parametrize(("options", "message"), [
    (EngineOptions(runs=0), "--runs: must be >= 1"),
    (EngineOptions(profiles=["dynamic", "tight"]), r"--profiles: \['tight'\]"),
    (EngineOptions(buckets=[0, 8]), "--buckets: positive integers"),
    (EngineOptions(native="model.build_native"), "--native: 'model.build_native' is not module:factory"),
])
def test_options_validation(options: EngineOptions, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        options.validate()


def test_buckets_cover_the_range_with_each_batch_on_top() -> None:
    assert buckets_for(1, 64, [1, 8, 64]) == [(1, 1), (2, 8), (9, 64)]
    assert buckets_for(1, 64, [4, 16]) == [(1, 4), (5, 16), (17, 64)]
    assert buckets_for(1, 64, [1, 8, 64], tops=[32]) == [(1, 32), (33, 64)]
    assert buckets_for(2, 8, [1, 100]) == [(2, 8)]  # sizes outside the range are not tops


def test_batch_range_and_with_batch_range(tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert batch_range(model) == (1, 8, 64)
    static = with_batch_range(model, 16, 16, 16).inputs[0]
    assert static.shape == (16, -1, 64) and static.min == (16, 1, 64) and static.max == (16, 128, 64)
    assert static.dynamic_axes == (1,)  # the sequence dim stays dynamic
    bucket = with_batch_range(model, 9, 64, 64).inputs[0]
    assert bucket.shape == (-1, -1, 64) and bucket.min[0] == 9 and bucket.opt[0] == 64 and bucket.max[0] == 64
    fixed = _model(tmp_path, dim0=4)
    assert batch_range(fixed) == (4, 4, 4) and with_batch_range(fixed, 4, 4, 4) == fixed


def _result(engine: str, p50s: list[float], pipes: list[float], batch: int = 8) -> EngineResult:
    runs = [EngineRun(LatencyStats(p50_ms=p, p90_ms=p * 1.1, p99_ms=p * 1.3, mean_ms=p, count=100), q)
            for p, q in zip(p50s, pipes, strict=True)]
    return EngineResult("m", engine, batch, runs=runs, warmup=WarmUp(calls=60, seconds=0.2, first_call_ms=9.0,
                                                                     window_medians_ms=(0.2, 0.1, 0.1), settled=True),
                        max_abs_error=0.0 if engine == "eager" else 2e-3, parity_ok=True)


def test_ratios_are_taken_within_each_run() -> None:
    eager = _result("eager", [0.30, 0.20, 0.25], [0.28, 0.19, 0.24])
    plan = _result("plan-decompose-dynamic", [0.10, 0.10, 0.125], [0.07, 0.095, 0.08])
    up = run_ratios(eager, plan)
    assert up is not None and (up.low, up.median, up.high) == pytest.approx((2.0, 2.0, 3.0))
    pipe = run_ratios(eager, plan, pipelined=True)
    assert pipe is not None and pipe.median == pytest.approx(3.0) and pipe.high == pytest.approx(4.0)
    assert run_ratios(None, plan) is None


def test_report_table_summary_json_and_files(tmp_path: Path) -> None:
    report = EnginesReport(spec="model.yaml", device="cuda:0 (NVIDIA H200)", clock="CUDA events",
                           options={"runs": 3}, roles={k.name: (k.serves_as, k.lowering) for k in ENGINES.values()})
    report.results = [_result("eager", [0.30, 0.20, 0.25], [0.28, 0.19, 0.24]),
                      _result("plan-decompose-dynamic", [0.10, 0.10, 0.125], [0.07, 0.095, 0.08]),
                      _result("plan-native-dynamic", [0.15, 0.1, 0.125], [0.1, 0.1, 0.1]),
                      EngineResult("m", "hybrid-lean", 8, error="RunnerError: no profile takes [8, 32, 64]")]
    report.engines["m"] = [EngineStatus("hybrid-tt", "x", "candidate", skipped="needs torch_tensorrt")]
    lines = report.table().splitlines()
    assert len(lines) == 6 and lines[0].split()[:3] == ["model", "batch", "engine"]
    assert "2.00x (2.00–3.00)" in lines[3] and "1.00x (1.00–1.00)" in lines[2]
    assert "failed" in lines[5] and "no profile takes" in lines[5]
    summary = report.summary()
    assert "tensorrt target: plan-decompose-dynamic 2.00x (2.00–3.00)" in summary
    assert "reference: plan-native-dynamic" in summary and "skipped: hybrid-tt (needs torch_tensorrt)" in summary
    # the deployable plan against the native-aten ceiling, within each run: 0.15/0.10, 0.1/0.1, 0.125/0.125
    assert "plan-decompose-dynamic vs plan-native-dynamic: 1.00x (1.00–1.50)" in summary
    files = report.write(tmp_path / "out")
    data = json.loads((tmp_path / "out" / "engines.json").read_text())
    assert data["schema"] == "trtrepo-bench-engines/1"
    plan = next(r for r in data["results"] if r["engine"] == "plan-decompose-dynamic")
    assert plan["speedup_p50"]["median"] == pytest.approx(2.0) and len(plan["runs"]) == 3
    assert plan["warmup"]["first_call_ms"] == 9.0 and plan["p50_ms"]["relative_spread"] == pytest.approx(0.25)
    assert (tmp_path / "out" / "engines.txt").read_text().startswith("model")
    if any(f.endswith(".png") for f in files):
        assert (tmp_path / "out" / "engines.png").read_bytes()[:4] == b"\x89PNG"
