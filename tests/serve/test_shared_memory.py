"""System shared memory against a real tritonserver: check and bench through registered regions, nothing left behind.

One server (module scope) on the built gelu example; every test asks it, after the run, which regions are still
registered and looks into /dev/shm for trtrepo segments: none may remain, also after Ctrl-C. A SIGKILLed client
leaves its server registrations (and maybe segments); the next client removes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.triton

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(gelu_project: Path, tritonserver_available: None) -> Iterator[Any]:
    from trtrepo.serve import TritonServer

    with TritonServer(gelu_project.parent / "repo") as running:
        yield running


def _registered(url: str) -> list[str]:
    """Names of the system shared memory regions the server holds now."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    try:
        return sorted(str(r["name"]) for r in client.get_system_shared_memory_status())
    finally:
        client.close()


def _ours(names: list[str], pid: int) -> list[str]:
    return [n for n in names if n.startswith(f"trtrepo-shm-{pid}-")]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_client_registers_reuses_grows_and_frees_its_regions(server: Any, protocol: str) -> None:
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.runners.triton_shm import segments

    url = server.http_url if protocol == "http" else server.grpc_url
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    big = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    with TritonClient(protocol, url) as plain:
        expected, expected_big = (plain.infer("gelu_block", {"x": a}, ["y"]).outputs["y"] for a in (x, big))
    with TritonClient(protocol, url, shared_memory="system") as client:
        got = client.infer("gelu_block", {"x": x}, ["y"]).outputs["y"]
        np.testing.assert_array_equal(got, expected)
        live = _ours(_registered(server.http_url), os.getpid())
        assert len(live) == 2 and any("-in-x" in n for n in live) and any("-out-y" in n for n in live), live
        assert len(segments(os.getpid())) == 2
        # An output region smaller than what the server writes: the server refuses the request, the region grows
        # to the size the server names, the request goes once more.
        transport = client._shm
        transport.close()  # frees both regions; the next request registers new ones
        assert _ours(_registered(server.http_url), os.getpid()) == []
        transport.size_outputs_like_inputs = False
        transport.min_output_bytes = 16
        got_big = client.infer("gelu_block", {"x": big}, ["y"]).outputs["y"]
        np.testing.assert_array_equal(got_big, expected_big)
        assert transport._outputs["y"].byte_size == big.nbytes  # grown to exactly what the server asked for
        assert len(_ours(_registered(server.http_url), os.getpid())) == 2  # replaced, not added
    assert _ours(_registered(server.http_url), os.getpid()) == []
    assert segments(os.getpid()) == []


def test_check_over_system_shared_memory_matches_eager(gelu_project: Path, server: Any, tmp_path: Path) -> None:
    from trtrepo.check import run_check
    from trtrepo.runners.triton_shm import segments

    report = run_check(gelu_project, url_http=server.http_url, url_grpc=server.grpc_url, shared_memory="system",
                       report_path=tmp_path / "report.json", progress=lambda _: None)
    assert report.passed, report.table()
    assert {c.protocol for c in report.cases} == {"http", "grpc"}
    assert any(c.case.startswith("ragged") for c in report.cases)  # concurrent clients, one region set each
    assert report.environment["shared_memory"] == "system"
    assert _ours(_registered(server.http_url), os.getpid()) == []
    assert segments(os.getpid()) == []


def _check_process(gelu_project: Path, server: Any, tmp_path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "trtrepo", "check", str(gelu_project), "--url-http", server.http_url,
           "--url-grpc", server.grpc_url, "--shared-memory", "system", "--report", str(tmp_path / "r.json")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)


