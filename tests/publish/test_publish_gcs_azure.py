"""``trtrepo publish`` / ``--verify-only`` / ``fetch-plugins`` / ``deploy k8s`` on gs:// and as:// against real HTTP
servers on 127.0.0.1: gcp-storage-emulator (GCS JSON API) and Azurite (Azure Blob), started by the fixtures in
conftest.py. The test's own hands on the store (tampering) are the SDKs themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_publish_s3 import PLUGIN, _with_tensorrt_model

from trtrepo._hashing import sha256_file
from trtrepo.cli import main
from trtrepo.publish import publish

pytestmark = pytest.mark.integration
AZURITE_ACCOUNT = "devstoreaccount1"  # the account conftest.azurite_endpoint's connection string names


@dataclass
class Bucket:
    """A fresh bucket (container) of one store: its URL root and a way to overwrite one object behind trtrepo."""

    root: str
    put: Callable[[str, bytes], None]


@pytest.fixture(params=["gs", "as"])
def bucket_of(request: pytest.FixtureRequest) -> Bucket:
    if request.param == "gs":
        from google.cloud import storage

        name = request.getfixturevalue("make_gcs_bucket")()
        client = storage.Client(project="trtrepo-test")

        def put_gcs(key: str, data: bytes) -> None:
            client.bucket(name).blob(key).upload_from_string(data)

        return Bucket(f"gs://{name}", put_gcs)
    from azure.storage.blob import BlobServiceClient

    name = request.getfixturevalue("make_azure_container")()
    container = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client(name)

    def put_azure(key: str, data: bytes) -> None:
        container.upload_blob(key, data, overwrite=True, metadata={"sha256": "0" * 64})

    return Bucket(f"as://{AZURITE_ACCOUNT}/{name}", put_azure)


def test_publish_verify_and_a_tampered_object_is_refused_naming_it(
        gelu_repository: Path, bucket_of: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{bucket_of.root}/prod"
    assert main(["publish", str(gelu_repository), url]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"{url}: 9 uploaded, 0 unchanged, 8 verified against the manifest" in out
    assert main(["publish", "--verify-only", url]) == 0
    assert "8 objects match the manifest" in capsys.readouterr().out
    assert main(["publish", str(gelu_repository), url]) == 0  # again: nothing to upload
    assert "0 uploaded, 9 unchanged" in capsys.readouterr().out
    body = (gelu_repository / PLUGIN).read_bytes()
    bucket_of.put(f"prod/{PLUGIN}", body[:-1] + bytes([body[-1] ^ 1]))
    named = f"{url}/{PLUGIN} differs from the manifest"
    for argv in (["publish", "--verify-only", url], ["fetch-plugins", url, str(tmp_path / "dest")],
                 ["deploy", "k8s", url, "--gpus", "0", "--out", str(tmp_path / "k8s")]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert named in err, (argv, err)
    assert not (tmp_path / "dest" / "backend-config.txt").exists() and not (tmp_path / "k8s").exists()


def test_fetch_plugins_writes_the_backend_config(gelu_repository: Path, bucket_of: Bucket, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = _with_tensorrt_model(gelu_repository, tmp_path / "repo")
    url = f"{bucket_of.root}/trt"
    publish(repo, url)
    dest = tmp_path / "plugins"
    assert main(["fetch-plugins", url, str(dest)]) == 0, capsys.readouterr().err
    lib = dest / "trt_block" / "plugins" / "libtrt_plugins.so"
    assert (dest / "backend-config.txt").read_text() == f"--backend-config=tensorrt,plugins={lib}\n"
    assert sha256_file(lib) == sha256_file(repo / "trt_block/plugins/libtrt_plugins.so")


def test_deploy_reads_the_manifest_from_the_url(gelu_repository: Path, bucket_of: Bucket, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    repo = _with_tensorrt_model(gelu_repository, tmp_path / "repo")
    url = f"{bucket_of.root}/trt"
    publish(repo, url)
    out = tmp_path / "k8s"
    assert main(["deploy", "k8s", url, "--out", str(out)]) == 0, capsys.readouterr().err
    deployment: dict[str, Any] = yaml.safe_load((out / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    server, init = pod["containers"][0], pod["initContainers"][0]
    assert f"--model-repository={url}" in server["args"]
    assert init["args"] == ["fetch-plugins", url, "/plugins"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "trt_block/plugins/libtrt_plugins.so" in annotations["trtrepo.io/plugin-libraries"]
    env = {e["name"]: e for e in server["env"]}
    if url.startswith("gs://"):  # Triton reads a key file: mounted from the Secret, its path in the variable
        assert env["GOOGLE_APPLICATION_CREDENTIALS"]["value"].endswith("/key.json")
        assert any(v.get("secret") for v in pod["volumes"])
    else:
        for key in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"]["key"] == key
    assert init["env"] == server["env"]


@pytest.mark.triton
def test_tritonserver_serves_the_published_example_from_gcs_and_check_passes(
        gelu_repository: Path, gelu_spec: Path, make_gcs_bucket: Callable[[], str], gcs_endpoint: str,
        tritonserver_available: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The tritonserver 2.51 of nvidia-pytriton reads gs:// through google-cloud-cpp, which honours
    CLOUD_STORAGE_EMULATOR_ENDPOINT (anonymous): ``trtrepo check --repository gs://...`` verifies the published
    repository, starts the server on the URL, and the example matches eager PyTorch."""
    url = f"gs://{make_gcs_bucket()}/prod"
    publish(gelu_repository, url)
    monkeypatch.setenv("CLOUD_STORAGE_EMULATOR_ENDPOINT", gcs_endpoint)
    code = main(["check", str(gelu_spec), "--repository", url, "--protocol", "http"])
    out, err = capsys.readouterr()
    assert code == 0, out + err[-3000:]
    assert f"--model-repository={url}" in err and "verify: 8 objects" in err
