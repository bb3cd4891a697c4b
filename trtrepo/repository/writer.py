"""Write the Triton model repository: stage beside the target, then swap it in atomically.

Layout written::

    <repository>/
      <model>/config.pbtxt            # through ModelConfig protobuf (trtrepo.repository.config)
      <model>/<version>/<files>       # what the target built (model.plan, model.pt2 + model.py, ...)
      <model>/plugins/<lib>.so        # each library the model needs, copied into its own folder
      <model>/logs/                   # its build logs: ops/ (the op library builds) and the target's logs
      <model>/warmup/<input>          # raw warm-up data when warmup.data is "sample"
      launch.sh                       # tritonserver command with the plugin flags (TensorRT plugin models)
      trtrepo-manifest.json           # versions, hashes, per-model record

Every folder at the repository root is a model folder: tritonserver polls each root folder as a model and fails
to start on any other, while it ignores non-numeric folders inside a model folder (``plugins``, ``logs``,
``warmup``). So a plain ``tritonserver --model-repository <repository>`` loads it. Paths in config.pbtxt and in
the manifest's per-model records are relative to the model folder (``plugins/libtrtrepo_ops.so``).

Builds into one repository take turns (:mod:`trtrepo.repository.lock`): the previous repository's manifest is read
under the lock, so a build merges with whatever the build before it wrote, even one of another spec that finished
while this one was exporting. Everything is written into a staging folder beside the target (same filesystem,
``.<name>.staging-<pid>-<token>``), then swapped in:

- **exchange** (Linux, where the filesystem has it): one ``renameat2(RENAME_EXCHANGE)`` swaps the two folders, so
  the path always names a complete repository, the previous one until the new one; the staging name then holds
  the previous repository, which is removed.
- **rename** (where the filesystem lacks it, or ``TRTREPO_SWAP=rename``): the previous repository is renamed to
  ``.<name>.previous-<pid>-<token>``, the staging folder to the path, then the backup is removed. A kill between
  the two renames leaves no repository at the path, and the backup beside it.

Whatever a killed build left is handled by the next build, under the lock (so every staging or backup folder of the
repository then belongs to a build that is gone): a backup beside a missing repository is renamed back (never
replaced by a repository without the old models), other backups and staging folders are removed. Any failure
before the swap leaves the previous repository untouched, byte for byte, and removes the staging folder.

Models of the previous repository that this build does not rebuild (``--models a`` keeps ``b``), and files
trtrepo did not write (a README.md), are carried over as hard links of the previous files (same inode: owner, mode,
times and other hard links stay; copies with those kept where a link is refused). The new repository folder takes
the previous one's owner, mode and extended attributes; a first repository gets the umask's mode.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import settings
from trtrepo._hashing import hash_tree, sha256_file
from trtrepo.contracts import ModelArtifacts, Progress
from trtrepo.errors import BuildError, SpecError
from trtrepo.repository import config as cfg
from trtrepo.repository.launch import LAUNCH_SCRIPT, launch_script
from trtrepo.repository.lock import repository_lock
from trtrepo.repository.manifest import (
    MANIFEST_FILENAME,
    MANIFEST_SCHEMA,
    Manifest,
    ManifestError,
    OpsRecord,
    ServingRecord,
    write_manifest,
)

if TYPE_CHECKING:
    from trtrepo.ops.build import BuiltOps
    from trtrepo.spec import ModelSpec, Spec

LOGGER = logging.getLogger(__name__)

PLUGINS_DIRNAME = "plugins"  # inside each model folder
LOGS_DIRNAME = "logs"  # inside each model folder
OPS_LOGS_DIRNAME = "ops"  # <model>/logs/ops/: the op library build logs
RESERVED = (LAUNCH_SCRIPT, MANIFEST_FILENAME)
STAGING = "staging"  # .<name>.staging-<pid>-<token>: the new repository being written
PREVIOUS = "previous"  # .<name>.previous-<pid>-<token>: the previous repository during a two-rename swap
# the longest suffix trtrepo puts after the repository's name beside it: ".previous-" + pid (7 digits) + "-" + 8 hex
ASIDE_SUFFIX_BYTES = len(".") + len(f".{PREVIOUS}-") + 7 + 1 + 8
# what a version-control checkout keeps in a folder meant to be empty (model_repository/README.md): not "files"
PLACEHOLDER_FILES = frozenset({"README", "README.md", "README.txt", "README.rst", ".gitignore", ".gitkeep", ".keep"})


def write_repository(
    spec: Spec,
    built: Mapping[str, tuple[ModelSpec, ModelArtifacts]],
    out: Path,
    *,
    ops: BuiltOps | None = None,
    environment: Mapping[str, Any],
    device: str = "cpu",
    log_dir: Path | None = None,
    where: str = "repository",
    progress: Progress = LOGGER.info,
) -> Path:
    """Write (or update) the repository at ``out`` atomically.

    Args:
        spec: The validated model.yaml.
        built: Model name → (its spec, what its target built), for the models built now.
        out: The repository folder.
        ops: The built custom ops or None; recorded in the manifest.
        environment: Versions and hardware facts (``trtrepo.repository.manifest.environment()``).
        device: ``cuda`` or ``cpu``: where the build ran (instance groups of kind ``auto``).
        log_dir: Build logs to copy into the models' ``logs/`` (``<model>/...`` and ``<model>.*`` go to that model,
            other files to every model built now).
        where: How messages name the repository: ``repository`` (the spec's key) or ``--out``.
        progress: One-line progress messages (waiting for another build that writes the same repository).

    Returns:
        The repository path.

    Raises:
        SpecError: The target is not a folder, or a folder trtrepo did not write (:func:`check_repository_target`).
        BuildError: The previous manifest cannot be read back (:func:`previous_manifest`), two libraries of one
            model share a file name, a kept model lacks its libraries, an artifact is inconsistent, another build
            held the repository too long, or the swap failed; the previous repository is unchanged.
    """
    out = Path(out).resolve()
    check_repository_target(out, where)
    out.parent.mkdir(parents=True, exist_ok=True)
    with repository_lock(out, where=where, progress=progress):
        _debug_pause("locked")
        recover(out, where=where, progress=progress)
        check_repository_target(out, where)  # again: what another build left while this one waited
        staging = _aside_name(out, STAGING)
        try:
            staging.mkdir()  # the umask's mode, like any new folder (the previous repository's, below)
            _stage(spec, built, out, staging, ops=ops, environment=environment, device=device, log_dir=log_dir,
                   where=where)
            if out.is_dir():
                _take_folder_metadata(staging, out)
            _debug_pause("staged")
            _swap(staging, out)
        except OSError as exc:  # a full disk, a quota, a folder made read-only meanwhile: not trtrepo's bug
            shutil.rmtree(staging, ignore_errors=True)
            raise BuildError(f"{where}: cannot write the new repository beside {out}: {exc.strerror}"
                             f"{f' ({exc.filename})' if exc.filename else ''}; the previous one is unchanged") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    LOGGER.info("repository written: %s", out)
    return out


def check_repository_target(out: Path, where: str = "repository") -> None:
    """A build may replace ``out`` only when it is absent, empty, or a trtrepo repository (it has a manifest).

    Placeholder files a checkout keeps in an empty folder (``README.md``, ``.gitkeep``) do not count; a trtrepo
    repository carries them over.

    Args:
        out: The repository folder, absolute.
        where: How the message names it (``repository`` or ``--out``).

    Raises:
        SpecError: ``out`` is not a folder, or holds files trtrepo did not write and has no manifest (names a few).
        BuildError: ``out`` cannot be listed.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise SpecError(f"{where}: {out} exists and is not a folder", hint="give the repository a folder of its own")
    if (out / MANIFEST_FILENAME).is_file():
        return
    try:
        entries = sorted(os.listdir(out))
    except OSError as exc:
        raise BuildError(f"{where}: cannot list {out}: {exc.strerror}") from None
    foreign = [e for e in entries if not (e in PLACEHOLDER_FILES and (out / e).is_file())]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SpecError(f"{where}: {out} is not a trtrepo repository (it has no {MANIFEST_FILENAME}) and holds files "
                        f"trtrepo did not write: {shown}",
                        hint="build into a new or empty folder, or move what is there elsewhere first")


def recover(out: Path, *, where: str = "repository", progress: Progress = LOGGER.info) -> None:
    """Undo or clean what killed builds left beside ``out``; call it holding the repository's lock.

    A backup (``.<name>.previous-*``) beside a missing repository is the previous repository of a build killed
    between its two renames: it is renamed back. Every other backup and staging folder is removed: a staging folder
    holds a half-written repository, or after an exchange the previous one, and the repository at the path is
    complete.

    Raises:
        BuildError: The repository is missing and several backups of it are beside it (names them).
    """
    backups = _aside(out, PREVIOUS)
    if backups and not out.exists():
        if len(backups) > 1:
            raise BuildError(f"{where}: {out} is missing and {len(backups)} backups of it are beside it "
                             f"({', '.join(b.name for b in backups)}); cannot tell which one to restore",
                             hint=f"move the one to keep to {out}, then build again")
        os.rename(backups[0], out)
        progress(f"write: restored {out} from {backups[0].name} (a build was killed while it swapped the repository)")
        backups = []
    for leftover in [*_aside(out, STAGING), *backups]:
        _remove(leftover)
        progress(f"write: removed {leftover.name} beside {out} (left by a build that was killed)")


def _aside(out: Path, tag: str) -> list[Path]:
    """Staging or backup folders of ``out`` beside it, oldest name first."""
    prefix = f".{out.name}.{tag}-"
    try:
        names = os.listdir(out.parent)
    except FileNotFoundError:
        return []
    return sorted(out.parent / n for n in names if n.startswith(prefix))


def _aside_name(out: Path, tag: str) -> Path:
    """A fresh ``.<name>.<tag>-<pid>-<token>`` beside ``out`` (the pid says whose it was)."""
    return out.parent / f".{out.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def _remove(folder: Path) -> None:
    """Remove a folder trtrepo owns; what cannot be removed now is removed by the next build."""
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        LOGGER.warning("could not remove %s; the next build tries again", folder)


def previous_manifest(out: Path, where: str = "repository") -> Manifest | None:
    """The manifest of the repository a build replaces, None when there is none.

    Raises:
        BuildError: It cannot be read back: not JSON, another schema (an older trtrepo wrote it) or malformed. Its
            models cannot be kept then; the hint says how to start the repository anew.
    """
    path = out / MANIFEST_FILENAME
    if not path.is_file():
        return None
    fix = f"move the repository aside and build every model again (mv {shlex.quote(str(out))} " \
          f"{shlex.quote(str(out) + '.old')})"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not JSON: {exc}"
        raise BuildError(f"{where}: {path} cannot be read ({reason}); its models cannot be kept", hint=fix) from None
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if schema != MANIFEST_SCHEMA:
        raise BuildError(f"{where}: {path} is schema {schema!r}, written by another trtrepo (this one writes schema "
                         f"{MANIFEST_SCHEMA}); its models cannot be kept", hint=fix)
    try:
        return Manifest.from_dict(raw)
    except ManifestError as exc:
        raise BuildError(f"{where}: {path}: {exc.message}; its models cannot be kept", hint=fix) from None


def _debug_pause(point: str) -> None:
    """Stop at ``point`` when TRTREPO_DEBUG_PAUSE names it (fault tests kill the build there); SIGUSR1 ends the
    pause early (tests release the build when what they wait for has happened, instead of guessing a duration)."""
    pause = settings.debug_pause()
    if pause is None or pause[0] != point:
        return
    release = {signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, release)  # before the line: a SIGUSR1 sent on seeing it must not kill
    try:
        print(f"debug: paused at {point} (pid {os.getpid()})", file=sys.stderr, flush=True)
        signal.sigtimedwait(release, pause[1])
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, release)


