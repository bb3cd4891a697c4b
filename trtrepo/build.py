"""``trtrepo build``: model.yaml → Triton model repository.

Stages, in order (every check that can fail on user input runs before anything is compiled or written):
load_spec → choose models → resolve each model's target → check the ops the models name → build + load the
custom ops → export each model → run its target → write the repository atomically.

Environment:
    TRTREPO_CACHE_DIR: where compiled ops, logs and other cached build products go
        (default ``~/.cache/trtrepo``, shared by every spec: entries are keyed by content hash).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trtrepo import deps
from trtrepo._files import resolve_path
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError, MissingDependencyError, SpecError, TrtrepoError
from trtrepo.freshness import cheap_device, inputs_key, up_to_date
from trtrepo.ops.stage import cache_dir as ops_cache_dir
from trtrepo.ops.stage import describe_ops, prepare_ops
from trtrepo.spec import TARGETS, TORCH_PROGRAMS, ModelSpec, Spec, check_repository_folder, load_spec

if TYPE_CHECKING:
    from trtrepo.contracts import ModelArtifacts

LOGGER = logging.getLogger(__name__)

LOG_DIR_PREFIX = "build-"  # <cache>/logs/build-<pid>-<random>: one build's logs until the writer copied them
ALIVE_SUFFIX = ".alive"


@dataclass
class BuildResult:
    """What a build produced.

    Attributes:
        repository: The repository folder.
        targets: Model name → target it was built with (``torch`` or ``tensorrt``), for the models built now.
        manifest: Path of ``trtrepo-manifest.json``.
        warnings: Loud warnings raised on the way (``auto → torch`` fallbacks).
        up_to_date: Nothing changed: the repository was left as it was (no export, no write).
    """

    repository: Path
    targets: dict[str, str]
    manifest: Path
    warnings: list[str] = field(default_factory=list)
    up_to_date: bool = False


def build(
    spec_path: str | Path,
    *,
    out: str | Path | None = None,
    target: str | None = None,
    models: str | Sequence[str] | None = None,
    force: bool = False,
    progress: Progress = LOGGER.info,
    torch_program: str | None = None,
) -> BuildResult:
    """Build the Triton model repository a model.yaml describes.

    Args:
        spec_path: The model.yaml.
        out: Repository folder; overrides the spec's ``repository``.
        target: ``auto``, ``tensorrt`` or ``torch``; overrides every model's ``target``.
        models: Only these models (names, or one comma-separated string); the previous repository's other models
            are kept.
        force: Build even when nothing the models are made from changed (:mod:`trtrepo.freshness`).
        progress: Called with one line per stage.
        torch_program: ``exported`` or ``aoti``; overrides every model's ``torch.program`` (part of each model's
            inputs key, so switching it rebuilds).

    Returns:
        The repository, the target each model got and the manifest path.

    Raises:
        SpecError: Invalid model.yaml, unknown ``--models`` / ``--target`` / op name.
        MissingDependencyError: A needed piece (torch, TensorRT, nvcc) is missing; raised before anything is built.
        BuildError: A compile, export or target failed; the previous repository is unchanged.
    """

    spec = load_spec(spec_path)
    if torch_program is not None:
        spec = override_torch_program(spec, torch_program)
    chosen = spec.select(models)
    repository = repository_path(spec, out)
    deps.require("torch", "trtrepo build")
    warnings: list[str] = []
    targets = {m.name: resolve_target(m, target, warnings) for m in chosen}
    check_plugin_sources_readable(spec)
    describe_ops(spec, chosen)
    check_converter_lowerings(chosen, targets)
    check_repository_writable(repository, "--out" if out is not None else "repository")
    # progress starts once every check on the user's input has passed: a bad spec prints its error line only
    progress(f"spec: {spec.path} ({len(chosen)} of {len(spec.models)} model{'s' if len(spec.models) != 1 else ''})")
    for name, chosen_target in targets.items():
        progress(f"target: {name} → {chosen_target}")
    fresh = None if force else _unchanged(spec, chosen, targets, repository)
    if fresh is not None:
        progress(f"up to date: {repository} (nothing {', '.join(fresh)} {'is' if len(fresh) == 1 else 'are'} built "
                 "from changed; --force rebuilds, e.g. after a change outside the factory's folder)")
        from trtrepo.repository.manifest import MANIFEST_FILENAME

        return BuildResult(repository=repository, targets=targets, manifest=repository / MANIFEST_FILENAME,
                           warnings=warnings, up_to_date=True)

    cache_dir = ops_cache_dir()
    # One folder per build: the cache is shared by every spec and process, and the logs are copied into the
    # repository by the writer, so this folder only lives for the build. Its name carries the pid, so the folder
    # of a killed build is recognised and removed by a later one.
    with build_log_dir(cache_dir / "logs") as log_dir:
        return _build(spec, chosen, targets, repository, "--out" if out is not None else "repository", cache_dir,
                      log_dir, warnings, progress)


def _build(spec: Spec, chosen: Sequence[ModelSpec], targets: dict[str, str], repository: Path, where: str,
           cache_dir: Path, log_dir: Path, warnings: list[str], progress: Progress) -> BuildResult:
    from trtrepo.repository.manifest import MANIFEST_FILENAME

    device = "cuda" if deps.has_cuda_torch() else "cpu"

    ops = prepare_ops(spec, chosen, targets, progress=progress)

    from trtrepo.export import export_model
    from trtrepo.targets.base import BuildContext, get_target

    ctx = BuildContext(spec=spec, ops=ops, cache_dir=cache_dir, log_dir=log_dir, device=device, progress=progress)
    built: dict[str, tuple[ModelSpec, ModelArtifacts]] = {}
    for model in chosen:
        progress(f"export: {model.name} (device {device})")
        ep = export_model(model, spec.root, device)
        progress(f"build: {model.name} with the {targets[model.name]} target")
        artifacts = get_target(targets[model.name])(ctx, model, ep)
        key = inputs_key(spec, model, targets[model.name], device)
        built[model.name] = (model, dataclasses.replace(artifacts, inputs_key=key))

    from trtrepo.repository.manifest import environment
    from trtrepo.repository.writer import write_repository

    progress(f"write: {repository}")
    write_repository(spec, built, repository, ops=ops, environment=environment(), device=device, log_dir=log_dir,
                     where=where, progress=progress)
    progress(f"done: {repository} ({', '.join(f'{n}: {t}' for n, t in targets.items())})")
    return BuildResult(repository=repository, targets=targets, manifest=repository / MANIFEST_FILENAME,
                       warnings=warnings)


def _unchanged(spec: Spec, chosen: Sequence[ModelSpec], targets: dict[str, str],
               repository: Path) -> list[str] | None:
    """The models' names when the repository already holds exactly what this build would write, else None."""
    from trtrepo.repository.lock import is_locked
    from trtrepo.repository.manifest import MANIFEST_FILENAME, ManifestError, load_manifest
    from trtrepo.serve.verify import inspect_repository

    if not (repository / MANIFEST_FILENAME).is_file():
        return None
    if is_locked(repository):
        return None  # another build is writing it: what it holds is not settled; the build waits for the lock
    try:
        manifest = load_manifest(repository / MANIFEST_FILENAME)
        verification = inspect_repository(repository)
    except (ManifestError, TrtrepoError, OSError):
        return None  # the build reads it again and says what is wrong
    device = cheap_device() or ("cuda" if deps.has_cuda_torch() else "cpu")
    keys = {m.name: inputs_key(spec, m, targets[m.name], device) for m in chosen}
    return sorted(keys) if up_to_date(manifest.models, keys, verification.ok) else None


