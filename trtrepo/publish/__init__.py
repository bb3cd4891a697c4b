"""``trtrepo publish``: upload a built repository to object storage so polling replicas never see half a model.

What is uploaded: exactly what the manifest records (every file of every model folder, build logs excluded, and
the plugin-library copies), each object with its sha256 in the ``sha256`` metadata, then the manifest. The local
repository must match its manifest first (:func:`trtrepo.serve.verify_repository`); ``launch.sh`` stays local
(``trtrepo serve URL`` and ``trtrepo fetch-plugins`` write the plugin flags of a published repository).

The order (:func:`upload_plan`), and why. A replica polling the store (``--model-control-mode=poll``) rescans the
prefix every few seconds and loads any model folder it can; S3 has no rename, so a model folder appears object by
object. Measured on the tritonserver 2.51 of nvidia-pytriton (CPU, poll every 1 s):

* a model folder without ``config.pbtxt`` is not loaded when the server runs with
  ``--disable-auto-complete-config`` ("Poll failed for model directory": nothing starts). With auto-complete on
  (Triton's default) a folder holding ``<version>/model.py`` is loaded *without* its config, and a folder whose
  config.pbtxt arrives before the version's files is loaded from the files present. So:
* per model, in model-name order: 1. every object of the model folder except ``config.pbtxt`` and the versions'
  entry files (``<version>/model.<ext>``: what a backend opens first), 2. the entry files, 3. ``config.pbtxt``
  last: the model becomes loadable with its last object, when every other one is there. Replicas started by
  ``trtrepo serve`` pass ``--disable-auto-complete-config`` (trtrepo writes complete configs), which makes
  config.pbtxt the one commit point; other replicas should too (docs/deploy.md).
* the manifest last, after every model: a reader that trusts the manifest (``trtrepo serve URL``,
  ``fetch-plugins``, ``publish --verify-only``) never sees it name an object that is not there yet.
* objects already published with the same sha256 are skipped (publishing again is cheap and changes nothing).
  A published model whose objects would change, or one the repository no longer has, is refused: S3 cannot swap a
  model folder at once, so replacing a model under polling replicas would show them a mix of old and new files.
  Publish the new build under a new prefix (and point replicas at it), or rebuild under a new model name.

After the upload every object is read back and hashed against the manifest (:func:`verify_published`, also what
``--verify-only`` runs). The same order and checks hold for every store (:class:`trtrepo.remote.Store`: S3, GCS,
Azure Blob). Credentials come only from the SDKs' standard chains; trtrepo writes none anywhere.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trtrepo._table import render
from trtrepo.errors import SpecError

LOGGER = logging.getLogger(__name__)

Progress = Callable[[str], None]
_VERSION_ENTRY = re.compile(r"^[^/]+/\d+/model\.[^/]+$")  # <model>/<version>/model.<ext>: a backend's entry file
STEPS = ("files", "entry", "config", "manifest")


@dataclass(frozen=True)
class Upload:
    """One object to put: its repository-relative path, local file, sha256 and step (:data:`STEPS`)."""

    rel: str
    path: Path
    sha256: str
    step: str
    size: int = 0


@dataclass
class PublishReport:
    """What :func:`publish` did.

    Attributes:
        url: Where the repository went (``s3://bucket/prefix``).
        uploaded: Objects put, in upload order.
        skipped: Objects already published with the same sha256.
        verified: Objects read back and matched the manifest.
    """

    url: str
    uploaded: list[Upload] = field(default_factory=list)
    skipped: list[Upload] = field(default_factory=list)
    verified: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"url": self.url, "verified": self.verified,
                "uploaded": [{"path": u.rel, "sha256": u.sha256, "size": u.size, "step": u.step}
                             for u in self.uploaded],
                "skipped": [u.rel for u in self.skipped]}

    def table(self) -> str:
        """People's form: one row per object."""
        rows = [(u.rel, u.step, u.size, u.sha256[:12], "uploaded") for u in self.uploaded]
        rows += [(u.rel, u.step, u.size, u.sha256[:12], "unchanged") for u in self.skipped]
        return (render(("object", "step", "bytes", "sha256", "status"), rows, right=(2,))
                + f"\n{self.url}: {len(self.uploaded)} uploaded, {len(self.skipped)} unchanged, {self.verified} "
                  "verified against the manifest")


def upload_plan(root: Path, files: Mapping[str, str], models: list[str]) -> list[Upload]:
    """The objects of a repository in upload order (module docstring), the manifest last.

    Args:
        root: The repository folder.
        files: Repository-relative path → sha256 of every recorded file (the manifest's models and plugins).
        models: The manifest's model names.

    Raises:
        SpecError: A recorded path lies outside the model folders (a manifest trtrepo did not write).
    """
    from trtrepo.repository.config import CONFIG_FILENAME
    from trtrepo.repository.manifest import MANIFEST_FILENAME

    by_model: dict[str, list[str]] = {m: [] for m in models}
    for rel in files:
        model = rel.partition("/")[0]
        if model not in by_model or "/" not in rel:
            raise SpecError(f"{root / MANIFEST_FILENAME}: recorded file {rel!r} is not inside a model folder",
                            hint="rebuild the repository with trtrepo build")
        by_model[model].append(rel)

    def step(rel: str) -> str:
        if rel.partition("/")[2] == CONFIG_FILENAME:
            return "config"
        return "entry" if _VERSION_ENTRY.match(rel) else "files"

    plan = []
    for model in sorted(by_model):
        for rel in sorted(by_model[model], key=lambda r: (STEPS.index(step(r)), r)):
            plan.append(Upload(rel, root / rel, files[rel], step(rel), (root / rel).stat().st_size))
    manifest = root / MANIFEST_FILENAME
    from trtrepo._hashing import sha256_file

    plan.append(Upload(MANIFEST_FILENAME, manifest, sha256_file(manifest), "manifest", manifest.stat().st_size))
    return plan


def publish(repository: str | Path, url_text: str, *, endpoint_url: str | None = None,
            progress: Progress = LOGGER.info, after_upload: Callable[[Upload], None] | None = None) -> PublishReport:
    """Upload ``repository`` to ``url_text`` in the order of :func:`upload_plan`, then verify it there.

    Args:
        repository: A repository folder written by ``trtrepo build`` (with its manifest).
        url_text: ``s3://bucket/prefix`` (or Triton's ``s3://http://host:port/bucket/prefix``), ``gs://bucket/prefix``,
            ``as://account/container/prefix``.
        endpoint_url: An S3-compatible endpoint (MinIO, moto), a GCS emulator, an Azure Blob emulator (Azurite).
        progress: One line per object.
        after_upload: Called after each object is put (tests slow the upload down with it).

    Raises:
        SpecError: Bad URL; a repository without a manifest; a published model that would change.
        ServeError: The repository differs from its manifest.
        MissingDependencyError: The store's client library is not installed.
        RemoteError: The store failed, or what was uploaded does not read back as the manifest says.
    """
    from trtrepo.remote import open_store, parse_url
    from trtrepo.repository.manifest import MANIFEST_FILENAME
    from trtrepo.repository.reader import read_manifest
    from trtrepo.serve import verify_repository

    url = parse_url(url_text, endpoint_url)
    root = Path(repository).resolve()
    verification = verify_repository(root)
    manifest = read_manifest(root) if verification.has_manifest else None
    if manifest is None:
        raise SpecError(f"{root}: no {MANIFEST_FILENAME}: publish takes a repository written by trtrepo build",
                        hint="trtrepo build model.yaml --out REPO")
    files: dict[str, str] = {}
    for record in manifest.models.values():
        files.update(record.files)
    files.update(manifest.plugins)
    plan = upload_plan(root, files, sorted(manifest.models))
    store = open_store(url)
    published = store.list()
    _refuse_changes(url_text, store, published, plan, sorted(manifest.models))
    report = PublishReport(url=str(url))
    todo = []
    for item in plan:
        info = store.head(item.rel) if item.rel in published else None
        if info is not None and info.sha256 == item.sha256 and info.size == item.size:
            report.skipped.append(item)
        else:
            todo.append(item)
    total = sum(u.size for u in todo)
    progress(f"publish: {root} -> {url}: {len(todo)} objects ({total / 1e6:.1f} MB) to upload, "
             f"{len(report.skipped)} unchanged")
    for number, item in enumerate(todo, 1):
        progress(f"publish: [{number}/{len(todo)}] {item.rel} ({item.size / 1e6:.2f} MB, {item.step})")
        store.put_file(item.rel, item.path, item.sha256)
        report.uploaded.append(item)
        if after_upload is not None:
            after_upload(item)
    report.verified = verify_published(url, store=store, expected_manifest=plan[-1].sha256, progress=progress)
    return report


def verify_published(url_text: object, *, endpoint_url: str | None = None, store: object = None,
                     expected_manifest: str | None = None, progress: Progress = LOGGER.info) -> int:
    """``publish --verify-only``: every object of a published repository against its manifest.

    Args:
        url_text: The repository URL (or a parsed :class:`~trtrepo.remote.RepositoryURL`).
        endpoint_url: An S3-compatible endpoint.
        store: An open store to reuse.
        expected_manifest: sha256 the published manifest must have (the local one, after an upload).
        progress: One line per step.

    Returns:
        How many objects were verified.

    Raises:
        RemoteError: No manifest at the URL, or an object is missing, changed, or not in the manifest (named).
    """
    from trtrepo._hashing import sha256_bytes
    from trtrepo.remote import RemoteError, RepositoryURL, Store, describe, open_store, parse_url, verify_objects
    from trtrepo.repository.manifest import MANIFEST_FILENAME, Manifest, ManifestError

    url = url_text if isinstance(url_text, RepositoryURL) else parse_url(str(url_text), endpoint_url)
    s3 = store if isinstance(store, Store) else open_store(url)
    listing = s3.list()
    if MANIFEST_FILENAME not in listing:
        raise RemoteError(f"{url}/{MANIFEST_FILENAME}: no such object: not a repository published by trtrepo "
                          "publish", hint="trtrepo publish REPO URL")
    raw = s3.read(MANIFEST_FILENAME)
    if expected_manifest is not None and sha256_bytes(raw) != expected_manifest:
        raise RemoteError(f"{url}/{MANIFEST_FILENAME}: differs from the manifest just uploaded (another publish "
                          "to the same URL at the same time?)")
    try:
        manifest = Manifest.from_dict(json.loads(raw))
    except (ValueError, ManifestError) as exc:
        raise RemoteError(f"{url}/{MANIFEST_FILENAME}: not a trtrepo manifest: {exc}") from None
    recorded: dict[str, str] = {}
    for record in manifest.models.values():
        recorded.update(record.files)
    recorded.update(manifest.plugins)
    progress(f"verify: {len(recorded)} objects of {url} against its manifest")
    findings = verify_objects(s3, recorded, listing, sorted(manifest.models))
    if findings:
        raise RemoteError(describe(url, findings), hint="publish the repository again (trtrepo publish REPO URL)")
    progress(f"verify: {url}: {len(recorded)} objects match the manifest")
    return len(recorded)


def _refuse_changes(url_text: str, store: object, published: Mapping[str, object], plan: list[Upload],
                    models: list[str]) -> None:
    """SpecError when publishing would change or drop a model that polling replicas may already serve."""
    from trtrepo.remote import Store
    from trtrepo.repository.config import CONFIG_FILENAME

    assert isinstance(store, Store)
    ours = {u.rel: u for u in plan}
    published_models = sorted({rel.partition("/")[0] for rel in published
                               if rel.endswith("/" + CONFIG_FILENAME) and rel.count("/") == 1})
    for model in published_models:
        if model not in models:
            raise SpecError(f"{url_text}: model {model!r} is published there but not in this repository",
                            hint="publish to a new prefix: S3 cannot remove a served model folder at once")
        for rel in sorted(r for r in published if r.startswith(model + "/")):
            item = ours.get(rel)
            info = store.head(rel)
            if item is None or info is None or info.sha256 != item.sha256:
                raise SpecError(f"{url_text}/{rel}: model {model!r} is already published with other files; "
                                "replacing it object by object would show polling replicas a mix of old and new",
                                hint="publish the new build to a new prefix and point the replicas at it")