# ---------------------------------------------------------------------------------------------------- staging
def _stage(
    spec: Spec,
    built: Mapping[str, tuple[ModelSpec, ModelArtifacts]],
    out: Path,
    staging: Path,
    *,
    ops: BuiltOps | None,
    environment: Mapping[str, Any],
    device: str,
    log_dir: Path | None,
    where: str,
) -> None:
    old = previous_manifest(out, where)
    old_models = dict(old.models) if old is not None else {}
    spec_names = {m.name for m in spec.models}
    records: dict[str, ServingRecord] = {}

    for name, (model, artifacts) in sorted(built.items()):
        model_dir = staging / name
        libs = _stage_plugins(name, artifacts.plugin_libraries, model_dir)
        _stage_model(model, artifacts, staging, device=device, op_libraries=libs)
        _stage_logs(model_dir, name, log_dir, ops, built_now=set(built))
        records[name] = _serving_record(spec, model, artifacts, staging, libs, device)

    if out.is_dir():
        records.update(_carry_over(out, staging, built, old_models, spec_names, spec.path))

    plugins = {f"{name}/{rel}": sha256_file(staging / name / rel)
               for name, rec in sorted(records.items()) for rel in rec.plugin_libraries}
    # the launch flags load libraries into the TensorRT backend: only TensorRT models' libraries belong there
    trt_plugins = [f"{name}/{rel}" for name, rec in sorted(records.items()) if rec.target == "tensorrt"
                   for rel in rec.plugin_libraries]
    if trt_plugins:
        script = staging / LAUNCH_SCRIPT
        script.write_text(launch_script(out, trt_plugins, plugins))
        script.chmod(0o755)

    manifest = Manifest(environment=dict(environment), spec_path=str(spec.path), spec_sha256=sha256_file(spec.path),
                        device=device, models=records, ops=_ops_record(ops), plugins=plugins)
    write_manifest(staging / MANIFEST_FILENAME, manifest)


