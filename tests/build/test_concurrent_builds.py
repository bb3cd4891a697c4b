"""Two ``trtrepo build`` processes of two specs into one repository: they take turns and both models stay."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from buildproc import Builds, leftovers, stale_log_dirs, tiny_project

from trtrepo._hashing import hash_tree
from trtrepo.repository.manifest import MANIFEST_FILENAME

pytestmark = pytest.mark.integration


def _two_projects(tmp_path: Path) -> tuple[Path, Path, Path]:
    repository = tmp_path / "shared_repo"
    a = tiny_project(tmp_path / "proj_a", "alpha", repository, scale=2.0)
    b = tiny_project(tmp_path / "proj_b", "beta", repository, scale=3.0)
    return repository, a, b


def _models(repository: Path) -> set[str]:
    manifest = json.loads((repository / MANIFEST_FILENAME).read_text())
    on_disk = {p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file()}
    assert set(manifest["models"]) == on_disk, "the manifest and the model folders must agree"
    return on_disk


@pytest.mark.parametrize("attempt", range(3))
def test_simultaneous_builds_keep_both_models(builds: Builds, tmp_path: Path, attempt: int) -> None:
    repository, spec_a, spec_b = _two_projects(tmp_path)
    first, second = builds.start(["build", str(spec_a)]), builds.start(["build", str(spec_b)])
    done = [builds.finish(first), builds.finish(second)]
    for result in done:
        assert result.returncode == 0, result.stderr
        assert stale_log_dirs(builds.cache, result.pid) == []
    assert _models(repository) == {"alpha", "beta"}
    assert leftovers(repository) == []


def test_second_build_waits_for_the_holder_and_names_it(builds: Builds, tmp_path: Path) -> None:
    """The holder pauses after staging (it has read the manifest): without the lock the second build's model is lost."""
    repository, spec_a, spec_b = _two_projects(tmp_path)
    holder = builds.start(["build", str(spec_a)], env={"TRTREPO_DEBUG_PAUSE": "staged:120"})
    builds.wait_for_line(holder, "debug: paused at staged")
    waiter = builds.start(["build", str(spec_b)])
    seen = builds.wait_for_line(waiter, "write: waiting")
    os.kill(holder.pid, signal.SIGUSR1)  # release the holder only once the waiter waits (no guessed duration)
    waited = builds.finish(waiter)
    held = builds.finish(holder)
    assert (held.returncode, waited.returncode) == (0, 0), (held.stderr, waited.stderr)
    lines = [line for line in [*seen, *waited.stderr.splitlines()] if line.startswith("write: waiting")]
    assert len(lines) == 1, waited.stderr
    assert re.fullmatch(rf"write: waiting for {re.escape(str(repository))}: it is being written by pid {holder.pid} "
                        rf"\(trtrepo build {re.escape(str(spec_a))}\) since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d", lines[0])
    assert _models(repository) == {"alpha", "beta"}
    assert leftovers(repository) == []


def test_a_bounded_wait_gives_up_with_the_holder_and_writes_nothing(builds: Builds, tmp_path: Path) -> None:
    repository, spec_a, spec_b = _two_projects(tmp_path)
    assert builds.run(["build", str(spec_b)]).returncode == 0
    before = hash_tree(repository)
    holder = builds.start(["build", str(spec_a)], env={"TRTREPO_DEBUG_PAUSE": "staged:120"})
    builds.wait_for_line(holder, "debug: paused at staged")
    refused = builds.run(["build", str(spec_b)], env={"TRTREPO_LOCK_TIMEOUT": "1"})
    assert hash_tree(repository) == before, "the refused build must not touch the repository"
    os.kill(holder.pid, signal.SIGUSR1)
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(errors) == 2 and refused.stderr.splitlines()[-2:] == errors
    assert re.fullmatch(rf"error: repository: {re.escape(str(repository))} is being written by pid {holder.pid} "
                        rf"\(trtrepo build {re.escape(str(spec_a))}\) since [\d: -]+; gave up after 1 s", errors[0])
    assert errors[1] == "hint: wait for it to finish, or set TRTREPO_LOCK_TIMEOUT to wait longer"
    assert builds.finish(holder).returncode == 0
    assert _models(repository) == {"alpha", "beta"}
    assert leftovers(repository) == []
