"""TensorRT plugin libraries of a repository: which to load, whether they clash, and the flags that load them.

What fails late in Triton (an engine that needs a creator nobody registered, two libraries registering the same
creator, a plan built with another TensorRT than the server's) is caught here, before a server starts, from facts
recorded at build time in each model's :class:`~trtrepo.repository.manifest.ServingRecord`: the creators its plan
needs, the creators each of its libraries registers, and the TensorRT version that built it. Pure logic: no TensorRT
needed (``trtrepo.tensorrt.checks.creators_in_library`` reads a library's creators where TensorRT is installed).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trtrepo._hashing import sha256_file
from trtrepo.contracts import Creator
from trtrepo.errors import ServeError
from trtrepo.repository.reader import RepositoryView

LOGGER = logging.getLogger(__name__)

SAME_RELEASE_HINT = (
    "build the plan in the NGC PyTorch image of the same release as the tritonserver image "
    "(e.g. nvcr.io/nvidia/pytorch:25.10-py3 with nvcr.io/nvidia/tritonserver:25.10-py3; see the Dockerfile)"
)


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
        digest = (hashes or {}).get(text) or (sha256_file(text) if Path(text).is_file() else None) or f"path:{text}"
        if digest in seen:
            continue
        seen.add(digest)
        out.append(text)
    return out


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



def served_plugin_libraries(view: RepositoryView) -> list[Path]:
    """Plugin libraries the TensorRT models of a repository need, each library once, as absolute paths.

    Read from each TensorRT model's manifest record (``plugin_libraries``, relative to its model folder, where
    trtrepo copies each library a model needs). Copies of one library in several model folders (same sha256) are
    listed once: the server loads them into one registry. Two different libraries registering one creator, or a
    creator no library provides, is an error. Python-backend models load their own libraries and are not listed.

    Raises:
        ServeError: A library is missing, or the plugin check found a clash or a missing creator.
    """
    found: list[str] = []
    hashes: dict[str, str] = {}
    required: dict[str, list[Creator]] = {}
    provided: dict[str, list[Creator]] = {}
    for name, entry in sorted(view.models.items()):
        record = entry.record
        if not entry.is_tensorrt or record is None:
            continue
        paths: dict[str, Path] = {}
        for rel in record.plugin_libraries:
            path = (entry.folder / rel).resolve()
            if not path.is_file():
                raise ServeError(f"{entry.folder / 'config.pbtxt'}: plugin library {rel} does not exist ({path})",
                                 hint="rebuild the repository with trtrepo build")
            if str(path) not in found:
                found.append(str(path))
                hashes[str(path)] = sha256_file(path)  # from the file, not the manifest: what the server loads
            paths[path.name] = path
        required[name] = list(record.required_creators)
        for lib, creators in record.library_creators.items():
            if lib in paths:
                provided[str(paths[lib])] = list(creators)
    check_plugins(required, provided, hashes)
    return [Path(p) for p in unique_libraries(found, hashes)]