def _stage_model(model: ModelSpec, artifacts: ModelArtifacts, staging: Path, *, device: str,
                 op_libraries: list[str]) -> None:
    model_dir = staging / model.name
    version_dir = model_dir / str(model.version)
    version_dir.mkdir(parents=True)
    for rel, data in sorted(artifacts.files.items()):
        target = (version_dir / rel).resolve()
        if version_dir.resolve() not in target.parents:
            raise BuildError(f"{model.yaml_path}: artifact file {rel!r} escapes the version folder {version_dir}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    config = cfg.model_config(model, artifacts, device=device, op_libraries=op_libraries)
    (model_dir / cfg.CONFIG_FILENAME).write_text(cfg.to_text(config))
    warmup = cfg.warmup_files(model, artifacts)
    if warmup:
        (model_dir / cfg.WARMUP_DIRNAME).mkdir()
        for name, data in warmup.items():
            (model_dir / cfg.WARMUP_DIRNAME / name).write_bytes(data)


def _stage_plugins(model: str, libraries: tuple[Path, ...], model_dir: Path) -> list[str]:
    """Copy the model's libraries into ``<model>/plugins/``; return their model-relative paths."""
    seen: dict[str, Path] = {}
    rels = []
    for lib in (Path(p) for p in libraries):
        if not lib.is_file():
            raise BuildError(f"models.{model}: plugin library {lib} does not exist",
                             hint="the op build did not produce it; see the build logs")
        rel = f"{PLUGINS_DIRNAME}/{lib.name}"
        if lib.name in seen:
            if seen[lib.name].resolve() != lib.resolve() and sha256_file(seen[lib.name]) != sha256_file(lib):
                raise BuildError(f"models.{model}: plugin library {lib} clashes with {seen[lib.name]} "
                                 f"(both would be {model}/{rel})", hint="give the libraries distinct file names")
            continue
        (model_dir / PLUGINS_DIRNAME).mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, model_dir / rel)
        seen[lib.name] = lib
        rels.append(rel)
    return rels


