"""Pure parts of scripts/bench_kernels.py (traffic model, sizes, ratios, goals, tables) and a CPU smoke run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trtrepo import deps

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_kernels.py"


@pytest.fixture(scope="module")
def bk() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kernels_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_traffic_model(bk: ModuleType) -> None:
    # bias_gelu: x and bias read, out written
    assert bk.traffic_bytes("bias_gelu", 8, 1024, 2) == ((8 * 1024 + 1024) * 2, 8 * 1024 * 2)
    # fused_add_rms_norm: x, residual, weight read; out, residual_out written
    assert bk.traffic_bytes("fused_add_rms_norm", 4, 256, 4) == ((2 * 1024 + 256) * 4, 2 * 1024 * 4)
    with pytest.raises(ValueError, match="no traffic model"):
        bk.traffic_bytes("softmax", 1, 1, 4)


def test_bandwidth_and_copy_size(bk: ModuleType) -> None:
    assert bk.bandwidth_gbs(3_000_000_000, 1.0) == pytest.approx(3.0)
    assert bk.bandwidth_gbs(10, 0.0) == 0.0
    # a copy moving the same bytes reads half and writes half
    read, written = bk.traffic_bytes("bias_gelu", 1024, 4096, 2)
    n = bk.copy_elements(read, written, 2)
    assert 2 * n * 2 == pytest.approx(read + written, abs=4)


def test_size_list_respects_int32_and_memory_cap(bk: ModuleType) -> None:
    sizes = bk.size_list(quick=False, cols=4096)
    assert sizes == sorted(sizes) and len(sizes) == len(bk.SIZES)
    assert max(sizes) <= 2**31 - 1
    assert all(n % 4096 == 0 for n in sizes)
    capped = bk.size_list(quick=False, max_gib=1.0, cols=4096, elem_bytes=4)
    assert max(capped) * 4 <= 2**30 and len(capped) < len(sizes)
    assert bk.size_list(quick=True, cols=256) == [2**12, 2**16]
    # a row wider than the smallest size still gives one whole row
    assert bk.size_list(quick=True, cols=2**13)[0] == 2**13


def test_plan_repetitions(bk: ModuleType) -> None:
    inner, samples = bk.plan_repetitions(2e-6)  # a 2 µs kernel: batch 100 per sample
    assert inner == 100 and bk.MIN_SAMPLES <= samples <= bk.MAX_SAMPLES
    inner, samples = bk.plan_repetitions(0.05)  # 50 ms: one per sample, the minimum sample count
    assert (inner, samples) == (1, bk.MIN_SAMPLES)
    assert bk.plan_repetitions(0.0)[0] == bk.MAX_INNER


def _result(bk: ModuleType, op: str, dtype: str, rows: int, kernel_s: float, copy_s: float,
            eager_s: float | None = None, l2: int = 50 * 2**20):
    return bk.make_result(op, dtype, rows, 4096, kernel_s, copy_s, eager_s, l2, "cuda-graph+events")


def test_make_result_ratios(bk: ModuleType) -> None:
    r = _result(bk, "bias_gelu", "fp16", 2**18, kernel_s=1.0e-3, copy_s=0.9e-3, eager_s=3e-3)
    total = r.bytes_read + r.bytes_written
    assert r.kernel_gbs == pytest.approx(total / 1e-3 / 1e9)
    assert r.kernel_vs_copy == pytest.approx(0.9)
    assert r.eager_vs_copy == pytest.approx(0.3)
    assert r.speedup_vs_eager == pytest.approx(3.0)
    assert not r.cache_resident
    small = _result(bk, "bias_gelu", "fp16", 16, 1e-6, 1e-6)
    assert small.cache_resident and small.eager_ms is None and small.speedup_vs_eager is None


def test_copy_reference_is_the_faster_copy(bk: ModuleType) -> None:
    # at >= 1 GiB on an H200 cudaMemcpyAsync (copy engines) is slower than an SM copy kernel: the SM copy counts
    assert bk.copy_reference(2.0e-3, 1.3e-3) == (1.3e-3, "sm")
    assert bk.copy_reference(1.0e-3, 1.3e-3) == (1.0e-3, "memcpy")
    assert bk.copy_reference(None, 2e-3) == (2e-3, "sm")
    with pytest.raises(ValueError, match="at least one"):
        bk.copy_reference(None, 0.0)
    assert bk.sm_copy_words(10) == 3 and bk.sm_copy_words(0) == 1 and bk.sm_copy_words(4 * 2**30) == 2**30


def test_make_result_reports_both_copies_and_uses_the_faster(bk: ModuleType) -> None:
    r = bk.make_result("bias_gelu", "fp16", 2**18, 4096, 1.0e-3, None, None, 50 * 2**20, "cuda-graph+events",
                       memcpy_s=1.5e-3, sm_copy_s=1.0e-3)
    total = r.bytes_read + r.bytes_written
    assert r.copy_reference == "sm" and r.copy_ms == pytest.approx(1.0)
    assert r.memcpy_gbs == pytest.approx(total / 1.5e-3 / 1e9)
    assert r.sm_copy_gbs == pytest.approx(r.copy_gbs) and r.kernel_vs_copy == pytest.approx(1.0)
    # with the slower memcpy as reference this kernel would read 1.5: the bug the faster reference removes
    assert r.kernel_gbs / r.memcpy_gbs == pytest.approx(1.5)
    fast_memcpy = bk.make_result("bias_gelu", "fp16", 2**18, 4096, 1.0e-3, None, None, 50 * 2**20, "x",
                                 memcpy_s=0.8e-3, sm_copy_s=1.0e-3)
    assert fast_memcpy.copy_reference == "memcpy" and fast_memcpy.kernel_vs_copy == pytest.approx(0.8)
    text = bk.format_table([r])
    assert "memcpy GB/s" in text and "SM copy GB/s" in text
    assert f"{r.memcpy_gbs:.1f}" in text.splitlines()[2].split()
    summary = bk.goal_summary([r])
    assert summary[0]["copy_reference"] == "sm"
    assert "copy = sm" in bk.format_summary(summary, "NVIDIA H200")


def test_goal_summary_uses_largest_dram_bound_size(bk: ModuleType) -> None:
    results = [
        _result(bk, "bias_gelu", "fp32", 16, 1e-6, 2e-6),  # cache resident, ratio 2.0: must not count
        _result(bk, "bias_gelu", "fp32", 2**16, 1.0, 0.80),  # 2 GiB traffic: ratio 0.80 < 0.85
        _result(bk, "fused_add_rms_norm", "bf16", 2**16, 1.0, 0.80),  # ratio 0.80 >= 0.75
        _result(bk, "fused_add_rms_norm", "fp16", 16, 1e-6, 1e-6),  # nothing DRAM-bound
    ]
    summary = {(s["op"], s["dtype"]): s for s in bk.goal_summary(results)}
    assert summary[("bias_gelu", "fp32")]["kernel_vs_copy"] == pytest.approx(0.8)
    assert summary[("bias_gelu", "fp32")]["meets_goal"] is False
    assert summary[("fused_add_rms_norm", "bf16")]["meets_goal"] is True
    assert summary[("fused_add_rms_norm", "fp16")]["meets_goal"] is None
    text = bk.format_summary(bk.goal_summary(results), "NVIDIA H100")
    assert text.splitlines()[0] == "SUMMARY bench_kernels on NVIDIA H100"
    assert "FAIL" in text and "PASS" in text and "n/a" in text


def test_format_table(bk: ModuleType) -> None:
    results = [_result(bk, "bias_gelu", "fp16", 2**10, 1e-4, 1e-4, 2e-4),
               _result(bk, "fused_add_rms_norm", "fp32", 2**18, 4e-3, 3e-3)]
    lines = bk.format_table(results).splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert lines[2].startswith("bias_gelu") and "2.00x" in lines[2]
    assert lines[3].split()[0] == "fused_add_rms_norm" and "0.75" in lines[3].split()


def test_human_bytes(bk: ModuleType) -> None:
    assert bk.human_bytes(512) == "512 B"
    assert bk.human_bytes(1536) == "1.5 KiB"
    assert bk.human_bytes(4 * 2**30) == "4.0 GiB"


def test_parse_args_rejects_unknown(bk: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bk.parse_args(["--dtypes", "fp8"])
    with pytest.raises(SystemExit):
        bk.parse_args(["--ops", "softmax"])
    args = bk.parse_args(["--ops", "bias_gelu", "--dtypes", "fp16,bf16", "--out", "x"])
    assert args.ops == ["bias_gelu"] and args.dtypes == ["fp16", "bf16"]


@pytest.mark.skipif(not deps.has_torch() or deps.find_nvcc() is None,
                    reason="the op library build needs torch and nvcc (PTX is built with it)")
def test_cpu_smoke_run_writes_json_table_and_plot(tmp_path: Path, run_python) -> None:
    proc = run_python([str(SCRIPT), "--device", "cpu", "--quick", "--ops", "bias_gelu", "--dtypes", "fp32",
                       "--out", str(tmp_path)], timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "kernels.json").read_text())
    assert [r["rows"] * r["cols"] for r in data["results"]] == [2**12, 2**16]
    first = data["results"][0]
    assert first["op"] == "bias_gelu" and first["kernel_ms"] > 0 and first["copy_ms"] > 0
    # both copies timed; the reference is the faster one
    assert first["memcpy_gbs"] > 0 and first["sm_copy_gbs"] > 0
    assert first["copy_gbs"] == pytest.approx(max(first["memcpy_gbs"], first["sm_copy_gbs"]))
    assert first["copy_reference"] == ("sm" if first["sm_copy_gbs"] > first["memcpy_gbs"] else "memcpy")
    # the kernel agrees with its decomposition where the script checks it
    assert first["max_abs_error"] is not None and first["max_abs_error"] < 1e-4
    assert (tmp_path / "kernels.txt").read_text().count("bias_gelu") >= 3
    assert "SUMMARY bench_kernels on CPU" in proc.stdout
    if deps.is_installed("matplotlib"):
        assert (tmp_path / "kernels.png").read_bytes()[:4] == b"\x89PNG"
