"""Real ``trtrepo build`` processes: tiny projects, a runner that checks nothing outlives the build, leftovers.

Imported by the tests of this folder (and its conftest.py, which makes the fixtures)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trtrepo._hashing import sha256_file
from trtrepo.contracts import IOSpec, ModelArtifacts
from trtrepo.repository import writer
from trtrepo.repository.manifest import MANIFEST_FILENAME, load_manifest
from trtrepo.spec import load_spec

TINY_NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale + 1.0


def build():
    return Net({scale})
"""

TINY_SPEC = """
repository: {repository}
models:
  - name: {name}
    source: {{factory: "net:build"}}
    target: torch
    inputs:
      - {{name: x, shape: [-1, 4], min: [1, 4], opt: [2, 4], max: [8, 4]}}
    outputs: [y]
    triton: {{max_batch_size: 8}}
"""

PROCESS_TIMEOUT = 180


def tiny_project(folder: Path, name: str, repository: Path | str, scale: float = 2.0) -> Path:
    """A project folder with a factory ``net:build`` and a model.yaml of one model ``name``; returns the spec."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.py").write_text(TINY_NET.format(scale=scale))
    spec = folder / "model.yaml"
    spec.write_text(TINY_SPEC.format(repository=repository, name=name))
    return spec


@dataclass
class Finished:
    """A finished build process."""

    returncode: int
    stdout: str
    stderr: str
    pid: int


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in process group ``pgid`` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Builds:
    """Starts ``trtrepo build`` processes, each in a session of its own, with a private cache."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.started: list[subprocess.Popen[str]] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRTREPO_")}
        env["TRTREPO_CACHE_DIR"] = str(self.cache)
        env.update(extra or {})
        return env

    def start(self, args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              wrapper: Sequence[str] = ()) -> subprocess.Popen[str]:
        """``trtrepo ARGS`` (under ``wrapper``, e.g. setpriv) in a new session; stdout and stderr are pipes."""
        proc = subprocess.Popen([*wrapper, sys.executable, "-m", "trtrepo", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(env), cwd=cwd,
                                start_new_session=True)
        self.started.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[str], timeout: float = PROCESS_TIMEOUT) -> Finished:
        """Wait for ``proc``; fail if anything it started is still running after it exited."""
        out, err = proc.communicate(timeout=timeout)
        left = group_members(proc.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == [], f"processes outlived the build: {left}"
        return Finished(proc.returncode, out, err, proc.pid)

    def run(self, args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Finished:
        return self.finish(self.start(args, env, cwd))

    def wait_for_line(self, proc: subprocess.Popen[str], prefix: str, timeout: float = PROCESS_TIMEOUT) -> list[str]:
        """Read ``proc``'s stderr until a line starts with ``prefix``; return the lines read (that one last)."""
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"the build ended before {prefix!r}: {''.join(lines)}")
            lines.append(line.rstrip("\n"))
            if line.startswith(prefix):
                return lines
        raise AssertionError(f"no {prefix!r} within {timeout} s: {lines}")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def leftovers(repository: Path) -> list[str]:
    """What a build leaves beside the repository besides the repository: staging, backups, the lock file."""
    return sorted(p.name for p in repository.parent.iterdir() if p.name.startswith(f".{repository.name}."))


def stale_log_dirs(cache: Path, pid: int) -> list[str]:
    """Build log folders of process ``pid`` left in the cache."""
    logs = cache / "logs"
    return sorted(p.name for p in logs.glob(f"build-{pid}-*")) if logs.is_dir() else []



def previous_repository(where: Path, scratch: Path, name: str = "kept") -> None:
    """A real trtrepo repository (one torch model ``name``) at ``where``, written by the writer itself (no torch)."""
    project = scratch / f"previous_project_{name}"
    project.mkdir(parents=True)
    (project / "model.yaml").write_text(
        f"repository: {where}\nmodels:\n  - name: {name}\n    source: json:loads\n"
        "    inputs: [{name: x, shape: [2, 4]}]\n    outputs: [y]\n")
    spec = load_spec(project / "model.yaml")
    artifacts = ModelArtifacts(target="torch", inputs=(IOSpec("x", "fp32", (2, 4)),),
                               outputs=(IOSpec("y", "fp32", (2, 4)),), output_names={"y": "y"},
                               files={"model.pt2": b"previous program", "model.py": b"# previous\n"}, backend="python")
    writer.write_repository(spec, {name: (spec.model(name), artifacts)}, where, environment={"trtrepo": "old"})


def assert_complete(repository: Path, models: set[str]) -> None:
    """The repository has a manifest naming exactly ``models``, their folders, and every file it lists, unchanged."""
    manifest = load_manifest(repository / MANIFEST_FILENAME)
    assert set(manifest.models) == models
    assert {p.name for p in repository.iterdir() if p.is_dir()} == models
    for record in manifest.models.values():
        assert record.files
        for rel, digest in record.files.items():
            assert sha256_file(repository / rel) == digest, rel