def _serving_record(spec: Spec, model: ModelSpec, artifacts: ModelArtifacts, staging: Path, libs: list[str],
                    device: str) -> ServingRecord:
    return ServingRecord(
        target=artifacts.target,
        version=model.version,
        precision=model.precision,
        platform=artifacts.platform,
        backend=artifacts.backend,
        inputs=artifacts.inputs,
        outputs=artifacts.outputs,
        output_names=dict(artifacts.output_names),
        plugin_libraries=tuple(libs),
        custom_ops=artifacts.custom_ops,
        lowerings=dict(artifacts.lowerings),
        required_creators=artifacts.required_creators,
        library_creators=dict(artifacts.library_creators),
        versions=dict(artifacts.versions),
        export_device=device,
        build=artifacts.build,
        files={f"{model.name}/{rel}": sha for rel, sha in hash_tree(staging / model.name, skip=[LOGS_DIRNAME]).items()},
        spec=str(spec.path),
        inputs_key=artifacts.inputs_key,
    )


def _carry_over(out: Path, staging: Path, built: Mapping[str, tuple[ModelSpec, ModelArtifacts]],
                old_models: dict[str, ServingRecord], spec_names: set[str],
                spec_path: Path) -> dict[str, ServingRecord]:
    """Copy what the previous repository holds that this build keeps; return the kept models' records."""
    kept: dict[str, ServingRecord] = {}
    links: dict[tuple[int, int], Path] = {}
    for entry in sorted(out.iterdir()):
        name = entry.name
        if name in RESERVED:
            continue
        if name in built:
            _carry_versions(entry, staging / name, built[name][0], links)
            continue
        # a model the previous build of THIS spec wrote and the spec no longer lists is dropped; models another
        # model.yaml wrote into the same repository stay
        if name in old_models and name not in spec_names and old_models[name].spec == str(spec_path):
            LOGGER.info("dropping model %r: it is no longer in %s", name, spec_path)
            continue
        _keep(entry, staging / name, links)
        if name in old_models:
            kept[name] = old_models[name]
            LOGGER.info("keeping model %r from the previous repository (not rebuilt)", name)
    # TensorRT models share one registry in the server: a kept plan gets the library the rebuilt plans load, so
    # the server loads one copy instead of two libraries registering the same creators
    rebuilt_trt = {Path(lib).name: staging / name / PLUGINS_DIRNAME / Path(lib).name
                   for name, (_, artifacts) in built.items() if artifacts.target == "tensorrt"
                   for lib in artifacts.plugin_libraries}
    for name, record in list(kept.items()):
        for rel in record.plugin_libraries:
            dest = staging / name / rel
            fresh = rebuilt_trt.get(Path(rel).name) if record.target == "tensorrt" else None
            if fresh is not None and (not dest.is_file() or sha256_file(dest) != sha256_file(fresh)):
                LOGGER.warning("kept TensorRT model %r now uses the rebuilt %s", name, Path(rel).name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.unlink(missing_ok=True)  # it may be a hard link to the previous repository's file
                shutil.copy2(fresh, dest)
                kept[name] = record = dataclasses.replace(record, files={**record.files,
                                                                         f"{name}/{rel}": sha256_file(dest)})
            elif dest.is_file():
                continue
            else:
                raise BuildError(f"repository: kept model {name!r} needs {out / name / rel}, which is missing",
                                 hint=f"rebuild it: trtrepo build <model.yaml> --models {name}")
    return kept


def _carry_versions(old_dir: Path, new_dir: Path, model: ModelSpec, links: dict[tuple[int, int], Path]) -> None:
    """Keep other version folders of a rebuilt model when its version_policy can serve them."""
    policy = model.triton.version_policy
    if policy.kind == "latest":
        return
    for entry in old_dir.iterdir():
        if not entry.is_dir() or not entry.name.isdigit() or int(entry.name) == model.version:
            continue
        if policy.kind == "specific" and int(entry.name) not in policy.versions:
            continue
        LOGGER.info("keeping %s/%s (version_policy %s)", model.name, entry.name, policy.kind)
        _keep(entry, new_dir / entry.name, links)


def _stage_logs(model_dir: Path, name: str, log_dir: Path | None, ops: BuiltOps | None, built_now: set[str]) -> None:
    """``<model>/logs/``: the op library build logs under ``ops/``, and this model's logs of ``log_dir``.

    In ``log_dir``, a folder ``<model>/`` and files ``<model>.*`` (``gelu.tensorrt.log``) belong to that model;
    anything named after no model built now is a log of the whole build and goes to every model.
    """
    logs = model_dir / LOGS_DIRNAME
    for dest, path in _ops_logs(ops).items():
        (logs / OPS_LOGS_DIRNAME / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, logs / OPS_LOGS_DIRNAME / dest)
    if log_dir is None or not Path(log_dir).is_dir():
        return
    for entry in sorted(Path(log_dir).iterdir()):
        owner = entry.name if entry.is_dir() else entry.name.split(".", 1)[0]
        if owner in built_now and owner != name:
            continue
        if entry.is_dir():
            shutil.copytree(entry, logs if owner == name else logs / entry.name, dirs_exist_ok=True)
        elif entry.is_file():
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, logs / entry.name)


