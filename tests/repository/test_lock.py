"""The repository lock: who holds it, a bounded wait, a dead holder's file, and the removed-file race."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from trtrepo.errors import BuildError
from trtrepo.repository import lock


def test_the_holder_is_recorded_and_the_file_removed(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    path = lock.lock_path(repository)
    assert path == tmp_path / ".repo.lock"
    with lock.repository_lock(repository) as me:
        recorded = json.loads(path.read_text())
        assert recorded["pid"] == os.getpid() == me.pid
        assert lock.read_holder(path) == me
    assert not path.exists()


def test_a_held_lock_is_waited_for_then_refused(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    told: list[str] = []
    # flock belongs to an open file: a second open in this process contends like another process would
    with (lock.repository_lock(repository) as me, pytest.raises(BuildError) as info,
          lock.repository_lock(repository, timeout=0.3, progress=told.append)):
        pass
    assert info.value.message == (f"repository: {repository} is being written by {me.describe()}; gave up after "
                                  "0.3 s")
    assert told == [f"write: waiting for {repository}: it is being written by {me.describe()}"]
    assert not lock.lock_path(repository).exists()


def test_a_dead_holders_file_does_not_block(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    lock.lock_path(repository).write_text(json.dumps({"pid": 999999, "command": "trtrepo build x", "since": "then"}))
    with lock.repository_lock(repository, timeout=0) as me:
        assert lock.read_holder(lock.lock_path(repository)) == me


def test_a_file_removed_by_the_previous_holder_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The waiter opened the old file, the holder unlinked it and let go: the waiter must lock the new one."""
    repository = tmp_path / "repo"
    path = lock.lock_path(repository)
    real_flock = fcntl.flock
    locked: list[int] = []

    def flock(fd: int, operation: int) -> None:
        real_flock(fd, operation)
        locked.append(fd)
        if len(locked) == 1:  # the first file locked disappears right after, as if its holder had removed it
            os.unlink(path)

    monkeypatch.setattr(lock.fcntl, "flock", flock)
    with lock.repository_lock(repository, timeout=0):
        assert len(locked) == 2, "the lock on the removed file must be dropped and the file at the path locked"
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_the_lock_file_cannot_be_created(tmp_path: Path) -> None:
    with (pytest.raises(BuildError, match=r"^repository: cannot create the lock file .*/missing/\.repo\.lock: No such"),
          lock.repository_lock(tmp_path / "missing" / "repo")):
        pass


def test_is_locked_sees_a_holder_and_creates_nothing(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    assert not lock.is_locked(repository) and not lock.lock_path(repository).exists()
    with lock.repository_lock(repository):
        assert lock.is_locked(repository)  # a second open file contends like another process
    assert not lock.is_locked(repository)
    lock.lock_path(repository).write_text("{}")  # a dead holder's file: nobody holds it
    assert not lock.is_locked(repository)
