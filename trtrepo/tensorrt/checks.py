"""Plugin checks before serving, and the tritonserver flags that load plugin libraries.

What fails late in Triton (an engine that needs a creator nobody registered, two libraries registering the same
creator, a plan built with another TensorRT than the server's) is caught here from facts recorded at build time:

* each model's needed creators (``name``, ``version``, ``namespace``) — ``ModelArtifacts.record["plugins"]``;
* each library's provided creators — ``record["plugin_creators"]``, derived from the op descriptions the library
  was compiled from (and, where TensorRT is present, :func:`creators_in_library` reads them by loading it);
* the TensorRT version each plan was built with — ``record["tensorrt_version"]``.

All functions here are pure except :func:`creators_in_library`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.errors import ServeError

if TYPE_CHECKING:
    from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

SAME_RELEASE_HINT = (
    "build the plan in the NGC PyTorch image of the same release as the tritonserver image "
    "(e.g. nvcr.io/nvidia/pytorch:25.10-py3 with nvcr.io/nvidia/tritonserver:25.10-py3; see the Dockerfile)"
)


@dataclass(frozen=True, order=True)
class Creator:
    """A TensorRT plugin creator's identity."""

    name: str
    version: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.namespace}::{self.name} v{self.version}"

    def as_dict(self) -> dict[str, str]:
        """JSON form for the manifest."""
        return {"name": self.name, "version": self.version, "namespace": self.namespace}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Creator:
        """Inverse of :meth:`as_dict`."""
        return cls(str(raw["name"]), str(raw["version"]), str(raw.get("namespace", "")))


def creators_from_ops(ops: Iterable[OpDescription]) -> list[Creator]:
    """The creators a plugin library built from these op descriptions registers (op.yaml ``plugin`` blocks)."""
    return sorted(Creator(d.plugin.name, d.plugin.version, d.plugin.namespace) for d in ops if d.plugin is not None)


@dataclass(frozen=True)
class PluginProblem:
    """One problem found before serving; ``str()`` is the one-line message."""

    message: str
    hint: str

    def __str__(self) -> str:
        return self.message


def find_plugin_problems(required: Mapping[str, Sequence[Creator]],
                         provided: Mapping[str, Sequence[Creator]],
                         hashes: Mapping[str, str] | None = None) -> list[PluginProblem]:
    """Every needed creator must be provided exactly once across the repository's plugin libraries.

    Each model folder holds its own copy of the libraries it needs, so one library often sits at several paths;
    copies with the same sha256 are one library (the server loads it once) and do not clash.

    Args:
        required: Model name → creators its plan needs.
        provided: Library path (as served) → creators it registers.
        hashes: Library path → sha256 of its content; paths without a hash count as distinct libraries.

    Returns:
        The problems, empty when all is well: clashes (a creator in more than one distinct library — TensorRT
        keeps whichever registers first) and missing creators.
    """
    digests = hashes or {}
    owners: dict[Creator, dict[str, list[str]]] = {}  # creator → library identity → its paths
    for lib, creators in provided.items():
        identity = digests.get(lib) or f"path:{lib}"
        for c in creators:
            owners.setdefault(c, {}).setdefault(identity, []).append(lib)
    problems = []
    for creator, libs in sorted(owners.items()):
        if len(libs) > 1:
            shown = sorted(min(paths) for paths in libs.values())
            problems.append(PluginProblem(
                f"plugin creator {creator} is registered by {len(libs)} different libraries: {', '.join(shown)}",
                "keep one library per creator (rebuild every model that uses it), or give the ops distinct plugin "
                "names/versions in op.yaml",
            ))
    for model, creators in sorted(required.items()):
        for creator in creators:
            if creator not in owners:
                near = [str(c) for c in owners if c.name == creator.name]
                hint = (f"the libraries provide {', '.join(near)}: name, version and namespace must all match"
                        if near else "build with plugin_src holding this op, so its library is in the repository")
                problems.append(PluginProblem(
                    f"model {model!r} needs plugin creator {creator}, which no plugin library provides", hint))
    return problems


def check_plugins(required: Mapping[str, Sequence[Creator]], provided: Mapping[str, Sequence[Creator]],
                  hashes: Mapping[str, str] | None = None) -> None:
    """Raise ServeError naming the first problem of :func:`find_plugin_problems` (all are logged)."""
    problems = find_plugin_problems(required, provided, hashes)
    for p in problems:
        LOGGER.error("%s (%s)", p.message, p.hint)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s), see the log)" if len(problems) > 1 else ""
        raise ServeError(first.message + more, hint=first.hint)


