"""Pure parts of scripts/bench_trt_rtx.py (batch sizes, speed-ups, tables) and its SKIP path here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trtrepo import deps
from trtrepo.bench import LatencyStats
from trtrepo.spec import parse_spec

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_trt_rtx.py"


@pytest.fixture(scope="module")
def br() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_trt_rtx_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _model(tmp_path: Path, dim0: int = -1):
    (tmp_path / "net.py").write_text("def build():\n    raise NotImplementedError\n")
    x = {"name": "x", "dtype": "fp32", "shape": [dim0, -1, 64], "min": [1, 8, 64], "opt": [8, 32, 64],
         "max": [32, 128, 64]}
    if dim0 != -1:
        x = {"name": "x", "dtype": "fp32", "shape": [dim0, 64]}
    raw = {"models": [{"name": "m", "source": "net:build", "inputs": [x], "outputs": ["y"]}]}
    return parse_spec(raw, tmp_path / "model.yaml").models[0]


def test_batch_sizes_default_to_profile(br: ModuleType, tmp_path: Path) -> None:
    assert br.pick_batch_sizes(_model(tmp_path), None) == [1, 8, 32]
    assert br.default_batch_sizes(4, 4, 4) == [4]


def test_batch_sizes_requested_are_clipped_to_profile(br: ModuleType, tmp_path: Path) -> None:
    assert br.pick_batch_sizes(_model(tmp_path), [64, 2, 16, 2, 0]) == [2, 16]


def test_batch_sizes_static(br: ModuleType, tmp_path: Path) -> None:
    assert br.pick_batch_sizes(_model(tmp_path, dim0=3), [1, 8]) == [3]


def test_speedup_and_natural_order(br: ModuleType) -> None:
    assert br.speedup(2.0, 0.5) == 4.0
    assert br.speedup(None, 1.0) is None and br.speedup(1.0, 0.0) is None
    assert sorted(["output10", "output2", "output0"], key=br.natural_key) == ["output0", "output2", "output10"]


def _stats(p50: float) -> LatencyStats:
    return LatencyStats(p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.5, mean_ms=p50, count=100)


def test_row_speedups_table_and_summary(br: ModuleType) -> None:
    fast = br.Row(model="gelu_block", batch_size=8, input_shapes={"x": [8, 64]},
                  latency={"eager": _stats(0.1), "torch.compile": _stats(0.08), "plan": _stats(0.025)},
                  errors={}, max_abs_error={"plan": 3e-6})
    broken = br.Row(model="seq_block", batch_size=1, input_shapes={"x": [1, 32, 64]},
                    latency={"eager": _stats(0.2), "torch.compile": None, "plan": None},
                    errors={"plan": "BuildError: x"}, max_abs_error={})
    assert fast.plan_vs_eager == pytest.approx(4.0)
    assert fast.plan_vs_compile == pytest.approx(3.2)
    assert fast.compile_vs_eager == pytest.approx(1.25)
    assert broken.plan_vs_eager is None
    lines = br.format_table([fast, broken]).splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert "4.00x" in lines[2] and "3.20x" in lines[2] and "3.00e-06" in lines[2]
    assert "failed" in lines[3]
    summary = br.format_summary([fast, broken], "NVIDIA H100 80GB HBM3")
    assert "stand-in for TensorRT" in summary.splitlines()[0]
    assert "plan vs eager 4.00x" in summary and "plan failed" in summary
    d = fast.to_dict()
    assert d["latency"]["plan"]["p50_ms"] == 0.025 and d["plan_vs_eager"] == pytest.approx(4.0)


def test_plot(br: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    row = br.Row(model="m", batch_size=1, input_shapes={}, latency={"eager": _stats(1), "torch.compile": None,
                                                                     "plan": _stats(0.5)}, errors={}, max_abs_error={})
    assert br.write_plot([row], tmp_path / "p.png", "t")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(deps.has_cuda_torch(), reason="the SKIP path is for machines without a CUDA GPU")
def test_skips_cleanly_without_gpu(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SKIP bench_trt_rtx:")
