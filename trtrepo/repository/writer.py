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

Everything is written into a temporary folder beside the target (same filesystem), then the previous repository
is renamed to a backup, the staging folder renamed into place and the backup removed. Any failure before the swap
leaves the previous repository untouched, byte for byte, and removes the staging folder. Models of the previous
repository that this build does not rebuild (``--models a`` keeps ``b``), and files trtrepo did not write (a
README.md), are carried over.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.errors import BuildError
from trtrepo.repository import config as cfg
from trtrepo.repository.manifest import (
    MANIFEST_FILENAME,
    MANIFEST_SCHEMA,
    hash_tree,
    read_manifest,
    sha256_file,
    write_manifest,
)

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec, Spec
    from trtrepo.targets.base import ModelArtifacts

LOGGER = logging.getLogger(__name__)

PLUGINS_DIRNAME = "plugins"  # inside each model folder
LOGS_DIRNAME = "logs"  # inside each model folder
OPS_LOGS_DIRNAME = "ops"  # <model>/logs/ops/: the op library build logs
LAUNCH_SCRIPT = "launch.sh"
# root folders of the layout before per-model plugins/logs (tritonserver refused to start on them): dropped
LEGACY_ROOT_DIRS = (PLUGINS_DIRNAME, LOGS_DIRNAME)
RESERVED = (*LEGACY_ROOT_DIRS, LAUNCH_SCRIPT, MANIFEST_FILENAME)