def unique_libraries(paths: Sequence[str | Path], hashes: Mapping[str, str] | None = None) -> list[str]:
    """``paths`` with copies of one library (same sha256) reduced to the first, order kept.

    A server-wide plugin list must name each library once: TensorRT registers the creators of every library it
    loads, and a second copy of the same library registers them again.

    Args:
        paths: Library paths, in the order they should load.
        hashes: Path (as given, ``str``) → sha256; a path without one is hashed from its file when it exists,
            else kept as a library of its own.
    """
    seen: set[str] = set()
    out = []
    for p in paths:
        text = str(p)
        digest = (hashes or {}).get(text) or _file_sha256(Path(text)) or f"path:{text}"
        if digest in seen:
            continue
        seen.add(digest)
        out.append(text)
    return out


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def version_tuple(version: str) -> tuple[int, ...]:
    """``"10.13.3.9"`` → ``(10, 13, 3)``: TensorRT plans are tied to major.minor.patch."""
    parts = []
    for piece in version.strip().split(".")[:3]:
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def tensorrt_version_problem(model: str, plan_version: str | None, server_version: str | None,
                             version_compatible: bool = False) -> PluginProblem | None:
    """A problem when the plan's TensorRT differs from the server's, None when they match or one is unknown.

    Args:
        model: Model name, for the message.
        plan_version: TensorRT version the plan was built with (recorded at build).
        server_version: TensorRT version of the tritonserver that will load it.
        version_compatible: The plan was built version-compatible (then only the major version must match).
    """
    if not plan_version or not server_version:
        LOGGER.warning("model %r: cannot compare TensorRT versions (plan %s, server %s)", model,
                       plan_version or "unknown", server_version or "unknown")
        return None
    plan, server = version_tuple(plan_version), version_tuple(server_version)
    width = 1 if version_compatible else 3
    if plan[:width] == server[:width]:
        return None
    return PluginProblem(
        f"model {model!r}: plan built with TensorRT {plan_version}, the server runs TensorRT {server_version}; "
        "TensorRT refuses plans from another version",
        SAME_RELEASE_HINT,
    )


def check_tensorrt_versions(plans: Mapping[str, str | None], server_version: str | None) -> None:
    """Raise ServeError when any plan (model → TensorRT version) does not match the server's TensorRT."""
    for model, version in sorted(plans.items()):
        problem = tensorrt_version_problem(model, version, server_version)
        if problem is not None:
            raise ServeError(problem.message, hint=problem.hint)


def plugin_backend_config(paths: Sequence[str | Path]) -> list[str]:
    """tritonserver arguments that make its TensorRT backend dlopen ``paths`` (empty list for none).

    The arguments are argv items (no shell quoting inside): ``--backend-config=tensorrt,plugins=/a.so;/b.so``.

    Raises:
        ServeError: A path is relative or contains ``;`` (the list separator).
    """
    if not paths:
        return []
    items = []
    for p in paths:
        text = str(p)
        if not Path(text).is_absolute():
            raise ServeError(f"plugin library path {text!r} is not absolute",
                             hint="tritonserver resolves plugin paths from its own working directory; pass absolute")
        if ";" in text:
            raise ServeError(f"plugin library path {text!r} contains ';', the separator of the plugins list",
                             hint="move the library to a path without ';'")
        items.append(text)
    return [f"--backend-config=tensorrt,plugins={';'.join(items)}"]


def launch_script(repo: str | Path, plugin_paths: Sequence[str | Path], hashes: Mapping[str, str] | None = None) -> str:
    """A ``launch.sh`` for the repository root: tritonserver on this repository with its plugin libraries.

    Libraries inside the repository are referenced relative to the script, so the repository can move (e.g. into a
    container); ``TRITONSERVER`` overrides the binary and extra arguments pass through. Each model folder holds its
    own copy of its libraries: copies of one library (same sha256) are listed once.

    Args:
        repo: The repository root the script is written into.
        plugin_paths: Plugin libraries (absolute, or relative to the repository root: ``<model>/plugins/x.so``).
        hashes: Path (as given, ``str``) → sha256 (the manifest's); missing ones are read from the files.
    """
    root = Path(repo)
    digests = {str(p): (hashes or {}).get(str(p)) or _file_sha256(Path(p) if Path(p).is_absolute() else root / p)
               or f"path:{p}" for p in plugin_paths}
    parts = []
    for text in unique_libraries(plugin_paths, digests):
        path = Path(text)
        rel = path if not path.is_absolute() else _relative_to(path, root)
        if rel is not None:
            parts.append('"$HERE"/' + shlex.quote(rel.as_posix()))
        else:
            parts.append(shlex.quote(str(path)))
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by trtrepo: serves this model repository with the TensorRT plugin libraries it needs.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        'args=(--model-repository="$HERE")',
    ]
    if parts:
        lines.append("plugins=(" + " ".join(parts) + ")")
        lines.append('args+=("--backend-config=tensorrt,plugins=$(IFS=";"; echo "${plugins[*]}")")')
    lines.append('exec "${TRITONSERVER:-tritonserver}" "${args[@]}" "$@"')
    return "\n".join(lines) + "\n"


def _relative_to(path: Path, root: Path) -> Path | None:
    try:
        return path.relative_to(root)
    except ValueError:
        return None


def creators_in_library(path: str | Path) -> list[Creator]:
    """Load a plugin library into this process's TensorRT registry and list the creators it added.

    Raises:
        MissingDependencyError: TensorRT is not installed.
        ServeError: TensorRT cannot load the library.
    """
    from trtrepo.deps import require

    require("tensorrt", "reading the creators of a plugin library")
    import tensorrt as trt

    registry = trt.get_plugin_registry()

    def current() -> set[Creator]:
        return {Creator(str(c.name), str(c.plugin_version), str(c.plugin_namespace)) for c in registry.all_creators}

    before = current()
    try:
        registry.load_library(str(path))
    except Exception as exc:  # pybind raises RuntimeError/TypeError for a missing symbol or bad file
        raise ServeError(f"TensorRT cannot load plugin library {path}: {exc}",
                         hint="the library must export getCreators (see plugin_src/common/trt_plugin_registry.cpp)"
                         ) from None
    return sorted(current() - before)
