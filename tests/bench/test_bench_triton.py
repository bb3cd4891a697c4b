"""A real, tiny ``trtrepo bench``: build the annotated example (torch target, CPU), serve it with tritonserver, sweep
two concurrency levels and two batch sizes with trtrepo's own load loop, against eager on the same inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = """
import sys
from trtrepo.bench import run_bench
report = run_bench(sys.argv[1], concurrency=(1, 2), requests=12, batch_sizes=[1, 4], repository=sys.argv[2],
                   report_path=sys.argv[3], plot_dir=sys.argv[4], max_seconds=60)
print(report.table())
"""


@pytest.mark.integration
@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.usefixtures("serving_stack")
def test_tiny_real_bench(tmp_path: Path, repo_root: Path, run_python, subprocess_env: dict[str, str]) -> None:
    spec = repo_root / "examples" / "annotated" / "model.yaml"
    repo = tmp_path / "repo"
    built = run_python(["-m", "trtrepo", "build", str(spec), "--out", str(repo), "--target", "torch"], timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    subprocess_env["TRTREPO_PERF_ANALYZER"] = "0"  # the own load loop, whether or not perf_analyzer is installed
    report_path = tmp_path / "bench.json"
    proc = run_python(["-c", BENCH, str(spec), str(repo), str(report_path), str(tmp_path / "plots")], timeout=600)
    del subprocess_env["TRTREPO_PERF_ANALYZER"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report_path.read_text())
    rows = data["rows"]
    assert [(r["batch_size"], r["concurrency"]) for r in rows] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    for r in rows:
        assert r["model"] == "annotated_block" and r["client"] == "trtrepo-loop" and r["fallback"] is None
        assert r["errors"] == 0
        assert r["served"]["count"] == 12
        assert 0 < r["served"]["p50_ms"] <= r["served"]["p90_ms"] <= r["served"]["p99_ms"]
        assert r["served_ips"] > 0
        assert r["eager"]["p50_ms"] > 0 and r["p50_ratio"] == pytest.approx(r["served"]["p50_ms"] /
                                                                          r["eager"]["p50_ms"])
        assert r["server_compute_ms"] is not None and r["server_compute_ms"] > 0
    assert data["environment"]["tritonserver"]
    assert data["device"] == "cpu"
    assert "annotated_block" in proc.stdout
    assert (tmp_path / "plots" / "bench_latency.png").is_file()

    # the same server path over gRPC: every timed request went there (the server counted them all)
    grpc_path = tmp_path / "bench_grpc.json"
    subprocess_env["TRTREPO_PERF_ANALYZER"] = "0"
    proc = run_python(["-c", BENCH.replace("max_seconds=60", "max_seconds=60, protocol='grpc'")
                       .replace("concurrency=(1, 2)", "concurrency=(1,)").replace("[1, 4]", "[1]"),
                       str(spec), str(repo), str(grpc_path), str(tmp_path / "plots_grpc")], timeout=600)
    del subprocess_env["TRTREPO_PERF_ANALYZER"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    grpc = json.loads(grpc_path.read_text())
    assert grpc["environment"]["protocol"] == "grpc"
    (row,) = grpc["rows"]
    assert row["served"]["count"] == 12 and row["errors"] == 0
    assert row["breakdown"]["server_requests"] == row["breakdown"]["client_requests"] == 12

    # perf_analyzer that cannot stabilise (as 2.60 did at concurrency 16 on an H200: the text, exit 0, no CSV): every
    # level is measured by the own loop with one warning each, and the bench succeeds.
    fake = tmp_path / "bin" / "perf_analyzer"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nprint('Failed to obtain stable measurement within 5 measurement windows "
                    "for concurrency 16. Please try to increase the --measurement-request-count.')\n")
    fake.chmod(0o755)
    subprocess_env["TRTREPO_PERF_ANALYZER"] = str(fake)
    fallback_path = tmp_path / "bench_fallback.json"
    proc = run_python(["-c", BENCH, str(spec), str(repo), str(fallback_path), str(tmp_path / "plots2")], timeout=600)
    del subprocess_env["TRTREPO_PERF_ANALYZER"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(fallback_path.read_text())
    assert data["environment"]["perf_analyzer"] == str(fake)
    assert len(data["rows"]) == 4
    for r in data["rows"]:
        assert r["client"] == "trtrepo-loop" and r["errors"] == 0 and r["served"]["count"] == 12
        assert r["fallback"].startswith("perf_analyzer: Failed to obtain stable measurement"), r["fallback"]
    warnings = [line for line in proc.stderr.splitlines() if "measuring this level with trtrepo-loop" in line]
    assert len(warnings) == 4, proc.stderr[-3000:]
    assert any("4 level(s) measured by trtrepo-loop" in n for n in data["notes"]), data["notes"]