def _stopped_with_segments(proc: subprocess.Popen[str], url: str, timeout: float = 180) -> list[Path]:
    """Poll until the child holds segments registered with the server, then freeze it (SIGSTOP) while it still
    does (a segment exists a moment before its registration); its segments."""
    from trtrepo.runners.triton_shm import segments

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if segments(proc.pid):
            proc.send_signal(signal.SIGSTOP)
            time.sleep(0.05)  # the stop takes effect
            found = segments(proc.pid)
            if found and _ours(_registered(url), proc.pid):
                return found
            proc.send_signal(signal.SIGCONT)  # not yet registered, or closed in between: look again
        time.sleep(0.002)
    return []


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_stopped_check_leaves_no_segments(gelu_project: Path, server: Any, tmp_path: Path,
                                          how: signal.Signals) -> None:
    from trtrepo.runners.triton_shm import remove_stale_segments, segments

    proc = _check_process(gelu_project, server, tmp_path)
    try:
        found = _stopped_with_segments(proc, server.http_url)
        assert found, f"no region appeared (exit {proc.poll()}): {proc.stdout.read() if proc.stdout else ''}"
        proc.send_signal(how)  # delivered while it is stopped in the middle of its requests
        proc.send_signal(signal.SIGCONT)
        code = proc.wait(60)
        output = proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if how == signal.SIGINT:
        assert code == 130, output[-2000:]
        assert segments(proc.pid) == [], output[-2000:]
        assert _ours(_registered(server.http_url), proc.pid) == []
    else:  # nothing of the killed process runs: its registrations stay on the server until the next client
        assert code == -signal.SIGKILL
        assert _ours(_registered(server.http_url), proc.pid), "the killed client's regions should be registered"
        remove_stale_segments()  # what Python's resource tracker did not unlink
        assert segments(proc.pid) == []
        from trtrepo.runners.triton_client import TritonClient

        with TritonClient("http", server.http_url, shared_memory="system") as client:
            client.infer("gelu_block", {"x": np.zeros((1, 64), np.float32)}, ["y"])
            assert _ours(_registered(server.http_url), proc.pid) == []  # swept at its first region
        assert _ours(_registered(server.http_url), os.getpid()) == []


@pytest.mark.parametrize("shared_memory", ["none", "system"])
def test_bench_breakdown_parts_add_up(gelu_project: Path, server: Any, monkeypatch: pytest.MonkeyPatch,
                                      shared_memory: str) -> None:
    from trtrepo.bench import run_bench
    from trtrepo.runners.triton_shm import segments

    monkeypatch.setenv("TRTREPO_PERF_ANALYZER", "0")
    report = run_bench(gelu_project, concurrency=(1, 4), requests=40, batch_sizes=[1, 8], eager=False,
                       url_http=server.http_url, shared_memory=shared_memory, progress=lambda _: None)
    assert len(report.rows) == 4
    for row in report.rows:
        split = row.breakdown
        assert split is not None, row
        assert row.shared_memory == shared_memory and split.source == "triton-stats"
        assert split.client_requests == split.server_requests == 40  # warm-up excluded, every timed one counted
        parts = (split.queue_ms, split.compute_input_ms, split.compute_infer_ms, split.compute_output_ms)
        assert all(p >= 0 for p in parts), split
        assert split.compute_infer_ms > 0
        assert sum(parts) <= split.client_ms, split
        assert split.rest_ms == pytest.approx(split.client_ms - sum(parts))
        assert split.client_ms == pytest.approx(row.served.mean_ms)
    table = report.breakdown_table()
    assert "c.infer" in table and shared_memory in table
    data = report.to_dict()
    assert data["rows"][0]["breakdown"]["rest_ms"] == pytest.approx(report.rows[0].breakdown.rest_ms)
    assert data["environment"]["shared_memory"] == shared_memory
    assert segments(os.getpid()) == [] and _ours(_registered(server.http_url), os.getpid()) == []


def test_ctrl_c_mid_request_unregisters_once_the_server_lets_go(server: Any) -> None:
    """Ctrl-C during a request: the server still runs it and refuses to unregister a region in use; close waits."""
    import threading

    from trtrepo._signals import Interrupted, stop_on_signals
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.runners.triton_shm import segments

    x = np.zeros((8, 64), np.float32)
    for trial in range(8):  # the signal lands at different points of the request loop
        timer = threading.Timer(0.05 + 0.013 * trial, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(Interrupted), stop_on_signals(), \
                TritonClient("http", server.http_url, shared_memory="system") as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                client.infer("gelu_block", {"x": x}, ["y"])
        timer.join()
        assert _ours(_registered(server.http_url), os.getpid()) == [], f"trial {trial}"
        assert segments(os.getpid()) == [], f"trial {trial}"
