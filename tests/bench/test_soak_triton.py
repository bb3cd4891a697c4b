"""A small real fault soak: the annotated example (torch target, CPU) on a real tritonserver, killed and restarted
mid-run, with malformed requests of every kind interleaved: no good request lost, every bad one a clean error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.integration
@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.usefixtures("serving_stack")
def test_fault_soak_loses_nothing_and_rejects_bad_requests_cleanly(tmp_path: Path, repo_root: Path,
                                                                   run_python) -> None:
    spec = repo_root / "examples" / "annotated" / "model.yaml"
    repo = tmp_path / "repo"
    built = run_python(["-m", "trtrepo", "build", str(spec), "--out", str(repo), "--target", "torch"], timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    report = tmp_path / "soak.json"
    markdown = tmp_path / "soak.md"
    proc = run_python(["-m", "trtrepo", "bench", str(spec), "--soak", "--repository", str(repo), "--protocol", "grpc",
                       "--requests", "120", "--concurrency", "4", "--batch-sizes", "1,2,4", "--check-every", "10",
                       "--faults", "--bad-every", "5", "--restarts", "1", "--max-seconds", "240",
                       "--report", str(report), "--markdown", str(markdown)], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["passed"] and data["problems"] == []
    assert data["completed"] == data["requested"] == 120
    assert data["lost"] == data["good_failed"] == data["mismatches"] == 0
    assert data["outputs_checked"] == 12
    assert [r["ok"] for r in data["restarts"]] == [True]
    # the kill was felt: requests failed while the server was down and were retried, not lost
    assert data["unavailable_attempts"] > 0 and data["retried"] > 0
    assert data["transport_errors_outside_restart"] == 0
    assert set(data["bad"]) == {"wrong-name", "wrong-dtype", "wrong-rank", "batch-too-large"}
    for kind, stats in data["bad"].items():
        assert stats["sent"] >= 5 and stats["clean"] == stats["sent"], (kind, stats)
    assert data["server_alive_at_end"] is True
    assert "soak: PASS" in proc.stdout and "Verdict: PASS." in markdown.read_text()
