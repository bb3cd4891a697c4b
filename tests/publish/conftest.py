"""Fixtures for object-storage tests: a real S3-compatible HTTP server (moto's server mode) on 127.0.0.1, started and
stopped here, and the bundled gelu_block example built (target torch) into a temporary repository.

moto keeps objects in memory; each test gets its own bucket (:func:`bucket`), so tests never see each other's
objects. The AWS_* variables are dummies for moto, set for the session and restored after it (boto3 and
tritonserver read credentials only from the environment chain).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server running in this process (a thread), for the session."""
    if not (deps.is_installed("boto3") and deps.is_installed("moto")):
        pytest.skip("boto3 / moto[server] not installed (pip install 'trtrepo[test]')")
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 S3 client on the moto server (the test's own hands on the store: tampering, listing)."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture(scope="session")
def make_bucket(s3: Any) -> Callable[[], str]:
    """Creates a fresh bucket on the moto server and returns its name."""
    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def bucket(make_bucket: Callable[[], str]) -> str:
    """A fresh, empty bucket for one test."""
    return make_bucket()


@pytest.fixture(scope="session")
def gelu_repository(tmp_path_factory: pytest.TempPathFactory, session_cache: Path,
                 example_build_tools: None) -> Path:
    """examples/gelu_block built with target torch into a temporary folder, once per session (read-only use)."""
    from trtrepo.build import build

    out = tmp_path_factory.mktemp("publish") / "repo"
    build(REPO / "examples" / "gelu_block" / "model.yaml", out=out, target="torch")
    return out


@pytest.fixture(scope="session")
def gelu_spec(repo_root: Path) -> Path:
    """The example's model.yaml (what trtrepo check compares against)."""
    return repo_root / "examples" / "gelu_block" / "model.yaml"
