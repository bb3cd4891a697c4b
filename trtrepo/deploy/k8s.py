"""``trtrepo deploy k8s``: Kubernetes manifests for N Triton replicas serving one repository from object storage.

What is written (one YAML file per object, into ``out``):

* ``deployment.yaml``: the NGC ``tritonserver`` image of the repository's release (``--image`` wins; else the
  release the manifest records in ``environment.ngc_release``, set when the repository was built inside an NGC
  container; else :data:`trtrepo.deps.NGC_TRITON_IMAGE`), started with ``--model-repository=REPO_URL``;
  startup, readiness and liveness probes on ``/v2/health/ready`` (port 8000); ports 8000/8001/8002; ``nvidia.com/gpu``
  requests = limits; the storage credentials as environment variables taken from a Secret (``secretKeyRef``: no
  credential is ever written into a manifest). Where the repository has TensorRT models with plugin libraries, an
  init container runs ``trtrepo fetch-plugins REPO_URL /plugins`` (which fetches them, checks their sha256 against
  the manifest and writes ``/plugins/backend-config.txt``) into an emptyDir shared with the server, which is started
  with the flag that file holds.
* ``service.yaml``: a ClusterIP Service on the three ports.
* ``hpa.yaml``: an ``autoscaling/v2`` HorizontalPodAutoscaler on the Pods metric ``avg_time_queue_us`` (average
  queue time per request, in µs), the metric the Triton Helm charts scale on. It does not exist by itself: a
  Prometheus scraping port 8002 and a prometheus-adapter rule make it (:data:`QUEUE_METRIC_RULE`).
* with ``kserve``, instead of those three: ``inferenceservice.yaml``, a KServe ``InferenceService``
  (``serving.kserve.io/v1beta1``, model format ``triton``, ``storageUri=REPO_URL``) and the ServiceAccount that
  hands KServe's storage initializer the credentials Secret.

Nothing here talks to a cluster. The repository's manifest is read from the published repository itself (verified
object by object first, :func:`trtrepo.remote.open_remote`: s3://, gs://, as://), or from a local copy
(``repository_dir``), through :mod:`trtrepo.repository.reader`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo.errors import ServeError, SpecError, TrtrepoError

LOGGER = logging.getLogger(__name__)

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
KSERVE_HTTP_PORT = 8080  # the ports KServe's Triton runtime serves on
KSERVE_GRPC_PORT = 9000
PLUGIN_DIR = "/plugins"
BACKEND_CONFIG_FILE = f"{PLUGIN_DIR}/backend-config.txt"
HEALTH_PATH = "/v2/health/ready"
QUEUE_METRIC = "avg_time_queue_us"
DEFAULT_QUEUE_TARGET_US = 50_000  # 50 ms average queue time per request: add a replica
# The prometheus-adapter rule that turns Triton's counters into the HPA's metric (per pod, last 30 s).
QUEUE_METRIC_RULE = (f"{QUEUE_METRIC} = avg(delta(nv_inference_queue_duration_us[30s]) / "
                     "(1 + delta(nv_inference_request_success[30s])))")
DEFAULT_INIT_IMAGE_REPO = "trtrepo"  # an image with trtrepo (and boto3) installed: tagged with trtrepo's version
GCS_KEY_DIR = "/var/run/secrets/trtrepo-storage"
NGC_IMAGE = "nvcr.io/nvidia/tritonserver:{release}-py3"
_RELEASE = re.compile(r"^\d{2}\.\d{2}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MANIFEST_SHA = "trtrepo.io/manifest-sha256"
_PLUGINS_ANNOTATION = "trtrepo.io/plugin-libraries"
# credentials per scheme: environment variable → required (the rest are optional keys of the Secret)
_CREDENTIAL_KEYS = {
    "s3": {"AWS_ACCESS_KEY_ID": True, "AWS_SECRET_ACCESS_KEY": True, "AWS_SESSION_TOKEN": False,
           "AWS_DEFAULT_REGION": False},
    "as": {"AZURE_STORAGE_ACCOUNT": True, "AZURE_STORAGE_KEY": True},
}


class DeployError(TrtrepoError):
    """Invalid input to ``trtrepo deploy``: a bad repository URL, a missing manifest, a bad option (usage, exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class StorageURL:
    """A repository URL as Triton reads it.

    Attributes:
        url: The URL as given (what ``--model-repository`` gets).
        scheme: ``s3``, ``gs`` or ``as``.
        bucket: Bucket (S3, GCS) or storage account (Azure).
        path: The prefix inside it ('' for the root).
        endpoint: ``http(s)://host:port`` of an S3-compatible store (``s3://http://host:port/bucket/path``), or None.
    """

    url: str
    scheme: str
    bucket: str
    path: str
    endpoint: str | None = None


def parse_repository_url(url: str) -> StorageURL:
    """Split ``s3://[http(s)://host:port/]bucket/path``, ``gs://bucket/path`` or ``as://account/container/path``
    (the grammar of :func:`trtrepo.remote.url.split_url`; deploy accepts every scheme Triton reads).

    Raises:
        DeployError: Another scheme, no bucket, or a malformed endpoint (names the URL).
    """
    from trtrepo.remote.url import split_url

    text = url.strip()
    scheme = text.partition("://")[0] if "://" in text else ""
    if scheme not in ("s3", "gs", "as"):
        raise DeployError(f"REPO_URL {url!r}: must be s3://, gs:// or as:// (object storage every replica can read)",
                          hint="publish the repository first (trtrepo publish REPO URL); a local folder serves one "
                          "machine: trtrepo serve REPO")
    try:
        parts = split_url(text)
    except SpecError as exc:
        raise DeployError(f"REPO_URL: {exc.message}", hint=exc.hint) from None
    return StorageURL(url=text, scheme=parts.scheme, bucket=parts.bucket, path=parts.prefix, endpoint=parts.endpoint)


@dataclass(frozen=True)
class PluginLibrary:
    """One plugin library a TensorRT model of the repository loads: its repository-relative path and sha256."""

    model: str
    path: str
    sha256: str


@dataclass
class K8sDeployment:
    """The manifests of one ``trtrepo deploy k8s`` run.

    Attributes:
        name: Name of every object (and its ``app.kubernetes.io/name`` label).
        url: The repository URL.
        image: The tritonserver image.
        image_source: Why that image (``--image``, ``manifest``, ``default``).
        plugins: The TensorRT plugin libraries the init container fetches (empty: no init container).
        documents: File name → the objects it holds (dicts, in order).
        notes: Warnings for the user (one line each).
        written: Paths written (after :func:`deploy_k8s`).
    """

    name: str
    url: StorageURL
    image: str
    image_source: str
    plugins: list[PluginLibrary]
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        """Every object of every file, in file order."""
        return [o for docs in self.documents.values() for o in docs]

    def summary(self) -> str:
        """What was written, for people: one line per object, the image and the plugins."""
        from trtrepo._table import render

        rows = [(d["kind"], d["apiVersion"], d["metadata"]["name"], fname)
                for fname, docs in self.documents.items() for d in docs]
        lines = [render(("kind", "apiVersion", "name", "file"), rows),
                 f"image: {self.image} ({self.image_source})",
                 f"plugins: {len(self.plugins)} librar{'y' if len(self.plugins) == 1 else 'ies'} fetched and checked "
                 f"by the init container" if self.plugins else "plugins: none (no init container)"]
        return "\n".join(lines)  # the notes go to the log (stderr) as warnings


def render_k8s(repo_url: str, repository_dir: str | Path | None, *, replicas: int = 1, max_replicas: int | None = None,
               gpus: int = 1, name: str | None = None, image: str | None = None, init_image: str | None = None,
               secret: str | None = None, kserve: bool = False,
               queue_target_us: int = DEFAULT_QUEUE_TARGET_US) -> K8sDeployment:
    """The manifests for serving ``repo_url``, from the manifest of its local copy ``repository_dir``; writes nothing.

    Args:
        repo_url: Where the replicas load the repository from (``s3://``, ``gs://``, ``as://``).
        repository_dir: A local copy of that repository (its ``trtrepo-manifest.json`` and configs are read).
        replicas: Replicas to start with (the autoscaler's minimum).
        max_replicas: The autoscaler's maximum (default ``2 * replicas``).
        gpus: GPUs per replica (0: CPU only; TensorRT models need at least 1).
        name: Name of the objects (default ``triton-<last part of the URL>``).
        image: The tritonserver image (default: the manifest's NGC release, else :data:`trtrepo.deps.NGC_TRITON_IMAGE`).
        init_image: Image of the plugin-fetching init container (must have trtrepo; default ``trtrepo:<version>``).
        secret: The Secret holding the storage credentials (default ``<name>-storage``).
        kserve: Write a KServe InferenceService instead of Deployment + Service + HPA.
        queue_target_us: Average queue time per request (µs) above which the autoscaler adds replicas.

    Raises:
        DeployError: A bad URL, name or count; no local repository or no manifest in it; TensorRT models with
            ``gpus=0``.
    """
    from trtrepo import __version__
    from trtrepo._hashing import sha256_file

    url = parse_repository_url(repo_url)
    for flag, value, low in (("--replicas", replicas, 1), ("--gpus", gpus, 0),
                             ("--max-replicas", max_replicas if max_replicas is not None else replicas, replicas),
                             ("--queue-time-us", queue_target_us, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DeployError(f"{flag} {value!r}: must be an integer >= {low}")
    name = name if name is not None else _default_name(url)
    if not _DNS_LABEL.match(name):
        raise DeployError(f"--name {name!r}: must be a DNS label (lower-case letters, digits and '-', at most 63, "
                          "starting and ending with a letter or digit)")
    secret = secret if secret is not None else f"{name}-storage"
    if not _DNS_LABEL.match(secret) and not re.match(r"^[a-z0-9][-a-z0-9.]{0,251}[a-z0-9]$", secret):
        raise DeployError(f"--secret {secret!r}: not a valid Secret name (lower-case DNS name)")
    view, manifest_path = _read_local_repository(repository_dir, url)
    assert view.manifest is not None
    plugins = _plugin_libraries(view)
    notes: list[str] = []
    if plugins and gpus == 0:
        raise DeployError(f"--gpus 0: {manifest_path} lists TensorRT models with plugin libraries "
                          f"({', '.join(sorted({p.model for p in plugins}))}); TensorRT needs a GPU per replica")
    chosen, source = _image(image, view.manifest.environment)
    if source == "default":
        notes.append(f"{manifest_path} records no NGC release (environment.ngc_release): using {chosen}; pass "
                     "--image to pin the release the repository was built with")
    torch_models = sorted(n for n, e in view.models.items() if e.record is not None and e.record.target == "torch")
    if torch_models and image is None:
        notes.append(f"torch-target models ({', '.join(torch_models)}) run in Triton's Python backend and import "
                     f"torch: the stock {chosen} has no torch; pass --image of an image that adds it")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "trtrepo",
              "app.kubernetes.io/version": __version__}
    annotations = {_MANIFEST_SHA: sha256_file(manifest_path)}
    if plugins:
        annotations[_PLUGINS_ANNOTATION] = json.dumps({p.path: p.sha256 for p in plugins}, sort_keys=True)
    parts = _Parts(name=name, url=url, image=chosen,
                   init_image=init_image or f"{DEFAULT_INIT_IMAGE_REPO}:{__version__}", secret=secret, gpus=gpus,
                   plugins=bool(plugins), labels=labels, annotations=annotations)
    result = K8sDeployment(name=name, url=url, image=chosen, image_source=source, plugins=plugins, notes=notes)
    high = max_replicas if max_replicas is not None else 2 * replicas
    if kserve:
        result.documents["inferenceservice.yaml"] = [_service_account(parts),
                                                     _inference_service(parts, replicas, high)]
    else:
        result.documents["deployment.yaml"] = [_deployment(parts, replicas)]
        result.documents["service.yaml"] = [_service(parts)]
        result.documents["hpa.yaml"] = [_autoscaler(parts, replicas, high, queue_target_us)]
    return result


def deploy_k8s(repo_url: str, repository_dir: str | Path | None, out: str | Path, *,
               progress: Callable[[str], None] = LOGGER.info, **options: Any) -> K8sDeployment:
    """``trtrepo deploy k8s``: render the manifests (:func:`render_k8s`) and write them into ``out``.

    Every file is rendered before any is written, and each is written to a temporary file and renamed into place,
    so a failure leaves no half-written manifest.

    Raises:
        DeployError: See :func:`render_k8s`; ``out`` is a file or cannot be written.
    """
    import yaml

    result = render_k8s(repo_url, repository_dir, **options)
    folder = Path(out).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise DeployError(f"--out {out}: is a file, not a folder")
    texts = {fname: _yaml_header(result) + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
             for fname, docs in result.documents.items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fname, text in texts.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{fname}.")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, folder / fname)
            result.written.append(folder / fname)
            progress(f"deploy: wrote {folder / fname}")
    except OSError as exc:
        raise DeployError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    for note in result.notes:
        LOGGER.warning("%s", note)
    return result


# --------------------------------------------------------------------------------------------------- helpers
def _default_name(url: StorageURL) -> str:
    last = (url.path.rsplit("/", 1)[-1] if url.path else url.bucket).lower()
    slug = re.sub(r"[^a-z0-9-]+", "-", last).strip("-")[:50].strip("-")
    return f"triton-{slug}" if slug else "triton"


def _read_local_repository(repository_dir: str | Path | None, url: StorageURL) -> tuple[Any, Path]:
    from trtrepo.repository.manifest import MANIFEST_FILENAME
    from trtrepo.repository.reader import read_repository

    if repository_dir is None:  # the published repository itself: verified against its manifest, mirrored locally
        from trtrepo.remote import open_remote

        remote = open_remote(url.url)
        root = remote.mirror
    else:
        root = Path(repository_dir).expanduser().absolute()
    if not root.is_dir():
        raise DeployError(f"--repository-dir {repository_dir}: no such folder")
    manifest_path = root / MANIFEST_FILENAME
    if not manifest_path.is_file():
        raise DeployError(f"--repository-dir {repository_dir}: no {MANIFEST_FILENAME} (not a repository trtrepo "
                          "built)", hint="build it with trtrepo build model.yaml, then publish it")
    try:
        view = read_repository(root)
    except ServeError as exc:  # an unreadable manifest or config.pbtxt: the user's input
        raise DeployError(exc.message, hint=exc.hint) from None
    if view.manifest is None or not view.models:
        raise DeployError(f"{manifest_path}: the repository holds no models")
    return view, manifest_path


def _plugin_libraries(view: Any) -> list[PluginLibrary]:
    """The plugin libraries of the TensorRT models, from the manifest (what the init container must fetch)."""
    found: dict[str, PluginLibrary] = {}
    plugins = view.manifest.plugins
    for model, entry in sorted(view.models.items()):
        if not entry.is_tensorrt or entry.record is None:
            continue
        for rel in entry.record.plugin_libraries:
            path = os.path.normpath(f"{entry.folder.name}/{rel}")
            digest = plugins.get(path) or entry.record.files.get(path) or ""
            if not digest:
                raise DeployError(f"{view.root / 'trtrepo-manifest.json'}: models.{model}.plugin_libraries: {rel} has "
                                  "no sha256 in the manifest (plugins / files)", hint="rebuild the repository")
            found.setdefault(path, PluginLibrary(model=model, path=path, sha256=digest))
    return list(found.values())


def _image(image: str | None, environment: dict[str, Any]) -> tuple[str, str]:
    from trtrepo import deps

    if image:
        return image, "--image"
    release = str(environment.get("ngc_release") or "")
    if _RELEASE.match(release):
        return NGC_IMAGE.format(release=release), f"manifest: NGC release {release}"
    if release:
        LOGGER.warning("manifest environment.ngc_release %r is not YY.MM: ignored", release)
    return deps.NGC_TRITON_IMAGE, "default"


@dataclass(frozen=True)
class _Parts:
    name: str
    url: StorageURL
    image: str
    init_image: str
    secret: str
    gpus: int
    plugins: bool
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name}

    def metadata(self, name: str | None = None) -> dict[str, Any]:
        return {"name": name or self.name, "labels": dict(self.labels)}


def _credentials(parts: _Parts) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumeMounts, volumes) that hand a container the storage credentials from the Secret, by reference."""
    if parts.url.scheme == "gs":  # a service-account key file, mounted from the Secret
        env: list[dict[str, Any]] = [{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{GCS_KEY_DIR}/key.json"}]
        return env, [{"name": "storage-credentials", "mountPath": GCS_KEY_DIR, "readOnly": True}], \
            [{"name": "storage-credentials", "secret": {"secretName": parts.secret}}]
    env = [{"name": key, "valueFrom": {"secretKeyRef": {"name": parts.secret, "key": key,
                                                        **({} if required else {"optional": True})}}}
           for key, required in _CREDENTIAL_KEYS[parts.url.scheme].items()]
    return env, [], []


def _resources(gpus: int) -> dict[str, Any]:
    if gpus == 0:
        return {}
    return {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}}


def _probe(port: int, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": port}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _server_command(repository: str, flags: list[str], plugins: bool) -> dict[str, list[str]]:
    """command/args of the server container: plain ``tritonserver``, or a shell adding the plugins flag file."""
    args = [f"--model-repository={repository}", *flags]
    if not plugins:
        return {"command": ["tritonserver"], "args": args}
    # one flag, one argument: the file holds --backend-config=tensorrt,plugins=/plugins/a.so;/plugins/b.so
    return {"command": ["/bin/sh", "-c", f'exec tritonserver "$@" "$(cat {BACKEND_CONFIG_FILE})"', "tritonserver"],
            "args": args}


def _init_container(parts: _Parts, env: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    args = ["fetch-plugins", parts.url.url, PLUGIN_DIR]
    if parts.url.endpoint:
        args += ["--endpoint-url", parts.url.endpoint]
    return {"name": "fetch-plugins", "image": parts.init_image, "command": ["trtrepo"], "args": args, "env": env,
            "volumeMounts": [{"name": "plugins", "mountPath": PLUGIN_DIR}, *mounts]}


def _deployment(parts: _Parts, replicas: int) -> dict[str, Any]:
    env, mounts, volumes = _credentials(parts)
    flags = [f"--http-port={HTTP_PORT}", f"--grpc-port={GRPC_PORT}", f"--metrics-port={METRICS_PORT}",
             "--strict-readiness=true"]
    server: dict[str, Any] = {
        "name": "tritonserver", "image": parts.image,
        **_server_command(parts.url.url, flags, parts.plugins),
        "ports": [{"name": "http", "containerPort": HTTP_PORT}, {"name": "grpc", "containerPort": GRPC_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        "env": env,
        # loading from object storage can take minutes: the startup probe holds liveness off until the first READY
        "startupProbe": _probe(HTTP_PORT, 10, 60),
        "readinessProbe": _probe(HTTP_PORT, 5, 3),
        "livenessProbe": _probe(HTTP_PORT, 10, 6),
        "resources": _resources(parts.gpus),
    }
    pod: dict[str, Any] = {"containers": [server]}
    if parts.plugins:
        pod["initContainers"] = [_init_container(parts, env, mounts)]
        mounts = [{"name": "plugins", "mountPath": PLUGIN_DIR, "readOnly": True}, *mounts]
        volumes = [{"name": "plugins", "emptyDir": {}}, *volumes]
    if mounts:
        server["volumeMounts"] = mounts
    if volumes:
        pod["volumes"] = volumes
    template_meta = {"labels": dict(parts.labels),
                     "annotations": {**parts.annotations, "prometheus.io/scrape": "true",
                                     "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": "/metrics"}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": parts.metadata(),
            "spec": {"replicas": replicas, "selector": {"matchLabels": parts.selector},
                     "template": {"metadata": template_meta, "spec": pod}}}


def _service(parts: _Parts) -> dict[str, Any]:
    ports = [{"name": n, "port": p, "targetPort": n}
             for n, p in (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))]
    return {"apiVersion": "v1", "kind": "Service", "metadata": parts.metadata(),
            "spec": {"type": "ClusterIP", "selector": parts.selector, "ports": ports}}


def _autoscaler(parts: _Parts, low: int, high: int, target_us: int) -> dict[str, Any]:
    metric = {"type": "Pods", "pods": {"metric": {"name": QUEUE_METRIC},
                                       "target": {"type": "AverageValue", "averageValue": str(target_us)}}}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {**parts.metadata(), "annotations": {"trtrepo.io/metric-rule": QUEUE_METRIC_RULE}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": parts.name},
                     "minReplicas": low, "maxReplicas": high, "metrics": [metric]}}


def _service_account(parts: _Parts) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": parts.metadata(f"{parts.name}-storage"),
            "secrets": [{"name": parts.secret}]}


def _inference_service(parts: _Parts, low: int, high: int) -> dict[str, Any]:
    """KServe's storage initializer downloads storageUri to /mnt/models; the Triton runtime serves it from there."""
    env, mounts, volumes = _credentials(parts)
    tag = parts.image.rsplit(":", 1)[-1] if ":" in parts.image.rsplit("/", 1)[-1] else "latest"
    model: dict[str, Any] = {"modelFormat": {"name": "triton"}, "storageUri": parts.url.url, "runtimeVersion": tag,
                             "resources": _resources(parts.gpus)}
    predictor: dict[str, Any] = {"minReplicas": low, "maxReplicas": high,
                                 "serviceAccountName": f"{parts.name}-storage", "model": model}
    if parts.plugins:
        flags = [f"--http-port={KSERVE_HTTP_PORT}", f"--grpc-port={KSERVE_GRPC_PORT}"]
        model.update(_server_command("/mnt/models", flags, True))
        model["volumeMounts"] = [{"name": "plugins", "mountPath": PLUGIN_DIR, "readOnly": True}]
        predictor["initContainers"] = [_init_container(parts, env, mounts)]
        predictor["volumes"] = [{"name": "plugins", "emptyDir": {}}, *volumes]
    meta = {**parts.metadata(), "annotations": dict(parts.annotations)}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": meta,
            "spec": {"predictor": predictor}}


def _yaml_header(result: K8sDeployment) -> str:
    lines = [f"# Written by trtrepo deploy k8s for {result.url.url} (image {result.image}).",
             "# Credentials come from the Secret named in secretKeyRef/secretName (create it with kubectl)."]
    if "hpa.yaml" in result.documents:
        lines.append(f"# The HPA's metric needs a prometheus-adapter rule: {QUEUE_METRIC_RULE}")
    return "\n".join(lines) + "\n"
