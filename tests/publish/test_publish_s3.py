"""``trtrepo publish`` / ``--verify-only`` / ``fetch-plugins`` / ``serve URL`` against a real S3 HTTP server (moto's
server mode on 127.0.0.1), with the real gelu_block repository. No tritonserver starts here: ``serve`` is refused
(or prints its command) before it would start one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from trtrepo._hashing import sha256_bytes, sha256_file
from trtrepo.cli import main
from trtrepo.publish import publish

pytestmark = pytest.mark.integration

PLUGIN = "gelu_block/plugins/libtrtrepo_ops_plugin_src.so"


def _published(gelu_repository: Path, bucket: str, endpoint: str, prefix: str = "prod") -> str:
    publish(gelu_repository, f"s3://{bucket}/{prefix}", endpoint_url=endpoint)
    return f"s3://{endpoint}/{bucket}/{prefix}"  # Triton's form, endpoint inside


def test_publish_uploads_the_manifest_files_with_their_sha256_manifest_last(
        gelu_repository: Path, s3: Any, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["publish", str(gelu_repository), f"s3://{bucket}/prod", "--endpoint-url", s3_endpoint, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    manifest = json.loads((gelu_repository / "trtrepo-manifest.json").read_text())
    recorded = dict(manifest["plugins"])
    for record in manifest["models"].values():
        recorded.update(record["files"])
    uploaded = [u["path"] for u in report["uploaded"]]
    assert uploaded[-1] == "trtrepo-manifest.json" and sorted(uploaded[:-1]) == sorted(recorded)
    assert uploaded.index("gelu_block/config.pbtxt") == len(uploaded) - 2
    assert report["verified"] == len(recorded)
    assert "publish: [1/9]" in err and "verify: s3://" in err  # progress lines
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="prod/")["Contents"]}
    assert keys == {f"prod/{rel}" for rel in [*recorded, "trtrepo-manifest.json"]}  # no logs, no launch.sh
    for rel, digest in recorded.items():
        head = s3.head_object(Bucket=bucket, Key=f"prod/{rel}")
        assert head["Metadata"]["sha256"] == digest
        body = s3.get_object(Bucket=bucket, Key=f"prod/{rel}")["Body"].read()
        assert sha256_bytes(body) == digest == sha256_file(gelu_repository / rel)
    # publishing again uploads nothing, and --verify-only passes
    assert main(["publish", str(gelu_repository), f"s3://{bucket}/prod", "--endpoint-url", s3_endpoint,
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["uploaded"] == [] and len(again["skipped"]) == len(recorded) + 1
    assert main(["publish", "--verify-only", f"s3://{s3_endpoint}/{bucket}/prod"]) == 0
    assert f"{len(recorded)} objects match the manifest" in capsys.readouterr().out


def test_a_tampered_object_is_refused_by_verify_serve_and_fetch_plugins(
        gelu_repository: Path, s3: Any, bucket: str, s3_endpoint: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = _published(gelu_repository, bucket, s3_endpoint)
    assert main(["serve", url, "--print-command"]) == 0  # intact: serve would start
    capsys.readouterr()
    body = s3.get_object(Bucket=bucket, Key=f"prod/{PLUGIN}")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"prod/{PLUGIN}", Body=body[:-1] + bytes([body[-1] ^ 1]),
                  Metadata={"sha256": sha256_file(gelu_repository / PLUGIN)})  # the metadata lies too
    named = f"s3://{bucket}/prod/{PLUGIN} differs from the manifest"
    for argv in (["publish", "--verify-only", url], ["serve", url, "--print-command"],
                 ["fetch-plugins", f"s3://{bucket}/prod", str(tmp_path / "dest"), "--endpoint-url", s3_endpoint],
                 ["deploy", "k8s", url, "--gpus", "0", "--out", str(tmp_path / "k8s")]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert named in err, (argv, err)
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "dest" / "backend-config.txt").exists()
    assert not (tmp_path / "k8s").exists()


def test_deploy_reads_the_manifest_from_the_published_repository(
        gelu_repository: Path, bucket: str, s3_endpoint: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """No local copy: ``deploy k8s`` verifies the published repository and reads its manifest from the store; the
    manifests it writes are the same as from the local folder that was published."""
    url = _published(gelu_repository, bucket, s3_endpoint)
    remote, local = tmp_path / "from_url", tmp_path / "from_dir"
    assert main(["deploy", "k8s", url, "--gpus", "0", "--out", str(remote)]) == 0, capsys.readouterr().err
    assert main(["deploy", "k8s", url, "--gpus", "0", "--out", str(local),
                 "--repository-dir", str(gelu_repository)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    written = sorted(p.name for p in remote.iterdir())
    assert written == sorted(p.name for p in local.iterdir()) and "deployment.yaml" in written
    for name in written:
        assert (remote / name).read_text() == (local / name).read_text(), name
    assert f"--model-repository={url}" in (remote / "deployment.yaml").read_text()


def test_metadata_that_disagrees_and_an_extra_object_are_named(
        gelu_repository: Path, s3: Any, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = _published(gelu_repository, bucket, s3_endpoint)
    key = "prod/gelu_block/1/model.py"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": "0" * 64})
    assert main(["publish", "--verify-only", url]) == 1
    assert "gelu_block/1/model.py differs from the manifest (manifest sha256" in capsys.readouterr().err
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha256_bytes(body)})
    s3.put_object(Bucket=bucket, Key="prod/gelu_block/1/evil.py", Body=b"import os")
    assert main(["publish", "--verify-only", url]) == 1
    assert f"s3://{bucket}/prod/gelu_block/1/evil.py is not in the manifest" in capsys.readouterr().err


def test_publish_refuses_to_change_a_published_model(
        gelu_repository: Path, bucket: str, s3_endpoint: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _published(gelu_repository, bucket, s3_endpoint)
    changed = tmp_path / "repo"
    shutil.copytree(gelu_repository, changed, symlinks=True)
    _rewrite(changed, "gelu_block/warmup/x", b"\0" * 256)
    assert main(["publish", str(changed), f"s3://{bucket}/prod", "--endpoint-url", s3_endpoint]) == 2
    err = capsys.readouterr().err
    assert f"s3://{bucket}/prod/gelu_block/warmup/x: model 'gelu_block' is already published" in err
    assert "new prefix" in err
    assert main(["publish", str(changed), f"s3://{bucket}/next", "--endpoint-url", s3_endpoint]) == 0


def test_fetch_plugins_writes_the_tensorrt_plugin_flag(
        gelu_repository: Path, s3: Any, bucket: str, s3_endpoint: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A TensorRT model (stand-in plan bytes: no TensorRT here) whose plugin library must load server-wide."""
    repo = _with_tensorrt_model(gelu_repository, tmp_path / "repo")
    publish(repo, f"s3://{bucket}/trt", endpoint_url=s3_endpoint)
    dest = tmp_path / "plugins"
    assert main(["fetch-plugins", f"s3://{bucket}/trt", str(dest), "--endpoint-url", s3_endpoint]) == 0
    lib = dest / "trt_block" / "plugins" / "libtrt_plugins.so"
    assert (dest / "backend-config.txt").read_text() == f"--backend-config=tensorrt,plugins={lib}\n"
    assert sha256_file(lib) == sha256_file(repo / "trt_block/plugins/libtrt_plugins.so")
    assert not (dest / "gelu_block").exists()  # the torch model's op library is loaded by the model itself
    capsys.readouterr()
    assert main(["serve", f"s3://{s3_endpoint}/{bucket}/trt", "--print-command"]) == 0
    line = capsys.readouterr().out
    assert f"s3://{s3_endpoint}/{bucket}/trt" in line and "--disable-auto-complete-config" in line
    assert "--backend-config=tensorrt,plugins=" in line and "trt_block/plugins/libtrt_plugins.so" in line
    # tamper with the library: fetch-plugins refuses, naming it, and keeps nothing of it
    s3.put_object(Bucket=bucket, Key="trt/trt_block/plugins/libtrt_plugins.so", Body=b"not the library")
    again = tmp_path / "again"
    assert main(["fetch-plugins", f"s3://{bucket}/trt", str(again), "--endpoint-url", s3_endpoint]) == 1
    assert f"s3://{bucket}/trt/trt_block/plugins/libtrt_plugins.so differs" in capsys.readouterr().err
    assert not (again / "trt_block" / "plugins" / "libtrt_plugins.so").exists()


