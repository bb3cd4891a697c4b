"""Fixtures for object-storage tests: a real S3-compatible HTTP server (moto's server mode) on 127.0.0.1, started and
stopped here, and the bundled gelu_block example built (target torch) into a temporary repository.

moto keeps objects in memory; each test gets its own bucket (:func:`bucket`), so tests never see each other's
objects. The AWS_* variables are dummies for moto, set for the session and restored after it (boto3 and
tritonserver read credentials only from the environment chain).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
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


# ------------------------------------------------------------------------------------ GCS and Azure Blob servers
AZURITE_MAIN = REPO / ".ci_node" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
AZURITE_ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account and key (public, not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SERVER_START_S = 30.0


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a gcp-storage-emulator (a real GCS JSON-API HTTP server, in-memory) running in a
    thread of this process; ``STORAGE_EMULATOR_HOST`` points the SDK at it for the session."""
    if not (deps.is_installed("gcp_storage_emulator") and deps.is_installed("google.cloud.storage")):
        pytest.skip("gcp-storage-emulator / google-cloud-storage not installed (pip install 'trtrepo[test]')")
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    port = server._api._httpd.server_address[1]  # bound to port 0: the emulator keeps the socket here
    try:
        with _environment(STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{port}"):
            yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of Azurite's Blob service (node, in-memory, a port of its choosing), started and
    stopped here; ``AZURE_STORAGE_CONNECTION_STRING`` names it for the session."""
    node = shutil.which("node")
    if node is None or not AZURITE_MAIN.is_file() or not deps.is_installed("azure.storage.blob"):
        pytest.skip(f"Azurite needs node ({node or 'not on PATH'}), {AZURITE_MAIN} (.ci/run: npm install azurite) and "
                    "azure-storage-blob")
    work = tmp_path_factory.mktemp("azurite")
    log = work / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([node, str(AZURITE_MAIN), "--blobHost", "127.0.0.1", "--blobPort", "0",
                                 "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--disableTelemetry"],
                                cwd=work, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not (found := re.search(r"listens on (http://127\.0\.0\.1:\d+)", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Azurite did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        endpoint = found.group(1)
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};")
        with _environment(AZURE_STORAGE_CONNECTION_STRING=connection):
            yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def make_gcs_bucket(gcs_endpoint: str) -> Callable[[], str]:
    """Creates a fresh bucket on the GCS emulator; returns its name."""
    from google.cloud import storage

    client = storage.Client(project="trtrepo-test")

    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        client.create_bucket(name)
        return name

    return make


@pytest.fixture(scope="session")
def make_azure_container(azurite_endpoint: str) -> Callable[[], str]:
    """Creates a fresh container on Azurite; returns its name."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])

    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        service.create_container(name)
        return name

    return make
