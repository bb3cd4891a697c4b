"""``trtrepo deploy k8s``: the manifests it writes pass the Kubernetes API schemas (offline, kubernetes-validate)
and carry what the repository's manifest says: the plugin libraries to fetch, the probes, the credentials by
reference.

The repositories are small ones written into a tmp folder with trtrepo's own manifest and config writers, read back
through trtrepo.repository.reader like deploy reads a real one. TensorRT cannot build here, so the plugin case is a
hand-written minimal manifest: one ``tensorrt_plan`` model whose record lists a plugin library (with its sha256 in
``plugins``), exactly the fields a TensorRT build records. Only the Kubernetes schemas are checked: nothing here ran
on a cluster. KServe's InferenceService is a CRD the schemas do not hold: it is checked structurally, and the pod
parts it embeds (model container, init container, volumes) are validated as a Pod.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from trtrepo._hashing import sha256_file
from trtrepo.cli import main
from trtrepo.contracts import Creator, IOSpec
from trtrepo.repository.manifest import Manifest, ServingRecord, write_manifest

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (test extra)")

K8S_VERSION = "1.30"
URL = "s3://http://minio.storage:9000/models/gelu"
PLUGIN = "plugins/libtrtrepo_plugins.so"

CONFIGS = {
    "tensorrt_plan": 'name: "{name}"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n',
    "python": 'name: "{name}"\nbackend: "python"\nmax_batch_size: 8\n',
}


def _record(target: str, plugins: tuple[str, ...] = ()) -> ServingRecord:
    io = (IOSpec("x", "fp32", (-1, 64)),), (IOSpec("y", "fp32", (-1, 64)),)
    creators = (Creator("BiasGelu", "1", "trtrepo"),) if plugins else ()
    return ServingRecord(target=target, version=1, precision="fp32", inputs=io[0], outputs=io[1],
                         output_names={"y": "output0" if target == "tensorrt" else "y"},
                         platform="tensorrt_plan" if target == "tensorrt" else None,
                         backend="python" if target == "torch" else None, plugin_libraries=plugins,
                         required_creators=creators,
                         library_creators={Path(p).name: creators for p in plugins})


def write_repository(root: Path, models: dict[str, str], environment: dict[str, Any] | None = None) -> Path:
    """A repository with one folder per model (target ``tensorrt`` or ``torch``) and its manifest."""
    records, hashes = {}, {}
    for name, target in models.items():
        folder = root / name
        (folder / "1").mkdir(parents=True)
        kind = "tensorrt_plan" if target == "tensorrt" else "python"
        (folder / "config.pbtxt").write_text(CONFIGS[kind].format(name=name))
        plugins: tuple[str, ...] = ()
        if target == "tensorrt":
            (folder / "plugins").mkdir()
            (folder / PLUGIN).write_bytes(b"\x7fELF not really a library " + name.encode())
            hashes[f"{name}/{PLUGIN}"] = sha256_file(folder / PLUGIN)
            plugins = (PLUGIN,)
        records[name] = _record(target, plugins)
    write_manifest(root / "trtrepo-manifest.json",
                   Manifest(environment=environment or {}, spec_path="model.yaml", spec_sha256="0" * 64, device="cuda",
                            models=records, plugins=hashes))
    return root


def deploy(tmp_path: Path, repo: Path, *extra: str, url: str = URL) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "out"
    assert main(["deploy", "k8s", url, "--repository-dir", str(repo), "--out", str(out), *extra]) == 0
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(out.glob("*.yaml"))}


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def pod_of(files: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    deployment = files["deployment.yaml"][0]
    return dict(deployment["spec"]["template"]["spec"])


def test_tensorrt_plugins_give_init_container_and_flags(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo", {"gelu_trt": "tensorrt", "gelu_torch": "torch"},
                            {"ngc_release": "25.08"})
    files = deploy(tmp_path, repo, "--replicas", "3", "--gpus", "2", "--secret", "minio-creds")
    assert sorted(files) == ["deployment.yaml", "hpa.yaml", "service.yaml"]
    for docs in files.values():
        for doc in docs:
            validate(doc)
    pod = pod_of(files)
    (server,) = pod["containers"]
    assert server["image"] == "nvcr.io/nvidia/tritonserver:25.08-py3"  # the manifest's release
    assert f"--model-repository={URL}" in server["args"]
    # the server runs with the flag file the init container wrote, as one argument
    script = " ".join(server["command"])
    assert '"$(cat /plugins/backend-config.txt)"' in script and script.startswith("/bin/sh -c exec tritonserver")
    (init,) = pod["initContainers"]
    assert init["command"] == ["trtrepo"]
    assert init["args"] == ["fetch-plugins", URL, "/plugins", "--endpoint-url", "http://minio.storage:9000"]
    assert {"name": "plugins", "mountPath": "/plugins"} in init["volumeMounts"]
    assert {"name": "plugins", "mountPath": "/plugins", "readOnly": True} in server["volumeMounts"]
    assert {"name": "plugins", "emptyDir": {}} in pod["volumes"]
    # what the init container fetches is what the manifest lists, with its sha256
    manifest = json.loads((repo / "trtrepo-manifest.json").read_text())
    annotations = files["deployment.yaml"][0]["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(annotations["trtrepo.io/plugin-libraries"]) == manifest["plugins"] == {
        f"gelu_trt/{PLUGIN}": sha256_file(repo / "gelu_trt" / PLUGIN)}
    assert annotations["trtrepo.io/manifest-sha256"] == sha256_file(repo / "trtrepo-manifest.json")
    # probes on Triton's readiness endpoint, GPUs requested and limited
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}
    assert [p["containerPort"] for p in server["ports"]] == [8000, 8001, 8002]
    assert server["resources"] == {"requests": {"nvidia.com/gpu": 2}, "limits": {"nvidia.com/gpu": 2}}
    assert files["deployment.yaml"][0]["spec"]["replicas"] == 3
    # credentials only by reference, in both containers
    for container in (server, init):
        env = {e["name"]: e for e in container["env"]}
        assert set(env) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        for e in env.values():
            assert "value" not in e and e["valueFrom"]["secretKeyRef"]["name"] == "minio-creds"
    hpa = files["hpa.yaml"][0]
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "avg_time_queue_us"
    service = files["service.yaml"][0]
    assert [p["port"] for p in service["spec"]["ports"]] == [8000, 8001, 8002]
    assert service["spec"]["selector"] == files["deployment.yaml"][0]["spec"]["selector"]["matchLabels"]


def test_no_plugins_no_init_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_repository(tmp_path / "repo", {"gelu_block": "torch"})
    files = deploy(tmp_path, repo, "--gpus", "0", url="s3://bucket/repos/gelu")
    for docs in files.values():
        for doc in docs:
            validate(doc)
    pod = pod_of(files)
    assert "initContainers" not in pod and "volumes" not in pod
    (server,) = pod["containers"]
    assert server["command"] == ["tritonserver"]
    assert "--model-repository=s3://bucket/repos/gelu" in server["args"]
    assert not any("backend-config" in a for a in server["args"])
    assert server["resources"] == {}
    assert files["deployment.yaml"][0]["metadata"]["name"] == "triton-gelu"
    err = capsys.readouterr().err
    assert "records no NGC release" in err and "has no torch" in err  # the default image, said so


def test_kserve_inference_service(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo", {"gelu_trt": "tensorrt"}, {"ngc_release": "25.10"})
    files = deploy(tmp_path, repo, "--kserve", "--name", "gelu", "--replicas", "2")
    assert list(files) == ["inferenceservice.yaml"]
    account, isvc = files["inferenceservice.yaml"]
    validate(account)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # a CRD: not in the Kubernetes schemas
        validate(isvc)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["storageUri"] == URL
    assert model["runtimeVersion"] == "25.10-py3"
    assert predictor["minReplicas"] == 2 and predictor["serviceAccountName"] == account["metadata"]["name"]
    assert predictor["initContainers"][0]["args"][:3] == ["fetch-plugins", URL, "/plugins"]
    assert '"$(cat /plugins/backend-config.txt)"' in model["command"][2]
    # the pod parts KServe embeds are Kubernetes containers and volumes: validate them as a Pod
    container = {k: v for k, v in model.items() if k not in ("modelFormat", "storageUri", "runtimeVersion")}
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
              "spec": {"containers": [{"name": "kserve-container", "image": "x", **container}],
                       "initContainers": predictor["initContainers"], "volumes": predictor["volumes"]}})


def test_validation_catches_a_broken_manifest() -> None:
    """The schema check can fail: a probe port given as a list is rejected."""
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i",
                                                          "readinessProbe": {"httpGet": {"port": [8000]}}}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(doc)


@pytest.mark.parametrize(("args", "message"), [
    (["http://host/repo", "--repository-dir", "{repo}"], "REPO_URL 'http://host/repo': must be s3://"),
    (["s3://", "--repository-dir", "{repo}"], "is not a bucket name"),
    (["s3://http://minio/models", "--repository-dir", "{repo}"], "endpoint must be http://host:port"),
    (["s3://bucket/r", "--repository-dir", "{empty}"], "no trtrepo-manifest.json"),
    (["as://Acct/c/r"], "is not a storage account name"),
    (["s3://bucket/r", "--repository-dir", "{repo}", "--gpus", "0"], "TensorRT needs a GPU"),
    (["s3://bucket/r", "--repository-dir", "{repo}", "--name", "Bad_Name"], "--name 'Bad_Name'"),
    (["s3://bucket/r", "--repository-dir", "{repo}", "--replicas", "0"], "--replicas 0"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                      message: str) -> None:
    repo = write_repository(tmp_path / "repo", {"gelu_trt": "tensorrt"})
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    argv = [a.format(repo=repo, empty=tmp_path / "empty") for a in args]
    assert main(["deploy", "k8s", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("error: ") and message in first, err
    assert "Traceback" not in err
    assert not out.exists()  # nothing half-written