def _ops_logs(ops: BuiltOps | None) -> dict[str, Path]:
    """Path under ``logs/ops/`` → build log of the op libraries (each root's torch library, TensorRT plugins, PTX),
    and ``gen/<op>/<file>`` → the sources trtrepo generated for them from op.yaml (bindings, launchers, plugins)."""
    if ops is None:
        return {}
    products: list[tuple[str, Path | None]] = [
        (f"torch_library-{lib.path.stem}" if len(ops.torch_libraries) > 1 else "torch_library", lib.path)
        for lib in ops.torch_libraries]
    products.append(("trt_plugin_library", ops.trt_plugin_library))
    products += [(f"ptx-{op.replace('::', '-')}", path) for op, path in sorted(ops.ptx.items())]
    out: dict[str, Path] = {}
    for label, product in products:
        if product is None:
            continue
        folder = Path(product).parent
        for log in sorted(folder.glob("*.log")):
            out[f"{label}.{log.name}"] = log
        for source in sorted(folder.glob("gen/*/*")):
            out.setdefault(source.relative_to(folder).as_posix(), source)
    return out


def _ops_record(ops: BuiltOps | None) -> OpsRecord | None:
    if ops is None:
        return None
    return OpsRecord(ops=tuple(sorted(ops.descriptions)), with_cuda=ops.with_cuda, hashes=dict(ops.hashes))


