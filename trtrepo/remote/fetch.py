"""Read a published repository back from its URL: verify every object against the manifest, and mirror what must
exist locally before a server starts.

What a server needs locally is small: the manifest and each model's config.pbtxt (to know the models), and the
TensorRT plugin libraries (``--backend-config=tensorrt,plugins=...`` takes local paths only: Triton cannot load a
server-wide plugin from S3). They go into a mirror folder under the cache (``$TRTREPO_CACHE_DIR/remote/<url
hash>/``) laid out like the repository, so :func:`trtrepo.repository.reader.read_repository` and
:func:`trtrepo.repository.plugins.served_plugin_libraries` read it unchanged and the flags point into it. Each file
is written to a temporary name and renamed into place, so replicas sharing a cache never read a half-written one.

Verification streams every object the manifest records (models' files and plugin copies) through sha256: the bytes
as stored must equal the manifest's hash, the ``sha256`` metadata trtrepo publish stored must agree, and a model
folder must hold no object the manifest does not list (``logs/`` aside). The manifest is the root of trust; Triton
downloads the repository again itself after the check (an object replaced in between is not caught).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trtrepo import settings
from trtrepo.errors import ServeError
from trtrepo.remote.store import ObjectInfo, RemoteError, Store, open_store
from trtrepo.remote.url import RepositoryURL, parse_url
from trtrepo.serve.verify import ALLOW_HINT, LOGS_DIRNAME, SHOWN, Finding

LOGGER = logging.getLogger(__name__)

MIRROR_DIRNAME = "remote"
BACKEND_CONFIG_FILE = "backend-config.txt"  # what `trtrepo fetch-plugins` writes (the Kubernetes init container's)
READABLE = 0o644  # fetched files are read by the server, which may run as another user (an init container's)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RemoteRepository:
    """A published repository, verified, with its local mirror.

    Attributes:
        url: Where it is.
        mirror: The local folder holding its manifest, configs and TensorRT plugin libraries.
        plugins: The TensorRT plugin libraries to load server-wide (absolute paths inside ``mirror`` or the
            fetch destination), each library once.
        files_checked: Objects hashed.
        findings: Objects that differ from the manifest (empty unless ``allow_modified`` let them through).
    """

    url: RepositoryURL
    mirror: Path
    plugins: tuple[Path, ...]
    files_checked: int
    findings: tuple[Finding, ...] = ()

    @property
    def backend_config(self) -> list[str]:
        """The tritonserver arguments that load :attr:`plugins` (empty list for none)."""
        from trtrepo.repository.plugins import plugin_backend_config

        return plugin_backend_config(list(self.plugins))


def mirror_folder(url: RepositoryURL) -> Path:
    """The cache folder that mirrors ``url`` (not created here)."""
    digest = hashlib.sha256(url.triton_url.encode()).hexdigest()[:12]
    name = (url.prefix.rsplit("/", 1)[-1] or url.bucket).replace(".", "_")
    return settings.cache_dir() / MIRROR_DIRNAME / f"{name}-{digest}"


def open_remote(text: str | RepositoryURL, *, endpoint_url: str | None = None, dest: Path | None = None,
                allow_modified: bool = False, offer_allow: bool = False,
                progress: Progress = LOGGER.info) -> RemoteRepository:
    """Verify the repository at a URL against its manifest and fetch what a server needs locally.

    Args:
        text: The repository URL (or a parsed one).
        endpoint_url: ``--endpoint-url``: an S3-compatible store, a GCS emulator, an Azure Blob emulator.
        dest: Where the plugin libraries go (default: the mirror under the cache).
        allow_modified: Warn about objects that differ from the manifest instead of refusing (plugin libraries
            are always refused: the server would load code nobody built).
        offer_allow: Name ``--allow-modified`` in the hint (the caller has that option).
        progress: One line per step.

    Raises:
        SpecError: A malformed URL.
        MissingDependencyError: The store's client library (boto3, google-cloud-storage, azure-storage-blob) is
            not installed.
        RemoteError: The store cannot be reached, has no manifest at the URL, or an object differs from the
            manifest (names the object).
    """
    from trtrepo.repository.config import CONFIG_FILENAME
    from trtrepo.repository.manifest import MANIFEST_FILENAME
    from trtrepo.repository.plugins import served_plugin_libraries
    from trtrepo.repository.reader import read_manifest, read_repository

    url = text if isinstance(text, RepositoryURL) else parse_url(text, endpoint_url)
    store = open_store(url)
    mirror = mirror_folder(url)
    listing = store.list()
    if MANIFEST_FILENAME not in listing:
        raise RemoteError(f"{url}/{MANIFEST_FILENAME}: no such object ({len(listing)} objects under the prefix): not "
                          "a repository published by trtrepo publish", hint="trtrepo publish REPO URL")
    _write(mirror / MANIFEST_FILENAME, store.read(MANIFEST_FILENAME))
    try:
        manifest = read_manifest(mirror)
    except ServeError as exc:
        raise RemoteError(f"{url}/{MANIFEST_FILENAME}: {exc.message}", hint=exc.hint) from None
    assert manifest is not None
    recorded: dict[str, str] = {}
    for record in manifest.models.values():
        recorded.update(record.files)
    recorded.update(manifest.plugins)
    plugin_dest = Path(dest).resolve() if dest is not None else mirror
    keep = {f"{name}/{CONFIG_FILENAME}": mirror / name / CONFIG_FILENAME for name in manifest.models}
    for name, record in manifest.models.items():
        if record.target == "tensorrt":
            keep.update({f"{name}/{rel}": plugin_dest / name / rel for rel in record.plugin_libraries})
    total = sum(listing[r].size for r in recorded if r in listing)
    progress(f"verify: {len(recorded)} objects of {url} ({total / 1e6:.1f} MB) against its manifest")
    findings = verify_objects(store, recorded, listing, sorted(manifest.models), keep)
    plugin_rels = {r for r, p in keep.items() if p.is_relative_to(plugin_dest) and not r.endswith(CONFIG_FILENAME)}
    bad_plugins = [f for f in findings if f.path in plugin_rels]
    if findings and (not allow_modified or bad_plugins):
        allow = f", or pass {ALLOW_HINT} to serve it as it is" if offer_allow and not bad_plugins else ""
        raise RemoteError(describe(url, findings),
                          hint=f"publish the repository again (trtrepo publish REPO URL){allow}")
    for finding in findings:
        LOGGER.warning("%s: %s: served anyway (%s)", url, finding.describe(), ALLOW_HINT)
    if plugin_dest != mirror:  # fetch-plugins: the configs stay in the mirror, the libraries go to DEST
        for name in manifest.models:
            view_dir = mirror / name
            for rel in (manifest.models[name].plugin_libraries if manifest.models[name].target == "tensorrt" else ()):
                _link(plugin_dest / name / rel, view_dir / rel)
    _prune(mirror, set(manifest.models))
    plugins = served_plugin_libraries(read_repository(mirror))  # resolves the links: paths inside plugin_dest
    if plugins:
        progress(f"plugins: {len(plugins)} TensorRT plugin librar{'y' if len(plugins) == 1 else 'ies'} in "
                 f"{plugin_dest}, sha256 verified")
    return RemoteRepository(url=url, mirror=mirror, plugins=tuple(plugins), files_checked=len(recorded),
                            findings=tuple(findings))


def verify_objects(store: Store, recorded: dict[str, str], listing: dict[str, ObjectInfo], models: list[str],
                   keep: dict[str, Path] | None = None) -> list[Finding]:
    """Compare every recorded object with the manifest; the objects named in ``keep`` are also written there.

    Args:
        store: The store.
        recorded: Repository-relative path → sha256 from the manifest.
        listing: What the store holds under the prefix (:meth:`Store.list`).
        models: The manifest's model folders (objects inside them that it does not list are findings).
        keep: Path → local file to write the object's bytes to (renamed into place only when they verify).

    Returns:
        The findings (``missing``, ``changed``, ``extra``), in path order.
    """
    findings: list[Finding] = []
    for rel, expected in sorted(recorded.items()):
        if rel not in listing:
            findings.append(Finding(rel, "missing"))
            continue
        target = (keep or {}).get(rel)
        actual = _hash_object(store, rel, target, expected)
        if actual != expected:
            findings.append(Finding(rel, "changed", f"manifest sha256 {expected[:12]}, object {actual[:12]}"))
            continue
        info = store.head(rel)
        stored = info.sha256 if info is not None else None
        if stored is not None and stored != expected:
            findings.append(Finding(rel, "changed", f"manifest sha256 {expected[:12]}, object metadata "
                                                    f"sha256 {stored[:12]}"))
    for rel in sorted(listing):
        model, _, inside = rel.partition("/")
        if model in models and inside and rel not in recorded and not inside.startswith(LOGS_DIRNAME + "/"):
            findings.append(Finding(rel, "extra"))
    return sorted(findings, key=lambda f: f.path)


def describe(url: RepositoryURL, findings: list[Finding]) -> str:
    """One line naming the first objects that differ (``s3://b/p/gelu_block/1/model.py changed ...``)."""
    shown = "; ".join(f"{url}/{f.describe()}" for f in findings[:SHOWN])
    more = f"; and {len(findings) - SHOWN} more" if len(findings) > SHOWN else ""
    return (shown + more).replace("changed after the build", "differs from the manifest")


def write_backend_config(dest: Path, remote: RemoteRepository) -> Path:
    """``DEST/backend-config.txt``: the one ``--backend-config=tensorrt,plugins=...`` line (empty: no plugins)."""
    flags = remote.backend_config
    path = Path(dest) / BACKEND_CONFIG_FILE
    _write(path, ("\n".join(flags) + "\n" if flags else "").encode())
    return path


def fetch_plugins(text: str, dest: str | Path, *, endpoint_url: str | None = None,
                  progress: Progress = LOGGER.info) -> Path:
    """``trtrepo fetch-plugins``: verify the repository, put its TensorRT plugin libraries in ``dest``.

    ``dest`` gets ``<model>/plugins/<lib>.so`` for each TensorRT model's libraries (sha256 checked) and
    ``backend-config.txt`` (:func:`write_backend_config`). Nothing is written to ``dest`` unless every object
    verifies.

    Returns:
        The backend-config.txt written.
    """
    remote = open_remote(text, endpoint_url=endpoint_url, dest=Path(dest), progress=progress)
    path = write_backend_config(Path(dest).resolve(), remote)
    progress(f"backend config: {path}")
    return path


# --------------------------------------------------------------------------------------------------- helpers
def _hash_object(store: Store, rel: str, target: Path | None, expected: str) -> str:
    """sha256 of the object; with ``target``, its bytes land there only when they match ``expected``."""
    if target is None:
        return store.sha256(rel)
    if target.is_file() and not target.is_symlink():
        from trtrepo._hashing import sha256_file

        if sha256_file(target) == expected:  # already fetched by an earlier run (or another replica)
            return store.sha256(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            actual = store.sha256(rel, out.write)
        if actual == expected:
            os.chmod(tmp, READABLE)
            os.replace(tmp, target)
        return actual
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _prune(mirror: Path, models: set[str]) -> None:
    """Drop mirrored model folders the manifest no longer lists (a model removed by a later publish)."""
    import shutil

    for folder in mirror.iterdir():
        if folder.is_dir() and folder.name not in models:
            shutil.rmtree(folder, ignore_errors=True)


def _link(source: Path, link: Path) -> None:
    """``link`` → ``source`` (a symlink), so the mirror's model folders see the libraries fetched elsewhere."""
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(source)