@contextlib.contextmanager
def build_log_dir(logs: Path) -> Iterator[Path]:
    """A log folder for one build, ``<logs>/build-<pid>-<random>``, removed afterwards.

    Beside it, ``<folder>.alive`` is locked (``flock``) while the build runs: the kernel drops the lock when the
    build dies, so a later build removes the folder of a killed one (:func:`remove_stale_log_dirs`) and never the
    folder of a running one, whatever its pid namespace.
    """
    logs.mkdir(parents=True, exist_ok=True)
    remove_stale_log_dirs(logs)
    fd, marker = tempfile.mkstemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-", suffix=ALIVE_SUFFIX, dir=logs)
    fcntl.flock(fd, fcntl.LOCK_EX)
    log_dir = Path(marker[: -len(ALIVE_SUFFIX)])
    try:
        log_dir.mkdir()
        yield log_dir
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
        os.close(fd)


def remove_stale_log_dirs(logs: Path) -> None:
    """Remove the log folders of builds that are gone (killed before they could remove their own)."""
    for marker in logs.glob(f"{LOG_DIR_PREFIX}*{ALIVE_SUFFIX}"):
        try:
            fd = os.open(marker, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its build is running
        else:
            LOGGER.debug("removing %s: its build is gone", marker.name[: -len(ALIVE_SUFFIX)])
            shutil.rmtree(marker.with_name(marker.name[: -len(ALIVE_SUFFIX)]), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------------ the stages
def override_torch_program(spec: Spec, program: str) -> Spec:
    """``spec`` with every model's ``torch.program`` set to ``program`` (``--torch-program``).

    Raises:
        SpecError: ``program`` is not one of :data:`trtrepo.spec.TORCH_PROGRAMS`.
    """
    if program not in TORCH_PROGRAMS:
        raise SpecError(f"--torch-program: must be one of {', '.join(TORCH_PROGRAMS)}, got {program!r}")
    models = tuple(dataclasses.replace(m, torch=dataclasses.replace(m.torch, program=program)) for m in spec.models)
    return dataclasses.replace(spec, models=models)


def repository_path(spec: Spec, out: str | Path | None) -> Path:
    """``--out`` or the spec's repository; it is replaced wholesale, so it must not hold the build's inputs.

    Raises:
        SpecError: The folder is a well-known one (home, a system folder), would contain the spec or its plugin
            sources, or holds files trtrepo did not write and is not a trtrepo repository.
        BuildError: Its manifest cannot be read back (an older trtrepo's schema): its models cannot be kept.
    """
    from trtrepo.repository.writer import check_repository_target, previous_manifest

    if out is None:
        check_repository_target(spec.repository, "repository")
        previous_manifest(spec.repository, "repository")
        return spec.repository
    path = resolve_path(out, "--out")
    check_repository_folder(path, "--out")
    for protected in (spec.root, *spec.plugin_sources, ops_cache_dir()):
        if path == protected or path in protected.parents:
            raise SpecError(f"--out: {path} would contain {protected}; the build replaces that folder",
                            hint="write the repository into a folder of its own")
    check_repository_target(path, "--out")
    previous_manifest(path, "--out")
    return path


def check_plugin_sources_readable(spec: Spec) -> None:
    """Every file under the spec's plugin sources can be read (checked before anything is compiled).

    Raises:
        SpecError: A file or folder cannot be read, or a symlink points nowhere (names it and why).
    """
    for i, root in enumerate(spec.plugin_sources):
        where = f"plugin_sources[{i}]"

        def refuse(exc: OSError, where: str = where) -> None:
            raise SpecError(f"{where}: cannot read {exc.filename}: {exc.strerror}")

        for folder, subfolders, files in os.walk(root, onerror=refuse):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(files):
                path = Path(folder) / name
                try:
                    if not stat.S_ISREG(os.stat(path).st_mode):
                        continue  # a FIFO or device: reading it could block, and no build reads it
                    with open(path, "rb") as fh:
                        fh.read(1)
                except OSError as exc:
                    raise SpecError(f"{where}: cannot read {path}: {exc.strerror}") from None


def check_repository_writable(repository: Path, where: str) -> None:
    """The repository can be written where it goes (checked before the build runs, not after).

    Raises:
        SpecError: Its folder name leaves no room for the staging folder beside it, or a folder on its path is a
            file.
        BuildError: The folder that would hold it cannot be written.
    """
    from trtrepo.repository.writer import ASIDE_SUFFIX_BYTES

    existing = repository.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SpecError(f"{where}: {existing} is a file, so {repository} cannot be made")
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    limit = name_max - ASIDE_SUFFIX_BYTES
    size = len(os.fsencode(repository.name))
    if size > limit:
        raise SpecError(f"{where}: the folder name of {repository} is {size} bytes; at most {limit} leave room for the "
                        "staging folder beside it (.<name>.staging-<pid>-<token>)",
                        hint="give the repository a shorter folder name")
    probe = existing / f".{repository.name}.probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError as exc:
        raise BuildError(f"{where}: cannot write in {existing} (for {repository}): {exc.strerror}",
                         hint="choose a folder you can write to, or change its permissions") from None
    probe.rmdir()


def resolve_target(model: ModelSpec, override: str | None, warnings: list[str] | None = None) -> str:
    """``torch`` or ``tensorrt`` for one model.

    ``auto`` is TensorRT where TensorRT and Torch-TensorRT import, else torch with a loud warning; an explicit
    ``tensorrt`` without them is a MissingDependencyError.
    """
    if override is not None and override not in TARGETS:
        raise SpecError(f"--target: must be one of {', '.join(TARGETS)}, got {override!r}")
    wanted = override or model.target
    where = f"{model.yaml_path}.target" if override is None else "--target"
    missing = _missing_tensorrt()
    if wanted == "tensorrt":
        if missing is not None:
            raise MissingDependencyError(
                f"{where}: tensorrt needs {missing}, which is not available here",
                hint=deps.INSTALL_HINTS[missing] + " (or build the portable target: --target torch)",
            )
        return "tensorrt"
    if wanted == "auto":
        if missing is None:
            return "tensorrt"
        message = f"{where}: auto → torch ({'TensorRT' if missing == 'tensorrt' else 'Torch-TensorRT'} not found: " \
                  f"{deps.INSTALL_HINTS[missing]})"
        LOGGER.warning(message)
        if warnings is not None:
            warnings.append(message)
        return "torch"
    return "torch"


def _missing_tensorrt() -> str | None:
    if not deps.has_tensorrt():
        return "tensorrt"
    if not deps.has_torch_tensorrt():
        return "torch_tensorrt"
    return None


def check_converter_lowerings(models: Sequence[ModelSpec], targets: dict[str, str]) -> None:
    """An op may not be lowered ``plugin`` in one TensorRT model and ``aot`` in another of the same build.

    Both lowerings register a Torch-TensorRT converter for the same op overload in a process-wide registry, so one
    build cannot give two models different converters for it (``decompose`` rewrites the op away and never clashes).
    """
    seen: dict[str, tuple[str, ModelSpec]] = {}
    for model in models:
        if targets.get(model.name) != "tensorrt":
            continue
        for op, lowering in model.ops.items():
            if lowering not in ("plugin", "aot"):
                continue
            first = seen.setdefault(op, (lowering, model))
            if first[0] != lowering:
                raise SpecError(
                    f"{model.yaml_path}.ops.{op}: {lowering} here but {first[0]} in {first[1].yaml_path}; one build "
                    "registers one TensorRT converter per op",
                    hint="use the same lowering for the op, or build the models separately with --models",
                )
