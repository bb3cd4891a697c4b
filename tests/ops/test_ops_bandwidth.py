"""trtrepo/ops/bandwidth.py (``trtrepo bench kernels``): the traffic model from op.yaml (shape patterns and output
rules, never op names), sizes, ratios, goals, tables, and a CPU smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trtrepo import deps
from trtrepo.ops import bandwidth
from trtrepo.ops.description import OpDescription, discover_ops

REPO = Path(__file__).resolve().parents[2]
OPS = discover_ops([REPO / "plugin_src"])
GELU, RMS, SWIGLU = OPS["trtrepo::bias_gelu"], OPS["trtrepo::fused_add_rms_norm"], OPS["trtrepo::silu_and_mul"]


@pytest.fixture(scope="module")
def bk() -> ModuleType:
    return bandwidth


def test_traffic_model_from_op_yaml(bk: ModuleType, write_op) -> None:
    # bias_gelu: x and bias read, out written
    assert bk.traffic_bytes(GELU, 8, 1024, "fp16") == ((8 * 1024 + 1024) * 2, 8 * 1024 * 2)
    # fused_add_rms_norm: x, residual, weight read; out, residual_out written
    assert bk.traffic_bytes(RMS, 4, 256, "fp32") == ((2 * 1024 + 256) * 4, 2 * 1024 * 4)
    # silu_and_mul: x [rows, 2H] read, out [rows, H] written (its rule halves the last dim)
    assert bk.traffic_bytes(SWIGLU, 4, 256, "bf16") == (4 * 256 * 2, 4 * 128 * 2)
    # a user's op: an fp32 output of another shape than the fp16 input
    pool = write_op('name: ns::pool\nschema: "pool(Tensor x) -> Tensor"\ninputs: [{name: x, shape: [..., D]}]\n'
                    'outputs:\n  - {name: y, shape: "x[:-1] + [2]", dtype: fp32}\ndtypes: [fp16]\n')
    assert bk.traffic_bytes(pool, 10, 64, "fp16") == (10 * 64 * 2, 10 * 2 * 4)


def test_bandwidth_and_copy_size(bk: ModuleType) -> None:
    assert bk.bandwidth_gbs(3_000_000_000, 1.0) == pytest.approx(3.0)
    assert bk.bandwidth_gbs(10, 0.0) == 0.0
    # a copy moving the same bytes reads half and writes half
    read, written = bk.traffic_bytes(GELU, 1024, 4096, "fp16")
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


def _result(bk: ModuleType, op: OpDescription, dtype: str, rows: int, kernel_s: float, copy_s: float,
            eager_s: float | None = None, l2: int = 50 * 2**20):
    return bk.make_result(op, dtype, rows, 4096, kernel_s, copy_s, eager_s, l2, "cuda-graph+events")


def test_make_result_ratios(bk: ModuleType) -> None:
    r = _result(bk, GELU, "fp16", 2**18, kernel_s=1.0e-3, copy_s=0.9e-3, eager_s=3e-3)
    total = r.bytes_read + r.bytes_written
    assert r.kernel_gbs == pytest.approx(total / 1e-3 / 1e9)
    assert r.kernel_vs_copy == pytest.approx(0.9)
    assert r.eager_vs_copy == pytest.approx(0.3)
    assert r.speedup_vs_eager == pytest.approx(3.0)
    assert not r.cache_resident
    small = _result(bk, GELU, "fp16", 16, 1e-6, 1e-6)
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
    r = bk.make_result(GELU, "fp16", 2**18, 4096, 1.0e-3, None, None, 50 * 2**20, "cuda-graph+events",
                       memcpy_s=1.5e-3, sm_copy_s=1.0e-3)
    total = r.bytes_read + r.bytes_written
    assert r.copy_reference == "sm" and r.copy_ms == pytest.approx(1.0)
    assert r.memcpy_gbs == pytest.approx(total / 1.5e-3 / 1e9)
    assert r.sm_copy_gbs == pytest.approx(r.copy_gbs) and r.kernel_vs_copy == pytest.approx(1.0)
    # with the slower memcpy as reference this kernel would read 1.5: the bug the faster reference removes
    assert r.kernel_gbs / r.memcpy_gbs == pytest.approx(1.5)
    fast_memcpy = bk.make_result(GELU, "fp16", 2**18, 4096, 1.0e-3, None, None, 50 * 2**20, "x",
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
        _result(bk, GELU, "fp32", 16, 1e-6, 2e-6),  # cache resident, ratio 2.0: must not count
        _result(bk, GELU, "fp32", 2**16, 1.0, 0.80),  # 2 GiB traffic: ratio 0.80 < 0.85
        _result(bk, RMS, "bf16", 2**16, 1.0, 0.80),  # ratio 0.80 >= 0.75
        _result(bk, RMS, "fp16", 16, 1e-6, 1e-6),  # nothing DRAM-bound
    ]
    goals = {GELU.name: 0.85, RMS.name: 0.75}
    summary = {(s["op"], s["dtype"]): s for s in bk.goal_summary(results, goals)}
    assert summary[(GELU.name, "fp32")]["kernel_vs_copy"] == pytest.approx(0.8)
    assert summary[(GELU.name, "fp32")]["meets_goal"] is False
    assert summary[(RMS.name, "bf16")]["meets_goal"] is True
    assert summary[(RMS.name, "fp16")]["meets_goal"] is None
    assert bk.goal_summary(results)[0]["meets_goal"] is None  # no goal given: nothing judged
    assert "not judged (no goal given)" in bk.format_summary(bk.goal_summary(results), "cpu")
    text = bk.format_summary(bk.goal_summary(results, goals), "NVIDIA H100")
    assert text.splitlines()[0] == "SUMMARY bench_kernels on NVIDIA H100"
    assert "FAIL" in text and "PASS" in text and "n/a" in text


def test_format_table(bk: ModuleType) -> None:
    results = [_result(bk, GELU, "fp16", 2**10, 1e-4, 1e-4, 2e-4),
               _result(bk, RMS, "fp32", 2**18, 4e-3, 3e-3)]
    lines = bk.format_table(results).splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert lines[2].startswith(GELU.name) and "2.00x" in lines[2]
    assert lines[3].split()[0] == RMS.name and "0.75" in lines[3].split()


def test_human_bytes(bk: ModuleType) -> None:
    assert bk.human_bytes(512) == "512 B"
    assert bk.human_bytes(1536) == "1.5 KiB"
    assert bk.human_bytes(4 * 2**30) == "4.0 GiB"


def test_parse_args_rejects_unknown(bk: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bk.parse_args(["--dtypes", "fp8"])
    with pytest.raises(SystemExit):
        bk.parse_args(["--goal", "trtrepo::bias_gelu"])
    args = bk.parse_args(["plugin_src", "--ops", "trtrepo::bias_gelu", "--dtypes", "fp16,bf16", "--out", "x",
                          "--goal", "trtrepo::bias_gelu=0.85"])
    assert args.ops == ["trtrepo::bias_gelu"] and args.dtypes == ["fp16", "bf16"]
    assert args.goals == {"trtrepo::bias_gelu": 0.85} and args.roots == [Path("plugin_src")]


@pytest.mark.integration
@pytest.mark.skipif(not deps.has_torch() or deps.find_nvcc() is None,
                    reason="the op library build needs torch and nvcc (PTX is built with it)")
def test_cpu_smoke_run_writes_json_table_and_plot(tmp_path: Path) -> None:
    # a child process (it loads its own op library) with a cache of its own (the session's first build must stay
    # the first: tests/ops/test_ops_build.py counts its compiles)
    env = {**os.environ, "TRTREPO_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "trtrepo", "bench", "kernels", str(REPO / "plugin_src"), "--device", "cpu", "--quick",
           "--ops", "trtrepo::bias_gelu", "--dtypes", "fp32", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "kernels.json").read_text())
    assert [r["rows"] * r["cols"] for r in data["results"]] == [2**12, 2**16]
    first = data["results"][0]
    assert first["op"] == "trtrepo::bias_gelu" and first["kernel_ms"] > 0 and first["copy_ms"] > 0
    # both copies timed; the reference is the faster one
    assert first["memcpy_gbs"] > 0 and first["sm_copy_gbs"] > 0
    assert first["copy_gbs"] == pytest.approx(max(first["memcpy_gbs"], first["sm_copy_gbs"]))
    assert first["copy_reference"] == ("sm" if first["sm_copy_gbs"] > first["memcpy_gbs"] else "memcpy")
    # the kernel agrees with its decomposition where the script checks it
    assert first["max_abs_error"] is not None and first["max_abs_error"] < 1e-4
    assert (tmp_path / "out" / "kernels.txt").read_text().count("bias_gelu") >= 3
    assert "SUMMARY bench_kernels on CPU" in proc.stdout
    if deps.is_installed("matplotlib"):
        assert (tmp_path / "out" / "kernels.png").read_bytes()[:4] == b"\x89PNG"
