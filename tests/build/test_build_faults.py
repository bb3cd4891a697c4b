"""The build-side fault corpus (tests/build/faults/, see its README): each case is one real ``trtrepo build``.

A case fails with its exact error and hint lines and exit code; only progress lines come before them (no
traceback, no torch log lines); nothing in the case folder changes (the previous repository is hashed file by
file), nothing is left beside the repository or in the cache's log folder, and no process outlives the build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from buildproc import Builds, leftovers, previous_repository, stale_log_dirs

from trtrepo._hashing import hash_tree

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
FAULTS = HERE / "faults"
PROJECT = FAULTS / "_project"
CASES = sorted(p for p in FAULTS.iterdir() if (p / "case.yaml").is_file())
PROGRESS = re.compile(r"^(spec|target|ops|export|build|write|done): |^\[\d+/\d+\] ")
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _load(case: Path) -> dict[str, Any]:
    data = yaml.safe_load((case / "case.yaml").read_text())
    assert isinstance(data, dict) and {"why", "exit", "stderr"} <= set(data), f"{case.name}: why, exit, stderr"
    return data


@cache
def _permission_wrapper() -> list[str] | None:
    """How to run a build whose case needs permission bits to bind: as is, under setpriv (root), or not at all."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*DROP_DAC, "true"], capture_output=True)
    return DROP_DAC if probe.returncode == 0 else None


def _fill(text: str, case: Path, home: Path) -> str:
    return text.replace("{case}", str(case)).replace("{home}", str(home))


def _setup(steps: list[dict[str, Any]], case: Path) -> list[tuple[Path, int, int]]:
    """Apply the case's setup steps; return (path, mode before, mode set) of each chmod."""
    changed = []
    for step in steps:
        (kind, arg), = step.items()
        if kind == "mkdir":
            (case / arg).mkdir(parents=True, exist_ok=True)
        elif kind == "write":
            (case / arg["path"]).parent.mkdir(parents=True, exist_ok=True)
            (case / arg["path"]).write_text(arg["text"])
        elif kind == "bytes":
            (case / arg["path"]).write_bytes(bytes.fromhex(arg["hex"]))
        elif kind == "symlink":
            os.symlink(arg["target"], case / arg["path"])
        elif kind == "chmod":
            path = case / arg["path"]
            changed.append((path, path.stat().st_mode & 0o7777, int(str(arg["mode"]), 0)))
            os.chmod(path, int(str(arg["mode"]), 0))
        else:
            raise AssertionError(f"unknown setup step {kind!r}")
    return changed


def _tree(folder: Path, changed: list[tuple[Path, int, int]]) -> dict[str, str]:
    """Every file's hash (bytecode caches aside), read with the modes the setup changed put back for a moment."""
    for path, mode, _ in changed:
        os.chmod(path, mode)
    try:
        return {k: v for k, v in hash_tree(folder).items() if "__pycache__" not in k}
    finally:
        for path, _, mode in changed:
            os.chmod(path, mode)


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        _load(case)


@pytest.mark.parametrize("source", CASES, ids=[p.name for p in CASES])
def test_fault_case(source: Path, tmp_path: Path, builds: Builds) -> None:
    data = _load(source)
    wrapper: list[str] | None = []
    if data.get("needs") == "permissions":
        wrapper = _permission_wrapper()
        if wrapper is None:
            pytest.skip("root without setpriv: permission bits do not bind here")
    case = tmp_path / source.name
    shutil.copytree(PROJECT, case)
    shutil.copytree(source, case, dirs_exist_ok=True, symlinks=True)
    (case / "case.yaml").unlink()
    home = case / "home"
    home.mkdir(exist_ok=True)
    previous = data.get("previous", "repo")
    if previous is not None:
        previous_repository(case / previous, tmp_path)
    changed = _setup(data.get("setup", []), case)
    before = _tree(case, changed)

    args = [_fill(str(a), case, home) for a in data.get("args", ["build", "model.yaml"])]
    expected = [_fill(line, case, home) for line in data["stderr"]]
    runs = [args, ["-v", *args]] if data.get("verbose") else [args]
    for argv in runs:
        result = builds.finish(builds.start(argv, env={"HOME": str(home)}, cwd=case, wrapper=wrapper or ()))
        lines = result.stderr.splitlines()
        assert result.returncode == data["exit"], result.stderr
        assert result.stdout == ""
        assert lines[-len(expected):] == expected, result.stderr
        head = lines[: -len(expected)]
        if argv[0] == "-v":
            assert any(line.startswith("Traceback") for line in head), "-v shows the traceback"
        else:
            assert [line for line in head if not PROGRESS.match(line)] == [], "only progress lines before the error"
        assert stale_log_dirs(builds.cache, result.pid) == []
        if previous is not None:
            assert leftovers(case / previous) == []
    assert _tree(case, changed) == before, "a failed build must change nothing: the previous repository is intact"
    for path, mode, _ in changed:
        os.chmod(path, mode)  # so that pytest can remove the folder
