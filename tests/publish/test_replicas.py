"""Three real tritonserver replicas on one published s3:// repository (moto's S3 server on 127.0.0.1), each checked
by ``trtrepo check`` against eager PyTorch; one killed mid-check fails within a bounded time; and ``trtrepo check
--repository s3://...`` starting its own server from the URL.

Until ``check`` takes several endpoints (another change), each replica gets a check of its own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from trtrepo.cli import main

pytestmark = [pytest.mark.triton, pytest.mark.integration]

REPLICAS = 3
KILLED_CHECK_BOUND_S = 60.0  # the check of a replica killed mid-run must end (exit 1) well within this


@pytest.fixture(scope="module")
def published_url(gelu_repository: Path, s3_endpoint: str, make_bucket: Any) -> str:
    """The example published to a fresh bucket: Triton's ``s3://http://HOST:PORT/bucket/prefix`` form."""
    from trtrepo.publish import publish

    bucket = make_bucket()
    publish(gelu_repository, f"s3://{bucket}/prod", endpoint_url=s3_endpoint)
    return f"s3://{s3_endpoint}/{bucket}/prod"


@pytest.fixture(scope="module")
def replicas(published_url: str, tritonserver_available: None) -> Iterator[list[Any]]:
    """Three tritonservers started at once on the URL (each verifies the repository first), stopped at the end."""
    from trtrepo.serve import TritonServer

    servers = [TritonServer(published_url, startup_timeout=150) for _ in range(REPLICAS)]
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(lambda s: s.start(), servers))
        for server in servers:
            assert f"--model-repository={published_url}" in server.command
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_check_passes_on_every_replica(replicas: list[Any], gelu_spec: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for server in replicas:
        code = main(["check", str(gelu_spec), "--url-http", server.http_url, "--url-grpc", server.grpc_url])
        out, err = capsys.readouterr()
        assert code == 0, f"replica {server.http_url}:\n{out}\n{err[-3000:]}"
        assert "parity: PASS" in err and "FAIL" not in out


def test_a_replica_killed_mid_check_fails_its_check_within_a_bounded_time(
        replicas: list[Any], gelu_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim, survivor = replicas[-1], replicas[0]
    killed = threading.Event()

    def kill_after_first_answer() -> None:  # mid-run: once the victim has answered a request of this check
        before = _successes(victim)
        deadline = time.monotonic() + KILLED_CHECK_BOUND_S
        while time.monotonic() < deadline:
            if _successes(victim) > before:
                victim.kill()
                killed.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_after_first_answer, daemon=True)
    watcher.start()
    started = time.monotonic()
    code = main(["check", str(gelu_spec), "--url-http", victim.http_url, "--protocol", "http"])
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    watcher.join(5)
    assert killed.is_set(), "the victim was never seen answering a request"
    assert code == 1, out + err
    assert took < KILLED_CHECK_BOUND_S, f"check of a dead replica took {took:.0f} s"
    assert f"error: http {victim.http_url}: " in err and "server not reachable" in err, err[-2000:]  # names it
    assert "parity: PASS" not in err
    # the other replicas keep serving
    assert main(["check", str(gelu_spec), "--url-http", survivor.http_url, "--protocol", "http"]) == 0
    capsys.readouterr()


def test_check_starts_its_own_server_on_the_url(published_url: str, gelu_spec: Path, tritonserver_available: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(gelu_spec), "--repository", published_url, "--protocol", "http"])
    out, err = capsys.readouterr()
    assert code == 0, out + err[-3000:]
    assert f"--model-repository={published_url}" in err and "verify: 8 objects" in err


def _successes(server: Any) -> int:
    try:
        with urllib.request.urlopen(f"http://{server.http_url}/v2/models/gelu_block/stats", timeout=1) as resp:
            stats = json.loads(resp.read())
    except OSError:
        return 0
    return sum(int(m.get("inference_stats", {}).get("success", {}).get("count", 0)) for m in stats["model_stats"])
