"""AOTInductor packages of the torch target (``torch: {program: aoti}`` in model.yaml).

The exported program is compiled by ``torch._inductor.aoti_compile_and_package`` into one package per device its
instance groups run on (``model.aoti-cpu.pt2``, ``model.aoti-cuda.pt2``). Custom ops stay calls into the op library
through AOTI's proxy executor, so the library is loaded (and the ops' fake kernels registered) before compiling:
``prepare_ops`` did both in the build process. The program's range constraints (the spec's min/max per dynamic dim)
are kept by the compile: the package accepts every shape of the profile.

Compiles are slow (tens of seconds), so packages are cached under ``<cache>/aoti/<key>.pt2``; the key is a sha256
over the serialized program, the op libraries, the torch and trtrepo versions and the device (CUDA capability or the
CPU instruction set torch picked): the same inputs give the same package, anything else compiles anew.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import __version__
from trtrepo._hashing import sha256_bytes, sha256_file
from trtrepo.errors import BuildError

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec
    from trtrepo.targets.base import BuildContext

LOGGER = logging.getLogger(__name__)

CACHE_SUBDIR = "aoti"
PARAM_AOTI_PACKAGES = "trtrepo_aoti_packages"  # "cpu=model.aoti-cpu.pt2;cuda=model.aoti-cuda.pt2"


def package_file(device: str) -> str:
    """The version-folder file name of the package for ``device`` (``cpu`` or ``cuda``)."""
    return f"model.aoti-{device}.pt2"


def instance_devices(model: ModelSpec, build_device: str) -> list[str]:
    """``cpu`` / ``cuda``: the devices the model's instance groups run on (kind ``auto`` follows the build device,
    as config.pbtxt's instance groups do), in a fixed order."""
    found = set()
    for group in model.triton.instance_groups:
        found.add("cuda" if group.kind == "gpu" or (group.kind == "auto" and build_device == "cuda") else "cpu")
    return [d for d in ("cpu", "cuda") if d in found]


def build_packages(ctx: BuildContext, model: ModelSpec, ep: Any, program: bytes,
                   libraries: Sequence[Path]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Compile (or take from the cache) one AOTInductor package per instance device.

    Args:
        ctx: The build context (cache folder, build device, progress).
        model: The model's spec.
        ep: Its exported program (on ``ctx.device``).
        program: ``ep`` serialized (model.pt2's bytes): part of the cache key.
        libraries: The op libraries model.py loads: part of the cache key.

    Returns:
        Version-folder file name → package bytes, and the facts the manifest records (per device: file, sha256,
        cache key, whether the cache had it, compile seconds).

    Raises:
        BuildError: A GPU instance group without CUDA here, or the compile fails (names the model and the error).
    """
    devices = instance_devices(model, ctx.device)
    files: dict[str, bytes] = {}
    facts: dict[str, Any] = {"program": "aoti", "packages": {}}
    for device in devices:
        if device == "cuda" and ctx.device != "cuda":
            raise BuildError(f"{model.yaml_path}.torch.program: aoti for a GPU instance group needs CUDA torch and "
                             "a GPU on the build machine; this build runs on cpu",
                             hint="build on the GPU machine, or set the instance group's kind to cpu")
        key = package_key(program, libraries, device)
        cached = ctx.cache_dir / CACHE_SUBDIR / f"{key}.pt2"
        start = time.monotonic()
        hit = cached.is_file()
        if hit:
            ctx.progress(f"build: {model.name}: AOTInductor package for {device} from the cache ({cached.name})")
        else:
            ctx.progress(f"build: {model.name}: compiling an AOTInductor package for {device} (slow: tens of s)")
            _compile(model, ep if device == ctx.device else _moved(ep, device), cached)
        data = cached.read_bytes()
        name = package_file(device)
        files[name] = data
        facts["packages"][device] = {"file": name, "sha256": sha256_bytes(data), "cache_key": key,
                                     "cached": hit, "seconds": round(time.monotonic() - start, 3)}
    return files, facts


def package_key(program: bytes, libraries: Sequence[Path], device: str) -> str:
    """The cache key of one package: program bytes, op libraries, versions and the device it is compiled for."""
    import torch

    parts = [f"trtrepo={__version__}", f"torch={torch.__version__}", f"device={device}", _device_facts(device),
             f"program={sha256_bytes(program)}"]
    parts += [f"library:{Path(lib).name}={sha256_file(lib)}" for lib in libraries]
    return sha256_bytes("\n".join(parts).encode())


def _device_facts(device: str) -> str:
    import torch

    if device == "cuda":
        major, minor = torch.cuda.get_device_capability()
        return f"sm_{major}{minor} cuda={torch.version.cuda}"
    return f"cpu_capability={torch.backends.cpu.get_cpu_capability()}"


def _moved(ep: Any, device: str) -> Any:
    import torch
    from torch.export.passes import move_to_device_pass

    return move_to_device_pass(ep, torch.device(device))


def _compile(model: ModelSpec, ep: Any, target: Path) -> None:
    """Compile into ``target`` atomically (a temporary file beside it, then renamed): a killed build leaves no
    half-written package in the cache."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".pt2", dir=target.parent)
    os.close(fd)
    try:
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                torch._inductor.aoti_compile_and_package(ep, package_path=tmp)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BuildError(f"{model.yaml_path}.torch.program: AOTInductor cannot compile {model.name!r}: "
                             f"{type(exc).__name__}: {first}",
                             hint="set torch.program: exported to serve the exported program instead") from exc
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
