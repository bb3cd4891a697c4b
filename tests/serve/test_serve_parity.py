"""The whole chain on CPU with a real tritonserver: build (torch target) → serve → check over HTTP and gRPC.

Also: the harness fails on a wrong served model and names the output and the error size; rejected shapes,
unreachable URLs and a dead server end with a clear error, fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trtrepo.errors import ServeError

pytestmark = pytest.mark.triton

PROGRAM_CALL = "            outs = self.module(*[a.to(self.device, non_blocking=True) for a in args])\n"


@pytest.fixture(autouse=True)
def _tritonserver(tritonserver_available: None) -> None:
    """Every test here needs a tritonserver and tritonclient (skips with the reason otherwise)."""


def test_served_example_matches_eager_over_http_and_grpc(gelu_project: Path, tmp_path: Path) -> None:
    from trtrepo.check import run_check

    lines: list[str] = []
    report = run_check(gelu_project, report_path=tmp_path / "report.json", progress=lines.append)
    assert report.passed, report.table()
    protocols = {c.protocol for c in report.cases}
    assert protocols == {"http", "grpc"}
    cases = {c.case for c in report.cases}
    assert {"min", "opt", "max", "random-0", "random-1", "ragged-0"} <= cases
    shapes = {c.case: c.input_shapes["x"] for c in report.cases if c.protocol == "http"}
    assert shapes["min"] == [1, 64] and shapes["opt"] == [8, 64] and shapes["max"] == [32, 64]
    for protocol in ("http", "grpc"):  # the dynamic batcher really merged the concurrent ragged requests
        counts = report.batching["gelu_block"][protocol]
        assert counts["requests"] == 6 and counts["executions"] < 6
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["passed"] is True and data["summary"]["outputs"][0]["output"] == "y"
    assert data["cases"][0]["outputs"][0]["atol"] == 1e-4
    assert any(line.startswith("serve: ") and "tritonserver" in line for line in lines)


def test_harness_fails_when_served_output_is_off_by_0_1(gelu_project: Path, gelu_repo_copy: Path,
                                                       tmp_path: Path) -> None:
    from trtrepo.check import raise_for_failure, run_check
    from trtrepo.errors import ParityError

    model_py = gelu_repo_copy / "gelu_block" / "1" / "model.py"
    text = model_py.read_text()
    assert PROGRAM_CALL in text
    model_py.write_text(text.replace(PROGRAM_CALL, PROGRAM_CALL + "            outs = outs + 0.1\n"))
    report = run_check(gelu_project, repository=gelu_repo_copy, protocols=("http",), progress=lambda _: None,
                       report_path=tmp_path / "r.json", allow_modified=True)  # edited on purpose
    assert not report.passed
    failing = [o for c in report.cases for o in c.outputs if not o.passed]
    assert failing and {o.name for o in failing} == {"y"}
    assert all(o.max_abs_error == pytest.approx(0.1, abs=1e-5) for o in failing)
    assert all(o.violations == o.size for o in failing)
    assert "FAIL gelu_block http min output y:" in report.table()
    with pytest.raises(ParityError, match=r"output y: .*outside atol 0.0001"):
        raise_for_failure(report)


def test_rejected_shape_is_a_failed_case_not_a_crash(gelu_project: Path, tmp_path: Path) -> None:
    """The spec asks for batch 40; the served config allows 32: the server rejects it and the report says so."""
    from trtrepo.check import run_check
    from trtrepo.serve import TritonServer

    text = gelu_project.read_text().replace("max: [32, 64]", "max: [40, 64]").replace("max_batch_size: 32",
                                                                                      "max_batch_size: 40")
    spec = gelu_project.parent / "model_b40.yaml"
    spec.write_text(text)
    with TritonServer(gelu_project.parent / "repo") as server:
        report = run_check(spec, url_http=server.http_url, protocols=("http",), progress=lambda _: None)
    assert not report.passed
    failed = {c.case: c.error for c in report.failures()}
    assert "max" in failed and "batch" in failed["max"].lower()
    assert any(c.passed for c in report.cases)  # the shapes in range still matched


def test_unreachable_url_is_a_quick_serve_error(gelu_project: Path) -> None:
    from trtrepo.check import run_check
    from trtrepo.serve import free_port

    start = time.monotonic()
    with pytest.raises(ServeError, match="not reachable"):
        run_check(gelu_project, url_http=f"127.0.0.1:{free_port()}", protocols=("http",), progress=lambda _: None)
    with pytest.raises(ServeError, match="not reachable"):
        run_check(gelu_project, url_grpc=f"127.0.0.1:{free_port()}", protocols=("grpc",), progress=lambda _: None)
    assert time.monotonic() - start < 60


def test_dead_server_is_a_serve_error(gelu_repo_copy: Path) -> None:
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.serve import TritonServer

    server = TritonServer(gelu_repo_copy)
    with server:
        client = TritonClient("http", server.http_url, timeout=10)
        x = np.ones((2, 64), np.float32)
        assert client.infer("gelu_block", {"x": x}, ["y"]).outputs["y"].shape == (2, 64)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        start = time.monotonic()
        with pytest.raises(ServeError, match="not reachable"):
            client.infer("gelu_block", {"x": x}, ["y"])
        assert time.monotonic() - start < 15
        with pytest.raises(ServeError, match="died"):
            server.check_alive()


def test_startup_failure_names_the_model_error(tmp_path: Path) -> None:
    from trtrepo.serve import TritonServer

    model = tmp_path / "repo" / "broken"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "broken"\nbackend: "python"\nmax_batch_size: 0\n'
                                        'input [{ name: "x" data_type: TYPE_FP32 dims: [2] }]\n'
                                        'output [{ name: "y" data_type: TYPE_FP32 dims: [2] }]\n')
    (model / "1" / "model.py").write_text("raise RuntimeError('boom: weights missing')\n")
    start = time.monotonic()
    with pytest.raises(ServeError, match=r"(?s)during startup.*boom: weights missing"):
        TritonServer(tmp_path / "repo", startup_timeout=60).start()
    assert time.monotonic() - start < 60


def test_serve_cli_runs_until_ctrl_c(gelu_project: Path, tmp_path: Path) -> None:
    repo = gelu_project.parent / "repo"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "trtrepo", "serve", str(repo), "--http-port", "0", "--grpc-port", "0",
           "--metrics-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert lines and lines[-1].startswith("ready:"), "".join(lines)
        assert lines[0].startswith("$ ") and "--http-address=127.0.0.1" in lines[0]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130  # 128 + SIGINT, after the server stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_print_command_starts_nothing(gelu_project: Path) -> None:
    from trtrepo.serve import serve_forever

    out: list[str] = []
    assert serve_forever(gelu_project.parent / "repo", http_port=0, print_only=True, echo=out.append) == 0
    text = "\n".join(out)
    assert "tritonserver" in text and "--model-repository=" in text and "TRTREPO_PYTHONPATH=" in text
    assert "--load-model" not in text and "--model-control-mode" not in text
