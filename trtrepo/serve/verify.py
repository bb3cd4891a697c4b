"""Before a repository is served: is it what its manifest says it is?

The manifest (``trtrepo-manifest.json``) records the sha256 of every file of every model folder it built (build
logs excluded) and of every plugin library copy. A file edited after the build (model.py, a plugin library, a
config.pbtxt), one that went missing, or a file the build did not write inside a recorded model folder means the
server would serve something no build or check vouched for: :func:`verify_repository` refuses it with one line
naming the file, unless the caller allows it on purpose (``--allow-modified``), which then warns naming the files.

Only what the manifest lists is hashed; the rest of a model folder is only listed (a stat per file).

Python-backend servers write ``__pycache__/<name>.<tag>.pyc`` beside model.py when they import it (the stub's
embedded interpreter runs isolated, so no environment variable stops it). Such a file is accepted when Python would
ignore it (its header does not match the source) or when it holds exactly the code of its recorded source (which
is verified on its own); any other file in ``__pycache__`` is an extra file like any other.
"""

from __future__ import annotations

import importlib.util
import logging
import marshal
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from trtrepo._hashing import sha256_file
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

LOGS_DIRNAME = "logs"  # <model>/logs/: build logs, not served, not recorded
PYCACHE = "__pycache__"
SHOWN = 3  # files named in the one-line message; the rest are counted
ALLOW_HINT = "--allow-modified"


@dataclass(frozen=True)
class Finding:
    """One file that is not what the manifest says.

    Attributes:
        path: Repository-relative path (posix).
        kind: ``changed``, ``missing``, ``extra`` or ``unreadable``.
        detail: What differs (recorded and actual sha256, the read error).
    """

    path: str
    kind: str
    detail: str = ""

    def describe(self) -> str:
        """``gelu_block/1/model.py changed after the build (...)`` and the like."""
        text = {"changed": "changed after the build", "missing": "is missing", "extra": "is not in the manifest",
                "unreadable": "cannot be read"}[self.kind]
        return f"{self.path} {text}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Verification:
    """What :func:`inspect_repository` found.

    Attributes:
        root: The repository folder.
        has_manifest: False for a repository trtrepo did not build (nothing is claimed, nothing is checked).
        files_checked: Files hashed.
        findings: Files that differ from the manifest, in path order.
        unrecorded_models: Model folders (with a config.pbtxt) the manifest does not list: served unverified.
        spec: The model.yaml of the last build (for the hint), '' when unknown.
    """

    root: Path
    has_manifest: bool
    files_checked: int = 0
    findings: tuple[Finding, ...] = ()
    unrecorded_models: tuple[str, ...] = ()
    spec: str = ""

    @property
    def ok(self) -> bool:
        """Every recorded file is there and unchanged, and no model folder holds a file the build did not write."""
        return not self.findings

    def summary(self) -> str:
        """One line naming the first files that differ and counting the rest."""
        if not self.findings:
            return f"{self.root}: {self.files_checked} files match the manifest"
        shown = "; ".join(f.describe() for f in self.findings[:SHOWN])
        more = f"; and {len(self.findings) - SHOWN} more" if len(self.findings) > SHOWN else ""
        return f"repository {self.root}: {shown}{more}"


def inspect_repository(root: str | Path) -> Verification:
    """Compare the repository at ``root`` with its manifest; never raises for a difference (see :attr:`findings`).

    Raises:
        ServeError: ``root`` is not a folder, or the manifest exists but cannot be read (names the file and why).
    """
    from trtrepo.repository.config import CONFIG_FILENAME
    from trtrepo.repository.manifest import MANIFEST_FILENAME
    from trtrepo.repository.reader import read_manifest

    path = Path(root).resolve()
    if not path.is_dir():
        raise ServeError(f"repository {path} does not exist", hint="run trtrepo build model.yaml first")
    manifest_path = path / MANIFEST_FILENAME
    if os.path.lexists(manifest_path) and not manifest_path.is_file():
        raise ServeError(f"{manifest_path}: not a readable file", hint="rebuild the repository with trtrepo build")
    manifest = read_manifest(path)
    if manifest is None:
        LOGGER.info("%s has no %s: served as it is, nothing to verify", path, MANIFEST_FILENAME)
        return Verification(root=path, has_manifest=False)

    recorded: dict[str, str] = {}
    for record in manifest.models.values():
        recorded.update(record.files)
    recorded.update(manifest.plugins)
    findings = [f for rel, expected in sorted(recorded.items()) if (f := _compare(path, rel, expected)) is not None]
    for name in sorted(manifest.models):
        findings += _extra_files(path, name, recorded)
    unrecorded = tuple(sorted(p.name for p in path.iterdir()
                              if p.name not in manifest.models and (p / CONFIG_FILENAME).is_file()))
    return Verification(root=path, has_manifest=True, files_checked=len(recorded),
                        findings=tuple(sorted(findings, key=lambda f: f.path)), unrecorded_models=unrecorded,
                        spec=manifest.spec_path)