def _keep(src: Path, dest: Path, links: dict[tuple[int, int], Path]) -> None:
    """Carry ``src`` of the previous repository over to ``dest`` with its metadata.

    Files are hard-linked: the same inode keeps its owner, mode, times and every other hard link (and costs no
    copy). Where a link is refused (another filesystem's rules, ``fs.protected_hardlinks``) the file is copied with
    its mode and times, its owner where this process may set it, and files that were hard links of each other stay
    links of each other (``links``: (device, inode) of the source → its first copy). Folders are made anew with
    the source's mode, times and owner; nothing kept is ever written through, so the previous repository is never
    changed.
    """
    info = os.lstat(src)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), dest)
        _chown(dest, info, follow_symlinks=False)
    elif stat.S_ISDIR(info.st_mode):
        dest.mkdir()
        for child in sorted(src.iterdir()):
            _keep(child, dest / child.name, links)
        _chown(dest, info)
        shutil.copystat(src, dest, follow_symlinks=False)
    else:
        try:
            os.link(src, dest, follow_symlinks=False)
            return
        except OSError as exc:
            LOGGER.debug("cannot hard-link %s (%s): copying it", src, exc.strerror)
        first = links.get((info.st_dev, info.st_ino))
        if first is not None:
            os.link(first, dest)
            return
        shutil.copy2(src, dest, follow_symlinks=False)
        _chown(dest, info)
        links[(info.st_dev, info.st_ino)] = dest


def _chown(path: Path, like: os.stat_result, follow_symlinks: bool = True) -> None:
    """Give ``path`` the owner of ``like`` where this process may (root may; others keep their own)."""
    if (like.st_uid, like.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.chown(path, like.st_uid, like.st_gid, follow_symlinks=follow_symlinks)
    except PermissionError:
        try:  # a member of the group may still give it the group
            os.chown(path, -1, like.st_gid, follow_symlinks=follow_symlinks)
        except PermissionError:
            LOGGER.debug("cannot give %s the owner %d:%d", path, like.st_uid, like.st_gid)


def _take_folder_metadata(staging: Path, out: Path) -> None:
    """The new repository folder gets the previous one's owner, mode and extended attributes (ACLs among them).

    Without this the swap would leave a folder of this process's owner and mode (a tritonserver running as another
    user could no longer read the repository).
    """
    info = os.stat(out)
    _chown(staging, info)
    os.chmod(staging, stat.S_IMODE(info.st_mode))
    # its times stay this build's: the folder did change
    for name in _xattrs(out):
        try:
            os.setxattr(staging, name, os.getxattr(out, name))
        except OSError as exc:  # a security.* attribute this process may not set, a filesystem without them
            LOGGER.debug("cannot copy the extended attribute %s of %s: %s", name, out, exc.strerror)


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path)
    except OSError:
        return []


# ------------------------------------------------------------------------------------------------------- swap
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def _swap(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``: one exchange where the filesystem has it, else two renames (see the module doc).

    Raises:
        BuildError: The swap failed; the previous repository is at ``out`` (the caller removes ``staging``).
    """
    if not out.exists():
        os.rename(staging, out)  # one rename: there is no previous repository to lose
        return
    try:
        exchanged = settings.swap_mode() == "exchange" and exchange(staging, out)
    except OSError as exc:
        raise BuildError(f"repository: could not move the new repository into {out}: {exc.strerror}") from None
    if exchanged:
        _debug_pause("swapped")
        _remove(staging)  # the previous repository, now at the staging name
        return
    backup = _aside_name(out, PREVIOUS)
    os.rename(out, backup)  # an OSError here changed nothing: the caller reports it
    try:
        _debug_pause("aside")
        os.rename(staging, out)
    except BaseException as exc:
        os.rename(backup, out)
        if isinstance(exc, Exception):
            raise BuildError(f"repository: could not move the new repository into {out}: {exc}") from exc
        raise
    _debug_pause("swapped")
    _remove(backup)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step with ``renameat2(RENAME_EXCHANGE)``.

    Returns:
        True when swapped; False where this system or filesystem cannot (not Linux, an old C library or kernel,
        a filesystem without the flag): nothing changed then.

    Raises:
        OSError: The exchange failed for another reason (nothing changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        LOGGER.debug("renameat2(RENAME_EXCHANGE) unavailable for %s (%s): two renames", b, os.strerror(code))
        return False
    raise OSError(code, os.strerror(code), str(b))
