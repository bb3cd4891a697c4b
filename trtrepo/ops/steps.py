"""Running compile steps: one subprocess each, output kept in ``build.log`` beside the artifact, the commands in
``reproduce.sh``, progress lines while a step runs, the first ``file:line: error`` as the failure message, and a
cache folder per content key that a finished build marks with ``artifacts.json`` (a second build with the same key
runs nothing).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trtrepo import settings
from trtrepo._hashing import sha256_file
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError

HEARTBEAT_S = 15.0
DONE = "artifacts.json"
LOG = "build.log"
REPRODUCE = "reproduce.sh"

_compile_count = 0


def compile_count() -> int:
    """How many compiler processes this Python process has started (a cache hit starts none)."""
    return _compile_count


@dataclass(frozen=True)
class Step:
    """One command: its label for progress lines and the argv."""

    label: str
    cmd: tuple[str, ...]


_GCC_ERR = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error:\s*(?P<msg>.+)$", re.M)
_NVCC_ERR = re.compile(r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+)\):\s*(?:catastrophic )?error:?\s*(?P<msg>.+)$", re.M)


def first_compiler_error(output: str) -> str | None:
    """The first ``file:line: message`` error in gcc/clang/nvcc output (None if there is none)."""
    hits = [m for rx in (_GCC_ERR, _NVCC_ERR) for m in rx.finditer(output)]
    if not hits:
        return None
    m = min(hits, key=lambda h: h.start())
    return f"{m.group('file')}:{m.group('line')}: {m.group('msg').strip()}"


def write_reproduce(folder: Path, steps: Sequence[Step]) -> Path:
    """``reproduce.sh`` in ``folder``: the steps as shell commands, to re-run a build by hand."""
    script = folder / REPRODUCE
    lines = ["#!/bin/sh", "# Re-runs this build's steps by hand (written by trtrepo.ops).", "set -e",
             f"cd {shlex.quote(str(folder))}"]
    lines += [shlex.join(s.cmd) for s in steps]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def _run_step(step: Step, cwd: Path, log: Path, progress: Progress, index: str) -> None:
    global _compile_count
    _compile_count += 1
    progress(f"{index} {step.label}")
    start = time.monotonic()
    proc = subprocess.Popen(step.cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks: list[str] = []
    while True:
        try:
            out, _ = proc.communicate(timeout=HEARTBEAT_S)
            chunks.append(out or "")
            break
        except subprocess.TimeoutExpired:
            progress(f"{index} still {step.label} ({time.monotonic() - start:.0f} s)")
    output = "".join(chunks)
    with log.open("a") as f:
        f.write(f"$ {shlex.join(step.cmd)}\n{output}[exit {proc.returncode}, {time.monotonic() - start:.1f} s]\n\n")
    if proc.returncode != 0:
        where = first_compiler_error(output)
        if where is None:
            tail = [ln for ln in output.splitlines() if ln.strip()]
            where = tail[-1] if tail else f"exit status {proc.returncode}"
        raise BuildError(f"{step.label} failed: {where} (log: {log})",
                         hint=f"fix the source, or re-run the step by hand: sh {log.parent / REPRODUCE}")


def run_steps(steps: Sequence[Step], final: Sequence[Step], cwd: Path, progress: Progress) -> None:
    """Run ``steps`` in parallel (TRTREPO_BUILD_JOBS), then ``final`` in order; log and reproduce.sh go in ``cwd``."""
    log = cwd / LOG
    log.write_text("")
    write_reproduce(cwd, [*steps, *final])
    total = len(steps) + len(final)
    with ThreadPoolExecutor(max_workers=settings.build_jobs()) as pool:
        futures = [pool.submit(_run_step, s, cwd, log, progress, f"[{i + 1}/{total}]") for i, s in enumerate(steps)]
        for fut in futures:
            fut.result()
    for i, s in enumerate(final):
        _run_step(s, cwd, log, progress, f"[{len(steps) + i + 1}/{total}]")


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (a ``<folder>.lock`` file beside it) across processes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_build(folder: Path, artifacts: Sequence[str], build: Callable[[], None], progress: Progress,
                 what: str) -> bool:
    """Run ``build`` in ``folder`` unless a finished build (same content key = same folder) is there.

    Returns:
        True when it built, False on a cache hit.

    Raises:
        BuildError: The build succeeded but an artifact is missing.
    """
    with locked(folder):
        done = folder / DONE
        if done.is_file() and all((folder / a).is_file() for a in artifacts):
            progress(f"{what}: cached ({folder})")
            return False
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        build()
        missing = [a for a in artifacts if not (folder / a).is_file()]
        if missing:
            raise BuildError(f"{what}: the build succeeded but {', '.join(missing)} is missing (log: "
                             f"{folder / LOG})")
        done.write_text(json.dumps({a: sha256_file(folder / a) for a in artifacts}, indent=1))
        return True