def verify_repository(root: str | Path, *, allow_modified: bool = False) -> Verification:
    """Refuse a repository whose files differ from its manifest; with ``allow_modified``, warn and go on.

    Args:
        root: The repository folder.
        allow_modified: Serve a repository that differs from its manifest (for people who edit it on purpose);
            every differing file is named in a warning.

    Returns:
        The verification (``ok`` False only when ``allow_modified`` let differences through).

    Raises:
        ServeError: A recorded file changed or is missing, or a model folder holds a file the build did not write;
            or the manifest cannot be read.
    """
    result = inspect_repository(root)
    for model in result.unrecorded_models:
        LOGGER.warning("%s: model folder %r is not in the manifest: served unverified", result.root, model)
    if result.ok:
        LOGGER.debug("%s", result.summary())
        return result
    if not allow_modified:
        rebuild = f"trtrepo build {result.spec}" if result.spec else "trtrepo build <model.yaml>"
        raise ServeError(result.summary(), hint=f"rebuild it ({rebuild}), or pass {ALLOW_HINT} to serve it as it is")
    for finding in result.findings:
        LOGGER.warning("%s: %s: served anyway (%s)", result.root, finding.describe(), ALLOW_HINT)
    return result


# --------------------------------------------------------------------------------------------------- helpers
def _entry_digest(path: Path) -> str | None:
    """What :func:`trtrepo._hashing.hash_tree` records for one path; None when there is no file."""
    if path.is_symlink():
        return "symlink:" + os.readlink(path)
    if path.is_file():
        return sha256_file(path)
    return None


def _compare(root: Path, rel: str, expected: str) -> Finding | None:
    try:
        actual = _entry_digest(root / rel)
    except OSError as exc:
        return Finding(rel, "unreadable", exc.strerror or str(exc))
    if actual is None:
        return Finding(rel, "missing")
    if actual != expected:
        return Finding(rel, "changed", f"manifest sha256 {_short(expected)}, file {_short(actual)}")
    return None


def _short(digest: str) -> str:
    return digest if digest.startswith("symlink:") else digest[:12]


def _extra_files(root: Path, model: str, recorded: dict[str, str]) -> list[Finding]:
    """Files inside the model folder that the manifest does not list (its ``logs/`` left out)."""
    folder = root / model
    if not folder.is_dir():
        return []
    found = []
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        if here == folder and LOGS_DIRNAME in dirs:
            dirs.remove(LOGS_DIRNAME)
        links = [d for d in dirs if (here / d).is_symlink()]  # a linked folder is one entry, as hash_tree sees it
        dirs[:] = [d for d in dirs if d not in links]
        for name in sorted([*files, *links]):
            rel = (here / name).relative_to(root).as_posix()
            if rel in recorded:
                continue
            if here.name == PYCACHE and _harmless_pyc(here / name, root, recorded):
                continue
            found.append(Finding(rel, "extra"))
    return found


def _harmless_pyc(pyc: Path, root: Path, recorded: dict[str, str]) -> bool:
    """True for a ``__pycache__`` file Python would ignore, or that holds exactly the code of its source.

    The source must be a file the manifest records; whether it still matches is the source's own finding (a pyc
    compiled from an edited model.py is that edit, already named, not a second lie).
    """
    parts = pyc.name.split(".")
    if len(parts) < 3 or parts[-1] != "pyc" or pyc.is_symlink():
        return False
    source = pyc.parent.parent / f"{parts[0]}.py"
    if source.relative_to(root).as_posix() not in recorded:
        return False
    try:
        data = pyc.read_bytes()
        source_bytes = source.read_bytes()
        stat = source.stat()
    except OSError:
        return False
    if len(data) < 16:
        return True  # the loader rejects a truncated header and compiles the source
    ours = parts[1] == sys.implementation.cache_tag
    if ours and data[:4] != importlib.util.MAGIC_NUMBER:
        return True  # another bytecode version: this Python recompiles
    flags = int.from_bytes(data[4:8], "little")
    if flags == 0:  # timestamp pyc: used only while the source's mtime and size match the header
        used = (int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF)
    elif flags & 0b10:  # checked hash pyc
        used = data[8:16] == importlib.util.source_hash(source_bytes)
    else:  # unchecked hash pyc: used whatever the source holds
        used = True
    if not used:
        return True
    if not ours:
        # another Python's bytecode cannot be compiled here; a timestamp pyc whose header matches the verified
        # source was compiled from it by a server running that Python
        return flags == 0
    optimize = int(parts[2][4:]) if len(parts) == 4 and parts[2].startswith("opt-") and parts[2][4:].isdigit() else 0
    try:
        cached = marshal.loads(data[16:])
        fresh = compile(source_bytes, str(source), "exec", dont_inherit=True, optimize=optimize)
    except Exception as exc:  # unreadable bytecode: Python would fail on it, not run something else
        LOGGER.debug("%s: %s", pyc, exc)
        return False
    return bool(cached == fresh)
