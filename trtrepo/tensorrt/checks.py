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

import logging
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo.errors import ServeError

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


def creators_from_ops(ops: Iterable[Any]) -> list[Creator]:
    """The creators a plugin library built from these op descriptions registers (op.yaml ``plugin`` blocks)."""
    from trtrepo.tensorrt.opfacts import op_facts

    out = []
    for desc in ops:
        facts = op_facts(desc)
        if facts.plugin_name:
            out.append(Creator(facts.plugin_name, facts.plugin_version, facts.namespace))
    return sorted(out)


@dataclass(frozen=True)
class PluginProblem:
    """One problem found before serving; ``str()`` is the one-line message."""

    message: str
    hint: str

    def __str__(self) -> str:
        return self.message


def find_plugin_problems(required: Mapping[str, Sequence[Creator]],
                         provided: Mapping[str, Sequence[Creator]]) -> list[PluginProblem]:
    """Every needed creator must be provided exactly once across the repository's plugin libraries.

    Args:
        required: Model name → creators its plan needs.
        provided: Library path (as served) → creators it registers.

    Returns:
        The problems, empty when all is well: clashes (a creator in more than one library — TensorRT keeps whichever
        registers first) and missing creators.
    """
    owners: dict[Creator, list[str]] = {}
    for lib, creators in provided.items():
        for c in creators:
            owners.setdefault(c, []).append(lib)
    problems = []
    for creator, libs in sorted(owners.items()):
        if len(libs) > 1:
            problems.append(PluginProblem(
                f"plugin creator {creator} is registered by {len(libs)} libraries: {', '.join(sorted(libs))}",
                "keep one library per creator, or give the ops distinct plugin names/versions in op.yaml",
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


def check_plugins(required: Mapping[str, Sequence[Creator]], provided: Mapping[str, Sequence[Creator]]) -> None:
    """Raise ServeError naming the first problem of :func:`find_plugin_problems` (all are logged)."""
    problems = find_plugin_problems(required, provided)
    for p in problems:
        LOGGER.error("%s (%s)", p.message, p.hint)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s), see the log)" if len(problems) > 1 else ""
        raise ServeError(first.message + more, hint=first.hint)


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


def launch_script(repo: str | Path, plugin_paths: Sequence[str | Path]) -> str:
    """A ``launch.sh`` for the repository root: tritonserver on this repository with its plugin libraries.

    Libraries inside the repository are referenced relative to the script, so the repository can move (e.g. into a
    container); ``TRITONSERVER`` overrides the binary and extra arguments pass through.

    Args:
        repo: The repository root the script is written into.
        plugin_paths: Plugin libraries (absolute, or relative to the repository root).
    """
    root = Path(repo)
    parts = []
    for p in plugin_paths:
        path = Path(p)
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
