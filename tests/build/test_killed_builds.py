"""A ``trtrepo build`` killed (SIGKILL) at each step of writing: the path always holds a complete repository (or,
in the two-rename scheme between its renames, nothing and a backup beside it), and the next build restores or
cleans what the killed one left."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from buildproc import Builds, assert_complete, leftovers, previous_repository, stale_log_dirs, tiny_project

from trtrepo._hashing import hash_tree

pytestmark = pytest.mark.integration

POINTS = [("exchange", "locked"), ("exchange", "staged"), ("exchange", "swapped"),
          ("rename", "staged"), ("rename", "aside"), ("rename", "swapped")]


@pytest.mark.parametrize(("swap", "point"), POINTS, ids=[f"{s}-{p}" for s, p in POINTS])
def test_killed_build_leaves_a_complete_repository_and_the_next_build_cleans_up(
        builds: Builds, tmp_path: Path, swap: str, point: str) -> None:
    repository = tmp_path / "repo"
    previous_repository(repository, tmp_path)
    before = hash_tree(repository)
    spec = tiny_project(tmp_path / "proj", "beta", repository)

    killed = builds.start(["build", str(spec)], env={"TRTREPO_DEBUG_PAUSE": point, "TRTREPO_SWAP": swap})
    builds.wait_for_line(killed, f"debug: paused at {point} (pid {killed.pid})")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()

    if point == "aside":  # the rename scheme's one window: no repository at the path, the previous one beside it
        assert not repository.exists()
        (backup,) = [repository.parent / n for n in leftovers(repository) if ".previous-" in n]
        assert hash_tree(backup) == before
    elif point == "swapped":
        assert_complete(repository, {"kept", "beta"})
    else:
        assert hash_tree(repository) == before
    left = leftovers(repository)
    assert f".{repository.name}.lock" in left, "the dead holder's lock file is still there (unlocked)"

    again = builds.run(["build", str(spec)])
    assert again.returncode == 0, again.stderr
    told = [line for line in again.stderr.splitlines() if line.startswith("write: re")]
    expected = [f"write: removed {n} beside {repository} (left by a build that was killed)"
                for n in left if n.endswith(tuple("0123456789abcdef")) and n != f".{repository.name}.lock"
                and not (point == "aside" and ".previous-" in n)]
    if point == "aside":
        expected.insert(0, f"write: restored {repository} from {backup.name} (a build was killed while it swapped "
                           "the repository)")
    assert told == expected
    assert_complete(repository, {"kept", "beta"})
    assert {k: v for k, v in hash_tree(repository).items() if k.startswith("kept/")} == {
        k: v for k, v in before.items() if k.startswith("kept/")}, "the kept model is intact"
    assert leftovers(repository) == []
    assert stale_log_dirs(builds.cache, killed.pid) == [], "the killed build's log folder is removed"