def write_repository(
    spec: Spec,
    built: Mapping[str, tuple[ModelSpec, ModelArtifacts]],
    out: Path,
    *,
    ops: Any = None,
    environment: Mapping[str, Any],
    device: str = "cpu",
    log_dir: Path | None = None,
) -> Path:
    """Write (or update) the repository at ``out`` atomically.

    Args:
        spec: The validated model.yaml.
        built: Model name → (its spec, what its target built), for the models built now.
        out: The repository folder.
        ops: The built custom ops (``trtrepo.ops.build.BuiltOps``) or None; recorded in the manifest.
        environment: Versions and hardware facts (``trtrepo.repository.manifest.environment()``).
        device: ``cuda`` or ``cpu``: where the build ran (instance groups of kind ``auto``).
        log_dir: Build logs to copy into the models' ``logs/`` (``<model>/...`` and ``<model>.*`` go to that model,
            other files to every model built now).

    Returns:
        The repository path.

    Raises:
        BuildError: The target is not a folder, two libraries of one model share a file name, a kept model lacks its
            libraries, an artifact is inconsistent, or the
            swap failed; the previous repository is unchanged.
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise BuildError(f"repository: {out} exists and is not a folder", hint="pass another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        _stage(spec, built, out, staging, ops=ops, environment=environment, device=device, log_dir=log_dir)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    LOGGER.info("repository written: %s", out)
    return out


# ---------------------------------------------------------------------------------------------------- staging
def _stage(
    spec: Spec,
    built: Mapping[str, tuple[ModelSpec, ModelArtifacts]],
    out: Path,
    staging: Path,
    *,
    ops: Any,
    environment: Mapping[str, Any],
    device: str,
    log_dir: Path | None,
) -> None:
    old = read_manifest(out) if out.is_dir() else None
    old_models: dict[str, Any] = dict((old or {}).get("models") or {})
    spec_names = {m.name for m in spec.models}
    manifest_models: dict[str, Any] = {}

    for name, (model, artifacts) in sorted(built.items()):
        model_dir = staging / name
        libs = _stage_plugins(name, artifacts.plugin_libraries, model_dir)
        _stage_model(model, artifacts, staging, device=device, op_libraries=libs)
        _stage_logs(model_dir, name, log_dir, ops, built_now=set(built))
        manifest_models[name] = _model_record(model, artifacts, staging, libs)
        manifest_models[name]["spec"] = str(spec.path)

    if out.is_dir():
        manifest_models.update(_carry_over(out, staging, built, old_models, spec_names, spec.path))

    plugins = {f"{name}/{rel}": sha256_file(staging / name / rel)
               for name, rec in sorted(manifest_models.items()) for rel in rec.get("plugin_libraries", [])}
    # the launch flags load libraries into the TensorRT backend: only TensorRT models' libraries belong there
    trt_plugins = [f"{name}/{rel}" for name, rec in sorted(manifest_models.items()) if rec.get("target") == "tensorrt"
                   for rel in rec.get("plugin_libraries", [])]
    if trt_plugins:
        _stage_launch_script(staging, out, trt_plugins, plugins)

    manifest = {
        "schema": MANIFEST_SCHEMA,
        "environment": dict(environment),
        "spec": {"path": str(spec.path), "sha256": sha256_file(spec.path)},
        "device": device,
        "ops": _ops_record(ops),
        "plugins": plugins,  # repository-relative path of every per-model copy → sha256
        "models": manifest_models,
    }
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


def _model_record(model: ModelSpec, artifacts: ModelArtifacts, staging: Path, libs: list[str]) -> dict[str, Any]:
    return {
        "target": artifacts.target,
        "precision": model.precision,
        "version": model.version,
        "platform": artifacts.platform,
        "backend": artifacts.backend,
        "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in artifacts.inputs],
        "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in artifacts.outputs],
        "plugin_libraries": libs,
        "record": artifacts.record,
        "files": {f"{model.name}/{rel}": sha
                  for rel, sha in hash_tree(staging / model.name, skip=[LOGS_DIRNAME]).items()},
    }


def _carry_over(out: Path, staging: Path, built: Mapping[str, Any], old_models: dict[str, Any],
                spec_names: set[str], spec_path: Path) -> dict[str, Any]:
    """Copy what the previous repository holds that this build keeps; return the kept models' records."""
    kept: dict[str, Any] = {}
    for entry in sorted(out.iterdir()):
        name = entry.name
        if name in RESERVED or name.startswith(f".{out.name}.staging-"):
            continue
        if name in built:
            _carry_versions(entry, staging / name, built[name][0])
            continue
        # a model the previous build of THIS spec wrote and the spec no longer lists is dropped; models another
        # model.yaml wrote into the same repository stay
        if name in old_models and name not in spec_names and old_models[name].get("spec") in (None, str(spec_path)):
            LOGGER.info("dropping model %r: it is no longer in %s", name, spec_path)
            continue
        _copy(entry, staging / name)
        if name in old_models:
            kept[name] = old_models[name]
            LOGGER.info("keeping model %r from the previous repository (not rebuilt)", name)
    # TensorRT models share one registry in the server: a kept plan gets the library the rebuilt plans load, so
    # the server loads one copy instead of two libraries registering the same creators
    rebuilt_trt = {Path(lib).name: staging / name / PLUGINS_DIRNAME / Path(lib).name
                   for name, (_, artifacts) in built.items() if artifacts.target == "tensorrt"
                   for lib in artifacts.plugin_libraries}
    for name, record in kept.items():
        for rel in record.get("plugin_libraries", []):
            dest = staging / name / rel
            fresh = rebuilt_trt.get(Path(rel).name) if record.get("target") == "tensorrt" else None
            if fresh is not None and (not dest.is_file() or sha256_file(dest) != sha256_file(fresh)):
                LOGGER.warning("kept TensorRT model %r now uses the rebuilt %s", name, Path(rel).name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(fresh, dest)
                kept[name] = record = {**record, "files": {**record.get("files", {}),
                                                           f"{name}/{rel}": sha256_file(dest)}}
            elif dest.is_file():
                continue
            elif (out / rel).is_file():
                raise BuildError(f"repository: kept model {name!r} was written with its libraries at the repository "
                                 f"root ({out / rel}); tritonserver cannot load that layout",
                                 hint=f"rebuild it: trtrepo build <model.yaml> --models {name}")
            else:
                raise BuildError(f"repository: kept model {name!r} needs {out / name / rel}, which is missing",
                                 hint=f"rebuild it: trtrepo build <model.yaml> --models {name}")
    return kept


def _carry_versions(old_dir: Path, new_dir: Path, model: ModelSpec) -> None:
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
        _copy(entry, new_dir / entry.name)


def _stage_logs(model_dir: Path, name: str, log_dir: Path | None, ops: Any, built_now: set[str]) -> None:
    """``<model>/logs/``: the op library build logs under ``ops/``, and this model's logs of ``log_dir``.

    In ``log_dir``, a folder ``<model>/`` and files ``<model>.*`` (``gelu.tensorrt.log``) belong to that model;
    anything named after no model built now is a log of the whole build and goes to every model.
    """
    logs = model_dir / LOGS_DIRNAME
    for dest, path in _ops_logs(ops).items():
        (logs / OPS_LOGS_DIRNAME).mkdir(parents=True, exist_ok=True)
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


def _ops_logs(ops: Any) -> dict[str, Path]:
    """File name under ``logs/ops/`` → build log of the op libraries (torch library, TensorRT plugins, PTX)."""
    if ops is None:
        return {}
    logs = getattr(ops, "logs", None)
    if logs is not None:
        return {Path(p).name: Path(p) for p in logs if Path(p).is_file()}
    products: list[tuple[str, Any]] = [("torch_library", getattr(ops, "torch_library", None)),
                                       ("trt_plugin_library", getattr(ops, "trt_plugin_library", None))]
    products += [(f"ptx-{op.replace('::', '-')}", path)
                 for op, path in sorted((getattr(ops, "ptx", None) or {}).items())]
    out: dict[str, Path] = {}
    for label, product in products:
        if product:
            for log in sorted(Path(product).parent.glob("*.log")):
                out[f"{label}.{log.name}"] = log
    return out


def _ops_record(ops: Any) -> dict[str, Any] | None:
    if ops is None:
        return None
    descriptions = getattr(ops, "descriptions", {}) or {}
    trt_lib = getattr(ops, "trt_plugin_library", None)
    return {
        "ops": sorted(descriptions),
        "with_cuda": getattr(ops, "with_cuda", None),
        "hashes": dict(getattr(ops, "hashes", {}) or {}),
        "torch_library": str(getattr(ops, "torch_library", "")) or None,
        "trt_plugin_library": str(trt_lib) if trt_lib else None,
    }


def _stage_launch_script(staging: Path, out: Path, plugin_paths: list[str], hashes: Mapping[str, str]) -> None:
    """launch.sh from the TensorRT stage, when it is installed (it knows the backend flags)."""
    try:
        from trtrepo.tensorrt.checks import launch_script
    except ImportError as exc:
        LOGGER.debug("no launch.sh: trtrepo.tensorrt.checks.launch_script unavailable (%s)", exc)
        return
    text = launch_script(out, plugin_paths, hashes)
    script = staging / LAUNCH_SCRIPT
    script.write_text(text)
    script.chmod(0o755)


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest, follow_symlinks=False)


# ------------------------------------------------------------------------------------------------------- swap
def _swap(staging: Path, out: Path) -> None:
    """staging → out; the previous out is renamed aside first and restored if the second rename fails."""
    if not out.exists():
        os.rename(staging, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
    backup.rmdir()  # only the unique name is wanted: rename needs the destination absent
    os.rename(out, backup)
    try:
        os.rename(staging, out)
    except BaseException as exc:
        os.rename(backup, out)
        raise BuildError(f"repository: could not move the new repository into {out}: {exc}") from exc
    shutil.rmtree(backup, ignore_errors=True)
