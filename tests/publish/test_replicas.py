"""Three real tritonserver replicas on one published s3:// repository (moto's S3 server on 127.0.0.1), checked by
one ``trtrepo check`` over the three against eager PyTorch; one killed mid-check is reported by name within a
bounded time while the others are still checked; and ``trtrepo check --repository s3://...`` starting its own server
from the URL.
"""

from __future__ import annotations

import json
import threading
import time
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


def _over(replicas: list[Any]) -> list[str]:
    return [a for server in replicas for a in ("--url-http", server.http_url, "--url-grpc", server.grpc_url)]


def test_one_check_over_the_three_replicas_passes(replicas: list[Any], gelu_spec: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code = main(["check", str(gelu_spec), *_over(replicas), "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, f"{out}\n{err[-3000:]}"
    entries = json.loads(report.read_text())["replicas"]
    assert [e["http"] for e in entries] == [s.http_url for s in replicas]
    assert all(e["requests"] > 0 and e["failed"] == 0 and not e["error"] for e in entries), entries


def test_a_replica_killed_mid_check_is_named_and_the_others_still_pass(
        replicas: list[Any], gelu_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from trtrepo.runners.triton_client import TritonClient

    victim = replicas[-1]
    killed = threading.Event()
    infer = TritonClient.infer

    def kill_after_first_answer(self: TritonClient, *args: Any, **kwargs: Any) -> Any:
        """Mid-run, deterministically: the victim answers one request of this check, then dies (SIGKILL, reaped)
        before the next request is sent. A poller racing the check lost on a fast machine (the check took 0.3 s)."""
        reply = infer(self, *args, **kwargs)
        if self.url == victim.http_url and not killed.is_set():
            victim.kill()
            assert victim.process is not None
            victim.process.wait(30)
            killed.set()
        return reply

    monkeypatch.setattr(TritonClient, "infer", kill_after_first_answer)
    report = tmp_path / "report.json"
    started = time.monotonic()
    code = main(["check", str(gelu_spec), *_over(replicas), "--protocol", "http", "--report", str(report)])
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert killed.is_set(), "the victim was never seen answering a request"
    assert code == 1, out + err
    assert took < KILLED_CHECK_BOUND_S, f"check with a dead replica took {took:.0f} s"
    entries = {e["http"]: e for e in json.loads(report.read_text())["replicas"]}
    assert entries[victim.http_url]["error"], entries  # taken out of the run, with its error
    assert f"FAIL replica {entries[victim.http_url]['name']}" in out
    for server in replicas[:-1]:  # the others kept being checked, and passed
        assert entries[server.http_url]["requests"] > 0 and entries[server.http_url]["failed"] == 0
        assert not entries[server.http_url]["error"]


def test_check_starts_its_own_server_on_the_url(published_url: str, gelu_spec: Path, tritonserver_available: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(gelu_spec), "--repository", published_url, "--protocol", "http"])
    out, err = capsys.readouterr()
    assert code == 0, out + err[-3000:]
    assert f"--model-repository={published_url}" in err and "verify: 8 objects" in err