def test_unreachable_store_and_missing_repository_are_one_line_errors(
        gelu_repository: Path, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", "--verify-only", f"s3://{bucket}/nothing-here", "--endpoint-url", s3_endpoint]) == 1
    assert f"s3://{bucket}/nothing-here/trtrepo-manifest.json: no such object" in capsys.readouterr().err
    assert main(["publish", "--verify-only", "s3://no-such-bucket/x", "--endpoint-url", s3_endpoint]) == 1
    assert "bucket 'no-such-bucket' does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- helpers
def _rewrite(repo: Path, rel: str, data: bytes) -> None:
    """Change one file and its manifest record consistently (what a rebuild with other bytes would write)."""
    from trtrepo.repository.manifest import load_manifest, write_manifest

    (repo / rel).write_bytes(data)
    path = repo / "trtrepo-manifest.json"
    manifest = load_manifest(path)
    model = rel.partition("/")[0]
    record = manifest.models[model]
    files = {**record.files, rel: sha256_bytes(data)}
    models = {**manifest.models, model: dataclasses.replace(record, files=files)}
    write_manifest(path, dataclasses.replace(manifest, models=models))


def _with_tensorrt_model(source: Path, repo: Path) -> Path:
    """A copy of the gelu repository plus ``trt_block``: a TensorRT-backend model with a plugin library."""
    from trtrepo.repository.manifest import load_manifest, write_manifest

    shutil.copytree(source, repo, symlinks=True)
    folder = repo / "trt_block"
    (folder / "1").mkdir(parents=True)
    (folder / "plugins").mkdir()
    (folder / "config.pbtxt").write_text('name: "trt_block"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n')
    (folder / "1" / "model.plan").write_bytes(b"stand-in plan bytes")
    (folder / "plugins" / "libtrt_plugins.so").write_bytes(b"\x7fELF stand-in plugin library")
    files = {p.relative_to(repo).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = load_manifest(repo / "trtrepo-manifest.json")
    record = dataclasses.replace(manifest.models["gelu_block"], target="tensorrt", platform="tensorrt_plan",
                                 backend=None, files=files, plugin_libraries=("plugins/libtrt_plugins.so",),
                                 required_creators=(), library_creators={})
    plugins = {**manifest.plugins, "trt_block/plugins/libtrt_plugins.so": files["trt_block/plugins/libtrt_plugins.so"]}
    write_manifest(repo / "trtrepo-manifest.json", dataclasses.replace(
        manifest, models={**manifest.models, "trt_block": record}, plugins=plugins))
    return repo
