"""``trtrepo bench engines`` on this CPU machine, for real, on examples/mlp_block: eager with the custom ops against
the same block in native aten ops (which must agree with it), GPU engines reported as skipped with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtrepo import deps


def _why_not() -> str | None:
    if not deps.has_torch():
        return "torch is not installed"
    if deps.find_nvcc() is None:
        return "nvcc not found: the op build also makes PTX"
    return None


@pytest.mark.integration
@pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))
def test_engines_cpu_path_on_mlp_block(tmp_path: Path, repo_root: Path, run_python) -> None:
    spec = repo_root / "examples" / "mlp_block" / "model.yaml"
    out = tmp_path / "engines"
    proc = run_python(["-m", "trtrepo", "bench", "engines", str(spec), "--native", "model:build_native",
                       "--batch-sizes", "1", "--engines", "eager,eager-native,plan-decompose-dynamic,hybrid-lean",
                       "--runs", "2", "--iterations", "3", "--pipeline", "2", "--warmup-seconds", "0.5",
                       "--out", str(out)], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((out / "engines.json").read_text())
    if deps.has_cuda_torch():
        pytest.skip("this test is about the CPU path; on a GPU the lane runs the engines")
    assert data["device"] == "cpu" and data["clock"] == "host perf_counter"
    statuses = {s["name"]: s for s in data["engines"]["mlp_block"]}
    assert statuses["plan-decompose-dynamic"]["skipped"] == "needs CUDA torch and a GPU"
    assert statuses["hybrid-lean"]["skipped"] == "needs CUDA torch and a GPU"
    results = {r["engine"]: r for r in data["results"]}
    assert set(results) == {"eager", "eager-native"}
    eager, native = results["eager"], results["eager-native"]
    assert len(eager["runs"]) == len(native["runs"]) == 2
    assert eager["speedup_p50"]["median"] == 1.0  # eager / eager within each run
    assert native["speedup_p50"]["median"] > 0
    # the native block is the same model: it must match the custom kernels at fp16 tolerances
    assert native["parity_ok"] is True and native["max_abs_error"] < 1e-2
    # the fp32 run of the same model is the truth both fp16 engines are measured against (the noise floor)
    assert eager["eager_error_fp32"] == eager["max_abs_error_fp32"] > 0
    assert native["eager_error_fp32"] == eager["eager_error_fp32"] and native["max_abs_error_fp32"] > 0
    assert native["warmup"]["calls"] >= 1
    assert (out / "engines.txt").read_text().startswith("model")
    assert "skipped: plan-decompose-dynamic (needs CUDA torch and a GPU)" in proc.stdout


@pytest.mark.integration
@pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))
def test_mlp_block_builds_with_the_torch_target(tmp_path: Path, repo_root: Path, run_python) -> None:
    repo = tmp_path / "repo"
    proc = run_python(["-m", "trtrepo", "build", str(repo_root / "examples" / "mlp_block" / "model.yaml"),
                       "--target", "torch", "--out", str(repo)], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = (repo / "mlp_block" / "config.pbtxt").read_text()
    assert "max_batch_size: 64" in config and "TYPE_FP16" in config
    assert "128" in config and "1024" in config
    assert (repo / "mlp_block" / "1" / "model.pt2").is_file()
